/* Scalar reference kernels for SOFTMAX, LOGISTIC, HARD_SWISH, RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR
 * (int8). The spec: every variant must give these bytes. Params and tensor layouts: activation.h. The
 * arithmetic is TFLite's BUILTIN_REF kernels' (LiteRT 2.x), step by step, with the TFLite/gemmlowp function
 * each step reproduces named in the comments. Integer overflow that TFLite leaves to two's-complement
 * wrapping is done here in unsigned arithmetic (defined behaviour, same bits). */
#include <string.h>

#include "activation.h"

/* int32 addition wrapping like TFLite's raw int32 adds (gemmlowp Add). */
static inline int32_t wadd32(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* ---- SOFTMAX ------------------------------------------------------------------------------------------- */

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: exp(a) for a in [-1/4, 0), both Q0.31.
 * A Taylor expansion around -1/8: with x = a + 1/8,
 *   exp(a) = exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24)
 * evaluated as c + c * (x + ((x^4/4 + x^3) / 3 + x^2) / 2) with c = exp(-1/8). */
static int32_t exp_on_interval_q0(int32_t a) {
    const int32_t constant_term = 1895147668;  /* exp(-1/8) in Q0.31 */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = wadd32(a, 1 << 28);      /* + 1/8 */
    const int32_t x2 = ev_srdhm(x, x);
    const int32_t x3 = ev_srdhm(x2, x);
    const int32_t x4 = ev_srdhm(x2, x2);
    const int32_t x4_over_4 = ev_rdbpot(x4, 2);
    const int32_t poly = ev_rdbpot(wadd32(ev_srdhm(wadd32(x4_over_4, x3), constant_1_over_3), x2), 1);
    return wadd32(constant_term, ev_srdhm(constant_term, wadd32(x, poly)));
}

/* gemmlowp exp_on_negative_values for a Q5.26 input a <= 0 (kIntegerBits = 5): result Q0.31.
 * a = (a mod 1/4 - 1/4) - r with r a sum of powers of two >= 1/4: exp of the first part by the polynomial,
 * then one multiply by the constant exp(-2^k) for each bit 2^k (k = -2..4) set in r. a == 0 gives the
 * Q0.31 "one" (INT32_MAX). No clamp at -32 (gemmlowp only clamps with more than 5 integer bits). */
