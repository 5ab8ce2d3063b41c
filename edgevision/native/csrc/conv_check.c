/* Checks for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED ops (layouts in conv.h): the engine's second line
 * of defence against a planner bug. Once a check passes, every kernel variant can trust that each index it
 * computes from the params stays inside its tensors, that intermediate int index arithmetic cannot overflow,
 * and that the per-channel arrays are as long as the channel count. Compiled into every build. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conv.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* product of n non-negative factors into *out; 0 on success, -1 on overflow of 2^62 */
static int product(const int32_t *f, int n, int64_t *out) {
    int64_t r = 1;
    for (int i = 0; i < n; i++) {
        if (f[i] < 0) return -1;
        if (f[i] != 0 && r > ((int64_t)1 << 62) / f[i]) return -1;
        r *= f[i];
    }
    *out = r;
    return 0;
}

/* tensor t (int8) holds exactly the elements of dims[0..n) */
static int check_size(const ev_op *op, int t, const char *what, const int32_t *dims, int n, char *err,
                      size_t errlen) {
    int64_t count;
    if (product(dims, n, &count) != 0) return fail(err, errlen, "%s: element count overflows", what);
    if ((uint64_t)count != (uint64_t)op->sizes[t])
        return fail(err, errlen, "%s (tensor %d) is %zu bytes, but its shape in params needs %lld", what, t,
                    op->sizes[t], (long long)count);
    return 0;
}

static int check_bias(const ev_op *op, int32_t out_c, char *err, size_t errlen) {
    if (op->sizes[2] != 0 && op->sizes[2] != (size_t)out_c * 4)
        return fail(err, errlen, "bias (tensor 2) is %zu bytes; expected 0 (no bias) or %lld (%d int32)",
                    op->sizes[2], (long long)out_c * 4, out_c);
    if (op->sizes[2] != 0 && ((uintptr_t)op->tensors[2] % 4) != 0)
        return fail(err, errlen, "bias (tensor 2) is not 4-byte aligned");
    return 0;
}

static int check_quant(int32_t input_offset, int32_t output_offset, int32_t act_min, int32_t act_max, char *err,
                       size_t errlen) {
    if (input_offset < -127 || input_offset > 128)
        return fail(err, errlen, "input offset %d outside [-127, 128] (minus an int8 zero point)", input_offset);
    if (output_offset < -128 || output_offset > 127)
        return fail(err, errlen, "output offset %d outside the int8 range", output_offset);
    if (act_min < -128 || act_max > 127 || act_min > act_max)
        return fail(err, errlen, "activation range [%d, %d] is not inside [-128, 127]", act_min, act_max);
    return 0;
}

/* per-channel (multiplier, shift) pairs after the header: multiplier >= 0, -31 <= shift <= 30 */
static int check_multipliers(const ev_op *op, int header, int32_t out_c, char *err, size_t errlen) {
    const int32_t *mult = op->params + header, *shift = mult + out_c;
    for (int32_t c = 0; c < out_c; c++) {
        if (mult[c] < 0) return fail(err, errlen, "channel %d: negative multiplier %d", c, mult[c]);
        if (shift[c] < -31 || shift[c] > 30)
            return fail(err, errlen, "channel %d: shift %d outside [-31, 30]", c, shift[c]);
    }
    return 0;
}

/* the params count: a header of `header` int32 (at least the channel count must be readable) and then
 * 2 * out_c per-channel words */
static int check_count(const ev_op *op, int header, int out_c_index, int32_t *out_c, char *err, size_t errlen) {
    if (op->n_tensors != 4)
        return fail(err, errlen, "%d tensors, expected 4 (input, filter, bias, output)", op->n_tensors);
    if (op->n_params < header) return fail(err, errlen, "%d params, expected at least %d", op->n_params, header);
    *out_c = op->params[out_c_index];
    if (*out_c < 1) return fail(err, errlen, "output channels %d < 1", *out_c);
    if ((int64_t)op->n_params != (int64_t)header + 2 * (int64_t)*out_c)
        return fail(err, errlen, "%d params, expected %lld (%d header + 2 x %d channels)", op->n_params,
                    (long long)header + 2 * (long long)*out_c, header, *out_c);
    return 0;
}

