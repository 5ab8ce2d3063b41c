/* The scalar reference of the fused preprocessing kernel: the spec (see preprocess.h for the arithmetic, step by
 * step). Also the plan check and the driver every variant shares (row range, letterbox fill, column tiles, the
 * H-row cache); variants replace the two stages, hrow and orow.
 *
 * ">>" on a negative int32/int64 is an arithmetic shift (floor division by a power of two) with GCC and Clang,
 * which is what the spec means by it; the numpy twin uses numpy's >>, also arithmetic. */
#include <stdio.h>
#include <string.h>

#include "preprocess.h"

/* ---------------------------------------------------------------------------------------------------------- */
/* Plan check: every index, size and constant a kernel relies on.                                               */

#define FAIL(...)                                  \
    do {                                           \
        snprintf(err, errlen, __VA_ARGS__);        \
        return -1;                                 \
    } while (0)

static int check_axis(const int32_t *i0, const int32_t *i1, const int32_t *w, int n_out, int n_in, const char *axis,
                      int p, char *err, size_t errlen) {
    if (!i0 || !i1 || !w) FAIL("plane %d: missing %s table", p, axis);
    for (int o = 0; o < n_out; o++) {
        if (i0[o] < 0 || i0[o] >= n_in) FAIL("plane %d: %s0[%d] = %d outside [0, %d)", p, axis, o, (int)i0[o], n_in);
        if (i1[o] != i0[o] && i1[o] != i0[o] + 1)
            FAIL("plane %d: %s1[%d] = %d is neither %s0 nor %s0 + 1", p, axis, o, (int)i1[o], axis, axis);
        if (i1[o] >= n_in) FAIL("plane %d: %s1[%d] = %d outside [0, %d)", p, axis, o, (int)i1[o], n_in);
        if (w[o] < 0 || w[o] > 2048) FAIL("plane %d: weight w%s[%d] = %d outside [0, 2048]", p, axis, o, (int)w[o]);
        if (o > 0 && (i0[o] < i0[o - 1] || i1[o] < i1[o - 1])) FAIL("plane %d: %s tables not increasing at %d", p, axis, o);
    }
    return 0;
}

