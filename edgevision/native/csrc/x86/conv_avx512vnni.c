/* CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, AVX-512 VNNI (compiled with -mavx2 -mavx512f -mavx512bw
 * -mavx512vl -mavx512vnni -ffp-contract=off): products formed by vpdpbusd, four at a time per int32 lane, on
 * 512-bit vectors of 16 output channels (FULLY_CONNECTED: 256-bit). Same bytes as ref/conv_ref.c (the spec).
 * The requantisation arithmetic, the constant-weight rechecks and the depthwise row-reuse scheme are
 * x86_conv.h's (its header comment explains them); what is new is how the accumulators are formed, and the
 * requantisation and output stage done 16 lanes at a time (vq_apply, vo_store below).
 *
 * vpdpbusd. acc += a[4l] * b[4l] + ... + a[4l+3] * b[4l+3] per int32 lane l, a unsigned bytes, b signed bytes,
 * each product exact (|product| <= 255 * 128) and the four summed exactly in int32; the sum is added to acc
 * wrapping mod 2^32 (the non-saturating form: never vpdpbusds, which would clamp). So it is an exact int32
 * accumulation, which the spec allows to be reassociated (x86_conv.h). The weights are the signed operand as
 * they are; the activations x (int8) become unsigned as u = x + 128 (x ^ 0x80, a byte). Then
 *     sum_k w[k] * (x[k] + input_offset) = sum_k w[k] * u[k]  +  (input_offset - 128) * sum_k w[k]
 * and the second term joins the bias in the per-channel constant computed when the engine is built (mod 2^32).
 * A padding tap reads the zero point, u = 128 - input_offset (in [0, 255]: input_offset is in [-127, 128]),
 * which adds w * (128 - input_offset) + (input_offset - 128) * w = 0, as in x86_conv.h. Depth is taken 4 at a
 * time; the weights of the missing taps of the last quad are 0, so whatever bytes sit in the activations there
 * (some paths leave garbage) add nothing.
 *
 * Kernels:
 *   CONV_2D: an int8 GEMM, pixels x output channels, K = filter_h * filter_w * filter_in_c taken in quads. Blocks
 *     of VMR pixels are converted to u8 into a per-thread panel, quad-major: [k/4][VMR pixels][4] bytes, so that
 *     the tile addresses every pixel's quad from one pointer (1x1 stride-1 convolutions read their input rows as
 *     one run of pixels, transposed 4 pixels x 4 quads at a time; others gather the im2col rows, the zero point
 *     in the padding, then transpose them into the panel). A VMR x 16 tile (VMR accumulators of 16 channels)
 *     runs over K: broadcast 4 bytes of a pixel, vpdpbusd with the packed weights (int8 [k/4][16][4] per
 *     16-channel block). Accumulators start at the folded bias. Grouped convolutions run one GEMM per group.
 *   DEPTHWISE_CONV_2D: x86_conv.h's pair rows become quad rows (see that section below): four horizontally
 *     adjacent taps of a channel in one int32 lane, one vpdpbusd per quad of taps of 16 channels, 8 output
 *     pixels at a time with the weights in registers.
 *   FULLY_CONNECTED: GEMV with nothing packed (its weights may be a run-time tensor): per row the input becomes
 *     u8 once; 4 output channels at a time, vpdpbusd of 32 bytes of depth with each weight row (the depth tail
 *     by masked loads, zeros on both sides), and vpdpbusd of the same weights with the constant byte
 *     c = 128 - input_offset: sum w * u - sum w * c = sum w * (x + input_offset). Bias at the end, then
 *     x86_conv.h's double requantisation (no FMA contraction: -ffp-contract=off, as -mavx512f enables FMA).
 *
 * 512-bit vectors: on Zen 4 (where this was measured) they run as two 256-bit halves at full clock; an earlier
 * 256-bit version (12 x 2 ymm GEMM tiles, x86_conv.h's 8-lane requantisation) ran EfficientNet-Lite0 some 5-10%
 * slower, most of the difference in the requantisation and output stage. On Intel server parts 512-bit code may
 * lower the clock (license levels): not measured.
 *
 * GCC: vpdpbusd is written as inline asm with the accumulator in place (VDPZ); GCC 12's register allocation of the
 * intrinsic copies and spills the accumulators of a tile on every step.
 */
#pragma GCC diagnostic ignored "-Wunused-function" /* x86_conv.h's GEMM is not used here */
#include "x86_conv.h"

#if !defined(__AVX512VNNI__) || !defined(__AVX512VL__) || !defined(__AVX512BW__)
#error "conv_avx512vnni.c needs -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
#endif

#ifndef VMR /* (a tuning knob: -DVMR=n, 1 to 16) */
#define VMR 8 /* pixels per GEMM tile (measured on Zen 4: 8 beats 6, 10, 12, 14 and 16) */
#endif

/* n int8 at src -> u8 (x ^ 0x80) at dst, exactly n bytes written */
static inline void vc_u8(uint8_t *dst, const int8_t *src, int n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int i = 0;
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(src + i)), flip));
    if (i < n) {
        const __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
        _mm256_mask_storeu_epi8(dst + i, m, _mm256_xor_si256(_mm256_maskz_loadu_epi8(m, src + i), flip));
    }
}

/* ---- requantisation and output of 16 channels in one 512-bit vector ------------------------------------------
 * x86_conv.h's xq_apply on 16 lanes (its two 8-lane halves' parameters, side by side): the same fast and exact
 * forms, the same instructions at twice the width, and the rounding step of the exact form (+1 where the remainder
 * exceeds the threshold) as a masked add. The output stage saturates int32 to int8 in one instruction (vpmovsdb:
 * clamp to [-128, 127], what x86_conv.h's two saturating packs give), then the activation clamp. */

typedef struct {
    __m512i mult, mult_o, mask, thr, rsh, lsh, rnd_e, rnd_o, rpos; /* as in xq, 16 lanes */
    int32_t flags;                                                  /* XQ_FAST, XQ_R0, XQ_LEFT */
} vq;

/* q from 16 channels (chan[i] < 0: a padding lane), through xq_fill of each half */
static void vq_fill(vq *q, const int32_t *mult, const int32_t *shift, const int64_t *bound, const int *chan) {
    xq h[2];
    xq_fill(&h[0], mult, shift, bound, chan);
    xq_fill(&h[1], mult, shift, bound, chan + XVL);
#define VQ_CAT(f)                                                                                                  \
    do {                                                                                                           \
        memcpy((uint8_t *)&q->f, &h[0].f, 32);                                                                     \
        memcpy((uint8_t *)&q->f + 32, &h[1].f, 32);                                                                \
    } while (0)
    VQ_CAT(mult);
    VQ_CAT(mult_o);
    VQ_CAT(mask);
    VQ_CAT(thr);
    VQ_CAT(rsh);
    VQ_CAT(lsh);
    VQ_CAT(rnd_e);
    VQ_CAT(rnd_o);
    VQ_CAT(rpos);
#undef VQ_CAT
    const int32_t f0 = h[0].flags, f1 = h[1].flags;
    q->flags = (f0 & f1 & XQ_FAST) | ((f0 | f1) & (XQ_R0 | XQ_LEFT));
}

