"""Operator coverage of the ONNX/PyTorch converter, with real parts as oracles.

For every operator the converter promises, a tiny seeded torch module is converted by
``converters.convert`` (calibrated on smooth random images) and the written file is checked:

* it runs in ai_edge_litert with the default kernels (XNNPACK) and with TFLite's reference kernels, and each
  operator, fed the same int8 inputs, agrees within one quantization step under both (XNNPACK rescales in
  float, the reference in fixed point; whole-model outputs can differ by more, as early differences grow);
* every tensor is int8 (activations, weights) or int32 (biases, shape operands); no float tensor;
* the dequantized int8 output (both kernel sets) tracks torch's float output on held-out images (SQNR, and
  top-1 agreement for classifier outputs);
* the TFLite operator meant to be tested is in the file (and the ONNX operator in the export), and ops a
  pass should have removed are gone.

The same files are then run by tflite-runtime 2.14 (the runtime of Python <= 3.11 users) in its own venv,
bad input is fed to the API and the CLI, and the uint8-input / float-output options are checked.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import subprocess
from pathlib import Path
from typing import Callable

import flatbuffers
import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from ai_edge_litert import schema_py_generated as fb  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

import converters  # noqa: E402
from converters import ConversionError, ConversionRefused  # noqa: E402
from converters.cli import main as cli_main  # noqa: E402
from edgevision.preprocess import prepare, resize  # noqa: E402

H, W = 12, 16  # every model takes 3×12×16: not square, so that a mix-up of H and W shows
N_CALIB, N_EVAL = 32, 32
ROOT = Path(__file__).resolve().parent.parent
TFLITE_RUNTIME_PYTHON = ROOT / ".cache" / "tflite-runtime-venv" / "bin" / "python"
OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
ACT_NAMES = {v: k for k, v in vars(fb.ActivationFunctionType).items() if not k.startswith("_")}


# -- data --------------------------------------------------------------------------------------------------
def smooth_images(n: int, seed: int, h: int = H, w: int = W) -> np.ndarray:
    """n uint8 RGB images: a smooth random field (4×4 noise, upsampled) plus a random gradient and a little
    pixel noise, so activations have both structure and spread."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / (h - 1), xx / (w - 1)
    for k in range(n):
        field = resize(rng.uniform(0, 255, (4, 4, 3)).astype(np.float32), h, w)
        gy, gx = rng.uniform(-80, 80, 2)
        img = field + (gy * yy + gx * xx)[..., None] + rng.normal(0, 6, (h, w, 3))
        out[k] = np.clip(img, 0, 255).astype(np.uint8)
    return out


CALIB = smooth_images(N_CALIB, seed=1)
HELD_OUT = smooth_images(N_EVAL, seed=2)


# -- the cases ---------------------------------------------------------------------------------------------
class Fn(nn.Module):
    """A module whose forward is ``fn(self, x)``; submodules are passed as keyword arguments."""

    def __init__(self, fn: Callable, **mods: nn.Module):
        super().__init__()
        self.fn = fn
        for k, m in mods.items():
            self.add_module(k, m)

    def forward(self, x):
        return self.fn(self, x)


def conv(cin=3, cout=8, k: int | tuple[int, int] = 3, gain: float = 1.0, **kw) -> nn.Conv2d:
    """A convolution; ``gain`` scales its weights so that outputs (about ±2 at gain 1) reach the saturation
    points of ReLU6 (6) and HardSigmoid/HardSwish (±3), which the test must exercise."""
    c = nn.Conv2d(cin, cout, k, padding=kw.pop("padding", 1), **kw)
    with torch.no_grad():
        c.weight.mul_(gain)
    return c


def linear(cin: int, cout: int, gain: float = 1.0) -> nn.Linear:
    fc = nn.Linear(cin, cout)
    with torch.no_grad():
        fc.weight.mul_(gain)
    return fc


def stem(c: int = 8) -> list[nn.Module]:
    return [conv(3, c), nn.ReLU()]


def se_fc(c: int = 8) -> nn.Module:
    """Squeeze-excite with fully-connected layers: GAP → FC → ReLU → FC → sigmoid → broadcast multiply."""
    def fwd(m, x):
        y = m.stem(x)
        s = torch.sigmoid(m.fc2(F.relu(m.fc1(y.mean((2, 3))))))
        return y * s.view(s.size(0), -1, 1, 1)
    return Fn(fwd, stem=nn.Sequential(*stem(c)), fc1=nn.Linear(c, 4), fc2=nn.Linear(4, c))


def se_conv(c: int = 8) -> nn.Module:
    """Squeeze-excite with 1×1 convolutions (MobileNetV3 / EfficientNet style)."""
    def fwd(m, x):
        y = m.stem(x)
        s = torch.sigmoid(m.c2(F.relu(m.c1(F.adaptive_avg_pool2d(y, 1)))))
        return y * s
    return Fn(fwd, stem=nn.Sequential(*stem(c)), c1=nn.Conv2d(c, 4, 1), c2=nn.Conv2d(4, c, 1))


def residual() -> nn.Module:
    return Fn(lambda m, x: F.relu(m.b(F.relu(m.a(m.s(x)))) + m.s(x)), s=conv(3, 8), a=conv(8, 8), b=conv(8, 8))


def with_prelu() -> nn.Module:
    p = nn.PReLU(8)
    p.weight.data = torch.linspace(0.05, 0.6, 8)  # distinct per channel, so a per-tensor slope would be wrong
    return nn.Sequential(conv(), p)


def conv_bn() -> nn.Module:
    bn = nn.BatchNorm2d(8)
    g = torch.Generator().manual_seed(3)
    bn.running_mean = torch.randn(8, generator=g) * 0.3
    bn.running_var = torch.rand(8, generator=g) + 0.5
    bn.weight.data = torch.rand(8, generator=g) + 0.5
    bn.bias.data = torch.randn(8, generator=g) * 0.2
    return nn.Sequential(conv(), bn, nn.ReLU())


