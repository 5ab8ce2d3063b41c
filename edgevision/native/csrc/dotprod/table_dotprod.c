/* aarch64 dot-product kernels (SDOT, Armv8.2-A: Cortex-A76, Pi 5; compiled with
 * -march=armv8.2-a+dotprod). Empty slots run dotprod's fallback, neon.
 * A kernel listed here but not defined in any file is a weak NULL: an empty slot. */
#include "ev.h"

EV_DECLARE_KERNELS(dotprod)
EV_WEAK void ev_preprocess_dotprod(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                              int row_end);

const ev_kernels ev_kernels_dotprod = {
    .name = "dotprod",
    .ops = EV_KERNEL_SLOTS(dotprod),
    .preprocess = {ev_preprocess_dotprod, "ev_preprocess_dotprod"},
};
