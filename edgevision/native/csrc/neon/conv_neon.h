/* Shared pieces of the ARM kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: included by
 * neon/conv_neon.c (baseline ASIMD on aarch64, -mfpu=neon on ARMv7) and dotprod/conv_dotprod.c (compiled with
 * -march=armv8.2-a+dotprod), so each translation unit gets its own copy compiled with its own flags.
 *
 * What is here:
 *   - stand-ins for the AArch64-only intrinsics, so the same code builds for 32-bit ARMv7 NEON;
 *   - the requantisation, vectorised and bit-exact with conv.h's scalar ev_mbqm / ev_conv_finish;
 *   - the packed-data layouts and the pack-time arithmetic (plain C, run once per op at engine build);
 *   - im2col for the general convolution;
 *   - the depthwise convolution (NHWC, vectorised over 16 channels).
 *
 * Arithmetic identities every kernel here relies on (ref/conv_ref.c is the spec):
 *   acc = sum w * (x + input_offset) + bias  (mod 2^32)
 *       = sum w * x + [bias + input_offset * sum w]           the bracket is folded at pack time ("bias'")
 *   A tap outside the image is omitted by ref; reading x = input zero point (= -input_offset) there instead adds
 *   w * 0, so a kernel may read a buffer of zero points in place of the padding and use the folded bias'.
 *   int8 x int8 products fit int16 (|p| <= 16384), and a sum of two of them fits int16 unless a weight is -128
 *   (two -128 * -128 = 32768): the pairing kernels check the weights at pack time and have a safe form.
 *
 * Requantisation (MultiplyByQuantizedMultiplier, TFLite's double rounding), per output channel (M, shift):
 *   left = max(shift, 0), e = max(-shift, 0)
 *   y = SaturatingRoundingDoublingHighMul(acc << left, M)   == vqrdmulhq_s32 (round half up; saturates only for
 *                                                              INT32_MIN * INT32_MIN, which M >= 0 excludes)
 *   z = RoundingDivideByPOT(y, e)    round half away from zero; vrshlq_s32(y, -e) rounds half up, so negative y
 *                                    is first moved down by one when e > 0: y + (y >> 31) (TFLite's NEON fixup).
 *                                    y is never INT32_MIN (M < 2^31), so the -1 cannot overflow.
 *   out = clamp(z + output_offset, act_min, act_max), the addition wrapping in int32.
 *   When every channel has e >= 1 and left == 0 (the usual case, EV_RQ_FAST), |z| <= 2^30, the addition cannot
 *   wrap, and saturating to int16 before adding the offset (also saturating) and clamping gives the same bytes.
 */
#ifndef EV_CONV_NEON_H
#define EV_CONV_NEON_H

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "../conv.h"

#define EV_INLINE static inline __attribute__((always_inline))
#define EV_UNUSED __attribute__((unused))
#define EV_UNROLL _Pragma("GCC unroll 16")

/* ---- AArch32 stand-ins for AArch64-only intrinsics ------------------------------------------------------------ */
#if defined(__aarch64__)
#define ev_mull_hi_s8(a, b) vmull_high_s8(a, b)
#define ev_mlal_hi_s8(acc, a, b) vmlal_high_s8(acc, a, b)
#define ev_addw_hi_s16(acc, p) vaddw_high_s16(acc, p)
#define ev_padd_s32(a, b) vpaddq_s32(a, b)
#define ev_movn_hi_s32(lo, x) vqmovn_high_s32(lo, x)
#define ev_movn_hi_s16(lo, x) vqmovn_high_s16(lo, x)
EV_INLINE int8x16x4_t ev_ld4q(const int8_t *p) { return vld1q_s8_x4(p); }
#else
#define ev_mull_hi_s8(a, b) vmull_s8(vget_high_s8(a), vget_high_s8(b))
#define ev_mlal_hi_s8(acc, a, b) vmlal_s8(acc, vget_high_s8(a), vget_high_s8(b))
#define ev_addw_hi_s16(acc, p) vaddw_s16(acc, vget_high_s16(p))
EV_INLINE int32x4_t ev_padd_s32(int32x4_t a, int32x4_t b) {
    return vcombine_s32(vpadd_s32(vget_low_s32(a), vget_high_s32(a)), vpadd_s32(vget_low_s32(b), vget_high_s32(b)));
}
#define ev_movn_hi_s32(lo, x) vcombine_s16(lo, vqmovn_s32(x))
#define ev_movn_hi_s16(lo, x) vcombine_s8(lo, vqmovn_s16(x))
EV_INLINE int8x16x4_t ev_ld4q(const int8_t *p) {
    int8x16x4_t r;
    r.val[0] = vld1q_s8(p);
    r.val[1] = vld1q_s8(p + 16);
    r.val[2] = vld1q_s8(p + 32);
    r.val[3] = vld1q_s8(p + 48);
    return r;
}
#endif

