/* The checks of the kinds in elementwise.h: the engine's safety net. Each verifies that an op's params are
 * complete and mutually consistent, that every tensor's byte size is exactly what the shapes in the params
 * imply, and that every value the kernel's arithmetic relies on is in range (so no index leaves its buffer and
 * no int32 expression overflows). Once a check returns 0 the kernel may trust the op. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "elementwise.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

#define FAIL(...) return fail(err, errlen, __VA_ARGS__)

/* params count and tensor count */
static int check_counts(const ev_op *op, int n_params, int n_tensors, char *err, size_t errlen) {
    if (op->n_params != n_params) FAIL("expected %d int32 params, got %d", n_params, op->n_params);
    if (op->n_tensors != n_tensors) FAIL("expected %d tensors, got %d", n_tensors, op->n_tensors);
    return 0;
}

static int in_range(long long v, long long lo, long long hi) { return v >= lo && v <= hi; }

/* a multiplier/shift pair MBQM accepts; `bound` is the largest |x| the kernel passes it: |x| << max(shift, 0)
 * must stay below 2^30 so neither the shift nor adding an offset afterwards can overflow int32 */
static int check_multiplier(const char *what, int32_t mult, int32_t shift, long long bound, char *err,
                            size_t errlen) {
    if (mult < 0) FAIL("%s multiplier %d is negative", what, mult);
    if (!in_range(shift, -31, 30)) FAIL("%s shift %d outside [-31, 30]", what, shift);
    if (shift > 0 && (bound << shift) >= (1ll << 30))
        FAIL("%s shift %d would overflow int32 for inputs up to %lld", what, shift, bound);
    return 0;
}

static int check_act(int32_t lo, int32_t hi, long long tmin, long long tmax, char *err, size_t errlen) {
    if (!in_range(lo, tmin, tmax) || !in_range(hi, tmin, tmax) || lo > hi)
        FAIL("activation range [%d, %d] is not an ordered range within [%lld, %lld]", lo, hi, tmin, tmax);
    return 0;
}

static int check_items(const ev_op *op, long long expected, char *err, size_t errlen) {
    if (expected > INT32_MAX) FAIL("%lld work items do not fit an int", expected);
    if (op->items != expected) FAIL("items is %d, the params imply %lld", op->items, expected);
    return 0;
}

static int check_size(const ev_op *op, int t, long long expected, const char *what, char *err, size_t errlen) {
    if (op->sizes[t] != (size_t)expected)
        FAIL("%s (tensor %d) is %zu bytes, the params imply %lld", what, t, op->sizes[t], expected);
    return 0;
}

static int check_aligned(const ev_op *op, int t, size_t align, char *err, size_t errlen) {
    if ((uintptr_t)op->tensors[t] % align) FAIL("tensor %d is not %zu-byte aligned", t, align);
    return 0;
}

/* product of n dims, each >= 1, up to 2^40 (no buffer comes near) */
static int dims_product(const int32_t *dim, int n, const char *what, long long *out, char *err, size_t errlen) {
    long long p = 1;
    for (int k = 0; k < n; k++) {
        if (dim[k] < 1) FAIL("%s dimension %d is %d, must be >= 1", what, k, dim[k]);
        p *= dim[k];
        if (p > (1ll << 40)) FAIL("%s has more than 2^40 elements", what);
    }
    *out = p;
    return 0;
}

#define TRY(x)                \
    do {                      \
        if ((x) != 0) return -1; \
    } while (0)

/* ---- ADD, MUL ------------------------------------------------------------------------------------------------- */

