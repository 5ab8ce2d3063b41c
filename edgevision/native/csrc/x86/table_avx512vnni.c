/* AVX-512 VNNI kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni). Empty slots run
 * avx512vnni's fallback, avx2 (the elementwise kernels and preprocessing among them).
 * A kernel listed here but not defined in any file is a weak NULL: an empty slot. */
#include "ev.h"

EV_DECLARE_KERNELS(avx512vnni)
EV_WEAK void ev_preprocess_avx512vnni(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst,
                                      int row_begin, int row_end);

const ev_kernels ev_kernels_avx512vnni = {
    .name = "avx512vnni",
    .ops = EV_KERNEL_SLOTS(avx512vnni),
    .preprocess = {ev_preprocess_avx512vnni, "ev_preprocess_avx512vnni"},
};
