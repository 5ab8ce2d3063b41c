/* Scalar reference kernels for the kinds of elementwise.h: the spec, bit-exact with TFLite's reference
 * kernels (BUILTIN_REF in LiteRT). Every kernel computes work items [begin, end) and trusts what
 * elementwise_check.c verified (params count, shapes against buffer sizes, value ranges). */
#include <math.h>
#include <string.h>

#include "elementwise.h"

/* ---- broadcasting binary ops -------------------------------------------------------------------------------- */

/* Walk output elements [start, stop) of a 6-D broadcast as runs along the innermost dimension. For each run the
 * statement given as the last argument runs with `n` (the run's length), `e` (its first output index), `o1`, `o2`
 * (the input offsets of its first element) and `in_s1`, `in_s2` (the inputs' innermost strides: element i of the
 * run reads input1[o1 + i * in_s1]). The first position is found by division, the next run's by an odometer
 * over the outer dims. */
#define EV_BIN_RUNS(op, start, stop, ...)                                                      \
    do {                                                                                       \
        const int32_t *dim_ = (op)->params + EV_BIN_DIM;                                       \
        const int32_t *s1_ = (op)->params + EV_BIN_STRIDE1;                                    \
        const int32_t *s2_ = (op)->params + EV_BIN_STRIDE2;                                    \
        const int L_ = EV_EW_DIMS - 1;                                                         \
        const long long in_s1 = s1_[L_], in_s2 = s2_[L_];                                      \
        int idx_[EV_EW_DIMS];                                                                  \
        long long rest_ = (start), o1 = 0, o2 = 0;                                             \
        for (int k_ = L_; k_ >= 0; k_--) {                                                     \
            idx_[k_] = (int)(rest_ % dim_[k_]);                                                \
            rest_ /= dim_[k_];                                                                 \
            o1 += (long long)idx_[k_] * s1_[k_];                                               \
            o2 += (long long)idx_[k_] * s2_[k_];                                               \
        }                                                                                      \
        for (long long e = (start); e < (stop);) {                                             \
            long long n = dim_[L_] - idx_[L_];                                                 \
            if (n > (stop) - e) n = (stop) - e;                                                \
            __VA_ARGS__;                                                                       \
            e += n;                                                                            \
            /* back to the row's start, then carry into the outer dimensions */                 \
            o1 -= (long long)idx_[L_] * in_s1;                                                 \
            o2 -= (long long)idx_[L_] * in_s2;                                                 \
            idx_[L_] = 0;                                                                      \
            for (int k_ = L_ - 1; k_ >= 0; k_--) {                                             \
                o1 += s1_[k_];                                                                 \
                o2 += s2_[k_];                                                                 \
                if (++idx_[k_] < dim_[k_]) break;                                              \
                o1 -= (long long)dim_[k_] * s1_[k_];                                           \
                o2 -= (long long)dim_[k_] * s2_[k_];                                           \
                idx_[k_] = 0;                                                                  \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static void bin_range(const ev_op *op, int begin, int end, long long *start, long long *stop) {
    const int32_t *p = op->params;
    long long total = 1;
    for (int k = 0; k < EV_EW_DIMS; k++) total *= p[EV_BIN_DIM + k];
    *start = (long long)begin * p[EV_BIN_BLOCK];
    *stop = (long long)end * p[EV_BIN_BLOCK];
    if (*stop > total) *stop = total;
}

/* ADD: TFLite reference_integer_ops::AddFunc. Both inputs are brought to a common scale (twice the larger
 * input scale) with 20 bits of headroom, summed, and rescaled to the output. */
void ev_add_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int8_t *in1 = op->tensors[0], *in2 = op->tensors[1];
    int8_t *out = op->tensors[2];
    const int32_t off1 = p[EV_ADD_IN1_OFFSET], off2 = p[EV_ADD_IN2_OFFSET], off_out = p[EV_ADD_OUT_OFFSET];
    const int left_shift = p[EV_ADD_LEFT_SHIFT];
    const int32_t m1 = p[EV_ADD_IN1_MULT], m2 = p[EV_ADD_IN2_MULT], mo = p[EV_ADD_OUT_MULT];
    const int sh1 = p[EV_ADD_IN1_SHIFT], sh2 = p[EV_ADD_IN2_SHIFT], sho = p[EV_ADD_OUT_SHIFT];
    const int32_t lo = p[EV_ADD_ACT_MIN], hi = p[EV_ADD_ACT_MAX];
    long long start, stop;
    bin_range(op, begin, end, &start, &stop);
    EV_BIN_RUNS(op, start, stop, {
        const int8_t *a_ = in1 + o1, *b_ = in2 + o2;
        int8_t *o_ = out + e;
        for (long long i = 0; i < n; i++) {
            /* x + offset is at most 383 in magnitude (the check bounds the offsets); << 20 leaves room for the sum */
            const int32_t a = (a_[i * in_s1] + off1) * (1 << left_shift);
            const int32_t b = (b_[i * in_s2] + off2) * (1 << left_shift);
            /* input multipliers are < 1 (shift <= 0): MultiplyByQuantizedMultiplierSmallerThanOneExp */
            const int32_t sa = ev_mbqm(a, m1, sh1);
            const int32_t sb = ev_mbqm(b, m2, sh2);
            const int32_t raw = ev_mbqm(sa + sb, mo, sho) + off_out;
            o_[i] = (int8_t)ev_clamp(raw, lo, hi);
        }
    });
}

/* MUL: TFLite reference_integer_ops::MulElementwise: the product of the zero-point-corrected inputs (at most
 * 255 * 255) times one multiplier (scale1 * scale2 / scale_out, computed in float32 by TFLite's Prepare). */
void ev_mul_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int8_t *in1 = op->tensors[0], *in2 = op->tensors[1];
    int8_t *out = op->tensors[2];
    const int32_t off1 = p[EV_MUL_IN1_OFFSET], off2 = p[EV_MUL_IN2_OFFSET], off_out = p[EV_MUL_OUT_OFFSET];
    const int32_t mult = p[EV_MUL_OUT_MULT];
    const int shift = p[EV_MUL_OUT_SHIFT];
    const int32_t lo = p[EV_MUL_ACT_MIN], hi = p[EV_MUL_ACT_MAX];
    long long start, stop;
    bin_range(op, begin, end, &start, &stop);
    EV_BIN_RUNS(op, start, stop, {
        const int8_t *a_ = in1 + o1, *b_ = in2 + o2;
        int8_t *o_ = out + e;
        for (long long i = 0; i < n; i++) {
            const int32_t prod = (a_[i * in_s1] + off1) * (b_[i * in_s2] + off2);
            const int32_t raw = ev_mbqm(prod, mult, shift) + off_out;
            o_[i] = (int8_t)ev_clamp(raw, lo, hi);
        }
    });
}

/* ---- pooling ------------------------------------------------------------------------------------------------ */

typedef struct {
    int in_h, in_w, ch, out_h, out_w, fh, fw, sh, sw, ph, pw;
    int32_t lo, hi;
} pool_geom;

static pool_geom pool_params(const int32_t *p) {
    pool_geom g = {p[EV_POOL_IN_H], p[EV_POOL_IN_W], p[EV_POOL_CHANNELS], p[EV_POOL_OUT_H], p[EV_POOL_OUT_W],
                   p[EV_POOL_FILTER_H], p[EV_POOL_FILTER_W], p[EV_POOL_STRIDE_H], p[EV_POOL_STRIDE_W],
                   p[EV_POOL_PAD_H], p[EV_POOL_PAD_W], p[EV_POOL_ACT_MIN], p[EV_POOL_ACT_MAX]};
    return g;
}

/* AVERAGE_POOL_2D: TFLite reference_integer_ops::AveragePool. The window is clipped to the input; the sum of
 * its cells is divided by their count, rounding half away from zero:
 *   acc > 0 ? (acc + count/2) / count : (acc - count/2) / count      (C division truncates toward zero) */
void ev_average_pool_2d_ref(const ev_op *op, int begin, int end, int thread) {
    const pool_geom g = pool_params(op->params);
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
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
            int8_t *o = out + (((size_t)b * g.out_h + oy) * g.out_w + ox) * g.ch;
            for (int c = 0; c < g.ch; c++) {
                int32_t acc = 0;
                for (int fy = fy0; fy < fy1; fy++) {
                    const int8_t *row = in + (((size_t)b * g.in_h + (iy0 + fy)) * g.in_w) * g.ch + c;
                    for (int fx = fx0; fx < fx1; fx++) acc += row[(size_t)(ix0 + fx) * g.ch];
                }
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                o[c] = (int8_t)ev_clamp(acc, g.lo, g.hi);
            }
        }
    }
}

