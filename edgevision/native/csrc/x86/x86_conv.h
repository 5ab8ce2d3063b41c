/* x86 SIMD CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, shared by conv_sse41.c (compiled with -msse4.1,
 * 128-bit vectors) and conv_avx2.c (-mavx2, 256-bit vectors): each includes this header once and gets its own
 * copy of every function, compiled for its ISA. Same bytes as ref/conv_ref.c (the spec); how:
 *
 * Accumulation. Exact int32 arithmetic modulo 2^32, so it may be reassociated (conv_ref.c):
 *     acc = sum_k w[k] * x[k]  +  (bias + input_offset * sum_k w[k])
 * the second term precomputed per output channel when the engine is built (the pack hooks). A tap outside the
 * image is omitted in the spec; here it reads the input zero point zp = -input_offset instead, which adds
 * w * zp + input_offset * w = 0: padding costs nothing and one code path serves border and interior. Products
 * are formed exactly with pmaddwd on int8 values sign-extended to int16 (|w * x| <= 2^14, a pair sum fits);
 * never pmaddubsw, whose int16 pair sums can saturate.
 *
 * Requantisation (conv, depthwise): TFLite's MultiplyByQuantizedMultiplier, per output channel, 4 or 8 lanes at
 * a time. SaturatingRoundingDoublingHighMul(a, m) with the gemmlowp nudge (+2^30 when a*m >= 0, 1 - 2^30
 * otherwise) and truncating division by 2^31 equals floor((a*m + 2^30) / 2^31) for every a, m: that is what
 * the vector code computes (pmuldq, +2^30, bits 31..62). The one saturating case, a == m == INT32_MIN, cannot
 * occur: multipliers are >= 0 (checked). RoundingDivideByPOT is the gemmlowp mask / threshold form with a
 * per-lane arithmetic shift. x << left wraps as in TFLite (vpsllvd, or pmulld by 2^left on SSE4.1).
 * Fast form, for vectors of channels with no left shift whose accumulators provably stay within +-(2^30 - 2)
 * (the bound sum |w| * 255 + |bias| per channel, checked at pack time; real models have a few "dead" channels
 * with near-zero scales and biases near +-2^31, whose vectors take the exact form): for right shift r >= 1,
 * RoundingDivideByPOT(q, r) = floor((q + 2^(r-1) - [q < 0]) / 2^r); the 2^(r-1) goes into the 64-bit
 * rounding constant (+ 2^(30+r)), and [q < 0] may be [acc < 0] (they differ only where q == 0, which gives 0
 * either way). Three instructions fewer per vector; tests/test_native_conv.py fuzzes both forms. A channel
 * with multiplier 0 (a scale flushed to zero) gives 0 for any shift: its lane is given right shift 1.
 * Then + output_offset in int32 (wrapping, as the spec), saturating packs to int16 and int8 (monotone, so the
 * activation clamp afterwards gives what clamping the int32 would give) and the clamp in int8.
 *
 * Fully connected requantises in double like the spec: (double)acc * scale (one IEEE multiply, no FMA: these
 * files are not compiled with -mfma), trunc, the exact fraction decides the half-away rounding, then a clamp to
 * the int32 range (the spec's saturation) before the conversion.
 *
 * Kernels (XVL int32 lanes per vector: 8 AVX2, 4 SSE4.1; XNR = 2 XVL channels per block; XMR pixels per tile):
 *   CONV_2D: an int8 GEMM, pixels x output channels, K = filter_h * filter_w * filter_in_c. Blocks of XMR output
 *     pixels are sign-extended to int16 into per-thread scratch (1x1 stride-1 convolutions read their input rows
 *     directly, over the whole [begin, end) range of rows as one run of pixels; others gather the im2col rows,
 *     padding with the zero point), then an XMR x XNR register tile (AVX2 5 x 16: 10 accumulators) runs over K
 *     in pairs: broadcast (x[k], x[k+1]) of a pixel, pmaddwd with the packed weights (int16, [k/2][XNR][2]).
 *     Grouped convolutions run one GEMM per group.
 *   DEPTHWISE_CONV_2D: vectorised over channels (NHWC keeps them contiguous), XNR per block. Each input row an
 *     output row needs is turned once into a "pair row" (int16 pairs of horizontally adjacent taps, zero points
 *     in the padding, channel-block major) kept for the next output rows; then a pair of taps of a block is one
 *     aligned load and one pmaddwd per vector, 4 output pixels at a time with the weights in registers (the loop
 *     is load-bound otherwise). A depth multiplier > 1 repeats each channel when building the pair rows.
 *   FULLY_CONNECTED: GEMV, 4 output channels at a time sharing the int16 input, horizontal sums at the end.
 *
 * GCC: loops are written so that it keeps accumulators in registers (XC_PIN stops its reassociation of
 * accumulation chains, which otherwise computes every product first and spills); -O2 as setup.py gives it.
 *
 * Constant weights. Conv and depthwise weights and biases are packed when the engine is built, which is right
 * only if they are constants; the planner also accepts them as tensors computed at run time. The engine's arena
 * is all zeros when the pack hooks run (nothing has run yet), so a filter or bias with a nonzero byte then is a
 * constant. One that is all zeros (a zero constant, or maybe a run-time tensor) is checked again at every call:
 * still all zeros, the packed zeros are right; otherwise that call runs the reference kernel. Fully connected
 * packs nothing (the input offset is added to the int16 input, the bias read at run time).
 */
#ifndef EV_X86_CONV_H
#define EV_X86_CONV_H

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../conv.h"

#define XC_INLINE static inline __attribute__((always_inline))

/* the reference kernels (ref/conv_ref.c): what a call runs when a weight tensor turned out not to be constant */
void ev_conv_2d_ref(const ev_op *op, int begin, int end, int thread);
void ev_depthwise_conv_2d_ref(const ev_op *op, int begin, int end, int thread);

