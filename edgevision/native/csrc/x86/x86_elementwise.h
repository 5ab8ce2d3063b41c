/* x86 SIMD elementwise, pooling and reduction kernels: ADD, MUL, MEAN, AVERAGE_POOL_2D, MAX_POOL_2D, QUANTIZE
 * (8-bit requantisation), RELU, PRELU and HARD_SWISH; shared by elementwise_sse41.c (compiled with
 * -msse4.1, 128-bit vectors) and elementwise_avx2.c (-mavx2, 256-bit vectors): each includes this header once and
 * gets its own copy of every function, compiled for its ISA. Same bytes as the reference kernels (ref/
 * elementwise_ref.c, ref/activation_ref.c, ref/misc_ref.c: the spec) for any params the checks accept and any
 * split of the work items; how:
 *
 * Requantisation with one multiplier and shift per op (xu_make / xu_apply): TFLite's MultiplyByQuantizedMultiplier
 * (double rounding), XVL int32 lanes at a time, as in x86_conv.h. SaturatingRoundingDoublingHighMul(a, m) with the
 * gemmlowp nudge and truncating division equals floor((a * m + 2^30) / 2^31) for every a and every m >= 0 (the
 * checks refuse negative multipliers, so the INT32_MIN * INT32_MIN case cannot occur): pmuldq on the even and the
 * odd lanes, + 2^30 in 64 bits, bits 31..62 of each product. The left shift wraps modulo 2^32 as TFLite's int32
 * shift does (pslld). Then RoundingDivideByPOT(q, r), by one of two forms chosen per op:
 *   fast form, when there is no right shift (r = 0: q itself, whatever the left shift) or every |x| the op can
 *     produce is at most 2^30 - 2 (the operand bounds are known from the params): for r >= 1,
 *     RoundingDivideByPOT(q, r) = floor((q + 2^(r-1) - [q < 0]) / 2^r); the 2^(r-1) joins the 64-bit rounding
 *     constant (2^30 + 2^(30+r)), [q < 0] may be taken as [x < 0] (they differ only where q == 0, which gives 0
 *     either way), and the sum stays inside int32 by the bound. One arithmetic shift. Every kind but MEAN always
 *     qualifies (|x| <= 383 << 20 at most); MEAN needs the exact form beyond 2^30 / 255 elements per mean.
 *   exact form otherwise: gemmlowp's mask / threshold formula, lane by lane.
 * The form (and, for ADD, the absence of a left shift) is a constant in each instantiated loop, not a branch.
 *
 * Elementwise kinds work on chunks of XB = 4 * XVL int8 values (16 with SSE4.1, 32 with AVX2), sign- (or zero-)
 * extended to four int32 vectors; results go back with saturating packs (int32 -> int16 -> int8, monotone, so the
 * activation clamp applied to the packed bytes gives what clamping the int32 would give). A run shorter than a
 * chunk (a tail) is copied into a zeroed chunk-sized buffer, computed there and copied out: nothing is read or
 * written outside the tensors.
 *
 * ADD, MUL: the broadcast is walked as runs along the innermost dimension (as ev_add_ref). A run whose inputs
 * both step by one element (same-shape inputs: the planner merges them into one run) is vectorised on both
 * sides; an input that stays put (stride 0: broadcast along the run) is rescaled once, in scalar, and added as a
 * constant vector; any other stride runs the scalar spec. ADD's three rescales all take the fast form (inputs of
 * at most 383 << 20 in magnitude, sums below 2^30); MUL's product is pmulld of the zero-point-corrected inputs.
 *
 * MEAN: dimensions of size 1 are dropped and adjacent reduced dimensions merged. When the innermost remaining
 * dimension is kept (channels: the H, W reduction of EfficientNet and the Fashion-MNIST net), a run of output
 * channels is summed XB at a time over the reduced offsets in int16 accumulators (flushed to int32 every 256
 * additions: |sum| <= 256 * 128 fits), then requantised as above. When the innermost dimension is reduced, each
 * output sums contiguous runs with psadbw (bytes offset by 128 to unsigned) and is requantised in scalar.
 *
 * AVERAGE_POOL_2D, MAX_POOL_2D: vectorised over the channels of a pixel, 16 at a time (and 32 for max pooling on
 * AVX2), the window's cells loaded in turn: pmaxsb, or int16 sums (int32 beyond 256 cells). The average's
 * rounded division (acc +- count / 2, truncating) is one float division: |acc +- count / 2| < 2^24 (windows of
 * at most 2^16 cells; larger ones run the reference kernel) makes float32's correctly rounded quotient truncate
 * to the exact integer quotient (a non-integral quotient is >= 1 / count away from an integer, more than its
 * rounding error). Channels beyond the last full vector run the scalar spec.
 *
 * HARD_SWISH: TFLite's 16-bit fixed point, 16-bit lanes: gemmlowp's int16 SaturatingRoundingDoublingHighMul is
 * pmulhrsw (floor((a * b + 2^14) / 2^15); neither operand is ever -32768 * -32768 here), the saturating left
 * shifts are a clamp to the representable range followed by psllw plus a fix-up of the saturated lanes (or
 * paddsw for a shift by one), the truncating doubling high multiply of reluish (>= 0) and the pre-shift output
 * is pmulhuw(2 * reluish, |b|) with b's sign put back (psignw), and RoundingDivideByPOT<int16> keeps its int16
 * quirks (mask -1 for exponents >= 16) in the same mask / threshold formula.
 *
 * LOGISTIC and TANH (256-entry table lookups) stay the reference's scalar loop on x86: sixteen pshufb of 16-entry
 * pieces and a pblendvb tree on the index bits measured within 15% of the scalar loads with AVX2 (and slower
 * with SSE4.1), and pblendvb costs two uops on many Intel cores.
 *
 * QUANTIZE (int8/uint8 -> int8/uint8 requantisation) and RELU: x - zero point (|x| <= 255), requantised, + the
 * output zero point, clamped. QUANTIZE from float32 runs the reference kernel.
 *
 * PRELU: runs along the innermost dimension as for ADD, alpha stepping by one (per-channel alpha) or constant;
 * both branches (x * identity multiplier, x * (alpha - zero point) * alpha multiplier, pmulld) are requantised and
 * the input's sign picks one (pblendvb).
 */
#ifndef EV_X86_ELEMENTWISE_H
#define EV_X86_ELEMENTWISE_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "../activation.h"
#include "../elementwise.h"
#include "../misc.h"

#define XE_INLINE static inline __attribute__((always_inline))

