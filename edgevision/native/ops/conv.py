"""Preparers for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (int8 activations, int8 symmetric weights with
per-tensor or per-channel scales, optional int32 bias, fused NONE/RELU/RELU6/RELU_N1_TO_1).

Each checks the operator against what TFLite's reference kernel accepts and computes what TFLite's Prepare
computes, bit for bit (csrc/conv.h documents the params and tensor order the steps carry):

* padding and output size: tflite/kernels/padding.h (ComputePaddingHeightWidth, dilation included);
* the activation clamp: kernel_util.cc CalculateActivationRangeQuantized (float32 division, round half away
  from zero);
* conv and depthwise requantisation: kernel_util.cc PopulateConvolutionQuantizationParams: per output channel,
  effective scale = (double)input_scale * (double)filter_scale[c] / (double)output_scale (float32 scales
  widened, evaluated left to right), turned into (multiplier, shift) by QuantizeMultiplier (frexp, round half
  away); a per-tensor filter scale is broadcast to every channel;
* fully connected: the reference kernel requantises in double with that same effective scale, which the step
  carries as a binary64 per channel.
"""
from __future__ import annotations

import struct

import numpy as np

from ..graph import Graph, Operator, Tensor
from . import Const, Step, preparer, unsupported
from .quant import activation_range, quantize_multiplier

# The highest operator versions TFLite defines (tflite/converter/tools/versioning/op_version.cc). Features a
# version adds (int16 activations, int4 weights, hybrid float ops, sparse weights) are refused by the type and
# option checks below; a higher version would be something we have never seen.
MAX_VERSION = {"CONV_2D": 8, "DEPTHWISE_CONV_2D": 7, "FULLY_CONNECTED": 14}

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")

# FULLY_CONNECTED work item: this many consecutive output channels of one row (see conv.h).
FC_BLOCK = 16

# The header lengths in csrc/conv.h (EV_CONV_NPARAMS, EV_DW_NPARAMS, EV_FC_NPARAMS).
CONV_NPARAMS = 20
DW_NPARAMS = 20
FC_NPARAMS = 8

NO_BIAS = Const(b"", "no bias")


# -- TFLite's arithmetic, in Python -------------------------------------------------------------------------------

def _f32(x: float) -> float:
    """x as TFLite holds it: a float32 (the reader's scales already are; this makes it explicit)."""
    return float(np.float32(x))






def effective_scale(input_scale: float, filter_scale: float, output_scale: float) -> float:
    """(double)input_scale * (double)filter_scale / (double)output_scale, left to right, as TFLite."""
    return _f32(input_scale) * _f32(filter_scale) / _f32(output_scale)




def out_size_and_padding(padding: str, in_size: int, filter_size: int, stride: int, dilation: int) -> tuple[int, int]:
    """(output size, leading padding) as padding.h ComputeOutSize / ComputePaddingWithOffset."""
    eff = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size + stride - eff) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


def _words_of_double(d: float) -> tuple[int, int]:
    lo, hi = struct.unpack("<ii", struct.pack("<d", d))
    return lo, hi


# -- shared checks ------------------------------------------------------------------------------------------------

def _operands(op: Operator, g: Graph) -> tuple[Tensor, Tensor, Tensor, Tensor | None, int | None]:
    """(input, filter, output, bias or None, bias tensor index or None), after the version and arity checks."""
    if op.version > MAX_VERSION[op.opcode]:
        raise unsupported(op, f"version {op.version}; the native engine knows {op.opcode} up to version "
                              f"{MAX_VERSION[op.opcode]}")
    if len(op.inputs) not in (2, 3) or len(op.outputs) != 1:
        raise unsupported(op, f"{len(op.inputs)} inputs and {len(op.outputs)} outputs; expected (input, filter"
                              "[, bias]) and one output")
    if op.inputs[0] < 0 or op.inputs[1] < 0:
        raise unsupported(op, "the input and the filter are required")
    bias_index = op.inputs[2] if len(op.inputs) == 3 and op.inputs[2] >= 0 else None
    b = g.tensors[bias_index] if bias_index is not None else None
    return g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]], b, bias_index