static int32_t exp_on_negative_values_q5(int32_t a) {
    const int32_t one_quarter = 1 << 24;       /* 1/4 in Q5.26 */
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    /* Rescale<0>: Q5.26 -> Q0.31 is a saturating left shift by 5 */
    int32_t result = exp_on_interval_q0(ev_act_sat_shl32(a_mod_quarter_minus_one_quarter, 5));
    const int32_t remainder = (int32_t)((uint32_t)a_mod_quarter_minus_one_quarter - (uint32_t)a);
    /* barrel shifter: bit (26 + k) of the remainder is 2^k in Q5.26; multiply by exp(-2^k) in Q0.31 */
    if (remainder & (1 << 24)) result = ev_srdhm(result, 1672461947); /* exp(-1/4) */
    if (remainder & (1 << 25)) result = ev_srdhm(result, 1302514674); /* exp(-1/2) */
    if (remainder & (1 << 26)) result = ev_srdhm(result, 790015084);  /* exp(-1) */
    if (remainder & (1 << 27)) result = ev_srdhm(result, 290630308);  /* exp(-2) */
    if (remainder & (1 << 28)) result = ev_srdhm(result, 39332535);   /* exp(-4) */
    if (remainder & (1 << 29)) result = ev_srdhm(result, 720401);     /* exp(-8) */
    if (remainder & (1 << 30)) result = ev_srdhm(result, 242);        /* exp(-16) */
    if (a == 0) result = INT32_MAX;
    return result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a in [0, 1), Q0.31 in and out. Newton-Raphson
 * on the half denominator d = (1 + a) / 2 (Q0.31) with x in Q2.29: x0 = 48/17 - 32/17 * d, then three times
 * x += x * (1 - d * x); the result is x / 2. */
static int32_t one_over_one_plus_x_q0(int32_t a) {
    /* RoundingHalfSum(a, one): (a + INT32_MAX) / 2 rounded half away from zero, in 64 bits */
    const int64_t s = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
    const int32_t constant_48_over_17 = 1515870810;   /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
    int32_t x = wadd32(constant_48_over_17, ev_srdhm(half_denominator, constant_neg_32_over_17));
    for (int i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = ev_srdhm(half_denominator, x);     /* Q2.29 */
        const int32_t one_minus = (int32_t)((uint32_t)(1 << 29) - (uint32_t)half_denominator_times_x);
        /* x * one_minus is Q4.27; Rescale<2> is a saturating left shift by 2 */
        x = wadd32(x, ev_act_sat_shl32(ev_srdhm(x, one_minus), 2));
    }
    /* ExactMulByPot<-1> (Q2.29 read as Q1.30), then Rescale<0>: saturating left shift by 1 */
    return ev_act_sat_shl32(x, 1);
}

/* MultiplyByQuantizedMultiplierGreaterThanOne (double rounding), then exp: the row element's exp(beta * s *
 * diff) in Q0.31. The check guarantees diff * 2^left_shift fits int32 for every diff >= diff_min. */
static inline int32_t softmax_exp(int32_t diff, int32_t multiplier, int left_shift) {
    const int32_t shifted = (int32_t)((int64_t)diff * ((int64_t)1 << left_shift));
    return exp_on_negative_values_q5(ev_srdhm(shifted, multiplier)); /* input is Q5.26 */
}

void ev_softmax_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int depth = p[EV_SOFTMAX_DEPTH];
    const int32_t multiplier = p[EV_SOFTMAX_MULT];
    const int left_shift = p[EV_SOFTMAX_LEFT_SHIFT];
    const int32_t diff_min = p[EV_SOFTMAX_DIFF_MIN];
    const int8_t *input = (const int8_t *)op->tensors[0];
    int8_t *output = (int8_t *)op->tensors[1];
    for (int row = begin; row < end; row++) {
        const int8_t *x = input + (size_t)row * (size_t)depth;
        int8_t *y = output + (size_t)row * (size_t)depth;
        int32_t max_in_row = -128;
        for (int c = 0; c < depth; c++)
            if (x[c] > max_in_row) max_in_row = x[c];

        /* sum of exps in Q12.19: each Q0.31 exp Rescale<12>d (rounding divide by 2^12), added with int32
         * wrap-around as TFLite's adds (only rows of >= 4096 elements can wrap) */
        uint32_t sum = 0;
        for (int c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) sum += (uint32_t)ev_rdbpot(softmax_exp(diff, multiplier, left_shift), 12);
        }

        /* GetReciprocal(sum, 12): normalise sum to [1, 2) by its leading zeros; 1 / (1 + (sum' - 1)) in Q0.31
         * and num_bits_over_unit = 12 - leading zeros */
        const int headroom_plus_one = sum ? __builtin_clz(sum) : 32;
        const int num_bits_over_unit = 12 - headroom_plus_one;
        const uint32_t normalised = headroom_plus_one < 32 ? sum << headroom_plus_one : 0;
        const int32_t shifted_sum_minus_one = (int32_t)(normalised - 0x80000000u);
        const int32_t shifted_scale = one_over_one_plus_x_q0(shifted_sum_minus_one);

        /* output = exp * shifted_scale / 2^exponent, on the 1/256 scale. TFLite CHECKs 0 <= exponent <= 31
         * and aborts beyond; that needs sum >= 2^28, i.e. >= 512 (in real terms) of the row's exps: e.g. 512+
         * equal maxima. We saturate the shift at 31 there instead of aborting. */
        int exponent = num_bits_over_unit + 31 - 8;
        if (exponent > 31) exponent = 31;
        for (int c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t e = softmax_exp(diff, multiplier, left_shift);
                const int32_t unsat = ev_rdbpot(ev_srdhm(shifted_scale, e), exponent);
                int32_t v = unsat - 128;
                y[c] = (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
            } else {
                y[c] = -128;
            }
        }
    }
}