#if defined(__AVX2__)
typedef __m256i xv;
#define XVL 8 /* int32 lanes per vector */
#define xv_loadu(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define xv_storeu(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))
#define xv_set1(x) _mm256_set1_epi32(x)
#define xv_set1_8(x) _mm256_set1_epi8((char)(x))
#define xv_set1_16(x) _mm256_set1_epi16((short)(x))
#define xv_set1_64(x) _mm256_set1_epi64x(x)
#define xv_zero() _mm256_setzero_si256()
#define xv_add(a, b) _mm256_add_epi32((a), (b))
#define xv_sub(a, b) _mm256_sub_epi32((a), (b))
#define xv_add64(a, b) _mm256_add_epi64((a), (b))
#define xv_and(a, b) _mm256_and_si256((a), (b))
#define xv_or(a, b) _mm256_or_si256((a), (b))
#define xv_mul_epi32(a, b) _mm256_mul_epi32((a), (b))
#define xv_mullo(a, b) _mm256_mullo_epi32((a), (b))
#define xv_srli64(a, n) _mm256_srli_epi64((a), (n))
#define xv_srai(a, n) _mm256_srai_epi32((a), (n))
#define xv_sra(a, c) _mm256_sra_epi32((a), (c))
#define xv_sll(a, c) _mm256_sll_epi32((a), (c))
#define xv_cmpgt(a, b) _mm256_cmpgt_epi32((a), (b))
#define xv_blend_odd(e, o) _mm256_blend_epi32((e), (o), 0xAA)
#define xv_max8(a, b) _mm256_max_epi8((a), (b))
#define xv_min8(a, b) _mm256_min_epi8((a), (b))
#define xv_maxu8(a, b) _mm256_max_epu8((a), (b))
#define xv_minu8(a, b) _mm256_min_epu8((a), (b))
/* int16 lanes */
#define xv_add16(a, b) _mm256_add_epi16((a), (b))
#define xv_sub16(a, b) _mm256_sub_epi16((a), (b))
#define xv_adds16(a, b) _mm256_adds_epi16((a), (b))
#define xv_and16(a, b) _mm256_and_si256((a), (b))
#define xv_srai16(a, n) _mm256_srai_epi16((a), (n))
#define xv_slli16(a, n) _mm256_slli_epi16((a), (n))
#define xv_sra16(a, c) _mm256_sra_epi16((a), (c))
#define xv_sll16(a, c) _mm256_sll_epi16((a), (c))
#define xv_cmpgt16(a, b) _mm256_cmpgt_epi16((a), (b))
#define xv_min16(a, b) _mm256_min_epi16((a), (b))
#define xv_max16(a, b) _mm256_max_epi16((a), (b))
#define xv_mulhrs16(a, b) _mm256_mulhrs_epi16((a), (b))
#define xv_mulhi_u16(a, b) _mm256_mulhi_epu16((a), (b))
#define xv_abs16(a) _mm256_abs_epi16(a)
#define xv_sign16(a, b) _mm256_sign_epi16((a), (b))
#define xv_blendv(a, b, m) _mm256_blendv_epi8((a), (b), (m))
#else
typedef __m128i xv;
#define XVL 4
#define xv_loadu(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define xv_storeu(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))
#define xv_set1(x) _mm_set1_epi32(x)
#define xv_set1_8(x) _mm_set1_epi8((char)(x))
#define xv_set1_16(x) _mm_set1_epi16((short)(x))
#define xv_set1_64(x) _mm_set1_epi64x(x)
#define xv_zero() _mm_setzero_si128()
#define xv_add(a, b) _mm_add_epi32((a), (b))
#define xv_sub(a, b) _mm_sub_epi32((a), (b))
#define xv_add64(a, b) _mm_add_epi64((a), (b))
#define xv_and(a, b) _mm_and_si128((a), (b))
#define xv_or(a, b) _mm_or_si128((a), (b))
#define xv_mul_epi32(a, b) _mm_mul_epi32((a), (b))
#define xv_mullo(a, b) _mm_mullo_epi32((a), (b))
#define xv_srli64(a, n) _mm_srli_epi64((a), (n))
#define xv_srai(a, n) _mm_srai_epi32((a), (n))
#define xv_sra(a, c) _mm_sra_epi32((a), (c))
#define xv_sll(a, c) _mm_sll_epi32((a), (c))
#define xv_cmpgt(a, b) _mm_cmpgt_epi32((a), (b))
#define xv_blend_odd(e, o) _mm_blend_epi16((e), (o), 0xCC)
#define xv_max8(a, b) _mm_max_epi8((a), (b))
#define xv_min8(a, b) _mm_min_epi8((a), (b))
#define xv_maxu8(a, b) _mm_max_epu8((a), (b))
#define xv_minu8(a, b) _mm_min_epu8((a), (b))
#define xv_add16(a, b) _mm_add_epi16((a), (b))
#define xv_sub16(a, b) _mm_sub_epi16((a), (b))
#define xv_adds16(a, b) _mm_adds_epi16((a), (b))
#define xv_and16(a, b) _mm_and_si128((a), (b))
#define xv_srai16(a, n) _mm_srai_epi16((a), (n))
#define xv_slli16(a, n) _mm_slli_epi16((a), (n))
#define xv_sra16(a, c) _mm_sra_epi16((a), (c))
#define xv_sll16(a, c) _mm_sll_epi16((a), (c))
#define xv_cmpgt16(a, b) _mm_cmpgt_epi16((a), (b))
#define xv_min16(a, b) _mm_min_epi16((a), (b))
#define xv_max16(a, b) _mm_max_epi16((a), (b))
#define xv_mulhrs16(a, b) _mm_mulhrs_epi16((a), (b))
#define xv_mulhi_u16(a, b) _mm_mulhi_epu16((a), (b))
#define xv_abs16(a) _mm_abs_epi16(a)
#define xv_sign16(a, b) _mm_sign_epi16((a), (b))
#define xv_blendv(a, b, m) _mm_blendv_epi8((a), (b), (m))
#endif
#define XB (4 * XVL) /* int8 elements per chunk: one vector of bytes, four of int32 */

static inline int32_t xe_load32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline int64_t xe_load64(const void *p) {
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* ---- chunks: XB 8-bit values <-> four int32 vectors ------------------------------------------------------------ */

/* XB int8 (u8 = 0) or uint8 (u8 = 1) values at p, extended to int32, in order: w[0] holds elements 0..XVL-1 */
XE_INLINE void xe_widen(const void *p, int u8, xv w[4]) {
    const uint8_t *b = p;
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
#if defined(__AVX2__)
        const __m128i x = _mm_cvtsi64_si128(xe_load64(b + 8 * i));
        w[i] = u8 ? _mm256_cvtepu8_epi32(x) : _mm256_cvtepi8_epi32(x);
#else
        const __m128i x = _mm_cvtsi32_si128(xe_load32(b + 4 * i));
        w[i] = u8 ? _mm_cvtepu8_epi32(x) : _mm_cvtepi8_epi32(x);
#endif
    }
}

/* four int32 vectors -> XB bytes, saturated to int8 (u8 = 0) or uint8 (u8 = 1), in order */
XE_INLINE xv xe_narrow(const xv r[4], int u8) {
#if defined(__AVX2__)
    const __m256i a = _mm256_packs_epi32(r[0], r[1]), b = _mm256_packs_epi32(r[2], r[3]);
    const __m256i c = u8 ? _mm256_packus_epi16(a, b) : _mm256_packs_epi16(a, b);
    /* the packs work within 128-bit lanes: dwords 0, 4, 1, 5, 2, 6, 3, 7 hold elements 0-3, 4-7, ... */
    return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
#else
    const __m128i a = _mm_packs_epi32(r[0], r[1]), b = _mm_packs_epi32(r[2], r[3]);
    return u8 ? _mm_packus_epi16(a, b) : _mm_packs_epi16(a, b);
#endif
}

XE_INLINE xv xe_clamp8(xv v, int u8, xv lo, xv hi) {
    return u8 ? xv_minu8(xv_maxu8(v, lo), hi) : xv_min8(xv_max8(v, lo), hi);
}

/* ---- requantisation with one multiplier and shift (see the header comment) --------------------------------------- */

typedef struct {
    xv mult;      /* the multiplier in every lane (pmuldq reads the low dword of each 64-bit lane) */
    xv rnd;       /* 64-bit: 2^30, plus 2^(30 + r) in the fast form when r >= 1 */
    xv neg;       /* fast form: all ones when r >= 1, else 0 */
    xv mask, thr; /* exact form: (1 << r) - 1 and mask >> 1 */
    __m128i lsh, rsh;
    int fast;
} xu;

/* mult >= 0, -31 <= shift <= 30; bound: the largest |x| the op passes. With a left shift there is no right
 * shift, and both forms are the same computation (q itself); otherwise the fast form needs |x| <= 2^30 - 2. */
static inline xu xu_make(int32_t mult, int shift, int64_t bound) {
    xu u;
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    u.fast = right == 0 || (bound >= 0 && bound <= ((int64_t)1 << 30) - 2);
    u.mult = xv_set1(mult);
    u.rnd = xv_set1_64(((int64_t)1 << 30) + (u.fast && right >= 1 ? (int64_t)1 << (30 + right) : 0));
    u.neg = xv_set1(u.fast && right >= 1 ? -1 : 0);
    const int32_t mask = (int32_t)(((int64_t)1 << right) - 1);
    u.mask = xv_set1(mask);
    u.thr = xv_set1(mask >> 1);
    u.lsh = _mm_cvtsi32_si128(left);
    u.rsh = _mm_cvtsi32_si128(right);
    return u;
}