def _common(op: Operator, x: Tensor, w: Tensor, y: Tensor, b: Tensor | None, bias_index: int | None,
            filter_axis: int) -> dict:
    """Type and quantization checks shared by the three kinds (shapes already checked); returns what every step
    needs."""
    for t, what in ((x, "input"), (w, "filter"), (y, "output")):
        if t.dtype != "INT8":
            raise unsupported(op, f"its {what} {t.describe()} is {t.dtype}; the native engine runs int8 "
                                  "activations with int8 weights")
        if not t.scale:
            raise unsupported(op, f"its {what} {t.describe()} is not quantized; expected int8 with a scale")
    for t, what in ((x, "input"), (y, "output")):
        if len(t.scale) != 1:
            raise unsupported(op, f"its {what} {t.describe()} has {len(t.scale)} scales; expected per-tensor "
                                  "quantization (one scale)")
    if any(z != 0 for z in w.zero_point):
        raise unsupported(op, f"its filter {w.describe()} has zero points {list(w.zero_point)[:8]}: asymmetric "
                              "weights are not supported (expected symmetric int8 weights, zero point 0)")
    act = op.options.get("fused_activation_function", "NONE")
    if act not in ACTIVATIONS:
        raise unsupported(op, f"fused activation {act}; supported: {', '.join(ACTIVATIONS)}")
    out_c = w.shape[filter_axis]
    if len(w.scale) not in (1, out_c):
        raise unsupported(op, f"its filter {w.describe()} has {len(w.scale)} scales; expected 1 or one per "
                              f"output channel ({out_c})")
    if len(w.scale) > 1 and w.quantized_dimension != filter_axis:
        raise unsupported(op, f"its filter {w.describe()} is quantized along dimension {w.quantized_dimension}; "
                              f"expected per-channel scales along dimension {filter_axis} (output channels)")
    if b is not None:
        if b.dtype != "INT32":
            raise unsupported(op, f"its bias {b.describe()} is {b.dtype}; expected INT32")
        if b.size != out_c:
            raise unsupported(op, f"its bias {b.describe()} has {b.size} elements; expected {out_c} (one per "
                                  "output channel)")
    act_min, act_max = activation_range(op, act, y)
    return dict(x=x, w=w, y=y, b=b, bias_ref=bias_index if b is not None else NO_BIAS, out_c=out_c,
                input_offset=-x.zero_point[0], output_offset=y.zero_point[0], act_min=act_min, act_max=act_max)


def _per_channel_scales(c: dict) -> list[float]:
    x, w, y, out_c = c["x"], c["w"], c["y"], c["out_c"]
    scales = w.scale if len(w.scale) > 1 else w.scale * out_c
    return [effective_scale(x.scale[0], s, y.scale[0]) for s in scales]


def _multipliers(op: Operator, c: dict) -> list[int]:
    """out_c multipliers then out_c shifts (PopulateConvolutionQuantizationParams)."""
    mults, shifts = [], []
    for ch, s in enumerate(_per_channel_scales(c)):
        q, shift = quantize_multiplier(s)
        if shift > 30:
            raise unsupported(op, f"output channel {ch} has effective scale {s:g} (input x filter / output "
                                  "scale) >= 2**30; that is not a sensible quantization")
        mults.append(q)
        shifts.append(shift)
    return mults + shifts


def _window(op: Operator, c: dict, in_h: int, in_w: int, filter_h: int, filter_w: int) -> dict:
    o = op.options
    padding = o.get("padding")
    if padding not in ("SAME", "VALID"):
        raise unsupported(op, f"padding {padding!r}; expected SAME or VALID")
    sh, sw = o.get("stride_h", 0), o.get("stride_w", 0)
    dh, dw = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
    if min(sh, sw, dh, dw) < 1:
        raise unsupported(op, f"strides ({sh}, {sw}) and dilations ({dh}, {dw}) must be >= 1")
    out_h, pad_top = out_size_and_padding(padding, in_h, filter_h, sh, dh)
    out_w, pad_left = out_size_and_padding(padding, in_w, filter_w, sw, dw)
    x, y = c["x"], c["y"]
    want = (x.shape[0], out_h, out_w, c["out_c"])
    if tuple(y.shape) != want:
        raise unsupported(op, f"its output {y.describe()} should have shape {list(want)} (TFLite's "
                              f"{padding} output size for input {list(x.shape)})")
    return dict(out_h=out_h, out_w=out_w, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw,
                pad_top=pad_top, pad_left=pad_left)


# -- preparers ----------------------------------------------------------------------------------------------------

