/* NEON elementwise, pooling and reduction kernels: ADD, MUL, MEAN, AVERAGE_POOL_2D, MAX_POOL_2D, QUANTIZE (8-bit
 * requantisation), RELU, PRELU, HARD_SWISH, and on aarch64 LOGISTIC and TANH. One source for aarch64 (ASIMD) and
 * 32-bit ARMv7 (-mfpu=neon): only intrinsics both have, except the table lookups (vqtbl4q, aarch64 only; ARMv7's
 * 32-byte vtbx would need the whole register file for the table, so its LOGISTIC and TANH stay the reference's
 * scalar lookup). Same bytes as the reference kernels (ref/elementwise_ref.c, ref/activation_ref.c,
 * ref/misc_ref.c: the spec) for any params the checks accept and any split of the work items; how:
 *
 * Requantisation (nq_apply): TFLite's MultiplyByQuantizedMultiplier exactly as TFLite's own NEON code does it:
 * the left shift wraps (vshl), SaturatingRoundingDoublingHighMul is vqrdmulh (sat((2ab + 2^31) >> 32): the
 * gemmlowp rounding, and its one saturating case), and RoundingDivideByPOT(x, r) is a rounding shift vrshl by -r
 * of x - 1 for negative x (vqadd; the saturation at INT32_MIN gives the same quotient): ties away from zero. Exact
 * for every int32 input, so no operand bounds are needed.
 *
 * Elementwise kinds take chunks of 16 8-bit values (one q register), widened to int16 (offsets and zero points
 * are added there: |x + offset| <= 383) and to four int32x4 vectors; results go back with saturating narrows
 * (int32 -> int16 -> int8, monotone, so the activation clamp on the bytes gives what clamping the int32 would
 * give). Tails are computed in a zeroed 16-byte buffer and copied out: nothing is read or written outside the
 * tensors.
 *
 * ADD, MUL, PRELU: the broadcast walked as runs along the innermost dimension (as the reference); a run whose
 * inputs step by one element is vectorised on both sides, an input (or alpha) that stays put is a constant vector
 * (for ADD rescaled once, in scalar), any other stride runs the scalar spec. MUL and PRELU form their products
 * with vmull_s16. PRELU computes both branches and selects by the input's sign.
 *
 * MEAN: dimensions of size 1 dropped, adjacent reduced ones merged. Innermost dimension kept (channels: the H, W
 * reduction of EfficientNet and the Fashion-MNIST net): 16 channels at a time summed over the reduced offsets
 * with vaddw_s8 into int16 (flushed to int32 every 256 additions), then requantised in vectors. Innermost
 * dimension reduced: each output sums contiguous runs with vpadal (int8 pairs into int16, flushed to int32 every
 * 64 steps) and is requantised in scalar.
 *
 * AVERAGE_POOL_2D, MAX_POOL_2D: 16 channels of a pixel at a time, the window's cells loaded in turn: vmax, or
 * int16 sums (int32 beyond 256 cells). The rounded average: a = |acc| + count / 2 (< 2^24 for windows of at most
 * 2^16 cells; larger ones run the reference kernel), t = trunc(a * (1.0f / count)) is off by at most one (the
 * relative error of two roundings is far below 1 / a), corrected by the remainder a - t * count, then the sign
 * put back: truncating division with the reference's half-away rounding, without a vector divide (ARMv7 has
 * none). Channels beyond the last 16 run the scalar spec.
 *
 * HARD_SWISH: TFLite's 16-bit fixed point in int16 lanes: SaturatingRoundingDoublingHighMul<int16> is vqrdmulh,
 * SaturatingLeftShift is vqshl (any amount), the truncating doubling high multiply of reluish (>= 0) by b is
 * vqdmulh(reluish, |b|) (floor of the non-negative product) with b's sign put back, and RoundingDivideByPOT<int16>
 * keeps its int16 quirks (mask -1 for exponents >= 16) in the gemmlowp mask / threshold formula.
 *
 * LOGISTIC, TANH (aarch64): the 256-byte table in 16 registers, four vqtbl4q/vqtbx4q lookups of 64 entries per
 * 16 inputs (an index outside a lookup's 64 entries leaves the lane as it is).
 */
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "../activation.h"
#include "../elementwise.h"
#include "../misc.h"

#define NE_INLINE static inline __attribute__((always_inline))

/* ---- chunks: 16 8-bit values <-> int16 / int32 vectors ----------------------------------------------------------- */

/* 16 int8 (u8 = 0) or uint8 (u8 = 1) values, widened to two int16x8 (lanes 0-7, 8-15) */
NE_INLINE void ne_widen16(const void *p, int u8, int16x8_t h[2]) {
    if (u8) {
        const uint8x16_t x = vld1q_u8((const uint8_t *)p);
        h[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x)));
        h[1] = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(x)));
    } else {
        const int8x16_t x = vld1q_s8((const int8_t *)p);
        h[0] = vmovl_s8(vget_low_s8(x));
        h[1] = vmovl_s8(vget_high_s8(x));
    }
}

/* two int16x8 -> four int32x4, in order */
NE_INLINE void ne_widen32(const int16x8_t h[2], int32x4_t w[4]) {
    w[0] = vmovl_s16(vget_low_s16(h[0]));
    w[1] = vmovl_s16(vget_high_s16(h[0]));
    w[2] = vmovl_s16(vget_low_s16(h[1]));
    w[3] = vmovl_s16(vget_high_s16(h[1]));
}

/* four int32x4 -> 16 bytes saturated to int8 (u8 = 0) or uint8 (u8 = 1), clamped to [lo, hi], stored */
NE_INLINE void ne_store16(void *p, const int32x4_t r[4], int u8, uint8x16_t lo, uint8x16_t hi) {
    const int16x8_t a = vcombine_s16(vqmovn_s32(r[0]), vqmovn_s32(r[1]));
    const int16x8_t b = vcombine_s16(vqmovn_s32(r[2]), vqmovn_s32(r[3]));
    if (u8) {
        const uint8x16_t v = vcombine_u8(vqmovun_s16(a), vqmovun_s16(b));
        vst1q_u8((uint8_t *)p, vminq_u8(vmaxq_u8(v, lo), hi));
    } else {
        const int8x16_t v = vcombine_s8(vqmovn_s16(a), vqmovn_s16(b));
        vst1q_s8((int8_t *)p,
                 vminq_s8(vmaxq_s8(v, vreinterpretq_s8_u8(lo)), vreinterpretq_s8_u8(hi)));
    }
}

/* ---- requantisation --------------------------------------------------------------------------------------------- */

typedef struct {
    int32x4_t mult, lsh, rsh; /* lsh = left shift, rsh = -right shift (vshl/vrshl counts) */
} nq;