def fc_bn() -> nn.Module:
    bn = nn.BatchNorm1d(10)
    g = torch.Generator().manual_seed(4)
    bn.running_mean = torch.randn(10, generator=g) * 0.3
    bn.running_var = torch.rand(10, generator=g) + 0.5
    return nn.Sequential(*stem(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10), bn)


class MatMulHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.s = nn.Sequential(*stem())
        self.w = nn.Parameter(torch.randn(8, 10) * 0.5)

    def forward(self, x):
        return self.s(x).mean((2, 3)) @ self.w


@dataclasses.dataclass
class Case:
    name: str
    make: Callable[[], nn.Module]
    tflite_ops: set[str]  # must be in the file
    onnx_ops: set[str] = dataclasses.field(default_factory=set)  # must be in the ONNX export (what we test)
    absent: set[str] = dataclasses.field(default_factory=set)  # TFLite ops that must not be in the file
    check: Callable[[fb.ModelT], None] | None = None  # further structural checks on the file
    min_sqnr: float = 30.0  # dB, set from measurement with margin (see the report of this test file)
    op_steps: int = 1  # default-vs-reference kernels, per operator (see resize_bilinear_align_corners)
    classifier: bool = False  # output is a class-score vector: check top-1 agreement
    # "module": convert(module); else convert an ONNX ModelProto exported by export_onnx in that mode:
    # "preserve" (PRESERVE training mode keeps BatchNormalization), "dynamic_batch" (keeps Shape/Gather),
    # "opset13" (no HardSwish op yet: torch writes HardSigmoid · x)
    export: str = "module"


def _options(model: fb.ModelT, op: str) -> list:
    codes = [_op_name(c) for c in model.operatorCodes]
    return [o.builtinOptions for o in model.subgraphs[0].operators if codes[o.opcodeIndex] == op]


def depth_multiplier(m: int):
    def check(model: fb.ModelT) -> None:
        mults = [o.depthMultiplier for o in _options(model, "DEPTHWISE_CONV_2D")]
        assert mults == [m], f"DEPTHWISE_CONV_2D depth multipliers {mults}, expected [{m}]"
    return check


def fused(op: str, act: str):
    def check(model: fb.ModelT) -> None:
        acts = [ACT_NAMES[o.fusedActivationFunction] for o in _options(model, op)]
        assert act in acts, f"no {op} with fused {act}; fused activations found: {acts}"
    return check


def resize_flags(op: str, align_corners: bool, half_pixel: bool):
    def check(model: fb.ModelT) -> None:
        flags = [(o.alignCorners, o.halfPixelCenters) for o in _options(model, op)]
        assert flags == [(align_corners, half_pixel)], f"{op} (alignCorners, halfPixelCenters) = {flags}"
    return check


# Outputs computed from globally pooled features: one held-out image whose pooled value lies beyond the range
# seen in the 32 calibration images is clipped, which costs 10-20 dB (measured 23-32 dB; ~45 dB without it).
POOLED_SQNR = 20.0

