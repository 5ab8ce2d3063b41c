/* SSE4.1 building blocks of the fused preprocessing kernel, shared by preprocess_sse41.c and preprocess_avx2.c
 * (each includes this and is compiled with its own flags, so the AVX2 build gets VEX encodings). Every function
 * computes exactly the integer formulas of ref/preprocess_ref.c (see preprocess.h); only the layout of the work
 * differs. Static: nothing here is a symbol of its own. */
#ifndef EV_PREPROCESS_X86_H
#define EV_PREPROCESS_X86_H

#include <smmintrin.h>
#include <string.h>

#include "../preprocess.h"

/* colsum[b] = sum over the f rows (rs bytes apart) of s[b], b in [from, span); 16 bytes at a time, never
 * reading past s + span in any row. */
static inline void ppx_colsum_sse(const uint8_t *s, int64_t rs, int f, int from, int span, uint16_t *cs) {
    const __m128i z = _mm_setzero_si128();
    int b = from;
    for (; b + 16 <= span; b += 16) {
        const uint8_t *p = s + b;
        __m128i lo = z, hi = z;
        for (int a = 0; a < f; a++, p += rs) {
            const __m128i v = _mm_loadu_si128((const __m128i *)p);
            lo = _mm_add_epi16(lo, _mm_unpacklo_epi8(v, z));
            hi = _mm_add_epi16(hi, _mm_unpackhi_epi8(v, z));
        }
        _mm_storeu_si128((__m128i *)(cs + b), lo);
        _mm_storeu_si128((__m128i *)(cs + b + 8), hi);
    }
    for (; b < span; b++) {
        const uint8_t *p = s + b;
        unsigned acc = 0;
        for (int a = 0; a < f; a++, p += rs) acc += *p;
        cs[b] = (uint16_t)acc;
    }
}

/* V of one pixel of a 3-channel plane, all 4 bytes of it: lanes = bytes of the pixel (lane 3 of a 3-byte pixel
 * is the next pixel's byte 0, or zero padding; never used). c: colsum at the pixel's block start. */
static inline __m128i ppx_box4(const uint16_t *c, int f, int ps, __m128i recip) {
    __m128i acc;
    if (f <= 16) { /* f * (f * 255) <= 65280: the uint16 sum cannot wrap */
        __m128i a16 = _mm_loadl_epi64((const __m128i *)c);
        for (int j = 1; j < f; j++) a16 = _mm_add_epi16(a16, _mm_loadl_epi64((const __m128i *)(c + j * ps)));
        acc = _mm_cvtepu16_epi32(a16);
    } else {
        acc = _mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)c));
        for (int j = 1; j < f; j++) acc = _mm_add_epi32(acc, _mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)(c + j * ps))));
    }
    /* (B * recip + 2^14) >> 15: B * recip < 2^31 */
    return _mm_srli_epi32(_mm_add_epi32(_mm_mullo_epi32(acc, recip), _mm_set1_epi32(1 << 14)), EV_PP_RECIP_SHIFT);
}

/* a + (((b - a) * w + 1024) >> 11), lane-wise */
static inline __m128i ppx_lerp(__m128i a, __m128i b, __m128i w) {
    const __m128i d = _mm_mullo_epi32(_mm_sub_epi32(b, a), w);
    return _mm_add_epi32(a, _mm_srai_epi32(_mm_add_epi32(d, _mm_set1_epi32(1024)), EV_PP_WBITS));
}

/* scalar V of one channel: the reference formula */
static inline int32_t ppx_box1(const uint16_t *c, int f, int ps, int32_t recip) {
    int32_t b = 0;
    for (int j = 0; j < f; j++) b += c[j * ps];
    return (b * recip + (1 << 14)) >> EV_PP_RECIP_SHIFT;
}