/* MultiplyByQuantizedMultiplier(x, mult, shift), lane by lane. `fast` and `left` are constants at every call:
 * fast must be u->fast; left may be 0 when the shift is known to be <= 0 (ADD's three rescales) */
XE_INLINE xv xu_apply_l(xv x, const xu *u, int fast, int left) {
    if (left) x = xv_sll(x, u->lsh); /* (by 0 without a left shift) wraps like TFLite's int32 shift */
    const xv pe = xv_add64(xv_mul_epi32(x, u->mult), u->rnd);
    const xv po = xv_add64(xv_mul_epi32(xv_srli64(x, 32), u->mult), u->rnd);
    /* bits 31..62 of each 64-bit sum: even lanes shifted down, odd lanes doubled (their high dword) */
    const xv q = xv_blend_odd(xv_srli64(pe, 31), xv_add64(po, po));
    if (fast) return xv_sra(xv_add(q, xv_and(xv_srai(x, 31), u->neg)), u->rsh);
    const xv rem = xv_add(xv_and(q, u->mask), xv_cmpgt(xv_zero(), q)); /* remainder, - 1 if q < 0 */
    return xv_sub(xv_sra(q, u->rsh), xv_cmpgt(rem, u->thr));
}

XE_INLINE xv xu_apply(xv x, const xu *u, int fast) { return xu_apply_l(x, u, fast, 1); }

/* ---- work ranges ------------------------------------------------------------------------------------------------ */

/* elements [*lo, *hi) of work items [begin, end) of `block` elements each, n in all */
static inline void xe_block_range(long long n, long long block, int begin, int end, long long *lo, long long *hi) {
    *lo = (long long)begin * block;
    *hi = (long long)end * block;
    if (*hi > n) *hi = n;
    if (*lo > *hi) *lo = *hi;
}

/* A walk over output elements [e, stop) of an ADD/MUL broadcast as runs along the innermost dimension (the same
 * runs as EV_BIN_RUNS in ref/elementwise_ref.c). */
typedef struct {
    const int32_t *dim, *s1, *s2;
    int idx[EV_EW_DIMS];
    long long e, stop, o1, o2;
} xe_runs;

static inline void xe_runs_init(xe_runs *r, const ev_op *op, int begin, int end) {
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

/* the next run: n elements from output e, input offsets o1, o2; 0 when done */
static inline int xe_runs_next(xe_runs *r, long long *n, long long *e, long long *o1, long long *o2) {
    if (r->e >= r->stop) return 0;
    const int L = EV_EW_DIMS - 1;
    long long len = r->dim[L] - r->idx[L];
    if (len > r->stop - r->e) len = r->stop - r->e;
    *n = len;
    *e = r->e;
    *o1 = r->o1;
    *o2 = r->o2;
    r->e += len;
    /* back to the row's start, then carry into the outer dimensions */
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

/* ==== ADD ====================================================================================================== */

typedef struct {
    /* the spec's parameters, for the scalar paths */
    int32_t off1, off2, off_out, m1, m2, mo, lo, hi;
    int ls, sh1, sh2, sho;
    /* vectors */
    xv voff1, voff2, vooff, vlo, vhi;
    __m128i vls;
    xu q1, q2, qo;
} xadd_k;

static inline void xadd_init(xadd_k *k, const int32_t *p) {
    k->off1 = p[EV_ADD_IN1_OFFSET], k->off2 = p[EV_ADD_IN2_OFFSET], k->off_out = p[EV_ADD_OUT_OFFSET];
    k->ls = p[EV_ADD_LEFT_SHIFT];
    k->m1 = p[EV_ADD_IN1_MULT], k->sh1 = p[EV_ADD_IN1_SHIFT];
    k->m2 = p[EV_ADD_IN2_MULT], k->sh2 = p[EV_ADD_IN2_SHIFT];
    k->mo = p[EV_ADD_OUT_MULT], k->sho = p[EV_ADD_OUT_SHIFT];
    k->lo = p[EV_ADD_ACT_MIN], k->hi = p[EV_ADD_ACT_MAX];
    k->voff1 = xv_set1(k->off1), k->voff2 = xv_set1(k->off2), k->vooff = xv_set1(k->off_out);
    k->vlo = xv_set1_8(k->lo), k->vhi = xv_set1_8(k->hi);
    k->vls = _mm_cvtsi32_si128(k->ls);
    /* bounds: |x + offset| <= 128 + |offset|, shifted left; an input rescale (multiplier < 1, shift <= 0) does not
     * grow it, and the sum of the two is at most their sum, + 2 for the roundings */
    const int64_t b1 = (int64_t)(128 + (k->off1 < 0 ? -k->off1 : k->off1)) << k->ls;
    const int64_t b2 = (int64_t)(128 + (k->off2 < 0 ? -k->off2 : k->off2)) << k->ls;
    k->q1 = xu_make(k->m1, k->sh1, b1);
    k->q2 = xu_make(k->m2, k->sh2, b2);
    k->qo = xu_make(k->mo, k->sho, b1 + b2 + 2);
}

/* the spec, one element at a time: an input's rescale, and the output */
static inline int32_t xadd_side1(const xadd_k *k, int8_t x) {
    return ev_mbqm((x + k->off1) * (1 << k->ls), k->m1, k->sh1);
}
static inline int32_t xadd_side2(const xadd_k *k, int8_t x) {
    return ev_mbqm((x + k->off2) * (1 << k->ls), k->m2, k->sh2);
}
static inline int8_t xadd_out(const xadd_k *k, int32_t sa, int32_t sb) {
    return (int8_t)ev_clamp(ev_mbqm(sa + sb, k->mo, k->sho) + k->off_out, k->lo, k->hi);
}

/* one chunk: XB outputs from XB values of each input; mode 0: both vary, 1: input 1 is the constant rescaled ca,
 * 2: input 2 is the constant cb */
XE_INLINE void xadd_chunk(const xadd_k *k, const int8_t *a, const int8_t *b, int8_t *o, int mode, xv ca, xv cb) {
    xv wa[4], wb[4], r[4];
    if (mode != 1) xe_widen(a, 0, wa);
    if (mode != 2) xe_widen(b, 0, wb);
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const xv sa = mode == 1 ? ca : xu_apply_l(xv_sll(xv_add(wa[i], k->voff1), k->vls), &k->q1, 1, 0);
        const xv sb = mode == 2 ? cb : xu_apply_l(xv_sll(xv_add(wb[i], k->voff2), k->vls), &k->q2, 1, 0);
        r[i] = xv_add(xu_apply_l(xv_add(sa, sb), &k->qo, 1, 0), k->vooff);
    }
    xv_storeu(o, xe_clamp8(xe_narrow(r, 0), 0, k->vlo, k->vhi));
}

XE_INLINE void xadd_span(const xadd_k *k, const int8_t *a, const int8_t *b, int8_t *o, long long n, int mode, xv ca,
                         xv cb) {
    long long i = 0;
    for (; i + XB <= n; i += XB) xadd_chunk(k, a + (mode == 1 ? 0 : i), b + (mode == 2 ? 0 : i), o + i, mode, ca, cb);
    if (i < n) { /* the tail, through chunk-sized buffers */
        int8_t ta[XB] = {0}, tb[XB] = {0}, to[XB];
        const size_t m = (size_t)(n - i);
        if (mode != 1) memcpy(ta, a + i, m);
        if (mode != 2) memcpy(tb, b + i, m);
        xadd_chunk(k, ta, tb, to, mode, ca, cb);
        memcpy(o + i, to, m);
    }
}

static void xe_add(const ev_op *op, int begin, int end, int thread) {
    xadd_k k;
    xadd_init(&k, op->params);
    if (!(k.q1.fast && k.q2.fast && k.qo.fast) || k.sh1 > 0 || k.sh2 > 0 || k.sho > 0) {
        /* (cannot happen with params the check accepts: shifts <= 0, operands below 2^30) */
        ev_add_ref(op, begin, end, thread);
        return;
    }
    const int8_t *in1 = op->tensors[0], *in2 = op->tensors[1];
    int8_t *out = op->tensors[2];
    const long long s1 = op->params[EV_BIN_STRIDE1 + EV_EW_DIMS - 1], s2 = op->params[EV_BIN_STRIDE2 + EV_EW_DIMS - 1];
    xe_runs r;
    xe_runs_init(&r, op, begin, end);
    long long n, e, o1, o2;
    while (xe_runs_next(&r, &n, &e, &o1, &o2)) {
        const int8_t *a = in1 + o1, *b = in2 + o2;
        int8_t *o = out + e;
        if (s1 == 1 && s2 == 1) {
            xadd_span(&k, a, b, o, n, 0, xv_zero(), xv_zero());
        } else if (s1 == 0 && s2 == 1) {
            xadd_span(&k, a, b, o, n, 1, xv_set1(xadd_side1(&k, a[0])), xv_zero());
        } else if (s1 == 1 && s2 == 0) {
            xadd_span(&k, a, b, o, n, 2, xv_zero(), xv_set1(xadd_side2(&k, b[0])));
        } else if (s1 == 0 && s2 == 0) {
            memset(o, xadd_out(&k, xadd_side1(&k, a[0]), xadd_side2(&k, b[0])), (size_t)n);
        } else {
            for (long long i = 0; i < n; i++) o[i] = xadd_out(&k, xadd_side1(&k, a[i * s1]), xadd_side2(&k, b[i * s2]));
        }
    }
}

/* ==== MUL ====================================================================================================== */

typedef struct {
    int32_t off1, off2, off_out, mult, lo, hi;
    int shift;
    xv voff1, voff2, vooff, vlo, vhi;
    xu q;
} xmul_k;

static inline void xmul_init(xmul_k *k, const int32_t *p) {
    k->off1 = p[EV_MUL_IN1_OFFSET], k->off2 = p[EV_MUL_IN2_OFFSET], k->off_out = p[EV_MUL_OUT_OFFSET];
    k->mult = p[EV_MUL_OUT_MULT], k->shift = p[EV_MUL_OUT_SHIFT];
    k->lo = p[EV_MUL_ACT_MIN], k->hi = p[EV_MUL_ACT_MAX];
    k->voff1 = xv_set1(k->off1), k->voff2 = xv_set1(k->off2), k->vooff = xv_set1(k->off_out);
    k->vlo = xv_set1_8(k->lo), k->vhi = xv_set1_8(k->hi);
    const int64_t b1 = 128 + (k->off1 < 0 ? -k->off1 : k->off1), b2 = 128 + (k->off2 < 0 ? -k->off2 : k->off2);
    k->q = xu_make(k->mult, k->shift, b1 * b2);
}

static inline int8_t xmul_scalar(const xmul_k *k, int8_t a, int8_t b) {
    const int32_t prod = (a + k->off1) * (b + k->off2);
    return (int8_t)ev_clamp(ev_mbqm(prod, k->mult, k->shift) + k->off_out, k->lo, k->hi);
}

/* mode 0: both inputs vary; 1: input 1 is the constant (x + offset) ca; 2: input 2 is cb */
XE_INLINE void xmul_chunk(const xmul_k *k, const int8_t *a, const int8_t *b, int8_t *o, int mode, xv ca, xv cb) {
    xv wa[4], wb[4], r[4];
    if (mode != 1) xe_widen(a, 0, wa);
    if (mode != 2) xe_widen(b, 0, wb);
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const xv va = mode == 1 ? ca : xv_add(wa[i], k->voff1);
        const xv vb = mode == 2 ? cb : xv_add(wb[i], k->voff2);
        r[i] = xv_add(xu_apply(xv_mullo(va, vb), &k->q, 1), k->vooff);
    }
    xv_storeu(o, xe_clamp8(xe_narrow(r, 0), 0, k->vlo, k->vhi));
}

