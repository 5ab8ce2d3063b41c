"""TFLite's quantization arithmetic in Python, as its kernels' Prepare functions compute it: the one copy every
preparer uses (ops/*.py). Python floats are IEEE doubles, so double arithmetic matches TFLite's C++ exactly;
where TFLite computes in float32, callers say so with f32().
"""
from __future__ import annotations

import math

import numpy as np

from ..graph import Operator, Tensor
from . import unsupported

_OUTPUT_RANGE = {"INT8": (-128, 127), "UINT8": (0, 255)}
FUSED = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def f32(x) -> np.float32:
    """x as a float32 (TFLite holds scales as floats; arithmetic on two of them is float32 arithmetic)."""
    return np.float32(x)


def round_half_away(x: float) -> int:
    """std::round / TfLiteRound on a double: nearest integer, halves away from zero (exact for any double;
    numpy's round is half-to-even)."""
    if x < 0:
        return -round_half_away(-x)
    f = math.floor(x)
    return int(f) + (1 if x - f >= 0.5 else 0)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier (TFLITE_SINGLE_ROUNDING off): m ~= q * 2**(shift - 31), q in [2**30, 2**31);
    multipliers below ~2**-31 flush to (0, 0), as TFLite does."""
    if m == 0.0:
        return 0, 0
    frac, shift = math.frexp(m)
    q = round_half_away(frac * (1 << 31))  # frac * 2**31 is exact
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def activation_range(op: Operator, act: str, out: Tensor) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: a fused activation's bounds on an int8/uint8 output, each
    zero_point + round(f / scale) with the division in float32."""
    qmin, qmax = _OUTPUT_RANGE[out.dtype]
    scale, zp = f32(out.scale[0]), out.zero_point[0]

    def q(f: float) -> int:
        with np.errstate(over="ignore"):
            t = round_half_away(float(f32(f) / scale))
        if not -2 ** 31 <= t <= 2 ** 31 - 1:
            raise unsupported(op, f"its fused {act} bound {f} does not quantize to int32 with output scale "
                                  f"{float(scale)}")
        return zp + t

    if act == "NONE":
        return qmin, qmax
    if act == "RELU":
        return max(qmin, q(0.0)), qmax
    if act == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise unsupported(op, f"fused activation {act} is not supported for int8 (expected one of {', '.join(FUSED)})")
