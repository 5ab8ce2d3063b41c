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
#include "fixedpoint.h"

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

/* acc + output_offset, wrapping like TFLite's int32 add, then the activation clamp; the result fits int8. */
static inline int8_t ev_conv_finish(int32_t scaled, int32_t output_offset, int32_t act_min, int32_t act_max) {
    int32_t v = (int32_t)((uint32_t)scaled + (uint32_t)output_offset);
    if (v < act_min) v = act_min;
    if (v > act_max) v = act_max;
    return (int8_t)v;
}

#endif /* EV_CONV_H */