/* MAX_POOL_2D: TFLite reference_integer_ops::MaxPool: the largest cell of the clipped window (starting from
 * -128), clamped to the activation range. */
void ev_max_pool_2d_ref(const ev_op *op, int begin, int end, int thread) {
    const pool_geom g = pool_params(op->params);
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    for (int item = begin; item < end; item++) {
        const int b = item / g.out_h, oy = item % g.out_h;
        const int iy0 = oy * g.sh - g.ph;
        const int fy0 = iy0 < 0 ? -iy0 : 0;
        const int fy1 = g.fh < g.in_h - iy0 ? g.fh : g.in_h - iy0;
        for (int ox = 0; ox < g.out_w; ox++) {
            const int ix0 = ox * g.sw - g.pw;
            const int fx0 = ix0 < 0 ? -ix0 : 0;
            const int fx1 = g.fw < g.in_w - ix0 ? g.fw : g.in_w - ix0;
            int8_t *o = out + (((size_t)b * g.out_h + oy) * g.out_w + ox) * g.ch;
            for (int c = 0; c < g.ch; c++) {
                int32_t m = -128;
                for (int fy = fy0; fy < fy1; fy++) {
                    const int8_t *row = in + (((size_t)b * g.in_h + (iy0 + fy)) * g.in_w) * g.ch + c;
                    for (int fx = fx0; fx < fx1; fx++) {
                        const int32_t v = row[(size_t)(ix0 + fx) * g.ch];
                        if (v > m) m = v;
                    }
                }
                o[c] = (int8_t)ev_clamp(m, g.lo, g.hi);
            }
        }
    }
}

