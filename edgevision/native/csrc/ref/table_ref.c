/* The scalar reference kernels: the spec every other variant must match byte for byte.
 * A kernel listed here but not defined in any file is a weak NULL: an empty slot. */
#include "ev.h"

EV_DECLARE_KERNELS(ref)
EV_WEAK void ev_preprocess_ref(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                              int row_end);

const ev_kernels ev_kernels_ref = {
    .name = "ref",
    .ops = EV_KERNEL_SLOTS(ref),
    .preprocess = {ev_preprocess_ref, "ev_preprocess_ref"},
};