/* Horizontal pass of a 3-channel plane (4 lanes per pixel) from the column sums; cs holds the tile's span. */
static inline void ppx_taps4(const ev_pp_plane *pl, const uint16_t *cs, int xa, int xb, int32_t *h) {
    const int f = pl->f, ps = pl->pixel_stride, j0 = pl->x0[xa], step = f * ps;
    const __m128i recip = _mm_set1_epi32(pl->recip);
    int last = -1;
    __m128i vlast = _mm_setzero_si128();
    for (int x = xa; x < xb; x++) {
        const int a = pl->x0[x], b = pl->x1[x];
        const __m128i v0 = a == last ? vlast : ppx_box4(cs + (a - j0) * step, f, ps, recip);
        const __m128i v1 = b == a ? v0 : ppx_box4(cs + (b - j0) * step, f, ps, recip);
        last = b;
        vlast = v1;
        _mm_storeu_si128((__m128i *)(h + 4 * (x - xa)), ppx_lerp(v0, v1, _mm_set1_epi32(pl->wx[x])));
    }
}

/* V of the n V columns of a 1-channel plane's span, in place over the column sums (V <= 65280 fits uint16;
 * V[j] is written at j <= j*f, after its inputs were read). Reads and writes may run up to 7 entries past the
 * span, inside the scratch (whose zero padding stays zero: 0 in, 0 out). */
static inline void ppx_vrow1(const ev_pp_plane *pl, uint16_t *cs, int n) {
    const int f = pl->f;
    const int32_t recip = pl->recip;
    if (f == 1) { /* (c * 2^23 + 2^14) >> 15 = c * 256 */
        for (int j = 0; j < n; j += 8)
            _mm_storeu_si128((__m128i *)(cs + j), _mm_slli_epi16(_mm_loadu_si128((const __m128i *)(cs + j)), 8));
        return;
    }
    if (f == 2) { /* pair sums (<= 4 * 255) with pmaddwd */
        const __m128i one = _mm_set1_epi16(1), r = _mm_set1_epi32(recip), half = _mm_set1_epi32(1 << 14);
        for (int j = 0; j < n; j += 4) {
            __m128i b = _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(cs + 2 * j)), one);
            b = _mm_srli_epi32(_mm_add_epi32(_mm_mullo_epi32(b, r), half), EV_PP_RECIP_SHIFT);
            _mm_storel_epi64((__m128i *)(cs + j), _mm_packus_epi32(b, b));
        }
        return;
    }
    for (int j = 0; j < n; j++) cs[j] = (uint16_t)ppx_box1(cs + j * f, f, 1, recip);
}

/* Horizontal pass of a 1-channel plane: V in place, then 4 destination pixels at a time from gathered taps. */
static inline void ppx_taps1(const ev_pp_plane *pl, uint16_t *cs, int xa, int xb, int32_t *h) {
    const int j0 = pl->x0[xa];
    ppx_vrow1(pl, cs, pl->x1[xb - 1] + 1 - j0);
    const int32_t *x0 = pl->x0, *x1 = pl->x1, *wx = pl->wx;
    int x = xa;
    for (; x + 4 <= xb; x += 4) {
        const __m128i a = _mm_setr_epi32(cs[x0[x] - j0], cs[x0[x + 1] - j0], cs[x0[x + 2] - j0], cs[x0[x + 3] - j0]);
        const __m128i b = _mm_setr_epi32(cs[x1[x] - j0], cs[x1[x + 1] - j0], cs[x1[x + 2] - j0], cs[x1[x + 3] - j0]);
        _mm_storeu_si128((__m128i *)(h + x - xa), ppx_lerp(a, b, _mm_loadu_si128((const __m128i *)(wx + x))));
    }
    for (; x < xb; x++) {
        const int32_t a = cs[x0[x] - j0], b = cs[x1[x] - j0];
        h[x - xa] = a + (((b - a) * wx[x] + 1024) >> EV_PP_WBITS);
    }
}

/* ---- quantisation (preprocess.h step 4) ---- */

typedef struct {
    __m128i a, a_odd;      /* qa per lane, and shifted into the even dwords for the odd lanes */
    __m128i b_even, b_odd; /* qb of lanes 0, 2 and of lanes 1, 3, as int64 */
    __m128i shift;         /* qshift, for _mm_sra_epi32 */
    __m128i qmin, qmax;
} ppx_quant;