/* n (0 < n < 16) bytes from p into the low lanes of a vector, the rest zero; never reads past p + n. No library
 * calls (a call would make the kernels around it save their registers). */
EV_INLINE int8x16_t ev_load_partial(const int8_t *p, int n) {
    if (n == 8) return vcombine_s8(vld1_s8(p), vdup_n_s8(0));
    if (n == 4 || n == 12) {
        uint32_t u;
        memcpy(&u, p + n - 4, 4);
        const int32x2_t tail = vreinterpret_s32_u32(vset_lane_u32(u, vdup_n_u32(0), 0));
        if (n == 4) return vreinterpretq_s8_s32(vcombine_s32(tail, vdup_n_s32(0)));
        return vcombine_s8(vld1_s8(p), vreinterpret_s8_s32(tail));
    }
    /* byte by byte from the last: rotate the vector up one lane, insert into lane 0 */
    int8x16_t v = vdupq_n_s8(0);
    for (int i = n - 1; i >= 0; i--) v = vsetq_lane_s8(p[i], vextq_s8(v, v, 15), 0);
    return v;
}

/* the first n (0 < n <= 16) lanes of v to p, without library calls */
EV_INLINE void ev_store_partial(int8_t *p, int8x16_t v, int n) {
    if (n == 16) {
        vst1q_s8(p, v);
        return;
    }
    if (n & 8) {
        vst1_s8(p, vget_low_s8(v));
        p += 8;
        v = vextq_s8(v, v, 8);
    }
    if (n & 4) {
        const uint32_t u = vgetq_lane_u32(vreinterpretq_u32_s8(v), 0);
        memcpy(p, &u, 4);
        p += 4;
        v = vextq_s8(v, v, 4);
    }
    if (n & 2) {
        const uint16_t u = vgetq_lane_u16(vreinterpretq_u16_s8(v), 0);
        memcpy(p, &u, 2);
        p += 2;
        v = vextq_s8(v, v, 2);
    }
    if (n & 1) vst1q_lane_s8(p, v, 0);
}

/* ---- requantisation ------------------------------------------------------------------------------------------- */
/* mode = one of the scalings | EV_RQ_NOCLAMP when the activation range is the whole int8 range (the saturating
 * narrowing already clamps) */
enum { EV_RQ_FAST = 0, EV_RQ_E0 = 1, EV_RQ_LEFT = 2, EV_RQ_SCALING = 3, EV_RQ_NOCLAMP = 4 };

/* Per-channel requantisation data of a block of channels, as it sits in packed memory: five arrays of `stride`
 * int32 (stride = the block's channel capacity). */
enum { EV_RQ_BIAS = 0, EV_RQ_MULT, EV_RQ_RSH, EV_RQ_LSH, EV_RQ_EMASK, EV_RQ_ARRAYS };

typedef struct {
    int32x4_t bias, mult, rsh, lsh, emask;
} ev_rq4;