int ev_preprocess_plan_check(struct ev_preprocess_plan *pl, char *err, size_t errlen) {
    const int M = EV_PP_MAX_DIM;
    if (pl->mode < EV_PP_RGB || pl->mode > EV_PP_YUV) FAIL("unknown mode %d", (int)pl->mode);
    if (pl->out_h < 1 || pl->out_h > M || pl->out_w < 1 || pl->out_w > M)
        FAIL("output size %dx%d outside 1..%d", (int)pl->out_h, (int)pl->out_w, M);
    if (pl->out_c != 1 && pl->out_c != 3) FAIL("output channels must be 1 or 3, got %d", (int)pl->out_c);
    if (pl->dh < 1 || pl->dw < 1 || pl->dt < 0 || pl->dl < 0 || pl->dt > pl->out_h - pl->dh ||
        pl->dl > pl->out_w - pl->dw)
        FAIL("destination rectangle (%d, %d, %d, %d) not inside the %dx%d output", (int)pl->dt, (int)pl->dl,
             (int)pl->dh, (int)pl->dw, (int)pl->out_h, (int)pl->out_w);
    int want_planes = pl->mode == EV_PP_YUV ? 3 : 1;
    int want_ch = (pl->mode == EV_PP_RGB || pl->mode == EV_PP_RGB_LUMA) ? 3 : 1;
    if (pl->n_planes != want_planes) FAIL("mode %d needs %d planes, got %d", (int)pl->mode, want_planes, (int)pl->n_planes);
    if (pl->mode == EV_PP_RGB && pl->out_c != 3) FAIL("mode RGB needs 3 output channels");
    if (pl->mode == EV_PP_RGB_LUMA && pl->out_c != 1) FAIL("mode RGB_LUMA needs 1 output channel");
    int64_t src_size = 0;
    for (int p = 0; p < pl->n_planes; p++) {
        const ev_pp_plane *q = &pl->planes[p];
        if (q->channels != want_ch) FAIL("plane %d: %d channels, mode needs %d", p, (int)q->channels, want_ch);
        if (want_ch == 3 ? (q->pixel_stride != 3 && q->pixel_stride != 4) : q->pixel_stride != 1)
            FAIL("plane %d: pixel stride %d invalid for %d channels", p, (int)q->pixel_stride, (int)q->channels);
        for (int k = 0; k < q->channels; k++) {
            if (q->chan_off[k] < 0 || q->chan_off[k] >= q->pixel_stride)
                FAIL("plane %d: channel %d at byte %d of a %d-byte pixel", p, k, (int)q->chan_off[k], (int)q->pixel_stride);
            for (int m = 0; m < k; m++)
                if (q->chan_off[m] == q->chan_off[k]) FAIL("plane %d: channels %d and %d read the same byte", p, m, k);
        }
        if (q->width < 1 || q->width > M || q->height < 1 || q->height > M)
            FAIL("plane %d: size %dx%d outside 1..%d", p, (int)q->width, (int)q->height, M);
        if (q->base < 0 || q->row_stride < (int64_t)q->width * q->pixel_stride)
            FAIL("plane %d: row stride %d < width %d x %d bytes", p, (int)q->row_stride, (int)q->width, (int)q->pixel_stride);
        if (q->f < 1 || q->f > EV_PP_MAX_F) FAIL("plane %d: box factor %d outside 1..%d", p, (int)q->f, EV_PP_MAX_F);
        if (q->recip != (int32_t)((1u << 23) / (uint32_t)(q->f * q->f))) FAIL("plane %d: recip %d != floor(2^23/f^2)", p, (int)q->recip);
        if (q->vw < 1 || q->vh < 1 || q->crop_top < 0 || q->crop_left < 0 ||
            (int64_t)q->crop_top + (int64_t)q->vh * q->f > q->height ||
            (int64_t)q->crop_left + (int64_t)q->vw * q->f > q->width)
            FAIL("plane %d: crop (%d, %d) + %dx%d blocks of %d does not fit the %dx%d plane", p, (int)q->crop_top,
                 (int)q->crop_left, (int)q->vh, (int)q->vw, (int)q->f, (int)q->height, (int)q->width);
        if (check_axis(q->x0, q->x1, q->wx, pl->dw, q->vw, "x", p, err, errlen)) return -1;
        if (check_axis(q->y0, q->y1, q->wy, pl->dh, q->vh, "y", p, err, errlen)) return -1;
        int64_t end = q->base + (int64_t)(q->height - 1) * q->row_stride + (int64_t)q->width * q->pixel_stride;
        if (end > src_size) src_size = end;
    }
    if (pl->qmin == -128 ? pl->qmax != 127 : (pl->qmin != 0 || pl->qmax != 255))
        FAIL("quantised range [%d, %d] is neither int8 nor uint8", (int)pl->qmin, (int)pl->qmax);
    if (pl->fill < pl->qmin || pl->fill > pl->qmax) FAIL("fill %d outside [%d, %d]", (int)pl->fill, (int)pl->qmin, (int)pl->qmax);
    if (pl->qshift < 0 || pl->qshift > 31) FAIL("qshift %d outside 0..31", (int)pl->qshift);
    for (int k = 0; k < pl->out_c; k++) {
        if (pl->qa[k] == INT32_MIN) FAIL("qa[%d] out of range", k);
        if (pl->qb[k] <= -((int64_t)1 << 61) || pl->qb[k] >= ((int64_t)1 << 61)) FAIL("qb[%d] outside (-2^61, 2^61)", k);
    }
    if (pl->mode == EV_PP_YUV) {
        if (pl->yuv_yoff < 0 || pl->yuv_yoff > EV_PP_PMAX) FAIL("yuv_yoff %d outside [0, 65280]", (int)pl->yuv_yoff);
        for (int k = 0; k < 3; k++) {
            int64_t cy = pl->yuv_cy < 0 ? -(int64_t)pl->yuv_cy : pl->yuv_cy;
            int64_t cu = pl->yuv_cu[k] < 0 ? -(int64_t)pl->yuv_cu[k] : pl->yuv_cu[k];
            int64_t cv = pl->yuv_cv[k] < 0 ? -(int64_t)pl->yuv_cv[k] : pl->yuv_cv[k];
            if (cy * EV_PP_PMAX + (cu + cv) * 32768 + 4096 >= ((int64_t)1 << 31))
                FAIL("YUV coefficients of channel %d overflow int32", k);
        }
    }
    pl->src_size = src_size;
    return 0;
}

#undef FAIL

/* ---------------------------------------------------------------------------------------------------------- */
/* Stage hrow: column sums over the f rows of V row `vrow`, then per destination column and channel the box sum  */
/* of f column sums, normalised (step 1), and the horizontal bilinear pass (step 2).                             */

