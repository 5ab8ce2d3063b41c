"""Calibrated float graph → int8 parameters, following the TFLite quantization specification:

* weights: int8, symmetric (zero point 0), values in [-127, 127], per output channel: CONV_2D and
  FULLY_CONNECTED along axis 0, DEPTHWISE_CONV_2D along axis 3;
* bias: int32, zero point 0, scale = input scale × weight scale (per channel);
* activations: int8, asymmetric, per tensor, with a range that always contains 0 so that zero (padding,
  ReLU) is exact;
* operators that move values without arithmetic (reshape, transpose, pad, pooling, resize, concatenation)
  keep input and output on the same scale, as the int8 kernels require: their tensors share one range;
* softmax and logistic outputs are fixed at scale 1/256, zero point -128 (tanh: 1/128, 0).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .gptq import gptq_weights
from .ir import ConversionError, Graph, QuantParams

# Ops whose int8 kernel does not rescale: every activation tensor they touch shares quantization parameters.
TIED_OPS = {"reshape", "transpose", "pad", "max_pool2d", "avg_pool2d", "resize", "concat"}
FIXED_OUTPUT = {"softmax": (1 / 256, -128), "sigmoid": (1 / 256, -128), "tanh": (1 / 128, 0)}


@dataclasses.dataclass
class QuantizedGraph:
    graph: Graph
    qdata: dict[str, np.ndarray]  # quantized constants by tensor name
    input_dtype: str = "int8"  # int8 | uint8 (then the writer inserts a QUANTIZE)
    output_dtype: str = "int8"  # int8 | float32 (then the writer appends a DEQUANTIZE)


def affine_params(lo: float, hi: float, qmin: int = -128, qmax: int = 127) -> tuple[float, int]:
    """Scale and zero point covering [lo, hi] ∪ {0} with the zero point an exact integer."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / (qmax - qmin)
    zp = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return scale, zp


def quantize_array(x: np.ndarray, scale, zero_point, qmin: int, qmax: int, axis: int | None = None) -> np.ndarray:
    """Round half away from zero, as TFLite does, then saturate."""
    x = np.asarray(x, np.float64)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale = np.asarray(scale, np.float64).reshape(shape)
        zero_point = np.asarray(zero_point, np.float64).reshape(shape)
    v = x / scale
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, qmin, qmax)


