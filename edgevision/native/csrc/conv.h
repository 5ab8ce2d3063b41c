/* Convolution-family kernels: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (int8 activations, int8 symmetric
 * weights, int32 bias, per-channel or per-tensor weight scales).
 *
 * This header is the contract between the preparers (edgevision/native/ops/conv.py), the checks (conv_check.c)
 * and every variant of these kernels (ref/conv_ref.c is the spec, its arithmetic commented). For each kind it
 * gives the int32 params layout (an enum of indices; the fixed header ends with *_NPARAMS, per-channel arrays
 * follow it), the tensor order and what one work item is. Every integer the kernels use (offsets, clamps,
 * multipliers, shifts, requantisation scales) is computed in Python exactly as TFLite's Prepare computes it
 * (ai-edge-litert's BUILTIN_REF kernels are the oracle); the kernels only apply them.
 *
 * Layouts (TFLite's, unchanged: weights are not repacked for the reference kernels):
 *   activations NHWC int8; CONV_2D filter [out_c, filter_h, filter_w, filter_in_c] int8 (OHWI);
 *   DEPTHWISE_CONV_2D filter [1, filter_h, filter_w, out_c] int8; FULLY_CONNECTED weights [out_c, depth] int8;
 *   bias [out_c] int32.
 *
 * Bias: the tensor slot is always present; a tensor of 0 bytes means "no bias" (TFLite: bias_data == NULL,
 * the same as a bias of zeros).
 *
 * Requantisation:
 *   CONV_2D and DEPTHWISE_CONV_2D use TFLite's fixed-point MultiplyByQuantizedMultiplier (double rounding:
 *   SaturatingRoundingDoublingHighMul then RoundingDivideByPOT) with one (multiplier, shift) per output channel
 *   (a per-tensor weight scale is broadcast to every channel, as TFLite does);
 *   FULLY_CONNECTED: TFLite's reference FC (since LiteRT's April 2025 "requant in float" change, in every
 *   ai-edge-litert 2.x) requantises in double: round(acc * effective_scale), one binary64 scale per channel.
 */
#ifndef EV_CONV_H
#define EV_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"

/* ---- CONV_2D -------------------------------------------------------------------------------------------------
 * tensors: [input int8 [batches, in_h, in_w, in_c],
 *           filter int8 [out_c, filter_h, filter_w, filter_in_c],
 *           bias int32 [out_c] or 0 bytes,
 *           output int8 [batches, out_h, out_w, out_c]]
 * Grouped convolution: groups = in_c / filter_in_c; output channel oc reads input channels
 *   [g * filter_in_c, (g + 1) * filter_in_c) with g = oc / (out_c / groups). groups == 1 is ordinary conv.
 * params: the header below, then out_c multipliers, then out_c shifts
 *   (params[EV_CONV_NPARAMS + oc], params[EV_CONV_NPARAMS + out_c + oc]); n_params = EV_CONV_NPARAMS + 2 * out_c.
 * work item: one output row (b, out_y); items = batches * out_h, item i is b = i / out_h, out_y = i % out_h. */
enum {
    EV_CONV_BATCHES = 0,
    EV_CONV_IN_H,
    EV_CONV_IN_W,
    EV_CONV_IN_C,
    EV_CONV_OUT_H,
    EV_CONV_OUT_W,
    EV_CONV_OUT_C,
    EV_CONV_FILTER_H,
    EV_CONV_FILTER_W,
    EV_CONV_FILTER_IN_C, /* in_c / groups */
    EV_CONV_STRIDE_H,
    EV_CONV_STRIDE_W,
    EV_CONV_DILATION_H,
    EV_CONV_DILATION_W,
    EV_CONV_PAD_TOP,  /* TFLite padding_values.height: rows of implicit zero-point padding above */
    EV_CONV_PAD_LEFT, /* TFLite padding_values.width */
    EV_CONV_INPUT_OFFSET,  /* -input zero point, in [-127, 128] */
    EV_CONV_OUTPUT_OFFSET, /* output zero point, in [-128, 127] */
    EV_CONV_ACT_MIN,       /* fused activation clamp, -128 <= min <= max <= 127 */
    EV_CONV_ACT_MAX,
    EV_CONV_NPARAMS
};

