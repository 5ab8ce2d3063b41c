/* Standalone activations and data movement: RELU (serving RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1), TANH,
 * PRELU, TRANSPOSE (int8).
 *
 * This header is the contract between the preparers (edgevision/native/ops/misc.py), the checks
 * (misc_check.c) and every variant of these kernels (ref/misc_ref.c is the spec, bit-exact with the kernels
 * TFLite's BUILTIN_REF resolver runs; LiteRT 2.x, TFLITE_SINGLE_ROUNDING off). For each kind it gives the
 * int32 params layout (an enum of indices ending with the count), the tensor order (inputs, then constants
 * the preparer made, then the output) and what one work item is. Everything TFLite computes in Prepare
 * (multipliers, shifts, clamp bounds, tables) is computed by the preparer; the kernels only apply it.
 *
 * Which TFLite code each kernel matches (tflite/kernels/...):
 *   RELU          activations.cc ReluPrepare (QuantizeMultiplier of input_scale / output_scale, a float32
 *                 division) + QuantizedReluX -> reference_ops::ReluX(ReluParams): a requantisation to the
 *                 output scale, then a clamp to the activation's bounds quantized with roundf in float32.
 *                 RELU, RELU6, RELU_N1_TO_1 and RELU_0_TO_1 differ only in those bounds. (BUILTIN_REF and the
 *                 builtin resolver register the same RELU kernels: there is no separate reference RELU.)
 *   TANH          activations.cc TanhPrepare<kReference>: a 256-entry LUT computed in float32
 *                 (LUTPopulate<int8_t>, libm tanhf), applied with optimized_integer_ops::LookupTable.
 *   PRELU         activations.cc PreluPrepare + reference_ops::Prelu / BroadcastPrelu4DSlow (N-D): two output
 *                 multipliers (input_scale / output_scale and input_scale * alpha_scale / output_scale, both
 *                 float32 arithmetic), alpha broadcast against the input.
 *   TRANSPOSE     transpose.cc + reference_ops::Transpose: the bytes permuted, nothing else.
 */
#ifndef EV_MISC_H
#define EV_MISC_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"
#include "fixedpoint.h"

/* Rank every shape is padded to (on the left, with 1s) in the params below. */
#define EV_MISC_DIMS 6

/* ---- RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1 (int8 -> int8) ----------------------------------------------
 * tensors: [input int8 [n], output int8 [n]]
 *   out = clamp(out_zp + MBQM(in - in_zp, mult, shift), act_min, act_max)
 * MBQM is TFLite's double-rounding MultiplyByQuantizedMultiplier (ev_mbqm in fixedpoint.h). mult/shift are
 * QuantizeMultiplier(input_scale / output_scale) (equal scales give mult 2^30, shift 1: the identity).
 * act_min = max(-128, out_zp + (int)roundf(lo / out_scale)), act_max = min(127, out_zp + (int)roundf(hi /
 * out_scale)) (float32), with (lo, hi) = (0, +inf) for RELU (act_max = 127), (0, 6) RELU6, (-1, 1)
 * RELU_N1_TO_1, (0, 1) RELU_0_TO_1.
 * work item: a block of `block` consecutive elements (the last may be shorter); items = ceil(n / block). */
enum {
    EV_RELU_N = 0,      /* elements, >= 0 */
    EV_RELU_BLOCK,      /* elements per work item, >= 1 */
    EV_RELU_IN_ZP,      /* input zero point, -128..127 */
    EV_RELU_OUT_ZP,     /* output zero point, -128..127 */
    EV_RELU_MULT,       /* output multiplier, 0..2^31-1 */
    EV_RELU_SHIFT,      /* output shift, -31..30 */
    EV_RELU_ACT_MIN,    /* -128 <= act_min <= act_max <= 127 */
    EV_RELU_ACT_MAX,
    EV_RELU_NPARAMS
};

/* ---- TANH (int8 -> int8) --------------------------------------------------------------------------------
 * tensors: [input int8 [n], table int8 [256], output int8 [n]]
 * out[i] = table[(uint8_t)in[i]]: the table is indexed by the input's bit pattern (0..127, then -128..-1),
 * as TFLite's LUTPopulate<int8_t> lays it out. Entry for input v: clamp(int(roundf(tanhf(in_scale * (v -
 * in_zp)) * (1.0f / out_scale)) + out_zp)), all in float32 with libm's tanhf. TFLite's reference int8 TANH
 * takes any output quantization (converters write scale 1/128, zero point 0).
 * work item: a block of `block` consecutive elements (the last may be shorter); items = ceil(n / block). */
