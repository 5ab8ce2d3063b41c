"""Preparers for the standalone activations RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, TANH and PRELU (int8) and for
TRANSPOSE (any 1-, 2- or 4-byte element type).

Each one checks the operator against what TFLite's reference kernel (BUILTIN_REF) accepts and computes what its
Prepare computes, with the same float32/double arithmetic, so the C kernels (csrc/ref/misc_ref.c, layouts in
csrc/misc.h) give TFLite's bytes:

  RELU family  ReluPrepare: QuantizeMultiplier(input_scale / output_scale) (the division in float32), and
               QuantizedReluX's bounds out_zp + (int)roundf(bound / output_scale) in float32
  TANH         LUTPopulate<int8_t> in float32 with libm's tanhf -> a 256-byte table
  PRELU        PreluPrepare: QuantizeMultiplier of input_scale / output_scale and of input_scale * alpha_scale /
               output_scale (float32 arithmetic), alpha broadcast against the input
  TRANSPOSE    nothing to compute: the constant perm, normalised (size-1 dimensions dropped, dimensions that stay
               adjacent merged) and padded to 6-D
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from typing import Callable, Optional, Sequence

import numpy as np

from ..graph import Graph, Operator, Tensor
from . import Const, Step, preparer, unsupported
from .quant import quantize_multiplier, round_half_away

DIMS = 6                    # EV_MISC_DIMS
BLOCK = 4096                # elements per work item of every kind here
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1

# The highest operator versions TFLite defines (tflite/converter/tools/versioning/op_version.cc). What a newer
# version adds (int16, 4-bit or bool tensors, ranks above 6) is refused by the type and shape checks below; a
# version above these is something we have never seen.
MAX_VERSION = {"RELU": 3, "RELU6": 3, "RELU_N1_TO_1": 1, "RELU_0_TO_1": 1, "TANH": 3, "PRELU": 1, "TRANSPOSE": 9}

# The float bounds QuantizedReluX clamps to, per opcode (activations.cc ReluEval, Relu6Eval, Relu1Eval,
# Relu0to1Eval); +inf means "no upper bound": the type's maximum.
RELU_BOUNDS = {"RELU": (0.0, math.inf), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0), "RELU_0_TO_1": (0.0, 1.0)}

# The largest left shifts the kernels accept (misc_check.c): |value| * 2^shift must stay below 2^31 - 256 for
# values up to 255 (RELU, the PRELU identity branch) and 255 * 255 (the PRELU alpha branch).
MAX_SHIFT_255 = 23
MAX_SHIFT_65025 = 15

# TRANSPOSE element types: bytes per element
ELEMENT_SIZE = {"INT8": 1, "UINT8": 1, "INT16": 2, "INT32": 4, "FLOAT32": 4}


def _f32(x) -> np.float32:
    return np.float32(x)


# ---- shared checks ------------------------------------------------------------------------------------------

def _version(op: Operator) -> None:
    if op.version > MAX_VERSION[op.opcode]:
        raise unsupported(op, f"version {op.version}; the native engine knows {op.opcode} up to version "
                              f"{MAX_VERSION[op.opcode]}")


def _arity(op: Operator, n_inputs: int) -> None:
    if len(op.inputs) != n_inputs or len(op.outputs) != 1:
        raise unsupported(op, f"expected {n_inputs} input(s) and 1 output, got {len(op.inputs)} and "
                              f"{len(op.outputs)}")
    if any(i < 0 for i in op.inputs):
        raise unsupported(op, f"all {n_inputs} inputs are required; one is omitted (-1)")


def _int8(op: Operator, t: Tensor, role: str) -> tuple[float, int]:
    """(scale, zero point) of an int8 tensor quantized per tensor, or a refusal naming the operator."""
    if t.dtype != "INT8":
        raise unsupported(op, f"the native engine runs {op.opcode} on int8 tensors only; the {role} "
                              f"{t.describe()} is {t.dtype}")
    if len(t.scale) != 1:
        raise unsupported(op, f"the {role} {t.describe()} must be quantized with one scale and zero point "
                              f"(got {len(t.scale)} scales)")
    return t.scale[0], t.zero_point[0]


def _blocks(n: int) -> int:
    return -(-n // BLOCK)


def _pad6(shape: Sequence[int]) -> list[int]:
    return [1] * (DIMS - len(shape)) + [int(d) for d in shape]


# ---- RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1 -----------------------------------------------------------------

def relu_params(op: Operator, in_scale: float, out_scale: float, out_zp: int) -> tuple[int, int, int, int]:
    """(multiplier, shift, act_min, act_max) as ReluPrepare and QuantizedReluX<int8_t> compute them."""
    # ReluPrepare: `double real_multiplier = input->params.scale / output->params.scale;` divides two floats
    # (in float32), then widens the quotient
    mult, shift = quantize_multiplier(float(_f32(in_scale) / _f32(out_scale)))
    lo_f, hi_f = RELU_BOUNDS[op.opcode]

    def bound(f: float) -> int:
        # output_zero_point + static_cast<int32>(roundf(f / output_scale)), the division in float32
        with np.errstate(over="ignore"):
            q = round_half_away(float(_f32(f) / _f32(out_scale)))
        if not INT32_MIN <= out_zp + q <= INT32_MAX:
            raise unsupported(op, f"its bound {f} does not quantize to int32 with output scale {out_scale!r}")
        return out_zp + q

    act_min = max(-128, bound(lo_f))
    act_max = 127 if hi_f == math.inf else min(127, bound(hi_f))
    return mult, shift, act_min, act_max


@preparer("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1")
def relu(op: Operator, g: Graph) -> list[Step]:
    _version(op)
    _arity(op, 1)
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    in_scale, in_zp = _int8(op, x, "input")
    out_scale, out_zp = _int8(op, y, "output")
    if x.shape != y.shape:
        raise unsupported(op, f"output shape {list(y.shape)} differs from input shape {list(x.shape)}")
    mult, shift, act_min, act_max = relu_params(op, in_scale, out_scale, out_zp)
    if shift > MAX_SHIFT_255:
        raise unsupported(op, f"input scale / output scale = {in_scale / out_scale!r} is too large: TFLite's int32 "
                              "requantisation would overflow (at most 2^23 is supported)")
    n = x.size
    return [Step("RELU", _blocks(n), [n, BLOCK, in_zp, out_zp, mult, shift, act_min, act_max],
                 [op.inputs[0], op.outputs[0]])]


# ---- TANH ---------------------------------------------------------------------------------------------------

def _libm_tanhf() -> Optional[Callable[[float], float]]:
    """The C library's tanhf, which TFLite's LUTPopulate calls (std::tanh of a float). numpy's float32 tanh is a
    different implementation and may differ from it in the last bit, which can move a table entry."""
    for name in (ctypes.util.find_library("m"), "libm.so.6", None):
        try:
            f = ctypes.CDLL(name).tanhf
        except (OSError, AttributeError):
            continue
        f.restype = ctypes.c_float
        f.argtypes = [ctypes.c_float]
        return lambda v: f(v)
    return None


_TANHF = _libm_tanhf()


def tanhf(x: np.float32) -> np.float32:
    if _TANHF is not None:
        return np.float32(_TANHF(float(x)))
    # no C library reachable: the correctly rounded value (what glibc's tanhf gives almost always)
    return np.float32(math.tanh(float(x)))


def tanh_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> bytes:
    """LUTPopulate<int8_t>(..., [](float v) { return std::tanh(v); }) in float32: entry uint8(val) holds
    clamp(int32(roundf(tanhf(input_scale * (val - zp)) * (1 / output_scale)) + out_zp))."""
    table = np.zeros(256, dtype=np.int8)
    inverse_scale = _f32(1) / _f32(output_scale)
    for val in range(-128, 128):
        dequantized = _f32(input_scale) * _f32(val - input_zp)   # int32 -> float, then a float32 product
        transformed = tanhf(dequantized)
        rescaled = _f32(round_half_away(float(transformed * inverse_scale)))  # roundf (exact through double)
        quantized = int(rescaled + _f32(output_zp))                # float32 sum, truncated to int32
        table[val & 0xFF] = max(-128, min(127, quantized))
    return table.tobytes()


@preparer("TANH")
def tanh(op: Operator, g: Graph) -> list[Step]:
    _version(op)
    _arity(op, 1)
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    in_scale, in_zp = _int8(op, x, "input")
    out_scale, out_zp = _int8(op, y, "output")
    if x.shape != y.shape:
        raise unsupported(op, f"output shape {list(y.shape)} differs from input shape {list(x.shape)}")
    # TanhPrepare<kReference> takes any int8 output quantization (converters write scale 1/128, zero point 0);
    # the table includes it.
    table = Const(tanh_table(in_scale, in_zp, out_scale, out_zp), name=f"tanh_table_{op.index}")
    n = x.size
    return [Step("TANH", _blocks(n), [n, BLOCK], [op.inputs[0], table, op.outputs[0]])]


# ---- PRELU --------------------------------------------------------------------------------------------------

def prelu_multipliers(in_scale: float, alpha_scale: float, out_scale: float) -> tuple[int, int, int, int]:
    """PreluPrepare: `double real_multiplier_1 = input->params.scale / output->params.scale;` and
    `input->params.scale * alpha->params.scale / output->params.scale`: float arithmetic, widened after."""
    m1, s1 = quantize_multiplier(float(_f32(in_scale) / _f32(out_scale)))
    m2, s2 = quantize_multiplier(float(_f32(in_scale) * _f32(alpha_scale) / _f32(out_scale)))
    return m1, s1, m2, s2


def merge_broadcast(shape: Sequence[int], alpha_strides: Sequence[int]) -> tuple[list[int], list[int]]:
    """Merge adjacent dimensions whose alpha strides continue each other (stride_outer == stride_inner * dim_inner,
    which covers two broadcast dimensions and two dimensions alpha has in full), and drop size-1 ones: the
    same element order and alpha offsets with fewer, longer dimensions."""
    dims: list[int] = []
    strides: list[int] = []
    for d, s in zip(shape, alpha_strides):
        if d == 1:
            continue
        if dims and strides[-1] == s * d:   # the previous (outer) dimension continues this one
            dims[-1] *= d
            strides[-1] = s
        else:
            dims.append(int(d))
            strides.append(int(s))
    return dims, strides


@preparer("PRELU")
def prelu(op: Operator, g: Graph) -> list[Step]:
    _version(op)
    _arity(op, 2)
    x, alpha, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    in_scale, in_zp = _int8(op, x, "input")
    alpha_scale, alpha_zp = _int8(op, alpha, "alpha")
    out_scale, out_zp = _int8(op, y, "output")
    # PreluPrepare: the output is the broadcast of input and alpha, and must have the input's shape
    if y.shape != x.shape:
        raise unsupported(op, f"output shape {list(y.shape)} differs from input shape {list(x.shape)}")
    if len(alpha.shape) > len(x.shape) or any(
            a not in (1, d) for a, d in zip(alpha.shape[::-1], x.shape[::-1])):
        raise unsupported(op, f"alpha shape {list(alpha.shape)} does not broadcast to the input shape "
                              f"{list(x.shape)} (each alpha dimension, aligned right, must be 1 or the input's)")
    m1, s1, m2, s2 = prelu_multipliers(in_scale, alpha_scale, out_scale)
    if s1 > MAX_SHIFT_255 or s2 > MAX_SHIFT_65025:
        raise unsupported(op, f"input scale {in_scale!r}, alpha scale {alpha_scale!r} and output scale "
                              f"{out_scale!r} give multipliers so large that TFLite's int32 arithmetic overflows")
    # alpha element strides along each input dimension: 0 where alpha is broadcast
    a_shape = [1] * (len(x.shape) - len(alpha.shape)) + list(alpha.shape)
    a_strides, s = [0] * len(a_shape), 1
    for k in range(len(a_shape) - 1, -1, -1):
        a_strides[k] = s if a_shape[k] > 1 else 0
        s *= a_shape[k]
    dims, strides = merge_broadcast(x.shape, a_strides)
    if len(dims) > DIMS:    # a rank-6 input with alternating broadcast dimensions still fits; more cannot occur
        raise unsupported(op, f"input shape {list(x.shape)} has more than {DIMS} dimensions")
    dims = [1] * (DIMS - len(dims)) + dims
    strides = [0] * (DIMS - len(strides)) + strides
    n = x.size
    params = dims + strides + [BLOCK, in_zp, alpha_zp, out_zp, m1, s1, m2, s2]
    return [Step("PRELU", _blocks(n), params, [op.inputs[0], op.inputs[1], op.outputs[0]])]


# ---- TRANSPOSE ----------------------------------------------------------------------------------------------

def simplify_transpose(shape: Sequence[int], perm: Sequence[int]) -> tuple[list[int], list[int]]:
    """The same transpose on fewer dimensions: input dimensions of size 1 are dropped, and input dimensions that
    stay adjacent and in order in the output (perm[k + 1] == perm[k] + 1) are merged into one. Returns (input
    shape, perm) of the result (possibly empty: a plain copy)."""
    keep = [d for d in range(len(shape)) if shape[d] != 1]
    renumber = {d: i for i, d in enumerate(keep)}
    sh = [int(shape[d]) for d in keep]
    pm = [renumber[p] for p in perm if shape[p] != 1]
    # runs of consecutive input dimensions, in output order
    runs: list[list[int]] = []
    for p in pm:
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    by_input = sorted(range(len(runs)), key=lambda r: runs[r][0])   # merged input dimensions, in input order
    new_shape = [int(np.prod([sh[d] for d in runs[r]])) for r in by_input]
    position = {r: i for i, r in enumerate(by_input)}
    new_perm = [position[r] for r in range(len(runs))]
    return new_shape, new_perm


@preparer("TRANSPOSE")
def transpose(op: Operator, g: Graph) -> list[Step]:
    _version(op)
    _arity(op, 2)
    x, perm_t, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if x.dtype not in ELEMENT_SIZE or y.dtype != x.dtype:
        raise unsupported(op, f"the native engine transposes {', '.join(ELEMENT_SIZE)} tensors, input and output "
                              f"alike; input is {x.dtype}, output {y.dtype}")
    if len(x.scale) > 1 or len(y.scale) > 1:
        raise unsupported(op, "per-channel quantized tensors are not transposed by the native engine")
    if (x.scale, x.zero_point) != (y.scale, y.zero_point):
        # TFLite moves the bytes whatever the quantization: the output's values would not mean the input's.
        # Refused rather than silently reinterpreted (converters give both the same quantization).
        raise unsupported(op, f"input (scale {list(x.scale)}, zero point {list(x.zero_point)}) and output (scale "
                              f"{list(y.scale)}, zero point {list(y.zero_point)}) are quantized differently; "
                              "TRANSPOSE keeps the values' bytes, so they must be equal")
    rank = len(x.shape)
    if rank > DIMS:
        raise unsupported(op, f"input rank {rank}; the native engine transposes up to {DIMS} dimensions")
    if not perm_t.is_constant:
        raise unsupported(op, f"the permutation {perm_t.describe()} must be a constant (the native engine plans "
                              "static shapes)")
    if perm_t.dtype != "INT32" or perm_t.shape != (rank,):
        raise unsupported(op, f"the permutation {perm_t.describe()} must be INT32[{rank}] (one entry per input "
                              "dimension)")
    raw = [int(v) for v in perm_t.array()]
    # transpose.cc: entries in [-rank, rank), negative ones counting from the end
    if any(not -rank <= v < rank for v in raw):
        raise unsupported(op, f"permutation {raw} has entries outside [-{rank}, {rank})")
    perm = [v + rank if v < 0 else v for v in raw]
    if sorted(perm) != list(range(rank)):
        raise unsupported(op, f"{raw} is not a permutation of the input's {rank} dimensions")
    want = tuple(x.shape[p] for p in perm)
    if y.shape != want:
        raise unsupported(op, f"output shape {list(y.shape)}; the permutation gives {list(want)}")
    shape, p = simplify_transpose(x.shape, perm)
    r = len(shape)
    in_dims = _pad6(shape)
    perm6 = list(range(DIMS - r)) + [v + DIMS - r for v in p]
    n = x.size
    params = in_dims + perm6 + [ELEMENT_SIZE[x.dtype], BLOCK]
    return [Step("TRANSPOSE", _blocks(n), params, [op.inputs[0], op.outputs[0]])]
