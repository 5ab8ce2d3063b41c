/* Element-wise, pooling, reduction and data-movement kernels: ADD, MUL, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN,
 * PAD, COPY, CONCATENATION, QUANTIZE, DEQUANTIZE.
 *
 * This header is the contract between the preparers (edgevision/native/ops/elementwise.py), the checks
 * (elementwise_check.c) and every variant of these kernels (ref/elementwise_ref.c is the spec). For each kind
 * it gives the int32 params layout (an enum of indices, ending with the count), the tensor order and what one
 * work item is. All integer parameters (multipliers, shifts, clamps) are computed in Python exactly as
 * TFLite's Prepare computes them; the kernels only apply them.
 *
 * MBQM(x, mult, shift) below is TFLite's MultiplyByQuantizedMultiplier, x * mult * 2^(shift - 31) with its
 * double rounding (gemmlowp SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT; TFLITE_SINGLE_ROUNDING
 * is off in LiteRT builds): ev_mbqm in fixedpoint.h. The checks bound every multiplier, shift and
 * offset so that no int32 expression of a kernel can overflow.
 */
#ifndef EV_ELEMENTWISE_H
#define EV_ELEMENTWISE_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"
#include "fixedpoint.h"

/* Rank every shape is padded to (on the left, with 1s) in the params below. */
#define EV_EW_DIMS 6

/* ---- ADD and MUL (int8, with broadcasting) ------------------------------------------------------------------
 * tensors: [input1 int8, input2 int8, output int8]
 * The output is a contiguous array of shape dims[0..5]; element (i0..i5) reads input1 at
 * sum(ik * stride1[k]) and input2 at sum(ik * stride2[k]) (element strides; 0 on a broadcast dimension).
 * The planner merges dimensions where it can, so dims[5] is usually the longest contiguous run.
 * work item: a block of EV_BIN_BLOCK consecutive output elements (the last one may be shorter);
 * items = ceil(prod(dims) / block). */
enum {
    EV_BIN_DIM = 0,                         /* [6] output dims */
    EV_BIN_STRIDE1 = EV_BIN_DIM + EV_EW_DIMS, /* [6] input1 element strides */
    EV_BIN_STRIDE2 = EV_BIN_STRIDE1 + EV_EW_DIMS, /* [6] input2 element strides */
    EV_BIN_BLOCK = EV_BIN_STRIDE2 + EV_EW_DIMS,   /* output elements per work item, >= 1 */
    EV_BIN_QUANT                            /* first kind-specific parameter */
};

/* ADD (TFLite reference_integer_ops::AddFunc):
 *   a = (in1 + in1_offset) << left_shift ;  b = (in2 + in2_offset) << left_shift
 *   a = MBQM(a, in1_mult, in1_shift) ;       b = MBQM(b, in2_mult, in2_shift)      (shifts <= 0)
 *   out = clamp(MBQM(a + b, out_mult, out_shift) + out_offset, act_min, act_max)
 * with offsets = -zero points of the inputs, out_offset = the output zero point. */
enum {
    EV_ADD_IN1_OFFSET = EV_BIN_QUANT,
    EV_ADD_IN2_OFFSET,
    EV_ADD_OUT_OFFSET,
    EV_ADD_LEFT_SHIFT,
    EV_ADD_IN1_MULT,
    EV_ADD_IN1_SHIFT,
    EV_ADD_IN2_MULT,
    EV_ADD_IN2_SHIFT,
    EV_ADD_OUT_MULT,
    EV_ADD_OUT_SHIFT,
    EV_ADD_ACT_MIN,
    EV_ADD_ACT_MAX,
    EV_ADD_NPARAMS
};

/* MUL (TFLite reference_integer_ops::MulElementwise):
 *   out = clamp(MBQM((in1 + in1_offset) * (in2 + in2_offset), out_mult, out_shift) + out_offset, act_min, act_max) */
enum {
    EV_MUL_IN1_OFFSET = EV_BIN_QUANT,
    EV_MUL_IN2_OFFSET,
    EV_MUL_OUT_OFFSET,
    EV_MUL_OUT_MULT,
    EV_MUL_OUT_SHIFT,
    EV_MUL_ACT_MIN,
    EV_MUL_ACT_MAX,
    EV_MUL_NPARAMS
};

