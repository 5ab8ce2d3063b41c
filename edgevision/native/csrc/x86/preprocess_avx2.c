/* Fused preprocessing, AVX2 (compiled with -mavx2): 32-byte column sums, 8-lane 1-channel taps (vpgatherdd),
 * 8-pixel output stages; the 3-channel horizontal taps are the SSE4.1 ones (x86/preprocess_x86.h), VEX-encoded.
 * Same bytes as ev_preprocess_ref: see preprocess.h for the arithmetic. */
#include <immintrin.h>

#include "preprocess_x86.h"

static inline void colsum_avx2(const uint8_t *s, int64_t rs, int f, int span, uint16_t *cs) {
    int b = 0;
    for (; b + 32 <= span; b += 32) {
        const uint8_t *p = s + b;
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        for (int a = 0; a < f; a++, p += rs) {
            lo = _mm256_add_epi16(lo, _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p)));
            hi = _mm256_add_epi16(hi, _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + 16))));
        }
        _mm256_storeu_si256((__m256i *)(cs + b), lo);
        _mm256_storeu_si256((__m256i *)(cs + b + 16), hi);
    }
    ppx_colsum_sse(s, rs, f, b, span, cs); /* the last < 32 bytes */
}

static inline __m256i lerp8(__m256i a, __m256i b, __m256i w) {
    const __m256i d = _mm256_mullo_epi32(_mm256_sub_epi32(b, a), w);
    return _mm256_add_epi32(a, _mm256_srai_epi32(_mm256_add_epi32(d, _mm256_set1_epi32(1024)), EV_PP_WBITS));
}

/* 1-channel taps: V in place (x86 header), then 8 pixels at a time; the uint16 V is gathered as 32-bit words
 * (the upper half is the next entry, masked off; the last entry's neighbour is inside the scratch). */
static inline void taps1_avx2(const ev_pp_plane *pl, uint16_t *cs, int xa, int xb, int32_t *h) {
    const int j0 = pl->x0[xa];
    ppx_vrow1(pl, cs, pl->x1[xb - 1] + 1 - j0);
    const __m256i off = _mm256_set1_epi32(j0), m16 = _mm256_set1_epi32(0xffff);
    const int *base = (const int *)cs;
    int x = xa;
    for (; x + 8 <= xb; x += 8) {
        const __m256i i0 = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(pl->x0 + x)), off);
        const __m256i i1 = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(pl->x1 + x)), off);
        const __m256i a = _mm256_and_si256(_mm256_i32gather_epi32(base, i0, 2), m16);
        const __m256i b = _mm256_and_si256(_mm256_i32gather_epi32(base, i1, 2), m16);
        _mm256_storeu_si256((__m256i *)(h + x - xa), lerp8(a, b, _mm256_loadu_si256((const __m256i *)(pl->wx + x))));
    }
    for (; x < xb; x++) {
        const int32_t a = cs[pl->x0[x] - j0], b = cs[pl->x1[x] - j0];
        h[x - xa] = a + (((b - a) * pl->wx[x] + 1024) >> EV_PP_WBITS);
    }
}

static void hrow_avx2(const ev_pp_plane *pl, const uint8_t *src, int vrow, int xa, int xb, uint16_t *colsum,
                      int32_t *h) {
    const int f = pl->f, ps = pl->pixel_stride, j0 = pl->x0[xa];
    const int span = (int)ev_pp_span(pl, xa, xb);
    const uint8_t *s = src + pl->base + (int64_t)(pl->crop_top + vrow * f) * pl->row_stride +
                       (int64_t)(pl->crop_left + j0 * f) * ps;
    colsum_avx2(s, pl->row_stride, f, span, colsum);
    memset(colsum + span, 0, 4 * sizeof(uint16_t));
    if (pl->channels == 3)
        ppx_taps4(pl, colsum, xa, xb, h);
    else
        taps1_avx2(pl, colsum, xa, xb, h);
}

/* ---- output stages ---- */

typedef struct {
    __m256i a, a_odd, b_even, b_odd, qmin, qmax;
    __m128i shift;
} quant8;