/* the broadcast part shared by ADD and MUL; *bound = largest |x + offset| is the kind's business */
static int check_binary(const ev_op *op, int n_params, char *err, size_t errlen) {
    TRY(check_counts(op, n_params, 3, err, errlen));
    const int32_t *p = op->params;
    long long total = 0;
    TRY(dims_product(p + EV_BIN_DIM, EV_EW_DIMS, "the output", &total, err, errlen));
    if (total > INT32_MAX) FAIL("the output has %lld elements, more than an int holds", total);
    TRY(check_size(op, 2, total, "the output", err, errlen));
    for (int t = 0; t < 2; t++) {
        const int32_t *s = p + (t == 0 ? EV_BIN_STRIDE1 : EV_BIN_STRIDE2);
        const long long size = (long long)op->sizes[t];
        if (size < 1) FAIL("input %d is empty", t + 1);
        /* the last element read: sum of (dim - 1) * stride, which must lie inside the input */
        long long last = 0;
        for (int k = 0; k < EV_EW_DIMS; k++) {
            if (s[k] < 0) FAIL("input %d stride %d is negative (%d)", t + 1, k, s[k]);
            if (p[EV_BIN_DIM + k] > 1 && s[k] >= size)
                FAIL("input %d stride %d (%d) is beyond its %lld elements", t + 1, k, s[k], size);
            last += (long long)(p[EV_BIN_DIM + k] - 1) * s[k];
            if (last >= size)
                FAIL("input %d is %lld bytes but the dims and strides read element %lld", t + 1, size, last);
        }
    }
    const long long block = p[EV_BIN_BLOCK];
    if (block < 1) FAIL("block is %lld, must be >= 1", block);
    return check_items(op, (total + block - 1) / block, err, errlen);
}

static int check_offset(const char *what, int32_t v, char *err, size_t errlen) {
    if (!in_range(v, -255, 255)) FAIL("%s %d is outside [-255, 255]", what, v);
    return 0;
}

int ev_check_add(const ev_op *op, char *err, size_t errlen) {
    TRY(check_binary(op, EV_ADD_NPARAMS, err, errlen));
    const int32_t *p = op->params;
    TRY(check_offset("input1 offset", p[EV_ADD_IN1_OFFSET], err, errlen));
    TRY(check_offset("input2 offset", p[EV_ADD_IN2_OFFSET], err, errlen));
    TRY(check_offset("output offset", p[EV_ADD_OUT_OFFSET], err, errlen));
    if (!in_range(p[EV_ADD_LEFT_SHIFT], 0, 20)) FAIL("left shift %d outside [0, 20]", p[EV_ADD_LEFT_SHIFT]);
    /* TFLite quantizes all three multipliers as "smaller than one": shift <= 0, so the sums stay in range */
    static const int mult_at[3] = {EV_ADD_IN1_MULT, EV_ADD_IN2_MULT, EV_ADD_OUT_MULT};
    static const char *const names[3] = {"input1", "input2", "output"};
    for (int i = 0; i < 3; i++) {
        if (p[mult_at[i]] < 0) FAIL("%s multiplier %d is negative", names[i], p[mult_at[i]]);
        if (!in_range(p[mult_at[i] + 1], -31, 0)) FAIL("%s shift %d outside [-31, 0]", names[i], p[mult_at[i] + 1]);
    }
    return check_act(p[EV_ADD_ACT_MIN], p[EV_ADD_ACT_MAX], -128, 127, err, errlen);
}

int ev_check_mul(const ev_op *op, char *err, size_t errlen) {
    TRY(check_binary(op, EV_MUL_NPARAMS, err, errlen));
    const int32_t *p = op->params;
    TRY(check_offset("input1 offset", p[EV_MUL_IN1_OFFSET], err, errlen));
    TRY(check_offset("input2 offset", p[EV_MUL_IN2_OFFSET], err, errlen));
    TRY(check_offset("output offset", p[EV_MUL_OUT_OFFSET], err, errlen));
    const long long b1 = 128 + (p[EV_MUL_IN1_OFFSET] < 0 ? -p[EV_MUL_IN1_OFFSET] : p[EV_MUL_IN1_OFFSET]);
    const long long b2 = 128 + (p[EV_MUL_IN2_OFFSET] < 0 ? -p[EV_MUL_IN2_OFFSET] : p[EV_MUL_IN2_OFFSET]);
    TRY(check_multiplier("output", p[EV_MUL_OUT_MULT], p[EV_MUL_OUT_SHIFT], b1 * b2, err, errlen));
    return check_act(p[EV_MUL_ACT_MIN], p[EV_MUL_ACT_MAX], -128, 127, err, errlen);
}

/* ---- pools ---------------------------------------------------------------------------------------------------- */