XE_INLINE void xmul_span(const xmul_k *k, const int8_t *a, const int8_t *b, int8_t *o, long long n, int mode, xv ca,
                         xv cb) {
    long long i = 0;
    for (; i + XB <= n; i += XB) xmul_chunk(k, a + (mode == 1 ? 0 : i), b + (mode == 2 ? 0 : i), o + i, mode, ca, cb);
    if (i < n) {
        int8_t ta[XB] = {0}, tb[XB] = {0}, to[XB];
        const size_t m = (size_t)(n - i);
        if (mode != 1) memcpy(ta, a + i, m);
        if (mode != 2) memcpy(tb, b + i, m);
        xmul_chunk(k, ta, tb, to, mode, ca, cb);
        memcpy(o + i, to, m);
    }
}

static void xe_mul(const ev_op *op, int begin, int end, int thread) {
    xmul_k k;
    xmul_init(&k, op->params);
    if (!k.q.fast) { /* (cannot happen with params the check accepts) */
        ev_mul_ref(op, begin, end, thread);
        return;
    }
    const int8_t *in1 = op->tensors[0], *in2 = op->tensors[1];
    int8_t *out = op->tensors[2];
    const long long s1 = op->params[EV_BIN_STRIDE1 + EV_EW_DIMS - 1], s2 = op->params[EV_BIN_STRIDE2 + EV_EW_DIMS - 1];
    xe_runs r;
    xe_runs_init(&r, op, begin, end);
    long long n, e, o1, o2;
    while (xe_runs_next(&r, &n, &e, &o1, &o2)) {
        const int8_t *a = in1 + o1, *b = in2 + o2;
        int8_t *o = out + e;
        if (s1 == 1 && s2 == 1) {
            xmul_span(&k, a, b, o, n, 0, xv_zero(), xv_zero());
        } else if (s1 == 0 && s2 == 1) {
            xmul_span(&k, a, b, o, n, 1, xv_set1(a[0] + k.off1), xv_zero());
        } else if (s1 == 1 && s2 == 0) {
            xmul_span(&k, a, b, o, n, 2, xv_zero(), xv_set1(b[0] + k.off2));
        } else if (s1 == 0 && s2 == 0) {
            memset(o, xmul_scalar(&k, a[0], b[0]), (size_t)n);
        } else {
            for (long long i = 0; i < n; i++) o[i] = xmul_scalar(&k, a[i * s1], b[i * s2]);
        }
    }
}

/* ==== QUANTIZE (8-bit requantisation) and RELU ================================================================== */

typedef struct {
    xv in_zp, out_zp, lo, hi; /* lo, hi: the clamp, in every byte */
    xu q;
} xrq_k;

XE_INLINE void xrq_chunk(const xrq_k *k, const void *in, void *out, int in_u8, int out_u8) {
    xv w[4], r[4];
    xe_widen(in, in_u8, w);
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) r[i] = xv_add(xu_apply(xv_sub(w[i], k->in_zp), &k->q, 1), k->out_zp);
    xv_storeu(out, xe_clamp8(xe_narrow(r, out_u8), out_u8, k->lo, k->hi));
}

XE_INLINE void xrq_span(const xrq_k *k, const uint8_t *in, uint8_t *out, long long n, int in_u8, int out_u8) {
    long long i = 0;
    for (; i + XB <= n; i += XB) xrq_chunk(k, in + i, out + i, in_u8, out_u8);
    if (i < n) {
        uint8_t t[XB] = {0}, to[XB];
        memcpy(t, in + i, (size_t)(n - i));
        xrq_chunk(k, t, to, in_u8, out_u8);
        memcpy(out + i, to, (size_t)(n - i));
    }
}

/* out = clamp(MBQM(x - in_zp, mult, shift) + out_zp, lo, hi) over elements [a, b) */
static void xe_requant(const void *in, void *out, long long a, long long b, int in_u8, int out_u8, int32_t in_zp,
                       int32_t out_zp, int32_t mult, int shift, int32_t lo, int32_t hi) {
    xrq_k k;
    k.in_zp = xv_set1(in_zp);
    k.out_zp = xv_set1(out_zp);
    k.lo = xv_set1_8(lo);
    k.hi = xv_set1_8(hi);
    const int32_t zmin = in_u8 ? 0 : -128, zmax = in_u8 ? 255 : 127;
    const int64_t b1 = (int64_t)zmax - in_zp, b2 = (int64_t)in_zp - zmin;
    k.q = xu_make(mult, shift, b1 > b2 ? b1 : b2); /* |x| <= 255: the fast form */
    const uint8_t *i8 = (const uint8_t *)in + a;
    uint8_t *o8 = (uint8_t *)out + a;
    const long long n = b - a;
    if (in_u8) {
        if (out_u8) xrq_span(&k, i8, o8, n, 1, 1);
        else xrq_span(&k, i8, o8, n, 1, 0);
    } else {
        if (out_u8) xrq_span(&k, i8, o8, n, 0, 1);
        else xrq_span(&k, i8, o8, n, 0, 0);
    }
}

