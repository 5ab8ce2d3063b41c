/* The engine without Python: a planned model (ops over one arena) built once, then run.
 * engine.c wraps it as edgevision._native.Engine; csrc/tests/run_plan.c drives it directly on ARM under qemu.
 *
 * Building checks everything before anything runs: each tensor range lies inside its block (the arena or one
 * constant), the kind has a kernel in the chosen variant, the kind's check function accepts the params and
 * sizes; then the variant's optional sizes/pack hooks run. Every failure fills `err` and returns -1. */
#ifndef EV_ENGINE_CORE_H
#define EV_ENGINE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef struct ev_engine {
    ev_kernels k;
    int n_ops, cap_ops;
    ev_op *ops;
    int32_t **params;
    uint8_t **packed;
    uint8_t *arena;
    size_t arena_size;
    int n_consts;
    uint8_t *consts;    /* one 64-byte-aligned block holding every constant */
    size_t *const_off, *const_len;
    uint8_t *scratch;
    size_t scratch_max;
    int threads;
    ev_pool pool;
    int pool_ready;
} ev_engine;

/* A tensor reference of an op: source -1 is the arena, k >= 0 is constant k; bytes [offset, offset + nbytes). */
typedef struct ev_tensor_ref {
    int64_t source, offset, nbytes;
} ev_tensor_ref;

/* Zeroed engine for `variant` (built and supported by this CPU), `threads` in 1..64, an arena of arena_size
 * bytes and copies of the constants. */
int ev_engine_init(ev_engine *e, const char *variant, int threads, size_t arena_size, int n_consts,
                   const void *const *const_data, const size_t *const_len, char *err, size_t errlen);
/* Append one op (its params are copied). */
int ev_engine_add_op(ev_engine *e, int kind, int items, const int32_t *params, int n_params, int n_tensors,
                     const ev_tensor_ref *tensors, size_t scratch_size, char *err, size_t errlen);
/* After the last op: allocate scratch, start the worker threads. */
int ev_engine_finish(ev_engine *e, char *err, size_t errlen);
/* Run every op in order (no allocation, no Python). */
void ev_engine_run(ev_engine *e);
void ev_engine_free(ev_engine *e);

#endif