/* MultiplyByQuantizedMultiplier(acc, mult, shift), 16 lanes */
XC_INLINE __m512i vq_apply(__m512i acc, const vq *q) {
    const int32_t flags = q->flags;
    if (flags & XQ_FAST) {
        const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(acc, q->mult), q->rnd_e);
        const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(acc, 32), q->mult_o), q->rnd_o);
        const __m512i x = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 31), _mm512_add_epi64(po, po));
        __m512i neg = _mm512_srai_epi32(acc, 31);
        if (flags & XQ_R0) neg = _mm512_and_si512(neg, q->rpos);
        return _mm512_srav_epi32(_mm512_add_epi32(x, neg), q->rsh);
    }
    if (flags & XQ_LEFT) acc = _mm512_sllv_epi32(acc, q->lsh);
    const __m512i r30 = _mm512_set1_epi64((int64_t)1 << 30);
    const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(acc, q->mult), r30);
    const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(acc, 32), q->mult_o), r30);
    /* bits 31..62 of each 64-bit product: even lanes shifted down, odd lanes doubled (their high half) */
    const __m512i x = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 31), _mm512_add_epi64(po, po));
    const __m512i rem = _mm512_add_epi32(_mm512_and_si512(x, q->mask), _mm512_srai_epi32(x, 31));
    const __m512i s = _mm512_srav_epi32(x, q->rsh);
    return _mm512_mask_add_epi32(s, _mm512_cmpgt_epi32_mask(rem, q->thr), s, _mm512_set1_epi32(1));
}

/* r (requantised, int32) + output offset -> int8, clamped, n bytes stored at dst (channel i in lane i) */
XC_INLINE void vo_store(int8_t *dst, __m512i r, __m512i ooff, const xo *o, int n) {
    __m128i b = _mm512_cvtsepi32_epi8(_mm512_add_epi32(r, ooff));
    b = _mm_min_epi8(_mm_max_epi8(b, o->omin), o->omax);
    if (n == XNR)
        _mm_storeu_si128((__m128i *)(void *)dst, b);
    else
        _mm_mask_storeu_epi8(dst, (__mmask16)((1u << n) - 1), b);
}

/* acc = vpdpbusd(acc, x (u8), w (s8)) on 512-bit vectors, in place (inline asm: see the header comment) */
#define VDPZ(acc, x, w) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w))

/* Pixel i of the panel (quad-major, [kq][VMR][4]) from n int8 at src, + 128 (x ^ 0x80); the rest of its last
 * quad (n not a multiple of 4) gets 0x80 bytes, which meet zero weights. */
static inline void vc_panel_i8(uint8_t *panel, int i, const int8_t *src, int n, int k) {
    uint8_t *d = panel + 4 * i + (size_t)(k / 4) * VMR * 4;
    for (; k + 4 <= n; k += 4, d += VMR * 4) {
        const uint32_t v = (uint32_t)xc_load32(src + k) ^ 0x80808080u;
        memcpy(d, &v, 4);
    }
    if (k < n) {
        uint8_t t[4] = {0x80, 0x80, 0x80, 0x80};
        for (int j = 0; k + j < n; j++) t[j] = (uint8_t)(src[k + j] ^ 0x80);
        memcpy(d, t, 4);
    }
}

/* Pixels i0 .. i0 + 3 of the panel from 4 rows of n int8 (src, src + ld, ...), + 128: 32 bytes of each row at a
 * time, transposed as 4 x 4 blocks of quads (within each 128-bit half) into 8 quads of the 4 pixels; then 16
 * bytes as one 4 x 4 block; the last n % 16 bytes through vc_panel_i8. */
static inline void vc_panel4_i8(uint8_t *panel, int i0, const int8_t *src, size_t ld, int n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    uint8_t *d = panel + 4 * i0;
    int k = 0;
#define VC_ROW(j) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(src + (j) * ld + k)), flip)
#define VC_ST(q, v) _mm_storeu_si128((__m128i *)(void *)(d + (q) * VMR * 4), (v))
    for (; k + 32 <= n; k += 32, d += 8 * VMR * 4) {
        const __m256i r0 = VC_ROW(0), r1 = VC_ROW(1), r2 = VC_ROW(2), r3 = VC_ROW(3);
        const __m256i t0 = _mm256_unpacklo_epi32(r0, r1), t1 = _mm256_unpackhi_epi32(r0, r1);
        const __m256i t2 = _mm256_unpacklo_epi32(r2, r3), t3 = _mm256_unpackhi_epi32(r2, r3);
        /* u0: quad 0 of the 4 pixels | quad 4; u1: 1 | 5; u2: 2 | 6; u3: 3 | 7 */
        const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
        const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
        VC_ST(0, _mm256_castsi256_si128(u0));
        VC_ST(1, _mm256_castsi256_si128(u1));
        VC_ST(2, _mm256_castsi256_si128(u2));
        VC_ST(3, _mm256_castsi256_si128(u3));
        VC_ST(4, _mm256_extracti128_si256(u0, 1));
        VC_ST(5, _mm256_extracti128_si256(u1, 1));
        VC_ST(6, _mm256_extracti128_si256(u2, 1));
        VC_ST(7, _mm256_extracti128_si256(u3, 1));
    }
#undef VC_ROW
#undef VC_ST
    if (k + 16 <= n) { /* 16 bytes: one 4 x 4 block */
        const __m128i f = _mm_set1_epi8((char)0x80);
#define VC_ROW(j) _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(src + (j) * ld + k)), f)
        const __m128i r0 = VC_ROW(0), r1 = VC_ROW(1), r2 = VC_ROW(2), r3 = VC_ROW(3);
#undef VC_ROW
        const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpackhi_epi32(r0, r1);
        const __m128i t2 = _mm_unpacklo_epi32(r2, r3), t3 = _mm_unpackhi_epi32(r2, r3);
        _mm_storeu_si128((__m128i *)(void *)d, _mm_unpacklo_epi64(t0, t2));
        _mm_storeu_si128((__m128i *)(void *)(d + VMR * 4), _mm_unpackhi_epi64(t0, t2));
        _mm_storeu_si128((__m128i *)(void *)(d + 2 * VMR * 4), _mm_unpacklo_epi64(t1, t3));
        _mm_storeu_si128((__m128i *)(void *)(d + 3 * VMR * 4), _mm_unpackhi_epi64(t1, t3));
        k += 16;
    }
    if (k < n)
        for (int j = 0; j < 4; j++) vc_panel_i8(panel, i0 + j, src + (size_t)j * ld, n, k);
}

/* n int8 at src -> u8 (x ^ 0x80) at dst, n >= 1, with whole 32-byte stores: up to 31 bytes past dst + n are
 * overwritten (garbage that the next piece of the im2col row, or the slack after the rows, absorbs). The
 * source is read whole 32 bytes at a time while that stays below src_end (the end of the input tensor), the
 * rest with a masked load (which never touches memory past src + n). Plain stores because the rows are read
 * back 4 bytes at a time at once, and a masked store does not forward to a load (it stalls until it retires). */
