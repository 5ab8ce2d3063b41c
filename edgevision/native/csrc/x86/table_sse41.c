/* SSE4.1 kernels (compiled with -msse4.1). Empty slots run sse41's fallback, ref.
 * A kernel listed here but not defined in any file is a weak NULL: an empty slot. */
#include "ev.h"

EV_DECLARE_KERNELS(sse41)
EV_WEAK void ev_preprocess_sse41(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                              int row_end);

const ev_kernels ev_kernels_sse41 = {
    .name = "sse41",
    .ops = EV_KERNEL_SLOTS(sse41),
    .preprocess = {ev_preprocess_sse41, "ev_preprocess_sse41"},
};