class _Groups:
    """Union-find over tensor names."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def quantize_graph(g: Graph, ranges: dict[str, tuple[float, float]], *,
                   input_params: tuple[float, int] | None = None, input_dtype: str = "int8",
                   output_dtype: str = "int8", channel_means: dict[str, np.ndarray] | None = None,
                   hessians: dict[str, np.ndarray] | None = None) -> QuantizedGraph:
    """Annotate every tensor of ``g`` with :class:`QuantParams` and quantize its constants.

    ``ranges`` maps each activation tensor to its calibrated (min, max). ``input_params`` fixes the input's
    (scale, zero point) — used when the normalisation maps pixels exactly onto int8 (see ``convert``).
    ``channel_means`` (per activation tensor, the calibration mean of each channel) enables bias correction;
    ``hessians`` (per weighted node's output tensor, its inputs' second moments) enables GPTQ weight rounding."""
    groups = _Groups()
    for node in g.nodes:
        if node.op in TIED_OPS:
            for i in node.inputs:
                if g.const(i) is None:
                    groups.union(i, node.outputs[0])
    # fixed parameters per group (softmax outputs, the model input)
    fixed: dict[str, tuple[float, int, str]] = {}

    def fix(tensor: str, params: tuple[float, int], why: str) -> None:
        root = groups.find(tensor)
        if root in fixed and (not np.isclose(fixed[root][0], params[0]) or fixed[root][1] != params[1]):
            raise ConversionError(f"tensor {tensor!r} must have quantization {params} ({why}) but is tied to "
                                  f"{fixed[root][2]} with {fixed[root][:2]}")
        fixed[root] = (params[0], params[1], why)

    for node in g.nodes:
        if node.op in FIXED_OUTPUT:
            fix(node.outputs[0], FIXED_OUTPUT[node.op], f"{node.op} output")
    if input_params is not None:
        fix(g.inputs[0], input_params, "model input")
    # group ranges: the union of member ranges
    group_range: dict[str, list[float]] = {}
    for t in g.activations():
        if t.name not in ranges:
            raise ConversionError(f"internal: no calibration range for tensor {t.name!r}")
        lo, hi = ranges[t.name]
        r = group_range.setdefault(groups.find(t.name), [np.inf, -np.inf])
        r[0], r[1] = min(r[0], lo), max(r[1], hi)
    for t in g.activations():
        root = groups.find(t.name)
        if root in fixed:
            scale, zp, _ = fixed[root]
        else:
            scale, zp = affine_params(*group_range[root])
        t.quant = QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))

    qdata: dict[str, np.ndarray] = {}
    for node in g.nodes:
        if node.op in ("conv2d", "depthwise_conv2d", "fully_connected"):
            _quantize_linear(g, node, qdata, (channel_means or {}).get(node.inputs[0]),
                             (hessians or {}).get(node.outputs[0]))
        else:
            for i in node.inputs:
                t = g.tensors[i]
                if t.is_const and i not in qdata:
                    if node.op in TIED_OPS:  # a constant joining a tied op takes the group's parameters
                        t.quant = g.tensors[node.outputs[0]].quant
                    else:
                        scale, zp = affine_params(float(t.data.min()), float(t.data.max()))
                        t.quant = QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))
                    qdata[i] = quantize_array(t.data, t.quant.scale[0], t.quant.zero_point[0], -128, 127
                                              ).astype(np.int8)
    return QuantizedGraph(g, qdata, input_dtype, output_dtype)


def _bias_correction(op: str, delta: np.ndarray, mean_in: np.ndarray, multiplier: int = 1) -> np.ndarray:
    """Expected output error caused by rounding the weights, per output channel: Σ (W − Wq) · E[x].

    Rounding errors of weights that sum to nearly nothing (edge detectors, the DC-free filters BatchNorm
    folding produces) do not cancel on inputs with a non-zero mean; they shift every output of the channel
    by the same amount. Subtracting that expected shift from the bias removes it (Nagel et al. 2019,
    "Data-Free Quantization", empirical variant with calibration means)."""
    if op == "conv2d":  # delta [O, KH, KW, C], mean over C
        return np.einsum("ohwc,c->o", delta, mean_in)
    if op == "depthwise_conv2d":  # delta [1, KH, KW, C*M], output channel k reads input channel k // M
        return delta.sum(axis=(0, 1, 2)) * np.repeat(mean_in, multiplier)
    return delta @ mean_in  # fully connected: delta [O, K]


def _quantize_linear(g: Graph, node, qdata: dict[str, np.ndarray], mean_in: np.ndarray | None = None,
                     hessian: np.ndarray | None = None) -> None:
    x, w_name = node.inputs[0], node.inputs[1]
    w = g.const(w_name).astype(np.float64)
    # Per output channel everywhere: CONV_2D and FULLY_CONNECTED along axis 0, DEPTHWISE_CONV_2D along 3.
    # (Per-channel FULLY_CONNECTED is what TensorFlow's converter writes too; tflite-runtime 2.14 runs it.)
    axis = 3 if node.op == "depthwise_conv2d" else 0
    red = tuple(a for a in range(w.ndim) if a != axis)
    amax = np.abs(w).max(axis=red)
    # an all-zero channel still needs a positive scale
    w_scale = np.where(amax > 0, amax / 127.0, 1e-9 / 127.0).astype(np.float32)
    g.tensors[w_name].quant = QuantParams(w_scale, np.zeros(w_scale.size, np.int64), "int8", axis)
    if hessian is not None:
        qdata[w_name] = gptq_weights(node.op, w, w_scale, hessian, node.attrs.get("multiplier", 1)).astype(np.int8)
    else:
        qdata[w_name] = quantize_array(w, w_scale.astype(np.float64), 0, -127, 127, axis).astype(np.int8)
    in_scale = float(g.tensors[x].quant.scale[0])
    out_ch = w.shape[axis]
    b_scale = (in_scale * w_scale.astype(np.float64)).astype(np.float32)
    if len(node.inputs) > 2:
        b_name = node.inputs[2]
        b = g.const(b_name).astype(np.float64)
    else:  # TFLite's int8 kernels want a bias tensor
        b_name = g.add_const(node.name + "/bias", np.zeros(out_ch, np.float32))
        node.inputs.append(b_name)
        b = np.zeros(out_ch)
    in_channels = w.shape[3] // node.attrs["multiplier"] if node.op == "depthwise_conv2d" else w.shape[-1]
    if mean_in is not None and mean_in.shape[-1] == in_channels:
        shape = [1] * w.ndim
        shape[axis] = -1
        w_deq = qdata[w_name].astype(np.float64) * w_scale.astype(np.float64).reshape(shape)
        b = b + _bias_correction(node.op, w - w_deq, mean_in.astype(np.float64), node.attrs.get("multiplier", 1))
    bq = quantize_array(b, b_scale.astype(np.float64), 0, -2 ** 31 + 1, 2 ** 31 - 1, 0)
    g.tensors[b_name].quant = QuantParams(b_scale, np.zeros(b_scale.size, np.int64), "int32", 0)
    qdata[b_name] = bq.astype(np.int32)