static void xe_quantize(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    if (p[EV_QUANT_MODE] != EV_QUANT_REQUANT) {
        ev_quantize_ref(op, begin, end, thread);
        return;
    }
    long long a, b;
    xe_block_range(p[EV_QUANT_COUNT], p[EV_QUANT_BLOCK], begin, end, &a, &b);
    const int out_u8 = p[EV_QUANT_OUT_TYPE] == EV_TYPE_UINT8;
    xe_requant(op->tensors[0], op->tensors[1], a, b, p[EV_QUANT_IN_TYPE] == EV_TYPE_UINT8, out_u8, p[EV_QUANT_IN_ZP],
               p[EV_QUANT_OUT_ZP], p[EV_QUANT_MULT], p[EV_QUANT_SHIFT], out_u8 ? 0 : -128, out_u8 ? 255 : 127);
}

static void xe_relu(const ev_op *op, int begin, int end) {
    const int32_t *p = op->params;
    long long a, b;
    xe_block_range(p[EV_RELU_N], p[EV_RELU_BLOCK], begin, end, &a, &b);
    xe_requant(op->tensors[0], op->tensors[1], a, b, 0, 0, p[EV_RELU_IN_ZP], p[EV_RELU_OUT_ZP], p[EV_RELU_MULT],
               p[EV_RELU_SHIFT], p[EV_RELU_ACT_MIN], p[EV_RELU_ACT_MAX]);
}

/* ==== PRELU ==================================================================================================== */

typedef struct {
    int32_t in_zp, alpha_zp, out_zp, m1, m2;
    int s1, s2;
    xv vin_zp, valpha_zp, vout_zp, lo, hi;
    xu q1, q2;
} xprelu_k;

static inline int8_t xprelu_scalar(const xprelu_k *k, int8_t in, int8_t alpha) {
    const int32_t x = (int32_t)in - k->in_zp;
    const int32_t y = x >= 0 ? ev_mbqm(x, k->m1, k->s1) : ev_mbqm(x * ((int32_t)alpha - k->alpha_zp), k->m2, k->s2);
    return (int8_t)ev_clamp(y + k->out_zp, -128, 127);
}

/* mode 0: alpha varies with the input; 1: alpha is the constant (a - alpha_zp) ca */
XE_INLINE void xprelu_chunk(const xprelu_k *k, const int8_t *in, const int8_t *alpha, int8_t *o, int mode, xv ca) {
    xv w[4], wa[4], r[4];
    xe_widen(in, 0, w);
    if (mode == 0) xe_widen(alpha, 0, wa);
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const xv x = xv_sub(w[i], k->vin_zp);
        const xv a = mode == 0 ? xv_sub(wa[i], k->valpha_zp) : ca;
        const xv y1 = xu_apply(x, &k->q1, 1);
        const xv y2 = xu_apply(xv_mullo(x, a), &k->q2, 1);
        r[i] = xv_add(xv_blendv(y1, y2, xv_srai(x, 31)), k->vout_zp);
    }
    xv_storeu(o, xe_narrow(r, 0));
}

static void xe_prelu(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    xprelu_k k;
    k.in_zp = p[EV_PRELU_IN_ZP], k.alpha_zp = p[EV_PRELU_ALPHA_ZP], k.out_zp = p[EV_PRELU_OUT_ZP];
    k.m1 = p[EV_PRELU_MULT1], k.s1 = p[EV_PRELU_SHIFT1], k.m2 = p[EV_PRELU_MULT2], k.s2 = p[EV_PRELU_SHIFT2];
    k.vin_zp = xv_set1(k.in_zp), k.valpha_zp = xv_set1(k.alpha_zp), k.vout_zp = xv_set1(k.out_zp);
    k.q1 = xu_make(k.m1, k.s1, 255);
    k.q2 = xu_make(k.m2, k.s2, 255 * 255);
    if (!(k.q1.fast && k.q2.fast)) { /* (cannot happen: |x| <= 255 * 255) */
        ev_prelu_ref(op, begin, end, thread);
        return;
    }
    const int8_t *input = op->tensors[0], *alpha = op->tensors[1];
    int8_t *output = op->tensors[2];
    const int32_t *dim = p + EV_PRELU_DIM, *astride = p + EV_PRELU_ALPHA_STRIDE;
    const int L = EV_MISC_DIMS - 1;
    long long total = 1;
    for (int j = 0; j < EV_MISC_DIMS; j++) total *= dim[j];
    long long lo, hi;
    xe_block_range(total, p[EV_PRELU_BLOCK], begin, end, &lo, &hi);
    if (lo >= hi) return;
    int idx[EV_MISC_DIMS];
    long long rest = lo, a = 0;
    for (int j = L; j >= 0; j--) {
        idx[j] = (int)(rest % dim[j]);
        rest /= dim[j];
        a += (long long)idx[j] * astride[j];
    }
    const long long as = astride[L];
    for (long long e = lo; e < hi;) {
        long long n = dim[L] - idx[L];
        if (n > hi - e) n = hi - e;
        const int8_t *x = input + e, *al = alpha + a;
        int8_t *o = output + e;
        if (as == 0 || as == 1) {
            const int mode = as == 0;
            const xv ca = xv_set1((int32_t)al[0] - k.alpha_zp);
            long long i = 0;
            for (; i + XB <= n; i += XB) xprelu_chunk(&k, x + i, al + (mode ? 0 : i), o + i, mode, ca);
            if (i < n) {
                int8_t tx[XB] = {0}, ta[XB] = {0}, to[XB];
                memcpy(tx, x + i, (size_t)(n - i));
                if (!mode) memcpy(ta, al + i, (size_t)(n - i));
                xprelu_chunk(&k, tx, ta, to, mode, ca);
                memcpy(o + i, to, (size_t)(n - i));
            }
        } else {
            for (long long i = 0; i < n; i++) o[i] = xprelu_scalar(&k, x[i], al[i * as]);
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

/* The input's dimensions with size 1 dropped and adjacent reduced ones merged: size, element stride, reduced. */
typedef struct {
    int n;
    long long size[EV_EW_DIMS], stride[EV_EW_DIMS];
    int red[EV_EW_DIMS];
} xe_mean_dims;

static inline void xe_mean_dims_make(const int32_t *p, xe_mean_dims *d) {
    long long stride[EV_EW_DIMS], s = 1;
    for (int k = EV_EW_DIMS - 1; k >= 0; k--) {
        stride[k] = s;
        s *= p[EV_MEAN_DIM + k];
    }
    d->n = 0;
    for (int k = 0; k < EV_EW_DIMS; k++) {
        const long long sz = p[EV_MEAN_DIM + k];
        const int r = p[EV_MEAN_REDUCE + k] != 0;
        if (sz == 1) continue;
        if (d->n > 0 && r && d->red[d->n - 1]) { /* merge with the reduced dimension before (contiguous) */
            d->size[d->n - 1] *= sz;
            d->stride[d->n - 1] = stride[k];
            continue;
        }
        d->size[d->n] = sz;
        d->stride[d->n] = stride[k];
        d->red[d->n] = r;
        d->n++;
    }
}

/* the reduced dimensions of d, innermost last: count, sizes, strides */
typedef struct {
    int n;
    long long size[EV_EW_DIMS], stride[EV_EW_DIMS];
} xe_red;

/* Sums XB consecutive channels over every reduced offset: base points at the first channel of the chunk; a load
 * of XB bytes at base + offset must be inside the input (the caller guarantees it or copies). */
XE_INLINE void xe_mean_sum_chunk(const int8_t *base, const xe_red *r, xv acc[4]) {
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) acc[i] = xv_zero();
    /* int16 partial sums, flushed to int32 every 256 additions */
#if defined(__AVX2__)
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
#else
    __m128i s0 = _mm_setzero_si128(), s1 = _mm_setzero_si128();
#endif
    int pending = 0;
    long long idx[EV_EW_DIMS] = {0};
    long long off = 0;
    const int inner = r->n - 1;
    const long long isz = r->size[inner], ist = r->stride[inner];
    for (;;) {
        const int8_t *q = base + off;
        for (long long j = 0; j < isz; j++, q += ist) {
#if defined(__AVX2__)
            const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)q);
            s0 = _mm256_add_epi16(s0, _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x)));
            s1 = _mm256_add_epi16(s1, _mm256_cvtepi8_epi16(_mm256_extracti128_si256(x, 1)));
#else
            const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
            s0 = _mm_add_epi16(s0, _mm_cvtepi8_epi16(x));
            s1 = _mm_add_epi16(s1, _mm_cvtepi8_epi16(_mm_srli_si128(x, 8)));
#endif
            if (++pending == 256) {
#if defined(__AVX2__)
                acc[0] = xv_add(acc[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s0)));
                acc[1] = xv_add(acc[1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s0, 1)));
                acc[2] = xv_add(acc[2], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s1)));
                acc[3] = xv_add(acc[3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s1, 1)));
                s0 = s1 = _mm256_setzero_si256();