static inline void vc_u8_over(uint8_t *dst, const int8_t *src, int n, const int8_t *src_end) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int i = 0;
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(src + i)), flip));
    if (i < n) {
        __m256i v;
        if (src_end - (src + i) >= 32) {
            v = _mm256_loadu_si256((const __m256i *)(const void *)(src + i)); /* bytes past n: garbage, see above */
        } else {
            const __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
            v = _mm256_maskz_loadu_epi8(m, src + i);
        }
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm256_xor_si256(v, flip));
    }
}

/* n bytes of value v at dst, with whole 32-byte stores (as vc_u8_over: up to 31 bytes past dst + n written) */
static inline void vc_fill_over(uint8_t *dst, __m256i v, int n) {
    for (int i = 0; i < n; i += 32) _mm256_storeu_si256((__m256i *)(void *)(dst + i), v);
}

/* Pixels i0 .. i0 + 3 of the panel from 4 u8 rows of lda bytes (a multiple of 4) at row, row + lda, ...: 4 x 4
 * blocks of quads transposed, the last lda % 16 bytes quad by quad. */
static inline void vc_panel4_u8(uint8_t *panel, int i0, const uint8_t *row, int lda) {
    uint8_t *d = panel + 4 * i0;
    int k = 0;
    for (; k + 16 <= lda; k += 16, d += 4 * VMR * 4) {
#define VC_ROW(j) _mm_loadu_si128((const __m128i *)(const void *)(row + (size_t)(j) * lda + k))
        const __m128i r0 = VC_ROW(0), r1 = VC_ROW(1), r2 = VC_ROW(2), r3 = VC_ROW(3);
#undef VC_ROW
        const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpackhi_epi32(r0, r1);
        const __m128i t2 = _mm_unpacklo_epi32(r2, r3), t3 = _mm_unpackhi_epi32(r2, r3);
        _mm_storeu_si128((__m128i *)(void *)d, _mm_unpacklo_epi64(t0, t2));
        _mm_storeu_si128((__m128i *)(void *)(d + VMR * 4), _mm_unpackhi_epi64(t0, t2));
        _mm_storeu_si128((__m128i *)(void *)(d + 2 * VMR * 4), _mm_unpacklo_epi64(t1, t3));
        _mm_storeu_si128((__m128i *)(void *)(d + 3 * VMR * 4), _mm_unpackhi_epi64(t1, t3));
    }
    for (; k < lda; k += 4, d += VMR * 4)
        for (int j = 0; j < 4; j++) memcpy(d + 4 * j, row + (size_t)j * lda + k, 4);
}

/* Pixel i of the panel from a u8 row of lda bytes (a multiple of 4) */
static inline void vc_panel_u8(uint8_t *panel, int i, const uint8_t *row, int lda) {
    uint8_t *d = panel + 4 * i;
    for (int k = 0; k < lda; k += 4, d += VMR * 4) memcpy(d, row + k, 4);
}

/* ==== CONV_2D ================================================================================================= */

typedef struct {
    int K, kq, lda;        /* K = filter_h * filter_w * filter_in_c; kq = ceil(K / 4) quads; lda = 4 kq bytes */
    int groups, fpg, nblk; /* filters per group; 16-channel blocks per group */
    int pointwise;         /* 1x1, stride 1 (no padding then): rows of input are rows of the GEMM */
    xc_recheck recheck;
    size_t w_off, b_off, q_off; /* from the start of the packed block */
} vc_hdr;

static size_t vc_layout(const ev_op *op, vc_hdr *h) {
    const int32_t *p = op->params;
    const int fh = p[EV_CONV_FILTER_H], fw = p[EV_CONV_FILTER_W], fic = p[EV_CONV_FILTER_IN_C];
    const int out_c = p[EV_CONV_OUT_C];
    memset(h, 0, sizeof *h);
    h->K = fh * fw * fic;
    h->kq = (h->K + 3) / 4;
    h->lda = 4 * h->kq;
    h->groups = p[EV_CONV_IN_C] / fic;
    h->fpg = out_c / h->groups;
    h->nblk = (h->fpg + XNR - 1) / XNR;
    h->pointwise = fh == 1 && fw == 1 && p[EV_CONV_STRIDE_H] == 1 && p[EV_CONV_STRIDE_W] == 1 &&
                   p[EV_CONV_PAD_TOP] == 0 && p[EV_CONV_PAD_LEFT] == 0 && p[EV_CONV_IN_H] == p[EV_CONV_OUT_H] &&
                   p[EV_CONV_IN_W] == p[EV_CONV_OUT_W];
    const size_t blocks = (size_t)h->groups * h->nblk;
    size_t off = xc_align(sizeof *h);
    h->w_off = off;
    off += xc_align(blocks * (size_t)h->kq * XNR * 4);
    h->b_off = off;
    off += xc_align(blocks * XNR * sizeof(int32_t));
    h->q_off = off;
    off += xc_align(blocks * sizeof(vq));
    return off;
}

static void vc_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    vc_hdr h;
    *packed_bytes = vc_layout(op, &h);
    /* the panel, the im2col rows (+ 32: vc_u8_over writes past a row's end), + 64 for aligning the start */
    *scratch_bytes = 2 * (size_t)VMR * h.lda + 32 + 64;
}

static void vc_pack(const ev_op *op, void *packed) {
    vc_hdr h;
    vc_layout(op, &h);
    const int32_t *p = op->params;
    const int out_c = p[EV_CONV_OUT_C];
    const int32_t input_offset = p[EV_CONV_INPUT_OFFSET];
    const int32_t *mult = p + EV_CONV_NPARAMS, *shift = mult + out_c;
    const int8_t *filter = op->tensors[1];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    uint8_t *base = packed;
    int8_t *w = (int8_t *)(base + h.w_off);
    int32_t *b = (int32_t *)(void *)(base + h.b_off);
    vq *q = (vq *)(void *)(base + h.q_off);
    int64_t *bound = malloc((size_t)out_c * sizeof *bound); /* NULL: unknown, the exact form everywhere */
    for (int oc = 0; bound && oc < out_c; oc++)
        bound[oc] = xq_channel_bound(filter + (size_t)oc * h.K, (size_t)h.K, 1, bias, oc);
    xc_recheck_fill(&h.recheck, op);
    for (int g = 0; g < h.groups; g++) {
        for (int j = 0; j < h.nblk; j++) {
            const size_t blk = (size_t)g * h.nblk + j;
            int chan[XNR];
            int8_t *wb = w + blk * h.kq * XNR * 4;
            for (int c = 0; c < XNR; c++) {
                const int f = j * XNR + c; /* filter within the group */
                const int oc = f < h.fpg ? g * h.fpg + f : -1;
                chan[c] = oc;
                uint32_t sum = 0;
                /* quad kq of channel c: bytes [kq][c / 8 (vector)][c % 8 (lane)][4] */
                for (int k = 0; k < h.lda; k++) {
                    const int32_t v = (oc >= 0 && k < h.K) ? filter[(size_t)oc * h.K + k] : 0;
                    wb[((size_t)(k / 4) * XNR + c) * 4 + (k % 4)] = (int8_t)v;
                    sum += (uint32_t)v;
                }
                /* bias + (input_offset - 128) * sum w, mod 2^32 */
                b[blk * XNR + c] = oc >= 0 ? (int32_t)((bias ? (uint32_t)bias[oc] : 0u) +
                                                       (uint32_t)(input_offset - 128) * sum)
                                           : 0;
            }
            vq_fill(&q[blk], mult, shift, bound, chan);
        }
    }
    free(bound);
    memcpy(base, &h, sizeof h);
}