/* Constants for lanes holding channels k[0..3] (k < 0: unused lane, qa = qb = 0). */
static inline ppx_quant ppx_quant_make(const struct ev_preprocess_plan *pl, const int k[4]) {
    int32_t a[4];
    int64_t b[4];
    for (int l = 0; l < 4; l++) {
        a[l] = k[l] < 0 ? 0 : pl->qa[k[l]];
        b[l] = k[l] < 0 ? 0 : pl->qb[k[l]];
    }
    ppx_quant q;
    q.a = _mm_setr_epi32(a[0], a[1], a[2], a[3]);
    q.a_odd = _mm_setr_epi32(a[1], 0, a[3], 0);
    q.b_even = _mm_set_epi64x(b[2], b[0]);
    q.b_odd = _mm_set_epi64x(b[3], b[1]);
    q.shift = _mm_cvtsi32_si128(pl->qshift);
    q.qmin = _mm_set1_epi32(pl->qmin);
    q.qmax = _mm_set1_epi32(pl->qmax);
    return q;
}

/* clamp(floor((c * qa + qb) / 2^(32 + qshift)), qmin, qmax) on 4 lanes: 32x32->64 products, the high dword of
 * each sum, an arithmetic shift. */
static inline __m128i ppx_quant4(__m128i c, const ppx_quant *q) {
    const __m128i e = _mm_add_epi64(_mm_mul_epi32(c, q->a), q->b_even);                        /* lanes 0, 2 */
    const __m128i o = _mm_add_epi64(_mm_mul_epi32(_mm_srli_epi64(c, 32), q->a_odd), q->b_odd); /* lanes 1, 3 */
    __m128i r = _mm_blend_epi16(_mm_srli_epi64(e, 32), o, 0xCC); /* high dwords: e0, o1, e2, o3 */
    r = _mm_sra_epi32(r, q->shift);
    return _mm_min_epi32(_mm_max_epi32(r, q->qmin), q->qmax);
}

/* The low bytes of 4 x 4 int32 lanes (values in [-128, 255]), in order: 16 bytes. */
static inline __m128i ppx_bytes16(__m128i a, __m128i b, __m128i c, __m128i d) {
    const __m128i m = _mm_set1_epi16(0xff);
    const __m128i ab = _mm_and_si128(_mm_packs_epi32(a, b), m), cd = _mm_and_si128(_mm_packs_epi32(c, d), m);
    return _mm_packus_epi16(ab, cd);
}

static inline void ppx_store(uint8_t *dst, __m128i v, int n) {
    if (n == 16) {
        _mm_storeu_si128((__m128i *)dst, v);
        return;
    }
    uint8_t tmp[16];
    _mm_storeu_si128((__m128i *)tmp, v);
    memcpy(dst, tmp, (size_t)n);
}

/* c_k for the 1-channel-plane modes (gray, yuv) of 4 pixels starting at x: out[k] (output channel order; for
 * out_c == 1 out[0] is the luma / gray value). */
typedef struct {
    __m128i wy[3];
    __m128i cy, yoff, cu[3], cv[3], half, zero, pmax;
    __m128i lr, lg, lb, lhalf;
} ppx_colour;

static inline ppx_colour ppx_colour_make(const struct ev_preprocess_plan *pl, const int32_t wy[3]) {
    ppx_colour c;
    for (int p = 0; p < 3; p++) c.wy[p] = _mm_set1_epi32(wy[p]);
    c.cy = _mm_set1_epi32(pl->yuv_cy);
    c.yoff = _mm_set1_epi32(pl->yuv_yoff);
    for (int k = 0; k < 3; k++) {
        c.cu[k] = _mm_set1_epi32(pl->yuv_cu[k]);
        c.cv[k] = _mm_set1_epi32(pl->yuv_cv[k]);
    }
    c.half = _mm_set1_epi32(1 << (EV_PP_YUV_SHIFT - 1));
    c.zero = _mm_setzero_si128();
    c.pmax = _mm_set1_epi32(EV_PP_PMAX);
    c.lr = _mm_set1_epi32(EV_PP_LUMA_R);
    c.lg = _mm_set1_epi32(EV_PP_LUMA_G);
    c.lb = _mm_set1_epi32(EV_PP_LUMA_B);
    c.lhalf = _mm_set1_epi32(1 << (EV_PP_LUMA_SHIFT - 1));
    return c;
}