#else
                acc[0] = xv_add(acc[0], _mm_cvtepi16_epi32(s0));
                acc[1] = xv_add(acc[1], _mm_cvtepi16_epi32(_mm_srli_si128(s0, 8)));
                acc[2] = xv_add(acc[2], _mm_cvtepi16_epi32(s1));
                acc[3] = xv_add(acc[3], _mm_cvtepi16_epi32(_mm_srli_si128(s1, 8)));
                s0 = s1 = _mm_setzero_si128();
#endif
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
#if defined(__AVX2__)
    acc[0] = xv_add(acc[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s0)));
    acc[1] = xv_add(acc[1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s0, 1)));
    acc[2] = xv_add(acc[2], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s1)));
    acc[3] = xv_add(acc[3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s1, 1)));
#else
    acc[0] = xv_add(acc[0], _mm_cvtepi16_epi32(s0));
    acc[1] = xv_add(acc[1], _mm_cvtepi16_epi32(_mm_srli_si128(s0, 8)));
    acc[2] = xv_add(acc[2], _mm_cvtepi16_epi32(s1));
    acc[3] = xv_add(acc[3], _mm_cvtepi16_epi32(_mm_srli_si128(s1, 8)));
#endif
}

/* the largest reduced offset of r (from a channel chunk's base) */
static inline long long xe_red_last(const xe_red *r) {
    long long m = 0;
    for (int k = 0; k < r->n; k++) m += (r->size[k] - 1) * r->stride[k];
    return m;
}

/* sum of n int8 at p (contiguous) */
static inline int32_t xe_sum_bytes(const int8_t *p, long long n) {
    long long i = 0;
    int64_t s = 0;
    const __m128i flip = _mm_set1_epi8((char)0x80);
    __m128i acc = _mm_setzero_si128();
    /* psadbw of the bytes + 128 (as unsigned) sums 8 at a time into 64-bit lanes; at most 2^24 bytes per mean, so
     * the lanes cannot overflow */
    for (; i + 16 <= n; i += 16) {
        const __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), flip);
        acc = _mm_add_epi64(acc, _mm_sad_epu8(x, _mm_setzero_si128()));
    }
    s = _mm_cvtsi128_si64(acc) + _mm_extract_epi64(acc, 1) - 128 * i;
    for (; i < n; i++) s += p[i];
    return (int32_t)s;
}

static void xe_mean(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    xe_mean_dims d;
    xe_mean_dims_make(p, &d);
    if (d.n == 0) { /* a single element */
        ev_mean_ref(op, begin, end, thread);
        return;
    }
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    const long long in_size = (long long)op->sizes[0];
    const int32_t count = p[EV_MEAN_COUNT], in_zp = p[EV_MEAN_IN_ZP], out_zp = p[EV_MEAN_OUT_ZP];
    const int32_t mult = p[EV_MEAN_MULT];
    const int shift = p[EV_MEAN_SHIFT];
    xe_red r = {0};
    int kept[EV_EW_DIMS], nk = 0;
    for (int k = 0; k < d.n; k++) {
        if (d.red[k]) {
            r.size[r.n] = d.size[k];
            r.stride[r.n] = d.stride[k];
            r.n++;
        } else {
            kept[nk++] = k;
        }
    }
    const int32_t zsum = (int32_t)((int64_t)in_zp * count); /* |in_zp * count| <= 2^30 */
    if (r.n == 0) { /* nothing reduced: count 1, a requantisation */
        xe_requant(in, out, begin, end, 0, 0, in_zp, out_zp, mult, shift, -128, 127);
        return;
    }
    /* position of output `item` in the kept dimensions (innermost fastest), as an input offset */
    long long pos[EV_EW_DIMS] = {0};
    long long base = 0;
    {
        long long rest = begin;
        for (int j = nk - 1; j >= 0; j--) {
            const int k = kept[j];
            pos[j] = rest % d.size[k];
            rest /= d.size[k];
            base += pos[j] * d.stride[k];
        }
    }
    if (nk > 0 && !d.red[d.n - 1]) {
        /* innermost dimension kept (stride 1): runs of channels summed XB at a time */
        const xu u = xu_make(mult, shift, 255LL * count);
        const xv vz = xv_set1(zsum), voz = xv_set1(out_zp), lo = xv_set1_8(-128), hi = xv_set1_8(127);
        const long long last = xe_red_last(&r);
        const long long C = d.size[d.n - 1];
        long long item = begin;
        while (item < end) {
            const long long c0 = pos[nk - 1];
            long long len = C - c0;
            if (len > end - item) len = end - item;
            const int8_t *src = in + base;
            int8_t *dst = out + item;
            for (long long c = 0; c < len; c += XB) {
                const long long m = len - c < XB ? len - c : XB;
                xv acc[4];
                if (base + c + last + XB <= in_size) {
                    xe_mean_sum_chunk(src + c, &r, acc);
                } else {
                    /* near the end of the input: a chunk-sized copy of each reduced row's m channels */
                    xv tot[4] = {xv_zero(), xv_zero(), xv_zero(), xv_zero()};
                    long long idx[EV_EW_DIMS] = {0}, off = 0;
                    for (;;) {
                        int8_t t[XB] = {0};
                        memcpy(t, src + c + off, (size_t)m);
                        xv w[4];
                        xe_widen(t, 0, w);
                        #pragma GCC unroll 4
                        for (int i = 0; i < 4; i++) tot[i] = xv_add(tot[i], w[i]);
                        int k = r.n - 1;
                        for (; k >= 0; k--) {
                            off += r.stride[k];
                            if (++idx[k] < r.size[k]) break;
                            off -= r.size[k] * r.stride[k];
                            idx[k] = 0;
                        }
                        if (k < 0) break;
                    }
                    #pragma GCC unroll 4
                    for (int i = 0; i < 4; i++) acc[i] = tot[i];
                }
                xv res[4];
                #pragma GCC unroll 4
                for (int i = 0; i < 4; i++)
                    res[i] = xv_add(u.fast ? xu_apply(xv_sub(acc[i], vz), &u, 1) : xu_apply(xv_sub(acc[i], vz), &u, 0),
                                    voz); /* (the branch is the same for the whole op) */
                const xv bytes = xe_clamp8(xe_narrow(res, 0), 0, lo, hi);
                if (m == XB) {
                    xv_storeu(dst + c, bytes);
                } else {
                    int8_t t[XB];
                    xv_storeu(t, bytes);
                    memcpy(dst + c, t, (size_t)m);
                }
            }
            item += len;
            /* next run (if any) starts at channel 0 of the next position of the outer kept dimensions */
            base -= c0;
            pos[nk - 1] = 0;
            for (int j = nk - 2; j >= 0; j--) {
                const int k = kept[j];
                base += d.stride[k];
                if (++pos[j] < d.size[k]) break;
                base -= d.size[k] * d.stride[k];
                pos[j] = 0;
            }
        }
        return;
    }
    /* innermost dimension reduced (stride 1): each output sums runs of r.size[inner] contiguous bytes */
    const int inner = r.n - 1;
    const long long run = r.size[inner];
    for (int item = begin; item < end; item++) {
        int32_t sum = 0;
        long long idx[EV_EW_DIMS] = {0}, off = base;
        for (;;) {
            sum += xe_sum_bytes(in + off, run);
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
            base += d.stride[k];
            if (++pos[j] < d.size[k]) break;
            base -= d.size[k] * d.stride[k];
            pos[j] = 0;
        }
    }
}