/* n bytes all zero? */
static inline int xc_all_zero(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

/* After packing: recheck at every call the weight tensors that were all zeros at pack time (see above). */
typedef struct {
    int filter, bias;
} xc_recheck;

static inline void xc_recheck_fill(xc_recheck *r, const ev_op *op) {
    r->filter = xc_all_zero(op->tensors[1], op->sizes[1]);
    r->bias = op->sizes[2] != 0 && xc_all_zero(op->tensors[2], op->sizes[2]);
}

/* 1 if the packed weights still describe the op */
static inline int xc_recheck_ok(const xc_recheck *r, const ev_op *op) {
    return (!r->filter || xc_all_zero(op->tensors[1], op->sizes[1])) &&
           (!r->bias || xc_all_zero(op->tensors[2], op->sizes[2]));
}

#if defined(__AVX2__)
typedef __m256i xv;
#define XVL 8 /* int32 lanes per vector */
#ifndef XMR /* (a tuning knob: -DXMR=n) */
#define XMR 5 /* output pixels per GEMM register tile: 10 accumulators, 2 weights, 1 broadcast, 1 product */
#endif
#define xv_load(p) _mm256_load_si256((const __m256i *)(const void *)(p))
#define xv_add(a, b) _mm256_add_epi32((a), (b))
#define xv_madd(a, b) _mm256_madd_epi16((a), (b))
#define xv_set1(x) _mm256_set1_epi32(x)
/* XNR int8 at p, sign-extended to int16 (one vector) */
#define xv_sext_xnr(p) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#else
typedef __m128i xv;
#define XVL 4
#ifndef XMR
#define XMR 4
#endif
#define xv_load(p) _mm_load_si128((const __m128i *)(const void *)(p))
#define xv_add(a, b) _mm_add_epi32((a), (b))
#define xv_madd(a, b) _mm_madd_epi16((a), (b))
#define xv_set1(x) _mm_set1_epi32(x)
#define xv_sext_xnr(p) _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(p)))
#endif
#define XNR (2 * XVL) /* output channels per GEMM tile and per depthwise block */

/* An empty asm that makes v opaque: keeps GCC's reassociation from turning a chain of accumulations into a tree
 * that computes every product first (and spills them). */
#define XC_PIN(v) __asm__("" : "+x"(v))

static inline size_t xc_align(size_t n) { return (n + 63) & ~(size_t)63; }

static inline int32_t xc_load32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- requantisation ------------------------------------------------------------------------------------------ */

/* One vector of channels' MultiplyByQuantizedMultiplier parameters (lane i belongs to some output channel). */
typedef struct {
    xv mult;   /* multiplier per lane (pmuldq reads the even lanes) */
    xv mult_o; /* multiplier of lane 2i+1 in lane 2i (for the odd lanes, shifted down) */
    xv mask;   /* (1 << right) - 1 */
    xv thr;    /* mask >> 1 */
    xv rsh;    /* right shift per lane */
    xv lsh;    /* left shift per lane (AVX2: the count; SSE4.1: 1 << left, a pmulld factor) */
    xv rnd_e;  /* fast form: 2^30 + (r >= 1 ? 2^(30 + r) : 0) per 64-bit lane, for the even lanes */
    xv rnd_o;  /* the same for the odd lanes */
    xv rpos;   /* fast form: -1 where r >= 1, 0 where r == 0 */
    int32_t flags; /* XQ_* below, for the vector's lanes */
    int32_t rsh0;  /* with XQ_UNIFORM: the right shift of every lane */
} xq;

enum {
    XQ_FAST = 1,    /* the fast form applies: no left shift, |accumulator| <= 2^30 - 2 */
    XQ_R0 = 2,      /* (fast form) some lane has right shift 0 */
    XQ_LEFT = 4,    /* (exact form) some lane has a left shift */
    XQ_UNIFORM = 8, /* every lane has the same right shift (SSE4.1 then shifts once) */
};

/* Fill q from per-channel (multiplier, shift) and accumulator bounds (bound[c]: the largest |accumulator| of
 * channel c, or -1 if unknown); chan[i] < 0 marks a padding lane (multiplier 0: output 0, never stored). */
static void xq_fill(xq *q, const int32_t *mult, const int32_t *shift, const int64_t *bound, const int *chan) {
    int32_t m[XVL], mo[XVL], mask[XVL], thr[XVL], r[XVL], l[XVL], rpos[XVL];
    int64_t rnd[XVL];
    int fast = 1, r0 = 0, left = 0, uniform = 1;
    for (int i = 0; i < XVL; i++) {
        int32_t mm = 0, s = -1;
        if (chan[i] >= 0 && mult[chan[i]] != 0) { /* multiplier 0: result 0 whatever the shift */
            mm = mult[chan[i]];
            s = shift[chan[i]];
            if (!bound || bound[chan[i]] < 0 || bound[chan[i]] > ((int64_t)1 << 30) - 2) fast = 0;
        }
        if (s > 0) fast = 0, left = 1;
        if (s == 0) r0 = 1;
        const int left = s > 0 ? s : 0, right = s > 0 ? 0 : -s;
        m[i] = mm;
        mask[i] = (int32_t)((1LL << right) - 1);
        thr[i] = mask[i] >> 1;
        r[i] = right;
        if (right != r[0]) uniform = 0;
        rnd[i] = ((int64_t)1 << 30) + (right >= 1 ? (int64_t)1 << (30 + right) : 0);
        rpos[i] = right >= 1 ? -1 : 0;
#if defined(__AVX2__)
        l[i] = left;
#else
        l[i] = (int32_t)((uint32_t)1 << left);
#endif
    }
    for (int i = 0; i < XVL; i++) mo[i] = (i % 2 == 0) ? m[i + 1] : 0;
    memcpy(&q->mult, m, sizeof m);
    memcpy(&q->mult_o, mo, sizeof mo);
    memcpy(&q->mask, mask, sizeof mask);
    memcpy(&q->thr, thr, sizeof thr);
    memcpy(&q->rsh, r, sizeof r);
    memcpy(&q->lsh, l, sizeof l);
    memcpy(&q->rpos, rpos, sizeof rpos);
    int64_t re[XVL / 2], ro[XVL / 2];
    for (int i = 0; i < XVL / 2; i++) {
        re[i] = rnd[2 * i];
        ro[i] = rnd[2 * i + 1];
    }
    memcpy(&q->rnd_e, re, sizeof re);
    memcpy(&q->rnd_o, ro, sizeof ro);
    q->flags = (fast ? XQ_FAST : 0) | (r0 ? XQ_R0 : 0) | (left ? XQ_LEFT : 0) | (uniform ? XQ_UNIFORM : 0);
    q->rsh0 = r[0];
}

/* |bias| + 255 * sum |w| over a channel's weights (w at stride `stride`, n of them) */
static int64_t xq_channel_bound(const int8_t *w, size_t n, size_t stride, const int32_t *bias, int oc) {
    int64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        const int v = w[i * stride];
        s += v < 0 ? -v : v;
    }
    int64_t b = bias ? bias[oc] : 0;
    return s * 255 + (b < 0 ? -b : b);
}

/* MultiplyByQuantizedMultiplier(acc, mult, shift) lane by lane (see the header comment). */
XC_INLINE xv xq_apply(xv acc, const xq *q) {
    const int32_t flags = q->flags;
#if defined(__AVX2__)
    if (flags & XQ_FAST) {
        const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(acc, q->mult), q->rnd_e);
        const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), q->mult_o), q->rnd_o);
        const __m256i x = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_add_epi64(po, po), 0xAA);
        __m256i neg = _mm256_srai_epi32(acc, 31);
        if (flags & XQ_R0) neg = _mm256_and_si256(neg, q->rpos);
        return _mm256_srav_epi32(_mm256_add_epi32(x, neg), q->rsh);
    }
    if (flags & XQ_LEFT) acc = _mm256_sllv_epi32(acc, q->lsh);
    const __m256i r30 = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(acc, q->mult), r30);
    const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), q->mult_o), r30);
    /* bits 31..62 of each 64-bit product: even lanes shifted down, odd lanes doubled (their high half) */
    const __m256i x = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_add_epi64(po, po), 0xAA);
    const __m256i rem = _mm256_add_epi32(_mm256_and_si256(x, q->mask), _mm256_cmpgt_epi32(_mm256_setzero_si256(), x));
    return _mm256_sub_epi32(_mm256_srav_epi32(x, q->rsh), _mm256_cmpgt_epi32(rem, q->thr));