static inline int32_t box_value(const uint16_t *c, int f, int ps, int32_t recip) {
    int32_t b = 0; /* B: sum of f column sums, <= 64*64*255 */
    for (int j = 0; j < f; j++) b += c[j * ps];
    return (b * recip + (1 << (EV_PP_RECIP_SHIFT - 1))) >> EV_PP_RECIP_SHIFT; /* V, <= 65280 */
}

void ev_pp_hrow_ref(const ev_pp_plane *pl, const uint8_t *src, int vrow, int xa, int xb, uint16_t *colsum,
                    int32_t *h) {
    const int f = pl->f, ps = pl->pixel_stride, L = pl->channels == 3 ? 4 : 1;
    const int j0 = pl->x0[xa];
    const int span = (int)ev_pp_span(pl, xa, xb);
    const uint8_t *s = src + pl->base + (int64_t)(pl->crop_top + vrow * f) * pl->row_stride +
                       (int64_t)(pl->crop_left + j0 * f) * ps;
    /* colsum[b] = sum of the f source rows' byte b (<= 64*255, fits uint16) */
    for (int b = 0; b < span; b++) colsum[b] = s[b];
    for (int a = 1; a < f; a++) {
        s += pl->row_stride;
        for (int b = 0; b < span; b++) colsum[b] += s[b];
    }
    for (int x = xa; x < xb; x++) {
        const uint16_t *c0 = colsum + (pl->x0[x] - j0) * f * ps, *c1 = colsum + (pl->x1[x] - j0) * f * ps;
        const int32_t w = pl->wx[x];
        int32_t *o = h + (x - xa) * L;
        for (int k = 0; k < pl->channels; k++) {
            const int off = pl->chan_off[k];
            const int32_t v0 = box_value(c0 + off, f, ps, pl->recip), v1 = box_value(c1 + off, f, ps, pl->recip);
            o[L == 4 ? off : 0] = v0 + (((v1 - v0) * w + 1024) >> EV_PP_WBITS);
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Stage orow: vertical bilinear pass (step 2), colour (step 3), quantisation (step 4).                        */

static inline int32_t lerp(int32_t a, int32_t b, int32_t w) { return a + (((b - a) * w + 1024) >> EV_PP_WBITS); }

static inline int32_t clampi(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static inline int32_t luma(int32_t r, int32_t g, int32_t b) {
    return (EV_PP_LUMA_R * r + EV_PP_LUMA_G * g + EV_PP_LUMA_B * b + (1 << (EV_PP_LUMA_SHIFT - 1))) >> EV_PP_LUMA_SHIFT;
}

static inline uint8_t quant(const struct ev_preprocess_plan *pl, int k, int32_t c) {
    const int64_t v = (int64_t)c * pl->qa[k] + pl->qb[k];
    const int32_t q = (int32_t)(v >> 32) >> pl->qshift; /* floor(v / 2^(32 + qshift)) */
    return (uint8_t)clampi(q, pl->qmin, pl->qmax);      /* the byte of an int8 or uint8 */
}

void ev_pp_orow_ref(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                    const int32_t wy[3], int n, uint8_t *dst) {
    const int C = pl->out_c;
    for (int x = 0; x < n; x++) {
        int32_t c[3];
        switch (pl->mode) {
        case EV_PP_RGB:
        case EV_PP_RGB_LUMA: {
            const int32_t *a = h0[0] + 4 * x, *b = h1[0] + 4 * x;
            const int32_t *off = pl->planes[0].chan_off;
            for (int k = 0; k < 3; k++) c[k] = lerp(a[off[k]], b[off[k]], wy[0]);
            if (pl->mode == EV_PP_RGB_LUMA) c[0] = luma(c[0], c[1], c[2]);
            break;
        }
        case EV_PP_GRAY:
            c[0] = c[1] = c[2] = lerp(h0[0][x], h1[0][x], wy[0]);
            break;
        default: { /* EV_PP_YUV */
            const int32_t y = lerp(h0[0][x], h1[0][x], wy[0]) - pl->yuv_yoff;
            const int32_t u = lerp(h0[1][x], h1[1][x], wy[1]) - 32768;
            const int32_t v = lerp(h0[2][x], h1[2][x], wy[2]) - 32768;
            for (int k = 0; k < 3; k++)
                c[k] = clampi((pl->yuv_cy * y + pl->yuv_cu[k] * u + pl->yuv_cv[k] * v + (1 << (EV_PP_YUV_SHIFT - 1))) >>
                                  EV_PP_YUV_SHIFT,
                              0, EV_PP_PMAX);
            if (C == 1) c[0] = luma(c[0], c[1], c[2]);
            break;
        }
        }
        for (int k = 0; k < C; k++) dst[x * C + k] = quant(pl, k, c[k]);
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The driver.                                                                                                 */

/* The end of the column tile starting at xa: at most EV_PP_TILE_W pixels, every plane's span <= the cap (one
 * pixel always fits: 2 V columns * 64 * 4 bytes). */
static int tile_end(const struct ev_preprocess_plan *pl, int xa) {
    int lim = pl->dw - xa < EV_PP_TILE_W ? pl->dw : xa + EV_PP_TILE_W;
    int xb = xa + 1;
    while (xb < lim) {
        int ok = 1;
        for (int p = 0; p < pl->n_planes; p++)
            if (ev_pp_span(&pl->planes[p], xa, xb + 1) > EV_PP_COLSUM_CAP) ok = 0;
        if (!ok) break;
        xb++;
    }
    return xb;
}

void ev_pp_run(const struct ev_preprocess_plan *pl, const uint8_t *src, void *dst_, int row_begin, int row_end,
               const ev_pp_stages *st) {
    uint8_t *dst = dst_;
    const int C = pl->out_c;
    const size_t row_bytes = (size_t)pl->out_w * C;
    const uint8_t fill = (uint8_t)pl->fill;
    if (row_begin < 0) row_begin = 0;
    if (row_end > pl->out_h) row_end = pl->out_h;
    /* letterbox bars */
    for (int r = row_begin; r < row_end; r++) {
        uint8_t *d = dst + (size_t)r * row_bytes;
        if (r < pl->dt || r >= pl->dt + pl->dh) {
            memset(d, fill, row_bytes);
            continue;
        }
        memset(d, fill, (size_t)pl->dl * C);
        memset(d + (size_t)(pl->dl + pl->dw) * C, fill, (size_t)(pl->out_w - pl->dl - pl->dw) * C);
    }
    const int ya = (row_begin > pl->dt ? row_begin : pl->dt) - pl->dt;
    const int yb = (row_end < pl->dt + pl->dh ? row_end : pl->dt + pl->dh) - pl->dt;
    if (ya >= yb) return;

    /* Stack scratch: two H rows per plane (the V rows y0 and y1 of the current destination row), column sums. */
    int32_t hbuf[3][2][EV_PP_TILE_W * 4] __attribute__((aligned(64)));
    uint16_t colsum[EV_PP_COLSUM_CAP + EV_PP_COLSUM_PAD] __attribute__((aligned(64)));
    memset(colsum + EV_PP_COLSUM_CAP, 0, EV_PP_COLSUM_PAD * sizeof(uint16_t));
    memset(hbuf, 0, sizeof hbuf); /* vector stages may compute (and discard) up to 3 pixels past a tile's end */

    for (int xa = 0, xb; xa < pl->dw; xa = xb) {
        xb = tile_end(pl, xa);
        int tag[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}; /* which V row each H row holds */
        for (int y = ya; y < yb; y++) {
            const int32_t *h0[3] = {NULL, NULL, NULL}, *h1[3] = {NULL, NULL, NULL};
            int32_t wy[3] = {0, 0, 0};
            for (int p = 0; p < pl->n_planes; p++) {
                const ev_pp_plane *q = &pl->planes[p];
                const int a = q->y0[y], b = q->y1[y];
                int sa = tag[p][0] == a ? 0 : tag[p][1] == a ? 1 : -1;
                if (sa < 0) {
                    sa = tag[p][0] == b ? 1 : 0; /* keep b if it is cached */
                    st->hrow(q, src, a, xa, xb, colsum, hbuf[p][sa]);
                    tag[p][sa] = a;
                }
                int sb = tag[p][0] == b ? 0 : tag[p][1] == b ? 1 : -1;
                if (sb < 0) {
                    sb = 1 - sa;
                    st->hrow(q, src, b, xa, xb, colsum, hbuf[p][sb]);
                    tag[p][sb] = b;
                }
                h0[p] = hbuf[p][sa];
                h1[p] = hbuf[p][sb];
                wy[p] = q->wy[y];
            }
            st->orow(pl, h0, h1, wy, xb - xa, dst + (size_t)(pl->dt + y) * row_bytes + (size_t)(pl->dl + xa) * C);
        }
    }
}

void ev_preprocess_ref(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                       int row_end) {
    static const ev_pp_stages stages = {ev_pp_hrow_ref, ev_pp_orow_ref};
    ev_pp_run(plan, src, dst, row_begin, row_end, &stages);
}
