/* Fused preprocessing, NEON: aarch64 (ASIMD) and 32-bit ARMv7 (-mfpu=neon) from the same source, so only
 * intrinsics both have (no vqtbl, vaddv, vmull_high). The reference's driver (ev_pp_run) with vector stages;
 * same bytes as ev_preprocess_ref, see preprocess.h for the arithmetic.
 *
 *   hrow: column sums with vaddw_u8 (16 bytes per step); 3-channel planes: one pixel (4 uint16 lanes) per
 *         vector through the box sum and the horizontal lerp; 1-channel planes: V in place over the column sums
 *         (f = 1: shift, f = 2: vpaddl), then 4 destination pixels per vector.
 *   orow: 8 destination pixels per step; the 4-lane H rows are de-interleaved by vld4q_s32 into one vector per
 *         byte of the pixel, the output interleaved by vst3_u8. */
#include <arm_neon.h>
#include <string.h>

#include "../preprocess.h"

#define PN_INLINE static inline __attribute__((always_inline))

PN_INLINE void colsum_neon(const uint8_t *s, int64_t rs, int f, int span, uint16_t *cs) {
    int b = 0;
    for (; b + 16 <= span; b += 16) {
        const uint8_t *p = s + b;
        uint16x8_t lo = vdupq_n_u16(0), hi = vdupq_n_u16(0);
        for (int a = 0; a < f; a++, p += rs) {
            const uint8x16_t v = vld1q_u8(p);
            lo = vaddw_u8(lo, vget_low_u8(v));
            hi = vaddw_u8(hi, vget_high_u8(v));
        }
        vst1q_u16(cs + b, lo);
        vst1q_u16(cs + b + 8, hi);
    }
    for (; b < span; b++) {
        const uint8_t *p = s + b;
        unsigned acc = 0;
        for (int a = 0; a < f; a++, p += rs) acc += *p;
        cs[b] = (uint16_t)acc;
    }
}

PN_INLINE int32x4_t lerp4(int32x4_t a, int32x4_t b, int32x4_t w) {
    const int32x4_t d = vmlaq_s32(vdupq_n_s32(1024), vsubq_s32(b, a), w); /* (b - a) * w + 1024 */
    return vaddq_s32(a, vshrq_n_s32(d, EV_PP_WBITS));
}

/* V of one pixel of a 3-channel plane, its 4 bytes as lanes (lane 3 of a 3-byte pixel is unused) */
PN_INLINE int32x4_t box4(const uint16_t *c, int f, int ps, uint32x4_t recip) {
    uint32x4_t acc;
    if (f <= 16) { /* f * f * 255 <= 65280 */
        uint16x4_t a = vld1_u16(c);
        for (int j = 1; j < f; j++) a = vadd_u16(a, vld1_u16(c + j * ps));
        acc = vmovl_u16(a);
    } else {
        acc = vmovl_u16(vld1_u16(c));
        for (int j = 1; j < f; j++) acc = vaddw_u16(acc, vld1_u16(c + j * ps));
    }
    acc = vmlaq_u32(vdupq_n_u32(1 << 14), acc, recip); /* B * recip + 2^14 < 2^31 */
    return vreinterpretq_s32_u32(vshrq_n_u32(acc, EV_PP_RECIP_SHIFT));
}

PN_INLINE int32_t box1(const uint16_t *c, int f, int32_t recip) {
    int32_t b = 0;
    for (int j = 0; j < f; j++) b += c[j];
    return (b * recip + (1 << 14)) >> EV_PP_RECIP_SHIFT;
}

static void taps4(const ev_pp_plane *pl, const uint16_t *cs, int xa, int xb, int32_t *h) {
    const int f = pl->f, ps = pl->pixel_stride, j0 = pl->x0[xa], step = f * ps;
    const uint32x4_t recip = vdupq_n_u32((uint32_t)pl->recip);
    int last = -1;
    int32x4_t vlast = vdupq_n_s32(0);
    for (int x = xa; x < xb; x++) {
        const int a = pl->x0[x], b = pl->x1[x];
        const int32x4_t v0 = a == last ? vlast : box4(cs + (a - j0) * step, f, ps, recip);
        const int32x4_t v1 = b == a ? v0 : box4(cs + (b - j0) * step, f, ps, recip);
        last = b;
        vlast = v1;
        vst1q_s32(h + 4 * (x - xa), lerp4(v0, v1, vdupq_n_s32(pl->wx[x])));
    }
}