#else
    if (flags & XQ_FAST) {
        const __m128i pe = _mm_add_epi64(_mm_mul_epi32(acc, q->mult), q->rnd_e);
        const __m128i po = _mm_add_epi64(_mm_mul_epi32(_mm_srli_epi64(acc, 32), q->mult_o), q->rnd_o);
        const __m128i x0 = _mm_blend_epi16(_mm_srli_epi64(pe, 31), _mm_add_epi64(po, po), 0xCC);
        __m128i neg = _mm_srai_epi32(acc, 31);
        if (flags & XQ_R0) neg = _mm_and_si128(neg, q->rpos);
        const __m128i x = _mm_add_epi32(x0, neg);
        if (flags & XQ_UNIFORM) return _mm_sra_epi32(x, _mm_cvtsi32_si128(q->rsh0));
        const int32_t *r = (const int32_t *)(const void *)&q->rsh;
        const __m128i s0 = _mm_sra_epi32(x, _mm_cvtsi32_si128(r[0]));
        const __m128i s1 = _mm_sra_epi32(x, _mm_cvtsi32_si128(r[1]));
        const __m128i s2 = _mm_sra_epi32(x, _mm_cvtsi32_si128(r[2]));
        const __m128i s3 = _mm_sra_epi32(x, _mm_cvtsi32_si128(r[3]));
        return _mm_blend_epi16(_mm_blend_epi16(s0, s1, 0x0C), _mm_blend_epi16(s2, s3, 0xC0), 0xF0);
    }
    if (flags & XQ_LEFT) acc = _mm_mullo_epi32(acc, q->lsh);
    const __m128i r30 = _mm_set1_epi64x((int64_t)1 << 30);
    const __m128i pe = _mm_add_epi64(_mm_mul_epi32(acc, q->mult), r30);
    const __m128i po = _mm_add_epi64(_mm_mul_epi32(_mm_srli_epi64(acc, 32), q->mult_o), r30);
    const __m128i x = _mm_blend_epi16(_mm_srli_epi64(pe, 31), _mm_add_epi64(po, po), 0xCC);
    const __m128i rem = _mm_add_epi32(_mm_and_si128(x, q->mask), _mm_cmpgt_epi32(_mm_setzero_si128(), x));
    __m128i s;
    if (flags & XQ_UNIFORM) {
        s = _mm_sra_epi32(x, _mm_cvtsi32_si128(q->rsh0));
    } else {
        /* no per-lane shift before AVX2: four shifts, blended */
        const int32_t *r = (const int32_t *)(const void *)&q->rsh;
        const __m128i s0 = _mm_sra_epi32(x, _mm_cvtsi32_si128(r[0]));
        const __m128i s1 = _mm_sra_epi32(x, _mm_cvtsi32_si128(r[1]));
        const __m128i s2 = _mm_sra_epi32(x, _mm_cvtsi32_si128(r[2]));
        const __m128i s3 = _mm_sra_epi32(x, _mm_cvtsi32_si128(r[3]));
        s = _mm_blend_epi16(_mm_blend_epi16(s0, s1, 0x0C), _mm_blend_epi16(s2, s3, 0xC0), 0xF0);
    }
    return _mm_sub_epi32(s, _mm_cmpgt_epi32(rem, q->thr));
#endif
}

/* Output stage constants of an op. */
typedef struct {
    xv ooff;
    __m128i omin, omax; /* act_min, act_max as int8 in every byte */
} xo;

static inline xo xo_make(int32_t output_offset, int32_t act_min, int32_t act_max) {
    xo o;
    o.ooff = xv_set1(output_offset);
    o.omin = _mm_set1_epi8((char)act_min);
    o.omax = _mm_set1_epi8((char)act_max);
    return o;
}

/* Two requantised vectors r0, r1 (int32, + output offset already) -> XNR int8, clamped, stored (n bytes of
 * them: n == XNR is a plain store). `dw` selects the lane order: GEMM vectors are channels [0, XVL) and
 * [XVL, 2 XVL); depthwise vectors are the punpck{l,h}wd orders (AVX2: {0-3, 8-11} and {4-7, 12-15}). */
XC_INLINE void xo_store2(int8_t *dst, xv r0, xv r1, const xo *o, int n, int dw) {
#if defined(__AVX2__)
    const __m256i s16 = _mm256_packs_epi32(r0, r1);
    const __m256i s8 = _mm256_packs_epi16(s16, s16);
    /* GEMM: dwords 0, 4, 1, 5 hold channels 0-3, 4-7, 8-11, 12-15; depthwise: 0, 1, 4, 5 */
    const __m256i idx = dw ? _mm256_setr_epi32(0, 1, 4, 5, 0, 0, 0, 0) : _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0);
    __m128i b = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(s8, idx));
    b = _mm_min_epi8(_mm_max_epi8(b, o->omin), o->omax);
    if (n == XNR) {
        _mm_storeu_si128((__m128i *)(void *)dst, b);
    } else {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)(void *)tmp, b);
        memcpy(dst, tmp, (size_t)n);
    }
#else
    (void)dw;
    const __m128i s16 = _mm_packs_epi32(r0, r1);
    __m128i b = _mm_packs_epi16(s16, s16);
    b = _mm_min_epi8(_mm_max_epi8(b, o->omin), o->omax);
    if (n == XNR) {
        _mm_storel_epi64((__m128i *)(void *)dst, b);
    } else {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)(void *)tmp, b);
        memcpy(dst, tmp, (size_t)n);
    }
#endif
}

/* n int8 -> int16 */
static inline void xc_sext(int16_t *dst, const int8_t *src, int n) {
    int i = 0;
#if defined(__AVX2__)
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
#endif
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(src + i))));
    for (; i < n; i++) dst[i] = src[i];
}

/* ==== CONV_2D ================================================================================================= */

typedef struct {
    int K, kpad, kpairs; /* K = filter_h * filter_w * filter_in_c; kpad = K rounded up to even; kpairs = kpad / 2 */
    int groups, fpg, nblk; /* filters per group; XNR-channel blocks per group */
    int pointwise;         /* 1x1, stride 1 (no padding then): rows of input are rows of the GEMM */
    xc_recheck recheck;
    size_t w_off, b_off, q_off; /* from the start of the packed block */
} xc_hdr;

static size_t xc_layout(const ev_op *op, xc_hdr *h) {
    const int32_t *p = op->params;
    const int fh = p[EV_CONV_FILTER_H], fw = p[EV_CONV_FILTER_W], fic = p[EV_CONV_FILTER_IN_C];
    const int out_c = p[EV_CONV_OUT_C];
    memset(h, 0, sizeof *h);
    h->K = fh * fw * fic;
    h->kpad = (h->K + 1) & ~1;
    h->kpairs = h->kpad / 2;
    h->groups = p[EV_CONV_IN_C] / fic;
    h->fpg = out_c / h->groups;
    h->nblk = (h->fpg + XNR - 1) / XNR;
    h->pointwise = fh == 1 && fw == 1 && p[EV_CONV_STRIDE_H] == 1 && p[EV_CONV_STRIDE_W] == 1 &&
                   p[EV_CONV_PAD_TOP] == 0 && p[EV_CONV_PAD_LEFT] == 0 && p[EV_CONV_IN_H] == p[EV_CONV_OUT_H] &&
                   p[EV_CONV_IN_W] == p[EV_CONV_OUT_W];
    const size_t blocks = (size_t)h->groups * h->nblk;
    size_t off = xc_align(sizeof *h);
    h->w_off = off;
    off += xc_align(blocks * h->kpairs * XNR * 2 * sizeof(int16_t));
    h->b_off = off;
    off += xc_align(blocks * XNR * sizeof(int32_t));
    h->q_off = off;
    off += xc_align(blocks * 2 * sizeof(xq));
    return off;
}

static void xc_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    xc_hdr h;
    *packed_bytes = xc_layout(op, &h);
    *scratch_bytes = (size_t)XMR * h.kpad * sizeof(int16_t) + 64;
}