/* The register tile: mr pixels (of the panel a: [kq][VMR][4] u8) x 16 output channels (one 512-bit vector), over
 * all kq quads; accumulators start at the folded bias. Stores n channels of each pixel at out + pixel * ldo. */
XC_INLINE void vc_tile(const int mr, int kq, const uint8_t *a, const __m512i *w, const int32_t *bias, const vq *q,
                       __m512i ooff, const xo *o, int8_t *out, size_t ldo, int n) {
    __m512i acc[VMR];
    const __m512i b = _mm512_load_si512(bias);
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) acc[i] = b;
    for (int k = 0; k < kq; k++, a += VMR * 4, w++) {
        const __m512i w0 = _mm512_load_si512(w);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            const __m512i x = _mm512_set1_epi32(xc_load32(a + 4 * i));
            VDPZ(acc[i], x, w0);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) vo_store(out + (size_t)i * ldo, vq_apply(acc[i], q), ooff, o, n);
}

/* mr pixels of a (already u8) against every channel block of group g. */
static inline void vc_run_tiles(const vc_hdr *h, const uint8_t *base, int g, int mr, const uint8_t *a,
                                __m512i ooff, const xo *o, int8_t *out, size_t ldo) {
    const __m512i *wall = (const __m512i *)(const void *)(base + h->w_off);
    const int32_t *ball = (const int32_t *)(const void *)(base + h->b_off);
    const vq *qall = (const vq *)(const void *)(base + h->q_off);
    for (int j = 0; j < h->nblk; j++) {
        const size_t blk = (size_t)g * h->nblk + j;
        const __m512i *w = wall + blk * h->kq;
        const int32_t *b = ball + blk * XNR;
        const vq *q = qall + blk;
        int8_t *dst = out + (size_t)j * XNR;
        const int n = h->fpg - j * XNR < XNR ? h->fpg - j * XNR : XNR;
#define VC_TILE_CASE(MR)                                                                                           \
    case MR:                                                                                                       \
        vc_tile(MR, h->kq, a, w, b, q, ooff, o, dst, ldo, n);                                                      \
        break;
        switch (mr) {
            VC_TILE_CASE(1)
#if VMR >= 2
            VC_TILE_CASE(2)
#endif
#if VMR >= 3
            VC_TILE_CASE(3)
#endif
#if VMR >= 4
            VC_TILE_CASE(4)
#endif
#if VMR >= 5
            VC_TILE_CASE(5)
#endif
#if VMR >= 6
            VC_TILE_CASE(6)
#endif
#if VMR >= 7
            VC_TILE_CASE(7)
#endif
#if VMR >= 8
            VC_TILE_CASE(8)
#endif
#if VMR >= 9
            VC_TILE_CASE(9)
#endif
#if VMR >= 10
            VC_TILE_CASE(10)
#endif
#if VMR >= 11
            VC_TILE_CASE(11)
#endif
#if VMR >= 12
            VC_TILE_CASE(12)
#endif
#if VMR >= 13
            VC_TILE_CASE(13)
#endif
#if VMR >= 14
            VC_TILE_CASE(14)
#endif
#if VMR >= 15
            VC_TILE_CASE(15)
#endif
#if VMR >= 16
            VC_TILE_CASE(16)
#endif
        default:
            break;
        }
#undef VC_TILE_CASE
    }
}

static void vc_conv(const ev_op *op, int begin, int end, int thread) {
    const uint8_t *base = op->packed;
    const vc_hdr *h = (const vc_hdr *)(const void *)base;
    const int32_t *p = op->params;
    const int in_h = p[EV_CONV_IN_H], in_w = p[EV_CONV_IN_W], in_c = p[EV_CONV_IN_C];
    const int out_h = p[EV_CONV_OUT_H], out_w = p[EV_CONV_OUT_W], out_c = p[EV_CONV_OUT_C];
    const int fh = p[EV_CONV_FILTER_H], fw = p[EV_CONV_FILTER_W], fic = p[EV_CONV_FILTER_IN_C];
    const int sh = p[EV_CONV_STRIDE_H], sw = p[EV_CONV_STRIDE_W];
    const int dh = p[EV_CONV_DILATION_H], dw = p[EV_CONV_DILATION_W];
    const int pad_top = p[EV_CONV_PAD_TOP], pad_left = p[EV_CONV_PAD_LEFT];
    const __m256i zpv = _mm256_set1_epi8((char)(uint8_t)(128 - p[EV_CONV_INPUT_OFFSET])); /* the zero point, u8 */
    const xo o = xo_make(p[EV_CONV_OUTPUT_OFFSET], p[EV_CONV_ACT_MIN], p[EV_CONV_ACT_MAX]);
    const __m512i ooff = _mm512_set1_epi32(p[EV_CONV_OUTPUT_OFFSET]);
    const int8_t *input = op->tensors[0], *in_end = input + op->sizes[0];
    int8_t *output = op->tensors[3];
    uint8_t *panel = (uint8_t *)op->scratch + (size_t)thread * op->scratch_size;
    panel += (64 - ((uintptr_t)panel & 63)) & 63;
    uint8_t *a = panel + (size_t)VMR * h->lda; /* im2col rows */
    const int lda = h->lda;
    if (!xc_recheck_ok(&h->recheck, op)) {
        ev_conv_2d_ref(op, begin, end, thread);
        return;
    }

    if (h->pointwise) {
        /* rows [begin, end) are one run of pixels, the same in input and output */
        const size_t p0 = (size_t)begin * out_w, p1 = (size_t)end * out_w;
        for (size_t px = p0; px < p1; px += VMR) {
            const int mr = p1 - px < VMR ? (int)(p1 - px) : VMR;
            for (int g = 0; g < h->groups; g++) {
                const int8_t *src = input + px * in_c + (size_t)g * fic;
                int i = 0;
                for (; i + 4 <= mr; i += 4) vc_panel4_i8(panel, i, src + (size_t)i * in_c, (size_t)in_c, fic);
                for (; i < mr; i++) vc_panel_i8(panel, i, src + (size_t)i * in_c, fic, 0);
                vc_run_tiles(h, base, g, mr, panel, ooff, &o, output + px * out_c + (size_t)g * h->fpg, (size_t)out_c);
            }
        }
        return;
    }
    for (int item = begin; item < end; item++) {
        const int b = item / out_h, oy = item % out_h;
        const int iy0 = oy * sh - pad_top;
        int8_t *out_row = output + ((size_t)b * out_h + oy) * out_w * out_c;
        for (int ox0 = 0; ox0 < out_w; ox0 += VMR) {
            const int mr = out_w - ox0 < VMR ? out_w - ox0 : VMR;
            for (int g = 0; g < h->groups; g++) {
                /* im2col: the mr pixels' windows, tap by tap, the zero point where a tap is outside; then into the
                 * panel. The bytes of a row past K (to lda) are whatever vc_u8_over left there: they meet zero
                 * weights. */
                for (int i = 0; i < mr; i++) {
                    uint8_t *dst = a + (size_t)i * lda;
                    const int ix0 = (ox0 + i) * sw - pad_left;
                    const int inside_x = ix0 >= 0 && ix0 + (fw - 1) * dw < in_w;
                    for (int fy = 0; fy < fh; fy++) {
                        const int iy = iy0 + fy * dh;
                        if (inside_x && dw == 1 && h->groups == 1 && iy >= 0 && iy < in_h) {
                            /* the window row is fw * in_c contiguous bytes */
                            vc_u8_over(dst, input + (((size_t)b * in_h + iy) * in_w + ix0) * in_c, fw * fic, in_end);
                            dst += fw * fic;
                            continue;
                        }
                        for (int fx = 0; fx < fw; fx++, dst += fic) {
                            const int ix = ix0 + fx * dw;
                            if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w)
                                vc_fill_over(dst, zpv, fic);
                            else
                                vc_u8_over(dst, input + (((size_t)b * in_h + iy) * in_w + ix) * in_c + (size_t)g * fic,
                                           fic, in_end);
                        }
                    }
                }
                int i = 0;
                for (; i + 4 <= mr; i += 4) vc_panel4_u8(panel, i, a + (size_t)i * lda, lda);
                for (; i < mr; i++) vc_panel_u8(panel, i, a + (size_t)i * lda, lda);
                vc_run_tiles(h, base, g, mr, panel, ooff, &o, out_row + (size_t)ox0 * out_c + (size_t)g * h->fpg,
                             (size_t)out_c);
            }
        }
    }
}