/* ---- AVERAGE_POOL_2D and MAX_POOL_2D (int8, NHWC) --------------------------------------------------------
 * tensors: [input int8 [batch, in_h, in_w, channels], output int8 [batch, out_h, out_w, channels]]
 * Output (y, x) pools the input window rows y*stride_h - pad_h + [0, filter_h), columns likewise, clipped to
 * the input (padding cells are not counted). Average: sum / count rounded half away from zero (integer
 * division, as TFLite); max: the largest value. Then clamp to [act_min, act_max]. The check guarantees every
 * window holds at least one input cell.
 * work item: one output row (b, y); items = batch * out_h. */
enum {
    EV_POOL_BATCH = 0,
    EV_POOL_IN_H,
    EV_POOL_IN_W,
    EV_POOL_CHANNELS,
    EV_POOL_OUT_H,
    EV_POOL_OUT_W,
    EV_POOL_FILTER_H,
    EV_POOL_FILTER_W,
    EV_POOL_STRIDE_H,
    EV_POOL_STRIDE_W,
    EV_POOL_PAD_H, /* top/left padding (TFLite's padding_values.height/width) */
    EV_POOL_PAD_W,
    EV_POOL_ACT_MIN,
    EV_POOL_ACT_MAX,
    EV_POOL_NPARAMS
};

/* ---- MEAN (int8; TFLite reference_ops::QuantizedMeanOrSum, the path BUILTIN_REF takes for every int8 MEAN) ----
 * tensors: [input int8 of shape dims[0..5], output int8]
 * reduce[k] = 1 marks a reduced dimension. Output elements are the kept dimensions in order (keep_dims only
 * changes the output's shape, not its bytes). count = product of the reduced dims.
 *   sum = sum of the int8 inputs over the reduced dims (int32)
 *   out = clamp(MBQM(sum - in_zero_point * count, mult, shift) + out_zero_point, -128, 127)
 * where mult/shift already include TFLite's 1/count folding (see the preparer).
 * work item: one output element; items = prod(kept dims). */
enum {
    EV_MEAN_DIM = 0,                            /* [6] input dims */
    EV_MEAN_REDUCE = EV_MEAN_DIM + EV_EW_DIMS,  /* [6] 1 = reduced, 0 = kept */
    EV_MEAN_COUNT = EV_MEAN_REDUCE + EV_EW_DIMS, /* elements per output = product of reduced dims */
    EV_MEAN_IN_ZP,
    EV_MEAN_OUT_ZP,
    EV_MEAN_MULT,
    EV_MEAN_SHIFT,
    EV_MEAN_NPARAMS
};

/* ---- PAD / PADV2 (any element size; TFLite reference_ops::Pad) ---------------------------------------------
 * tensors: [input of shape in_dims[0..5], output of shape out_dims[0..5]]
 * out_dims[k] = before[k] + in_dims[k] + after[k]; cells outside the input are set to the pad value (the
 * output zero point for PAD, the constant for PADV2), given as `elem_size` bytes in little-endian order in
 * EV_PAD_VALUE (elem_size <= 4).
 * work item: one output row (all dims but the last); items = prod(out_dims[0..4]). */
enum {
    EV_PAD_IN_DIM = 0,                           /* [6] */
    EV_PAD_BEFORE = EV_PAD_IN_DIM + EV_EW_DIMS,  /* [6] padding before each dimension */
    EV_PAD_OUT_DIM = EV_PAD_BEFORE + EV_EW_DIMS, /* [6] */
    EV_PAD_ELEM_SIZE = EV_PAD_OUT_DIM + EV_EW_DIMS, /* bytes per element: 1, 2 or 4 */
    EV_PAD_VALUE,                                /* the pad element's bytes */
    EV_PAD_NPARAMS
};

/* ---- COPY (RESHAPE, SQUEEZE, EXPAND_DIMS: the bytes are unchanged) -------------------------------------------
 * tensors: [input, output] of EV_COPY_BYTES bytes each.
 * work item: a block of EV_COPY_BLOCK bytes; items = ceil(bytes / block). */
enum { EV_COPY_BYTES = 0, EV_COPY_BLOCK, EV_COPY_NPARAMS };