EV_INLINE ev_rq4 ev_rq4_load(const int32_t *rq, int stride, int lane0) {
    ev_rq4 r;
    r.bias = vld1q_s32(rq + EV_RQ_BIAS * stride + lane0);
    r.mult = vld1q_s32(rq + EV_RQ_MULT * stride + lane0);
    r.rsh = vld1q_s32(rq + EV_RQ_RSH * stride + lane0);
    r.lsh = vld1q_s32(rq + EV_RQ_LSH * stride + lane0);
    r.emask = vld1q_s32(rq + EV_RQ_EMASK * stride + lane0);
    return r;
}

/* The output-side constants of an op, passed by value so that they stay in registers. */
typedef struct {
    int32x4_t off32;
    int16x8_t off16;
    int8x16_t lo, hi;
} ev_outq;

EV_INLINE ev_outq ev_outq_make(int32_t output_offset, int32_t act_min, int32_t act_max) {
    ev_outq o;
    o.off32 = vdupq_n_s32(output_offset);
    o.off16 = vdupq_n_s16((int16_t)output_offset);
    o.lo = vdupq_n_s8((int8_t)act_min);
    o.hi = vdupq_n_s8((int8_t)act_max);
    return o;
}

/* MultiplyByQuantizedMultiplier of 4 accumulators (bias already in); for EV_RQ_E0 and EV_RQ_LEFT also
 * + output_offset (wrapping), for EV_RQ_FAST the offset is added after narrowing (ev_rq_narrow16). */
EV_INLINE int32x4_t ev_rq_scale(int32x4_t acc, const ev_rq4 *q, int mode, ev_outq o) {
    const int scaling = mode & EV_RQ_SCALING;
    if (scaling == EV_RQ_LEFT) acc = vshlq_s32(acc, q->lsh);
    int32x4_t y = vqrdmulhq_s32(acc, q->mult);
    if (scaling == EV_RQ_FAST)
        y = vsraq_n_s32(y, y, 31);
    else
        y = vsraq_n_s32(y, vandq_s32(y, q->emask), 31);
    y = vrshlq_s32(y, q->rsh);
    if (scaling != EV_RQ_FAST) y = vaddq_s32(y, o.off32);
    return y;
}

/* two scaled vectors to int16 (saturating), with the output offset for EV_RQ_FAST */
EV_INLINE int16x8_t ev_rq_narrow16(int32x4_t y0, int32x4_t y1, int mode, ev_outq o) {
    int16x8_t r = ev_movn_hi_s32(vqmovn_s32(y0), y1);
    if ((mode & EV_RQ_SCALING) == EV_RQ_FAST) r = vqaddq_s16(r, o.off16);
    return r;
}

EV_INLINE int8x16_t ev_rq_narrow8(int16x8_t a, int16x8_t b, int mode, ev_outq o) {
    int8x16_t r = ev_movn_hi_s16(vqmovn_s16(a), b);
    if (!(mode & EV_RQ_NOCLAMP)) r = vminq_s8(vmaxq_s8(r, o.lo), o.hi);
    return r;
}

/* 16 accumulators (4 vectors, bias already added) of consecutive channels -> 16 int8 */
EV_INLINE int8x16_t ev_rq16(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3, const ev_rq4 q[4], int mode,
                            ev_outq o) {
    int32x4_t y0 = ev_rq_scale(a0, &q[0], mode, o), y1 = ev_rq_scale(a1, &q[1], mode, o);
    int32x4_t y2 = ev_rq_scale(a2, &q[2], mode, o), y3 = ev_rq_scale(a3, &q[3], mode, o);
    return ev_rq_narrow8(ev_rq_narrow16(y0, y1, mode, o), ev_rq_narrow16(y2, y3, mode, o), mode, o);
}

/* FULLY_CONNECTED's requantisation (ref: ev_round_to_i32, ev_conv_finish). */
/* acc (bias' included) of 4 channels -> 4 int8 in the low lanes: round_half_away(acc * scale), saturated to int32,
 * + output offset (wrapping), clamped */