CASES = [
    Case("conv_plain", lambda: nn.Sequential(conv()), {"CONV_2D"}, {"Conv"}),
    Case("conv_stride2", lambda: nn.Sequential(conv(stride=2)), {"CONV_2D"}, {"Conv"}),
    Case("conv_dilated", lambda: nn.Sequential(conv(dilation=2, padding=2)), {"CONV_2D"}, {"Conv"}),
    # torch padding (2, 0) with a 3×3 kernel is neither SAME (1, 1) nor VALID: needs an explicit PAD
    Case("conv_explicit_pad", lambda: nn.Sequential(conv(padding=(2, 0))), {"PAD", "CONV_2D"}, {"Conv"}),
    Case("conv_asymmetric_pad", lambda: Fn(lambda m, x: m.c(F.pad(x, (0, 1, 2, 0))), c=conv(padding=0)),
         {"PAD", "CONV_2D"}, {"Pad", "Conv"}),
    Case("conv_kernel_1x3_stride_2x1", lambda: nn.Sequential(conv(k=(1, 3), stride=(2, 1), padding=(0, 1))),
         {"CONV_2D"}, {"Conv"}),
    Case("conv_groups2", lambda: nn.Sequential(*stem(), conv(8, 8, groups=2)), {"CONV_2D"}, {"Conv"},
         absent={"DEPTHWISE_CONV_2D"}),
    Case("conv_groups4", lambda: nn.Sequential(*stem(), conv(8, 8, groups=4)), {"CONV_2D"}, {"Conv"},
         absent={"DEPTHWISE_CONV_2D"}),
    Case("depthwise_m1", lambda: nn.Sequential(*stem(), conv(8, 8, groups=8)), {"DEPTHWISE_CONV_2D"}, {"Conv"},
         check=depth_multiplier(1)),
    Case("depthwise_m2", lambda: nn.Sequential(*stem(), conv(8, 16, groups=8)), {"DEPTHWISE_CONV_2D"}, {"Conv"},
         check=depth_multiplier(2)),
    Case("depthwise_stride2", lambda: nn.Sequential(*stem(), conv(8, 8, groups=8, stride=2)),
         {"DEPTHWISE_CONV_2D"}, {"Conv"}, check=depth_multiplier(1)),
    Case("gemm", lambda: nn.Sequential(*stem(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)),
         {"FULLY_CONNECTED"}, {"Gemm"}, classifier=True, min_sqnr=POOLED_SQNR),
    Case("matmul", MatMulHead, {"FULLY_CONNECTED"}, {"MatMul"}, classifier=True, min_sqnr=POOLED_SQNR),
    Case("add_residual", residual, {"ADD"}, {"Add"}, check=fused("ADD", "RELU")),
    Case("mul_se_fc", se_fc, {"MEAN", "FULLY_CONNECTED", "LOGISTIC", "MUL"}, {"Mul", "Sigmoid", "Gemm"}),
    Case("mul_se_conv1x1", se_conv, {"MEAN", "LOGISTIC", "MUL"}, {"Mul", "Sigmoid", "GlobalAveragePool"}),
    Case("sub_div_const", lambda: Fn(lambda m, x: torch.cat([(m.c(x) - 0.5) / 2.0, 1.0 - m.c(x)], 1),
                                     c=nn.Sequential(*stem())),
         {"ADD", "MUL"}, {"Sub", "Div"}),
    Case("concat_channels", lambda: Fn(lambda m, x: torch.cat([m.a(x), m.b(x)], 1),
                                       a=nn.Sequential(*stem(4)), b=nn.Sequential(*stem(6))),
         {"CONCATENATION"}, {"Concat"}),
    Case("pad_zero", lambda: Fn(lambda m, x: F.pad(m.s(x), (1, 2, 0, 1)), s=nn.Sequential(*stem())),
         {"PAD"}, {"Pad"}),
    Case("maxpool", lambda: nn.Sequential(*stem(), nn.MaxPool2d(2)), {"MAX_POOL_2D"}, {"MaxPool"}),
    Case("maxpool_ceil_mode", lambda: nn.Sequential(*stem(), nn.MaxPool2d(3, 2, ceil_mode=True)),
         {"MAX_POOL_2D"}, {"MaxPool"}),
    # refused before the fix in legalize_padding: the padded max pool's input is a concatenation of ReLUs
    Case("maxpool_padded_after_concat", lambda: Fn(lambda m, x: m.p(torch.cat([m.a(x), m.b(x)], 1)),
                                                   a=nn.Sequential(*stem(4)), b=nn.Sequential(*stem(4)),
                                                   p=nn.MaxPool2d(3, 2, 1)),
         {"CONCATENATION", "MAX_POOL_2D"}, {"Concat", "MaxPool"}),
    # 12×16 → 6×8 → 3×4 → 2×2: the last pool's ceil overhang is one row (refused before the fix in _pool)
    Case("maxpool_ceil_mode_chain",
         lambda: nn.Sequential(*stem(), *(nn.MaxPool2d(2, ceil_mode=True) for _ in range(3))),
         {"MAX_POOL_2D"}, {"MaxPool"}),
    Case("avgpool_count_include_pad_0",
         lambda: nn.Sequential(*stem(), nn.AvgPool2d(3, 1, 1, count_include_pad=False)),
         {"AVERAGE_POOL_2D"}, {"AveragePool"}),
    Case("avgpool_count_include_pad_1",
         lambda: nn.Sequential(*stem(), nn.AvgPool2d(3, 1, 1, count_include_pad=True)),
         {"AVERAGE_POOL_2D"}, {"AveragePool"}),
    # torch does not count the ceil-mode overhang even with count_include_pad (14 and 20 dB before the fix)
    Case("avgpool_ceil_mode", lambda: nn.Sequential(*stem(), nn.AvgPool2d(3, 2, ceil_mode=True)),
         {"AVERAGE_POOL_2D"}, {"AveragePool"}),
    Case("avgpool_ceil_mode_count_include_pad_1",
         lambda: nn.Sequential(*stem(), nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True)),
         {"PAD", "AVERAGE_POOL_2D"}, {"AveragePool"}),
    # 3×4 → 2×3: ceil mode would give 3 rows, but the third window would start in the end padding (dropped)
    Case("avgpool_ceil_mode_last_window_dropped",
         lambda: nn.Sequential(*stem(), nn.MaxPool2d(2), nn.MaxPool2d(2, ceil_mode=True),
                               nn.AvgPool2d(2, 2, padding=1, ceil_mode=True)),
         {"PAD", "AVERAGE_POOL_2D"}, {"AveragePool"}),
    Case("global_avgpool", lambda: nn.Sequential(*stem(), nn.AdaptiveAvgPool2d(1)), {"MEAN"},
         {"GlobalAveragePool"}, min_sqnr=POOLED_SQNR),
    Case("reducemean", lambda: Fn(lambda m, x: m.s(x).mean((2, 3)), s=nn.Sequential(*stem(10))), {"MEAN"},
         {"ReduceMean"}, classifier=True),
    Case("reducemean_channels_keepdim",
         lambda: Fn(lambda m, x: m.s(x).mean(1, keepdim=True), s=nn.Sequential(*stem())), {"MEAN"}, {"ReduceMean"}),
    Case("relu_standalone", lambda: nn.Sequential(nn.ReLU(), conv()), {"RELU"}, {"Relu"}),
    Case("relu_fused", lambda: nn.Sequential(*stem()), {"CONV_2D"}, {"Relu"}, absent={"RELU"},
         check=fused("CONV_2D", "RELU")),
    # a resize cannot take a fused activation: the ReLU6 after it stays an op
    Case("relu6_standalone", lambda: nn.Sequential(conv(gain=4), nn.Upsample(scale_factor=2), nn.ReLU6()),
         {"RELU6"}, {"Clip"}),
    Case("relu6_fused", lambda: nn.Sequential(conv(gain=4), nn.ReLU6()), {"CONV_2D"}, {"Clip"}, absent={"RELU6"},
         check=fused("CONV_2D", "RELU6")),
    Case("sigmoid", lambda: nn.Sequential(conv(), nn.Sigmoid()), {"LOGISTIC"}, {"Sigmoid"}, min_sqnr=40),
    Case("hardsigmoid", lambda: nn.Sequential(conv(gain=3), nn.Hardsigmoid()), {"MUL"}, {"HardSigmoid"},
         min_sqnr=40),
    # opset 13 has no HardSwish: torch writes HardSigmoid · x (an ONNX file from an older export)
    Case("hardswish_opset13", lambda: nn.Sequential(conv(gain=3), nn.Hardswish()), {"HARD_SWISH"},
         {"HardSigmoid", "Mul"}, absent={"MUL", "ADD"}, export="opset13"),
    Case("hardswish_opset17", lambda: nn.Sequential(conv(gain=3), nn.Hardswish()), {"HARD_SWISH"}, {"HardSwish"}),
    Case("prelu_per_channel", with_prelu, {"PRELU"}, {"PRelu"}),
    Case("leakyrelu", lambda: nn.Sequential(conv(), nn.LeakyReLU(0.1)), {"PRELU"}, {"LeakyRelu"}),
    Case("flatten_spatial_fc", lambda: nn.Sequential(*stem(4), nn.Flatten(), nn.Linear(4 * H * W, 10)),
         {"FULLY_CONNECTED"}, {"Flatten"}, absent={"TRANSPOSE"}, classifier=True),
    Case("view_size0_fc", lambda: Fn(lambda m, x: m.fc(m.s(x).view(x.size(0), -1)), s=nn.Sequential(*stem(4)),
                                     fc=nn.Linear(4 * H * W, 10)),
         {"FULLY_CONNECTED"}, {"Shape", "Gather", "Concat", "Reshape"}, absent={"TRANSPOSE"}, classifier=True,
         export="dynamic_batch"),
    Case("reshape_4d", lambda: Fn(lambda m, x: m.s(x).reshape(1, 4, 2 * H, W), s=nn.Sequential(*stem())),
         {"RESHAPE"}, {"Reshape"}),
    Case("transpose_hw", lambda: Fn(lambda m, x: m.s(x).permute(0, 1, 3, 2), s=nn.Sequential(*stem())),
         {"TRANSPOSE"}, {"Transpose"}),
    Case("upsample_nearest", lambda: nn.Sequential(*stem(), nn.Upsample(scale_factor=2)),
         {"RESIZE_NEAREST_NEIGHBOR"}, {"Resize"}),
    Case("resize_bilinear", lambda: nn.Sequential(*stem(), nn.Upsample(scale_factor=2, mode="bilinear")),
         {"RESIZE_BILINEAR"}, {"Resize"}, check=resize_flags("RESIZE_BILINEAR", False, True)),
    Case("resize_bilinear_align_corners",
         lambda: nn.Sequential(*stem(), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)),
         {"RESIZE_BILINEAR"}, {"Resize"}, check=resize_flags("RESIZE_BILINEAR", True, False),
         # TFLite's integer reference RESIZE_BILINEAR computes align-corners positions in 10-bit fixed point:
         # measured on the same int8 input, it is up to 2.1 steps from exact bilinear, XNNPACK 0.5 steps.
         op_steps=3),
    # a confident classifier (gain 8): with ten near-equal probabilities, int8 softmax (steps of 1/256) ties
    Case("softmax", lambda: nn.Sequential(*stem(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear(8, 10, gain=8),
                                          nn.Softmax(-1)),
         {"SOFTMAX"}, {"Softmax"}, classifier=True, min_sqnr=POOLED_SQNR),
    Case("batchnorm_after_conv", conv_bn, {"CONV_2D"}, {"BatchNormalization"}, absent={"MUL", "ADD"},
         export="preserve"),
    Case("batchnorm_after_fc", fc_bn, {"FULLY_CONNECTED"}, {"BatchNormalization"}, absent={"MUL", "ADD"},
         min_sqnr=POOLED_SQNR, classifier=True),
]
CASE_IDS = [c.name for c in CASES]
BY_NAME = {c.name: c for c in CASES}


