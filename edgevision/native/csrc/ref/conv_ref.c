/* Scalar reference kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: the spec every other variant
 * must match byte for byte. Params and tensor layouts: conv.h. Checked by conv_check.c before anything runs.
 *
 * The arithmetic is TFLite's reference integer kernels (reference_integer_ops::ConvPerChannel,
 * DepthwiseConvPerChannel, FullyConnected / FullyConnectedPerChannel as LiteRT's BUILTIN_REF runs them):
 *
 *   acc  = sum over the filter window of  w * (x + input_offset)       int32 (wrapping; see below)
 *          taps outside the input image are skipped: padding behaves as x == input zero point
 *   acc += bias[oc]                                                     (when there is a bias)
 *   conv, depthwise:  v = MultiplyByQuantizedMultiplier(acc, multiplier[oc], shift[oc])
 *   fully connected:  v = (int32) round_half_away((double)acc * scale[oc])
 *   out  = clamp(v + output_offset, act_min, act_max)                  int8
 *
 * Accumulation is modulo 2^32 (uint32_t here: signed overflow is undefined in C). TFLite accumulates in int32
 * and its compiled code wraps, so results agree even for the (absurd) models whose sums overflow; and since
 * wrapping addition is associative and commutative, a variant may sum in any order, or split the sum as
 * sum(w*x) + input_offset*sum(w) away from the padding, and still give the same bytes.
 */
#include "../conv.h"

void ev_conv_2d_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int in_h = p[EV_CONV_IN_H], in_w = p[EV_CONV_IN_W], in_c = p[EV_CONV_IN_C];
    const int out_h = p[EV_CONV_OUT_H], out_w = p[EV_CONV_OUT_W], out_c = p[EV_CONV_OUT_C];
    const int filter_h = p[EV_CONV_FILTER_H], filter_w = p[EV_CONV_FILTER_W], filter_in_c = p[EV_CONV_FILTER_IN_C];
    const int stride_h = p[EV_CONV_STRIDE_H], stride_w = p[EV_CONV_STRIDE_W];
    const int dilation_h = p[EV_CONV_DILATION_H], dilation_w = p[EV_CONV_DILATION_W];
    const int pad_top = p[EV_CONV_PAD_TOP], pad_left = p[EV_CONV_PAD_LEFT];
    const int32_t input_offset = p[EV_CONV_INPUT_OFFSET], output_offset = p[EV_CONV_OUTPUT_OFFSET];
    const int32_t act_min = p[EV_CONV_ACT_MIN], act_max = p[EV_CONV_ACT_MAX];
    const int32_t *multiplier = p + EV_CONV_NPARAMS, *shift = multiplier + out_c;
    const int8_t *input = op->tensors[0], *filter = op->tensors[1];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    int8_t *output = op->tensors[3];
    /* grouped convolution: output channel oc belongs to group oc / filters_per_group, which reads input
     * channels [group * filter_in_c, (group + 1) * filter_in_c); groups == 1 is the ordinary case */
    const int groups = in_c / filter_in_c;
    const int filters_per_group = out_c / groups;

    for (int item = begin; item < end; item++) {
        const int b = item / out_h, out_y = item % out_h;
        const int in_y_origin = out_y * stride_h - pad_top;
        int8_t *out_row = output + ((size_t)b * out_h + out_y) * out_w * out_c;
        for (int out_x = 0; out_x < out_w; out_x++) {
            const int in_x_origin = out_x * stride_w - pad_left;
            int8_t *out_px = out_row + (size_t)out_x * out_c;
            for (int oc = 0; oc < out_c; oc++) {
                const int group = oc / filters_per_group;
                uint32_t acc = 0;
                for (int fy = 0; fy < filter_h; fy++) {
                    const int in_y = in_y_origin + dilation_h * fy;
                    if (in_y < 0 || in_y >= in_h) continue; /* zero padding: the tap is omitted */
                    for (int fx = 0; fx < filter_w; fx++) {
                        const int in_x = in_x_origin + dilation_w * fx;
                        if (in_x < 0 || in_x >= in_w) continue;
                        const int8_t *x = input + (((size_t)b * in_h + in_y) * in_w + in_x) * in_c +
                                          (size_t)group * filter_in_c;
                        const int8_t *w = filter + (((size_t)oc * filter_h + fy) * filter_w + fx) * filter_in_c;
                        for (int ic = 0; ic < filter_in_c; ic++) {
                            /* |w| <= 128, |x + input_offset| <= 255: the product fits int32 */
                            acc += (uint32_t)((int32_t)w[ic] * ((int32_t)x[ic] + input_offset));
                        }
                    }
                }
                if (bias) acc += (uint32_t)bias[oc];
                out_px[oc] = ev_conv_finish(ev_mbqm((int32_t)acc, multiplier[oc], shift[oc]), output_offset, act_min,
                                            act_max);
            }
        }
    }
}