static inline __m128i ppx_luma(__m128i r, __m128i g, __m128i b, const ppx_colour *c) {
    __m128i s = _mm_add_epi32(_mm_mullo_epi32(r, c->lr), _mm_mullo_epi32(g, c->lg));
    s = _mm_add_epi32(s, _mm_add_epi32(_mm_mullo_epi32(b, c->lb), c->lhalf));
    return _mm_srai_epi32(s, EV_PP_LUMA_SHIFT);
}

static inline __m128i ppx_ld(const int32_t *p) { return _mm_loadu_si128((const __m128i *)p); }

/* Gray and YUV: the channel values of pixels x..x+3. */
static inline void ppx_colour1(const struct ev_preprocess_plan *pl, const int32_t *const h0[3],
                               const int32_t *const h1[3], const ppx_colour *c, int x, __m128i out[3]) {
    const __m128i Y = ppx_lerp(ppx_ld(h0[0] + x), ppx_ld(h1[0] + x), c->wy[0]);
    if (pl->mode == EV_PP_GRAY) {
        out[0] = out[1] = out[2] = Y;
        return;
    }
    const __m128i y = _mm_sub_epi32(Y, c->yoff);
    const __m128i u = _mm_sub_epi32(ppx_lerp(ppx_ld(h0[1] + x), ppx_ld(h1[1] + x), c->wy[1]), _mm_set1_epi32(32768));
    const __m128i v = _mm_sub_epi32(ppx_lerp(ppx_ld(h0[2] + x), ppx_ld(h1[2] + x), c->wy[2]), _mm_set1_epi32(32768));
    const __m128i t = _mm_add_epi32(_mm_mullo_epi32(y, c->cy), c->half);
    __m128i rgb[3];
    for (int k = 0; k < 3; k++) {
        __m128i s = _mm_add_epi32(t, _mm_add_epi32(_mm_mullo_epi32(u, c->cu[k]), _mm_mullo_epi32(v, c->cv[k])));
        s = _mm_srai_epi32(s, EV_PP_YUV_SHIFT);
        rgb[k] = _mm_min_epi32(_mm_max_epi32(s, c->zero), c->pmax);
    }
    if (pl->out_c == 1) {
        out[0] = out[1] = out[2] = ppx_luma(rgb[0], rgb[1], rgb[2], c);
        return;
    }
    out[0] = rgb[0], out[1] = rgb[1], out[2] = rgb[2];
}

/* orow for the 1-channel-plane modes, 4 pixels at a time (the last group computes up to 3 pixels past n inside
 * the H-row buffers, which are EV_PP_TILE_W pixels long, and stores only n). */
static inline void ppx_orow1(const struct ev_preprocess_plan *pl, const int32_t *const h0[3],
                             const int32_t *const h1[3], const int32_t wy[3], int n, uint8_t *dst) {
    const ppx_colour c = ppx_colour_make(pl, wy);
    if (pl->out_c == 1) {
        const int k[4] = {0, 0, 0, 0};
        const ppx_quant q = ppx_quant_make(pl, k);
        int x = 0;
        for (; x + 16 <= n; x += 16) {
            __m128i v[4], t[3];
            for (int i = 0; i < 4; i++) {
                ppx_colour1(pl, h0, h1, &c, x + 4 * i, t);
                v[i] = ppx_quant4(t[0], &q);
            }
            _mm_storeu_si128((__m128i *)(dst + x), ppx_bytes16(v[0], v[1], v[2], v[3]));
        }
        for (; x < n; x += 4) {
            __m128i t[3];
            ppx_colour1(pl, h0, h1, &c, x, t);
            const __m128i v = ppx_quant4(t[0], &q);
            ppx_store(dst + x, ppx_bytes16(v, v, v, v), n - x < 4 ? n - x : 4);
        }
        return;
    }
    const int k0[4] = {0, 0, 0, 0}, k1[4] = {1, 1, 1, 1}, k2[4] = {2, 2, 2, 2};
    const ppx_quant q0 = ppx_quant_make(pl, k0), q1 = ppx_quant_make(pl, k1), q2 = ppx_quant_make(pl, k2);
    /* bytes [c0 p0..3, c1 p0..3, c2 p0..3, c2 p0..3] -> p0 c0 c1 c2, p1 c0 c1 c2, ... */
    const __m128i il = _mm_setr_epi8(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, -1, -1, -1, -1);
    for (int x = 0; x < n; x += 4) {
        __m128i t[3];
        ppx_colour1(pl, h0, h1, &c, x, t);
        const __m128i a = ppx_quant4(t[0], &q0), b = ppx_quant4(t[1], &q1), d = ppx_quant4(t[2], &q2);
        const __m128i v = _mm_shuffle_epi8(ppx_bytes16(a, b, d, d), il);
        const int m = n - x < 4 ? n - x : 4;
        if (m == 4) {
            _mm_storel_epi64((__m128i *)(dst + 3 * x), v);
            const int32_t w = _mm_extract_epi32(v, 2);
            memcpy(dst + 3 * x + 8, &w, 4);
        } else {
            ppx_store(dst + 3 * x, v, 3 * m);
        }
    }
}