static int check_pool(const ev_op *op, char *err, size_t errlen) {
    TRY(check_counts(op, EV_POOL_NPARAMS, 2, err, errlen));
    const int32_t *p = op->params;
    static const char *const names[] = {"batch", "input height", "input width", "channels", "output height",
                                        "output width", "filter height", "filter width", "stride height",
                                        "stride width"};
    for (int i = EV_POOL_BATCH; i <= EV_POOL_STRIDE_W; i++)
        if (p[i] < 1) FAIL("%s is %d, must be >= 1", names[i], p[i]);
    if (p[EV_POOL_PAD_H] < 0 || p[EV_POOL_PAD_W] < 0)
        FAIL("padding %d x %d is negative", p[EV_POOL_PAD_H], p[EV_POOL_PAD_W]);
    long long in_dims[4] = {p[EV_POOL_BATCH], p[EV_POOL_IN_H], p[EV_POOL_IN_W], p[EV_POOL_CHANNELS]};
    long long out_dims[4] = {p[EV_POOL_BATCH], p[EV_POOL_OUT_H], p[EV_POOL_OUT_W], p[EV_POOL_CHANNELS]};
    long long in_n = 1, out_n = 1;
    for (int k = 0; k < 4; k++) {
        in_n *= in_dims[k];
        out_n *= out_dims[k];
        if (in_n > (1ll << 40) || out_n > (1ll << 40)) FAIL("tensors of more than 2^40 elements");
    }
    TRY(check_size(op, 0, in_n, "the input", err, errlen));
    TRY(check_size(op, 1, out_n, "the output", err, errlen));
    /* every window must hold at least one input cell: the first starts at -pad (> -filter) and the last at
     * (out - 1) * stride - pad (< in) */
    const long long fh = p[EV_POOL_FILTER_H], fw = p[EV_POOL_FILTER_W];
    const long long last_y = (long long)(p[EV_POOL_OUT_H] - 1) * p[EV_POOL_STRIDE_H] - p[EV_POOL_PAD_H];
    const long long last_x = (long long)(p[EV_POOL_OUT_W] - 1) * p[EV_POOL_STRIDE_W] - p[EV_POOL_PAD_W];
    if (p[EV_POOL_PAD_H] >= fh || p[EV_POOL_PAD_W] >= fw)
        FAIL("padding %d x %d leaves the first window outside the input (filter %lld x %lld)", p[EV_POOL_PAD_H],
             p[EV_POOL_PAD_W], fh, fw);
    if (last_y >= p[EV_POOL_IN_H] || last_x >= p[EV_POOL_IN_W])
        FAIL("the last window starts at (%lld, %lld), outside the %d x %d input", last_y, last_x, p[EV_POOL_IN_H],
             p[EV_POOL_IN_W]);
    if (last_y > INT32_MAX / 2 || last_x > INT32_MAX / 2) FAIL("window positions overflow an int");
    if (fh * fw > (1ll << 24)) FAIL("filter %lld x %lld is larger than 2^24 cells", fh, fw);
    TRY(check_act(p[EV_POOL_ACT_MIN], p[EV_POOL_ACT_MAX], -128, 127, err, errlen));
    return check_items(op, (long long)p[EV_POOL_BATCH] * p[EV_POOL_OUT_H], err, errlen);
}

int ev_check_average_pool_2d(const ev_op *op, char *err, size_t errlen) { return check_pool(op, err, errlen); }
int ev_check_max_pool_2d(const ev_op *op, char *err, size_t errlen) { return check_pool(op, err, errlen); }

/* ---- MEAN ----------------------------------------------------------------------------------------------------- */

int ev_check_mean(const ev_op *op, char *err, size_t errlen) {
    TRY(check_counts(op, EV_MEAN_NPARAMS, 2, err, errlen));
    const int32_t *p = op->params;
    long long total = 0;
    TRY(dims_product(p + EV_MEAN_DIM, EV_EW_DIMS, "the input", &total, err, errlen));
    long long count = 1, kept = 1;
    for (int k = 0; k < EV_EW_DIMS; k++) {
        const int32_t r = p[EV_MEAN_REDUCE + k];
        if (r != 0 && r != 1) FAIL("reduce flag %d is %d, must be 0 or 1", k, r);
        if (r) count *= p[EV_MEAN_DIM + k];
        else kept *= p[EV_MEAN_DIM + k];
    }
    TRY(check_size(op, 0, total, "the input", err, errlen));
    TRY(check_size(op, 1, kept, "the output", err, errlen));
    if (p[EV_MEAN_COUNT] != count) FAIL("count is %d, the reduced dims hold %lld", p[EV_MEAN_COUNT], count);
    if (count > (1ll << 23)) FAIL("%lld elements per mean: the int32 sum could overflow (at most 2^23)", count);
    if (!in_range(p[EV_MEAN_IN_ZP], -128, 127)) FAIL("input zero point %d outside int8", p[EV_MEAN_IN_ZP]);
    if (!in_range(p[EV_MEAN_OUT_ZP], -128, 127)) FAIL("output zero point %d outside int8", p[EV_MEAN_OUT_ZP]);
    TRY(check_multiplier("mean", p[EV_MEAN_MULT], p[EV_MEAN_SHIFT], 256 * count, err, errlen));
    return check_items(op, kept, err, errlen);
}

