/* Checks for SOFTMAX, LOGISTIC, HARD_SWISH, RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (layouts: activation.h).
 * Once a check passes, the kernel cannot read or write outside its tensors whatever the params say, and its
 * arithmetic has no undefined behaviour. The engine has already verified each tensor range lies in its block. */
#include <stdarg.h>
#include <stdio.h>

#include "activation.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int expect_counts(const ev_op *op, int n_params, int n_tensors, char *err, size_t errlen) {
    if (op->n_params != n_params)
        return fail(err, errlen, "expected %d int32 params, got %d", n_params, op->n_params);
    if (op->n_tensors != n_tensors)
        return fail(err, errlen, "expected %d tensors, got %d", n_tensors, op->n_tensors);
    return 0;
}

static int expect_bytes(const ev_op *op, int t, const char *what, uint64_t need, char *err, size_t errlen) {
    if ((uint64_t)op->sizes[t] < need)
        return fail(err, errlen, "tensor %d (%s) has %zu bytes, needs %llu", t, what, op->sizes[t],
                    (unsigned long long)need);
    return 0;
}

/* n elements in blocks of `block`: items must be ceil(n / block) */
static int expect_blocks(const ev_op *op, int32_t n, int32_t block, char *err, size_t errlen) {
    if (n < 0) return fail(err, errlen, "negative element count %d", n);
    if (block < 1) return fail(err, errlen, "block size %d, must be >= 1", block);
    const int64_t items = ((int64_t)n + block - 1) / block;
    if (op->items != items)
        return fail(err, errlen, "%d items for %d elements in blocks of %d, expected %lld", op->items, n, block,
                    (long long)items);
    return 0;
}

int ev_check_softmax(const ev_op *op, char *err, size_t errlen) {
    if (expect_counts(op, EV_SOFTMAX_NPARAMS, 2, err, errlen)) return -1;
    const int32_t *p = op->params;
    const int32_t outer = p[EV_SOFTMAX_OUTER], depth = p[EV_SOFTMAX_DEPTH];
    const int32_t mult = p[EV_SOFTMAX_MULT], shift = p[EV_SOFTMAX_LEFT_SHIFT], diff_min = p[EV_SOFTMAX_DIFF_MIN];
    if (outer < 0 || depth < 1) return fail(err, errlen, "shape [%d, %d]: need outer >= 0 and depth >= 1", outer, depth);
    if (op->items != outer) return fail(err, errlen, "%d items, expected one per row (%d)", op->items, outer);
    const uint64_t n = (uint64_t)outer * (uint64_t)depth;
    if (expect_bytes(op, 0, "input", n, err, errlen) || expect_bytes(op, 1, "output", n, err, errlen)) return -1;
    if (mult <= 0) return fail(err, errlen, "input multiplier %d, must be > 0", mult);
    if (shift < 0 || shift > 31) return fail(err, errlen, "input left shift %d, must be 0..31", shift);
    if (diff_min > 0) return fail(err, errlen, "diff_min %d, must be <= 0", diff_min);
    /* every diff >= diff_min (and >= -255) times 2^shift must fit int32, as Prepare's radius guarantees */
    const int64_t lowest = diff_min > -255 ? diff_min : -255;
    if (lowest * ((int64_t)1 << shift) < INT32_MIN)
        return fail(err, errlen, "diff_min %d with left shift %d overflows int32", diff_min, shift);
    return 0;
}

int ev_check_logistic(const ev_op *op, char *err, size_t errlen) {
    if (expect_counts(op, EV_LOGISTIC_NPARAMS, 3, err, errlen)) return -1;
    const int32_t n = op->params[EV_LOGISTIC_N];
    if (expect_blocks(op, n, op->params[EV_LOGISTIC_BLOCK], err, errlen)) return -1;
    if (op->sizes[1] != EV_LOGISTIC_TABLE_SIZE)
        return fail(err, errlen, "lookup table has %zu bytes, expected %d", op->sizes[1], EV_LOGISTIC_TABLE_SIZE);
    if (expect_bytes(op, 0, "input", (uint64_t)n, err, errlen) ||
        expect_bytes(op, 2, "output", (uint64_t)n, err, errlen))
        return -1;
    return 0;
}

int ev_check_hard_swish(const ev_op *op, char *err, size_t errlen) {
    if (expect_counts(op, EV_HARD_SWISH_NPARAMS, 2, err, errlen)) return -1;
    const int32_t *p = op->params;
    const int32_t n = p[EV_HARD_SWISH_N];
    if (expect_blocks(op, n, p[EV_HARD_SWISH_BLOCK], err, errlen)) return -1;
    if (expect_bytes(op, 0, "input", (uint64_t)n, err, errlen) ||
        expect_bytes(op, 1, "output", (uint64_t)n, err, errlen))
        return -1;
    if (p[EV_HARD_SWISH_IN_ZP] < -128 || p[EV_HARD_SWISH_IN_ZP] > 127 || p[EV_HARD_SWISH_OUT_ZP] < -128 ||
        p[EV_HARD_SWISH_OUT_ZP] > 127)
        return fail(err, errlen, "zero points %d, %d: must be int8", p[EV_HARD_SWISH_IN_ZP], p[EV_HARD_SWISH_OUT_ZP]);
    if (p[EV_HARD_SWISH_OUT_MULT] < 0 || p[EV_HARD_SWISH_OUT_MULT] > 32767 || p[EV_HARD_SWISH_RELU_MULT] < 0 ||
        p[EV_HARD_SWISH_RELU_MULT] > 32767)
        return fail(err, errlen, "16-bit multipliers %d, %d: must be 0..32767", p[EV_HARD_SWISH_OUT_MULT],
                    p[EV_HARD_SWISH_RELU_MULT]);
    if (p[EV_HARD_SWISH_OUT_EXP] < -31 || p[EV_HARD_SWISH_OUT_EXP] > 0)
        return fail(err, errlen, "output exponent %d, must be -31..0", p[EV_HARD_SWISH_OUT_EXP]);
    if (p[EV_HARD_SWISH_RELU_EXP] < -31 || p[EV_HARD_SWISH_RELU_EXP] > 31)
        return fail(err, errlen, "reluish exponent %d, must be -31..31", p[EV_HARD_SWISH_RELU_EXP]);
    return 0;
}