# -- helpers -----------------------------------------------------------------------------------------------
def _op_name(code: fb.OperatorCodeT) -> str:
    return OP_NAMES[max(code.builtinCode, code.deprecatedBuiltinCode)]


def read_model(data: bytes) -> fb.ModelT:
    return fb.ModelT.InitFromPackedBuf(data, 0)


def file_ops(model: fb.ModelT) -> list[str]:
    codes = [_op_name(c) for c in model.operatorCodes]
    return [codes[o.opcodeIndex] for o in model.subgraphs[0].operators]


def export_onnx(module: nn.Module, mode: str = "module") -> "onnx.ModelProto":
    """The ONNX the converter sees: convert() exports modules like this (opset 17, constants folded)."""
    kw: dict = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    if mode == "preserve":  # eval-mode export fuses Conv+BN itself; PRESERVE leaves BN for the converter
        kw["training"] = torch.onnx.TrainingMode.PRESERVE
    opset = 13 if mode == "opset13" else 17
    if mode == "dynamic_batch":
        kw["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module.eval(), torch.zeros(1, 3, H, W), f, input_names=["input"],
                          output_names=["output"], opset_version=opset, do_constant_folding=True, **kw)
    return onnx.load_from_string(f.getvalue())


def interpreter(data: bytes, reference: bool) -> Interpreter:
    if reference:
        it = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    else:
        it = Interpreter(model_content=data)  # the default resolver: builtin kernels + XNNPACK
    it.allocate_tensors()
    return it


def run_int8(data: bytes, raw: np.ndarray, reference: bool = True) -> np.ndarray:
    """Raw integer outputs for raw integer inputs [N, H, W, C], one image at a time."""
    it = interpreter(data, reference)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for x in raw:
        it.set_tensor(i["index"], x[None])
        it.invoke()
        outs.append(it.get_tensor(o["index"])[0].copy())
    return np.stack(outs)


def quantize_inputs(data: bytes, x: np.ndarray) -> np.ndarray:
    """Float model inputs → the file's input type with the file's own scale and zero point."""
    d = Interpreter(model_content=data).get_input_details()[0]
    scale, zp = d["quantization"]
    info = np.iinfo(d["dtype"])
    v = x / np.float32(scale)
    return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zp, info.min, info.max).astype(d["dtype"])