/* ==== DEPTHWISE_CONV_2D =======================================================================================
 *
 * Quad rows: x86_conv.h's pair rows with four taps instead of two. For an input row iy the kernel builds, once,
 * Q[u][c] = (X(i), X(i + d), X(i + 2d), X(i + 3d)) as four u8 per channel (d = dilation_w; X the pixel, or the
 * zero point outside the image, plus 128), for the window positions i = u*g - pad_left the output row uses
 * (g = gcd(stride_w, 4 d): every quad of horizontal taps (fx = 4j .. 4j+3) starts at such a position). A quad of
 * taps of 8 channels is then one aligned load and one vpdpbusd against weights packed as the filter row's taps
 * (4j .. 4j+3) per channel, 0 past the filter width (so a 3-wide filter row is one quad, a 5-wide two). Channels
 * in blocks of 16 (two vectors, natural order: x86_conv.h's GEMM output stage stores them), the quad rows
 * channel-block major; rows above and below the image use a constant row of zero points (packed); each thread
 * keeps filter_h built rows, reused by the next output rows, as in x86_conv.h. */

typedef struct {
    int C, Cp;        /* output channels; rounded up to XNR */
    int fh, jq;       /* filter rows; tap quads per filter row, ceil(filter_w / 4) */
    int g, E;         /* entry step; entries per quad row */
    int ustep, jstep; /* entries between output pixels, between tap quads */
    int use_ref;      /* the quad rows would be too large (absurd dilations): the reference kernel runs */
    xc_recheck recheck;
    size_t w_off, b_off, q_off, zp_off, zprow_off;
} vd_hdr;

static size_t vd_layout(const ev_op *op, vd_hdr *h) {
    const int32_t *p = op->params;
    const int out_w = p[EV_DW_OUT_W], fw = p[EV_DW_FILTER_W], sw = p[EV_DW_STRIDE_W], dw = p[EV_DW_DILATION_W];
    memset(h, 0, sizeof *h);
    h->C = p[EV_DW_OUT_C];
    h->Cp = (h->C + XNR - 1) / XNR * XNR;
    h->fh = p[EV_DW_FILTER_H];
    h->jq = (fw + 3) / 4;
    h->g = xd_gcd(sw, 4 * dw);
    h->ustep = sw / h->g;
    h->jstep = 4 * dw / h->g;
    /* last entry used: ((out_w - 1) * stride_w + 4 (jq - 1) * dilation_w) / g */
    h->E = (out_w > 0 ? (out_w - 1) * h->ustep : 0) + (h->jq - 1) * h->jstep + 1;
    const int ncb = h->Cp / XNR;
    size_t off = xc_align(sizeof *h);
    if ((double)h->fh * h->E * h->Cp * 4 > XD_MAX_PAIR_ROWS_BYTES) {
        h->use_ref = 1;
        return off;
    }
    h->w_off = off;
    off += xc_align((size_t)ncb * h->fh * h->jq * 2 * sizeof(__m256i));
    h->b_off = off;
    off += xc_align((size_t)ncb * XNR * sizeof(int32_t));
    h->q_off = off;
    off += xc_align((size_t)ncb * sizeof(vq));
    h->zp_off = off; /* Cp + 64 bytes of the zero point (int8) */
    off += xc_align((size_t)h->Cp + 64);
    h->zprow_off = off; /* a quad row of zero points (u8) */
    off += xc_align((size_t)h->E * h->Cp * 4);
    return off;
}

/* Per-thread scratch: filter_h quad rows, then the slot bookkeeping (x86_conv.h's xd_scratch). */
static void vd_scratch_layout(const vd_hdr *h, xd_scratch *sl) {
    sl->row_bytes = xc_align((size_t)h->E * h->Cp * 4);
    sl->tag = (size_t)h->fh * sl->row_bytes;
    sl->want = sl->tag + xc_align((size_t)h->fh * sizeof(int));
    sl->busy = sl->want + xc_align((size_t)h->fh * sizeof(int));
    sl->ptr = sl->busy + xc_align((size_t)h->fh);
    sl->total = sl->ptr + xc_align((size_t)h->fh * sizeof(void *)) + 64; /* + 64: aligning the start */
}

static void vd_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    vd_hdr h;
    xd_scratch sl;
    *packed_bytes = vd_layout(op, &h);
    vd_scratch_layout(&h, &sl);
    *scratch_bytes = h.use_ref ? 0 : sl.total;
}

