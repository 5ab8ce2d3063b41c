/* Scalar reference kernels for RELU (RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1), TANH, PRELU and TRANSPOSE. The
 * spec: every variant must give these bytes. Params and tensor layouts: misc.h. The arithmetic is TFLite's
 * BUILTIN_REF kernels' (LiteRT 2.x), step by step, with the TFLite function each step reproduces named in
 * the comments. Every kernel computes work items [begin, end) and trusts what misc_check.c verified. */
#include <string.h>

#include "misc.h"

/* [lo, hi) of the elements in work items [begin, end) of `block` elements each, n in all */
static inline void block_range(long long n, long long block, int begin, int end, long long *lo, long long *hi) {
    *lo = (long long)begin * block;
    *hi = (long long)end * block;
    if (*hi > n) *hi = n;
    if (*lo > *hi) *lo = *hi;
}

/* ---- RELU family: reference_ops::ReluX(ReluParams) -------------------------------------------------------- */

void ev_relu_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int8_t *input = (const int8_t *)op->tensors[0];
    int8_t *output = (int8_t *)op->tensors[1];
    const int32_t in_zp = p[EV_RELU_IN_ZP], out_zp = p[EV_RELU_OUT_ZP];
    const int32_t mult = p[EV_RELU_MULT];
    const int shift = p[EV_RELU_SHIFT];
    const int32_t act_min = p[EV_RELU_ACT_MIN], act_max = p[EV_RELU_ACT_MAX];
    long long lo, hi;
    block_range(p[EV_RELU_N], p[EV_RELU_BLOCK], begin, end, &lo, &hi);
    for (long long i = lo; i < hi; i++) {
        /* the input, zero-point corrected: -255..255 */
        const int32_t x = (int32_t)input[i] - in_zp;
        /* requantised to the output scale (input_scale / output_scale; the identity when they are equal),
         * plus the output zero point */
        const int32_t y = out_zp + ev_mbqm(x, mult, shift);
        /* clamped to the activation's quantized bounds (which lie inside int8) */
        output[i] = (int8_t)ev_clamp(y, act_min, act_max);
    }
}

/* ---- TANH: optimized_integer_ops::LookupTable over the LUTPopulate<int8_t> table ------------------------- */

void ev_tanh_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const uint8_t *input = (const uint8_t *)op->tensors[0]; /* the int8 input's bit pattern is the index */
    const int8_t *table = (const int8_t *)op->tensors[1];
    int8_t *output = (int8_t *)op->tensors[2];
    long long lo, hi;
    block_range(p[EV_TANH_N], p[EV_TANH_BLOCK], begin, end, &lo, &hi);
    for (long long i = lo; i < hi; i++) output[i] = table[input[i]];
}

/* ---- PRELU: reference_ops::Prelu / BroadcastPrelu4DSlow ---------------------------------------------------- */

void ev_prelu_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int8_t *input = (const int8_t *)op->tensors[0];
    const int8_t *alpha = (const int8_t *)op->tensors[1];
    int8_t *output = (int8_t *)op->tensors[2];
    const int32_t *dim = p + EV_PRELU_DIM, *astride = p + EV_PRELU_ALPHA_STRIDE;
    const int32_t in_zp = p[EV_PRELU_IN_ZP], alpha_zp = p[EV_PRELU_ALPHA_ZP], out_zp = p[EV_PRELU_OUT_ZP];
    const int32_t mult1 = p[EV_PRELU_MULT1], mult2 = p[EV_PRELU_MULT2];
    const int shift1 = p[EV_PRELU_SHIFT1], shift2 = p[EV_PRELU_SHIFT2];
    long long total = 1;
    for (int k = 0; k < EV_MISC_DIMS; k++) total *= dim[k];
    long long lo, hi;
    block_range(total, p[EV_PRELU_BLOCK], begin, end, &lo, &hi);
    if (lo >= hi) return;
    /* position of element lo in the 6-D output, and its alpha offset; then an odometer */
    int idx[EV_MISC_DIMS];
    long long rest = lo, a = 0;
    for (int k = EV_MISC_DIMS - 1; k >= 0; k--) {
        idx[k] = (int)(rest % dim[k]);
        rest /= dim[k];
        a += (long long)idx[k] * astride[k];
    }
    for (long long e = lo; e < hi; e++) {
        /* PreluParams.input_offset = -input zero point: -255..255 */
        const int32_t x = (int32_t)input[e] - in_zp;
        int32_t y;
        if (x >= 0) {
            /* the identity branch: x * input_scale / output_scale */
            y = ev_mbqm(x, mult1, shift1);
        } else {
            /* the alpha branch: x * (alpha - alpha_zp) (at most 255 * 255 in magnitude), times
             * input_scale * alpha_scale / output_scale */
            const int32_t alpha_value = (int32_t)alpha[a] - alpha_zp;
            y = ev_mbqm(x * alpha_value, mult2, shift2);
        }
        output[e] = (int8_t)ev_clamp(y + out_zp, -128, 127);
        /* next position: innermost dimension first, carrying outwards */
        for (int k = EV_MISC_DIMS - 1; k >= 0; k--) {
            a += astride[k];
            if (++idx[k] < dim[k]) break;
            a -= (long long)dim[k] * astride[k];
            idx[k] = 0;
        }
    }
}

/* ---- TRANSPOSE: reference_ops::Transpose (a byte permutation) ---------------------------------------------- */

void ev_transpose_ref(const ev_op *op, int begin, int end, int thread) {
    const int32_t *p = op->params;
    const int32_t *in_dim = p + EV_TRANSPOSE_IN_DIM, *perm = p + EV_TRANSPOSE_PERM;
    const int es = p[EV_TRANSPOSE_ELEM_SIZE];
    const uint8_t *input = (const uint8_t *)op->tensors[0];
    uint8_t *output = (uint8_t *)op->tensors[1];
    /* input element strides (row-major), then for each output dimension k: its size and the input stride it
     * walks (output dim k is input dim perm[k]) */
    long long in_stride[EV_MISC_DIMS], s = 1;
    for (int k = EV_MISC_DIMS - 1; k >= 0; k--) {
        in_stride[k] = s;
        s *= in_dim[k];
    }
    const long long total = s;
    long long odim[EV_MISC_DIMS], ostride[EV_MISC_DIMS];
    for (int k = 0; k < EV_MISC_DIMS; k++) {
        odim[k] = in_dim[perm[k]];
        ostride[k] = in_stride[perm[k]];
    }
    long long lo, hi;
    block_range(total, p[EV_TRANSPOSE_BLOCK], begin, end, &lo, &hi);
    if (lo >= hi) return;
    /* position of output element lo, and the input element it copies; then an odometer */
    long long idx[EV_MISC_DIMS], rest = lo, src = 0;
    for (int k = EV_MISC_DIMS - 1; k >= 0; k--) {
        idx[k] = rest % odim[k];
        rest /= odim[k];
        src += idx[k] * ostride[k];
    }
    for (long long e = lo; e < hi; e++) {
        switch (es) {
        case 1: output[e] = input[src]; break;
        case 2: memcpy(output + e * 2, input + src * 2, 2); break;
        default: memcpy(output + e * 4, input + src * 4, 4); break;
        }
        for (int k = EV_MISC_DIMS - 1; k >= 0; k--) {
            src += ostride[k];
            if (++idx[k] < odim[k]) break;
            src -= odim[k] * ostride[k];
            idx[k] = 0;
        }
    }
}