static inline nq nq_make(int32_t mult, int shift) {
    nq q;
    q.mult = vdupq_n_s32(mult);
    q.lsh = vdupq_n_s32(shift > 0 ? shift : 0);
    q.rsh = vdupq_n_s32(shift > 0 ? 0 : shift);
    return q;
}

/* `left` (a constant at each call): 0 when the shift is known to be <= 0 (ADD's three rescales), which saves the
 * shift by 0 */
NE_INLINE int32x4_t nq_apply_l(int32x4_t x, const nq *q, int left) {
    if (left) x = vshlq_s32(x, q->lsh); /* (by 0 without a left shift) wraps like TFLite's int32 shift */
    const int32x4_t h = vqrdmulhq_s32(x, q->mult);
    /* RoundingDivideByPOT: x - 1 for negative x (only when shifting: the shift count's sign bit), then a
     * rounding shift (half up) */
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(h, q->rsh), 31);
    return vrshlq_s32(vqaddq_s32(h, fixup), q->rsh);
}

NE_INLINE int32x4_t nq_apply(int32x4_t x, const nq *q) { return nq_apply_l(x, q, 1); }

/* ---- work ranges ------------------------------------------------------------------------------------------------ */

static inline void ne_block_range(long long n, long long block, int begin, int end, long long *lo, long long *hi) {
    *lo = (long long)begin * block;
    *hi = (long long)end * block;
    if (*hi > n) *hi = n;
    if (*lo > *hi) *lo = *hi;
}

/* runs along the innermost dimension of an ADD/MUL broadcast (as EV_BIN_RUNS in ref/elementwise_ref.c) */
typedef struct {
    const int32_t *dim, *s1, *s2;
    int idx[EV_EW_DIMS];
    long long e, stop, o1, o2;
} ne_runs;

static void ne_runs_init(ne_runs *r, const ev_op *op, int begin, int end) {
    const int32_t *p = op->params;
    r->dim = p + EV_BIN_DIM;
    r->s1 = p + EV_BIN_STRIDE1;
    r->s2 = p + EV_BIN_STRIDE2;
    long long total = 1;
    for (int k = 0; k < EV_EW_DIMS; k++) total *= r->dim[k];
    r->e = (long long)begin * p[EV_BIN_BLOCK];
    r->stop = (long long)end * p[EV_BIN_BLOCK];
    if (r->stop > total) r->stop = total;
    long long rest = r->e;
    r->o1 = r->o2 = 0;
    for (int k = EV_EW_DIMS - 1; k >= 0; k--) {
        r->idx[k] = (int)(rest % r->dim[k]);
        rest /= r->dim[k];
        r->o1 += (long long)r->idx[k] * r->s1[k];
        r->o2 += (long long)r->idx[k] * r->s2[k];
    }
}

static int ne_runs_next(ne_runs *r, long long *n, long long *e, long long *o1, long long *o2) {
    if (r->e >= r->stop) return 0;
    const int L = EV_EW_DIMS - 1;
    long long len = r->dim[L] - r->idx[L];
    if (len > r->stop - r->e) len = r->stop - r->e;
    *n = len, *e = r->e, *o1 = r->o1, *o2 = r->o2;
    r->e += len;
    r->o1 -= (long long)r->idx[L] * r->s1[L];
    r->o2 -= (long long)r->idx[L] * r->s2[L];
    r->idx[L] = 0;
    for (int k = L - 1; k >= 0; k--) {
        r->o1 += r->s1[k];
        r->o2 += r->s2[k];
        if (++r->idx[k] < r->dim[k]) break;
        r->o1 -= (long long)r->dim[k] * r->s1[k];
        r->o2 -= (long long)r->dim[k] * r->s2[k];
        r->idx[k] = 0;
    }
    return 1;
}

/* Calls body(k, a, b, o, mode, ca, cb) on chunks of 16 of a run of n elements: full chunks in place, the tail through
 * zeroed 16-byte buffers. mode 0: both inputs step by one; 1: input a is constant; 2: input b is constant. */
#define NE_SPAN(body, k, a, b, o, n, mode, ca, cb)                                                               \
    do {                                                                                                         \
        long long i_ = 0;                                                                                        \
        for (; i_ + 16 <= (n); i_ += 16)                                                                         \
            body((k), (a) + ((mode) == 1 ? 0 : i_), (b) + ((mode) == 2 ? 0 : i_), (o) + i_, (mode), (ca), (cb)); \
        if (i_ < (n)) {                                                                                          \
            int8_t ta_[16] = {0}, tb_[16] = {0}, to_[16];                                                        \
            const size_t m_ = (size_t)((n) - i_);                                                                \
            if ((mode) != 1) memcpy(ta_, (a) + i_, m_);                                                          \
            if ((mode) != 2) memcpy(tb_, (b) + i_, m_);                                                          \
            body((k), ta_, tb_, to_, (mode), (ca), (cb));                                                        \
            memcpy((o) + i_, to_, m_);                                                                           \
        }                                                                                                        \
    } while (0)

/* ==== ADD ====================================================================================================== */

typedef struct {
    int32_t off1, off2, off_out, m1, m2, mo, lo, hi;
    int ls, sh1, sh2, sho;
    int16x8_t voff1, voff2;
    int32x4_t vooff, vls;
    uint8x16_t vlo, vhi;
    nq q1, q2, qo;
} nadd_k;

static void nadd_init(nadd_k *k, const int32_t *p) {
    k->off1 = p[EV_ADD_IN1_OFFSET], k->off2 = p[EV_ADD_IN2_OFFSET], k->off_out = p[EV_ADD_OUT_OFFSET];
    k->ls = p[EV_ADD_LEFT_SHIFT];
    k->m1 = p[EV_ADD_IN1_MULT], k->sh1 = p[EV_ADD_IN1_SHIFT];
    k->m2 = p[EV_ADD_IN2_MULT], k->sh2 = p[EV_ADD_IN2_SHIFT];
    k->mo = p[EV_ADD_OUT_MULT], k->sho = p[EV_ADD_OUT_SHIFT];
    k->lo = p[EV_ADD_ACT_MIN], k->hi = p[EV_ADD_ACT_MAX];
    k->voff1 = vdupq_n_s16((int16_t)k->off1), k->voff2 = vdupq_n_s16((int16_t)k->off2);
    k->vooff = vdupq_n_s32(k->off_out), k->vls = vdupq_n_s32(k->ls);
    k->vlo = vreinterpretq_u8_s8(vdupq_n_s8((int8_t)k->lo)), k->vhi = vreinterpretq_u8_s8(vdupq_n_s8((int8_t)k->hi));
    k->q1 = nq_make(k->m1, k->sh1);
    k->q2 = nq_make(k->m2, k->sh2);
    k->qo = nq_make(k->mo, k->sho);
}