/* one spatial axis of a CONV_2D or DEPTHWISE_CONV_2D window */
static int check_window(int32_t in, int32_t out, int32_t filter, int32_t stride, int32_t dilation, int32_t pad,
                        const char *axis, char *err, size_t errlen) {
    if (in < 1 || out < 0 || filter < 1)
        return fail(err, errlen, "%s: input %d, output %d, filter %d (need input, filter >= 1, output >= 0)", axis,
                    in, out, filter);
    if (stride < 1 || dilation < 1) return fail(err, errlen, "%s: stride %d, dilation %d must be >= 1", axis, stride,
                                                dilation);
    if (pad < 0) return fail(err, errlen, "%s: negative padding %d", axis, pad);
    /* the kernels compute out * stride - pad + dilation * (filter - 1) in int */
    int64_t reach = (int64_t)(out > 0 ? out - 1 : 0) * stride + (int64_t)(filter - 1) * dilation;
    if (reach > INT32_MAX) return fail(err, errlen, "%s: window positions overflow int", axis);
    return 0;
}

int ev_check_conv_2d(const ev_op *op, char *err, size_t errlen) {
    int32_t out_c;
    if (check_count(op, EV_CONV_NPARAMS, EV_CONV_OUT_C, &out_c, err, errlen)) return -1;
    const int32_t *p = op->params;
    const int32_t batches = p[EV_CONV_BATCHES], in_c = p[EV_CONV_IN_C], filter_in_c = p[EV_CONV_FILTER_IN_C];
    if (batches < 1 || in_c < 1 || filter_in_c < 1)
        return fail(err, errlen, "batches %d, input channels %d, filter input channels %d must be >= 1", batches,
                    in_c, filter_in_c);
    if (in_c % filter_in_c != 0)
        return fail(err, errlen, "input channels %d not a multiple of filter input channels %d", in_c, filter_in_c);
    if (out_c % (in_c / filter_in_c) != 0)
        return fail(err, errlen, "output channels %d not a multiple of the %d groups", out_c, in_c / filter_in_c);
    if (check_window(p[EV_CONV_IN_H], p[EV_CONV_OUT_H], p[EV_CONV_FILTER_H], p[EV_CONV_STRIDE_H],
                     p[EV_CONV_DILATION_H], p[EV_CONV_PAD_TOP], "height", err, errlen) ||
        check_window(p[EV_CONV_IN_W], p[EV_CONV_OUT_W], p[EV_CONV_FILTER_W], p[EV_CONV_STRIDE_W],
                     p[EV_CONV_DILATION_W], p[EV_CONV_PAD_LEFT], "width", err, errlen))
        return -1;
    if (check_quant(p[EV_CONV_INPUT_OFFSET], p[EV_CONV_OUTPUT_OFFSET], p[EV_CONV_ACT_MIN], p[EV_CONV_ACT_MAX], err,
                    errlen))
        return -1;
    if (check_multipliers(op, EV_CONV_NPARAMS, out_c, err, errlen)) return -1;
    const int32_t in_dims[4] = {batches, p[EV_CONV_IN_H], p[EV_CONV_IN_W], in_c};
    const int32_t f_dims[4] = {out_c, p[EV_CONV_FILTER_H], p[EV_CONV_FILTER_W], filter_in_c};
    const int32_t out_dims[4] = {batches, p[EV_CONV_OUT_H], p[EV_CONV_OUT_W], out_c};
    if (check_size(op, 0, "input", in_dims, 4, err, errlen) ||
        check_size(op, 1, "filter", f_dims, 4, err, errlen) || check_bias(op, out_c, err, errlen) ||
        check_size(op, 3, "output", out_dims, 4, err, errlen))
        return -1;
    if ((int64_t)op->items != (int64_t)batches * p[EV_CONV_OUT_H])
        return fail(err, errlen, "%d work items, expected batches x output rows = %lld", op->items,
                    (long long)batches * p[EV_CONV_OUT_H]);
    return 0;
}

