/* A small thread pool: every op is split into `threads` contiguous ranges of its work items; the caller runs
 * range 0 and waits for the workers. Kernels never allocate and never touch Python.
 *
 * An inference is a few dozen ops of tens to hundreds of microseconds each, so waking a sleeping thread per op
 * (a futex round trip: 10-50 us on a busy machine) would eat the gain of a second core. Workers and the caller
 * therefore spin briefly on atomics before they block on the condition variables; a worker that found no new
 * job within the spin blocks until the next one, so an idle engine sleeps.
 *
 * Wake-up race: a worker announces itself in `sleepers` before its last look at `generation`, and the caller
 * bumps `generation` before it looks at `sleepers` (all sequentially consistent), so either the worker sees
 * the new job or the caller sees the sleeper and broadcasts under the mutex. */
#include <sched.h>
#include <stdlib.h>

#include "engine.h"

#if defined(__x86_64__) || defined(__i386__)
#define EV_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define EV_CPU_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define EV_CPU_RELAX() ((void)0)
#endif

/* Waiting, in three stages: EV_SPIN relax-loop iterations (a few microseconds: the common case on an idle core),
 * then EV_YIELDS sched_yield() calls (hands the core to a runnable thread, e.g. the very worker being waited for
 * on a busy machine), then blocking. Longer spinning measured worse on a loaded 2-core machine: a spinning
 * thread steals the core the awaited one needs. */
#define EV_SPIN 300
#define EV_YIELDS 30

typedef struct {
    ev_pool *p;
    int t;
} worker_arg;

static void *worker(void *arg_) {
    worker_arg *arg = arg_;
    ev_pool *p = arg->p;
    int t = arg->t;
    free(arg);
    unsigned long seen = 0;
    for (;;) {
        unsigned long g;
        int spins = 0;
        while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->quit)) {
            if (++spins < EV_SPIN) {
                EV_CPU_RELAX();
                continue;
            }
            if (spins < EV_SPIN + EV_YIELDS) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->go, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        const ev_op *op = p->op;
        ev_op_fn fn = p->fn;
        int b, e;
        ev_split(op->items, p->threads, t, &b, &e);
        if (b < e) fn(op, b, e, t);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int ev_pool_init(ev_pool *p, int threads) {
    p->threads = threads < 1 ? 1 : threads;
    p->tids = NULL;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->quit, 0);
    atomic_init(&p->sleepers, 0);
    p->op = NULL;
    p->fn = NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (p->threads == 1) return 0;
    p->tids = calloc((size_t)p->threads, sizeof(pthread_t));
    if (!p->tids) return -1;
    for (int t = 1; t < p->threads; t++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) {
            p->threads = t;
            return -1;
        }
        a->p = p;
        a->t = t;
        if (pthread_create(&p->tids[t], NULL, worker, a) != 0) {
            free(a);
            p->threads = t; /* the ones started so far, so destroy() joins exactly those */
            return -1;
        }
    }
    return 0;
}

void ev_pool_run(ev_pool *p, const ev_op *op, ev_op_fn fn) {
    int workers = p->threads - 1;
    if (workers == 0 || op->items < 2) {
        if (op->items > 0) fn(op, 0, op->items, 0);
        return;
    }
    p->op = op;
    p->fn = fn;
    atomic_store(&p->pending, workers);
    atomic_fetch_add(&p->generation, 1); /* publishes op/fn/pending to the workers */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    int b, e;
    ev_split(op->items, p->threads, 0, &b, &e);
    if (b < e) fn(op, b, e, 0);
    for (int spins = 0; atomic_load(&p->pending) > 0; spins++) {
        if (spins < EV_SPIN) {
            EV_CPU_RELAX();
            continue;
        }
        if (spins < EV_SPIN + EV_YIELDS) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
        break;
    }
}

void ev_pool_destroy(ev_pool *p) {
    if (p->tids) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->quit, 1);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
        for (int t = 1; t < p->threads; t++) pthread_join(p->tids[t], NULL);
        free(p->tids);
        p->tids = NULL;
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
}