static inline int32_t nadd_side1(const nadd_k *k, int8_t x) {
    return ev_mbqm((x + k->off1) * (1 << k->ls), k->m1, k->sh1);
}
static inline int32_t nadd_side2(const nadd_k *k, int8_t x) {
    return ev_mbqm((x + k->off2) * (1 << k->ls), k->m2, k->sh2);
}
static inline int8_t nadd_out(const nadd_k *k, int32_t sa, int32_t sb) {
    return (int8_t)ev_clamp(ev_mbqm(sa + sb, k->mo, k->sho) + k->off_out, k->lo, k->hi);
}

/* (x + offset) << left_shift, rescaled, for the four int32 vectors of 16 values */
NE_INLINE void nadd_rescale(const int8_t *x, int16x8_t off, int32x4_t ls, const nq *q, int32x4_t s[4]) {
    int16x8_t h[2];
    ne_widen16(x, 0, h);
    h[0] = vaddq_s16(h[0], off);
    h[1] = vaddq_s16(h[1], off);
    int32x4_t w[4];
    ne_widen32(h, w);
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) s[i] = nq_apply_l(vshlq_s32(w[i], ls), q, 0);
}

NE_INLINE void nadd_chunk(const nadd_k *k, const int8_t *a, const int8_t *b, int8_t *o, int mode, int32x4_t ca,
                          int32x4_t cb) {
    int32x4_t sa[4], sb[4], r[4];
    if (mode != 1) nadd_rescale(a, k->voff1, k->vls, &k->q1, sa);
    if (mode != 2) nadd_rescale(b, k->voff2, k->vls, &k->q2, sb);
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        r[i] = vaddq_s32(nq_apply_l(vaddq_s32(mode == 1 ? ca : sa[i], mode == 2 ? cb : sb[i]), &k->qo, 0), k->vooff);
    ne_store16(o, r, 0, k->vlo, k->vhi);
}

void ev_add_neon(const ev_op *op, int begin, int end, int thread) {
    nadd_k k;
    nadd_init(&k, op->params);
    if (k.sh1 > 0 || k.sh2 > 0 || k.sho > 0) { /* (cannot happen: the check keeps ADD's shifts <= 0) */
        ev_add_ref(op, begin, end, thread);
        return;
    }
    const int8_t *in1 = op->tensors[0], *in2 = op->tensors[1];
    int8_t *out = op->tensors[2];
    const long long s1 = op->params[EV_BIN_STRIDE1 + EV_EW_DIMS - 1], s2 = op->params[EV_BIN_STRIDE2 + EV_EW_DIMS - 1];
    const int32x4_t z = vdupq_n_s32(0);
    ne_runs r;
    ne_runs_init(&r, op, begin, end);
    long long n, e, o1, o2;
    while (ne_runs_next(&r, &n, &e, &o1, &o2)) {
        const int8_t *a = in1 + o1, *b = in2 + o2;
        int8_t *o = out + e;
        if (s1 == 1 && s2 == 1) {
            NE_SPAN(nadd_chunk, &k, a, b, o, n, 0, z, z);
        } else if (s1 == 0 && s2 == 1) {
            const int32x4_t ca = vdupq_n_s32(nadd_side1(&k, a[0]));
            NE_SPAN(nadd_chunk, &k, a, b, o, n, 1, ca, z);
        } else if (s1 == 1 && s2 == 0) {
            const int32x4_t cb = vdupq_n_s32(nadd_side2(&k, b[0]));
            NE_SPAN(nadd_chunk, &k, a, b, o, n, 2, z, cb);
        } else if (s1 == 0 && s2 == 0) {
            memset(o, nadd_out(&k, nadd_side1(&k, a[0]), nadd_side2(&k, b[0])), (size_t)n);
        } else {
            for (long long i = 0; i < n; i++) o[i] = nadd_out(&k, nadd_side1(&k, a[i * s1]), nadd_side2(&k, b[i * s2]));
        }
    }
}

/* ==== MUL ====================================================================================================== */

typedef struct {
    int32_t off1, off2, off_out, mult, lo, hi;
    int shift;
    int16x8_t voff1, voff2;
    int32x4_t vooff;
    uint8x16_t vlo, vhi;
    nq q;
} nmul_k;

static inline int8_t nmul_scalar(const nmul_k *k, int8_t a, int8_t b) {
    const int32_t prod = (a + k->off1) * (b + k->off2);
    return (int8_t)ev_clamp(ev_mbqm(prod, k->mult, k->shift) + k->off_out, k->lo, k->hi);
}

/* mode 1: ca holds input 1's (x + offset) in every int16 lane (its low half: vget_low), mode 2 likewise cb */
NE_INLINE void nmul_chunk(const nmul_k *k, const int8_t *a, const int8_t *b, int8_t *o, int mode, int16x8_t ca,
                          int16x8_t cb) {
    int16x8_t ha[2], hb[2];
    if (mode != 1) {
        ne_widen16(a, 0, ha);
        ha[0] = vaddq_s16(ha[0], k->voff1), ha[1] = vaddq_s16(ha[1], k->voff1);
    } else {
        ha[0] = ha[1] = ca;
    }
    if (mode != 2) {
        ne_widen16(b, 0, hb);
        hb[0] = vaddq_s16(hb[0], k->voff2), hb[1] = vaddq_s16(hb[1], k->voff2);
    } else {
        hb[0] = hb[1] = cb;
    }
    int32x4_t r[4];
    #pragma GCC unroll 2
    for (int j = 0; j < 2; j++) {
        r[2 * j] = vmull_s16(vget_low_s16(ha[j]), vget_low_s16(hb[j]));
        r[2 * j + 1] = vmull_s16(vget_high_s16(ha[j]), vget_high_s16(hb[j]));
    }
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) r[i] = vaddq_s32(nq_apply(r[i], &k->q), k->vooff);
    ne_store16(o, r, 0, k->vlo, k->vhi);
}

