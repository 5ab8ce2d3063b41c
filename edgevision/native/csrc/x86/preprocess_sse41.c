/* Fused preprocessing, SSE4.1 (compiled with -msse4.1): the reference's driver (ev_pp_run) with vector stages.
 * Same bytes as ev_preprocess_ref: see preprocess.h for the arithmetic and x86/preprocess_x86.h for the code. */
#include "preprocess_x86.h"

static void hrow_sse41(const ev_pp_plane *pl, const uint8_t *src, int vrow, int xa, int xb, uint16_t *colsum,
                       int32_t *h) {
    const int f = pl->f, ps = pl->pixel_stride, j0 = pl->x0[xa];
    const int span = (int)ev_pp_span(pl, xa, xb);
    const uint8_t *s = src + pl->base + (int64_t)(pl->crop_top + vrow * f) * pl->row_stride +
                       (int64_t)(pl->crop_left + j0 * f) * ps;
    ppx_colsum_sse(s, pl->row_stride, f, 0, span, colsum);
    memset(colsum + span, 0, 4 * sizeof(uint16_t)); /* the 4th lane of the last 3-byte pixel reads here */
    if (pl->channels == 3)
        ppx_taps4(pl, colsum, xa, xb, h);
    else
        ppx_taps1(pl, colsum, xa, xb, h);
}

static void orow_sse41(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                       const int32_t wy[3], int n, uint8_t *dst) {
    if (pl->mode == EV_PP_RGB || pl->mode == EV_PP_RGB_LUMA)
        ppx_orow4(pl, h0, h1, wy, n, dst);
    else
        ppx_orow1(pl, h0, h1, wy, n, dst);
}

void ev_preprocess_sse41(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                         int row_end) {
    static const ev_pp_stages stages = {hrow_sse41, orow_sse41};
    ev_pp_run(plan, src, dst, row_begin, row_end, &stages);
}