static void vd_pack(const ev_op *op, void *packed) {
    vd_hdr h;
    vd_layout(op, &h);
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
    int8_t *w = (int8_t *)(base + h.w_off);
    int32_t *b = (int32_t *)(void *)(base + h.b_off);
    vq *q = (vq *)(void *)(base + h.q_off);
    const int ncb = h.Cp / XNR;
    int64_t *bound = malloc((size_t)C * sizeof *bound); /* NULL: unknown, the exact form everywhere */
    for (int oc = 0; bound && oc < C; oc++)
        bound[oc] = xq_channel_bound(filter + oc, (size_t)h.fh * fw, (size_t)C, bias, oc);
    xc_recheck_fill(&h.recheck, op);
    for (int cb = 0; cb < ncb; cb++) {
        int chan[XNR];
        for (int c = 0; c < XNR; c++) {
            const int oc = cb * XNR + c;
            chan[c] = oc < C ? oc : -1;
            uint32_t sum = 0;
            for (int fy = 0; fy < h.fh; fy++)
                for (int j = 0; j < h.jq; j++)
                    for (int t = 0; t < 4; t++) {
                        const int fx = 4 * j + t;
                        const int32_t wt = (oc < C && fx < fw) ? filter[((size_t)fy * fw + fx) * C + oc] : 0;
                        /* vector c / 8 of quad (fy, j), lane c % 8, byte t */
                        w[(((size_t)cb * h.fh + fy) * h.jq + j) * 64 + (size_t)c * 4 + t] = (int8_t)wt;
                        sum += (uint32_t)wt;
                    }
            /* bias + (input_offset - 128) * sum w, mod 2^32 */
            b[(size_t)cb * XNR + c] =
                oc < C ? (int32_t)((bias ? (uint32_t)bias[oc] : 0u) + (uint32_t)(input_offset - 128) * sum) : 0;
        }
        vq_fill(&q[cb], mult, shift, bound, chan);
    }
    free(bound);
    const int8_t zp = (int8_t)(-input_offset);
    memset(base + h.zp_off, zp, (size_t)h.Cp + 64);
    memset(base + h.zprow_off, (uint8_t)zp ^ 0x80, (size_t)h.E * h.Cp * 4);
    memcpy(base, &h, sizeof h);
}

/* 16 channels of quads (a[c], b[c], c[c], e[c]) + 128 each, natural channel order: 64 bytes at d */
XC_INLINE void vd_quads(uint8_t *d, const int8_t *a, const int8_t *b, const int8_t *c, const int8_t *e) {
    const __m128i flip = _mm_set1_epi8((char)0x80);
#define VD_L(p) _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(p)), flip)
    const __m128i xa = VD_L(a), xb = VD_L(b), xc = VD_L(c), xe = VD_L(e);
#undef VD_L
    const __m128i ab0 = _mm_unpacklo_epi8(xa, xb), ab1 = _mm_unpackhi_epi8(xa, xb);
    const __m128i ce0 = _mm_unpacklo_epi8(xc, xe), ce1 = _mm_unpackhi_epi8(xc, xe);
    _mm_store_si128((__m128i *)(void *)d, _mm_unpacklo_epi16(ab0, ce0));
    _mm_store_si128((__m128i *)(void *)(d + 16), _mm_unpackhi_epi16(ab0, ce0));
    _mm_store_si128((__m128i *)(void *)(d + 32), _mm_unpacklo_epi16(ab1, ce1));
    _mm_store_si128((__m128i *)(void *)(d + 48), _mm_unpackhi_epi16(ab1, ce1));
}

/* 32 channels of quads: vd_quads on 256-bit vectors. Within each 128-bit half the unpacks give 4 channels'
 * quads per 16 bytes: the low halves are the first 16 channels (64 bytes at d), the high halves the next 16
 * (64 bytes at d2, the next channel block). */
XC_INLINE void vd_quads32(uint8_t *d, uint8_t *d2, const int8_t *a, const int8_t *b, const int8_t *c,
                          const int8_t *e) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
#define VD_L(p) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(p)), flip)
    const __m256i xa = VD_L(a), xb = VD_L(b), xc = VD_L(c), xe = VD_L(e);
#undef VD_L
    const __m256i ab0 = _mm256_unpacklo_epi8(xa, xb), ab1 = _mm256_unpackhi_epi8(xa, xb);
    const __m256i ce0 = _mm256_unpacklo_epi8(xc, xe), ce1 = _mm256_unpackhi_epi8(xc, xe);
    /* q0: channels 0-3 | 16-19; q1: 4-7 | 20-23; q2: 8-11 | 24-27; q3: 12-15 | 28-31 */
    const __m256i q0 = _mm256_unpacklo_epi16(ab0, ce0), q1 = _mm256_unpackhi_epi16(ab0, ce0);
    const __m256i q2 = _mm256_unpacklo_epi16(ab1, ce1), q3 = _mm256_unpackhi_epi16(ab1, ce1);
    _mm256_store_si256((__m256i *)(void *)d, _mm256_permute2x128_si256(q0, q1, 0x20));
    _mm256_store_si256((__m256i *)(void *)(d + 32), _mm256_permute2x128_si256(q2, q3, 0x20));
    _mm256_store_si256((__m256i *)(void *)d2, _mm256_permute2x128_si256(q0, q1, 0x31));
    _mm256_store_si256((__m256i *)(void *)(d2 + 32), _mm256_permute2x128_si256(q2, q3, 0x31));
}

/* Build the quad row of one input row (row: its in_w pixels of in_c channels). */
static void vd_build(const vd_hdr *h, uint8_t *Q, const int8_t *row, const int8_t *zp8, int in_w, int in_c, int dm,
                     int pad_left, int dw) {
    const int C = h->C, Cp = h->Cp;
    const int8_t zp = zp8[0];
    const size_t cbstep = (size_t)h->E * XNR * 4;
    for (int u = 0; u < h->E; u++) {
        /* the four taps' pixels (NULL: outside the image); four scalars, not an array, which GCC would turn
         * into vector code that goes through the stack */
        const int i0 = u * h->g - pad_left;
#define VD_SRC(i) (((i) >= 0 && (i) < in_w) ? row + (size_t)(i) * in_c : NULL)
        const int8_t *s0 = VD_SRC(i0), *s1 = VD_SRC(i0 + dw), *s2 = VD_SRC(i0 + 2 * dw), *s3 = VD_SRC(i0 + 3 * dw);
#undef VD_SRC
        /* channel block cb of entry u at Q + cb * cbstep + u * 64 */
        uint8_t *d = Q + (size_t)u * XNR * 4;
        if (dm == 1) {
            if (!s0) s0 = zp8;
            if (!s1) s1 = zp8;
            if (!s2) s2 = zp8;
            if (!s3) s3 = zp8;
            int c = 0;
            for (; c + 2 * XNR <= C; c += 2 * XNR, d += 2 * cbstep)
                vd_quads32(d, d + cbstep, s0 + c, s1 + c, s2 + c, s3 + c);
            for (; c + XNR <= C; c += XNR, d += cbstep) vd_quads(d, s0 + c, s1 + c, s2 + c, s3 + c);
            if (c < C) {
                int8_t t[4][XNR];
                memset(t, 0, sizeof t);
                memcpy(t[0], s0 + c, (size_t)(C - c));
                memcpy(t[1], s1 + c, (size_t)(C - c));
                memcpy(t[2], s2 + c, (size_t)(C - c));
                memcpy(t[3], s3 + c, (size_t)(C - c));
                vd_quads(d, t[0], t[1], t[2], t[3]);
            }
        } else {
            const int8_t *s[4] = {s0, s1, s2, s3};
            for (int oc = 0; oc < Cp; oc++) {
                uint8_t *e = d + (size_t)(oc / XNR) * cbstep + (size_t)(oc % XNR) * 4;
                for (int t = 0; t < 4; t++)
                    e[t] = oc < C ? (uint8_t)((s[t] ? s[t][oc / dm] : zp) ^ 0x80) : 0;
            }
        }
    }
}