static void xc_pack(const ev_op *op, void *packed) {
    xc_hdr h;
    xc_layout(op, &h);
    const int32_t *p = op->params;
    const int out_c = p[EV_CONV_OUT_C];
    const int32_t input_offset = p[EV_CONV_INPUT_OFFSET];
    const int32_t *mult = p + EV_CONV_NPARAMS, *shift = mult + out_c;
    const int8_t *filter = op->tensors[1];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    uint8_t *base = packed;
    int16_t *w = (int16_t *)(void *)(base + h.w_off);
    int32_t *b = (int32_t *)(void *)(base + h.b_off);
    xq *q = (xq *)(void *)(base + h.q_off);
    int64_t *bound = malloc((size_t)out_c * sizeof *bound); /* NULL: unknown, the exact form everywhere */
    for (int oc = 0; bound && oc < out_c; oc++)
        bound[oc] = xq_channel_bound(filter + (size_t)oc * h.K, (size_t)h.K, 1, bias, oc);
    xc_recheck_fill(&h.recheck, op);
    for (int g = 0; g < h.groups; g++) {
        for (int j = 0; j < h.nblk; j++) {
            const size_t blk = (size_t)g * h.nblk + j;
            int chan[XNR];
            for (int c = 0; c < XNR; c++) {
                const int f = j * XNR + c; /* filter within the group */
                const int oc = f < h.fpg ? g * h.fpg + f : -1;
                chan[c] = oc;
                int16_t *wc = w + blk * h.kpairs * XNR * 2;
                uint32_t sum = 0;
                for (int k = 0; k < h.kpad; k++) {
                    const int32_t v = (oc >= 0 && k < h.K) ? filter[(size_t)oc * h.K + k] : 0;
                    wc[((size_t)(k / 2) * XNR + c) * 2 + (k % 2)] = (int16_t)v;
                    sum += (uint32_t)v;
                }
                b[blk * XNR + c] =
                    oc >= 0 ? (int32_t)((bias ? (uint32_t)bias[oc] : 0u) + (uint32_t)input_offset * sum) : 0;
            }
            xq_fill(&q[blk * 2], mult, shift, bound, chan);
            xq_fill(&q[blk * 2 + 1], mult, shift, bound, chan + XVL);
        }
    }
    free(bound);
    memcpy(base, &h, sizeof h);
}

/* The register tile: mr pixels (rows of a, stride lda int16) x nv vectors of output channels, over all kpairs;
 * accumulators start at the folded bias. Stores n channels of each pixel at out + pixel * ldo. */
XC_INLINE void xc_tile(const int mr, const int nv, int kpairs, const int16_t *a, size_t lda, const xv *w,
                       const int32_t *bias, const xq *q, const xo *o, int8_t *out, size_t ldo,
                       int n) {
    xv acc[XMR][2];
    const xv b0 = xv_load(bias), b1 = xv_load(bias + XVL);
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        acc[i][0] = b0;
        acc[i][1] = b1;
    }
    const int16_t *ap[XMR];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) ap[i] = a + (size_t)i * lda;
    for (int k = 0; k < kpairs; k++) {
        const xv w0 = xv_load(w + 2 * k);
        const xv w1 = nv > 1 ? xv_load(w + 2 * k + 1) : w0;
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const xv x = xv_set1(xc_load32(ap[i] + 2 * k));
            acc[i][0] = xv_add(acc[i][0], xv_madd(x, w0));
            if (nv > 1) acc[i][1] = xv_add(acc[i][1], xv_madd(x, w1));
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        const xv r0 = xv_add(xq_apply(acc[i][0], &q[0]), o->ooff);
        const xv r1 = nv > 1 ? xv_add(xq_apply(acc[i][1], &q[1]), o->ooff) : r0;
        xo_store2(out + (size_t)i * ldo, r0, r1, o, n, 0);
    }
}

/* mr pixels of a (already int16) against every channel block of group g. */
static inline void xc_run_tiles(const xc_hdr *h, const uint8_t *base, int g, int mr, const int16_t *a,
                                const xo *o, int8_t *out, size_t ldo) {
    const xv *wall = (const xv *)(const void *)(base + h->w_off);
    const int32_t *ball = (const int32_t *)(const void *)(base + h->b_off);
    const xq *qall = (const xq *)(const void *)(base + h->q_off);
    for (int j = 0; j < h->nblk; j++) {
        const size_t blk = (size_t)g * h->nblk + j;
        const xv *w = wall + blk * h->kpairs * 2;
        const int32_t *b = ball + blk * XNR;
        const xq *q = qall + blk * 2;
        int8_t *dst = out + (size_t)j * XNR;
        const int n = h->fpg - j * XNR < XNR ? h->fpg - j * XNR : XNR;
        const size_t lda = (size_t)h->kpad;
#define XC_TILE_CASE(MR)                                                                                           \
    case MR:                                                                                                       \
        if (n > XVL)                                                                                               \
            xc_tile(MR, 2, h->kpairs, a, lda, w, b, q, o, dst, ldo, n);                                          \
        else                                                                                                       \
            xc_tile(MR, 1, h->kpairs, a, lda, w, b, q, o, dst, ldo, n);                                          \
        break;
        switch (mr) {
            XC_TILE_CASE(1)
#if XMR >= 2
            XC_TILE_CASE(2)
#endif
#if XMR >= 3
            XC_TILE_CASE(3)
#endif
#if XMR >= 4
            XC_TILE_CASE(4)
#endif
#if XMR >= 5
            XC_TILE_CASE(5)
#endif
#if XMR >= 6
            XC_TILE_CASE(6)
#endif
        default:
            break;
        }
#undef XC_TILE_CASE
    }
}

static void xc_conv(const ev_op *op, int begin, int end, int thread) {
    const uint8_t *base = op->packed;
    const xc_hdr *h = (const xc_hdr *)(const void *)base;
    const int32_t *p = op->params;
    const int in_h = p[EV_CONV_IN_H], in_w = p[EV_CONV_IN_W], in_c = p[EV_CONV_IN_C];
    const int out_h = p[EV_CONV_OUT_H], out_w = p[EV_CONV_OUT_W], out_c = p[EV_CONV_OUT_C];
    const int fh = p[EV_CONV_FILTER_H], fw = p[EV_CONV_FILTER_W], fic = p[EV_CONV_FILTER_IN_C];
    const int sh = p[EV_CONV_STRIDE_H], sw = p[EV_CONV_STRIDE_W];
    const int dh = p[EV_CONV_DILATION_H], dw = p[EV_CONV_DILATION_W];
    const int pad_top = p[EV_CONV_PAD_TOP], pad_left = p[EV_CONV_PAD_LEFT];
    const int16_t zp = (int16_t)(-p[EV_CONV_INPUT_OFFSET]);
    const xo o = xo_make(p[EV_CONV_OUTPUT_OFFSET], p[EV_CONV_ACT_MIN], p[EV_CONV_ACT_MAX]);
    const int8_t *input = op->tensors[0];
    int8_t *output = op->tensors[3];
    int16_t *a = (int16_t *)(void *)((uint8_t *)op->scratch + (size_t)thread * op->scratch_size);
    if (!xc_recheck_ok(&h->recheck, op)) {
        ev_conv_2d_ref(op, begin, end, thread);
        return;
    }

    if (h->pointwise) {
        /* rows [begin, end) are one run of pixels, the same in input and output */
        const size_t p0 = (size_t)begin * out_w, p1 = (size_t)end * out_w;
        for (size_t px = p0; px < p1; px += XMR) {
            const int mr = p1 - px < XMR ? (int)(p1 - px) : XMR;
            for (int g = 0; g < h->groups; g++) {
                for (int i = 0; i < mr; i++)
                    xc_sext(a + (size_t)i * h->kpad, input + (px + i) * in_c + (size_t)g * fic, fic);
                xc_run_tiles(h, base, g, mr, a, &o, output + px * out_c + (size_t)g * h->fpg, (size_t)out_c);
            }
        }
        return;
    }
    for (int item = begin; item < end; item++) {
        const int b = item / out_h, oy = item % out_h;
        const int iy0 = oy * sh - pad_top;
        int8_t *out_row = output + ((size_t)b * out_h + oy) * out_w * out_c;
        for (int ox0 = 0; ox0 < out_w; ox0 += XMR) {
            const int mr = out_w - ox0 < XMR ? out_w - ox0 : XMR;
            for (int g = 0; g < h->groups; g++) {
                /* im2col: the mr pixels' windows, tap by tap, the zero point where a tap is outside */
                for (int i = 0; i < mr; i++) {
                    int16_t *dst = a + (size_t)i * h->kpad;
                    const int ix0 = (ox0 + i) * sw - pad_left;
                    const int inside_x = ix0 >= 0 && ix0 + (fw - 1) * dw < in_w;
                    for (int fy = 0; fy < fh; fy++) {
                        const int iy = iy0 + fy * dh;
                        if (inside_x && dw == 1 && h->groups == 1 && iy >= 0 && iy < in_h) {
                            /* the window row is fw * in_c contiguous bytes */
                            xc_sext(dst, input + (((size_t)b * in_h + iy) * in_w + ix0) * in_c, fw * fic);
                            dst += fw * fic;
                            continue;
                        }
                        for (int fx = 0; fx < fw; fx++, dst += fic) {
                            const int ix = ix0 + fx * dw;
                            if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
                                for (int c = 0; c < fic; c++) dst[c] = zp;
                            } else {
                                xc_sext(dst, input + (((size_t)b * in_h + iy) * in_w + ix) * in_c + (size_t)g * fic,
                                        fic);
                            }
                        }
                    }
                }
                xc_run_tiles(h, base, g, mr, a, &o, out_row + (size_t)ox0 * out_c + (size_t)g * h->fpg,
                             (size_t)out_c);
            }
        }
    }
}

