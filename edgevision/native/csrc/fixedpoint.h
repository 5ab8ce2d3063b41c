/* TFLite's (gemmlowp's) scalar fixed-point arithmetic, exactly, shared by every reference kernel, check and
 * variant. Double rounding: TFLITE_SINGLE_ROUNDING is off in LiteRT's builds. */
#ifndef EV_FIXEDPOINT_H
#define EV_FIXEDPOINT_H

#include <stdint.h>

/* ---- Fixed-point helpers (TFLite / gemmlowp, double rounding; TFLITE_SINGLE_ROUNDING is off in LiteRT builds) -
 * TFLite computes these in int32 and relies on two's complement wrapping where C++ leaves overflow undefined
 * (x << left_shift, acc + output_offset); here the wrapping is explicit through uint32_t. */

/* gemmlowp SaturatingRoundingDoublingHighMul: a * b / 2^31 rounded to nearest (ties toward +infinity: the
 * nudge is 2^30 for a product >= 0 and 1 - 2^30 below, then a division truncating toward zero), saturating
 * the one overflow case (INT32_MIN * INT32_MIN). */
static inline int32_t ev_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero; 0 <= exponent <= 31.
 * (>> on a negative int32 is an arithmetic shift with every compiler the engine supports, as TFLite assumes.) */
static inline int32_t ev_rdbpot(int32_t x, int exponent) {
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier(int32 x, multiplier, shift), double-rounding version:
 *   left = max(shift, 0), right = max(-shift, 0)
 *   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left, multiplier), right)
 * x * 2^left wraps modulo 2^32 as TFLite's int32 multiply does. The checks guarantee -31 <= shift <= 30. */
static inline int32_t ev_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    const int32_t xs = (int32_t)((uint32_t)x << left);
    return ev_rdbpot(ev_srdhm(xs, multiplier), right);
}

/* std::round (half away from zero) of a double, then converted to int32 saturating. TFLite's reference FC
 * does static_cast<int32_t>(round(v)); out of int32 range that cast is undefined in C++ and saturates on
 * AArch64 (the Raspberry Pi) — we saturate everywhere. Exact: for |v| < 2^31 + 1, v - trunc(v) is exact. */
static inline int32_t ev_round_to_i32(double v) {
    if (v >= 2147483647.5) return INT32_MAX;
    if (v <= -2147483648.5) return INT32_MIN;
    int64_t t = (int64_t)v; /* truncation toward zero */
    double frac = v - (double)t;
    if (frac >= 0.5)
        t++;
    else if (frac <= -0.5)
        t--;
    if (t > INT32_MAX) return INT32_MAX;
    if (t < INT32_MIN) return INT32_MIN;
    return (int32_t)t;
}

static inline int32_t ev_clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

#endif /* EV_FIXEDPOINT_H */