/* NP consecutive output pixels of one channel block (r[fy]: the block's entry of the first pixel in each of the FH
 * quad rows; ustep, jstep in bytes): each weight vector is loaded once for all of them. */
XC_INLINE void vd_pixels(const int FH, const int JQ, const int NP, const uint8_t *const *r, size_t ustep,
                         size_t jstep, const __m512i *w, __m512i b, const vq *q, __m512i ooff, const xo *o,
                         int8_t *dst, size_t C, int n) {
    __m512i a[8];
#pragma GCC unroll 8
    for (int i = 0; i < NP; i++) a[i] = b;
#pragma GCC unroll 16
    for (int fy = 0; fy < FH; fy++) {
        const uint8_t *x = r[fy];
#pragma GCC unroll 8
        for (int j = 0; j < JQ; j++, x += jstep) {
            const __m512i w0 = _mm512_load_si512(w + fy * JQ + j);
#pragma GCC unroll 8
            for (int i = 0; i < NP; i++) {
                const __m512i x0 = _mm512_load_si512((const void *)(x + i * ustep));
                VDPZ(a[i], x0, w0);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < NP; i++) vo_store(dst + (size_t)i * C, vq_apply(a[i], q), ooff, o, n);
}

#define VD_NP 8 /* output pixels at a time (the remainder switch in vd_row handles up to 7) */

/* One output row: for every channel block, every pixel, VD_NP at a time. Q[fy]: the quad rows. FH_, JQ_: compile-
 * time filter shapes, or 0 for the general case (h's values). */
XC_INLINE void vd_row(const int FH_, const int JQ_, const vd_hdr *h, const uint8_t *base, const uint8_t *const *Q,
                      int out_w, __m512i ooff, const xo *o, int8_t *out_row) {
    const __m512i *wall = (const __m512i *)(const void *)(base + h->w_off);
    const int32_t *ball = (const int32_t *)(const void *)(base + h->b_off);
    const vq *qall = (const vq *)(const void *)(base + h->q_off);
    const int C = h->C, ncb = h->Cp / XNR;
    const int FH = FH_ ? FH_ : h->fh, JQ = JQ_ ? JQ_ : h->jq;
    const size_t ustep = (size_t)h->ustep * XNR * 4, jstep = (size_t)h->jstep * XNR * 4;
    const size_t cbstep = (size_t)h->E * XNR * 4;
    for (int cb = 0; cb < ncb; cb++) {
        const __m512i *w = wall + (size_t)cb * FH * JQ;
        const __m512i b = _mm512_load_si512(ball + cb * XNR);
        const vq *q = qall + cb;
        const int n = C - cb * XNR < XNR ? C - cb * XNR : XNR;
        const uint8_t *r[16];
        int8_t *dst = out_row + (size_t)cb * XNR;
        if (FH_) {
#pragma GCC unroll 16
            for (int fy = 0; fy < FH_; fy++) r[fy] = Q[fy] + (size_t)cb * cbstep;
            int ox = 0;
            for (; ox + VD_NP <= out_w; ox += VD_NP) {
                vd_pixels(FH_, JQ_, VD_NP, r, ustep, jstep, w, b, q, ooff, o, dst, (size_t)C, n);
#pragma GCC unroll 16
                for (int fy = 0; fy < FH_; fy++) r[fy] += VD_NP * ustep;
                dst += VD_NP * (size_t)C;
            }
            /* the last out_w % VD_NP pixels together too (7x7 and 14x14 rows are mostly remainder) */
            switch (out_w - ox) {
#define VD_REST(NP)                                                                                                \
    case NP:                                                                                                       \
        vd_pixels(FH_, JQ_, NP, r, ustep, jstep, w, b, q, ooff, o, dst, (size_t)C, n);                             \
        break;
                VD_REST(1)
                VD_REST(2)
                VD_REST(3)
                VD_REST(4)
                VD_REST(5)
                VD_REST(6)
                VD_REST(7)
#undef VD_REST
            default:
                break;
            }
        } else {
            /* the general case: one pixel at a time, filter shape at run time */
            for (int ox = 0; ox < out_w; ox++, dst += C) {
                __m512i acc = b;
                for (int fy = 0; fy < FH; fy++) {
                    const uint8_t *x = Q[fy] + (size_t)cb * cbstep + (size_t)ox * ustep;
                    for (int j = 0; j < JQ; j++, x += jstep) {
                        const __m512i x0 = _mm512_load_si512((const void *)x);
                        VDPZ(acc, x0, w[fy * JQ + j]);
                    }
                }
                vo_store(dst, vq_apply(acc, q), ooff, o, n);
            }
        }
    }
}

static void vd_conv(const ev_op *op, int begin, int end, int thread) {
    const uint8_t *base = op->packed;
    const vd_hdr *h = (const vd_hdr *)(const void *)base;
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
    const __m512i ooff = _mm512_set1_epi32(p[EV_DW_OUTPUT_OFFSET]);
    const int8_t *input = op->tensors[0];
    int8_t *output = op->tensors[3];
    const int8_t *zp8 = (const int8_t *)(base + h->zp_off);
    const uint8_t *zprow = base + h->zprow_off;
    uint8_t *scr = (uint8_t *)op->scratch + (size_t)thread * op->scratch_size;
    scr += (64 - ((uintptr_t)scr & 63)) & 63;
    xd_scratch sl;
    vd_scratch_layout(h, &sl);
    const size_t row_bytes = sl.row_bytes;
    int *tag = (int *)(void *)(scr + sl.tag); /* the input row (b * in_h + iy) a slot holds, or -1 */
    int *want = (int *)(void *)(scr + sl.want);
    uint8_t *busy = scr + sl.busy; /* slot holds a row the current output row needs */
    const uint8_t **Q = (const uint8_t **)(void *)(scr + sl.ptr);
    for (int s = 0; s < fh; s++) tag[s] = -1; /* the input changed since the last call */

    for (int item = begin; item < end; item++) {
        const int b = item / out_h, oy = item % out_h;
        const int iy0 = oy * sh - pad_top;
        int8_t *out_row = output + ((size_t)b * out_h + oy) * out_w * C;
        /* the quad rows of this output row: reuse the slots that hold them, build the others in free slots */
        memset(busy, 0, (size_t)fh);
        for (int fy = 0; fy < fh; fy++) {
            const int iy = iy0 + fy * dh;
            want[fy] = (iy >= 0 && iy < in_h) ? b * in_h + iy : -1;
            Q[fy] = zprow;
            if (want[fy] < 0) continue;
            for (int s = 0; s < fh; s++)
                if (tag[s] == want[fy]) {
                    Q[fy] = scr + (size_t)s * row_bytes;
                    busy[s] = 1;
                    break;
                }
        }
        for (int fy = 0; fy < fh; fy++) {
            if (want[fy] < 0 || Q[fy] != zprow) continue;
            int s = 0;
            while (busy[s]) s++; /* fh slots, at most fh rows wanted: one is free */
            uint8_t *row = scr + (size_t)s * row_bytes;
            vd_build(h, row, input + (size_t)want[fy] * in_w * in_c, zp8, in_w, in_c, dm, pad_left, dw);
            tag[s] = want[fy];
            busy[s] = 1;
            Q[fy] = row;
        }
        if (fh == 3 && h->jq == 1)
            vd_row(3, 1, h, base, Q, out_w, ooff, &o, out_row);
        else if (fh == 5 && h->jq == 2)
            vd_row(5, 2, h, base, Q, out_w, ooff, &o, out_row);
        else
            vd_row(0, 0, h, base, Q, out_w, ooff, &o, out_row);
    }
}

/* ==== FULLY_CONNECTED ========================================================================================= */

static void vf_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    *packed_bytes = 0;
    *scratch_bytes = xc_align((size_t)op->params[EV_FC_DEPTH] + 64);
}

/* sum_d w[d] * (x[d] + input_offset) for 4 rows of weights (u: the input as u8; c: 128 - input_offset in every
 * byte). Result: 4 int32 (wrapping). */
static inline __m128i vf_dot4(const uint8_t *u, const int8_t *w0, size_t ldw, int depth, __m256i c) {
    const int8_t *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    __m256i n0 = a0, n1 = a0, n2 = a0, n3 = a0;
    int d = 0;
#define VF_STEP(LOAD_X, LOAD_W)                                                                                    \
    do {                                                                                                           \
        const __m256i x = LOAD_X(u), v0 = LOAD_W(w0), v1 = LOAD_W(w1), v2 = LOAD_W(w2), v3 = LOAD_W(w3);          \
        a0 = _mm256_dpbusd_epi32(a0, x, v0);                                                                       \
        a1 = _mm256_dpbusd_epi32(a1, x, v1);                                                                       \
        a2 = _mm256_dpbusd_epi32(a2, x, v2);                                                                       \
        a3 = _mm256_dpbusd_epi32(a3, x, v3);                                                                       \
        n0 = _mm256_dpbusd_epi32(n0, c, v0);                                                                       \
        n1 = _mm256_dpbusd_epi32(n1, c, v1);                                                                       \
        n2 = _mm256_dpbusd_epi32(n2, c, v2);                                                                       \
        n3 = _mm256_dpbusd_epi32(n3, c, v3);                                                                       \
    } while (0)
#define VF_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)((p) + d))
    for (; d + 32 <= depth; d += 32) VF_STEP(VF_LOAD, VF_LOAD);
    if (d < depth) {
        /* the tail: zeros past the depth on both sides */
        const __mmask32 m = (__mmask32)((1ull << (depth - d)) - 1);
#define VF_MLOAD(p) _mm256_maskz_loadu_epi8(m, (p) + d)
        VF_STEP(VF_MLOAD, VF_MLOAD);
#undef VF_MLOAD
    }
#undef VF_LOAD
#undef VF_STEP
    a0 = _mm256_sub_epi32(a0, n0);
    a1 = _mm256_sub_epi32(a1, n1);
    a2 = _mm256_sub_epi32(a2, n2);
    a3 = _mm256_sub_epi32(a3, n3);
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

static void vf_fc(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int depth = p[EV_FC_DEPTH], out_c = p[EV_FC_OUT_C], block = p[EV_FC_BLOCK];
    const int32_t input_offset = p[EV_FC_INPUT_OFFSET];
    const int32_t output_offset = p[EV_FC_OUTPUT_OFFSET];
    const int32_t act_min = p[EV_FC_ACT_MIN], act_max = p[EV_FC_ACT_MAX];
    const int8_t *input = op->tensors[0], *weights = op->tensors[1];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    int8_t *output = op->tensors[3];
    const int blocks_per_row = (out_c + block - 1) / block;
    uint8_t *u = (uint8_t *)op->scratch + (size_t)thread * op->scratch_size;
    const __m256i c = _mm256_set1_epi8((char)(uint8_t)(128 - input_offset));
    const __m128i ooff = _mm_set1_epi32(output_offset);
    const __m128i omin = _mm_set1_epi8((char)act_min), omax = _mm_set1_epi8((char)act_max);
    int converted = -1;

    for (int item = begin; item < end; item++) {
        const int row = item / blocks_per_row;
        const int oc_begin = (item % blocks_per_row) * block;
        const int oc_end = out_c - oc_begin > block ? oc_begin + block : out_c;
        const int8_t *x = input + (size_t)row * depth;
        if (row != converted) {
            vc_u8(u, x, depth);
            converted = row;
        }
        int8_t *out = output + (size_t)row * out_c;
        int oc = oc_begin;
        for (; oc + 4 <= oc_end; oc += 4) {
            __m128i acc = vf_dot4(u, weights + (size_t)oc * depth, (size_t)depth, depth, c);
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
            for (int d = 0; d < depth; d++) acc += (uint32_t)((int32_t)w[d] * (x[d] + input_offset));
            const int32_t v = ev_round_to_i32((double)(int32_t)acc * ev_fc_scale(op, oc));
            out[oc] = ev_conv_finish(v, output_offset, act_min, act_max);
        }
    }
}

/* ==== the variant's names ===================================================================================== */

void ev_conv_2d_avx512vnni_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    vc_sizes(op, packed_bytes, scratch_bytes);
}
void ev_conv_2d_avx512vnni_pack(const ev_op *op, void *packed) { vc_pack(op, packed); }
void ev_conv_2d_avx512vnni(const ev_op *op, int begin, int end, int thread) { vc_conv(op, begin, end, thread); }

void ev_depthwise_conv_2d_avx512vnni_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    vd_sizes(op, packed_bytes, scratch_bytes);
}
void ev_depthwise_conv_2d_avx512vnni_pack(const ev_op *op, void *packed) { vd_pack(op, packed); }
void ev_depthwise_conv_2d_avx512vnni(const ev_op *op, int begin, int end, int thread) {
    vd_conv(op, begin, end, thread);
}

void ev_fully_connected_avx512vnni_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    vf_sizes(op, packed_bytes, scratch_bytes);
}
void ev_fully_connected_avx512vnni(const ev_op *op, int begin, int end, int thread) {
    vf_fc(op, begin, end, thread);
}