/* ==== AVERAGE_POOL_2D, MAX_POOL_2D ============================================================================== */

typedef struct {
    int in_h, in_w, ch, out_h, out_w, fh, fw, sh, sw, ph, pw;
    int32_t lo, hi;
} xe_pool;

static inline xe_pool xe_pool_params(const int32_t *p) {
    xe_pool g = {p[EV_POOL_IN_H],     p[EV_POOL_IN_W],     p[EV_POOL_CHANNELS], p[EV_POOL_OUT_H], p[EV_POOL_OUT_W],
                 p[EV_POOL_FILTER_H], p[EV_POOL_FILTER_W], p[EV_POOL_STRIDE_H], p[EV_POOL_STRIDE_W],
                 p[EV_POOL_PAD_H],    p[EV_POOL_PAD_W],    p[EV_POOL_ACT_MIN],  p[EV_POOL_ACT_MAX]};
    return g;
}

static void xe_max_pool(const ev_op *op, int begin, int end) {
    const xe_pool g = xe_pool_params(op->params);
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    const size_t C = (size_t)g.ch;
    const __m128i lo16 = _mm_set1_epi8((char)g.lo), hi16 = _mm_set1_epi8((char)g.hi);
#if defined(__AVX2__)
    const __m256i lo32 = _mm256_set1_epi8((char)g.lo), hi32 = _mm256_set1_epi8((char)g.hi);
#endif
    for (int item = begin; item < end; item++) {
        const int b = item / g.out_h, oy = item % g.out_h;
        const int iy0 = oy * g.sh - g.ph;
        const int fy0 = iy0 < 0 ? -iy0 : 0;
        const int fy1 = g.fh < g.in_h - iy0 ? g.fh : g.in_h - iy0;
        for (int ox = 0; ox < g.out_w; ox++) {
            const int ix0 = ox * g.sw - g.pw;
            const int fx0 = ix0 < 0 ? -ix0 : 0;
            const int fx1 = g.fw < g.in_w - ix0 ? g.fw : g.in_w - ix0;
            int8_t *o = out + (((size_t)b * g.out_h + oy) * g.out_w + ox) * C;
            const int8_t *win = in + (((size_t)b * g.in_h + (iy0 + fy0)) * g.in_w + (ix0 + fx0)) * C;
            const size_t row = (size_t)g.in_w * C;
            size_t c = 0;
#if defined(__AVX2__)
            for (; c + 32 <= C; c += 32) {
                __m256i m = _mm256_set1_epi8(-128);
                for (int fy = fy0; fy < fy1; fy++) {
                    const int8_t *q = win + (size_t)(fy - fy0) * row + c;
                    for (int fx = fx0; fx < fx1; fx++, q += C)
                        m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i *)(const void *)q));
                }
                m = _mm256_min_epi8(_mm256_max_epi8(m, lo32), hi32);
                _mm256_storeu_si256((__m256i *)(void *)(o + c), m);
            }
#endif
            for (; c + 16 <= C; c += 16) {
                __m128i m = _mm_set1_epi8(-128);
                for (int fy = fy0; fy < fy1; fy++) {
                    const int8_t *q = win + (size_t)(fy - fy0) * row + c;
                    for (int fx = fx0; fx < fx1; fx++, q += C)
                        m = _mm_max_epi8(m, _mm_loadu_si128((const __m128i *)(const void *)q));
                }
                m = _mm_min_epi8(_mm_max_epi8(m, lo16), hi16);
                _mm_storeu_si128((__m128i *)(void *)(o + c), m);
            }
            for (; c < C; c++) { /* the spec */
                int32_t m = -128;
                for (int fy = fy0; fy < fy1; fy++) {
                    const int8_t *q = win + (size_t)(fy - fy0) * row + c;
                    for (int fx = fx0; fx < fx1; fx++, q += C)
                        if (*q > m) m = *q;
                }
                o[c] = (int8_t)ev_clamp(m, g.lo, g.hi);
            }
        }
    }
}

/* 16 int32 sums -> 16 rounded averages, clamped, stored */
XE_INLINE void xe_avg_store16(int8_t *o, __m128i a0, __m128i a1, __m128i a2, __m128i a3, int count, __m128i lo,
                              __m128i hi) {
    const __m128i half = _mm_set1_epi32(count / 2);
    const __m128 d = _mm_set1_ps((float)count);
    /* acc > 0 ? acc + count/2 : acc - count/2 (acc == 0 gives 0 either way), then a truncating division */
#define XE_AVG_(a) _mm_cvttps_epi32(_mm_div_ps(_mm_cvtepi32_ps(_mm_add_epi32((a), _mm_sign_epi32(half, (a)))), d))
    const __m128i q0 = XE_AVG_(a0), q1 = XE_AVG_(a1), q2 = XE_AVG_(a2), q3 = XE_AVG_(a3);
#undef XE_AVG_
    __m128i r = _mm_packs_epi16(_mm_packs_epi32(q0, q1), _mm_packs_epi32(q2, q3));
    r = _mm_min_epi8(_mm_max_epi8(r, lo), hi);
    _mm_storeu_si128((__m128i *)(void *)o, r);
}