/* orow for the 3-channel-plane modes (RGB, RGB_LUMA): lanes are the bytes of the pixel. */
static inline void ppx_orow4(const struct ev_preprocess_plan *pl, const int32_t *const h0[3],
                             const int32_t *const h1[3], const int32_t wy[3], int n, uint8_t *dst) {
    const int32_t *a = h0[0], *b = h1[0];
    const int32_t *off = pl->planes[0].chan_off;
    const __m128i w = _mm_set1_epi32(wy[0]);
    if (pl->mode == EV_PP_RGB_LUMA) {
        int32_t lw[4] = {0, 0, 0, 0};
        lw[off[0]] = EV_PP_LUMA_R, lw[off[1]] = EV_PP_LUMA_G, lw[off[2]] = EV_PP_LUMA_B;
        const __m128i lwv = _mm_setr_epi32(lw[0], lw[1], lw[2], lw[3]), half = _mm_set1_epi32(1 << (EV_PP_LUMA_SHIFT - 1));
        const int k[4] = {0, 0, 0, 0};
        const ppx_quant q = ppx_quant_make(pl, k);
        for (int x = 0; x < n; x += 4) {
            __m128i p[4];
            for (int i = 0; i < 4; i++)
                p[i] = _mm_mullo_epi32(ppx_lerp(ppx_ld(a + 4 * (x + i)), ppx_ld(b + 4 * (x + i)), w), lwv);
            /* horizontal sums: luma of the 4 pixels (unused lanes weigh 0) */
            __m128i s = _mm_hadd_epi32(_mm_hadd_epi32(p[0], p[1]), _mm_hadd_epi32(p[2], p[3]));
            s = _mm_srai_epi32(_mm_add_epi32(s, half), EV_PP_LUMA_SHIFT);
            const __m128i v = ppx_quant4(s, &q);
            ppx_store(dst + x, ppx_bytes16(v, v, v, v), n - x < 4 ? n - x : 4);
        }
        return;
    }
    int k[4] = {-1, -1, -1, -1};
    for (int c = 0; c < 3; c++) k[off[c]] = c;
    const ppx_quant q = ppx_quant_make(pl, k);
    /* 16 bytes = 4 pixels x 4 lanes -> 12 bytes: output byte 3i + c is lane off[c] of pixel i */
    int8_t sh[16];
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++) sh[3 * i + c] = (int8_t)(4 * i + off[c]);
    for (int j = 12; j < 16; j++) sh[j] = -1;
    const __m128i shuf = _mm_loadu_si128((const __m128i *)sh);
    for (int x = 0; x < n; x += 4) {
        __m128i v[4];
        for (int i = 0; i < 4; i++) v[i] = ppx_quant4(ppx_lerp(ppx_ld(a + 4 * (x + i)), ppx_ld(b + 4 * (x + i)), w), &q);
        const __m128i r = _mm_shuffle_epi8(ppx_bytes16(v[0], v[1], v[2], v[3]), shuf);
        const int m = n - x < 4 ? n - x : 4;
        if (m == 4) {
            _mm_storel_epi64((__m128i *)(dst + 3 * x), r);
            const int32_t t = _mm_extract_epi32(r, 2);
            memcpy(dst + 3 * x + 8, &t, 4);
        } else {
            ppx_store(dst + 3 * x, r, 3 * m);
        }
    }
}

#endif /* EV_PREPROCESS_X86_H */