void ev_mul_neon(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    nmul_k k;
    k.off1 = p[EV_MUL_IN1_OFFSET], k.off2 = p[EV_MUL_IN2_OFFSET], k.off_out = p[EV_MUL_OUT_OFFSET];
    k.mult = p[EV_MUL_OUT_MULT], k.shift = p[EV_MUL_OUT_SHIFT];
    k.lo = p[EV_MUL_ACT_MIN], k.hi = p[EV_MUL_ACT_MAX];
    k.voff1 = vdupq_n_s16((int16_t)k.off1), k.voff2 = vdupq_n_s16((int16_t)k.off2);
    k.vooff = vdupq_n_s32(k.off_out);
    k.vlo = vreinterpretq_u8_s8(vdupq_n_s8((int8_t)k.lo)), k.vhi = vreinterpretq_u8_s8(vdupq_n_s8((int8_t)k.hi));
    k.q = nq_make(k.mult, k.shift);
    const int8_t *in1 = op->tensors[0], *in2 = op->tensors[1];
    int8_t *out = op->tensors[2];
    const long long s1 = p[EV_BIN_STRIDE1 + EV_EW_DIMS - 1], s2 = p[EV_BIN_STRIDE2 + EV_EW_DIMS - 1];
    const int16x8_t z = vdupq_n_s16(0);
    ne_runs r;
    ne_runs_init(&r, op, begin, end);
    long long n, e, o1, o2;
    while (ne_runs_next(&r, &n, &e, &o1, &o2)) {
        const int8_t *a = in1 + o1, *b = in2 + o2;
        int8_t *o = out + e;
        if (s1 == 1 && s2 == 1) {
            NE_SPAN(nmul_chunk, &k, a, b, o, n, 0, z, z);
        } else if (s1 == 0 && s2 == 1) {
            const int16x8_t ca = vdupq_n_s16((int16_t)(a[0] + k.off1));
            NE_SPAN(nmul_chunk, &k, a, b, o, n, 1, ca, z);
        } else if (s1 == 1 && s2 == 0) {
            const int16x8_t cb = vdupq_n_s16((int16_t)(b[0] + k.off2));
            NE_SPAN(nmul_chunk, &k, a, b, o, n, 2, z, cb);
        } else if (s1 == 0 && s2 == 0) {
            memset(o, nmul_scalar(&k, a[0], b[0]), (size_t)n);
        } else {
            for (long long i = 0; i < n; i++) o[i] = nmul_scalar(&k, a[i * s1], b[i * s2]);
        }
    }
}

/* ==== QUANTIZE (8-bit requantisation), RELU ====================================================================== */

typedef struct {
    int16x8_t in_zp;
    int32x4_t out_zp;
    uint8x16_t lo, hi;
    nq q;
} nrq_k;

NE_INLINE void nrq_chunk(const nrq_k *k, const uint8_t *in, uint8_t *out, int in_u8, int out_u8) {
    int16x8_t h[2];
    ne_widen16(in, in_u8, h);
    h[0] = vsubq_s16(h[0], k->in_zp), h[1] = vsubq_s16(h[1], k->in_zp); /* |x - zp| <= 255 */
    int32x4_t w[4];
    ne_widen32(h, w);
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) w[i] = vaddq_s32(nq_apply(w[i], &k->q), k->out_zp);
    ne_store16(out, w, out_u8, k->lo, k->hi);
}

NE_INLINE void nrq_span(const nrq_k *k, const uint8_t *in, uint8_t *out, long long n, int in_u8, int out_u8) {
    long long i = 0;
    for (; i + 16 <= n; i += 16) nrq_chunk(k, in + i, out + i, in_u8, out_u8);
    if (i < n) {
        uint8_t t[16] = {0}, to[16];
        memcpy(t, in + i, (size_t)(n - i));
        nrq_chunk(k, t, to, in_u8, out_u8);
        memcpy(out + i, to, (size_t)(n - i));
    }
}

/* out = clamp(MBQM(x - in_zp, mult, shift) + out_zp, lo, hi) over elements [a, b) */
static void ne_requant(const void *in, void *out, long long a, long long b, int in_u8, int out_u8, int32_t in_zp,
                       int32_t out_zp, int32_t mult, int shift, int32_t lo, int32_t hi) {
    nrq_k k;
    k.in_zp = vdupq_n_s16((int16_t)in_zp);
    k.out_zp = vdupq_n_s32(out_zp);
    k.lo = vdupq_n_u8((uint8_t)lo);
    k.hi = vdupq_n_u8((uint8_t)hi);
    k.q = nq_make(mult, shift);
    const uint8_t *i8 = (const uint8_t *)in + a;
    uint8_t *o8 = (uint8_t *)out + a;
    const long long n = b - a;
    if (in_u8) {
        if (out_u8) nrq_span(&k, i8, o8, n, 1, 1);
        else nrq_span(&k, i8, o8, n, 1, 0);
    } else {
        if (out_u8) nrq_span(&k, i8, o8, n, 0, 1);
        else nrq_span(&k, i8, o8, n, 0, 0);
    }
}

void ev_quantize_neon(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    if (p[EV_QUANT_MODE] != EV_QUANT_REQUANT) {
        ev_quantize_ref(op, begin, end, thread);
        return;
    }
    long long a, b;
    ne_block_range(p[EV_QUANT_COUNT], p[EV_QUANT_BLOCK], begin, end, &a, &b);
    const int out_u8 = p[EV_QUANT_OUT_TYPE] == EV_TYPE_UINT8;
    ne_requant(op->tensors[0], op->tensors[1], a, b, p[EV_QUANT_IN_TYPE] == EV_TYPE_UINT8, out_u8, p[EV_QUANT_IN_ZP],
               p[EV_QUANT_OUT_ZP], p[EV_QUANT_MULT], p[EV_QUANT_SHIFT], out_u8 ? 0 : -128, out_u8 ? 255 : 127);
}

void ev_relu_neon(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    long long a, b;
    ne_block_range(p[EV_RELU_N], p[EV_RELU_BLOCK], begin, end, &a, &b);
    ne_requant(op->tensors[0], op->tensors[1], a, b, 0, 0, p[EV_RELU_IN_ZP], p[EV_RELU_OUT_ZP], p[EV_RELU_MULT],
               p[EV_RELU_SHIFT], p[EV_RELU_ACT_MIN], p[EV_RELU_ACT_MAX]);
}

/* ==== PRELU ==================================================================================================== */

typedef struct {
    int32_t in_zp, alpha_zp, out_zp, m1, m2;
    int s1, s2;
    int16x8_t vin_zp, valpha_zp;
    int32x4_t vout_zp;
    uint8x16_t lo, hi;
    nq q1, q2;
} nprelu_k;

static inline int8_t nprelu_scalar(const nprelu_k *k, int8_t in, int8_t alpha) {
    const int32_t x = (int32_t)in - k->in_zp;
    const int32_t y = x >= 0 ? ev_mbqm(x, k->m1, k->s1) : ev_mbqm(x * ((int32_t)alpha - k->alpha_zp), k->m2, k->s2);
    return (int8_t)ev_clamp(y + k->out_zp, -128, 127);
}