/* 1-channel V in place over the column sums (V[j] written at j <= j*f after its inputs were read; up to 7
 * entries past the span are read and written inside the scratch, zero padding stays zero). */
static void vrow1(const ev_pp_plane *pl, uint16_t *cs, int n) {
    const int f = pl->f;
    if (f == 1) {
        for (int j = 0; j < n; j += 8) vst1q_u16(cs + j, vshlq_n_u16(vld1q_u16(cs + j), 8));
        return;
    }
    if (f == 2) {
        const uint32x4_t r = vdupq_n_u32((uint32_t)pl->recip), half = vdupq_n_u32(1 << 14);
        for (int j = 0; j < n; j += 4) {
            const uint32x4_t b = vpaddlq_u16(vld1q_u16(cs + 2 * j));
            vst1_u16(cs + j, vmovn_u32(vshrq_n_u32(vmlaq_u32(half, b, r), EV_PP_RECIP_SHIFT)));
        }
        return;
    }
    for (int j = 0; j < n; j++) cs[j] = (uint16_t)box1(cs + j * f, f, pl->recip);
}

static void taps1(const ev_pp_plane *pl, uint16_t *cs, int xa, int xb, int32_t *h) {
    const int j0 = pl->x0[xa];
    vrow1(pl, cs, pl->x1[xb - 1] + 1 - j0);
    const int32_t *x0 = pl->x0, *x1 = pl->x1, *wx = pl->wx;
    int x = xa;
    for (; x + 4 <= xb; x += 4) {
        int32_t ta[4], tb[4];
        for (int i = 0; i < 4; i++) {
            ta[i] = cs[x0[x + i] - j0];
            tb[i] = cs[x1[x + i] - j0];
        }
        vst1q_s32(h + x - xa, lerp4(vld1q_s32(ta), vld1q_s32(tb), vld1q_s32(wx + x)));
    }
    for (; x < xb; x++) {
        const int32_t a = cs[x0[x] - j0], b = cs[x1[x] - j0];
        h[x - xa] = a + (((b - a) * wx[x] + 1024) >> EV_PP_WBITS);
    }
}

static void hrow_neon(const ev_pp_plane *pl, const uint8_t *src, int vrow, int xa, int xb, uint16_t *colsum,
                      int32_t *h) {
    const int f = pl->f, ps = pl->pixel_stride, j0 = pl->x0[xa];
    const int span = (int)ev_pp_span(pl, xa, xb);
    const uint8_t *s = src + pl->base + (int64_t)(pl->crop_top + vrow * f) * pl->row_stride +
                       (int64_t)(pl->crop_left + j0 * f) * ps;
    colsum_neon(s, pl->row_stride, f, span, colsum);
    memset(colsum + span, 0, 4 * sizeof(uint16_t)); /* the 4th lane of the last 3-byte pixel reads here */
    if (pl->channels == 3)
        taps4(pl, colsum, xa, xb, h);
    else
        taps1(pl, colsum, xa, xb, h);
}

/* ---- output stages ---- */

typedef struct {
    int32x4_t a, nshift, qmin, qmax;
    int64x2_t b;
} pn_quant;

PN_INLINE pn_quant quant_make(const struct ev_preprocess_plan *pl, int k) {
    pn_quant q;
    q.a = vdupq_n_s32(pl->qa[k]);
    q.b = vdupq_n_s64(pl->qb[k]);
    q.nshift = vdupq_n_s32(-pl->qshift);
    q.qmin = vdupq_n_s32(pl->qmin);
    q.qmax = vdupq_n_s32(pl->qmax);
    return q;
}

/* clamp(floor((c * qa + qb) / 2^(32 + qshift)), qmin, qmax): vmlal_s32 (32x32 + 64), the high halves
 * (vshrn by 32), an arithmetic shift (vshl by -qshift). */
