"""Preparers for SOFTMAX, LOGISTIC, HARD_SWISH, RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (int8).

Each one checks the operator against what TFLite's reference kernel (BUILTIN_REF) accepts and computes what
its Prepare computes, with the same float32/double arithmetic, so the C kernels (csrc/ref/activation_ref.c,
layouts in csrc/activation.h) give TFLite's bytes:

  SOFTMAX          PreprocessSoftmaxScaling (double) -> input multiplier, left shift, diff_min
  LOGISTIC         LUTPopulate<int8_t> in float32 with libm's expf -> a 256-byte table
  HARD_SWISH       HardSwishPrepare (float32, QuantizeMultiplier, 16-bit downscale)
  RESIZE_BILINEAR  nothing to precompute: the kernel's arithmetic is integer; sizes and flags only
  RESIZE_NEAREST_NEIGHBOR  GetNearestNeighbor's float32 positions -> an int32 index table
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from typing import Callable, Optional

import numpy as np

from ..graph import Graph, Operator, Tensor
from . import Const, Step, preparer, unsupported
from .quant import f32 as _f32
from .quant import quantize_multiplier, round_half_away

# elements per work item of the element-wise kinds (LOGISTIC, HARD_SWISH)
BLOCK = 4096
MAX_RESIZE_DIM = 1 << 20   # EV_RESIZE_MAX_DIM
INT32_MAX = 2 ** 31 - 1


# ---- TFLite's Prepare arithmetic ------------------------------------------------------------------------







def _libm_expf() -> Optional[Callable[[float], float]]:
    """The C library's expf, which TFLite's LUTPopulate calls (through std::exp(float)). numpy's float32 exp is
    a different implementation and differs from it in the last bit often enough to change table entries."""
    for name in (ctypes.util.find_library("m"), "libm.so.6", None):
        try:
            lib = ctypes.CDLL(name)
            f = lib.expf
        except (OSError, AttributeError):
            continue
        f.restype = ctypes.c_float
        f.argtypes = [ctypes.c_float]
        return lambda x: f(x)
    return None


_EXPF = _libm_expf()


def expf(x: np.float32) -> np.float32:
    if _EXPF is not None:
        return np.float32(_EXPF(float(x)))
    # no C library reachable: the correctly rounded value (agrees with glibc's expf almost always)
    return np.float32(math.exp(float(x))) if float(x) < 89 else np.float32(np.inf)


def logistic_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> bytes:
    """LUTPopulate<int8_t>(..., [](float v) { return 1.0f / (1.0f + std::exp(-v)); }) in float32: entry
    uint8(val) holds clamp(int32(roundf(sigmoid(input_scale * (val - zp)) * (1 / output_scale)) + out_zp))."""
    table = np.zeros(256, dtype=np.int8)
    inverse_scale = _f32(1) / _f32(output_scale)
    with np.errstate(over="ignore"):
        for val in range(-128, 128):
            dequantized = _f32(input_scale) * _f32(val - input_zp)
            transformed = _f32(1) / (_f32(1) + expf(-dequantized))
            rescaled = _f32(round_half_away(float(transformed * inverse_scale)))  # roundf (exact: float32 -> double)
            quantized = int(rescaled + _f32(output_zp))
            table[val & 0xFF] = max(-128, min(127, quantized))
    return table.tobytes()


def downscale_int32_to_int16_multiplier(m: int) -> int:
    """activations.cc DownScaleInt32ToInt16Multiplier."""
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16


# ---- helpers --------------------------------------------------------------------------------------------

def _io(op: Operator, g: Graph, n_inputs: int) -> tuple[Tensor, Tensor]:
    if len(op.inputs) != n_inputs or len(op.outputs) != 1 or any(i < 0 for i in op.inputs):
        raise unsupported(op, f"expected {n_inputs} input(s) and 1 output, got {len(op.inputs)} and {len(op.outputs)}")
    return g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]


def _per_tensor(op: Operator, t: Tensor, role: str) -> tuple[float, int]:
    if len(t.scale) != 1:
        raise unsupported(op, f"the {role} {t.describe()} must be quantized with one scale and zero point "
                              f"(got {len(t.scale)} scales)")
    return t.scale[0], t.zero_point[0]


def _int8_pair(op: Operator, x: Tensor, y: Tensor, same_shape: bool = True) -> None:
    if x.dtype != "INT8" or y.dtype != "INT8":
        raise unsupported(op, f"the native engine runs it on int8 tensors only; input is {x.dtype}, output "
                              f"{y.dtype}")
    if same_shape and x.shape != y.shape:
        raise unsupported(op, f"output shape {list(y.shape)} differs from input shape {list(x.shape)}")


def _blocks(n: int) -> int:
    return -(-n // BLOCK)


# ---- SOFTMAX ----------------------------------------------------------------------------------------------

@preparer("SOFTMAX")
def softmax(op: Operator, g: Graph) -> list[Step]:
    x, y = _io(op, g, 1)
    _int8_pair(op, x, y)
    if len(x.shape) < 1:
        raise unsupported(op, "the input must have at least one dimension")
    in_scale, _ = _per_tensor(op, x, "input")
    out_scale, out_zp = _per_tensor(op, y, "output")
    # SoftmaxPrepare: TF_LITE_ENSURE_EQ(zero_point, -128), TF_LITE_ENSURE_NEAR(scale, 1/256, 0.001/256) in float
    if out_zp != -128 or abs(_f32(out_scale) - _f32(1) / _f32(256)) > _f32(0.001) * _f32(1) / _f32(256):
        raise unsupported(op, f"int8 SOFTMAX output must be quantized with scale 1/256 and zero point -128, as "
                              f"TFLite requires; got scale {out_scale!r}, zero point {out_zp}")
    beta = float(op.options.get("beta", 0.0))
    # PreprocessSoftmaxScaling(beta, input_scale, 5) in double
    real = min(beta * in_scale * float(1 << (31 - 5)), float((1 << 31) - 1))
    if not real > 1.0:   # QuantizeMultiplierGreaterThanOne CHECK-fails (aborts) in TFLite
        raise unsupported(op, f"beta ({beta!r}) * input scale ({in_scale!r}) * 2^26 = {real!r} must be > 1 "
                              "(TFLite's softmax scaling requires it)")
    mult, shift = quantize_multiplier(real)
    # CalculateInputRadius(5, shift): floor(31 * 2^26 / 2^shift), in double
    diff_min = -int(math.floor(31.0 * float(1 << 26) / float(1 << shift)))
    depth = x.shape[-1]
    outer = x.size // depth
    return [Step("SOFTMAX", outer, [outer, depth, mult, shift, diff_min], [op.inputs[0], op.outputs[0]])]


# ---- LOGISTIC ---------------------------------------------------------------------------------------------

@preparer("LOGISTIC")
def logistic(op: Operator, g: Graph) -> list[Step]:
    x, y = _io(op, g, 1)
    _int8_pair(op, x, y)
    in_scale, in_zp = _per_tensor(op, x, "input")
    out_scale, out_zp = _per_tensor(op, y, "output")
    # SigmoidPrepare<kReference>: TF_LITE_ENSURE(output->params.scale == 1. / 256). The reference kernel takes
    # any output zero point (the table includes it); converters always write -128.
    if out_scale != 1.0 / 256:
        raise unsupported(op, f"int8 LOGISTIC output must have scale 1/256 (TFLite requires it; zero point -128 "
                              f"is usual); got scale {out_scale!r}")
    table = Const(logistic_table(in_scale, in_zp, out_scale, out_zp), name=f"logistic_table_{op.index}")
    n = x.size
    return [Step("LOGISTIC", _blocks(n), [n, BLOCK], [op.inputs[0], table, op.outputs[0]])]


# ---- HARD_SWISH -------------------------------------------------------------------------------------------

def hard_swish_params(in_scale: float, out_scale: float) -> tuple[int, int, int, int]:
    """HardSwishPrepare in float32: (output mult16, output exponent, reluish mult16, reluish exponent)."""
    hires_input_scale = _f32(1.0 / 128.0) * _f32(in_scale)
    reluish_scale = _f32(3.0) / _f32(32768.0)
    output_multiplier = hires_input_scale / _f32(out_scale)
    m, out_exp = quantize_multiplier(float(output_multiplier))
    out_m16 = downscale_int32_to_int16_multiplier(m)
    reluish_multiplier = hires_input_scale / reluish_scale
    m, relu_exp = quantize_multiplier(float(reluish_multiplier))
    relu_m16 = downscale_int32_to_int16_multiplier(m)
    return out_m16, out_exp, relu_m16, relu_exp


@preparer("HARD_SWISH")
def hard_swish(op: Operator, g: Graph) -> list[Step]:
    x, y = _io(op, g, 1)
    _int8_pair(op, x, y)
    in_scale, in_zp = _per_tensor(op, x, "input")
    out_scale, out_zp = _per_tensor(op, y, "output")
    out_m16, out_exp, relu_m16, relu_exp = hard_swish_params(in_scale, out_scale)
    if out_exp > 0:   # TF_LITE_ENSURE(output_multiplier_exponent <= 0)
        raise unsupported(op, f"input scale / 128 / output scale = {in_scale / 128 / out_scale!r} must be < 1 "
                              f"(TFLite's HARD_SWISH requires output_multiplier_exponent <= 0; input scale "
                              f"{in_scale!r}, output scale {out_scale!r})")
    if relu_exp > 31:
        raise unsupported(op, f"input scale {in_scale!r} is too large for TFLite's HARD_SWISH fixed point")
    n = x.size
    return [Step("HARD_SWISH", _blocks(n), [n, BLOCK, in_zp, out_zp, out_m16, out_exp, relu_m16, relu_exp],
                 [op.inputs[0], op.outputs[0]])]


# ---- RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR ------------------------------------------------------------

def _resize_common(op: Operator, g: Graph, dtypes: tuple[str, ...]) -> tuple[Tensor, Tensor, int, int]:
    x, y = _io(op, g, 2)
    if x.dtype not in dtypes or y.dtype != x.dtype:
        raise unsupported(op, f"the native engine runs it on {' or '.join(dtypes)} tensors; input is {x.dtype}, "
                              f"output {y.dtype}")
    if len(x.shape) != 4:
        raise unsupported(op, f"the input must be 4-D (NHWC), got shape {list(x.shape)}")
    size = g.tensors[op.inputs[1]]
    if not size.is_constant:
        raise unsupported(op, f"the output size {size.describe()} must be a constant (the native engine plans "
                              "static shapes)")
    if size.dtype != "INT32" or size.shape != (2,):
        raise unsupported(op, f"the output size {size.describe()} must be INT32[2]")
    out_h, out_w = (int(v) for v in size.array())
    if out_h < 1 or out_w < 1:
        raise unsupported(op, f"output size {out_h}x{out_w} must be positive")
    b, in_h, in_w, c = x.shape
    if y.shape != (b, out_h, out_w, c):
        raise unsupported(op, f"output shape {list(y.shape)} does not match the input {list(x.shape)} resized to "
                              f"{out_h}x{out_w}")
    if max(in_h, in_w, out_h, out_w) > MAX_RESIZE_DIM or b * out_h > INT32_MAX:
        raise unsupported(op, f"sizes {in_h}x{in_w} -> {out_h}x{out_w} exceed what the native engine plans "
                              f"(each at most {MAX_RESIZE_DIM})")
    return x, y, out_h, out_w


def _flags(op: Operator) -> tuple[bool, bool]:
    return bool(op.options.get("align_corners", False)), bool(op.options.get("half_pixel_centers", False))


def bilinear_positions(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool):
    """ResizeBilinearInteger's (lower, upper) input index for each output index (C int32 arithmetic)."""
    def cdiv(a: int, b: int) -> int:  # C division, truncating toward zero
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b > 0) else -q
    if align_corners and out_size > 1:
        scale10 = cdiv(1024 * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    else:
        scale10 = cdiv(1024 * in_size + out_size // 2, out_size)
    out = []
    for o in range(out_size):
        pos = o * scale10 + cdiv(scale10, 2) - 512 if half_pixel_centers else o * scale10
        out.append((max(cdiv(pos, 1024), 0), min(cdiv(pos + 1023, 1024), in_size - 1)))
    return out


@preparer("RESIZE_BILINEAR")
def resize_bilinear(op: Operator, g: Graph) -> list[Step]:
    x, y, out_h, out_w = _resize_common(op, g, ("INT8",))
    align, half = _flags(op)
    if align and half:
        raise unsupported(op, "align_corners and half_pixel_centers are both set; TFLite refuses that")
    b, in_h, in_w, c = x.shape
    for axis, n_in, n_out in (("rows", in_h, out_h), ("columns", in_w, out_w)):
        for o, (lo, hi) in enumerate(bilinear_positions(n_in, n_out, align, half)):
            if not (0 <= lo <= n_in - 1 and 0 <= hi <= n_in - 1):
                raise unsupported(op, f"resizing {n_in} {axis} to {n_out}: TFLite's integer kernel would read "
                                      f"input index {lo} of {n_in} for output {o} (its rounded scale overshoots); "
                                      "the native engine does not reproduce that out-of-bounds read")
    # Like TFLite, values are interpolated as they are: input and output quantization are taken to be equal.
    params = [b, in_h, in_w, c, out_h, out_w, int(align), int(half)]
    return [Step("RESIZE_BILINEAR", b * out_h, params, [op.inputs[0], op.outputs[0]])]


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """reference_ops::GetNearestNeighbor for every output index, in float32 as TFLite computes it."""
    if align_corners and out_size > 1:
        scale = _f32(in_size - 1) / _f32(out_size - 1)
    else:
        scale = _f32(in_size) / _f32(out_size)
    offset = _f32(0.5) if half_pixel_centers else _f32(0.0)
    v = (np.arange(out_size, dtype=np.float32) + offset) * scale          # float32 throughout
    v64 = v.astype(np.float64)
    if align_corners:
        idx = np.sign(v64) * np.floor(np.abs(v64) + 0.5)                  # roundf: halves away from zero
    else:
        idx = np.floor(v64)
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    if half_pixel_centers:
        idx = np.maximum(idx, 0)
    return idx.astype(np.int32)


@preparer("RESIZE_NEAREST_NEIGHBOR")
def resize_nearest_neighbor(op: Operator, g: Graph) -> list[Step]:
    x, y, out_h, out_w = _resize_common(op, g, ("INT8", "UINT8"))
    align, half = _flags(op)
    b, in_h, in_w, c = x.shape
    rows = nearest_indices(in_h, out_h, align, half)
    cols = nearest_indices(in_w, out_w, align, half)
    for axis, idx, n_in in (("row", rows, in_h), ("column", cols, in_w)):
        if idx.size and (idx.min() < 0 or idx.max() > n_in - 1):
            raise unsupported(op, f"an output {axis} maps to input {axis} {int(idx.min())}..{int(idx.max())} of "
                                  f"{n_in}")
    table = Const(np.concatenate([rows, cols]).astype("<i4").tobytes(), name=f"resize_nearest_table_{op.index}")
    params = [b, in_h, in_w, c, out_h, out_w]
    return [Step("RESIZE_NEAREST_NEIGHBOR", b * out_h, params, [op.inputs[0], table, op.outputs[0]])]
