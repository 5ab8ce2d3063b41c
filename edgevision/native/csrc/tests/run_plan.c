/* Runs a model plan written by tools/dump_plan.py on this machine's kernels and compares the outputs with the
 * TFLite reference outputs stored in the file, byte for byte. Built from the engine's C sources alone (no
 * Python), so it runs on 32-bit ARM under qemu-arm, where neither LiteRT nor the Python tests can.
 *
 *   run_plan PLAN.evplan VARIANT THREADS
 *
 * VARIANT is run as named (never a silent fallback): exit 2 if this CPU cannot run it. Prints how many steps
 * ran the variant's own kernels, then PASS or the first mismatch; exit 1 on any mismatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine_core.h"
#include "../variants.h"

static unsigned char *buf;
static size_t len, pos;

static int take(void *dst, size_t n) {
    if (n > len - pos) return -1;
    if (dst) memcpy(dst, buf + pos, n);
    pos += n;
    return 0;
}

#define TAKE(x)                                              \
    do {                                                     \
        if (take(&(x), sizeof(x)) != 0) {                    \
            fprintf(stderr, "run_plan: truncated plan file\n"); \
            return 2;                                        \
        }                                                    \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: run_plan PLAN.evplan VARIANT THREADS\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(len ? len : 1);
    if (!buf || fread(buf, 1, len, f) != len) {
        fprintf(stderr, "run_plan: cannot read %s\n", argv[1]);
        return 2;
    }
    fclose(f);
    const char *variant = argv[2];
    int threads = atoi(argv[3]);
    if (len < 8 || memcmp(buf, "EVPLAN01", 8) != 0) {
        fprintf(stderr, "run_plan: %s is not an EVPLAN01 file\n", argv[1]);
        return 2;
    }
    pos = 8;
    uint32_t n_consts;
    TAKE(n_consts);
    const void **cdata = calloc(n_consts + 1, sizeof(void *));
    size_t *clen = calloc(n_consts + 1, sizeof(size_t));
    for (uint32_t i = 0; i < n_consts; i++) {
        uint64_t n;
        TAKE(n);
        cdata[i] = buf + pos;
        clen[i] = (size_t)n;
        if (take(NULL, (size_t)n) != 0) return 2;
    }
    uint64_t arena;
    TAKE(arena);
    char err[512];
    ev_engine e;
    if (ev_engine_init(&e, variant, threads, (size_t)arena, (int)n_consts, cdata, clen, err, sizeof err) != 0) {
        fprintf(stderr, "run_plan: %s\n", err);
        return 2;
    }
    uint32_t n_ops;
    TAKE(n_ops);
    int own = 0;
    for (uint32_t i = 0; i < n_ops; i++) {
        int32_t kind, items;
        uint32_t n_params, n_tensors;
        TAKE(kind);
        TAKE(items);
        TAKE(n_params);
        int32_t *params = malloc((n_params + 1) * sizeof(int32_t));
        if (take(params, n_params * sizeof(int32_t)) != 0) return 2;
        TAKE(n_tensors);
        if (n_tensors > EV_MAX_OP_TENSORS) {
            fprintf(stderr, "run_plan: op %u has %u tensors\n", i, n_tensors);
            return 2;
        }
        ev_tensor_ref refs[EV_MAX_OP_TENSORS];
        for (uint32_t j = 0; j < n_tensors; j++) {
            TAKE(refs[j].source);
            TAKE(refs[j].offset);
            TAKE(refs[j].nbytes);
        }
        uint64_t scratch;
        TAKE(scratch);
        if (ev_engine_add_op(&e, kind, items, params, (int)n_params, (int)n_tensors, refs, (size_t)scratch, err,
                             sizeof err) != 0) {
            fprintf(stderr, "run_plan: %s\n", err);
            return 2;
        }
        free(params);
        const char *fn = e.k.ops[kind].name;
        size_t vl = strlen(variant), fl = strlen(fn);
        if (fl > vl && fn[fl - vl - 1] == '_' && strcmp(fn + fl - vl, variant) == 0) own++;
    }
    if (ev_engine_finish(&e, err, sizeof err) != 0) {
        fprintf(stderr, "run_plan: %s\n", err);
        return 2;
    }
    uint32_t n_cases, n_in, n_out;
    TAKE(n_cases);
    TAKE(n_in);
    uint64_t io[64][2], oo[64][2];
    if (n_in > 64) return 2;
    for (uint32_t i = 0; i < n_in; i++) {
        TAKE(io[i][0]);
        TAKE(io[i][1]);
    }
    TAKE(n_out);
    if (n_out > 64) return 2;
    for (uint32_t i = 0; i < n_out; i++) {
        TAKE(oo[i][0]);
        TAKE(oo[i][1]);
    }
    printf("%s: %u steps, %d run %s's own kernels, %d thread(s)\n", argv[1], n_ops, own, variant, threads);
    int bad = 0;
    for (uint32_t c = 0; c < n_cases; c++) {
        for (uint32_t i = 0; i < n_in; i++) {
            if (io[i][0] + io[i][1] > e.arena_size || take(e.arena + io[i][0], (size_t)io[i][1]) != 0) return 2;
        }
        ev_engine_run(&e);
        for (uint32_t i = 0; i < n_out; i++) {
            if (oo[i][0] + oo[i][1] > e.arena_size || oo[i][1] > len - pos) return 2;
            const unsigned char *want = buf + pos, *got = e.arena + oo[i][0];
            size_t diff = 0, first = (size_t)-1;
            for (size_t k = 0; k < oo[i][1]; k++)
                if (want[k] != got[k]) {
                    if (first == (size_t)-1) first = k;
                    diff++;
                }
            if (diff) {
                printf("case %u output %u: %zu of %llu bytes differ from TFLite's reference (first at byte %zu: got %d, "
                       "want %d)\n", c, i, diff, (unsigned long long)oo[i][1], first, got[first], want[first]);
                bad = 1;
            }
            pos += (size_t)oo[i][1];
        }
    }
    ev_engine_free(&e);
    printf("%s\n", bad ? "FAIL" : "PASS");
    return bad;
}
