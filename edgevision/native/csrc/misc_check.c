/* Checks for RELU, TANH, PRELU and TRANSPOSE (layouts: misc.h). Once a check passes, the kernel cannot read or
 * write outside its tensors whatever the params say, and its arithmetic has no undefined behaviour (no int32
 * overflow: the shifts are bounded so every requantised value stays well inside int32). The engine has already
 * verified each tensor range lies in its block. */
#include <stdarg.h>
#include <stdio.h>

#include "misc.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

#define TRY(x)                  \
    do {                        \
        if ((x) != 0) return -1; \
    } while (0)

static int expect_counts(const ev_op *op, int n_params, int n_tensors, char *err, size_t errlen) {
    if (op->n_params != n_params)
        return fail(err, errlen, "expected %d int32 params, got %d", n_params, op->n_params);
    if (op->n_tensors != n_tensors)
        return fail(err, errlen, "expected %d tensors, got %d", n_tensors, op->n_tensors);
    return 0;
}

static int expect_bytes(const ev_op *op, int t, const char *what, unsigned long long need, char *err,
                        size_t errlen) {
    if ((unsigned long long)op->sizes[t] < need)
        return fail(err, errlen, "tensor %d (%s) has %zu bytes, needs %llu", t, what, op->sizes[t], need);
    return 0;
}

/* n elements in blocks of `block`: items must be ceil(n / block) */
static int expect_blocks(const ev_op *op, long long n, long long block, char *err, size_t errlen) {
    if (n < 0) return fail(err, errlen, "negative element count %lld", n);
    if (block < 1) return fail(err, errlen, "block size %lld, must be >= 1", block);
    const long long items = (n + block - 1) / block;
    if ((long long)op->items != items)
        return fail(err, errlen, "%d items for %lld elements in blocks of %lld, expected %lld", op->items, n, block,
                    items);
    return 0;
}

static int expect_zp(const char *what, int32_t zp, char *err, size_t errlen) {
    if (zp < -128 || zp > 127) return fail(err, errlen, "%s zero point %d outside int8", what, zp);
    return 0;
}

/* a multiplier and shift for values of magnitude up to `bound`: mult >= 0 (TFLite's QuantizeMultiplier never
 * makes a negative one), -31 <= shift, and bound * 2^shift < 2^31 - 256 so that the left-shifted value, the
 * high multiply's result and the zero point added to it all stay in int32 */
static int expect_multiplier(const char *what, int32_t mult, int32_t shift, long long bound, char *err,
                             size_t errlen) {
    if (mult < 0) return fail(err, errlen, "%s multiplier %d is negative", what, mult);
    if (shift < -31 || shift > 30) return fail(err, errlen, "%s shift %d outside [-31, 30]", what, shift);
    if (shift > 0 && (bound << shift) >= (1ll << 31) - 256)
        return fail(err, errlen, "%s shift %d overflows int32 for values up to %lld", what, shift, bound);
    return 0;
}

/* dims[0..5] each >= 1, product (returned in *total) at most 2^40 */
static int expect_dims(const int32_t *dims, const char *what, long long *total, char *err, size_t errlen) {
    long long n = 1;
    for (int k = 0; k < EV_MISC_DIMS; k++) {
        if (dims[k] < 1) return fail(err, errlen, "%s dimension %d is %d, must be >= 1", what, k, dims[k]);
        n *= dims[k];
        if (n > (1ll << 40)) return fail(err, errlen, "%s has more than 2^40 elements", what);
    }
    *total = n;
    return 0;
}

/* ---- RELU ------------------------------------------------------------------------------------------------- */

int ev_check_relu(const ev_op *op, char *err, size_t errlen) {
    TRY(expect_counts(op, EV_RELU_NPARAMS, 2, err, errlen));
    const int32_t *p = op->params;
    const int32_t n = p[EV_RELU_N];
    TRY(expect_blocks(op, n, p[EV_RELU_BLOCK], err, errlen));
    TRY(expect_bytes(op, 0, "input", (unsigned long long)n, err, errlen));
    TRY(expect_bytes(op, 1, "output", (unsigned long long)n, err, errlen));
    TRY(expect_zp("input", p[EV_RELU_IN_ZP], err, errlen));
    TRY(expect_zp("output", p[EV_RELU_OUT_ZP], err, errlen));
    TRY(expect_multiplier("output", p[EV_RELU_MULT], p[EV_RELU_SHIFT], 255, err, errlen));
    const int32_t lo = p[EV_RELU_ACT_MIN], hi = p[EV_RELU_ACT_MAX];
    if (lo < -128 || hi > 127 || lo > hi)
        return fail(err, errlen, "activation range [%d, %d] must satisfy -128 <= min <= max <= 127", lo, hi);
    return 0;
}

