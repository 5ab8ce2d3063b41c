"""Preparers for ADD, MUL, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, PAD/PADV2, RESHAPE/SQUEEZE/EXPAND_DIMS (COPY),
CONCATENATION, QUANTIZE and DEQUANTIZE: int8 tensors (and the float32 ends of QUANTIZE/DEQUANTIZE).

Each checks the operator against what TFLite's kernel accepts, computes exactly what TFLite's Prepare computes
(multipliers and shifts from the float32 scales, in float32 where TFLite's C++ computes in float, in double where
it computes in double), and returns the engine steps whose params layout csrc/elementwise.h documents. The
kernels are bit-exact with TFLite's reference kernels (BUILTIN_REF); see csrc/ref/elementwise_ref.c.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..graph import Graph, Operator, Tensor
from . import Step, preparer, unsupported
from .quant import FUSED, activation_range, quantize_multiplier
from .quant import f32 as float32

DIMS = 6                    # EV_EW_DIMS
CONCAT_MAX_INPUTS = 7       # EV_CONCAT_MAX_INPUTS
TYPE_CODES = {"INT8": 0, "UINT8": 1, "FLOAT32": 2}  # EV_TYPE_*
TYPE_RANGE = {"INT8": (-128, 127), "UINT8": (0, 255)}


# -- TFLite's quantization arithmetic (tflite/kernels/internal/quantization_util.cc, kernel_util.cc) --------------









# -- validation helpers ------------------------------------------------------------------------------------------

def _n_io(op: Operator, n_in: Sequence[int], n_out: int = 1) -> None:
    if len(op.inputs) not in n_in or len(op.outputs) != n_out:
        want = " or ".join(str(n) for n in n_in)
        raise unsupported(op, f"expected {want} inputs and {n_out} output, got {len(op.inputs)} and "
                              f"{len(op.outputs)}")
    if any(i < 0 for i in op.inputs[:min(n_in)]):
        raise unsupported(op, "a required input is omitted")


def _quantized(op: Operator, g: Graph, index: int, what: str, dtypes: Sequence[str] = ("INT8",)) -> Tensor:
    """A per-tensor quantized tensor of one of `dtypes`."""
    t = g.tensors[index]
    if t.dtype not in dtypes:
        raise unsupported(op, f"{what} {t.describe()} is {t.dtype}; the native engine runs this operator on "
                              f"{' or '.join(dtypes)} tensors")
    if len(t.scale) != 1:
        kind = "is not quantized" if not t.scale else f"is quantized per channel ({len(t.scale)} scales)"
        raise unsupported(op, f"{what} {t.describe()} {kind}; expected one scale and zero point")
    return t


def _same_quant(a: Tensor, b: Tensor) -> bool:
    return a.scale == b.scale and a.zero_point == b.zero_point


def _fused(op: Operator) -> str:
    act = op.options.get("fused_activation_function", "NONE")
    if act not in FUSED:
        raise unsupported(op, f"fused activation {act} is not supported for int8 (expected one of "
                              f"{', '.join(FUSED)})")
    return act


def _blocks(total: int, unit: int = 64, max_items: int = 256) -> tuple[int, int]:
    """(block, items): blocks of a multiple of `unit` elements, at most `max_items` of them (plenty to spread
    over any number of threads, few enough that the per-block setup is negligible)."""
    block = unit * max(1, -(-total // (unit * max_items)))
    return block, -(-total // block)


def _pad6(shape: Sequence[int]) -> list[int]:
    return [1] * (DIMS - len(shape)) + list(shape)


def _check_shift(op: Operator, what: str, shift: int, lo: int = -31, hi: int = 30) -> None:
    if not lo <= shift <= hi:
        raise unsupported(op, f"its {what} scale ratio gives a shift of {shift}, outside [{lo}, {hi}]: the "
                              "quantization scales are out of proportion")


# -- ADD, MUL ----------------------------------------------------------------------------------------------------

def broadcast_layout(op: Operator, a: Sequence[int], b: Sequence[int], out: Sequence[int]) -> list[int]:
    """dims[6] + stride1[6] + stride2[6] (elements) for a TFLite broadcast of shapes a and b to out, with
    adjacent dimensions merged where both inputs step through them contiguously (or both broadcast them)."""
    rank = max(len(a), len(b))
    ea, eb = [1] * (rank - len(a)) + list(a), [1] * (rank - len(b)) + list(b)
    want = []
    for da, db in zip(ea, eb):
        if da != db and 1 not in (da, db):
            raise unsupported(op, f"input shapes {list(a)} and {list(b)} do not broadcast")
        want.append(max(da, db))
    if tuple(want) != tuple(out):
        raise unsupported(op, f"output shape is {list(out)}, broadcasting {list(a)} and {list(b)} gives {want}")

    def strides(e: list[int]) -> list[int]:
        s, acc = [0] * rank, 1
        for k in range(rank - 1, -1, -1):
            s[k] = acc if e[k] == want[k] and want[k] > 1 else 0
            acc *= e[k]
        return s

    sa, sb = strides(ea), strides(eb)
    groups: list[list[int]] = []  # [dim, stride_a, stride_b], innermost first
    for k in range(rank - 1, -1, -1):
        if want[k] == 1:
            continue
        if groups:
            d, ga, gb = groups[-1]
            if sa[k] == ga * d and sb[k] == gb * d:
                groups[-1][0] = d * want[k]
                continue
        groups.append([want[k], sa[k], sb[k]])
    if len(groups) > DIMS:
        raise unsupported(op, f"broadcasting {list(a)} with {list(b)} needs {len(groups)} dimensions, at most {DIMS}")
    groups = groups[::-1]
    dims = _pad6([gr[0] for gr in groups])
    s1 = [0] * (DIMS - len(groups)) + [gr[1] for gr in groups]
    s2 = [0] * (DIMS - len(groups)) + [gr[2] for gr in groups]
    return dims + s1 + s2


def _binary_common(op: Operator, g: Graph):
    _n_io(op, (2,))
    x = _quantized(op, g, op.inputs[0], "input 1")
    y = _quantized(op, g, op.inputs[1], "input 2")
    o = _quantized(op, g, op.outputs[0], "the output")
    layout = broadcast_layout(op, x.shape, y.shape, o.shape)
    block, items = _blocks(o.size)
    act_min, act_max = activation_range(op, _fused(op), o)
    return x, y, o, layout + [block], items, act_min, act_max


@preparer("ADD")
def add(op: Operator, g: Graph) -> list[Step]:
    x, y, o, head, items, act_min, act_max = _binary_common(op, g)
    # tflite/kernels/add.cc Prepare, int8 path: both inputs rescaled to twice the larger input scale with
    # left_shift = 20 bits of headroom. std::max of the float scales, then double arithmetic.
    s1, s2, so = float(x.scale[0]), float(y.scale[0]), float(o.scale[0])
    left_shift = 20
    twice_max = 2.0 * max(s1, s2)
    real1, real2 = s1 / twice_max, s2 / twice_max
    real_out = twice_max / float(float32(1 << left_shift) * float32(so))  # (1 << 20) * float scale: float32
    if not 0.0 < real_out < 1.0:
        raise unsupported(op, f"the output scale {so} is too small for input scales {s1} and {s2}: TFLite requires "
                              "2 * max(input scales) < 2^20 * output scale")
    m1, sh1 = quantize_multiplier(real1)
    m2, sh2 = quantize_multiplier(real2)
    mo, sho = quantize_multiplier(real_out)
    for what, sh in (("input 1", sh1), ("input 2", sh2), ("output", sho)):
        _check_shift(op, what, sh, hi=0)
    params = head + [-x.zero_point[0], -y.zero_point[0], o.zero_point[0], left_shift, m1, sh1, m2, sh2, mo, sho,
                     act_min, act_max]
    return [Step("ADD", items, params, [op.inputs[0], op.inputs[1], op.outputs[0]])]


@preparer("MUL")
def mul(op: Operator, g: Graph) -> list[Step]:
    x, y, o, head, items, act_min, act_max = _binary_common(op, g)
    # tflite/kernels/mul.cc Prepare: input1 scale * input2 scale / output scale, all float32 arithmetic.
    real = float(float32(float32(x.scale[0]) * float32(y.scale[0])) / float32(o.scale[0]))
    m, sh = quantize_multiplier(real)
    bound = (128 + abs(x.zero_point[0])) * (128 + abs(y.zero_point[0]))
    _check_shift(op, "output", sh, hi=max(0, 29 - bound.bit_length()))
    params = head + [-x.zero_point[0], -y.zero_point[0], o.zero_point[0], m, sh, act_min, act_max]
    return [Step("MUL", items, params, [op.inputs[0], op.inputs[1], op.outputs[0]])]


# -- pools -------------------------------------------------------------------------------------------------------

def pool_geometry(op: Operator, in_size: int, filt: int, stride: int, padding: str) -> tuple[int, int]:
    """(output size, leading padding) as tflite/kernels/padding.h computes them for pools (dilation 1)."""
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    elif padding == "VALID":
        out = (in_size + stride - filt) // stride
    else:
        raise unsupported(op, f"padding {padding!r} (expected SAME or VALID)")
    if out < 1:
        raise unsupported(op, f"a {filt}-wide filter with {padding} padding leaves no output from {in_size} cells")
    total = max(0, (out - 1) * stride + filt - in_size)
    return out, total // 2


@preparer("AVERAGE_POOL_2D", "MAX_POOL_2D")
def pool_2d(op: Operator, g: Graph) -> list[Step]:
    _n_io(op, (1,))
    x = _quantized(op, g, op.inputs[0], "the input")
    o = _quantized(op, g, op.outputs[0], "the output")
    if len(x.shape) != 4:
        raise unsupported(op, f"input {x.describe()} must be 4-D NHWC")
    # TFLite's pooling Prepare asserts (debug builds) that int8 pools keep the quantization; its kernels ignore
    # the output's. Differing parameters would change the values' meaning, so they are refused.
    if abs(x.scale[0] - o.scale[0]) > 1e-6 or x.zero_point != o.zero_point:
        raise unsupported(op, f"the input is quantized (scale {x.scale[0]}, zero point {x.zero_point[0]}) and the "
                              f"output differently (scale {o.scale[0]}, zero point {o.zero_point[0]}); TFLite pools "
                              "int8 without requantizing, so they must be equal")
    fh, fw = int(op.options.get("filter_height", 0)), int(op.options.get("filter_width", 0))
    sh, sw = int(op.options.get("stride_h", 0)), int(op.options.get("stride_w", 0))
    if min(fh, fw, sh, sw) < 1:
        raise unsupported(op, f"filter {fh}x{fw} and strides {sh}x{sw} must be >= 1")
    padding = op.options.get("padding", "SAME")
    n, h, w, c = x.shape
    oh, ph = pool_geometry(op, h, fh, sh, padding)
    ow, pw = pool_geometry(op, w, fw, sw, padding)
    if o.shape != (n, oh, ow, c):
        raise unsupported(op, f"output shape is {list(o.shape)}, expected {[n, oh, ow, c]}")
    if fh * fw > 1 << 24:
        raise unsupported(op, f"filter {fh}x{fw} is too large")
    act_min, act_max = activation_range(op, _fused(op), o)
    kind = op.opcode
    params = [n, h, w, c, oh, ow, fh, fw, sh, sw, ph, pw, act_min, act_max]
    return [Step(kind, n * oh, params, [op.inputs[0], op.outputs[0]])]


# -- MEAN --------------------------------------------------------------------------------------------------------

def _constant_ints(op: Operator, g: Graph, index: int, what: str, dtypes=("INT32",)) -> np.ndarray:
    t = g.tensors[index]
    if not t.is_constant:
        raise unsupported(op, f"{what} {t.describe()} must be a constant")
    if t.dtype not in dtypes:
        raise unsupported(op, f"{what} {t.describe()} must be {' or '.join(dtypes)}")
    return t.array().astype(np.int64)


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """PrepareMeanOrSum's multiplier (input_scale / output_scale in double), with QuantizedMeanOrSum's folding
    of 1 / count into it: shift = min(floor(log2(count)), 32, 31 + shift0), mult = (mult0 << shift) / count."""
    m, e = quantize_multiplier(float(in_scale) / float(out_scale))
    s = min(count.bit_length() - 1, 32, 31 + e)
    return (m << s) // count, e - s


@preparer("MEAN")
def mean(op: Operator, g: Graph) -> list[Step]:
    _n_io(op, (2,))
    x = _quantized(op, g, op.inputs[0], "the input")
    o = _quantized(op, g, op.outputs[0], "the output")
    rank = len(x.shape)
    axes = _constant_ints(op, g, op.inputs[1], "the axis tensor").reshape(-1)
    reduced: list[int] = []
    for a in axes:  # tflite ResolveAxis: negative counts from the end, duplicates ignored
        r = int(a) + rank if a < 0 else int(a)
        if not 0 <= r < rank:
            raise unsupported(op, f"axis {int(a)} is out of range for the rank-{rank} input")
        if r not in reduced:
            reduced.append(r)
    keep = bool(op.options.get("keep_dims", False))
    want = tuple(1 if k in reduced else d for k, d in enumerate(x.shape)) if keep else \
        tuple(d for k, d in enumerate(x.shape) if k not in reduced)
    if o.shape != want:
        raise unsupported(op, f"output shape is {list(o.shape)}, expected {list(want)} (keep_dims={keep})")
    count = int(np.prod([x.shape[k] for k in reduced], dtype=np.int64)) if reduced else 1
    if count > 1 << 23:
        raise unsupported(op, f"it averages {count} elements; at most 2^23 are supported")
    mult, shift = mean_multiplier(x.scale[0], o.scale[0], count)
    bound = 256 * count
    _check_shift(op, "input/output", shift, hi=max(0, 29 - bound.bit_length()))
    dims = _pad6(x.shape)
    flags = [0] * (DIMS - rank) + [1 if k in reduced else 0 for k in range(rank)]
    params = dims + flags + [count, x.zero_point[0], o.zero_point[0], mult, shift]
    return [Step("MEAN", o.size, params, [op.inputs[0], op.outputs[0]])]


# -- PAD, PADV2 --------------------------------------------------------------------------------------------------

PAD_MAX_RANK = 5  # reference_ops::PadKernelMaxDimensionCount()


@preparer("PAD", "PADV2")
def pad(op: Operator, g: Graph) -> list[Step]:
    _n_io(op, (2, 3) if op.opcode == "PADV2" else (2,))
    x = _quantized(op, g, op.inputs[0], "the input")
    o = _quantized(op, g, op.outputs[0], "the output")
    if not _same_quant(x, o):
        raise unsupported(op, "input and output are quantized differently; TFLite pads by copying the bytes, so "
                              "they must be equal")
    rank = len(x.shape)
    if not 1 <= rank <= PAD_MAX_RANK:
        raise unsupported(op, f"input rank {rank}; TFLite pads tensors of rank 1 to {PAD_MAX_RANK}")
    pads = _constant_ints(op, g, op.inputs[1], "the paddings tensor", ("INT32", "INT64"))
    if pads.shape != (rank, 2):
        raise unsupported(op, f"paddings have shape {list(pads.shape)}, expected {[rank, 2]}")
    if (pads < 0).any():
        raise unsupported(op, f"paddings {pads.tolist()} must be >= 0")
    want = tuple(int(d + p[0] + p[1]) for d, p in zip(x.shape, pads))
    if o.shape != want:
        raise unsupported(op, f"output shape is {list(o.shape)}, the paddings give {list(want)}")
    value = o.zero_point[0]
    if len(op.inputs) == 3 and op.inputs[2] >= 0:
        cv = g.tensors[op.inputs[2]]
        if cv.dtype != x.dtype or cv.size != 1 or not cv.is_constant:
            raise unsupported(op, f"constant_values {cv.describe()} must be one constant {x.dtype} value")
        if cv.scale[:1] != o.scale[:1] or cv.zero_point[:1] != o.zero_point[:1]:
            raise unsupported(op, "constant_values must be quantized as the output (TFLite requires it)")
        value = int(cv.array().reshape(-1)[0])
    rows = int(np.prod(_pad6(want)[:-1]))
    before = [0] * (DIMS - rank) + [int(p[0]) for p in pads]
    params = _pad6(x.shape) + before + _pad6(want) + [1, value & 0xFF]
    return [Step("PAD", rows, params, [op.inputs[0], op.outputs[0]])]


# -- RESHAPE, SQUEEZE, EXPAND_DIMS -------------------------------------------------------------------------------

@preparer("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def copy(op: Operator, g: Graph) -> list[Step]:
    _n_io(op, (1, 2) if op.opcode == "RESHAPE" else ((2,) if op.opcode == "EXPAND_DIMS" else (1,)))
    x, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if x.dtype != o.dtype or x.size != o.size:
        raise unsupported(op, f"input {x.describe()} and output {o.describe()} must have the same type and "
                              "number of elements")
    if len(x.scale) > 1 or len(o.scale) > 1:
        raise unsupported(op, "per-channel quantized tensors are not reshaped by the native engine")
    if not _same_quant(x, o):
        # TFLite's RESHAPE and SQUEEZE copy the bytes whatever the quantization (EXPAND_DIMS refuses): the
        # output's values would not mean the input's. Refused rather than silently reinterpreted.
        raise unsupported(op, f"input (scale {list(x.scale)}, zero point {list(x.zero_point)}) and output (scale "
                              f"{list(o.scale)}, zero point {list(o.zero_point)}) are quantized differently; "
                              f"{op.opcode} keeps the bytes, so they must be equal")
    block, items = _blocks(x.nbytes, unit=256)
    return [Step("COPY", items, [x.nbytes, block], [op.inputs[0], op.outputs[0]])]


# -- CONCATENATION -----------------------------------------------------------------------------------------------

@preparer("CONCATENATION")
def concatenation(op: Operator, g: Graph) -> list[Step]:
    if not op.inputs or len(op.outputs) != 1 or any(i < 0 for i in op.inputs):
        raise unsupported(op, "expected at least one input and one output")
    o = g.tensors[op.outputs[0]]
    xs = [g.tensors[i] for i in op.inputs]
    if _fused(op) != "NONE":
        raise unsupported(op, "TFLite's CONCATENATION takes no fused activation")
    rank = len(o.shape)
    if rank == 0:
        raise unsupported(op, "scalar inputs are not concatenated by the native engine")
    axis = int(op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise unsupported(op, f"axis {op.options.get('axis')} is out of range for rank {rank}")
    for k, t in enumerate(xs):
        if t.dtype != o.dtype:
            raise unsupported(op, f"input {k} {t.describe()} is not {o.dtype} like the output")
        if len(t.shape) != rank or any(t.shape[d] != o.shape[d] for d in range(rank) if d != axis):
            raise unsupported(op, f"input {k} {t.describe()} does not match the output {list(o.shape)} outside "
                                  f"axis {axis}")
        # TFLite's Prepare requires every int8 input to carry the output's scale and zero point exactly (uint8
        # inputs it would requantize, which this byte copy does not: refused as well)
        if (t.scale or o.scale) and not _same_quant(t, o):
            raise unsupported(op, f"input {k} is quantized (scale {list(t.scale)}, zero point {list(t.zero_point)}) "
                                  f"unlike the output (scale {list(o.scale)}, zero point {list(o.zero_point)}); "
                                  "TFLite requires int8 inputs quantized exactly as the output")
    if sum(t.shape[axis] for t in xs) != o.shape[axis]:
        raise unsupported(op, f"inputs' sizes on axis {axis} do not add up to the output's {o.shape[axis]}")
    outer = int(np.prod(o.shape[:axis], dtype=np.int64)) if axis else 1
    row = o.nbytes // outer
    steps, at = [], 0
    for first in range(0, len(xs), CONCAT_MAX_INPUTS):
        group = list(range(first, min(first + CONCAT_MAX_INPUTS, len(xs))))
        chunks = [xs[k].nbytes // outer for k in group]
        params = [outer, len(group), row, at] + chunks
        steps.append(Step("CONCATENATION", outer * len(group), params,
                          [op.inputs[k] for k in group] + [op.outputs[0]]))
        at += sum(chunks)
    assert at == row
    return steps


# -- QUANTIZE, DEQUANTIZE ----------------------------------------------------------------------------------------

def _float_bits(x: float) -> int:
    return int(np.array([x], dtype=np.float32).view(np.int32)[0])


@preparer("QUANTIZE")
def quantize(op: Operator, g: Graph) -> list[Step]:
    _n_io(op, (1,))
    x = g.tensors[op.inputs[0]]
    o = _quantized(op, g, op.outputs[0], "the output", ("INT8", "UINT8"))
    block, items = _blocks(o.size)
    if x.dtype == "FLOAT32":
        # reference_ops::AffineQuantize: round(x / scale) in float32, + zero point, clamped
        params = [0, TYPE_CODES["FLOAT32"], TYPE_CODES[o.dtype], o.size, block, _float_bits(o.scale[0]), 0,
                  o.zero_point[0], 0, 0]
    else:
        x = _quantized(op, g, op.inputs[0], "the input", ("FLOAT32", "INT8", "UINT8"))
        if x.shape != o.shape:
            raise unsupported(op, f"input shape {list(x.shape)} differs from output shape {list(o.shape)}")
        # quantize.cc Prepare: input_scale / output_scale in double; reference_ops::Requantize
        m, sh = quantize_multiplier(float(x.scale[0]) / float(o.scale[0]))
        _check_shift(op, "input/output", sh, hi=20)
        params = [1, TYPE_CODES[x.dtype], TYPE_CODES[o.dtype], o.size, block, 0, x.zero_point[0], o.zero_point[0],
                  m, sh]
    if x.size != o.size:
        raise unsupported(op, f"input {x.describe()} and output {o.describe()} differ in size")
    return [Step("QUANTIZE", items, params, [op.inputs[0], op.outputs[0]])]


@preparer("DEQUANTIZE")
def dequantize(op: Operator, g: Graph) -> list[Step]:
    _n_io(op, (1,))
    x = _quantized(op, g, op.inputs[0], "the input", ("INT8", "UINT8"))
    o = g.tensors[op.outputs[0]]
    if o.dtype != "FLOAT32" or o.size != x.size:
        raise unsupported(op, f"output {o.describe()} must be FLOAT32 with the input's {x.size} elements")
    block, items = _blocks(x.size)
    params = [TYPE_CODES[x.dtype], x.size, block, _float_bits(x.scale[0]), x.zero_point[0]]
    return [Step("DEQUANTIZE", items, params, [op.inputs[0], op.outputs[0]])]