/* mode 0: alpha steps with the input; 1: alpha is the constant (a - alpha_zp) ca */
NE_INLINE void nprelu_chunk(const nprelu_k *k, const int8_t *in, const int8_t *alpha, int8_t *o, int mode,
                            int16x8_t ca, int16x8_t unused) {
    (void)unused;
    int16x8_t x[2], a[2];
    ne_widen16(in, 0, x);
    x[0] = vsubq_s16(x[0], k->vin_zp), x[1] = vsubq_s16(x[1], k->vin_zp);
    if (mode == 0) {
        ne_widen16(alpha, 0, a);
        a[0] = vsubq_s16(a[0], k->valpha_zp), a[1] = vsubq_s16(a[1], k->valpha_zp);
    } else {
        a[0] = a[1] = ca;
    }
    int32x4_t r[4];
    #pragma GCC unroll 2
    for (int j = 0; j < 2; j++) {
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const int16x4_t xs = h ? vget_high_s16(x[j]) : vget_low_s16(x[j]);
            const int16x4_t as = h ? vget_high_s16(a[j]) : vget_low_s16(a[j]);
            const int32x4_t x32 = vmovl_s16(xs);
            const int32x4_t y1 = nq_apply(x32, &k->q1);
            const int32x4_t y2 = nq_apply(vmull_s16(xs, as), &k->q2);
            r[2 * j + h] = vaddq_s32(vbslq_s32(vcltq_s32(x32, vdupq_n_s32(0)), y2, y1), k->vout_zp);
        }
    }
    ne_store16(o, r, 0, k->lo, k->hi);
}

void ev_prelu_neon(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    nprelu_k k;
    k.in_zp = p[EV_PRELU_IN_ZP], k.alpha_zp = p[EV_PRELU_ALPHA_ZP], k.out_zp = p[EV_PRELU_OUT_ZP];
    k.m1 = p[EV_PRELU_MULT1], k.s1 = p[EV_PRELU_SHIFT1], k.m2 = p[EV_PRELU_MULT2], k.s2 = p[EV_PRELU_SHIFT2];
    k.vin_zp = vdupq_n_s16((int16_t)k.in_zp), k.valpha_zp = vdupq_n_s16((int16_t)k.alpha_zp);
    k.vout_zp = vdupq_n_s32(k.out_zp);
    k.lo = vreinterpretq_u8_s8(vdupq_n_s8(-128)), k.hi = vreinterpretq_u8_s8(vdupq_n_s8(127));
    k.q1 = nq_make(k.m1, k.s1);
    k.q2 = nq_make(k.m2, k.s2);
    const int8_t *input = op->tensors[0], *alpha = op->tensors[1];
    int8_t *output = op->tensors[2];
    const int32_t *dim = p + EV_PRELU_DIM, *astride = p + EV_PRELU_ALPHA_STRIDE;
    const int L = EV_MISC_DIMS - 1;
    long long total = 1;
    for (int j = 0; j < EV_MISC_DIMS; j++) total *= dim[j];
    long long lo, hi;
    ne_block_range(total, p[EV_PRELU_BLOCK], begin, end, &lo, &hi);
    if (lo >= hi) return;
    int idx[EV_MISC_DIMS];
    long long rest = lo, a = 0;
    for (int j = L; j >= 0; j--) {
        idx[j] = (int)(rest % dim[j]);
        rest /= dim[j];
        a += (long long)idx[j] * astride[j];
    }
    const long long as = astride[L];
    const int16x8_t z = vdupq_n_s16(0);
    for (long long e = lo; e < hi;) {
        long long n = dim[L] - idx[L];
        if (n > hi - e) n = hi - e;
        const int8_t *x = input + e, *al = alpha + a;
        int8_t *o = output + e;
        if (as == 1) {
            NE_SPAN(nprelu_chunk, &k, x, al, o, n, 0, z, z);
        } else if (as == 0) {
            const int16x8_t ca = vdupq_n_s16((int16_t)(al[0] - k.alpha_zp));
            /* (the input is the stepping side: mode 2 of NE_SPAN keeps alpha's pointer, chunk mode 1) */
            long long i = 0;
            for (; i + 16 <= n; i += 16) nprelu_chunk(&k, x + i, al, o + i, 1, ca, z);
            if (i < n) {
                int8_t t[16] = {0}, to[16];
                memcpy(t, x + i, (size_t)(n - i));
                nprelu_chunk(&k, t, al, to, 1, ca, z);
                memcpy(o + i, to, (size_t)(n - i));
            }
        } else {
            for (long long i = 0; i < n; i++) o[i] = nprelu_scalar(&k, x[i], al[i * as]);
        }
        e += n;
        a -= (long long)idx[L] * as;
        idx[L] = 0;
        for (int j = L - 1; j >= 0; j--) {
            a += astride[j];
            if (++idx[j] < dim[j]) break;
            a -= (long long)dim[j] * astride[j];
            idx[j] = 0;
        }
    }
}

/* ==== MEAN ===================================================================================================== */

typedef struct {
    int n;
    long long size[EV_EW_DIMS], stride[EV_EW_DIMS];
} ne_dims;

/* sum of n int8 at p (contiguous) */
static int32_t ne_sum_bytes(const int8_t *p, long long n) {
    long long i = 0;
    int32x4_t acc = vdupq_n_s32(0);
    while (i + 16 <= n) {
        /* vpadal adds byte pairs into int16 lanes: at most 2 * 128 per step, 64 steps stay inside int16 */
        int16x8_t s = vdupq_n_s16(0);
        for (int j = 0; j < 64 && i + 16 <= n; j++, i += 16) s = vpadalq_s8(s, vld1q_s8(p + i));
        acc = vpadalq_s16(acc, s);
    }
    const int64x2_t d = vpaddlq_s32(acc);
    int64_t s = vgetq_lane_s64(d, 0) + vgetq_lane_s64(d, 1);
    for (; i < n; i++) s += p[i];
    return (int32_t)s;
}

/* 16 channels at base summed over every reduced offset of r; a 16-byte load at base + offset must be inside the
 * input (the caller checks, or copies: copy = 1 reads only m bytes of each row) */
static void ne_mean_sum16(const int8_t *base, const ne_dims *r, int copy, size_t m, int32x4_t acc[4]) {
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) acc[i] = vdupq_n_s32(0);
    int16x8_t s0 = vdupq_n_s16(0), s1 = vdupq_n_s16(0);
    int pending = 0;
    long long idx[EV_EW_DIMS] = {0}, off = 0;
    const int inner = r->n - 1;
    const long long isz = r->size[inner], ist = r->stride[inner];
    for (;;) {
        const int8_t *q = base + off;
        for (long long j = 0; j < isz; j++, q += ist) {
            int8x16_t x;
            if (copy) {
                int8_t t[16] = {0};
                memcpy(t, q, m);
                x = vld1q_s8(t);
            } else {
                x = vld1q_s8(q);
            }
            s0 = vaddw_s8(s0, vget_low_s8(x));
            s1 = vaddw_s8(s1, vget_high_s8(x));
            if (++pending == 256) { /* |sum| <= 256 * 128 */
                acc[0] = vaddw_s16(acc[0], vget_low_s16(s0)), acc[1] = vaddw_s16(acc[1], vget_high_s16(s0));
                acc[2] = vaddw_s16(acc[2], vget_low_s16(s1)), acc[3] = vaddw_s16(acc[3], vget_high_s16(s1));
                s0 = s1 = vdupq_n_s16(0);
                pending = 0;
            }
        }
        int k = inner - 1;
        for (; k >= 0; k--) {
            off += r->stride[k];
            if (++idx[k] < r->size[k]) break;
            off -= r->size[k] * r->stride[k];
            idx[k] = 0;
        }
        if (k < 0) break;
    }
    acc[0] = vaddw_s16(acc[0], vget_low_s16(s0)), acc[1] = vaddw_s16(acc[1], vget_high_s16(s0));
    acc[2] = vaddw_s16(acc[2], vget_low_s16(s1)), acc[3] = vaddw_s16(acc[3], vget_high_s16(s1));
}