@preparer("CONV_2D")
def conv_2d(op: Operator, g: Graph) -> list[Step]:
    x, w, y, b, bias_index = _operands(op, g)
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise unsupported(op, f"input {x.describe()} and filter {w.describe()} must be 4-D (NHWC input, OHWI "
                              "filter)")
    c = _common(op, x, w, y, b, bias_index, 0)
    batches, in_h, in_w, in_c = x.shape
    out_c, fh, fw, fic = w.shape
    if in_c % fic != 0 or out_c % (in_c // fic) != 0:
        raise unsupported(op, f"input channels {in_c}, filter input channels {fic} and output channels {out_c} "
                              "do not make a (grouped) convolution")
    if b is not None and any(b.zero_point):
        raise unsupported(op, f"its bias {b.describe()} has a nonzero zero point")
    win = _window(op, c, in_h, in_w, fh, fw)
    params = [batches, in_h, in_w, in_c, win["out_h"], win["out_w"], out_c, fh, fw, fic, win["stride_h"],
              win["stride_w"], win["dilation_h"], win["dilation_w"], win["pad_top"], win["pad_left"],
              c["input_offset"], c["output_offset"], c["act_min"], c["act_max"]]
    assert len(params) == CONV_NPARAMS
    params += _multipliers(op, c)
    return [Step("CONV_2D", batches * win["out_h"], params,
                 [op.inputs[0], op.inputs[1], c["bias_ref"], op.outputs[0]])]


@preparer("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(op: Operator, g: Graph) -> list[Step]:
    x, w, y, b, bias_index = _operands(op, g)
    if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
        raise unsupported(op, f"input {x.describe()} must be 4-D and filter {w.describe()} [1, H, W, C]")
    c = _common(op, x, w, y, b, bias_index, 3)
    batches, in_h, in_w, in_c = x.shape
    _, fh, fw, out_c = w.shape
    if out_c % in_c != 0:
        raise unsupported(op, f"filter channels {out_c} are not a multiple of input channels {in_c}")
    # TFLite's kernel derives the depth multiplier from the shapes (the option is not consulted)
    depth_multiplier = out_c // in_c
    if b is not None and any(b.zero_point):
        raise unsupported(op, f"its bias {b.describe()} has a nonzero zero point")
    win = _window(op, c, in_h, in_w, fh, fw)
    params = [batches, in_h, in_w, in_c, win["out_h"], win["out_w"], out_c, fh, fw, depth_multiplier,
              win["stride_h"], win["stride_w"], win["dilation_h"], win["dilation_w"], win["pad_top"],
              win["pad_left"], c["input_offset"], c["output_offset"], c["act_min"], c["act_max"]]
    assert len(params) == DW_NPARAMS
    params += _multipliers(op, c)
    return [Step("DEPTHWISE_CONV_2D", batches * win["out_h"], params,
                 [op.inputs[0], op.inputs[1], c["bias_ref"], op.outputs[0]])]


@preparer("FULLY_CONNECTED")
def fully_connected(op: Operator, g: Graph) -> list[Step]:
    fmt = op.options.get("weights_format", "DEFAULT")
    if fmt != "DEFAULT":
        raise unsupported(op, f"weights format {fmt}; only the DEFAULT (dense [out, in]) layout is supported")
    x, w, y, b, bias_index = _operands(op, g)
    if len(w.shape) != 2:
        raise unsupported(op, f"its weights {w.describe()} must be 2-D [output channels, input depth]")
    c = _common(op, x, w, y, b, bias_index, 0)
    out_c, depth = w.shape
    if x.size % depth != 0:
        raise unsupported(op, f"its input {x.describe()} has {x.size} elements, not a multiple of the weights' "
                              f"input depth {depth}")
    rows = x.size // depth
    if op.options.get("keep_num_dims", False):
        if x.shape[-1] != depth:
            raise unsupported(op, f"keep_num_dims needs the input's last dimension ({x.shape[-1]}) to equal the "
                                  f"weights' input depth {depth}")
        want = tuple(x.shape[:-1]) + (out_c,)
    else:
        want = (rows, out_c)
    if tuple(y.shape) != want:
        raise unsupported(op, f"its output {y.describe()} should have shape {list(want)} (TFLite's output for "
                              f"input {list(x.shape)}, keep_num_dims={op.options.get('keep_num_dims', False)})")
    if len(w.scale) == 1 and b is not None:
        # TFLite's Prepare (GetQuantizedConvolutionMultipler) refuses a per-tensor model whose bias scale is
        # far from input_scale * filter_scale
        product = _f32(x.scale[0]) * _f32(w.scale[0])
        bias_scale = _f32(b.scale[0]) if b.scale else 0.0
        if abs(product - bias_scale) / _f32(y.scale[0]) > 0.02:
            raise unsupported(op, f"its bias scale {bias_scale:g} is not input scale x weight scale "
                                  f"({product:g}); TFLite refuses this model too")
    params = [rows, depth, out_c, FC_BLOCK, c["input_offset"], c["output_offset"], c["act_min"], c["act_max"]]
    assert len(params) == FC_NPARAMS
    for s in _per_channel_scales(c):
        params += _words_of_double(s)
    items = rows * -(-out_c // FC_BLOCK)
    return [Step("FULLY_CONNECTED", items, params, [op.inputs[0], op.inputs[1], c["bias_ref"], op.outputs[0]])]