EV_INLINE int8x16_t ev_fc_requant4(int32x4_t acc, const double *scale, ev_outq o, int32_t output_offset,
                                   int32_t act_min, int32_t act_max) {
#if defined(__aarch64__)
    const float64x2_t lo = vmulq_f64(vcvtq_f64_s64(vmovl_s32(vget_low_s32(acc))), vld1q_f64(scale));
    const float64x2_t hi = vmulq_f64(vcvtq_f64_s64(vmovl_high_s32(acc)), vld1q_f64(scale + 2));
    int32x4_t v = vcombine_s32(vqmovn_s64(vcvtaq_s64_f64(lo)), vqmovn_s64(vcvtaq_s64_f64(hi)));
    v = vaddq_s32(v, o.off32);
    const int16x8_t v16 = ev_movn_hi_s32(vqmovn_s32(v), v);
    return ev_rq_narrow8(v16, v16, 0, o);
#else
    int32_t a[4];
    int8_t r[16] = {0};
    vst1q_s32(a, acc);
    for (int i = 0; i < 4; i++)
        r[i] = ev_conv_finish(ev_round_to_i32((double)a[i] * scale[i]), output_offset, act_min, act_max);
    (void)o;
    return vld1q_s8(r);
#endif
}

/* ---- pack-time arithmetic (plain C) ----------------------------------------------------------------------------- */