void ev_mean_neon(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    /* the input's dimensions without those of size 1, adjacent reduced ones merged */
    long long stride[EV_EW_DIMS], s = 1;
    for (int k = EV_EW_DIMS - 1; k >= 0; k--) {
        stride[k] = s;
        s *= p[EV_MEAN_DIM + k];
    }
    long long dsz[EV_EW_DIMS], dst[EV_EW_DIMS];
    int dred[EV_EW_DIMS], nd = 0;
    for (int k = 0; k < EV_EW_DIMS; k++) {
        const long long sz = p[EV_MEAN_DIM + k];
        const int red = p[EV_MEAN_REDUCE + k] != 0;
        if (sz == 1) continue;
        if (nd > 0 && red && dred[nd - 1]) {
            dsz[nd - 1] *= sz;
            dst[nd - 1] = stride[k];
            continue;
        }
        dsz[nd] = sz, dst[nd] = stride[k], dred[nd] = red;
        nd++;
    }
    if (nd == 0) {
        ev_mean_ref(op, begin, end, thread);
        return;
    }
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    const long long in_size = (long long)op->sizes[0];
    const int32_t count = p[EV_MEAN_COUNT], in_zp = p[EV_MEAN_IN_ZP], out_zp = p[EV_MEAN_OUT_ZP];
    const int32_t mult = p[EV_MEAN_MULT];
    const int shift = p[EV_MEAN_SHIFT];
    ne_dims r = {0};
    int kept[EV_EW_DIMS], nk = 0;
    for (int k = 0; k < nd; k++) {
        if (dred[k]) {
            r.size[r.n] = dsz[k], r.stride[r.n] = dst[k];
            r.n++;
        } else {
            kept[nk++] = k;
        }
    }
    if (r.n == 0) {
        ne_requant(in, out, begin, end, 0, 0, in_zp, out_zp, mult, shift, -128, 127);
        return;
    }
    const int32_t zsum = (int32_t)((int64_t)in_zp * count);
    long long pos[EV_EW_DIMS] = {0}, base = 0;
    {
        long long rest = begin;
        for (int j = nk - 1; j >= 0; j--) {
            const int k = kept[j];
            pos[j] = rest % dsz[k];
            rest /= dsz[k];
            base += pos[j] * dst[k];
        }
    }
    if (nk > 0 && !dred[nd - 1]) { /* innermost dimension kept: runs of channels, 16 at a time */
        const nq q = nq_make(mult, shift);
        const int32x4_t vz = vdupq_n_s32(zsum), voz = vdupq_n_s32(out_zp);
        const uint8x16_t lo = vreinterpretq_u8_s8(vdupq_n_s8(-128)), hi = vreinterpretq_u8_s8(vdupq_n_s8(127));
        long long last = 0;
        for (int k = 0; k < r.n; k++) last += (r.size[k] - 1) * r.stride[k];
        const long long C = dsz[nd - 1];
        long long item = begin;
        while (item < end) {
            const long long c0 = pos[nk - 1];
            long long len = C - c0;
            if (len > end - item) len = end - item;
            for (long long c = 0; c < len; c += 16) {
                const size_t m = (size_t)(len - c < 16 ? len - c : 16);
                int32x4_t acc[4];
                ne_mean_sum16(in + base + c, &r, base + c + last + 16 > in_size, m, acc);
                #pragma GCC unroll 4
                for (int i = 0; i < 4; i++) acc[i] = vaddq_s32(nq_apply(vsubq_s32(acc[i], vz), &q), voz);
                if (m == 16) {
                    ne_store16(out + item + c, acc, 0, lo, hi);
                } else {
                    int8_t t[16];
                    ne_store16(t, acc, 0, lo, hi);
                    memcpy(out + item + c, t, m);
                }
            }
            item += len;
            base -= c0;
            pos[nk - 1] = 0;
            for (int j = nk - 2; j >= 0; j--) {
                const int k = kept[j];
                base += dst[k];
                if (++pos[j] < dsz[k]) break;
                base -= dsz[k] * dst[k];
                pos[j] = 0;
            }
        }
        return;
    }
    /* innermost dimension reduced: each output sums contiguous runs */
    const int inner = r.n - 1;
    for (int item = begin; item < end; item++) {
        int32_t sum = 0;
        long long idx[EV_EW_DIMS] = {0}, off = base;
        for (;;) {
            sum += ne_sum_bytes(in + off, r.size[inner]);
            int k = inner - 1;
            for (; k >= 0; k--) {
                off += r.stride[k];
                if (++idx[k] < r.size[k]) break;
                off -= r.size[k] * r.stride[k];
                idx[k] = 0;
            }
            if (k < 0) break;
        }
        const int32_t v = ev_mbqm((int32_t)((int64_t)sum - (int64_t)in_zp * count), mult, shift) + out_zp;
        out[item] = (int8_t)ev_clamp(v, -128, 127);
        for (int j = nk - 1; j >= 0; j--) {
            const int k = kept[j];
            base += dst[k];
            if (++pos[j] < dsz[k]) break;
            base -= dsz[k] * dst[k];
            pos[j] = 0;
        }
    }
}

/* ==== AVERAGE_POOL_2D, MAX_POOL_2D ============================================================================== */

typedef struct {
    int in_h, in_w, ch, out_h, out_w, fh, fw, sh, sw, ph, pw;
    int32_t lo, hi;
} ne_pool;

static ne_pool ne_pool_params(const int32_t *p) {
    ne_pool g = {p[EV_POOL_IN_H],     p[EV_POOL_IN_W],     p[EV_POOL_CHANNELS], p[EV_POOL_OUT_H], p[EV_POOL_OUT_W],
                 p[EV_POOL_FILTER_H], p[EV_POOL_FILTER_W], p[EV_POOL_STRIDE_H], p[EV_POOL_STRIDE_W],
                 p[EV_POOL_PAD_H],    p[EV_POOL_PAD_W],    p[EV_POOL_ACT_MIN],  p[EV_POOL_ACT_MAX]};
    return g;
}

/* The window of output (b, oy, ox), clipped to the input: its first cell and its extent. */
typedef struct {
    const int8_t *win;
    int rows, cols;
} ne_window;