/* ==== DEPTHWISE_CONV_2D =======================================================================================
 *
 * Pair rows. For an input row iy the kernel builds, once, P[u][c] = (X(i), X(i + dilation_w)) as two int16 per
 * channel (c padded to Cp, a multiple of XNR), for the window positions i = u*g - pad_left the output row uses
 * (g = gcd(stride_w, 2 dilation_w): every pair of horizontal taps (fx, fx+1) starts at such a position),
 * X(i) = the pixel, or the zero point outside the image. Then a pair of taps of XNR channels is two aligned
 * loads and two pmaddwd against weights packed as ([fy][fx], [fy][fx+1]) per channel (0 for the missing second
 * tap of an odd filter width); rows above and below the image use a constant row of zero points (packed). Each
 * thread keeps filter_h built rows, reused by the next output rows (stride 1 builds one new row per output row). */

typedef struct {
    int C, Cp;      /* output channels; rounded up to XNR */
    int fh, jp;     /* filter rows; tap pairs per filter row, ceil(filter_w / 2) */
    int g, E;       /* entry step; entries per pair row */
    int ustep, jstep; /* entries between output pixels, between tap pairs */
    int use_ref;      /* the pair rows would be too large (absurd dilations): the reference kernel runs */
    xc_recheck recheck;
    size_t w_off, b_off, q_off, zp_off, zprow_off;
} xd_hdr;

/* The output channel (within its block) of lane l of vector v of a block: the pair rows hold a block's XNR
 * channels in punpck{l,h}wd order (AVX2: vector 0 = channels 0-3, 8-11; vector 1 = 4-7, 12-15; SSE4.1: 0-3,
 * 4-7), and so do the packed weights, biases and requantisation params. */
static inline int xd_chan(int v, int l) { return (l >> 2) * 8 + v * 4 + (l & 3); }

/* Pair rows of one thread above this size: the op runs the reference kernel instead (no real model comes near:
 * 1920-wide rows of 64 channels and a 5x5 filter take 2.5 MB). */
#define XD_MAX_PAIR_ROWS_BYTES (64.0 * 1024 * 1024)