/* ---- MEAN --------------------------------------------------------------------------------------------------- */

/* MEAN: TFLite reference_ops::QuantizedMeanOrSum (compute_sum = false). The int32 sum over the reduced dims,
 * minus in_zero_point * count, times the multiplier that folds input_scale / output_scale and 1 / count
 * (TFLite: shift = min(floor(log2(count)), 32, 31 + shift0); mult = (mult0 << shift) / count; shift0 -= shift),
 * plus the output zero point, clamped to int8. */
void ev_mean_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int8_t *in = op->tensors[0];
    int8_t *out = op->tensors[1];
    const int32_t *dim = p + EV_MEAN_DIM, *red = p + EV_MEAN_REDUCE;
    long long stride[EV_EW_DIMS];
    long long s = 1;
    for (int k = EV_EW_DIMS - 1; k >= 0; k--) {
        stride[k] = s;
        s *= dim[k];
    }
    const int32_t count = p[EV_MEAN_COUNT], in_zp = p[EV_MEAN_IN_ZP], out_zp = p[EV_MEAN_OUT_ZP];
    const int32_t mult = p[EV_MEAN_MULT];
    const int shift = p[EV_MEAN_SHIFT];
    for (int item = begin; item < end; item++) {
        /* the output element's position in the kept dims, innermost fastest */
        long long rest = item, base = 0;
        for (int k = EV_EW_DIMS - 1; k >= 0; k--) {
            if (red[k]) continue;
            base += (rest % dim[k]) * stride[k];
            rest /= dim[k];
        }
        /* sum over the reduced dims with an odometer */
        int idx[EV_EW_DIMS] = {0};
        long long off = base;
        int32_t sum = 0;
        for (;;) {
            sum += in[off];
            int k = EV_EW_DIMS - 1;
            for (; k >= 0; k--) {
                if (!red[k]) continue;
                off += stride[k];
                if (++idx[k] < dim[k]) break;
                off -= (long long)dim[k] * stride[k];
                idx[k] = 0;
            }
            if (k < 0) break;
        }
        /* TFLite: static_cast<int32>(temp_sum - input_zero_point * num_elements_in_axis) */
        const int32_t shifted = (int32_t)((int64_t)sum - (int64_t)in_zp * count);
        const int32_t v = ev_mbqm(shifted, mult, shift) + out_zp;
        out[item] = (int8_t)ev_clamp(v, -128, 127);
    }
}