/* ---- LOGISTIC: a 256-entry lookup, indexed by the input byte ------------------------------------------- */

void ev_logistic_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const size_t n = (size_t)p[EV_LOGISTIC_N], block = (size_t)p[EV_LOGISTIC_BLOCK];
    const uint8_t *input = (const uint8_t *)op->tensors[0];
    const uint8_t *table = (const uint8_t *)op->tensors[1];
    uint8_t *output = (uint8_t *)op->tensors[2];
    const size_t lo = (size_t)begin * block;
    const size_t hi = (size_t)end * block < n ? (size_t)end * block : n;
    for (size_t i = lo; i < hi; i++) output[i] = table[input[i]];
}

/* ---- HARD_SWISH: reference_ops::HardSwish<int8_t>, 16-bit fixed point ---------------------------------- */

void ev_hard_swish_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const size_t n = (size_t)p[EV_HARD_SWISH_N], block = (size_t)p[EV_HARD_SWISH_BLOCK];
    const int32_t in_zp = p[EV_HARD_SWISH_IN_ZP], out_zp = p[EV_HARD_SWISH_OUT_ZP];
    const int16_t out_mult = (int16_t)p[EV_HARD_SWISH_OUT_MULT];
    const int out_exp = p[EV_HARD_SWISH_OUT_EXP];
    const int16_t relu_mult = (int16_t)p[EV_HARD_SWISH_RELU_MULT];
    const int relu_exp = p[EV_HARD_SWISH_RELU_EXP];
    const int8_t *input = (const int8_t *)op->tensors[0];
    int8_t *output = (int8_t *)op->tensors[1];
    const size_t lo = (size_t)begin * block;
    const size_t hi = (size_t)end * block < n ? (size_t)end * block : n;
    for (size_t i = lo; i < hi; i++) {
        const int16_t input_value = (int16_t)(input[i] - in_zp);        /* [-255, 255] */
        /* on the "hires" input scale input_scale / 128: x * 2^7 (fits int16) */
        const int16_t hires = (int16_t)(input_value * (1 << 7));
        /* x on the output scale, before the output shift */
        const int16_t preshift_output_scale = ev_act_srdhm16(hires, out_mult);
        /* the "relu-ish" value: x rescaled so that 3.0 is 32768, saturating; i.e. hires * relu_mult * 2^relu_exp
         * with the left shift split as (relu_exp - 1) before and 1 after the multiply, saturating both times */
        int16_t reluish = hires;
        if (relu_exp > 0) reluish = ev_act_sat_shl16(reluish, relu_exp - 1);
        reluish = ev_act_srdhm16(reluish, relu_mult);
        if (relu_exp > 0) reluish = ev_act_sat_shl16(reluish, 1);
        if (relu_exp < 0) reluish = ev_act_rdbpot16(reluish, -relu_exp);
        /* [-1, 1] -> [0, 1] in Q0.15: (r + 2^15) >> 1 */
        reluish = (int16_t)((reluish + (1 << 15)) >> 1);
        /* x * relu6(x + 3) / 6 on the pre-shift output scale: truncating doubling high multiply */
        const int16_t preshift_output = ev_act_sdhm16(reluish, preshift_output_scale);
        int16_t out = ev_act_rdbpot16(preshift_output, -out_exp);
        /* + zero point in int16, wrapping as TFLite's int16_t += does, then clamp to int8 */
        out = (int16_t)(uint16_t)((uint16_t)out + (uint16_t)out_zp);
        if (out > 127) out = 127;
        if (out < -128) out = -128;
        output[i] = (int8_t)out;
    }
}

/* ---- RESIZE_BILINEAR: reference_ops::ResizeBilinearInteger<int8_t> ------------------------------------- */

