/* Activation and resize kernels: SOFTMAX, LOGISTIC, HARD_SWISH, RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR (int8).
 *
 * This header is the contract between the preparers (edgevision/native/ops/activation.py), the checks
 * (activation_check.c) and every variant of these kernels (ref/activation_ref.c is the spec, bit-exact with
 * the kernels TFLite's BUILTIN_REF resolver runs; LiteRT 2.x, TFLITE_SINGLE_ROUNDING off). For each kind it
 * gives the int32 params layout (an enum of indices ending with the count), the tensor order (inputs, then
 * constants the preparer made, then the output) and what one work item is. Everything TFLite computes in
 * Prepare (multipliers, shifts, tables, with its float/double arithmetic) is computed by the preparer; the
 * kernels only apply it.
 *
 * Which TFLite code each kernel matches (tflite/kernels/...):
 *   SOFTMAX          activations.cc SoftmaxPrepare<kReference> + reference_ops::Softmax<int8,int8>
 *                    (gemmlowp fixed point: Q5.26 scaled differences, exp_on_negative_values, Q12.19 sum,
 *                    one_over_one_plus_x reciprocal) -- not the float LUT the optimized kernel uses.
 *   LOGISTIC         activations.cc SigmoidPrepare<kReference>: a 256-entry LUT computed in float
 *                    (LUTPopulate<int8_t>, libm expf), applied with optimized_integer_ops::LookupTable.
 *   HARD_SWISH       activations.cc HardSwishPrepare + reference_ops::HardSwish<int8_t> (16-bit fixed point).
 *   RESIZE_BILINEAR  reference_ops::ResizeBilinearInteger<int8_t> (10-bit fixed-point positions and weights).
 *   RESIZE_NEAREST_NEIGHBOR reference_ops::ResizeNearestNeighbor (float positions; the preparer computes them
 *                    into an index table with TFLite's float32 arithmetic).
 */
#ifndef EV_ACTIVATION_H
#define EV_ACTIVATION_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"
#include "fixedpoint.h"

/* ---- SOFTMAX (int8 -> int8, along the last dimension) ----------------------------------------------------
 * tensors: [input int8 [outer, depth], output int8 [outer, depth]]  (output scale 1/256, zero point -128)
 * work item: one row of `depth` elements; items = outer.
 * Per row (see ev_softmax_ref for the arithmetic):
 *   diff = x - max(row)                                   (in [-255, 0])
 *   diff <  diff_min: out = -128
 *   else: e = exp_on_negative_values(Q5.26: srdhm(diff << left_shift, multiplier))   (Q0.31)
 *         sum = Σ rdbpot(e, 12)                           (Q12.19, int32 wrapping)
 *         out = clamp(rdbpot(srdhm(reciprocal(sum), e), exponent) - 128, -128, 127)
 * multiplier/left_shift: QuantizeMultiplierGreaterThanOne(min(beta * input_scale * 2^26, 2^31 - 1)),
 * diff_min = -floor(31 * 2^26 / 2^left_shift) (CalculateInputRadius(5, left_shift)). */
enum {
    EV_SOFTMAX_OUTER = 0,   /* rows (product of all dimensions but the last), >= 0 */
    EV_SOFTMAX_DEPTH,       /* elements per row (the last dimension), >= 1 */
    EV_SOFTMAX_MULT,        /* input_beta_multiplier, > 0 */
    EV_SOFTMAX_LEFT_SHIFT,  /* input_beta_left_shift, 0..31 */
    EV_SOFTMAX_DIFF_MIN,    /* <= 0 */
    EV_SOFTMAX_NPARAMS
};

/* ---- LOGISTIC (int8 -> int8) ---------------------------------------------------------------------------
 * tensors: [input int8 [n], table int8 [256], output int8 [n]]
 * out[i] = table[(uint8_t)in[i]]: the table is indexed by the input's bit pattern (0..127, then -128..-1),
 * as TFLite's LUTPopulate<int8_t> lays it out. Entry for input v: clamp(int(roundf(1.0f / (1.0f +
 * expf(-(in_scale * (v - in_zp)))) * (1.0f / out_scale)) + out_zp)), all in float32 with libm's expf. TFLite's
 * reference LOGISTIC requires output scale 1/256 and takes any output zero point (converters write -128).
 * work item: a block of `block` consecutive elements (the last may be shorter); items = ceil(n / block). */