/* ---- PAD ---------------------------------------------------------------------------------------------------- */

static void fill_value(uint8_t *dst, long long n, int elem_size, const uint8_t *value) {
    if (elem_size == 1) {
        memset(dst, value[0], (size_t)n);
        return;
    }
    for (long long i = 0; i < n; i++) memcpy(dst + i * elem_size, value, (size_t)elem_size);
}

/* PAD / PADV2: TFLite reference_ops::Pad: every output cell outside [before, before + in_dim) in some
 * dimension is the pad value, every other cell is the next input cell in order. */
void ev_pad_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int32_t *in_dim = p + EV_PAD_IN_DIM, *before = p + EV_PAD_BEFORE, *out_dim = p + EV_PAD_OUT_DIM;
    const int es = p[EV_PAD_ELEM_SIZE];
    const uint32_t pv = (uint32_t)p[EV_PAD_VALUE];
    const uint8_t value[4] = {(uint8_t)pv, (uint8_t)(pv >> 8), (uint8_t)(pv >> 16), (uint8_t)(pv >> 24)};
    const uint8_t *in = op->tensors[0];
    uint8_t *out = op->tensors[1];
    const int L = EV_EW_DIMS - 1; /* the row dimension */
    const long long out_row = (long long)out_dim[L] * es, in_row = (long long)in_dim[L] * es;
    for (int item = begin; item < end; item++) {
        uint8_t *o = out + (long long)item * out_row;
        /* position of this output row in dims 0..L-1, and the input row it copies, if any */
        long long rest = item, in_index = 0, in_mul = 1;
        int inside = 1;
        for (int k = L - 1; k >= 0; k--) {
            const int c = (int)(rest % out_dim[k]) - before[k];
            rest /= out_dim[k];
            if (c < 0 || c >= in_dim[k]) inside = 0;
            in_index += (long long)c * in_mul;
            in_mul *= in_dim[k];
        }
        if (!inside) {
            fill_value(o, out_dim[L], es, value);
            continue;
        }
        const long long left = (long long)before[L] * es;
        fill_value(o, before[L], es, value);
        memcpy(o + left, in + in_index * in_row, (size_t)in_row);
        fill_value(o + left + in_row, out_dim[L] - before[L] - in_dim[L], es, value);
    }
}

/* ---- COPY, CONCATENATION ------------------------------------------------------------------------------------- */

/* COPY: RESHAPE, SQUEEZE and EXPAND_DIMS keep the bytes (TFLite memcpy). */
void ev_copy_ref(const ev_op *op, int begin, int end, int thread) {
    const long long n = op->params[EV_COPY_BYTES], block = op->params[EV_COPY_BLOCK];
    long long a = begin * block, b = end * block;
    if (b > n) b = n;
    if (op->tensors[0] != op->tensors[1] && b > a)
        memcpy((uint8_t *)op->tensors[1] + a, (const uint8_t *)op->tensors[0] + a, (size_t)(b - a));
}

/* CONCATENATION: TFLite reference_ops::Concatenation: output row r = input rows r of each input in order. */
void ev_concatenation_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int n = p[EV_CONCAT_INPUTS];
    const long long out_row = p[EV_CONCAT_OUT_ROW];
    uint8_t *out = op->tensors[n];
    for (int item = begin; item < end; item++) {
        const int r = item / n, i = item % n;
        long long at = p[EV_CONCAT_OUT_AT];
        for (int j = 0; j < i; j++) at += p[EV_CONCAT_CHUNK + j];
        const long long chunk = p[EV_CONCAT_CHUNK + i];
        memcpy(out + r * out_row + at, (const uint8_t *)op->tensors[i] + r * chunk, (size_t)chunk);
    }
}