PN_INLINE int32x4_t quant4(int32x4_t c, const pn_quant *q) {
    const int64x2_t lo = vmlal_s32(q->b, vget_low_s32(c), vget_low_s32(q->a));
    const int64x2_t hi = vmlal_s32(q->b, vget_high_s32(c), vget_high_s32(q->a));
    int32x4_t r = vcombine_s32(vshrn_n_s64(lo, 32), vshrn_n_s64(hi, 32));
    r = vshlq_s32(r, q->nshift);
    return vminq_s32(vmaxq_s32(r, q->qmin), q->qmax);
}

/* the low bytes of 8 int32 (values in [-128, 255]) */
PN_INLINE uint8x8_t bytes8(int32x4_t a, int32x4_t b) {
    return vreinterpret_u8_s8(vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b))));
}

PN_INLINE int32x4_t luma4(int32x4_t r, int32x4_t g, int32x4_t b) {
    int32x4_t s = vmlaq_s32(vdupq_n_s32(1 << (EV_PP_LUMA_SHIFT - 1)), r, vdupq_n_s32(EV_PP_LUMA_R));
    s = vmlaq_s32(s, g, vdupq_n_s32(EV_PP_LUMA_G));
    s = vmlaq_s32(s, b, vdupq_n_s32(EV_PP_LUMA_B));
    return vshrq_n_s32(s, EV_PP_LUMA_SHIFT);
}

PN_INLINE void store3(uint8_t *dst, uint8x8x3_t v, int m) { /* m pixels of 3 bytes, m <= 8 */
    if (m == 8) {
        vst3_u8(dst, v);
        return;
    }
    uint8_t tmp[24];
    vst3_u8(tmp, v);
    memcpy(dst, tmp, (size_t)(3 * m));
}

PN_INLINE void store1(uint8_t *dst, uint8x8_t v, int m) {
    if (m == 8) {
        vst1_u8(dst, v);
        return;
    }
    uint8_t tmp[8];
    vst1_u8(tmp, v);
    memcpy(dst, tmp, (size_t)m);
}

/* 3-channel planes, with the channel bytes o0, o1, o2 as compile-time constants (after inlining), so the
 * de-interleaved vectors are picked without going through memory. Groups of 8 pixels; the last may compute up
 * to 7 pixels past n inside the H-row buffers (EV_PP_TILE_W pixels long, a multiple of 8) and stores n. */
PN_INLINE void orow4_t(const struct ev_preprocess_plan *pl, const int32_t *a, const int32_t *b, int32_t wy, int n,
                       uint8_t *dst, const int o0, const int o1, const int o2) {
    const int32x4_t w = vdupq_n_s32(wy);
    if (pl->mode == EV_PP_RGB_LUMA) {
        const pn_quant q = quant_make(pl, 0);
        for (int x = 0; x < n; x += 8) {
            int32x4_t l[2];
            for (int i = 0; i < 2; i++) {
                const int32x4x4_t p = vld4q_s32(a + 4 * (x + 4 * i)), r = vld4q_s32(b + 4 * (x + 4 * i));
                l[i] = quant4(luma4(lerp4(p.val[o0], r.val[o0], w), lerp4(p.val[o1], r.val[o1], w),
                                    lerp4(p.val[o2], r.val[o2], w)),
                              &q);
            }
            store1(dst + x, bytes8(l[0], l[1]), n - x < 8 ? n - x : 8);
        }
        return;
    }
    const pn_quant q0 = quant_make(pl, 0), q1 = quant_make(pl, 1), q2 = quant_make(pl, 2);
    for (int x = 0; x < n; x += 8) {
        int32x4_t c[3][2];
        for (int i = 0; i < 2; i++) {
            const int32x4x4_t p = vld4q_s32(a + 4 * (x + 4 * i)), r = vld4q_s32(b + 4 * (x + 4 * i));
            c[0][i] = quant4(lerp4(p.val[o0], r.val[o0], w), &q0);
            c[1][i] = quant4(lerp4(p.val[o1], r.val[o1], w), &q1);
            c[2][i] = quant4(lerp4(p.val[o2], r.val[o2], w), &q2);
        }
        uint8x8x3_t v;
        v.val[0] = bytes8(c[0][0], c[0][1]);
        v.val[1] = bytes8(c[1][0], c[1][1]);
        v.val[2] = bytes8(c[2][0], c[2][1]);
        store3(dst + 3 * x, v, n - x < 8 ? n - x : 8);
    }
}