enum {
    EV_LOGISTIC_N = 0,      /* elements, >= 0 */
    EV_LOGISTIC_BLOCK,      /* elements per work item, >= 1 */
    EV_LOGISTIC_NPARAMS
};
#define EV_LOGISTIC_TABLE_SIZE 256

/* ---- HARD_SWISH (int8 -> int8) -------------------------------------------------------------------------
 * tensors: [input int8 [n], output int8 [n]]
 * TFLite's HardSwishParams, computed by HardSwishPrepare in float32:
 *   output_multiplier = (input_scale / 128) / output_scale   -> QuantizeMultiplier, then rounded to 16 bits
 *   reluish_multiplier = (input_scale / 128) / (3 / 32768)    -> likewise
 * work item: a block of `block` consecutive elements (the last may be shorter); items = ceil(n / block). */
enum {
    EV_HARD_SWISH_N = 0,        /* elements, >= 0 */
    EV_HARD_SWISH_BLOCK,        /* elements per work item, >= 1 */
    EV_HARD_SWISH_IN_ZP,        /* input zero point, -128..127 */
    EV_HARD_SWISH_OUT_ZP,       /* output zero point, -128..127 */
    EV_HARD_SWISH_OUT_MULT,     /* output_multiplier_fixedpoint_int16, 0..32767 */
    EV_HARD_SWISH_OUT_EXP,      /* output_multiplier_exponent, -31..0 */
    EV_HARD_SWISH_RELU_MULT,    /* reluish_multiplier_fixedpoint_int16, 0..32767 */
    EV_HARD_SWISH_RELU_EXP,     /* reluish_multiplier_exponent, -31..31 */
    EV_HARD_SWISH_NPARAMS
};

/* ---- RESIZE_BILINEAR (int8, NHWC) ----------------------------------------------------------------------
 * tensors: [input int8 [batch, in_h, in_w, depth], output int8 [batch, out_h, out_w, depth]]
 * Positions in 1/1024 input pixels (ResizeBilinearInteger):
 *   scale_10 = (1024 * in + out / 2) / out, or with align_corners and out > 1: (1024 * (in-1) + (out-1)/2) / (out-1)
 *   pos = o * scale_10, or with half_pixel_centers: o * scale_10 + scale_10 / 2 - 512
 *   lo = max(pos / 1024, 0) (C division, truncating), hi = min((pos + 1023) / 1024, in - 1), frac = pos - 1024*lo
 * The values are not rescaled: like TFLite, input and output quantization are taken to be the same.
 * The check refuses sizes where TFLite's arithmetic would index outside the input (lo > in - 1 can happen
 * when the rounded scale overshoots on large upscales; TFLite then reads out of bounds).
 * work item: one output row (b, y); items = batch * out_h. */
enum {
    EV_RESIZE_BATCH = 0,    /* >= 1 */
    EV_RESIZE_IN_H,         /* 1..2^20 */
    EV_RESIZE_IN_W,         /* 1..2^20 */
    EV_RESIZE_DEPTH,        /* >= 1 */
    EV_RESIZE_OUT_H,        /* 1..2^20 */
    EV_RESIZE_OUT_W,        /* 1..2^20 */
    EV_RESIZE_ALIGN_CORNERS,      /* 0 or 1 */
    EV_RESIZE_HALF_PIXEL_CENTERS, /* 0 or 1 (not both: TFLite refuses it for bilinear) */
    EV_RESIZE_BILINEAR_NPARAMS
};
#define EV_RESIZE_MAX_DIM (1 << 20)