/* ---- QUANTIZE, DEQUANTIZE ----------------------------------------------------------------------------------- */

static float bits_to_float(int32_t bits) {
    float f;
    uint32_t u = (uint32_t)bits;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* float -> int32 as TFLite's static_cast<int32_t>(TfLiteRound(x)), with the out-of-range cases (undefined
 * in C++) saturating as on ARM. */
static int32_t round_to_int32(float x) {
    const float r = roundf(x); /* std::round: half away from zero */
    if (r != r) return 0;
    if (r >= 2147483648.0f) return INT32_MAX;
    if (r < -2147483648.0f) return INT32_MIN;
    return (int32_t)r;
}

/* QUANTIZE: float32 -> int8/uint8 is TFLite reference_ops::AffineQuantize:
 *   clamp(static_cast<int32>(round(x / scale)) + zero_point)      (x / scale in float32)
 * int8/uint8 -> int8/uint8 is TFLite reference_ops::Requantize:
 *   clamp(MBQM(x - in_zero_point, mult, shift) + out_zero_point)
 * (TFLite's int8<->uint8 "xor 0x80" fast path gives the same bytes as this formula.) */
void ev_quantize_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const long long n = p[EV_QUANT_COUNT], block = p[EV_QUANT_BLOCK];
    long long a = begin * block, b = end * block;
    if (b > n) b = n;
    const int out_u8 = p[EV_QUANT_OUT_TYPE] == EV_TYPE_UINT8;
    const int32_t lo = out_u8 ? 0 : -128, hi = out_u8 ? 255 : 127;
    const int32_t out_zp = p[EV_QUANT_OUT_ZP];
    int8_t *out8 = op->tensors[1];
    uint8_t *outu = op->tensors[1];
    if (p[EV_QUANT_MODE] == EV_QUANT_FROM_FLOAT) {
        const float *in = op->tensors[0];
        const float scale = bits_to_float(p[EV_QUANT_SCALE_BITS]);
        for (long long i = a; i < b; i++) {
            const int32_t q = round_to_int32(in[i] / scale);
            /* q + zero_point in int64: the saturated extremes must not wrap */
            const int64_t v = (int64_t)q + out_zp;
            const int32_t c = v < lo ? lo : (v > hi ? hi : (int32_t)v);
            if (out_u8) outu[i] = (uint8_t)c;
            else out8[i] = (int8_t)c;
        }
        return;
    }
    const int in_u8 = p[EV_QUANT_IN_TYPE] == EV_TYPE_UINT8;
    const int8_t *in8 = op->tensors[0];
    const uint8_t *inu = op->tensors[0];
    const int32_t in_zp = p[EV_QUANT_IN_ZP], mult = p[EV_QUANT_MULT];
    const int shift = p[EV_QUANT_SHIFT];
    for (long long i = a; i < b; i++) {
        const int32_t x = (in_u8 ? (int32_t)inu[i] : (int32_t)in8[i]) - in_zp;
        const int32_t c = ev_clamp(ev_mbqm(x, mult, shift) + out_zp, lo, hi);
        if (out_u8) outu[i] = (uint8_t)c;
        else out8[i] = (int8_t)c;
    }
}

/* DEQUANTIZE: TFLite reference_integer_ops::Dequantize: static_cast<float>(double(scale) * (x - zero_point)),
 * the product in double, rounded once to float. */
void ev_dequantize_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const long long n = p[EV_DEQ_COUNT], block = p[EV_DEQ_BLOCK];
    long long a = begin * block, b = end * block;
    if (b > n) b = n;
    const double scale = (double)bits_to_float(p[EV_DEQ_SCALE_BITS]);
    const int32_t zp = p[EV_DEQ_ZP];
    const int in_u8 = p[EV_DEQ_IN_TYPE] == EV_TYPE_UINT8;
    const int8_t *in8 = op->tensors[0];
    const uint8_t *inu = op->tensors[0];
    float *out = op->tensors[1];
    for (long long i = a; i < b; i++) {
        const int32_t x = in_u8 ? (int32_t)inu[i] : (int32_t)in8[i];
        out[i] = (float)(scale * (double)(x - zp));
    }
}