static void xe_average_pool(const ev_op *op, int begin, int end, int thread) {
    const xe_pool g = xe_pool_params(op->params);
    if ((long long)g.fh * g.fw > (1 << 16)) { /* the float division is exact up to 2^16 cells */
        ev_average_pool_2d_ref(op, begin, end, thread);
        return;
    }
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    const size_t C = (size_t)g.ch;
    const __m128i lo = _mm_set1_epi8((char)g.lo), hi = _mm_set1_epi8((char)g.hi);
    for (int item = begin; item < end; item++) {
        const int b = item / g.out_h, oy = item % g.out_h;
        const int iy0 = oy * g.sh - g.ph;
        const int fy0 = iy0 < 0 ? -iy0 : 0;
        const int fy1 = g.fh < g.in_h - iy0 ? g.fh : g.in_h - iy0;
        for (int ox = 0; ox < g.out_w; ox++) {
            const int ix0 = ox * g.sw - g.pw;
            const int fx0 = ix0 < 0 ? -ix0 : 0;
            const int fx1 = g.fw < g.in_w - ix0 ? g.fw : g.in_w - ix0;
            const int count = (fy1 - fy0) * (fx1 - fx0); /* >= 1: the check guarantees it */
            int8_t *o = out + (((size_t)b * g.out_h + oy) * g.out_w + ox) * C;
            const int8_t *win = in + (((size_t)b * g.in_h + (iy0 + fy0)) * g.in_w + (ix0 + fx0)) * C;
            const size_t row = (size_t)g.in_w * C;
            size_t c = 0;
            for (; c + 16 <= C; c += 16) {
                __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
                if (count <= 256) { /* int16 sums: |sum| <= 256 * 128 */
#if defined(__AVX2__)
                    __m256i s = _mm256_setzero_si256();
                    for (int fy = fy0; fy < fy1; fy++) {
                        const int8_t *q = win + (size_t)(fy - fy0) * row + c;
                        for (int fx = fx0; fx < fx1; fx++, q += C)
                            s = _mm256_add_epi16(
                                s, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)q)));
                    }
                    const __m128i s0 = _mm256_castsi256_si128(s), s1 = _mm256_extracti128_si256(s, 1);
#else
                    __m128i s0 = _mm_setzero_si128(), s1 = s0;
                    for (int fy = fy0; fy < fy1; fy++) {
                        const int8_t *q = win + (size_t)(fy - fy0) * row + c;
                        for (int fx = fx0; fx < fx1; fx++, q += C) {
                            const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
                            s0 = _mm_add_epi16(s0, _mm_cvtepi8_epi16(x));
                            s1 = _mm_add_epi16(s1, _mm_cvtepi8_epi16(_mm_srli_si128(x, 8)));
                        }
                    }
#endif
                    a0 = _mm_cvtepi16_epi32(s0), a1 = _mm_cvtepi16_epi32(_mm_srli_si128(s0, 8));
                    a2 = _mm_cvtepi16_epi32(s1), a3 = _mm_cvtepi16_epi32(_mm_srli_si128(s1, 8));
                } else { /* int32 sums */
                    for (int fy = fy0; fy < fy1; fy++) {
                        const int8_t *q = win + (size_t)(fy - fy0) * row + c;
                        for (int fx = fx0; fx < fx1; fx++, q += C) {
                            a0 = _mm_add_epi32(a0, _mm_cvtepi8_epi32(_mm_cvtsi32_si128(xe_load32(q))));
                            a1 = _mm_add_epi32(a1, _mm_cvtepi8_epi32(_mm_cvtsi32_si128(xe_load32(q + 4))));
                            a2 = _mm_add_epi32(a2, _mm_cvtepi8_epi32(_mm_cvtsi32_si128(xe_load32(q + 8))));
                            a3 = _mm_add_epi32(a3, _mm_cvtepi8_epi32(_mm_cvtsi32_si128(xe_load32(q + 12))));
                        }
                    }
                }
                xe_avg_store16(o + c, a0, a1, a2, a3, count, lo, hi);
            }
            for (; c < C; c++) { /* the spec */
                int32_t acc = 0;
                for (int fy = fy0; fy < fy1; fy++) {
                    const int8_t *q = win + (size_t)(fy - fy0) * row + c;
                    for (int fx = fx0; fx < fx1; fx++, q += C) acc += *q;
                }
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                o[c] = (int8_t)ev_clamp(acc, g.lo, g.hi);
            }
        }
    }
}

/* ==== HARD_SWISH ================================================================================================ */

typedef struct {
    xv in_zp, out_zp, out_mult, relu_mult;
    int relu_exp;
    /* saturating left shift of hires by relu_exp - 1 (when relu_exp > 0): clamp to [sat_lo, sat_hi], psllw */
    xv sat_lo, sat_hi;
    __m128i sat_cnt;
    /* RoundingDivideByPOT<int16> by -relu_exp (when < 0) and by -out_exp: mask, mask >> 1, count */
    xv rmask, rthr, omask, othr;
    __m128i rcnt, ocnt;
} xhs_k;

static inline void xhs_rdbpot_consts(int e, xv *mask, xv *thr, __m128i *cnt) {
    const int16_t m = (int16_t)(uint16_t)((1ull << e) - 1); /* -1 for e >= 16, as TFLite's int16 arithmetic */
    *mask = xv_set1_16(m);
    *thr = xv_set1_16((int16_t)(m >> 1));
    *cnt = _mm_cvtsi32_si128(e);
}

static inline void xhs_init(xhs_k *k, const int32_t *p) {
    k->in_zp = xv_set1_16(p[EV_HARD_SWISH_IN_ZP]);
    k->out_zp = xv_set1_16(p[EV_HARD_SWISH_OUT_ZP]);
    k->out_mult = xv_set1_16(p[EV_HARD_SWISH_OUT_MULT]);
    k->relu_mult = xv_set1_16(p[EV_HARD_SWISH_RELU_MULT]);
    k->relu_exp = p[EV_HARD_SWISH_RELU_EXP];
    int s = k->relu_exp - 1;
    if (s < 0) s = 0;
    if (s > 16) s = 16; /* x * 2^s saturates alike for every s >= 16 */
    k->sat_lo = xv_set1_16((int16_t)-(32768 >> s));
    k->sat_hi = xv_set1_16((int16_t)(32767 >> s));
    k->sat_cnt = _mm_cvtsi32_si128(s);
    xhs_rdbpot_consts(k->relu_exp < 0 ? -k->relu_exp : 0, &k->rmask, &k->rthr, &k->rcnt);
    xhs_rdbpot_consts(-p[EV_HARD_SWISH_OUT_EXP], &k->omask, &k->othr, &k->ocnt);
}

/* RoundingDivideByPOT<int16>: (x >> e) + (remainder > threshold), threshold = (mask >> 1) + (x < 0) */
XE_INLINE xv xhs_rdbpot(xv x, xv mask, xv thr, __m128i cnt) {
    const xv t = xv_sub16(thr, xv_srai16(x, 15));
    return xv_sub16(xv_sra16(x, cnt), xv_cmpgt16(xv_and16(x, mask), t));
}

/* one vector of int16 inputs (int8 values) -> int16 outputs (before the clamp to int8) */
XE_INLINE xv xhs_vec(const xhs_k *k, xv x) {
    const xv hires = xv_slli16(xv_sub16(x, k->in_zp), 7);
    const xv pos = xv_mulhrs16(hires, k->out_mult); /* preshift_output_scale */
    xv r = hires;
    if (k->relu_exp > 0) { /* SaturatingLeftShift(r, relu_exp - 1) */
        const xv y = xv_sll16(xv_min16(xv_max16(r, k->sat_lo), k->sat_hi), k->sat_cnt);
        r = xv_blendv(y, xv_set1_16(32767), xv_cmpgt16(hires, k->sat_hi));
        r = xv_blendv(r, xv_set1_16(-32768), xv_cmpgt16(k->sat_lo, hires));
    }
    r = xv_mulhrs16(r, k->relu_mult);
    if (k->relu_exp > 0) r = xv_adds16(r, r);
    if (k->relu_exp < 0) r = xhs_rdbpot(r, k->rmask, k->rthr, k->rcnt);
    r = xv_add16(xv_srai16(r, 1), xv_set1_16(16384)); /* (r + 2^15) >> 1 */
    /* SaturatingDoublingHighMul, truncating: r >= 0, so trunc(r * b / 2^15) = sign(b) * floor(2r * |b| / 2^16) */
    const xv f = xv_sign16(xv_mulhi_u16(xv_slli16(r, 1), xv_abs16(pos)), pos);
    return xv_add16(xhs_rdbpot(f, k->omask, k->othr, k->ocnt), k->out_zp); /* + zero point, wrapping */
}

XE_INLINE void xhs_chunk(const xhs_k *k, const int8_t *in, int8_t *out) {
#if defined(__AVX2__)
    const __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)in));
    const __m256i x1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(in + 16)));
    const __m256i r = _mm256_packs_epi16(xhs_vec(k, x0), xhs_vec(k, x1));
    _mm256_storeu_si256((__m256i *)(void *)out, _mm256_permute4x64_epi64(r, 0xD8));
#else
    const __m128i x0 = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)in));
    const __m128i x1 = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(in + 8)));
    _mm_storeu_si128((__m128i *)(void *)out, _mm_packs_epi16(xhs_vec(k, x0), xhs_vec(k, x1)));
#endif
}

static void xe_hard_swish(const ev_op *op, int begin, int end) {
    const int32_t *p = op->params;
    xhs_k k;
    xhs_init(&k, p);
    long long a, b;
    xe_block_range(p[EV_HARD_SWISH_N], p[EV_HARD_SWISH_BLOCK], begin, end, &a, &b);
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    long long i = a;
    for (; i + XB <= b; i += XB) xhs_chunk(&k, in + i, out + i);
    if (i < b) {
        int8_t t[XB] = {0}, to[XB];
        memcpy(t, in + i, (size_t)(b - i));
        xhs_chunk(&k, t, to);
        memcpy(out + i, to, (size_t)(b - i));
    }
}

#endif /* EV_X86_ELEMENTWISE_H */
