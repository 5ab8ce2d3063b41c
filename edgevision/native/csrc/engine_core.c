/* See engine_core.h. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign: an explicit declaration, which gcc 14 requires */
#include "engine_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "variants.h"

#define EV_ALIGN 64

static size_t align_up(size_t n) { return (n + EV_ALIGN - 1) / EV_ALIGN * EV_ALIGN; }

static void *aligned_zalloc(size_t n) {
    void *p = NULL;
    size_t size = n ? align_up(n) : EV_ALIGN;
    if (posix_memalign(&p, EV_ALIGN, size) != 0) return NULL;
    memset(p, 0, size);
    return p;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int ev_engine_init(ev_engine *e, const char *variant, int threads, size_t arena_size, int n_consts,
                   const void *const *const_data, const size_t *const_len, char *err, size_t errlen) {
    memset(e, 0, sizeof *e);
    if (ev_variant_table(variant, &e->k) != 0) return fail(err, errlen, "no kernel variant '%s' in this build", variant);
    if (ev_cpu_supports(variant) != 1) return fail(err, errlen, "this CPU cannot run kernel variant '%s'", variant);
    if (threads < 1 || threads > 64) return fail(err, errlen, "threads must be 1..64, got %d", threads);
    if (n_consts < 0) return fail(err, errlen, "negative constant count");
    e->threads = threads;
    e->n_consts = n_consts;
    e->const_off = calloc((size_t)n_consts + 1, sizeof(size_t));
    e->const_len = calloc((size_t)n_consts + 1, sizeof(size_t));
    if (!e->const_off || !e->const_len) return fail(err, errlen, "out of memory");
    size_t total = 0;
    for (int i = 0; i < n_consts; i++) {
        e->const_off[i] = total;
        e->const_len[i] = const_len[i];
        total += align_up(const_len[i]);
    }
    e->consts = aligned_zalloc(total);
    e->arena = aligned_zalloc(arena_size);
    e->arena_size = arena_size;
    if (!e->consts || !e->arena) return fail(err, errlen, "out of memory (arena of %zu bytes)", arena_size);
    for (int i = 0; i < n_consts; i++)
        if (const_len[i]) memcpy(e->consts + e->const_off[i], const_data[i], const_len[i]);
    return 0;
}

int ev_engine_add_op(ev_engine *e, int kind, int items, const int32_t *params, int n_params, int n_tensors,
                     const ev_tensor_ref *tensors, size_t scratch_size, char *err, size_t errlen) {
    int i = e->n_ops;
    if (kind < 0 || kind >= EV_OP_COUNT) return fail(err, errlen, "op %d: unknown kind %d", i, kind);
    const char *name = ev_op_name(kind);
    if (items < 0) return fail(err, errlen, "op %d (%s): negative item count", i, name);
    if (n_params < 0) return fail(err, errlen, "op %d (%s): negative params count", i, name);
    if (n_tensors < 0 || n_tensors > EV_MAX_OP_TENSORS)
        return fail(err, errlen, "op %d (%s): %d tensors, at most %d", i, name, n_tensors, EV_MAX_OP_TENSORS);
    if (e->n_ops == e->cap_ops) {
        int cap = e->cap_ops ? 2 * e->cap_ops : 16;
        ev_op *ops = realloc(e->ops, (size_t)cap * sizeof *ops);
        if (ops) e->ops = ops;
        int32_t **params_ = realloc(e->params, (size_t)cap * sizeof *params_);
        if (params_) e->params = params_;
        uint8_t **packed = realloc(e->packed, (size_t)cap * sizeof *packed);
        if (packed) e->packed = packed;
        if (!ops || !params_ || !packed) return fail(err, errlen, "out of memory");
        e->cap_ops = cap;
    }
    ev_op *op = &e->ops[i];
    memset(op, 0, sizeof *op);
    e->params[i] = malloc(n_params ? (size_t)n_params * sizeof(int32_t) : sizeof(int32_t));
    e->packed[i] = NULL;
    e->n_ops = i + 1; /* from here on ev_engine_free releases this op's memory */
    if (!e->params[i]) return fail(err, errlen, "out of memory");
    if (n_params) memcpy(e->params[i], params, (size_t)n_params * sizeof(int32_t));
    op->kind = kind;
    op->items = items;
    op->params = e->params[i];
    op->n_params = n_params;
    op->n_tensors = n_tensors;
    for (int j = 0; j < n_tensors; j++) {
        const ev_tensor_ref *t = &tensors[j];
        uint8_t *base;
        size_t limit;
        if (t->source == -1) {
            base = e->arena;
            limit = e->arena_size;
        } else if (t->source >= 0 && t->source < e->n_consts) {
            base = e->consts + e->const_off[t->source];
            limit = e->const_len[t->source];
        } else {
            return fail(err, errlen, "op %d (%s) tensor %d: source %lld is neither the arena (-1) nor one of %d constants",
                        i, name, j, (long long)t->source, e->n_consts);
        }
        if (t->offset < 0 || t->nbytes < 0 || (uint64_t)t->offset > limit || (uint64_t)t->nbytes > limit - (uint64_t)t->offset)
            return fail(err, errlen, "op %d (%s) tensor %d: bytes [%lld, %lld) outside its %zu-byte block", i, name, j,
                        (long long)t->offset, (long long)(t->offset + t->nbytes), limit);
        op->tensors[j] = base + t->offset;
        op->sizes[j] = (size_t)t->nbytes;
    }
    op->scratch_size = align_up(scratch_size);
    const ev_op_impl *impl = &e->k.ops[kind];
    if (!impl->run) return fail(err, errlen, "op %d: no %s kernel in this build (variant %s)", i, name, e->k.name);
    ev_check_fn check = ev_check_for(kind);
    if (!check) return fail(err, errlen, "op %d: no check for %s in this build", i, name);
    char why[256] = "";
    if (check(op, why, sizeof why) != 0)
        return fail(err, errlen, "op %d (%s): %s", i, name, why[0] ? why : "invalid parameters");
    if (impl->sizes) {
        size_t packed_bytes = 0, scratch_bytes = 0;
        impl->sizes(op, &packed_bytes, &scratch_bytes);
        if (align_up(scratch_bytes) > op->scratch_size) op->scratch_size = align_up(scratch_bytes);
        if (packed_bytes) {
            e->packed[i] = aligned_zalloc(packed_bytes);
            if (!e->packed[i]) return fail(err, errlen, "out of memory (%zu bytes packed for op %d)", packed_bytes, i);
            op->packed = e->packed[i];
            if (impl->pack) impl->pack(op, op->packed);
        }
    }
    if (op->scratch_size > e->scratch_max) e->scratch_max = op->scratch_size;
    return 0;
}

int ev_engine_finish(ev_engine *e, char *err, size_t errlen) {
    if (e->scratch_max) {
        e->scratch = aligned_zalloc(e->scratch_max * (size_t)e->threads);
        if (!e->scratch) return fail(err, errlen, "out of memory (scratch)");
    }
    for (int i = 0; i < e->n_ops; i++) e->ops[i].scratch = e->scratch;
    e->pool_ready = 1; /* destroy() must run even after a partial start */
    if (ev_pool_init(&e->pool, e->threads) != 0) return fail(err, errlen, "could not start the engine's worker threads");
    return 0;
}

void ev_engine_run(ev_engine *e) {
    for (int i = 0; i < e->n_ops; i++) {
        const ev_op *op = &e->ops[i];
        ev_pool_run(&e->pool, op, e->k.ops[op->kind].run);
    }
}

void ev_engine_free(ev_engine *e) {
    if (e->pool_ready) ev_pool_destroy(&e->pool);
    e->pool_ready = 0;
    for (int i = 0; i < e->n_ops; i++) {
        free(e->params[i]);
        free(e->packed[i]);
    }
    free(e->params);
    free(e->packed);
    free(e->ops);
    free(e->arena);
    free(e->consts);
    free(e->scratch);
    free(e->const_off);
    free(e->const_len);
    memset(e, 0, sizeof *e);
}