/* ---- TANH ------------------------------------------------------------------------------------------------- */

int ev_check_tanh(const ev_op *op, char *err, size_t errlen) {
    TRY(expect_counts(op, EV_TANH_NPARAMS, 3, err, errlen));
    const int32_t n = op->params[EV_TANH_N];
    TRY(expect_blocks(op, n, op->params[EV_TANH_BLOCK], err, errlen));
    if (op->sizes[1] != EV_TANH_TABLE_SIZE)
        return fail(err, errlen, "lookup table has %zu bytes, expected %d", op->sizes[1], EV_TANH_TABLE_SIZE);
    TRY(expect_bytes(op, 0, "input", (unsigned long long)n, err, errlen));
    TRY(expect_bytes(op, 2, "output", (unsigned long long)n, err, errlen));
    return 0;
}

/* ---- PRELU ------------------------------------------------------------------------------------------------ */

int ev_check_prelu(const ev_op *op, char *err, size_t errlen) {
    TRY(expect_counts(op, EV_PRELU_NPARAMS, 3, err, errlen));
    const int32_t *p = op->params;
    long long total = 0;
    TRY(expect_dims(p + EV_PRELU_DIM, "the input", &total, err, errlen));
    TRY(expect_blocks(op, total, p[EV_PRELU_BLOCK], err, errlen));
    TRY(expect_bytes(op, 0, "input", (unsigned long long)total, err, errlen));
    TRY(expect_bytes(op, 2, "output", (unsigned long long)total, err, errlen));
    /* the farthest alpha element any output element reads: sum of (dim - 1) * stride (each term < 2^59) */
    long long last = 0;
    for (int k = 0; k < EV_MISC_DIMS; k++) {
        const int32_t s = p[EV_PRELU_ALPHA_STRIDE + k];
        if (s < 0) return fail(err, errlen, "alpha stride %d is %d, must be >= 0", k, s);
        if (s > (1 << 28)) return fail(err, errlen, "alpha stride %d is %d, larger than 2^28", k, s);
        last += (long long)(p[EV_PRELU_DIM + k] - 1) * s;
    }
    TRY(expect_bytes(op, 1, "alpha", (unsigned long long)last + 1, err, errlen));
    TRY(expect_zp("input", p[EV_PRELU_IN_ZP], err, errlen));
    TRY(expect_zp("alpha", p[EV_PRELU_ALPHA_ZP], err, errlen));
    TRY(expect_zp("output", p[EV_PRELU_OUT_ZP], err, errlen));
    /* identity branch: 0 <= x <= 255; alpha branch: |x * (alpha - alpha_zp)| <= 255 * 255 */
    TRY(expect_multiplier("identity", p[EV_PRELU_MULT1], p[EV_PRELU_SHIFT1], 255, err, errlen));
    TRY(expect_multiplier("alpha", p[EV_PRELU_MULT2], p[EV_PRELU_SHIFT2], 255 * 255, err, errlen));
    return 0;
}

/* ---- TRANSPOSE -------------------------------------------------------------------------------------------- */

int ev_check_transpose(const ev_op *op, char *err, size_t errlen) {
    TRY(expect_counts(op, EV_TRANSPOSE_NPARAMS, 2, err, errlen));
    const int32_t *p = op->params;
    long long total = 0;
    TRY(expect_dims(p + EV_TRANSPOSE_IN_DIM, "the input", &total, err, errlen));
    /* perm must name each input dimension exactly once: then the output has the input's elements, each
     * output element reads a distinct input element, and every input index stays inside its dimension */
    int seen[EV_MISC_DIMS] = {0};
    for (int k = 0; k < EV_MISC_DIMS; k++) {
        const int32_t d = p[EV_TRANSPOSE_PERM + k];
        if (d < 0 || d >= EV_MISC_DIMS)
            return fail(err, errlen, "perm[%d] is %d, must be 0..%d", k, d, EV_MISC_DIMS - 1);
        if (seen[d]++) return fail(err, errlen, "perm names dimension %d twice: not a permutation", d);
    }
    const int32_t es = p[EV_TRANSPOSE_ELEM_SIZE];
    if (es != 1 && es != 2 && es != 4) return fail(err, errlen, "element size %d, must be 1, 2 or 4", es);
    TRY(expect_blocks(op, total, p[EV_TRANSPOSE_BLOCK], err, errlen));
    TRY(expect_bytes(op, 0, "input", (unsigned long long)total * es, err, errlen));
    TRY(expect_bytes(op, 1, "output", (unsigned long long)total * es, err, errlen));
    return 0;
}