def dequantize_outputs(data: bytes, q: np.ndarray) -> np.ndarray:
    d = Interpreter(model_content=data).get_output_details()[0]
    scale, zp = d["quantization"]
    return (q.astype(np.float64) - zp) * scale


def torch_outputs(module: nn.Module, x_nhwc: np.ndarray) -> np.ndarray:
    """torch's float output for NHWC inputs, one image at a time (as exported: batch 1), rank-4 outputs moved
    to NHWC (the converted model's layout)."""
    outs = []
    with torch.no_grad():
        for x in x_nhwc:
            outs.append(module.eval()(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))).numpy())
    y = np.concatenate(outs)
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    noise = float(((ref - got) ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float((ref ** 2).sum()) / noise)


def max_step_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


def describe_diff(a: np.ndarray, b: np.ndarray) -> str:
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    i = np.unravel_index(int(d.argmax()), d.shape)
    return f"max diff {d.max()} at {i}: {a[i]} vs {b[i]} ({int((d > 0).sum())} of {d.size} differ)"


@dataclasses.dataclass
class Converted:
    case: Case
    module: nn.Module
    result: converters.ConversionResult
    path: Path
    data: bytes  # the file as written
    x_eval: np.ndarray  # held-out model inputs (float, NHWC), prepared exactly as the runtime would


_CACHE: dict[str, Converted] = {}
MEASURED: dict[str, dict] = {}  # per case, for the report (pytest -s prints it at the end)


@pytest.fixture(scope="session")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx_ops")


def converted(name: str, out_dir: Path) -> Converted:
    """Convert the case once per session (every check below reads the same file)."""
    if name not in _CACHE:
        case = BY_NAME[name]
        torch.manual_seed(0)
        module = case.make().eval()
        model = module if case.export == "module" else export_onnx(module, case.export)
        path = out_dir / f"{name}.tflite"
        result = converters.convert(model, CALIB, path, input_size=(H, W), max_drop=100, progress=False)
        x_eval = np.stack([prepare(img, result.info) for img in HELD_OUT])
        _CACHE[name] = Converted(case, module, result, path, path.read_bytes(), x_eval)
    return _CACHE[name]


# -- 1. every promised operator ----------------------------------------------------------------------------
def single_op_model(data: bytes, k: int) -> bytes:
    """The file cut down to its operator k: that op's activation inputs become the model's inputs."""
    model = read_model(data)
    sub = model.subgraphs[0]
    op = sub.operators[k]
    sub.operators = [op]
    sub.inputs = [i for i in op.inputs if i >= 0 and sub.tensors[i].buffer == 0]
    sub.outputs = list(op.outputs)
    model.signatureDefs = None
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@dataclasses.dataclass
class OpProbe:
    """One operator of a file, cut out as a model of its own, with its int8 inputs and output as the whole
    file computed them under the reference kernels, per image."""
    index: int
    op: str
    model: bytes
    inputs: list[dict[int, np.ndarray]]  # per image: tensor index → value
    want: np.ndarray  # [images, ...] the op's output in the whole-model reference run


def op_probes(c: Converted, images: int = 8) -> list[OpProbe]:
    it = Interpreter(model_content=c.data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    inter = []
    for x in quantize_inputs(c.data, c.x_eval[:images]):
        it.set_tensor(it.get_input_details()[0]["index"], x[None])
        it.invoke()
        inter.append({d["index"]: it.get_tensor(d["index"]).copy() for d in it.get_tensor_details()})
    model = read_model(c.data)
    probes = []
    for k, name in enumerate(file_ops(model)):
        op = model.subgraphs[0].operators[k]
        ins = [i for i in op.inputs if i >= 0 and model.subgraphs[0].tensors[i].buffer == 0]
        probes.append(OpProbe(k, name, single_op_model(c.data, k), [{i: t[i] for i in ins} for t in inter],
                              np.stack([t[op.outputs[0]] for t in inter])))
    return probes


def run_probe(p: OpProbe, reference: bool) -> np.ndarray:
    it = interpreter(p.model, reference)
    outs = []
    for feeds in p.inputs:
        for d in it.get_input_details():
            it.set_tensor(d["index"], feeds[d["index"]])
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
    return np.stack(outs)


@pytest.mark.parametrize("name", CASE_IDS)
def test_op_file_runs_in_litert_default_and_reference_within_one_step(name, out_dir):
    """The whole file runs under both resolvers; then every operator, fed the same int8 inputs (the reference
    run's intermediates), gives outputs within one step under both. (Whole-model outputs may differ by more:
    a one-step difference early on is amplified by the layers after it.)"""
    c = converted(name, out_dir)
    raw = quantize_inputs(c.data, c.x_eval[:8])
    whole_ref = run_int8(c.data, raw, reference=True)
    whole_opt = run_int8(c.data, raw, reference=False)
    assert whole_ref.shape == whole_opt.shape
    MEASURED.setdefault(name, {})["litert_default_vs_ref_steps_whole_model"] = max_step_diff(whole_ref, whole_opt)
    for p in op_probes(c):
        ref, opt = run_probe(p, reference=True), run_probe(p, reference=False)
        assert np.array_equal(ref, p.want), f"{name}: op {p.index} {p.op} alone differs from the whole model"
        assert max_step_diff(ref, opt) <= c.case.op_steps, \
            f"{name}: op {p.index} {p.op}, default vs reference kernels: {describe_diff(opt, ref)}"


@pytest.mark.parametrize("name", CASE_IDS)
def test_op_file_is_full_integer(name, out_dir):
    c = converted(name, out_dir)
    model = read_model(c.data)
    assert len(model.subgraphs) == 1
    sub = model.subgraphs[0]
    types = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    for t in sub.tensors:
        kind = types[t.type]
        assert kind in ("INT8", "INT32"), f"{name}: tensor {t.name!r} is {kind}"
        if kind == "INT32":  # biases and shape operands only: never an activation
            assert t.buffer != 0 and model.buffers[t.buffer].data is not None, \
                f"{name}: int32 tensor {t.name!r} is not a constant"
    for io_ in (sub.inputs[0], sub.outputs[0]):
        assert types[sub.tensors[io_].type] == "INT8", f"{name}: model input/output {sub.tensors[io_].name!r}"
    ops = set(file_ops(model))
    assert not ops & {"QUANTIZE", "DEQUANTIZE"}, f"{name}: float boundary ops {ops & {'QUANTIZE', 'DEQUANTIZE'}}"


@pytest.mark.parametrize("name", CASE_IDS)
def test_op_int8_output_tracks_torch_float(name, out_dir):
    c = converted(name, out_dir)
    want = torch_outputs(c.module, c.x_eval)
    raw = quantize_inputs(c.data, c.x_eval)
    for kernels, reference in (("reference", True), ("default", False)):
        got = dequantize_outputs(c.data, run_int8(c.data, raw, reference=reference))
        assert got.shape == want.shape, f"{name}: int8 output shape {got.shape}, torch {want.shape}"
        db = sqnr_db(want, got)
        MEASURED.setdefault(name, {})[f"sqnr_db_{kernels}"] = round(db, 1)
        assert db >= c.case.min_sqnr, f"{name}, {kernels} kernels: SQNR {db:.1f} dB < {c.case.min_sqnr} dB"
        if c.case.classifier:
            agree = float((want.reshape(len(want), -1).argmax(1) == got.reshape(len(got), -1).argmax(1)).mean())
            MEASURED[name][f"top1_agreement_{kernels}"] = agree
            assert agree >= 0.9, f"{name}, {kernels} kernels: top-1 agreement float vs int8 {agree:.0%} < 90%"


@pytest.mark.parametrize("name", CASE_IDS)
def test_op_is_in_onnx_and_in_file(name, out_dir):
    c = converted(name, out_dir)
    case = c.case
    onnx_ops = {n.op_type for n in export_onnx(c.module, case.export).graph.node}
    assert case.onnx_ops <= onnx_ops, f"{name}: the export lacks {case.onnx_ops - onnx_ops} (has {onnx_ops})"
    model = read_model(c.data)
    ops = file_ops(model)
    assert case.tflite_ops <= set(ops), f"{name}: file lacks {case.tflite_ops - set(ops)}; ops: {ops}"
    assert not case.absent & set(ops), f"{name}: file still has {case.absent & set(ops)}; ops: {ops}"
    if case.check:
        case.check(model)


@pytest.fixture(scope="module", autouse=True)
def _print_measurements():
    yield
    if MEASURED:
        print("\nmeasured per case:")
        for k in sorted(MEASURED):
            print(f"  {k:32s} {MEASURED[k]}")


def test_torch_module_accepts_input_size_with_channels():
    torch.manual_seed(0)
    result = converters.convert(nn.Sequential(conv()), CALIB, None, input_size=(3, H, W), max_drop=100,
                                progress=False)
    assert result.info.input_size == (H, W)


# -- 2. the same files in tflite-runtime 2.14 --------------------------------------------------------------
TFLITE_RUNTIME_SCRIPT = r'''
# Runs under tflite-runtime 2.14: every job is a model and inputs (one npz entry per input tensor index,
# each [images, ...]); writes both resolvers' outputs.
import json, sys
import numpy as np
from tflite_runtime.interpreter import Interpreter, OpResolverType

for job in json.load(open(sys.argv[1])):
    feeds = np.load(job["inputs"])
    res = {}
    for kind in ("default", "reference"):
        kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if kind == "reference" else {}
        it = Interpreter(model_path=job["model"], **kw)
        it.allocate_tensors()
        outs = []
        for k in range(len(feeds[feeds.files[0]])):
            for d in it.get_input_details():
                it.set_tensor(d["index"], feeds[str(d["index"])][k])
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
        res[kind] = np.stack(outs)
    np.savez(job["outputs"], **res)
'''


def test_tflite_runtime_2_14_runs_every_file_like_litert(out_dir, tmp_path):
    """tflite-runtime 2.14 (its own venv: it needs numpy<2) loads every file; its reference kernels compute
    exactly what LiteRT's reference kernels compute, and its default (optimized builtin) kernels are within
    one step per operator."""
    venv = TFLITE_RUNTIME_PYTHON.parent.parent
    if not TFLITE_RUNTIME_PYTHON.exists():
        pytest.skip(f"no tflite-runtime venv at {venv}; create it with: python3.11 -m venv {venv} && "
                    f"{venv}/bin/pip install tflite-runtime==2.14.0 'numpy<2'")
    jobs, want, step_limit = [], {}, {}
    for name in CASE_IDS:
        c = converted(name, out_dir)
        raw = quantize_inputs(c.data, c.x_eval[:8])
        key = f"{name}/whole"
        want[key], step_limit[key] = run_int8(c.data, raw, reference=True), None
        index = read_model(c.data).subgraphs[0].inputs[0]
        jobs.append((key, c.path, {str(index): raw[:, None]}))
        for p in op_probes(c):
            key = f"{name}/op{p.index}_{p.op}"
            path = tmp_path / f"{name}_op{p.index}.tflite"
            path.write_bytes(p.model)
            want[key], step_limit[key] = p.want, c.case.op_steps
            jobs.append((key, path, {str(i): np.stack([f[i] for f in p.inputs]) for i in p.inputs[0]}))
    manifest = []
    for n, (key, path, feeds) in enumerate(jobs):
        np.savez(tmp_path / f"in{n}.npz", **feeds)
        manifest.append({"model": str(path), "inputs": str(tmp_path / f"in{n}.npz"),
                         "outputs": str(tmp_path / f"out{n}.npz")})
    (tmp_path / "jobs.json").write_text(json.dumps(manifest))
    (tmp_path / "run.py").write_text(TFLITE_RUNTIME_SCRIPT)
    proc = subprocess.run([str(TFLITE_RUNTIME_PYTHON), str(tmp_path / "run.py"), str(tmp_path / "jobs.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"tflite-runtime failed:\n{proc.stderr[-3000:]}"
    problems, inexact, exact = [], {}, 0
    for n, (key, _, _) in enumerate(jobs):
        got = np.load(tmp_path / f"out{n}.npz")
        ref, opt = got["reference"].reshape(want[key].shape), got["default"].reshape(want[key].shape)
        if not np.array_equal(ref, want[key]):
            problems.append(f"{key}: reference kernels differ from LiteRT's: {describe_diff(ref, want[key])}")
        steps = max_step_diff(opt, want[key])
        kind = key.split("/")[1].split("_", 1)[-1]  # "whole" or the op name
        if steps:
            inexact[kind] = inexact.get(kind, []) + [f"{key.split('/')[0]}:{steps}"]
        exact += not steps
        if step_limit[key] is not None and steps > step_limit[key]:
            problems.append(f"{key}: default kernels vs LiteRT reference: {describe_diff(opt, want[key])}")
    print(f"\ntflite-runtime 2.14, {len(jobs)} models: reference kernels equal LiteRT's "
          f"{'everywhere' if not any('reference' in p for p in problems) else 'NOT everywhere'}; default kernels "
          f"bit-exact in {exact}, differing (case:max steps) in: " +
          "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(inexact.items())))
    assert not problems, "\n".join(problems)


# -- 3. bad input through the API and the CLI --------------------------------------------------------------
def classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*stem(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()


def write_pngs(folder: Path, images: np.ndarray) -> Path:
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    for k, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{k:03d}.png")
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A classifier as .onnx, a calibration folder of PNGs, and the bad inputs users actually produce."""
    root = tmp_path_factory.mktemp("bad_input")
    onnx_path = root / "classifier.onnx"
    onnx.save(export_onnx(classifier()), onnx_path)
    gelu = Fn(lambda m, x: m.c(F.gelu(x)), c=conv())  # GELU exports as Erf
    onnx.save(export_onnx(gelu), root / "gelu.onnx")
    lstm = Fn(lambda m, x: m.rnn(x.mean((2, 3)).unsqueeze(0))[0], rnn=nn.LSTM(3, 4))
    onnx.save(export_onnx(lstm), root / "lstm.onnx")
    (root / "notes.txt").write_text("not a model\n")
    torch.save(classifier().state_dict(), root / "weights.pth")
    (root / "garbage.onnx").write_bytes(b"\x00\x01not protobuf at all" * 10)
    (root / "empty").mkdir()
    (root / "text_only").mkdir()
    (root / "text_only" / "readme.txt").write_text("no images here\n")
    (root / "broken_images").mkdir()
    for k in range(3):
        (root / "broken_images" / f"{k}.jpg").write_bytes(b"definitely not a jpeg")
    (root / "labels3.txt").write_text("cat\ndog\nbird\n")
    return {"onnx": onnx_path, "calib": write_pngs(root / "calib", CALIB[:12]), "root": root,
            "gelu": root / "gelu.onnx", "lstm": root / "lstm.onnx", "txt": root / "notes.txt",
            "pth": root / "weights.pth", "garbage": root / "garbage.onnx", "empty": root / "empty",
            "text_only": root / "text_only", "broken_images": root / "broken_images", "labels3": root / "labels3.txt"}


def onnx_node(path: Path, op_type: str) -> str:
    return next(n.name for n in onnx.load(path).graph.node if n.op_type == op_type)


# (what, model key, calib key, extra CLI args, words the message must contain)
BAD_INPUT = [
    ("missing model file", "missing", "calib", [], ["not found", "missing.onnx"]),
    ("text file as model", "txt", "calib", [], ["notes.txt", "unknown model format", ".onnx"]),
    ("PyTorch checkpoint as model", "pth", "calib", [], ["weights.pth", "checkpoint", "torch.onnx.export"]),
    ("corrupt ONNX file", "garbage", "calib", [], ["garbage.onnx", "not a readable ONNX file"]),
    ("empty calibration folder", "onnx", "empty", [], ["has no images"]),
    ("calibration folder without images", "onnx", "text_only", [], ["has no images"]),
    ("calibration images that cannot be read", "onnx", "broken_images", [], ["none of the 3 images", "read"]),
    ("unsupported op Erf", "gelu", "calib", [], ["Erf", "not supported"]),
    ("unsupported op LSTM", "lstm", "calib", [], ["LSTM", "not supported"]),
    ("labels count mismatch", "onnx", "calib", ["--labels", "{labels3}"], ["3 labels", "10 outputs"]),
]


def _path(files, key: str) -> Path:
    return files["root"] / "missing.onnx" if key == "missing" else files[key]


def _expected_words(files, model_key: str, words: list[str]) -> list[str]:
    if model_key in ("gelu", "lstm"):  # the message must name the node the user can find in the file
        words = words + [onnx_node(files[model_key], "Erf" if model_key == "gelu" else "LSTM")]
    return words


@pytest.mark.parametrize("what,model,calib,args,words", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_api_raises_conversion_error_naming_the_problem(files, tmp_path, what, model, calib, args,
                                                                   words):
    out = tmp_path / "out.tflite"
    labels = files["labels3"] if "--labels" in args else None
    with pytest.raises(ConversionError) as e:
        converters.convert(_path(files, model), _path(files, calib), out, labels=labels, progress=False)
    for w in _expected_words(files, model, words):
        assert w in str(e.value), f"{what}: {w!r} not in the message: {e.value}"
    assert not out.exists()


@pytest.mark.parametrize("what,model,calib,args,words", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_cli_exits_1_with_message_and_no_traceback(files, tmp_path, capsys, what, model, calib, args,
                                                              words):
    out = tmp_path / "out.tflite"
    argv = [str(_path(files, model)), "--calib", str(_path(files, calib)), "-o", str(out), "-q"]
    argv += [a.format(labels3=files["labels3"]) for a in args]
    status = cli_main(argv)
    cap = capsys.readouterr()
    assert status == 1, f"{what}: exit status {status}\n{cap.out}\n{cap.err}"
    for w in _expected_words(files, model, words):
        assert w in cap.err, f"{what}: {w!r} not on stderr: {cap.err}"
    assert "Traceback" not in cap.out + cap.err
    assert not out.exists()


def test_cli_bad_usage_exits_2(files, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main([str(files["onnx"]), "-o", "x.tflite"])  # --calib missing
    cap = capsys.readouterr()
    assert e.value.code == 2 and "--calib" in cap.err and "Traceback" not in cap.out + cap.err


def test_accuracy_gate_refuses_badly_calibrated_model_and_writes_nothing(tmp_path):
    """Calibrated on near-uniform grey images (normalised to about 0), evaluated on ordinary ones: the
    activation ranges are far too small, int8 saturates and disagrees with float, and the default gate (1 point)
    refuses; with force the file is written, carrying the failing report."""
    grey = (118 + CALIB // 32).astype(np.uint8)
    out = tmp_path / "bad.tflite"

    def convert(calib, output, **kw):
        torch.manual_seed(0)
        return converters.convert(BY_NAME["flatten_spatial_fc"].make().eval(), calib, output, eval=HELD_OUT,
                                  input_size=(H, W), progress=False, **kw)

    with pytest.raises(ConversionRefused) as e:
        convert(grey, out)
    rep = e.value.report
    MEASURED.setdefault("accuracy_gate_grey_calibration", {})["agreement_pct"] = round(rep.agreement_top1, 1)
    assert not rep.passed and rep.drop_points > 1.0
    assert list(tmp_path.iterdir()) == [], "a refused conversion left files behind"
    result = convert(grey, out, force=True)
    assert not result.report.passed and out.read_bytes() == result.model
    good = convert(CALIB, None)  # the same model calibrated on ordinary images passes the same gate
    assert good.report.passed, good.report.to_table()


def test_accuracy_gate_cli_max_drop_negative_exits_1_and_force_writes(files, tmp_path, capsys):
    out = tmp_path / "m.tflite"
    argv = [str(files["onnx"]), "--calib", str(files["calib"]), "-o", str(out), "-q", "--max-drop=-1"]
    assert cli_main(argv) == 1
    cap = capsys.readouterr()
    assert "FAIL" in cap.out and "not written" in cap.err and "Traceback" not in cap.out + cap.err
    assert list(tmp_path.iterdir()) == []
    assert cli_main(argv + ["--force"]) == 0
    cap = capsys.readouterr()
    assert "FAIL" in cap.out and "wrote" in cap.out
    assert out.exists() and Interpreter(model_path=str(out)).get_input_details()[0]["dtype"] == np.int8


# -- 4. uint8 input, float32 output ------------------------------------------------------------------------
def test_uint8_input_adds_quantize_and_predicts_the_same(out_dir):
    base = converted("softmax", out_dir)
    torch.manual_seed(0)
    module = BY_NAME["softmax"].make().eval()
    res = converters.convert(module, CALIB, None, input_size=(H, W), max_drop=100, progress=False,
                             input_type="uint8")
    model = read_model(res.model)
    sub = model.subgraphs[0]
    ops = file_ops(model)
    assert ops[0] == "QUANTIZE" and ops.count("QUANTIZE") == 1, ops
    assert sub.tensors[sub.inputs[0]].type == fb.TensorType.UINT8
    assert all(t.type in (fb.TensorType.INT8, fb.TensorType.INT32) for i, t in enumerate(sub.tensors)
               if i != sub.inputs[0])
    raw8 = quantize_inputs(base.data, base.x_eval)
    rawu = quantize_inputs(res.model, base.x_eval)
    assert rawu.dtype == np.uint8
    np.testing.assert_array_equal(rawu.astype(np.int16) - 128, raw8)  # same scale, zero point + 128
    for reference in (True, False):
        want = run_int8(base.data, raw8, reference)
        got = run_int8(res.model, rawu, reference)
        np.testing.assert_array_equal(got, want)
    assert (got.argmax(1) == torch_outputs(base.module, base.x_eval).argmax(1)).mean() >= 0.9


def test_float32_output_adds_dequantize_with_the_int8_values(out_dir):
    base = converted("softmax", out_dir)
    torch.manual_seed(0)
    module = BY_NAME["softmax"].make().eval()
    res = converters.convert(module, CALIB, None, input_size=(H, W), max_drop=100, progress=False,
                             output_type="float32")
    model = read_model(res.model)
    sub = model.subgraphs[0]
    ops = file_ops(model)
    assert ops[-1] == "DEQUANTIZE" and ops.count("DEQUANTIZE") == 1, ops
    assert sub.tensors[sub.outputs[0]].type == fb.TensorType.FLOAT32
    assert sub.tensors[sub.inputs[0]].type == fb.TensorType.INT8
    assert all(t.type in (fb.TensorType.INT8, fb.TensorType.INT32) for i, t in enumerate(sub.tensors)
               if i != sub.outputs[0])
    raw = quantize_inputs(base.data, base.x_eval)
    for reference in (True, False):
        want = dequantize_outputs(base.data, run_int8(base.data, raw, reference))
        got = run_int8(res.model, raw, reference)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert sqnr_db(torch_outputs(base.module, base.x_eval), got) >= BY_NAME["softmax"].min_sqnr