/* ---- RESIZE_NEAREST_NEIGHBOR (8-bit, NHWC) -------------------------------------------------------------
 * tensors: [input 8-bit [batch, in_h, in_w, depth], index table int32 [out_h + out_w],
 *           output 8-bit [batch, out_h, out_w, depth]]
 * table[y] (y < out_h) is the input row output row y copies, table[out_h + x] the input column for output
 * column x; each in range (the check verifies every entry). The preparer computes them as TFLite's
 * GetNearestNeighbor does, in float32:
 *   scale = align_corners && out > 1 ? (in - 1) / (float)(out - 1) : in / (float)out
 *   v = (o + (half_pixel_centers ? 0.5f : 0)) * scale
 *   idx = min(align_corners ? roundf(v) : floorf(v), in - 1), then max(idx, 0) with half_pixel_centers.
 * Values are copied bit for bit (int8 or uint8 alike).
 * work item: one output row (b, y); items = batch * out_h.
 * params: EV_RESIZE_BATCH .. EV_RESIZE_OUT_W as for RESIZE_BILINEAR. */
#define EV_RESIZE_NEAREST_NPARAMS (EV_RESIZE_OUT_W + 1)

/* ---- Fixed-point helpers: gemmlowp / TFLite scalar arithmetic, exactly (shared by the ref kernels and the
 * checks' replays). Right shifts of negative values are arithmetic on every compiler we build with. ---- */

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0 (int32): x * 2^e, saturating. */
static inline int32_t ev_act_sat_shl32(int32_t x, int e) {
    const int32_t threshold = (int32_t)((1ll << (31 - e)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << e);
}

/* gemmlowp SaturatingRoundingDoublingHighMul (int16). */
static inline int16_t ev_act_srdhm16(int16_t a, int16_t b) {
    if (a == INT16_MIN && b == INT16_MIN) return INT16_MAX;
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* TFLite reference_ops::SaturatingDoublingHighMul (int16): like srdhm16 but truncating toward zero. */
static inline int16_t ev_act_sdhm16(int16_t a, int16_t b) {
    if (a == INT16_MIN && b == INT16_MIN) return INT16_MAX;
    const int32_t ab = (int32_t)a * (int32_t)b;
    return (int16_t)(ab / (1 << 15));
}

/* gemmlowp RoundingDivideByPOT instantiated for int16, 0 <= e <= 31, with its int16 truncations kept: the mask
 * (1 << e) - 1 is converted to int16 (so it is -1 for e >= 16, where the result is 1 for x >= 0 and -1 for
 * x < 0), and every Add/BitAnd/ShiftRight returns int16. */
static inline int16_t ev_act_rdbpot16(int16_t x, int e) {
    const int16_t mask = (int16_t)(uint16_t)((1ull << e) - 1);
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = (int16_t)((int16_t)(mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((int16_t)(x >> e) + (remainder > threshold ? 1 : 0));
}

/* TFLite reference_ops::SaturatingLeftShift (int16): value * 2^amount saturated to int16; 0 <= amount <= 30. */
static inline int16_t ev_act_sat_shl16(int16_t v, int amount) {
    int64_t r = (int64_t)v * (int64_t)(1 << amount);
    if (r > INT16_MAX) r = INT16_MAX;
    if (r < INT16_MIN) r = INT16_MIN;
    return (int16_t)r;
}

/* ResizeBilinearInteger's position arithmetic for one axis (see RESIZE_BILINEAR above). */
static inline int32_t ev_act_resize_scale10(int32_t in, int32_t out, int align_corners) {
    if (align_corners && out > 1) return ((1 << 10) * (in - 1) + (out - 1) / 2) / (out - 1);
    return ((1 << 10) * in + out / 2) / out;
}

static inline void ev_act_resize_pos(int32_t o, int32_t scale10, int half_pixel_centers, int32_t in, int32_t *pos,
                                     int32_t *lo, int32_t *hi) {
    const int32_t p = half_pixel_centers ? o * scale10 + scale10 / 2 - (1 << 9) : o * scale10;
    const int32_t l = p / (1 << 10);                 /* truncates toward zero, as TFLite's */
    const int32_t h = (p + (1 << 10) - 1) / (1 << 10);
    *pos = p;
    *lo = l > 0 ? l : 0;
    *hi = h < in - 1 ? h : in - 1;
}

#endif /* EV_ACTIVATION_H */