enum {
    EV_TANH_N = 0,      /* elements, >= 0 */
    EV_TANH_BLOCK,      /* elements per work item, >= 1 */
    EV_TANH_NPARAMS
};
#define EV_TANH_TABLE_SIZE 256

/* ---- PRELU (int8, alpha broadcast against the input) -----------------------------------------------------
 * tensors: [input int8, alpha int8, output int8]
 * The input and the output are contiguous arrays of shape dims[0..5] (TFLite requires the output shape to be
 * the input's); output element e = (i0..i5) reads input element e and alpha element sum(ik * alpha_stride[k])
 * (element strides; 0 on a dimension alpha is broadcast along). The planner merges dimensions where it can.
 *   x = in - in_zp                                          (-255..255)
 *   x >= 0: out = MBQM(x, mult1, shift1) + out_zp          mult1/shift1: input_scale / output_scale
 *   x <  0: out = MBQM(x * (a - alpha_zp), mult2, shift2) + out_zp
 *                                                           mult2/shift2: input_scale * alpha_scale / output_scale
 *   out = clamp(out, -128, 127)
 * work item: a block of `block` consecutive output elements (the last may be shorter);
 * items = ceil(prod(dims) / block). */
enum {
    EV_PRELU_DIM = 0,                                   /* [6] input = output dims, each >= 1 */
    EV_PRELU_ALPHA_STRIDE = EV_PRELU_DIM + EV_MISC_DIMS, /* [6] alpha element strides, each >= 0 */
    EV_PRELU_BLOCK = EV_PRELU_ALPHA_STRIDE + EV_MISC_DIMS, /* output elements per work item, >= 1 */
    EV_PRELU_IN_ZP,     /* -128..127 */
    EV_PRELU_ALPHA_ZP,  /* -128..127 */
    EV_PRELU_OUT_ZP,    /* -128..127 */
    EV_PRELU_MULT1,     /* 0..2^31-1 */
    EV_PRELU_SHIFT1,    /* -31..30 */
    EV_PRELU_MULT2,     /* 0..2^31-1 */
    EV_PRELU_SHIFT2,    /* -31..30 */
    EV_PRELU_NPARAMS
};

/* ---- TRANSPOSE (any element of 1, 2 or 4 bytes) ----------------------------------------------------------
 * tensors: [input of shape in_dims[0..5], output of shape out_dims[0..5]]
 * perm is a permutation of 0..5; out_dims[k] = in_dims[perm[k]], and output element (i0..i5) is input element
 * j with j[perm[k]] = ik. Bytes are moved, never interpreted (quantization is the input's). The planner pads
 * shapes with leading 1s, drops size-1 dimensions and merges dimensions that stay adjacent, so the perm it
 * gives is usually short (an NHWC -> NCHW transpose becomes [HW, C] -> [C, HW]).
 * work item: a block of `block` consecutive output elements (the last may be shorter);
 * items = ceil(prod(in_dims) / block). */
enum {
    EV_TRANSPOSE_IN_DIM = 0,                               /* [6] each >= 1 */
    EV_TRANSPOSE_PERM = EV_TRANSPOSE_IN_DIM + EV_MISC_DIMS, /* [6] a permutation of 0..5 */
    EV_TRANSPOSE_ELEM_SIZE = EV_TRANSPOSE_PERM + EV_MISC_DIMS, /* bytes per element: 1, 2 or 4 */
    EV_TRANSPOSE_BLOCK,                                    /* output elements per work item, >= 1 */
    EV_TRANSPOSE_NPARAMS
};

/* ---- the kernels and checks of this header --------------------------------------------------------------- */
#define EV_MISC_KINDS(X) X(relu) X(tanh) X(prelu) X(transpose)
#define EV_MISC_DECLARE_(l)                                          \
    int ev_check_##l(const ev_op *op, char *err, size_t errlen);   \
    void ev_##l##_ref(const ev_op *op, int begin, int end, int thread);
EV_MISC_KINDS(EV_MISC_DECLARE_)
#undef EV_MISC_DECLARE_

#endif /* EV_MISC_H */
