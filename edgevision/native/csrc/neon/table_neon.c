/* NEON kernels for aarch64 (baseline ASIMD) and 32-bit ARMv7 (compiled with -mfpu=neon). Empty slots run ref.
 * A kernel listed here but not defined in any file is a weak NULL: an empty slot. */
#include "ev.h"

EV_DECLARE_KERNELS(neon)
EV_WEAK void ev_preprocess_neon(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                              int row_end);

const ev_kernels ev_kernels_neon = {
    .name = "neon",
    .ops = EV_KERNEL_SLOTS(neon),
    .preprocess = {ev_preprocess_neon, "ev_preprocess_neon"},
};