/* ---- CONCATENATION (byte copy; TFLite requires int8 inputs quantized exactly as the output) -----------------
 * tensors: [input_0 .. input_{n-1}, output], n = EV_CONCAT_INPUTS (1..7)
 * Every tensor is viewed as [outer, row] bytes, outer = product of the dims before the axis. The output row
 * is EV_CONCAT_OUT_ROW bytes; this step writes input_0's row r at byte EV_CONCAT_OUT_AT of output row r,
 * input_1's right after it, and so on. (A concatenation of more than 7 inputs is several steps, each
 * writing its own columns of the output.)
 * work item: one (row, input) pair, item = row * n + i; items = outer * n. */
enum {
    EV_CONCAT_OUTER = 0,
    EV_CONCAT_INPUTS,
    EV_CONCAT_OUT_ROW, /* bytes per output row */
    EV_CONCAT_OUT_AT,  /* where this step's first input starts in an output row */
    EV_CONCAT_CHUNK    /* [n] bytes per row of input i; EV_CONCAT_NPARAMS(n) = EV_CONCAT_CHUNK + n */
};
#define EV_CONCAT_MAX_INPUTS (EV_MAX_OP_TENSORS - 1)
#define EV_CONCAT_NPARAMS(n) (EV_CONCAT_CHUNK + (n))

/* ---- QUANTIZE (TFLite reference_ops::AffineQuantize and reference_ops::Requantize) ---------------------------
 * tensors: [input, output], EV_QUANT_COUNT elements each.
 * mode EV_QUANT_FROM_FLOAT (float32 -> int8/uint8):
 *   out = clamp(round_half_away(x / scale) + zero_point)   (float division; `scale` is the float32's bits)
 *   |x / scale| >= 2^31 and NaN are undefined behaviour in TFLite (x86 and ARM differ); here they saturate
 *   like ARM: +big -> max, -big -> min, NaN -> zero_point.
 * mode EV_QUANT_REQUANT (int8/uint8 -> int8/uint8):
 *   out = clamp(MBQM(x - in_zero_point, mult, shift) + out_zero_point)
 * work item: a block of EV_QUANT_BLOCK elements. */
enum { EV_QUANT_FROM_FLOAT = 0, EV_QUANT_REQUANT = 1 };
enum { EV_TYPE_INT8 = 0, EV_TYPE_UINT8 = 1, EV_TYPE_FLOAT32 = 2 };
enum {
    EV_QUANT_MODE = 0,
    EV_QUANT_IN_TYPE,  /* EV_TYPE_*: FLOAT32 for FROM_FLOAT, INT8/UINT8 for REQUANT */
    EV_QUANT_OUT_TYPE, /* EV_TYPE_INT8 or EV_TYPE_UINT8 */
    EV_QUANT_COUNT,
    EV_QUANT_BLOCK,
    EV_QUANT_SCALE_BITS, /* FROM_FLOAT: the output scale, float32 bits */
    EV_QUANT_IN_ZP,      /* REQUANT */
    EV_QUANT_OUT_ZP,
    EV_QUANT_MULT, /* REQUANT */
    EV_QUANT_SHIFT,
    EV_QUANT_NPARAMS
};

/* ---- DEQUANTIZE (int8/uint8 -> float32; TFLite reference_integer_ops::Dequantize) -----------------------------
 * tensors: [input int8/uint8, output float32], EV_DEQ_COUNT elements each.
 *   out = (float)((double)scale * (x - zero_point))     (scale: the input's float32 scale widened to double)
 * work item: a block of EV_DEQ_BLOCK elements. */
enum { EV_DEQ_IN_TYPE = 0, EV_DEQ_COUNT, EV_DEQ_BLOCK, EV_DEQ_SCALE_BITS, EV_DEQ_ZP, EV_DEQ_NPARAMS };

/* ---- the kernels and checks of this header -------------------------------------------------------------------- */
#define EV_EW_KINDS(X) X(add) X(mul) X(average_pool_2d) X(max_pool_2d) X(mean) X(pad) X(copy) X(concatenation) \
    X(quantize) X(dequantize)
#define EV_EW_DECLARE_(l)                                                     \
    int ev_check_##l(const ev_op *op, char *err, size_t errlen);            \
    void ev_##l##_ref(const ev_op *op, int begin, int end, int thread);
EV_EW_KINDS(EV_EW_DECLARE_)
#undef EV_EW_DECLARE_

#endif /* EV_ELEMENTWISE_H */
