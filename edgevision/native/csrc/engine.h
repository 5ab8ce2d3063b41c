#ifndef EV_ENGINE_H
#define EV_ENGINE_H
#include <pthread.h>
#include <stdatomic.h>

#include "ev.h"

/* A worker pool that runs one op's items split across threads; thread 0 is the caller. */
typedef struct ev_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_ulong generation; /* bumped per job */
    atomic_int pending;      /* workers still running the current job */
    atomic_int quit;
    atomic_int sleepers;     /* workers blocked on `go` */
    const ev_op *op;
    ev_op_fn fn;
} ev_pool;

int ev_pool_init(ev_pool *p, int threads);
void ev_pool_run(ev_pool *p, const ev_op *op, ev_op_fn fn);
void ev_pool_destroy(ev_pool *p);

/* [begin, end) of thread t's share of n items split across `threads` */
static inline void ev_split(int n, int threads, int t, int *begin, int *end) {
    long long b = (long long)n * t / threads, e = (long long)n * (t + 1) / threads;
    *begin = (int)b;
    *end = (int)e;
}

/* The check function of each kind (weak: NULL until the kind is implemented). */
ev_check_fn ev_check_for(int kind);

#endif
