/* Guarded buffers for the C test drivers: [p, p + n) ends exactly at a PROT_NONE page, so a kernel that reads or
 * writes one byte past a tensor faults instead of passing by luck. */
#ifndef EV_TESTS_GUARDED_H
#define EV_TESTS_GUARDED_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    uint8_t *map, *p;
    size_t maplen, n;
} guarded;

static inline guarded guarded_alloc(size_t n) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t data_pages = (n + page - 1) / page;
    guarded g;
    g.maplen = (data_pages + 1) * page;
    g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.map == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    if (mprotect(g.map + data_pages * page, page, PROT_NONE) != 0) {
        perror("mprotect");
        exit(2);
    }
    g.p = g.map + data_pages * page - n;
    g.n = n;
    return g;
}

static inline void guarded_free(guarded *g) {
    munmap(g->map, g->maplen);
    g->map = g->p = NULL;
}

#endif /* EV_TESTS_GUARDED_H */