/* constants for lanes holding channels k[0..7] (k < 0: unused) */
static inline quant8 quant8_make(const struct ev_preprocess_plan *pl, const int k[8]) {
    int32_t a[8];
    int64_t b[8];
    for (int l = 0; l < 8; l++) {
        a[l] = k[l] < 0 ? 0 : pl->qa[k[l]];
        b[l] = k[l] < 0 ? 0 : pl->qb[k[l]];
    }
    quant8 q;
    q.a = _mm256_setr_epi32(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    q.a_odd = _mm256_setr_epi32(a[1], 0, a[3], 0, a[5], 0, a[7], 0);
    q.b_even = _mm256_setr_epi64x(b[0], b[2], b[4], b[6]);
    q.b_odd = _mm256_setr_epi64x(b[1], b[3], b[5], b[7]);
    q.shift = _mm_cvtsi32_si128(pl->qshift);
    q.qmin = _mm256_set1_epi32(pl->qmin);
    q.qmax = _mm256_set1_epi32(pl->qmax);
    return q;
}

static inline __m256i quant8_run(__m256i c, const quant8 *q) {
    const __m256i e = _mm256_add_epi64(_mm256_mul_epi32(c, q->a), q->b_even);
    const __m256i o = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(c, 32), q->a_odd), q->b_odd);
    __m256i r = _mm256_blend_epi16(_mm256_srli_epi64(e, 32), o, 0xCC);
    r = _mm256_sra_epi32(r, q->shift);
    return _mm256_min_epi32(_mm256_max_epi32(r, q->qmin), q->qmax);
}

/* low bytes of a, b, c, d (8 int32 each, values in [-128, 255]): per 128-bit half, [a b c d] x 4 bytes */
static inline __m256i bytes32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i m = _mm256_set1_epi16(0xff);
    return _mm256_packus_epi16(_mm256_and_si256(_mm256_packs_epi32(a, b), m),
                               _mm256_and_si256(_mm256_packs_epi32(c, d), m));
}

static inline void store_part(uint8_t *dst, __m256i v, int n) {
    uint8_t tmp[32];
    _mm256_storeu_si256((__m256i *)tmp, v);
    memcpy(dst, tmp, (size_t)n);
}

static inline void store12x2(uint8_t *dst, __m256i v, int n) { /* 12 bytes from each half: 24 bytes, n of them */
    if (n == 24) {
        const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
        _mm_storel_epi64((__m128i *)dst, lo);
        int32_t t = _mm_extract_epi32(lo, 2);
        memcpy(dst + 8, &t, 4);
        _mm_storel_epi64((__m128i *)(dst + 12), hi);
        t = _mm_extract_epi32(hi, 2);
        memcpy(dst + 20, &t, 4);
        return;
    }
    uint8_t tmp[32];
    _mm256_storeu_si256((__m256i *)tmp, v);
    memmove(tmp + 12, tmp + 16, 12);
    memcpy(dst, tmp, (size_t)n);
}