static inline size_t ev_round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* fills the five requantisation arrays of one channel block: channels [oc0, oc0 + n) into lanes [0, n), lanes
 * [n, stride) zero (bias' 0, multiplier 0: their outputs are never stored). wsum[i] = sum of channel oc0+i's
 * weights. */
static inline EV_UNUSED void ev_pack_rq(int32_t *rq, int stride, const ev_op *op, int header, int out_c, int oc0,
                                        int n, const uint32_t *wsum, int32_t input_offset) {
    const int32_t *mult = op->params + header, *shift = mult + out_c;
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    memset(rq, 0, sizeof(int32_t) * EV_RQ_ARRAYS * (size_t)stride);
    for (int i = 0; i < n; i++) {
        const int oc = oc0 + i;
        const int32_t s = shift[oc];
        rq[EV_RQ_BIAS * stride + i] = (int32_t)((bias ? (uint32_t)bias[oc] : 0u) + (uint32_t)input_offset * wsum[i]);
        rq[EV_RQ_MULT * stride + i] = mult[oc];
        rq[EV_RQ_RSH * stride + i] = s > 0 ? 0 : s; /* -e */
        rq[EV_RQ_LSH * stride + i] = s > 0 ? s : 0;
        rq[EV_RQ_EMASK * stride + i] = s < 0 ? -1 : 0;
    }
}

/* which requantisation the op's channels need (see the top of this file) */
static inline EV_UNUSED int ev_rq_mode(const ev_op *op, int header, int out_c, int act_min_index) {
    const int32_t *shift = op->params + header + out_c;
    int mode = EV_RQ_FAST;
    for (int oc = 0; oc < out_c; oc++) {
        if (shift[oc] > 0) mode = EV_RQ_LEFT;
        if (shift[oc] == 0 && mode == EV_RQ_FAST) mode = EV_RQ_E0;
    }
    if (op->params[act_min_index] == -128 && op->params[act_min_index + 1] == 127) mode |= EV_RQ_NOCLAMP;
    return mode;
}

static inline EV_UNUSED int ev_has_m128(const int8_t *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (w[i] == -128) return 1;
    return 0;
}

/* ---- CONV_2D: how a variant runs it, decided at pack time --------------------------------------------------------
 * EV_CONV_DIRECT: a 1x1 filter without padding over all input channels (groups == 1) with in_c % 4 == 0: the
 *   input pixels are the GEMM's rows as they are (row stride in_c * stride_w).
 * EV_CONV_IM2COL: everything else: each output row's patches are gathered into scratch (padding taps read as the
 *   input zero point), one group at a time, rows of kp = round_up(K, 4) bytes, K = filter_h * filter_w * fic. */
enum { EV_CONV_DIRECT = 0, EV_CONV_IM2COL = 1 };

typedef struct {
    int32_t path;        /* EV_CONV_DIRECT or EV_CONV_IM2COL */
    int32_t mode;        /* EV_RQ_* */
    int32_t m128;        /* some weight is -128 (pairing int16 products is unsafe) */
    int32_t K;           /* dot-product length per output: filter_h * filter_w * filter_in_c */
    int32_t kp;          /* row length of the GEMM's left matrix: K (direct) or round_up(K, 4) (im2col) */
    int32_t k16;         /* round_up(K, 16): weight rows stored per block (zero beyond K) */
    int32_t groups, npg; /* groups, output channels per group */
    int32_t nblocks;     /* channel blocks per group */
    int32_t nr_last;     /* capacity of the last block of a group (variant-specific) */
    int32_t pad_[6];
    int64_t block_bytes; /* stride of blocks within a group */
    int64_t group_bytes; /* stride of groups */
} ev_conv_pack;

#define EV_PACK_HEADER 128 /* bytes before the first block: the header, padded to keep blocks 64-byte aligned */

/* sizes common to both conv variants; nr = block capacity, nr_last = capacity of a group's last block */
static inline EV_UNUSED void ev_conv_plan(const ev_op *op, ev_conv_pack *h, int nr, int nr_last_small) {
    const int32_t *p = op->params;
    const int fh = p[EV_CONV_FILTER_H], fw = p[EV_CONV_FILTER_W], fic = p[EV_CONV_FILTER_IN_C];
    const int in_c = p[EV_CONV_IN_C], out_c = p[EV_CONV_OUT_C];
    memset(h, 0, sizeof *h);
    h->groups = in_c / fic;
    h->npg = out_c / h->groups;
    h->K = fh * fw * fic;
    h->k16 = (int32_t)ev_round_up((size_t)h->K, 16);
    const int direct = fh == 1 && fw == 1 && p[EV_CONV_PAD_TOP] == 0 && p[EV_CONV_PAD_LEFT] == 0 && h->groups == 1 &&
                       in_c % 4 == 0;
    h->path = direct ? EV_CONV_DIRECT : EV_CONV_IM2COL;
    h->kp = direct ? h->K : (int32_t)ev_round_up((size_t)h->K, 4);
    h->mode = ev_rq_mode(op, EV_CONV_NPARAMS, out_c, EV_CONV_ACT_MIN);
    h->m128 = ev_has_m128(op->tensors[1], op->sizes[1]);
    const int rem = h->npg % nr;
    h->nblocks = (h->npg + nr - 1) / nr;
    h->nr_last = (rem != 0 && nr_last_small > 0 && rem <= nr_last_small) ? nr_last_small : nr;
    h->block_bytes = (int64_t)ev_round_up(sizeof(int32_t) * EV_RQ_ARRAYS * (size_t)nr + (size_t)h->k16 * (size_t)nr, 64);
    h->group_bytes = h->block_bytes * h->nblocks;
}

static inline EV_UNUSED uint8_t *ev_conv_block(const ev_conv_pack *h, int group, int block) {
    return (uint8_t *)h + EV_PACK_HEADER + (size_t)group * (size_t)h->group_bytes + (size_t)block * (size_t)h->block_bytes;
}

/* the filter weight of output channel oc at dot-product index k (k in [0, K): fy, fx, ic in OHWI order) */
EV_INLINE int8_t ev_conv_w(const int8_t *filter, int K, int oc, int k) { return filter[(size_t)oc * K + k]; }

/* ---- im2col ------------------------------------------------------------------------------------------------------
 * Row x of the matrix: output pixel (b, out_y, x)'s patch for one group, K bytes in the filter's (fy, fx, ic)
 * order, then zeros up to kp. Taps outside the image read the input zero point. */

/* n bytes from s to d, no library call; exact (never touches bytes outside [s, s + n) and [d, d + n)) */
EV_INLINE void ev_copy_small(int8_t *d, const int8_t *s, int n) {
    if (n >= 16) {
        int i = 0;
        for (; i + 16 <= n; i += 16) vst1q_s8(d + i, vld1q_s8(s + i));
        if (i < n) vst1q_s8(d + n - 16, vld1q_s8(s + n - 16));
    } else if (n >= 8) {
        const int8x8_t a = vld1_s8(s), b = vld1_s8(s + n - 8);
        vst1_s8(d, a);
        vst1_s8(d + n - 8, b);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (int i = 0; i < n; i++) d[i] = s[i];
    }
}

/* n bytes of value v at d, no library call */
EV_INLINE void ev_fill_small(int8_t *d, int8_t v, int n) {
    const int8x16_t vv = vdupq_n_s8(v);
    if (n >= 16) {
        int i = 0;
        for (; i + 16 <= n; i += 16) vst1q_s8(d + i, vv);
        if (i < n) vst1q_s8(d + n - 16, vv);
    } else if (n >= 8) {
        vst1_s8(d, vget_low_s8(vv));
        vst1_s8(d + n - 8, vget_low_s8(vv));
    } else {
        for (int i = 0; i < n; i++) d[i] = v;
    }
}

/* count copies of n bytes: from s (stride ss) to d (stride ds); the size class is chosen once */
static inline EV_UNUSED void ev_copy_runs(int8_t *d, size_t ds, const int8_t *s, size_t ss, int n, int count) {
    if (n >= 8 && n <= 16) {
        for (int i = 0; i < count; i++, d += ds, s += ss) {
            const int8x8_t a = vld1_s8(s), b = vld1_s8(s + n - 8);
            vst1_s8(d, a);
            vst1_s8(d + n - 8, b);
        }
    } else {
        for (int i = 0; i < count; i++, d += ds, s += ss) ev_copy_small(d, s, n);
    }
}

static inline EV_UNUSED void ev_im2col_row(const ev_op *op, int b, int out_y, int group, int kp, int8_t *dst) {
    const int32_t *p = op->params;
    const int in_h = p[EV_CONV_IN_H], in_w = p[EV_CONV_IN_W], in_c = p[EV_CONV_IN_C];
    const int out_w = p[EV_CONV_OUT_W], fh = p[EV_CONV_FILTER_H], fw = p[EV_CONV_FILTER_W];
    const int fic = p[EV_CONV_FILTER_IN_C];
    const int sw = p[EV_CONV_STRIDE_W], dh = p[EV_CONV_DILATION_H], dw = p[EV_CONV_DILATION_W];
    const int pad_left = p[EV_CONV_PAD_LEFT];
    const int8_t zp = (int8_t)(-p[EV_CONV_INPUT_OFFSET]);
    const int in_y0 = out_y * p[EV_CONV_STRIDE_H] - p[EV_CONV_PAD_TOP];
    const int8_t *input = (const int8_t *)op->tensors[0] + (size_t)b * in_h * in_w * in_c + (size_t)group * fic;
    const int K = fh * fw * fic, run = fw * fic;
    /* output columns whose window lies inside the row: [x_lo, x_hi) */
    int x_lo = (pad_left + sw - 1) / sw, x_hi;
    {
        const int last = in_w - 1 - (fw - 1) * dw + pad_left;
        x_hi = last < 0 ? 0 : last / sw + 1;
        if (x_hi > out_w) x_hi = out_w;
        if (x_lo > x_hi) x_lo = x_hi;
    }
    /* the zeros after K first (the copies below write exactly [0, K) of each row) */
    if (kp > K) {
        const uint32_t zero = 0;
        for (int x = 0; x < out_w; x++) memcpy(dst + (size_t)x * kp + kp - 4, &zero, 4);
    }
    for (int fy = 0; fy < fh; fy++) {
        const int in_y = in_y0 + fy * dh;
        int8_t *d = dst + (size_t)fy * run;
        if (in_y < 0 || in_y >= in_h) {
            for (int x = 0; x < out_w; x++) ev_fill_small(d + (size_t)x * kp, zp, run);
            continue;
        }
        const int8_t *row = input + (size_t)in_y * in_w * in_c;
        int x = 0;
        if (dw == 1 && fic == in_c) { /* a filter row is one run of input bytes */
            for (; x < x_lo; x++) {
                for (int fx = 0; fx < fw; fx++) {
                    const int in_x = x * sw - pad_left + fx;
                    if (in_x < 0 || in_x >= in_w)
                        ev_fill_small(d + (size_t)x * kp + fx * fic, zp, fic);
                    else
                        ev_copy_small(d + (size_t)x * kp + fx * fic, row + (size_t)in_x * in_c, fic);
                }
            }
            ev_copy_runs(d + (size_t)x_lo * kp, (size_t)kp, row + (size_t)(x_lo * sw - pad_left) * in_c,
                         (size_t)sw * in_c, run, x_hi - x_lo);
            x = x_hi;
        }
        for (; x < out_w; x++) {
            for (int fx = 0; fx < fw; fx++) {
                const int in_x = x * sw - pad_left + fx * dw;
                if (in_x < 0 || in_x >= in_w)
                    ev_fill_small(d + (size_t)x * kp + fx * fic, zp, fic);
                else
                    ev_copy_small(d + (size_t)x * kp + fx * fic, row + (size_t)in_x * in_c, fic);
            }
        }
    }
}

/* The GEMM of one requantisation mode over a block of rows: M pixels of A (row stride lda) by the packed
 * weights of a group, into C (row stride ldc). Each variant (neon/, dotprod/) instantiates its own. */
typedef void (*ev_gemm_fn)(const ev_conv_pack *h, int group, const int8_t *A, size_t lda, int M, int8_t *C,
                           size_t ldc, ev_outq o);

/* CONV_2D over the work items [begin, end) (batch x output rows) with a variant's GEMM: 1x1 convolutions read
 * their input rows directly (stride 1: the whole range is one GEMM), others gather each row's im2col rows into
 * the thread's scratch, one GEMM per group. */
static inline EV_UNUSED void ev_conv_rows(const ev_op *op, int begin, int end, int thread, ev_gemm_fn gemm) {
    const ev_conv_pack *h = op->packed;
    const int32_t *p = op->params;
    const int in_h = p[EV_CONV_IN_H], in_w = p[EV_CONV_IN_W], in_c = p[EV_CONV_IN_C];
    const int out_h = p[EV_CONV_OUT_H], out_w = p[EV_CONV_OUT_W], out_c = p[EV_CONV_OUT_C];
    const ev_outq o = ev_outq_make(p[EV_CONV_OUTPUT_OFFSET], p[EV_CONV_ACT_MIN], p[EV_CONV_ACT_MAX]);
    const int8_t *input = op->tensors[0];
    int8_t *output = op->tensors[3];
    if (h->path == EV_CONV_DIRECT) {
        const int sh = p[EV_CONV_STRIDE_H], sw = p[EV_CONV_STRIDE_W];
        if (sh == 1 && sw == 1) {
            /* 1x1, stride 1, no padding: output pixel i is input pixel i; the rows [begin, end) are one GEMM */
            const size_t m0 = (size_t)begin * out_w;
            gemm(h, 0, input + m0 * in_c, (size_t)in_c, (end - begin) * out_w, output + m0 * out_c, (size_t)out_c, o);
            return;
        }
        for (int item = begin; item < end; item++) {
            const int b = item / out_h, y = item % out_h;
            const int8_t *a = input + (((size_t)b * in_h + (size_t)y * sh) * in_w) * in_c;
            gemm(h, 0, a, (size_t)in_c * sw, out_w, output + (size_t)item * out_w * out_c, (size_t)out_c, o);
        }
        return;
    }
    int8_t *col = (int8_t *)op->scratch + (size_t)thread * op->scratch_size;
    for (int item = begin; item < end; item++) {
        const int b = item / out_h, y = item % out_h;
        for (int g = 0; g < h->groups; g++) {
            ev_im2col_row(op, b, y, g, h->kp, col);
            gemm(h, g, col, (size_t)h->kp, out_w, output + (size_t)item * out_w * out_c + (size_t)g * h->npg,
                 (size_t)out_c, o);
        }
    }
}

#endif /* EV_CONV_NEON_H */