int ev_check_depthwise_conv_2d(const ev_op *op, char *err, size_t errlen) {
    int32_t out_c;
    if (check_count(op, EV_DW_NPARAMS, EV_DW_OUT_C, &out_c, err, errlen)) return -1;
    const int32_t *p = op->params;
    const int32_t batches = p[EV_DW_BATCHES], in_c = p[EV_DW_IN_C], dm = p[EV_DW_DEPTH_MULTIPLIER];
    if (batches < 1 || in_c < 1 || dm < 1)
        return fail(err, errlen, "batches %d, input channels %d, depth multiplier %d must be >= 1", batches, in_c, dm);
    if ((int64_t)in_c * dm != out_c)
        return fail(err, errlen, "output channels %d != input channels %d x depth multiplier %d", out_c, in_c, dm);
    if (check_window(p[EV_DW_IN_H], p[EV_DW_OUT_H], p[EV_DW_FILTER_H], p[EV_DW_STRIDE_H], p[EV_DW_DILATION_H],
                     p[EV_DW_PAD_TOP], "height", err, errlen) ||
        check_window(p[EV_DW_IN_W], p[EV_DW_OUT_W], p[EV_DW_FILTER_W], p[EV_DW_STRIDE_W], p[EV_DW_DILATION_W],
                     p[EV_DW_PAD_LEFT], "width", err, errlen))
        return -1;
    if (check_quant(p[EV_DW_INPUT_OFFSET], p[EV_DW_OUTPUT_OFFSET], p[EV_DW_ACT_MIN], p[EV_DW_ACT_MAX], err, errlen))
        return -1;
    if (check_multipliers(op, EV_DW_NPARAMS, out_c, err, errlen)) return -1;
    const int32_t in_dims[4] = {batches, p[EV_DW_IN_H], p[EV_DW_IN_W], in_c};
    const int32_t f_dims[3] = {p[EV_DW_FILTER_H], p[EV_DW_FILTER_W], out_c};
    const int32_t out_dims[4] = {batches, p[EV_DW_OUT_H], p[EV_DW_OUT_W], out_c};
    if (check_size(op, 0, "input", in_dims, 4, err, errlen) ||
        check_size(op, 1, "filter", f_dims, 3, err, errlen) || check_bias(op, out_c, err, errlen) ||
        check_size(op, 3, "output", out_dims, 4, err, errlen))
        return -1;
    if ((int64_t)op->items != (int64_t)batches * p[EV_DW_OUT_H])
        return fail(err, errlen, "%d work items, expected batches x output rows = %lld", op->items,
                    (long long)batches * p[EV_DW_OUT_H]);
    return 0;
}

int ev_check_fully_connected(const ev_op *op, char *err, size_t errlen) {
    int32_t out_c;
    if (check_count(op, EV_FC_NPARAMS, EV_FC_OUT_C, &out_c, err, errlen)) return -1;
    const int32_t *p = op->params;
    const int32_t rows = p[EV_FC_ROWS], depth = p[EV_FC_DEPTH], block = p[EV_FC_BLOCK];
    if (rows < 1 || depth < 1 || block < 1)
        return fail(err, errlen, "rows %d, depth %d, channel block %d must be >= 1", rows, depth, block);
    if (check_quant(p[EV_FC_INPUT_OFFSET], p[EV_FC_OUTPUT_OFFSET], p[EV_FC_ACT_MIN], p[EV_FC_ACT_MAX], err, errlen))
        return -1;
    for (int32_t c = 0; c < out_c; c++) {
        const double s = ev_fc_scale(op, c);
        uint64_t bits;
        memcpy(&bits, &s, sizeof bits);
        /* finite (exponent not all ones) and not negative (sign bit clear) */
        if ((bits >> 63) != 0 || ((bits >> 52) & 0x7ff) == 0x7ff)
            return fail(err, errlen, "channel %d: requantisation scale %g is not finite and >= 0", c, s);
    }
    const int32_t in_dims[2] = {rows, depth}, w_dims[2] = {out_c, depth}, out_dims[2] = {rows, out_c};
    if (check_size(op, 0, "input", in_dims, 2, err, errlen) ||
        check_size(op, 1, "weights", w_dims, 2, err, errlen) || check_bias(op, out_c, err, errlen) ||
        check_size(op, 3, "output", out_dims, 2, err, errlen))
        return -1;
    const int64_t blocks = ((int64_t)out_c + block - 1) / block;
    if ((int64_t)op->items != (int64_t)rows * blocks)
        return fail(err, errlen, "%d work items, expected rows x ceil(channels / block) = %lld", op->items,
                    (long long)rows * blocks);
    return 0;
}