void ev_resize_bilinear_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int32_t in_h = p[EV_RESIZE_IN_H], in_w = p[EV_RESIZE_IN_W], depth = p[EV_RESIZE_DEPTH];
    const int32_t out_h = p[EV_RESIZE_OUT_H], out_w = p[EV_RESIZE_OUT_W];
    const int align = p[EV_RESIZE_ALIGN_CORNERS], half = p[EV_RESIZE_HALF_PIXEL_CENTERS];
    const int8_t *input = (const int8_t *)op->tensors[0];
    int8_t *output = (int8_t *)op->tensors[1];
    const int32_t scale_h = ev_act_resize_scale10(in_h, out_h, align);
    const int32_t scale_w = ev_act_resize_scale10(in_w, out_w, align);
    const size_t row_stride = (size_t)in_w * (size_t)depth;
    for (int item = begin; item < end; item++) {
        const int b = item / out_h, y = item % out_h;
        int32_t input_y, y0, y1;
        ev_act_resize_pos(y, scale_h, half, in_h, &input_y, &y0, &y1);
        const int64_t dy = input_y - (1 << 10) * y0; /* weight of row y1, in 1/1024 (may be < 0 or > 1024 at
                                                        the borders with half_pixel_centers, as in TFLite) */
        const int8_t *row0 = input + ((size_t)b * (size_t)in_h + (size_t)y0) * row_stride;
        const int8_t *row1 = input + ((size_t)b * (size_t)in_h + (size_t)y1) * row_stride;
        int8_t *out = output + ((size_t)b * (size_t)out_h + (size_t)y) * (size_t)out_w * (size_t)depth;
        for (int32_t x = 0; x < out_w; x++) {
            int32_t input_x, x0, x1;
            ev_act_resize_pos(x, scale_w, half, in_w, &input_x, &x0, &x1);
            const int64_t dx = input_x - (1 << 10) * x0;
            const int8_t *ll = row0 + (size_t)x0 * depth, *lu = row1 + (size_t)x0 * depth;
            const int8_t *rl = row0 + (size_t)x1 * depth, *ru = row1 + (size_t)x1 * depth;
            for (int32_t c = 0; c < depth; c++) {
                /* 20-bit fixed point sum of the four corners, each value * weight_y * weight_x */
                const int64_t output_20 = (int64_t)ll[c] * ((1 << 10) - dy) * ((1 << 10) - dx) +
                                          (int64_t)lu[c] * dy * ((1 << 10) - dx) +
                                          (int64_t)rl[c] * ((1 << 10) - dy) * dx + (int64_t)ru[c] * dy * dx;
                /* round half away from zero (0 rounds with -2^19), truncating division by 2^20 */
                const int64_t round = output_20 > 0 ? (1 << 19) : -(1 << 19);
                /* static_cast<int8_t>: wraps (a convex combination never leaves the int8 range) */
                out[(size_t)x * depth + c] = (int8_t)(uint8_t)(uint64_t)((output_20 + round) / (1 << 20));
            }
        }
    }
}

/* ---- RESIZE_NEAREST_NEIGHBOR: copy the pixel the index table names -------------------------------------- */

void ev_resize_nearest_neighbor_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int32_t in_h = p[EV_RESIZE_IN_H], in_w = p[EV_RESIZE_IN_W], depth = p[EV_RESIZE_DEPTH];
    const int32_t out_h = p[EV_RESIZE_OUT_H], out_w = p[EV_RESIZE_OUT_W];
    const uint8_t *input = (const uint8_t *)op->tensors[0];
    const int32_t *table = (const int32_t *)op->tensors[1];
    uint8_t *output = (uint8_t *)op->tensors[2];
    const size_t row_stride = (size_t)in_w * (size_t)depth;
    for (int item = begin; item < end; item++) {
        const int b = item / out_h, y = item % out_h;
        const uint8_t *row = input + ((size_t)b * (size_t)in_h + (size_t)table[y]) * row_stride;
        uint8_t *out = output + (size_t)item * (size_t)out_w * (size_t)depth;
        for (int32_t x = 0; x < out_w; x++)
            memcpy(out + (size_t)x * depth, row + (size_t)table[out_h + x] * depth, (size_t)depth);
    }
}
