/* AVX2 kernels (compiled with -mavx2). Empty slots run avx2's fallback, sse41.
 * A kernel listed here but not defined in any file is a weak NULL: an empty slot. */
#include "ev.h"

EV_DECLARE_KERNELS(avx2)
EV_WEAK void ev_preprocess_avx2(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                              int row_end);

const ev_kernels ev_kernels_avx2 = {
    .name = "avx2",
    .ops = EV_KERNEL_SLOTS(avx2),
    .preprocess = {ev_preprocess_avx2, "ev_preprocess_avx2"},
};