/* ---- PAD ------------------------------------------------------------------------------------------------------ */

int ev_check_pad(const ev_op *op, char *err, size_t errlen) {
    TRY(check_counts(op, EV_PAD_NPARAMS, 2, err, errlen));
    const int32_t *p = op->params;
    const int es = p[EV_PAD_ELEM_SIZE];
    if (es != 1 && es != 2 && es != 4) FAIL("element size %d, must be 1, 2 or 4", es);
    long long in_n = 0, out_n = 0, rows = 0;
    TRY(dims_product(p + EV_PAD_IN_DIM, EV_EW_DIMS, "the input", &in_n, err, errlen));
    TRY(dims_product(p + EV_PAD_OUT_DIM, EV_EW_DIMS, "the output", &out_n, err, errlen));
    TRY(dims_product(p + EV_PAD_OUT_DIM, EV_EW_DIMS - 1, "the output", &rows, err, errlen));
    for (int k = 0; k < EV_EW_DIMS; k++) {
        const long long before = p[EV_PAD_BEFORE + k], in = p[EV_PAD_IN_DIM + k], out = p[EV_PAD_OUT_DIM + k];
        if (before < 0 || before + in > out)
            FAIL("dimension %d: padding %lld before %lld input cells does not fit %lld output cells", k, before, in,
                 out);
    }
    TRY(check_size(op, 0, in_n * es, "the input", err, errlen));
    TRY(check_size(op, 1, out_n * es, "the output", err, errlen));
    return check_items(op, rows, err, errlen);
}

/* ---- COPY, CONCATENATION -------------------------------------------------------------------------------------- */

int ev_check_copy(const ev_op *op, char *err, size_t errlen) {
    TRY(check_counts(op, EV_COPY_NPARAMS, 2, err, errlen));
    const long long n = op->params[EV_COPY_BYTES], block = op->params[EV_COPY_BLOCK];
    if (n < 0) FAIL("byte count %lld is negative", n);
    if (block < 1) FAIL("block is %lld, must be >= 1", block);
    TRY(check_size(op, 0, n, "the input", err, errlen));
    TRY(check_size(op, 1, n, "the output", err, errlen));
    return check_items(op, (n + block - 1) / block, err, errlen);
}

int ev_check_concatenation(const ev_op *op, char *err, size_t errlen) {
    if (op->n_params < EV_CONCAT_CHUNK)
        FAIL("expected at least %d int32 params, got %d", EV_CONCAT_CHUNK, op->n_params);
    const int32_t *p = op->params;
    const int n = p[EV_CONCAT_INPUTS];
    if (!in_range(n, 1, EV_CONCAT_MAX_INPUTS)) FAIL("%d inputs, must be 1..%d", n, EV_CONCAT_MAX_INPUTS);
    TRY(check_counts(op, EV_CONCAT_NPARAMS(n), n + 1, err, errlen));
    const long long outer = p[EV_CONCAT_OUTER];
    if (outer < 1) FAIL("outer size %lld, must be >= 1", outer);
    const long long out_row = p[EV_CONCAT_OUT_ROW], at = p[EV_CONCAT_OUT_AT];
    if (out_row < 0 || at < 0) FAIL("output row %lld and offset %lld must be >= 0", out_row, at);
    long long row = 0;
    for (int i = 0; i < n; i++) {
        const long long chunk = p[EV_CONCAT_CHUNK + i];
        if (chunk < 0) FAIL("input %d row size %lld is negative", i, chunk);
        row += chunk;
    }
    if (at + row > out_row)
        FAIL("inputs of %lld bytes at offset %lld overflow the %lld-byte output row", row, at, out_row);
    if (out_row > 0 && outer > (1ll << 40) / out_row) FAIL("the output is larger than 2^40 bytes");
    for (int i = 0; i < n; i++) TRY(check_size(op, i, outer * p[EV_CONCAT_CHUNK + i], "an input", err, errlen));
    TRY(check_size(op, n, outer * out_row, "the output", err, errlen));
    return check_items(op, outer * n, err, errlen);
}