/* gray / yuv: the channel values of 4 pixels at x */
PN_INLINE void colour4(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                       const int32x4_t wy[3], int x, int32x4_t out[3]) {
    const int32x4_t Y = lerp4(vld1q_s32(h0[0] + x), vld1q_s32(h1[0] + x), wy[0]);
    if (pl->mode == EV_PP_GRAY) {
        out[0] = out[1] = out[2] = Y;
        return;
    }
    const int32x4_t c32768 = vdupq_n_s32(32768);
    const int32x4_t y = vsubq_s32(Y, vdupq_n_s32(pl->yuv_yoff));
    const int32x4_t u = vsubq_s32(lerp4(vld1q_s32(h0[1] + x), vld1q_s32(h1[1] + x), wy[1]), c32768);
    const int32x4_t v = vsubq_s32(lerp4(vld1q_s32(h0[2] + x), vld1q_s32(h1[2] + x), wy[2]), c32768);
    const int32x4_t t = vmlaq_s32(vdupq_n_s32(1 << (EV_PP_YUV_SHIFT - 1)), y, vdupq_n_s32(pl->yuv_cy));
    int32x4_t rgb[3];
    for (int k = 0; k < 3; k++) {
        int32x4_t s = vmlaq_s32(t, u, vdupq_n_s32(pl->yuv_cu[k]));
        s = vmlaq_s32(s, v, vdupq_n_s32(pl->yuv_cv[k]));
        s = vshrq_n_s32(s, EV_PP_YUV_SHIFT);
        rgb[k] = vminq_s32(vmaxq_s32(s, vdupq_n_s32(0)), vdupq_n_s32(EV_PP_PMAX));
    }
    if (pl->out_c == 1) {
        out[0] = out[1] = out[2] = luma4(rgb[0], rgb[1], rgb[2]);
        return;
    }
    out[0] = rgb[0], out[1] = rgb[1], out[2] = rgb[2];
}

static void orow1(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                  const int32_t wy_[3], int n, uint8_t *dst) {
    const int32x4_t wy[3] = {vdupq_n_s32(wy_[0]), vdupq_n_s32(wy_[1]), vdupq_n_s32(wy_[2])};
    const pn_quant q0 = quant_make(pl, 0), q1 = quant_make(pl, pl->out_c == 3 ? 1 : 0),
                   q2 = quant_make(pl, pl->out_c == 3 ? 2 : 0);
    for (int x = 0; x < n; x += 8) {
        int32x4_t c[2][3];
        colour4(pl, h0, h1, wy, x, c[0]);
        colour4(pl, h0, h1, wy, x + 4, c[1]);
        const int m = n - x < 8 ? n - x : 8;
        if (pl->out_c == 1) {
            store1(dst + x, bytes8(quant4(c[0][0], &q0), quant4(c[1][0], &q0)), m);
            continue;
        }
        uint8x8x3_t v;
        v.val[0] = bytes8(quant4(c[0][0], &q0), quant4(c[1][0], &q0));
        v.val[1] = bytes8(quant4(c[0][1], &q1), quant4(c[1][1], &q1));
        v.val[2] = bytes8(quant4(c[0][2], &q2), quant4(c[1][2], &q2));
        store3(dst + 3 * x, v, m);
    }
}

static void orow_neon(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                      const int32_t wy[3], int n, uint8_t *dst) {
    if (pl->mode != EV_PP_RGB && pl->mode != EV_PP_RGB_LUMA) {
        orow1(pl, h0, h1, wy, n, dst);
        return;
    }
    const int32_t *o = pl->planes[0].chan_off;
    if (o[0] == 0 && o[1] == 1 && o[2] == 2)
        orow4_t(pl, h0[0], h1[0], wy[0], n, dst, 0, 1, 2);
    else if (o[0] == 2 && o[1] == 1 && o[2] == 0)
        orow4_t(pl, h0[0], h1[0], wy[0], n, dst, 2, 1, 0);
    else /* a channel layout no frame format has today: the reference stage (same layout of H) */
        ev_pp_orow_ref(pl, h0, h1, wy, n, dst);
}

void ev_preprocess_neon(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                        int row_end) {
    static const ev_pp_stages stages = {hrow_neon, orow_neon};
    ev_pp_run(plan, src, dst, row_begin, row_end, &stages);
}
