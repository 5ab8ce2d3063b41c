/* A minimal thread pool: every op is split into `threads` contiguous ranges of its work items; the caller runs
 * range 0 and waits for the workers. Kernels never allocate and never touch Python. */
#include <stdlib.h>

#include "engine.h"

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
        pthread_mutex_lock(&p->mu);
        while (p->generation == seen && !p->quit) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        const ev_op *op = p->op;
        ev_op_fn fn = p->fn;
        pthread_mutex_unlock(&p->mu);
        int b, e;
        ev_split(op->items, p->threads, t, &b, &e);
        if (b < e) fn(op, b, e, t);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

int ev_pool_init(ev_pool *p, int threads) {
    p->threads = threads < 1 ? 1 : threads;
    p->tids = NULL;
    p->generation = 0;
    p->pending = 0;
    p->quit = 0;
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
        if (!a) return -1;
        a->p = p;
        a->t = t;
        if (pthread_create(&p->tids[t], NULL, worker, a) != 0) {
            free(a);
            p->threads = t; /* the ones started so far */
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
    pthread_mutex_lock(&p->mu);
    p->op = op;
    p->fn = fn;
    p->pending = workers;
    p->generation++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    int b, e;
    ev_split(op->items, p->threads, 0, &b, &e);
    if (b < e) fn(op, b, e, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void ev_pool_destroy(ev_pool *p) {
    if (p->tids) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
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