/* ---- DEPTHWISE_CONV_2D ---------------------------------------------------------------------------------------
 * tensors: [input int8 [batches, in_h, in_w, in_c],
 *           filter int8 [1, filter_h, filter_w, out_c],
 *           bias int32 [out_c] or 0 bytes,
 *           output int8 [batches, out_h, out_w, out_c]]
 * out_c = in_c * depth_multiplier; output channel oc = ic * depth_multiplier + m reads input channel ic.
 * params: the header below (same meanings as CONV_2D), then out_c multipliers, then out_c shifts;
 *   n_params = EV_DW_NPARAMS + 2 * out_c.
 * work item: one output row (b, out_y); items = batches * out_h. */
enum {
    EV_DW_BATCHES = 0,
    EV_DW_IN_H,
    EV_DW_IN_W,
    EV_DW_IN_C,
    EV_DW_OUT_H,
    EV_DW_OUT_W,
    EV_DW_OUT_C,
    EV_DW_FILTER_H,
    EV_DW_FILTER_W,
    EV_DW_DEPTH_MULTIPLIER, /* out_c / in_c */
    EV_DW_STRIDE_H,
    EV_DW_STRIDE_W,
    EV_DW_DILATION_H,
    EV_DW_DILATION_W,
    EV_DW_PAD_TOP,
    EV_DW_PAD_LEFT,
    EV_DW_INPUT_OFFSET,
    EV_DW_OUTPUT_OFFSET,
    EV_DW_ACT_MIN,
    EV_DW_ACT_MAX,
    EV_DW_NPARAMS
};

/* ---- FULLY_CONNECTED -----------------------------------------------------------------------------------------
 * tensors: [input int8 [rows, depth] (the input flattened; rows = its size / depth),
 *           weights int8 [out_c, depth],
 *           bias int32 [out_c] or 0 bytes,
 *           output int8 [rows, out_c] (whatever shape keep_num_dims gives it, the bytes are this matrix)]
 * params: the header below, then out_c requantisation scales, each an IEEE-754 binary64 stored as two int32
 *   words, low word first: bits = (uint32)params[EV_FC_NPARAMS + 2*oc] | (uint64)(uint32)params[.. + 1] << 32;
 *   n_params = EV_FC_NPARAMS + 2 * out_c. Each scale is (double)input_scale * (double)weight_scale[oc] /
 *   (double)output_scale, the float32 scales widened, evaluated left to right (a per-tensor weight scale is
 *   repeated for every channel; the value is the same TFLite computes for the whole tensor).
 * work item: a block of up to EV_FC_BLOCK consecutive output channels of one row:
 *   items = rows * ceil(out_c / block); item i is row i / nblk, channels [(i % nblk) * block, min(+block, out_c)).
 */
enum {
    EV_FC_ROWS = 0,
    EV_FC_DEPTH,
    EV_FC_OUT_C,
    EV_FC_BLOCK, /* output channels per work item, >= 1 */
    EV_FC_INPUT_OFFSET,
    EV_FC_OUTPUT_OFFSET,
    EV_FC_ACT_MIN,
    EV_FC_ACT_MAX,
    EV_FC_NPARAMS
};

/* The FC requantisation scale of output channel oc (see above). */
static inline double ev_fc_scale(const ev_op *op, int oc) {
    const int32_t *w = op->params + EV_FC_NPARAMS + 2 * (size_t)oc;
    union {
        uint64_t u;
        double d;
    } v;
    v.u = (uint64_t)(uint32_t)w[0] | ((uint64_t)(uint32_t)w[1] << 32);
    return v.d;
}

/* ---- Fixed-point helpers (TFLite / gemmlowp, double rounding; TFLITE_SINGLE_ROUNDING is off in LiteRT builds) -
 * TFLite computes these in int32 and relies on two's complement wrapping where C++ leaves overflow undefined
 * (x << left_shift, acc + output_offset); here the wrapping is explicit through uint32_t. */

/* gemmlowp SaturatingRoundingDoublingHighMul: the high 32 bits of 2*a*b, rounded to nearest (ties away from
 * zero); the one overflowing case, a == b == INT32_MIN, saturates to INT32_MAX. The division truncates toward
 * zero (C and C++ both), which with the +-2^30 nudge gives round-half-away. */
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

/* acc + output_offset, wrapping like TFLite's int32 add, then the activation clamp; the result fits int8. */
static inline int8_t ev_conv_finish(int32_t scaled, int32_t output_offset, int32_t act_min, int32_t act_max) {
    int32_t v = (int32_t)((uint32_t)scaled + (uint32_t)output_offset);
    if (v < act_min) v = act_min;
    if (v > act_max) v = act_max;
    return (int8_t)v;
}

#endif /* EV_CONV_H */