/* ---- QUANTIZE, DEQUANTIZE ------------------------------------------------------------------------------------- */

static float float_of(int32_t bits) {
    float f;
    uint32_t u = (uint32_t)bits;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int check_blocks(const ev_op *op, long long count, long long block, char *err, size_t errlen) {
    if (count < 0) FAIL("element count %lld is negative", count);
    if (block < 1) FAIL("block is %lld, must be >= 1", block);
    return check_items(op, (count + block - 1) / block, err, errlen);
}

static int zp_range(int type, long long *lo, long long *hi) {
    if (type == EV_TYPE_INT8) {
        *lo = -128;
        *hi = 127;
        return 0;
    }
    if (type == EV_TYPE_UINT8) {
        *lo = 0;
        *hi = 255;
        return 0;
    }
    return -1;
}

int ev_check_quantize(const ev_op *op, char *err, size_t errlen) {
    TRY(check_counts(op, EV_QUANT_NPARAMS, 2, err, errlen));
    const int32_t *p = op->params;
    const long long count = p[EV_QUANT_COUNT];
    TRY(check_blocks(op, count, p[EV_QUANT_BLOCK], err, errlen));
    long long olo, ohi, ilo, ihi;
    if (zp_range(p[EV_QUANT_OUT_TYPE], &olo, &ohi) != 0)
        FAIL("output type %d is not int8 or uint8", p[EV_QUANT_OUT_TYPE]);
    if (!in_range(p[EV_QUANT_OUT_ZP], olo, ohi)) FAIL("output zero point %d outside its type", p[EV_QUANT_OUT_ZP]);
    TRY(check_size(op, 1, count, "the output", err, errlen));
    if (p[EV_QUANT_MODE] == EV_QUANT_FROM_FLOAT) {
        if (p[EV_QUANT_IN_TYPE] != EV_TYPE_FLOAT32) FAIL("quantizing from float needs a float32 input type");
        const float s = float_of(p[EV_QUANT_SCALE_BITS]);
        if (!(isfinite(s) && s > 0)) FAIL("scale %g must be finite and > 0", (double)s);
        TRY(check_size(op, 0, count * 4, "the input", err, errlen));
        return check_aligned(op, 0, 4, err, errlen);
    }
    if (p[EV_QUANT_MODE] != EV_QUANT_REQUANT)
        FAIL("mode %d is neither from-float (0) nor requantize (1)", p[EV_QUANT_MODE]);
    if (zp_range(p[EV_QUANT_IN_TYPE], &ilo, &ihi) != 0) FAIL("input type %d is not int8 or uint8", p[EV_QUANT_IN_TYPE]);
    if (!in_range(p[EV_QUANT_IN_ZP], ilo, ihi)) FAIL("input zero point %d outside its type", p[EV_QUANT_IN_ZP]);
    TRY(check_size(op, 0, count, "the input", err, errlen));
    return check_multiplier("requantize", p[EV_QUANT_MULT], p[EV_QUANT_SHIFT], 383, err, errlen);
}

int ev_check_dequantize(const ev_op *op, char *err, size_t errlen) {
    TRY(check_counts(op, EV_DEQ_NPARAMS, 2, err, errlen));
    const int32_t *p = op->params;
    const long long count = p[EV_DEQ_COUNT];
    TRY(check_blocks(op, count, p[EV_DEQ_BLOCK], err, errlen));
    long long lo, hi;
    if (zp_range(p[EV_DEQ_IN_TYPE], &lo, &hi) != 0) FAIL("input type %d is not int8 or uint8", p[EV_DEQ_IN_TYPE]);
    if (!in_range(p[EV_DEQ_ZP], lo, hi)) FAIL("zero point %d outside the input type", p[EV_DEQ_ZP]);
    const float s = float_of(p[EV_DEQ_SCALE_BITS]);
    if (!(isfinite(s) && s > 0)) FAIL("scale %g must be finite and > 0", (double)s);
    TRY(check_size(op, 0, count, "the input", err, errlen));
    TRY(check_size(op, 1, count * 4, "the output", err, errlen));
    return check_aligned(op, 1, 4, err, errlen);
}