static inline ne_window ne_window_at(const ne_pool *g, const int8_t *in, int b, int oy, int ox) {
    const int iy0 = oy * g->sh - g->ph, ix0 = ox * g->sw - g->pw;
    const int fy0 = iy0 < 0 ? -iy0 : 0, fx0 = ix0 < 0 ? -ix0 : 0;
    const int fy1 = g->fh < g->in_h - iy0 ? g->fh : g->in_h - iy0;
    const int fx1 = g->fw < g->in_w - ix0 ? g->fw : g->in_w - ix0;
    ne_window w;
    w.win = in + (((size_t)b * g->in_h + (iy0 + fy0)) * g->in_w + (ix0 + fx0)) * (size_t)g->ch;
    w.rows = fy1 - fy0;
    w.cols = fx1 - fx0;
    return w;
}

void ev_max_pool_2d_neon(const ev_op *op, int begin, int end, int thread) {
    const ne_pool g = ne_pool_params(op->params);
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    const size_t C = (size_t)g.ch, row = (size_t)g.in_w * C;
    const int8x16_t lo = vdupq_n_s8((int8_t)g.lo), hi = vdupq_n_s8((int8_t)g.hi);
    for (int item = begin; item < end; item++) {
        const int b = item / g.out_h, oy = item % g.out_h;
        for (int ox = 0; ox < g.out_w; ox++) {
            const ne_window w = ne_window_at(&g, in, b, oy, ox);
            int8_t *o = out + (((size_t)b * g.out_h + oy) * g.out_w + ox) * C;
            size_t c = 0;
            for (; c + 16 <= C; c += 16) {
                int8x16_t m = vdupq_n_s8(-128);
                for (int y = 0; y < w.rows; y++) {
                    const int8_t *q = w.win + (size_t)y * row + c;
                    for (int x = 0; x < w.cols; x++, q += C) m = vmaxq_s8(m, vld1q_s8(q));
                }
                vst1q_s8(o + c, vminq_s8(vmaxq_s8(m, lo), hi));
            }
            for (; c < C; c++) { /* the spec */
                int32_t m = -128;
                for (int y = 0; y < w.rows; y++) {
                    const int8_t *q = w.win + (size_t)y * row + c;
                    for (int x = 0; x < w.cols; x++, q += C)
                        if (*q > m) m = *q;
                }
                o[c] = (int8_t)ev_clamp(m, g.lo, g.hi);
            }
        }
    }
}

/* acc > 0 ? (acc + count/2) / count : (acc - count/2) / count, truncating: on a = |acc| + count/2 < 2^24, a float
 * quotient then a one-step correction by the remainder (see the header comment) */
NE_INLINE int32x4_t ne_avg4(int32x4_t acc, int32x4_t vcount, int32x4_t half, float rcp) {
    const int32x4_t a = vaddq_s32(vabsq_s32(acc), half);
    int32x4_t t = vcvtq_s32_f32(vmulq_n_f32(vcvtq_f32_s32(a), rcp));
    const int32x4_t rem = vmlsq_s32(a, t, vcount);
    t = vsubq_s32(t, vreinterpretq_s32_u32(vcgeq_s32(rem, vcount))); /* + 1 */
    t = vaddq_s32(t, vreinterpretq_s32_u32(vcltq_s32(rem, vdupq_n_s32(0)))); /* - 1 */
    return vbslq_s32(vcltq_s32(acc, vdupq_n_s32(0)), vnegq_s32(t), t);
}

void ev_average_pool_2d_neon(const ev_op *op, int begin, int end, int thread) {
    const ne_pool g = ne_pool_params(op->params);
    if ((long long)g.fh * g.fw > (1 << 16)) {
        ev_average_pool_2d_ref(op, begin, end, thread);
        return;
    }
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    const size_t C = (size_t)g.ch, row = (size_t)g.in_w * C;
    const uint8x16_t lo = vreinterpretq_u8_s8(vdupq_n_s8((int8_t)g.lo));
    const uint8x16_t hi = vreinterpretq_u8_s8(vdupq_n_s8((int8_t)g.hi));
    for (int item = begin; item < end; item++) {
        const int b = item / g.out_h, oy = item % g.out_h;
        for (int ox = 0; ox < g.out_w; ox++) {
            const ne_window w = ne_window_at(&g, in, b, oy, ox);
            const int count = w.rows * w.cols;
            int8_t *o = out + (((size_t)b * g.out_h + oy) * g.out_w + ox) * C;
            const int32x4_t vcount = vdupq_n_s32(count), half = vdupq_n_s32(count / 2);
            const float rcp = 1.0f / (float)count;
            size_t c = 0;
            for (; c + 16 <= C; c += 16) {
                int32x4_t acc[4];
                if (count <= 256) { /* int16 sums: |sum| <= 256 * 128 */
                    int16x8_t s0 = vdupq_n_s16(0), s1 = vdupq_n_s16(0);
                    for (int y = 0; y < w.rows; y++) {
                        const int8_t *q = w.win + (size_t)y * row + c;
                        for (int x = 0; x < w.cols; x++, q += C) {
                            const int8x16_t v = vld1q_s8(q);
                            s0 = vaddw_s8(s0, vget_low_s8(v));
                            s1 = vaddw_s8(s1, vget_high_s8(v));
                        }
                    }
                    acc[0] = vmovl_s16(vget_low_s16(s0)), acc[1] = vmovl_s16(vget_high_s16(s0));
                    acc[2] = vmovl_s16(vget_low_s16(s1)), acc[3] = vmovl_s16(vget_high_s16(s1));
                } else {
                    #pragma GCC unroll 4
                    for (int i = 0; i < 4; i++) acc[i] = vdupq_n_s32(0);
                    for (int y = 0; y < w.rows; y++) {
                        const int8_t *q = w.win + (size_t)y * row + c;
                        for (int x = 0; x < w.cols; x++, q += C) {
                            const int8x16_t v = vld1q_s8(q);
                            const int16x8_t l = vmovl_s8(vget_low_s8(v)), h = vmovl_s8(vget_high_s8(v));
                            acc[0] = vaddw_s16(acc[0], vget_low_s16(l)), acc[1] = vaddw_s16(acc[1], vget_high_s16(l));
                            acc[2] = vaddw_s16(acc[2], vget_low_s16(h)), acc[3] = vaddw_s16(acc[3], vget_high_s16(h));
                        }
                    }
                }
                #pragma GCC unroll 4
                for (int i = 0; i < 4; i++) acc[i] = ne_avg4(acc[i], vcount, half, rcp);
                ne_store16(o + c, acc, 0, lo, hi);
            }
            for (; c < C; c++) { /* the spec */
                int32_t acc = 0;
                for (int y = 0; y < w.rows; y++) {
                    const int8_t *q = w.win + (size_t)y * row + c;
                    for (int x = 0; x < w.cols; x++, q += C) acc += *q;
                }
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                o[c] = (int8_t)ev_clamp(acc, g.lo, g.hi);
            }
        }
    }
}