static inline __m256i ld8(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* gray / yuv: channel values of pixels x..x+7 */
static inline void colour8(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                           const __m256i wy[3], int x, __m256i out[3]) {
    const __m256i Y = lerp8(ld8(h0[0] + x), ld8(h1[0] + x), wy[0]);
    if (pl->mode == EV_PP_GRAY) {
        out[0] = out[1] = out[2] = Y;
        return;
    }
    const __m256i c32768 = _mm256_set1_epi32(32768);
    const __m256i y = _mm256_sub_epi32(Y, _mm256_set1_epi32(pl->yuv_yoff));
    const __m256i u = _mm256_sub_epi32(lerp8(ld8(h0[1] + x), ld8(h1[1] + x), wy[1]), c32768);
    const __m256i v = _mm256_sub_epi32(lerp8(ld8(h0[2] + x), ld8(h1[2] + x), wy[2]), c32768);
    const __m256i t = _mm256_add_epi32(_mm256_mullo_epi32(y, _mm256_set1_epi32(pl->yuv_cy)),
                                       _mm256_set1_epi32(1 << (EV_PP_YUV_SHIFT - 1)));
    __m256i rgb[3];
    for (int k = 0; k < 3; k++) {
        __m256i s = _mm256_add_epi32(_mm256_mullo_epi32(u, _mm256_set1_epi32(pl->yuv_cu[k])),
                                     _mm256_mullo_epi32(v, _mm256_set1_epi32(pl->yuv_cv[k])));
        s = _mm256_srai_epi32(_mm256_add_epi32(t, s), EV_PP_YUV_SHIFT);
        rgb[k] = _mm256_min_epi32(_mm256_max_epi32(s, _mm256_setzero_si256()), _mm256_set1_epi32(EV_PP_PMAX));
    }
    if (pl->out_c == 1) {
        __m256i s = _mm256_add_epi32(_mm256_mullo_epi32(rgb[0], _mm256_set1_epi32(EV_PP_LUMA_R)),
                                     _mm256_mullo_epi32(rgb[1], _mm256_set1_epi32(EV_PP_LUMA_G)));
        s = _mm256_add_epi32(s, _mm256_mullo_epi32(rgb[2], _mm256_set1_epi32(EV_PP_LUMA_B)));
        out[0] = out[1] = out[2] =
            _mm256_srai_epi32(_mm256_add_epi32(s, _mm256_set1_epi32(1 << (EV_PP_LUMA_SHIFT - 1))), EV_PP_LUMA_SHIFT);
        return;
    }
    out[0] = rgb[0], out[1] = rgb[1], out[2] = rgb[2];
}

static void orow1_avx2(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                       const int32_t wy_[3], int n, uint8_t *dst) {
    const __m256i wy[3] = {_mm256_set1_epi32(wy_[0]), _mm256_set1_epi32(wy_[1]), _mm256_set1_epi32(wy_[2])};
    const __m256i dw = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    if (pl->out_c == 1) {
        const int k[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const quant8 q = quant8_make(pl, k);
        for (int x = 0; x < n; x += 16) { /* 16 pixels: two vectors, the second maybe past n (computed, not stored) */
            __m256i t[3];
            colour8(pl, h0, h1, wy, x, t);
            const __m256i a = quant8_run(t[0], &q);
            __m256i b = a;
            if (x + 8 < n) {
                colour8(pl, h0, h1, wy, x + 8, t);
                b = quant8_run(t[0], &q);
            }
            /* halves [a0-3 b0-3 a0-3 b0-3 | a4-7 b4-7 ...] -> dwords a0-3, a4-7, b0-3, b4-7 */
            const __m256i r = _mm256_permutevar8x32_epi32(bytes32(a, b, a, b), dw);
            if (n - x >= 16)
                _mm_storeu_si128((__m128i *)(dst + x), _mm256_castsi256_si128(r));
            else
                store_part(dst + x, r, n - x);
        }
        return;
    }
    const int k0[8] = {0, 0, 0, 0, 0, 0, 0, 0}, k1[8] = {1, 1, 1, 1, 1, 1, 1, 1}, k2[8] = {2, 2, 2, 2, 2, 2, 2, 2};
    const quant8 q0 = quant8_make(pl, k0), q1 = quant8_make(pl, k1), q2 = quant8_make(pl, k2);
    const __m256i il = _mm256_setr_epi8(0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, -1, -1, -1, -1, 0, 4, 8, 1, 5, 9, 2, 6, 10,
                                        3, 7, 11, -1, -1, -1, -1);
    for (int x = 0; x < n; x += 8) {
        __m256i t[3];
        colour8(pl, h0, h1, wy, x, t);
        const __m256i a = quant8_run(t[0], &q0), b = quant8_run(t[1], &q1), c = quant8_run(t[2], &q2);
        /* halves: [c0 p0-3, c1 p0-3, c2 p0-3, c2 p0-3] | same for p4-7 -> 12 interleaved bytes each */
        const __m256i r = _mm256_shuffle_epi8(bytes32(a, b, c, c), il);
        store12x2(dst + 3 * x, r, n - x >= 8 ? 24 : 3 * (n - x));
    }
}

/* RGB and RGB_LUMA: 2 pixels (4 lanes each) per vector */
static void orow4_avx2(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                       const int32_t wy_[3], int n, uint8_t *dst) {
    const int32_t *a = h0[0], *b = h1[0];
    const int32_t *off = pl->planes[0].chan_off;
    const __m256i w = _mm256_set1_epi32(wy_[0]);
    const __m256i dw = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    if (pl->mode == EV_PP_RGB_LUMA) {
        int32_t lw[4] = {0, 0, 0, 0};
        lw[off[0]] = EV_PP_LUMA_R, lw[off[1]] = EV_PP_LUMA_G, lw[off[2]] = EV_PP_LUMA_B;
        const __m256i lwv = _mm256_setr_epi32(lw[0], lw[1], lw[2], lw[3], lw[0], lw[1], lw[2], lw[3]);
        const int k[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const quant8 q = quant8_make(pl, k);
        for (int x = 0; x < n; x += 8) { /* 8 pixels; up to 7 past n are computed, not stored */
            __m256i p[4];
            for (int i = 0; i < 4; i++)
                p[i] = _mm256_mullo_epi32(lerp8(ld8(a + 4 * (x + 2 * i)), ld8(b + 4 * (x + 2 * i)), w), lwv);
            /* hadd within halves: [p0a p0b p1a p1b | ...]: half 0 holds pixels x, x+2, ..., half 1 x+1, x+3, ... */
            const __m256i s01 = _mm256_hadd_epi32(p[0], p[1]), s23 = _mm256_hadd_epi32(p[2], p[3]);
            __m256i s = _mm256_hadd_epi32(s01, s23); /* half 0: px 0, 2, 4, 6; half 1: px 1, 3, 5, 7 */
            s = _mm256_srai_epi32(_mm256_add_epi32(s, _mm256_set1_epi32(1 << (EV_PP_LUMA_SHIFT - 1))), EV_PP_LUMA_SHIFT);
            s = _mm256_permutevar8x32_epi32(s, dw); /* px 0..7 */
            const __m256i v = quant8_run(s, &q);
            const __m256i r = _mm256_permutevar8x32_epi32(bytes32(v, v, v, v), dw); /* 8 bytes in dwords 0, 1 */
            const int m = n - x < 8 ? n - x : 8;
            if (m == 8)
                _mm_storel_epi64((__m128i *)(dst + x), _mm256_castsi256_si128(r));
            else
                store_part(dst + x, r, m);
        }
        return;
    }
    int kk[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    for (int c = 0; c < 3; c++) kk[off[c]] = kk[4 + off[c]] = c;
    const quant8 q = quant8_make(pl, kk);
    int8_t sh[32];
    for (int half = 0; half < 2; half++) {
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < 3; c++) sh[16 * half + 3 * i + c] = (int8_t)(4 * i + off[c]);
        for (int j = 12; j < 16; j++) sh[16 * half + j] = -1;
    }
    const __m256i shuf = _mm256_loadu_si256((const __m256i *)sh);
    for (int x = 0; x < n; x += 8) {
        __m256i v[4];
        for (int i = 0; i < 4; i++) v[i] = quant8_run(lerp8(ld8(a + 4 * (x + 2 * i)), ld8(b + 4 * (x + 2 * i)), w), &q);
        /* bytes32: half 0 = pixels 0, 2, 4, 6 (4 bytes each), half 1 = 1, 3, 5, 7 -> reorder the dwords */
        const __m256i r = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(bytes32(v[0], v[1], v[2], v[3]), dw), shuf);
        store12x2(dst + 3 * x, r, n - x >= 8 ? 24 : 3 * (n - x));
    }
}

static void orow_avx2(const struct ev_preprocess_plan *pl, const int32_t *const h0[3], const int32_t *const h1[3],
                      const int32_t wy[3], int n, uint8_t *dst) {
    if (pl->mode == EV_PP_RGB || pl->mode == EV_PP_RGB_LUMA)
        orow4_avx2(pl, h0, h1, wy, n, dst);
    else
        orow1_avx2(pl, h0, h1, wy, n, dst);
}

void ev_preprocess_avx2(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                        int row_end) {
    static const ev_pp_stages stages = {hrow_avx2, orow_avx2};
    ev_pp_run(plan, src, dst, row_begin, row_end, &stages);
}