static int xd_gcd(int a, int b) {
    while (b) {
        const int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static size_t xd_layout(const ev_op *op, xd_hdr *h) {
    const int32_t *p = op->params;
    const int out_w = p[EV_DW_OUT_W], fw = p[EV_DW_FILTER_W], sw = p[EV_DW_STRIDE_W], dw = p[EV_DW_DILATION_W];
    memset(h, 0, sizeof *h);
    h->C = p[EV_DW_OUT_C];
    h->Cp = (h->C + XNR - 1) / XNR * XNR;
    h->fh = p[EV_DW_FILTER_H];
    h->jp = (fw + 1) / 2;
    h->g = xd_gcd(sw, 2 * dw);
    h->ustep = sw / h->g;
    h->jstep = 2 * dw / h->g;
    /* last entry used: ((out_w - 1) * stride_w + 2 (jp - 1) * dilation_w) / g */
    h->E = (out_w > 0 ? (out_w - 1) * h->ustep : 0) + (h->jp - 1) * h->jstep + 1;
    const int ncb = h->Cp / XNR;
    size_t off = xc_align(sizeof *h);
    if ((double)h->fh * h->E * h->Cp * 4 > XD_MAX_PAIR_ROWS_BYTES) {
        h->use_ref = 1;
        return off;
    }
    h->w_off = off;
    off += xc_align((size_t)ncb * h->fh * h->jp * 2 * sizeof(xv));
    h->b_off = off;
    off += xc_align((size_t)ncb * 2 * sizeof(xv));
    h->q_off = off;
    off += xc_align((size_t)ncb * 2 * sizeof(xq));
    h->zp_off = off; /* Cp + 64 bytes of the zero point (int8) */
    off += xc_align((size_t)h->Cp + 64);
    h->zprow_off = off; /* a pair row of zero points */
    off += xc_align((size_t)h->E * h->Cp * 2 * sizeof(int16_t));
    return off;
}

/* Per-thread scratch: filter_h pair rows, then the input row each slot holds (tag), the rows wanted by the
 * current output row, and their pointers (byte offsets from the thread's scratch). */
typedef struct {
    size_t row_bytes, tag, want, busy, ptr, total;
} xd_scratch;

static void xd_scratch_layout(const xd_hdr *h, xd_scratch *sl) {
    sl->row_bytes = xc_align((size_t)h->E * h->Cp * 2 * sizeof(int16_t));
    sl->tag = (size_t)h->fh * sl->row_bytes;
    sl->want = sl->tag + xc_align((size_t)h->fh * sizeof(int));
    sl->busy = sl->want + xc_align((size_t)h->fh * sizeof(int));
    sl->ptr = sl->busy + xc_align((size_t)h->fh);
    sl->total = sl->ptr + xc_align((size_t)h->fh * sizeof(void *));
}

static void xd_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    xd_hdr h;
    xd_scratch sl;
    *packed_bytes = xd_layout(op, &h);
    xd_scratch_layout(&h, &sl);
    *scratch_bytes = h.use_ref ? 0 : sl.total;
}

static void xd_pack(const ev_op *op, void *packed) {
    xd_hdr h;
    xd_layout(op, &h);
    if (h.use_ref) {
        memcpy(packed, &h, sizeof h);
        return;
    }
    const int32_t *p = op->params;
    const int C = h.C, fw = p[EV_DW_FILTER_W];
    const int32_t input_offset = p[EV_DW_INPUT_OFFSET];
    const int32_t *mult = p + EV_DW_NPARAMS, *shift = mult + C;
    const int8_t *filter = op->tensors[1];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    uint8_t *base = packed;
    int16_t *w = (int16_t *)(void *)(base + h.w_off);
    int32_t *b = (int32_t *)(void *)(base + h.b_off);
    xq *q = (xq *)(void *)(base + h.q_off);
    const int ncb = h.Cp / XNR;
    int64_t *bound = malloc((size_t)C * sizeof *bound); /* NULL: unknown, the exact form everywhere */
    for (int oc = 0; bound && oc < C; oc++)
        bound[oc] = xq_channel_bound(filter + oc, (size_t)h.fh * fw, (size_t)C, bias, oc);
    xc_recheck_fill(&h.recheck, op);
    for (int cb = 0; cb < ncb; cb++) {
        for (int v = 0; v < 2; v++) {
            int chan[XVL];
            for (int l = 0; l < XVL; l++) {
                const int oc = cb * XNR + xd_chan(v, l);
                chan[l] = oc < C ? oc : -1;
                uint32_t sum = 0;
                for (int fy = 0; fy < h.fh; fy++)
                    for (int j = 0; j < h.jp; j++)
                        for (int t = 0; t < 2; t++) {
                            const int fx = 2 * j + t;
                            const int32_t wt = (oc < C && fx < fw) ? filter[((size_t)fy * fw + fx) * C + oc] : 0;
                            w[((((size_t)cb * h.fh + fy) * h.jp + j) * 2 + v) * (XVL * 2) + l * 2 + t] = (int16_t)wt;
                            sum += (uint32_t)wt;
                        }
                b[((size_t)cb * 2 + v) * XVL + l] =
                    oc < C ? (int32_t)((bias ? (uint32_t)bias[oc] : 0u) + (uint32_t)input_offset * sum) : 0;
            }
            xq_fill(&q[cb * 2 + v], mult, shift, bound, chan);
        }
    }
    free(bound);
    const int8_t zp = (int8_t)(-input_offset);
    memset(base + h.zp_off, zp, (size_t)h.Cp + 64);
    int16_t *zr = (int16_t *)(void *)(base + h.zprow_off);
    for (size_t i = 0; i < (size_t)h.E * h.Cp * 2; i++) zr[i] = zp;
    memcpy(base, &h, sizeof h);
}

/* XNR channels of pairs (a[c], b[c]), in punpck{l,h}wd order */
XC_INLINE void xd_pairs(int16_t *d, const int8_t *a, const int8_t *b) {
#if defined(__AVX2__)
    const __m256i xa = xv_sext_xnr(a), xb = xv_sext_xnr(b);
    _mm256_store_si256((__m256i *)(void *)d, _mm256_unpacklo_epi16(xa, xb));
    _mm256_store_si256((__m256i *)(void *)(d + 16), _mm256_unpackhi_epi16(xa, xb));
#else
    const __m128i xa = _mm_loadl_epi64((const __m128i *)(const void *)a);
    const __m128i xb = _mm_loadl_epi64((const __m128i *)(const void *)b);
    const __m128i ab = _mm_unpacklo_epi8(xa, xb);
    _mm_store_si128((__m128i *)(void *)d, _mm_cvtepi8_epi16(ab));
    _mm_store_si128((__m128i *)(void *)(d + 8), _mm_cvtepi8_epi16(_mm_srli_si128(ab, 8)));
#endif
}

/* Build the pair row of one input row (row: its in_w pixels of in_c channels). */
static void xd_build(const xd_hdr *h, int16_t *P, const int8_t *row, const int8_t *zp8, int in_w, int in_c, int dm,
                     int pad_left, int dw) {
    const int C = h->C, Cp = h->Cp;
    const int8_t zp = zp8[0];
    for (int u = 0; u < h->E; u++) {
        const int i0 = u * h->g - pad_left, i1 = i0 + dw;
        const int8_t *s0 = (i0 >= 0 && i0 < in_w) ? row + (size_t)i0 * in_c : NULL;
        const int8_t *s1 = (i1 >= 0 && i1 < in_w) ? row + (size_t)i1 * in_c : NULL;
        /* channel block cb of entry u at P + (cb * E + u) * XNR * 2 */
        int16_t *d = P + (size_t)u * XNR * 2;
        const size_t cbstep = (size_t)h->E * XNR * 2;
        if (dm == 1) {
            if (!s0) s0 = zp8;
            if (!s1) s1 = zp8;
            int c = 0;
            for (; c + XNR <= C; c += XNR, d += cbstep) xd_pairs(d, s0 + c, s1 + c);
            if (c < C) {
                int8_t t0[XNR], t1[XNR];
                memset(t0, 0, sizeof t0);
                memset(t1, 0, sizeof t1);
                memcpy(t0, s0 + c, (size_t)(C - c));
                memcpy(t1, s1 + c, (size_t)(C - c));
                xd_pairs(d, t0, t1);
            }
        } else {
            for (int oc = 0; oc < Cp; oc++) {
                const int c = oc % XNR; /* its lane: inverse of xd_chan */
                const int v = (c >> 2) & 1, l = (c >> 3) * 4 + (c & 3);
                int16_t *e = d + (size_t)(oc / XNR) * cbstep + ((size_t)v * XVL + l) * 2;
                e[0] = oc < C ? (s0 ? s0[oc / dm] : zp) : 0;
                e[1] = oc < C ? (s1 ? s1[oc / dm] : zp) : 0;
            }
        }
    }
}

/* NP consecutive output pixels of one channel block: each weight pair is loaded once into registers and used
 * for all of them (one load per pmaddwd besides: the loop is load-bound otherwise). */
XC_INLINE void xd_pixels(const int FH, const int JP, const int NP, const int16_t *const *r, size_t ustep,
                         size_t jstep, const xv *w, xv b0, xv b1, const xq *q, const xo *o,
                         int8_t *dst, size_t C, int n) {
    xv a[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < NP; i++) {
        a[i][0] = b0;
        a[i][1] = b1;
    }
#pragma GCC unroll 16
    for (int fy = 0; fy < FH; fy++) {
        const int16_t *x = r[fy];
#pragma GCC unroll 8
        for (int j = 0; j < JP; j++, x += jstep) {
            const xv w0 = xv_load(w + (fy * JP + j) * 2), w1 = xv_load(w + (fy * JP + j) * 2 + 1);
#pragma GCC unroll 4
            for (int i = 0; i < NP; i++) {
                a[i][0] = xv_add(a[i][0], xv_madd(xv_load(x + i * ustep), w0));
                a[i][1] = xv_add(a[i][1], xv_madd(xv_load(x + i * ustep + 2 * XVL), w1));
                XC_PIN(a[i][0]);
                XC_PIN(a[i][1]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NP; i++) {
        const xv r0 = xv_add(xq_apply(a[i][0], &q[0]), o->ooff);
        const xv r1 = xv_add(xq_apply(a[i][1], &q[1]), o->ooff);
        xo_store2(dst + (size_t)i * C, r0, r1, o, n, 1);
    }
}

/* One output row: for every channel block, every pixel, 4 at a time. P[fy]: the pair rows. */
XC_INLINE void xd_row(const int FH, const int JP, const int US, const int JS, const xd_hdr *h, const uint8_t *base,
                      const int16_t *const *P, int out_w, const xo *o, int8_t *out_row) {
    const xv *wall = (const xv *)(const void *)(base + h->w_off);
    const xv *ball = (const xv *)(const void *)(base + h->b_off);
    const xq *qall = (const xq *)(const void *)(base + h->q_off);
    const int C = h->C, Cp = h->Cp, ncb = Cp / XNR;
    /* int16 units: between pixels, tap pairs, channel blocks (the pair rows are channel-block major); US, JS:
     * the entry steps as compile-time constants when nonzero */
    const size_t ustep = (size_t)(US ? US : h->ustep) * XNR * 2, jstep = (size_t)(JS ? JS : h->jstep) * XNR * 2;
    const size_t cbstep = (size_t)h->E * XNR * 2;
    for (int cb = 0; cb < ncb; cb++) {
        const xv *w = wall + (size_t)cb * FH * JP * 2;
        const xv b0 = ball[cb * 2], b1 = ball[cb * 2 + 1];
        const xq *q = qall + cb * 2;
        const int n = C - cb * XNR < XNR ? C - cb * XNR : XNR;
        const int16_t *r[16];
#pragma GCC unroll 16
        for (int fy = 0; fy < FH; fy++) r[fy] = P[fy] + (size_t)cb * cbstep;
        int8_t *dst = out_row + (size_t)cb * XNR;
        int ox = 0;
        for (; ox + 4 <= out_w; ox += 4) {
            xd_pixels(FH, JP, 4, r, ustep, jstep, w, b0, b1, q, o, dst, (size_t)C, n);
#pragma GCC unroll 16
            for (int fy = 0; fy < FH; fy++) r[fy] += 4 * ustep;
            dst += 4 * (size_t)C;
        }
        switch (out_w - ox) {
        case 3:
            xd_pixels(FH, JP, 3, r, ustep, jstep, w, b0, b1, q, o, dst, (size_t)C, n);
            break;
        case 2:
            xd_pixels(FH, JP, 2, r, ustep, jstep, w, b0, b1, q, o, dst, (size_t)C, n);
            break;
        case 1:
            xd_pixels(FH, JP, 1, r, ustep, jstep, w, b0, b1, q, o, dst, (size_t)C, n);
            break;
        default:
            break;
        }
    }
}

/* the general case of xd_row: any filter height (pair rows through an array) */
static void xd_row_any(const xd_hdr *h, const uint8_t *base, const int16_t *const *P, int out_w, const xo *o,
                       int8_t *out_row) {
    const xv *wall = (const xv *)(const void *)(base + h->w_off);
    const xv *ball = (const xv *)(const void *)(base + h->b_off);
    const xq *qall = (const xq *)(const void *)(base + h->q_off);
    const int C = h->C, Cp = h->Cp, ncb = Cp / XNR, FH = h->fh, JP = h->jp;
    const size_t ustep = (size_t)h->ustep * XNR * 2, jstep = (size_t)h->jstep * XNR * 2;
    const size_t cbstep = (size_t)h->E * XNR * 2;
    for (int cb = 0; cb < ncb; cb++) {
        const xv *w = wall + (size_t)cb * FH * JP * 2;
        const xq *q = qall + cb * 2;
        const int n = C - cb * XNR < XNR ? C - cb * XNR : XNR;
        int8_t *dst = out_row + (size_t)cb * XNR;
        for (int ox = 0; ox < out_w; ox++, dst += C) {
            xv a0 = ball[cb * 2], a1 = ball[cb * 2 + 1];
            for (int fy = 0; fy < FH; fy++) {
                const int16_t *x = P[fy] + (size_t)cb * cbstep + (size_t)ox * ustep;
                for (int j = 0; j < JP; j++, x += jstep) {
                    a0 = xv_add(a0, xv_madd(xv_load(x), w[(fy * JP + j) * 2]));
                    a1 = xv_add(a1, xv_madd(xv_load(x + 2 * XVL), w[(fy * JP + j) * 2 + 1]));
                }
                XC_PIN(a0);
                XC_PIN(a1);
            }
            const xv r0 = xv_add(xq_apply(a0, &q[0]), o->ooff);
            const xv r1 = xv_add(xq_apply(a1, &q[1]), o->ooff);
            xo_store2(dst, r0, r1, o, n, 1);
        }
    }
}

static void xd_conv(const ev_op *op, int begin, int end, int thread) {
    const uint8_t *base = op->packed;
    const xd_hdr *h = (const xd_hdr *)(const void *)base;
    if (h->use_ref || !xc_recheck_ok(&h->recheck, op)) {
        ev_depthwise_conv_2d_ref(op, begin, end, thread);
        return;
    }
    const int32_t *p = op->params;
    const int in_h = p[EV_DW_IN_H], in_w = p[EV_DW_IN_W], in_c = p[EV_DW_IN_C];
    const int out_h = p[EV_DW_OUT_H], out_w = p[EV_DW_OUT_W];
    const int dm = p[EV_DW_DEPTH_MULTIPLIER];
    const int sh = p[EV_DW_STRIDE_H], dh = p[EV_DW_DILATION_H], dw = p[EV_DW_DILATION_W];
    const int pad_top = p[EV_DW_PAD_TOP], pad_left = p[EV_DW_PAD_LEFT];
    const int fh = h->fh, C = h->C;
    const xo o = xo_make(p[EV_DW_OUTPUT_OFFSET], p[EV_DW_ACT_MIN], p[EV_DW_ACT_MAX]);
    const int8_t *input = op->tensors[0];
    int8_t *output = op->tensors[3];
    const int8_t *zp8 = (const int8_t *)(base + h->zp_off);
    const int16_t *zprow = (const int16_t *)(const void *)(base + h->zprow_off);
    uint8_t *scr = (uint8_t *)op->scratch + (size_t)thread * op->scratch_size;
    xd_scratch sl;
    xd_scratch_layout(h, &sl);
    const size_t row_bytes = sl.row_bytes;
    int *tag = (int *)(void *)(scr + sl.tag); /* the input row (b * in_h + iy) a slot holds, or -1 */
    int *want = (int *)(void *)(scr + sl.want);
    uint8_t *busy = scr + sl.busy; /* slot holds a row the current output row needs */
    const int16_t **P = (const int16_t **)(void *)(scr + sl.ptr);
    for (int s = 0; s < fh; s++) tag[s] = -1; /* the input changed since the last call */

    for (int item = begin; item < end; item++) {
        const int b = item / out_h, oy = item % out_h;
        const int iy0 = oy * sh - pad_top;
        int8_t *out_row = output + ((size_t)b * out_h + oy) * out_w * C;
        /* the pair rows of this output row: reuse the slots that hold them, build the others in free slots */
        memset(busy, 0, (size_t)fh);
        for (int fy = 0; fy < fh; fy++) {
            const int iy = iy0 + fy * dh;
            want[fy] = (iy >= 0 && iy < in_h) ? b * in_h + iy : -1;
            P[fy] = zprow;
            if (want[fy] < 0) continue;
            for (int s = 0; s < fh; s++)
                if (tag[s] == want[fy]) {
                    P[fy] = (const int16_t *)(const void *)(scr + (size_t)s * row_bytes);
                    busy[s] = 1;
                    break;
                }
        }
        for (int fy = 0; fy < fh; fy++) {
            if (want[fy] < 0 || P[fy] != zprow) continue;
            int s = 0;
            while (busy[s]) s++; /* fh slots, at most fh rows wanted: one is free */
            int16_t *row = (int16_t *)(void *)(scr + (size_t)s * row_bytes);
            xd_build(h, row, input + (size_t)want[fy] * in_w * in_c, zp8, in_w, in_c, dm, pad_left, dw);
            tag[s] = want[fy];
            busy[s] = 1;
            P[fy] = row;
        }
        /* stride 1: pixels 1 entry apart, tap pairs 2; stride 2 (entries at even positions only): 1 and 1 */
        const int st1 = h->ustep == 1 && h->jstep == 2, st2 = h->ustep == 1 && h->jstep == 1;
        if (fh == 3 && h->jp == 2 && st1)
            xd_row(3, 2, 1, 2, h, base, P, out_w, &o, out_row);
        else if (fh == 3 && h->jp == 2 && st2)
            xd_row(3, 2, 1, 1, h, base, P, out_w, &o, out_row);
        else if (fh == 5 && h->jp == 3 && st1)
            xd_row(5, 3, 1, 2, h, base, P, out_w, &o, out_row);
        else if (fh == 5 && h->jp == 3 && st2)
            xd_row(5, 3, 1, 1, h, base, P, out_w, &o, out_row);
        else
            xd_row_any(h, base, P, out_w, &o, out_row);
    }
}

/* ==== FULLY_CONNECTED ========================================================================================= */

/* FULLY_CONNECTED packs nothing (its weights may be a run-time tensor): acc = sum w * (x + input_offset) + bias,
 * the int16 input row holding x + input_offset (in [-255, 255]: pair sums of products still fit int32). */
static void xf_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    *packed_bytes = 0;
    *scratch_bytes = xc_align(((size_t)op->params[EV_FC_DEPTH] + 32) * sizeof(int16_t));
}

/* n int8 + offset -> int16 (offset in [-127, 128]: the sums fit) */
static inline void xf_widen(int16_t *dst, const int8_t *src, int n, int32_t offset) {
    int i = 0;
#if defined(__AVX2__)
    const __m256i off16 = _mm256_set1_epi16((short)offset);
    for (; i + 16 <= n; i += 16) {
        const __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(src + i)));
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm256_add_epi16(x, off16));
    }
#endif
    const __m128i off8 = _mm_set1_epi16((short)offset);
    for (; i + 8 <= n; i += 8) {
        const __m128i x = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(src + i)));
        _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm_add_epi16(x, off8));
    }
    for (; i < n; i++) dst[i] = (int16_t)(src[i] + offset);
}