/* the NHWC dims common to both resizes; fills the element counts */
static int check_resize_dims(const ev_op *op, int in_t, int out_t, char *err, size_t errlen) {
    const int32_t *p = op->params;
    const int32_t batch = p[EV_RESIZE_BATCH], depth = p[EV_RESIZE_DEPTH];
    const int32_t in_h = p[EV_RESIZE_IN_H], in_w = p[EV_RESIZE_IN_W], out_h = p[EV_RESIZE_OUT_H], out_w = p[EV_RESIZE_OUT_W];
    if (batch < 1 || depth < 1) return fail(err, errlen, "batch %d, depth %d: must be >= 1", batch, depth);
    if (in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1 || in_h > EV_RESIZE_MAX_DIM || in_w > EV_RESIZE_MAX_DIM ||
        out_h > EV_RESIZE_MAX_DIM || out_w > EV_RESIZE_MAX_DIM)
        return fail(err, errlen, "sizes %dx%d -> %dx%d: each must be 1..%d", in_h, in_w, out_h, out_w,
                    EV_RESIZE_MAX_DIM);
    if ((int64_t)op->items != (int64_t)batch * out_h)
        return fail(err, errlen, "%d items, expected one per output row (%lld)", op->items, (long long)batch * out_h);
    const uint64_t in_n = (uint64_t)batch * (uint64_t)in_h * (uint64_t)in_w * (uint64_t)depth;
    const uint64_t out_n = (uint64_t)batch * (uint64_t)out_h * (uint64_t)out_w * (uint64_t)depth;
    if (expect_bytes(op, in_t, "input", in_n, err, errlen) || expect_bytes(op, out_t, "output", out_n, err, errlen))
        return -1;
    return 0;
}

/* replays the kernel's position arithmetic for one axis: every row/column it reads must exist */
static int check_bilinear_axis(const char *axis, int32_t in, int32_t out, int align, int half, char *err,
                               size_t errlen) {
    const int32_t scale10 = ev_act_resize_scale10(in, out, align);
    for (int32_t o = 0; o < out; o++) {
        /* o * scale10 stays below 2^31: scale10 <= 1024 * in / out + 1 with in, out <= 2^20 */
        int32_t pos, lo, hi;
        ev_act_resize_pos(o, scale10, half, in, &pos, &lo, &hi);
        if (lo < 0 || lo > in - 1 || hi < 0 || hi > in - 1)
            return fail(err, errlen,
                        "%s %d of %d reads input %s %d..%d of %d (TFLite's integer scale overshoots the input)",
                        axis, o, out, axis, lo, hi, in);
    }
    return 0;
}

int ev_check_resize_bilinear(const ev_op *op, char *err, size_t errlen) {
    if (expect_counts(op, EV_RESIZE_BILINEAR_NPARAMS, 2, err, errlen)) return -1;
    if (check_resize_dims(op, 0, 1, err, errlen)) return -1;
    const int32_t *p = op->params;
    const int32_t align = p[EV_RESIZE_ALIGN_CORNERS], half = p[EV_RESIZE_HALF_PIXEL_CENTERS];
    if ((align != 0 && align != 1) || (half != 0 && half != 1) || (align && half))
        return fail(err, errlen, "align_corners %d, half_pixel_centers %d: each 0 or 1, not both", align, half);
    if (check_bilinear_axis("row", p[EV_RESIZE_IN_H], p[EV_RESIZE_OUT_H], align, half, err, errlen) ||
        check_bilinear_axis("column", p[EV_RESIZE_IN_W], p[EV_RESIZE_OUT_W], align, half, err, errlen))
        return -1;
    return 0;
}

int ev_check_resize_nearest_neighbor(const ev_op *op, char *err, size_t errlen) {
    if (expect_counts(op, EV_RESIZE_NEAREST_NPARAMS, 3, err, errlen)) return -1;
    if (check_resize_dims(op, 0, 2, err, errlen)) return -1;
    const int32_t *p = op->params;
    const int32_t in_h = p[EV_RESIZE_IN_H], in_w = p[EV_RESIZE_IN_W], out_h = p[EV_RESIZE_OUT_H], out_w = p[EV_RESIZE_OUT_W];
    const uint64_t entries = (uint64_t)out_h + (uint64_t)out_w;
    if (op->sizes[1] != entries * 4)
        return fail(err, errlen, "index table has %zu bytes, expected %llu (int32 [out_h + out_w])", op->sizes[1],
                    (unsigned long long)(entries * 4));
    if ((uintptr_t)op->tensors[1] % 4) return fail(err, errlen, "index table is not 4-byte aligned");
    const int32_t *table = (const int32_t *)op->tensors[1];
    for (int32_t y = 0; y < out_h; y++)
        if (table[y] < 0 || table[y] >= in_h)
            return fail(err, errlen, "index table: output row %d reads input row %d of %d", y, table[y], in_h);
    for (int32_t x = 0; x < out_w; x++)
        if (table[out_h + x] < 0 || table[out_h + x] >= in_w)
            return fail(err, errlen, "index table: output column %d reads input column %d of %d", x,
                        table[out_h + x], in_w);
    return 0;
}