void ev_depthwise_conv_2d_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int in_h = p[EV_DW_IN_H], in_w = p[EV_DW_IN_W], in_c = p[EV_DW_IN_C];
    const int out_h = p[EV_DW_OUT_H], out_w = p[EV_DW_OUT_W], out_c = p[EV_DW_OUT_C];
    const int filter_h = p[EV_DW_FILTER_H], filter_w = p[EV_DW_FILTER_W];
    const int depth_multiplier = p[EV_DW_DEPTH_MULTIPLIER];
    const int stride_h = p[EV_DW_STRIDE_H], stride_w = p[EV_DW_STRIDE_W];
    const int dilation_h = p[EV_DW_DILATION_H], dilation_w = p[EV_DW_DILATION_W];
    const int pad_top = p[EV_DW_PAD_TOP], pad_left = p[EV_DW_PAD_LEFT];
    const int32_t input_offset = p[EV_DW_INPUT_OFFSET], output_offset = p[EV_DW_OUTPUT_OFFSET];
    const int32_t act_min = p[EV_DW_ACT_MIN], act_max = p[EV_DW_ACT_MAX];
    const int32_t *multiplier = p + EV_DW_NPARAMS, *shift = multiplier + out_c;
    const int8_t *input = op->tensors[0], *filter = op->tensors[1];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    int8_t *output = op->tensors[3];

    for (int item = begin; item < end; item++) {
        const int b = item / out_h, out_y = item % out_h;
        const int in_y_origin = out_y * stride_h - pad_top;
        int8_t *out_row = output + ((size_t)b * out_h + out_y) * out_w * out_c;
        for (int out_x = 0; out_x < out_w; out_x++) {
            const int in_x_origin = out_x * stride_w - pad_left;
            int8_t *out_px = out_row + (size_t)out_x * out_c;
            for (int ic = 0; ic < in_c; ic++) {
                for (int m = 0; m < depth_multiplier; m++) {
                    /* output channel oc = ic * depth_multiplier + m reads input channel ic only */
                    const int oc = ic * depth_multiplier + m;
                    uint32_t acc = 0;
                    for (int fy = 0; fy < filter_h; fy++) {
                        const int in_y = in_y_origin + dilation_h * fy;
                        if (in_y < 0 || in_y >= in_h) continue; /* zero padding: the tap is omitted */
                        for (int fx = 0; fx < filter_w; fx++) {
                            const int in_x = in_x_origin + dilation_w * fx;
                            if (in_x < 0 || in_x >= in_w) continue;
                            const int32_t x = input[(((size_t)b * in_h + in_y) * in_w + in_x) * in_c + ic];
                            const int32_t w = filter[((size_t)fy * filter_w + fx) * out_c + oc];
                            acc += (uint32_t)(w * (x + input_offset));
                        }
                    }
                    if (bias) acc += (uint32_t)bias[oc];
                    out_px[oc] = ev_conv_finish(ev_mbqm((int32_t)acc, multiplier[oc], shift[oc]), output_offset,
                                                act_min, act_max);
                }
            }
        }
    }
}

void ev_fully_connected_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int depth = p[EV_FC_DEPTH], out_c = p[EV_FC_OUT_C], block = p[EV_FC_BLOCK];
    const int32_t input_offset = p[EV_FC_INPUT_OFFSET], output_offset = p[EV_FC_OUTPUT_OFFSET];
    const int32_t act_min = p[EV_FC_ACT_MIN], act_max = p[EV_FC_ACT_MAX];
    const int8_t *input = op->tensors[0], *weights = op->tensors[1];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    int8_t *output = op->tensors[3];
    const int blocks_per_row = (out_c + block - 1) / block;

    for (int item = begin; item < end; item++) {
        const int row = item / blocks_per_row;
        const int oc_begin = (item % blocks_per_row) * block;
        const int oc_end = out_c - oc_begin > block ? oc_begin + block : out_c;
        const int8_t *x = input + (size_t)row * depth;
        for (int oc = oc_begin; oc < oc_end; oc++) {
            const int8_t *w = weights + (size_t)oc * depth;
            uint32_t acc = 0;
            for (int d = 0; d < depth; d++) acc += (uint32_t)((int32_t)w[d] * ((int32_t)x[d] + input_offset));
            if (bias) acc += (uint32_t)bias[oc];
            /* TFLite's reference FC requantises in double:
             *   static_cast<int32_t>(round(static_cast<double>(acc) * effective_output_scale))
             * with effective_output_scale = (double)input_scale * (double)filter_scale / (double)output_scale,
             * precomputed by the planner (the same IEEE operations give the same double). */
            const int32_t v = ev_round_to_i32((double)(int32_t)acc * ev_fc_scale(op, oc));
            output[(size_t)row * out_c + oc] = ev_conv_finish(v, output_offset, act_min, act_max);
        }
    }
}