/* sum_d w[d] * x[d] (x: the input plus offset) for 4 rows of weights: vectors of 16 (AVX2) or 8 (SSE4.1) of
 * depth, then the scalar rest. Result: 4 int32 (wrapping). */
static inline __m128i xf_dot4(const int16_t *x, const int8_t *w0, size_t ldw, int depth) {
    const int8_t *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    int d = 0;
    __m128i r;
#if defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (; d + 16 <= depth; d += 16) {
        const __m256i xv16 = _mm256_load_si256((const __m256i *)(const void *)(x + d));
#define XF_W(wp) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)((wp) + d)))
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(xv16, XF_W(w0)));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(xv16, XF_W(w1)));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(xv16, XF_W(w2)));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(xv16, XF_W(w3)));
#undef XF_W
    }
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
#else
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (; d + 8 <= depth; d += 8) {
        const __m128i xv8 = _mm_load_si128((const __m128i *)(const void *)(x + d));
#define XF_W(wp) _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)((wp) + d)))
        a0 = _mm_add_epi32(a0, _mm_madd_epi16(xv8, XF_W(w0)));
        a1 = _mm_add_epi32(a1, _mm_madd_epi16(xv8, XF_W(w1)));
        a2 = _mm_add_epi32(a2, _mm_madd_epi16(xv8, XF_W(w2)));
        a3 = _mm_add_epi32(a3, _mm_madd_epi16(xv8, XF_W(w3)));
#undef XF_W
    }
    r = _mm_hadd_epi32(_mm_hadd_epi32(a0, a1), _mm_hadd_epi32(a2, a3));