/* ==== HARD_SWISH ================================================================================================ */

typedef struct {
    int16x8_t in_zp, out_zp, out_mult, relu_mult, relu_shl; /* relu_shl: relu_exp - 1 (a vqshl count) */
    int relu_exp;
    int16x8_t rmask, rthr, rcnt, omask, othr, ocnt; /* RoundingDivideByPOT<int16>: mask, mask >> 1, -exponent */
} nhs_k;

static void nhs_rdbpot_consts(int e, int16x8_t *mask, int16x8_t *thr, int16x8_t *cnt) {
    const int16_t m = (int16_t)(uint16_t)((1ull << e) - 1); /* -1 for e >= 16, as TFLite's int16 arithmetic */
    *mask = vdupq_n_s16(m);
    *thr = vdupq_n_s16((int16_t)(m >> 1));
    *cnt = vdupq_n_s16((int16_t)-e);
}

/* RoundingDivideByPOT<int16>: (x >> e) + (remainder > (mask >> 1) + (x < 0)) */
NE_INLINE int16x8_t nhs_rdbpot(int16x8_t x, int16x8_t mask, int16x8_t thr, int16x8_t cnt) {
    const int16x8_t t = vsubq_s16(thr, vshrq_n_s16(x, 15));
    const uint16x8_t inc = vcgtq_s16(vandq_s16(x, mask), t);
    return vsubq_s16(vshlq_s16(x, cnt), vreinterpretq_s16_u16(inc));
}

NE_INLINE int16x8_t nhs_vec(const nhs_k *k, int16x8_t x) {
    const int16x8_t hires = vshlq_n_s16(vsubq_s16(x, k->in_zp), 7);
    const int16x8_t pos = vqrdmulhq_s16(hires, k->out_mult); /* preshift_output_scale */
    int16x8_t r = hires;
    if (k->relu_exp > 0) r = vqshlq_s16(r, k->relu_shl);
    r = vqrdmulhq_s16(r, k->relu_mult);
    if (k->relu_exp > 0) r = vqaddq_s16(r, r);
    if (k->relu_exp < 0) r = nhs_rdbpot(r, k->rmask, k->rthr, k->rcnt);
    r = vaddq_s16(vshrq_n_s16(r, 1), vdupq_n_s16(16384)); /* (r + 2^15) >> 1 */
    /* SaturatingDoublingHighMul, truncating: r >= 0, so trunc(r * b / 2^15) = sign(b) * floor(2r|b| / 2^16) */
    const int16x8_t f = vqdmulhq_s16(r, vabsq_s16(pos));
    const int16x8_t sf = vbslq_s16(vcltq_s16(pos, vdupq_n_s16(0)), vnegq_s16(f), f);
    return vaddq_s16(nhs_rdbpot(sf, k->omask, k->othr, k->ocnt), k->out_zp); /* + zero point, wrapping */
}

NE_INLINE void nhs_chunk(const nhs_k *k, const int8_t *in, int8_t *out) {
    const int8x16_t x = vld1q_s8(in);
    const int16x8_t a = nhs_vec(k, vmovl_s8(vget_low_s8(x)));
    const int16x8_t b = nhs_vec(k, vmovl_s8(vget_high_s8(x)));
    vst1q_s8(out, vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
}

void ev_hard_swish_neon(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    nhs_k k;
    k.in_zp = vdupq_n_s16((int16_t)p[EV_HARD_SWISH_IN_ZP]);
    k.out_zp = vdupq_n_s16((int16_t)p[EV_HARD_SWISH_OUT_ZP]);
    k.out_mult = vdupq_n_s16((int16_t)p[EV_HARD_SWISH_OUT_MULT]);
    k.relu_mult = vdupq_n_s16((int16_t)p[EV_HARD_SWISH_RELU_MULT]);
    k.relu_exp = p[EV_HARD_SWISH_RELU_EXP];
    k.relu_shl = vdupq_n_s16((int16_t)(k.relu_exp > 0 ? k.relu_exp - 1 : 0));
    nhs_rdbpot_consts(k.relu_exp < 0 ? -k.relu_exp : 0, &k.rmask, &k.rthr, &k.rcnt);
    nhs_rdbpot_consts(-p[EV_HARD_SWISH_OUT_EXP], &k.omask, &k.othr, &k.ocnt);
    long long a, b;
    ne_block_range(p[EV_HARD_SWISH_N], p[EV_HARD_SWISH_BLOCK], begin, end, &a, &b);
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    long long i = a;
    for (; i + 16 <= b; i += 16) nhs_chunk(&k, in + i, out + i);
    if (i < b) {
        int8_t t[16] = {0}, to[16];
        memcpy(t, in + i, (size_t)(b - i));
        nhs_chunk(&k, t, to);
        memcpy(out + i, to, (size_t)(b - i));
    }
}

/* ==== LOGISTIC, TANH (aarch64): out[i] = table[(uint8_t)in[i]] ================================================== */

#if defined(__aarch64__)
static void ne_lookup(const uint8_t *in, const uint8_t *table, uint8_t *out, long long a, long long b) {
    const uint8x16x4_t t0 = vld1q_u8_x4(table), t1 = vld1q_u8_x4(table + 64);
    const uint8x16x4_t t2 = vld1q_u8_x4(table + 128), t3 = vld1q_u8_x4(table + 192);
    const uint8x16_t k64 = vdupq_n_u8(64);
    long long i = a;
    for (; i + 16 <= b; i += 16) {
        const uint8x16_t x = vld1q_u8(in + i);
        /* tbl gives 0 for an index >= 64, tbx keeps the lane: four 64-entry lookups, the index lowered by 64 */
        const uint8x16_t x1 = vsubq_u8(x, k64), x2 = vsubq_u8(x1, k64), x3 = vsubq_u8(x2, k64);
        uint8x16_t r = vqtbl4q_u8(t0, x);
        r = vqtbx4q_u8(r, t1, x1);
        r = vqtbx4q_u8(r, t2, x2);
        r = vqtbx4q_u8(r, t3, x3);
        vst1q_u8(out + i, r);
    }
    for (; i < b; i++) out[i] = table[in[i]];
}

void ev_logistic_neon(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    long long a, b;
    ne_block_range(p[EV_LOGISTIC_N], p[EV_LOGISTIC_BLOCK], begin, end, &a, &b);
    ne_lookup(op->tensors[0], op->tensors[1], op->tensors[2], a, b);
}

void ev_tanh_neon(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    long long a, b;
    ne_block_range(p[EV_TANH_N], p[EV_TANH_BLOCK], begin, end, &a, &b);
    ne_lookup(op->tensors[0], op->tensors[1], op->tensors[2], a, b);
}
#endif