#endif
    if (d < depth) {
        uint32_t t[4] = {0, 0, 0, 0};
        for (; d < depth; d++) {
            const uint32_t xd = (uint32_t)(int32_t)x[d];
            t[0] += xd * (uint32_t)(int32_t)w0[d];
            t[1] += xd * (uint32_t)(int32_t)w1[d];
            t[2] += xd * (uint32_t)(int32_t)w2[d];
            t[3] += xd * (uint32_t)(int32_t)w3[d];
        }
        r = _mm_add_epi32(r, _mm_loadu_si128((const __m128i *)(const void *)t));
    }
    return r;
}

/* TFLite's reference FC requantisation of 2 lanes: (int32) round_half_away((double)acc * scale), saturated. */
static inline __m128i xf_requant2(__m128i acc, const int32_t *scale_words) {
    const __m128d v = _mm_mul_pd(_mm_cvtepi32_pd(acc), _mm_loadu_pd((const double *)(const void *)scale_words));
    __m128d t = _mm_round_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m128d f = _mm_sub_pd(v, t); /* exact; NaN only when v is infinite, then t already saturates */
    const __m128d one = _mm_set1_pd(1.0);
    t = _mm_add_pd(t, _mm_and_pd(_mm_cmpge_pd(f, _mm_set1_pd(0.5)), one));
    t = _mm_sub_pd(t, _mm_and_pd(_mm_cmple_pd(f, _mm_set1_pd(-0.5)), one));
    t = _mm_min_pd(_mm_max_pd(t, _mm_set1_pd(-2147483648.0)), _mm_set1_pd(2147483647.0));
    return _mm_cvttpd_epi32(t);
}

static void xf_fc(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int depth = p[EV_FC_DEPTH], out_c = p[EV_FC_OUT_C], block = p[EV_FC_BLOCK];
    const int32_t output_offset = p[EV_FC_OUTPUT_OFFSET];
    const int32_t act_min = p[EV_FC_ACT_MIN], act_max = p[EV_FC_ACT_MAX];
    const int8_t *input = op->tensors[0], *weights = op->tensors[1];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    int8_t *output = op->tensors[3];
    const int blocks_per_row = (out_c + block - 1) / block;
    int16_t *x16 = (int16_t *)(void *)((uint8_t *)op->scratch + (size_t)thread * op->scratch_size);
    const __m128i ooff = _mm_set1_epi32(output_offset);
    const __m128i omin = _mm_set1_epi8((char)act_min), omax = _mm_set1_epi8((char)act_max);
    int converted = -1;

    for (int item = begin; item < end; item++) {
        const int row = item / blocks_per_row;
        const int oc_begin = (item % blocks_per_row) * block;
        const int oc_end = out_c - oc_begin > block ? oc_begin + block : out_c;
        if (row != converted) {
            xf_widen(x16, input + (size_t)row * depth, depth, p[EV_FC_INPUT_OFFSET]);
            converted = row;
        }
        int8_t *out = output + (size_t)row * out_c;
        int oc = oc_begin;
        for (; oc + 4 <= oc_end; oc += 4) {
            __m128i acc = xf_dot4(x16, weights + (size_t)oc * depth, (size_t)depth, depth);
            if (bias) acc = _mm_add_epi32(acc, _mm_loadu_si128((const __m128i *)(const void *)(bias + oc)));
            const int32_t *sw = p + EV_FC_NPARAMS + 2 * (size_t)oc;
            const __m128i lo = xf_requant2(acc, sw);
            const __m128i hi = xf_requant2(_mm_shuffle_epi32(acc, 0x0E), sw + 4);
            __m128i v = _mm_add_epi32(_mm_unpacklo_epi64(lo, hi), ooff);
            v = _mm_packs_epi32(v, v);
            v = _mm_packs_epi16(v, v);
            v = _mm_min_epi8(_mm_max_epi8(v, omin), omax);
            const int32_t word = _mm_cvtsi128_si32(v);
            memcpy(out + oc, &word, 4);
        }
        for (; oc < oc_end; oc++) {
            const int8_t *w = weights + (size_t)oc * depth;
            uint32_t acc = bias ? (uint32_t)bias[oc] : 0u;
            for (int d = 0; d < depth; d++) acc += (uint32_t)((int32_t)w[d] * (int32_t)x16[d]);
            const int32_t v = ev_round_to_i32((double)(int32_t)acc * ev_fc_scale(op, oc));
            out[oc] = ev_conv_finish(v, output_offset, act_min, act_max);
        }
    }
}

#endif /* EV_X86_CONV_H */
