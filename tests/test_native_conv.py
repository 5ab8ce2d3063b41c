"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on the native engine, bit-exact with TFLite's reference kernels
(ai-edge-litert, OpResolverType.BUILTIN_REF) on one-op int8 models built here with random weights and
quantization parameters; every case on every kernel variant this CPU runs (ref, and e.g. sse41 and avx2 on x86)
and on 1, 2 and 3 threads (the work split must not change a byte). The SIMD variants block pixels, channels and
depth, so the cases include channel counts, widths and depths that leave every kind of tail, and a differential
fuzz drives each variant with params no real model has (full-range biases, left shifts, huge multipliers and
scales) against the reference kernels.

Also: the C checks refuse inconsistent params and buffer sizes (the engine is built directly with a broken
op), and the preparers refuse what they do not support with a ModelError naming the operator.
"""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
from tflite_builder import ACT, SAME, VALID, TFLiteBuilder, fb, interpreter, pack

from edgevision.native import variants
from edgevision.native.engine import NativeModel
from edgevision.native.graph import ModelError
from edgevision.native.ops import OP_KINDS
from edgevision.native.ops import conv as convops

I8 = fb.TensorType.INT8
THREADS = (1, 2, 3)
VARIANTS = variants.supported() if variants.compiled() else ("ref",)


# -- int8 model helpers -------------------------------------------------------------------------------------------

def input_quant(rng) -> tuple[float, int]:
    return float(rng.uniform(0.005, 0.1)), int(rng.integers(-128, 128))


def weights(rng, shape, lo=-127, hi=127) -> np.ndarray:
    return rng.integers(lo, hi + 1, shape).astype(np.int8)


def out_zp(rng) -> int:
    """An output zero point that leaves the fused activations room (a zero point of 127 would clamp a RELU
    output to one value)."""
    return int(rng.integers(-128, 64))


def output_scale(rng, in_scale, w_scales, depth) -> float:
    """An output scale that puts most outputs inside int8 (std ~ 40 steps), times a random factor."""
    acc_std = 74.0 * 73.0 * math.sqrt(depth)
    return float(in_scale * np.mean(w_scales) * acc_std / 40.0 * rng.uniform(0.5, 2.0))


def add_bias(b: TFLiteBuilder, rng, mode: str, n: int, in_scale: float, w_scales: np.ndarray, depth: int) -> int:
    """mode: "yes" random int32 bias, "zero" explicit zeros, "absent" the -1 optional input. The bias is quantized
    like the weights: scale input_scale x weight scale, per channel or per tensor."""
    if mode == "absent":
        return -1
    scales = in_scale * w_scales
    values = rng.integers(-3000, 3001, n) * max(1, int(math.sqrt(depth)))
    if mode == "zero":
        values = np.zeros(n)
    return b.const("bias", values.astype(np.int32), quant=b.quant(scales, [0] * len(scales)))


def finish(b: TFLiteBuilder, y: int, bias_mode: str, op_index: int = 0) -> tuple[bytes, bytes]:
    """(model, oracle model). TFLite's CONV_2D and DEPTHWISE_CONV_2D refuse an omitted (-1) bias; for those the
    oracle is the same model with an explicit bias of zeros (what "no bias" means in every TFLite kernel)."""
    b.output(y)
    model = b.build()
    if bias_mode != "absent_via_zero":
        return model, model
    op = b.operators[op_index]
    oracle = model
    op.inputs = np.asarray(list(op.inputs[:2]) + [-1], dtype=np.int32)
    return b.build(fix_shapes=False), oracle


def conv_model(rng, *, batch=1, hw=(9, 9), in_c=3, out_c=5, kernel=(3, 3), stride=(1, 1), padding=SAME,
               dilation=(1, 1), act=None, per_channel=True, bias="yes", groups=1) -> tuple[bytes, bytes]:
    b = TFLiteBuilder()
    in_s, in_zp = input_quant(rng)
    x = b.input("x", [batch, *hw, in_c], ttype=I8, quant=b.quant([in_s], [in_zp]))
    fic = in_c // groups
    w_scales = rng.uniform(0.002, 0.02, out_c if per_channel else 1)
    w = b.const("w", weights(rng, (out_c, *kernel, fic)), quant=b.quant(w_scales, [0] * len(w_scales), 0))
    depth = kernel[0] * kernel[1] * fic
    bias_mode = "zero" if bias == "absent" else bias
    bt = add_bias(b, rng, bias_mode, out_c, in_s, w_scales, depth)
    opts = b.options("Conv2DOptions", padding=padding, strideH=stride[0], strideW=stride[1],
                     dilationHFactor=dilation[0], dilationWFactor=dilation[1], fusedActivationFunction=ACT[act])
    out_s = output_scale(rng, in_s, w_scales, depth)
    y = b.op("CONV_2D", [x, w, bt], opts, out_type=I8, out_quant=b.quant([out_s], [out_zp(rng)]))
    return finish(b, y, "absent_via_zero" if bias == "absent" else bias)


def dw_model(rng, *, batch=1, hw=(9, 9), in_c=3, multiplier=1, kernel=(3, 3), stride=(1, 1), padding=SAME,
             dilation=(1, 1), act=None, per_channel=True, bias="yes", two_inputs=False) -> tuple[bytes, bytes]:
    b = TFLiteBuilder()
    in_s, in_zp = input_quant(rng)
    x = b.input("x", [batch, *hw, in_c], ttype=I8, quant=b.quant([in_s], [in_zp]))
    out_c = in_c * multiplier
    w_scales = rng.uniform(0.002, 0.02, out_c if per_channel else 1)
    w = b.const("w", weights(rng, (1, *kernel, out_c)), quant=b.quant(w_scales, [0] * len(w_scales), 3))
    depth = kernel[0] * kernel[1]
    bias_mode = "zero" if bias == "absent" else bias
    bt = None if two_inputs else add_bias(b, rng, bias_mode, out_c, in_s, w_scales, depth)
    opts = b.options("DepthwiseConv2DOptions", padding=padding, strideH=stride[0], strideW=stride[1],
                     depthMultiplier=multiplier, dilationHFactor=dilation[0], dilationWFactor=dilation[1],
                     fusedActivationFunction=ACT[act])
    out_s = output_scale(rng, in_s, w_scales, depth)
    inputs = [x, w] if two_inputs else [x, w, bt]
    y = b.op("DEPTHWISE_CONV_2D", inputs, opts, out_type=I8,
             out_quant=b.quant([out_s], [out_zp(rng)]))
    return finish(b, y, "absent_via_zero" if bias == "absent" else bias)


def fc_model(rng, *, in_shape=(1, 16), out_c=10, act=None, per_channel=False, bias="yes", keep_num_dims=False,
             w_range=(-127, 127)) -> tuple[bytes, bytes]:
    b = TFLiteBuilder()
    in_s, in_zp = input_quant(rng)
    x = b.input("x", list(in_shape), ttype=I8, quant=b.quant([in_s], [in_zp]))
    depth = in_shape[-1]
    w_scales = rng.uniform(0.002, 0.02, out_c if per_channel else 1)
    w = b.const("w", weights(rng, (out_c, depth), *w_range), quant=b.quant(w_scales, [0] * len(w_scales), 0))
    bt = add_bias(b, rng, bias, out_c, in_s, w_scales, depth)
    opts = b.options("FullyConnectedOptions", fusedActivationFunction=ACT[act], keepNumDims=keep_num_dims)
    out_s = output_scale(rng, in_s, w_scales, depth)
    y = b.op("FULLY_CONNECTED", [x, w, bt], opts, out_type=I8,
             out_quant=b.quant([out_s], [out_zp(rng)]))
    return finish(b, y, bias)


def case_rng(case: dict) -> np.random.Generator:
    """A generator seeded by the case's parameters: reproducible, different for every case."""
    return np.random.default_rng(zlib.crc32(repr(sorted(case.items())).encode()))


def oracle_run(model: bytes, x: np.ndarray, reference: bool = True) -> np.ndarray:
    it = interpreter(model, reference=reference)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def kernel_name(variant: str, kind: str) -> str:
    """The C function the variant runs for an op kind (its own, or the fallback it inherits)."""
    return variants.extension().kernel_names(variant)[kind]


def natives_for(model: bytes, threads=THREADS) -> list[tuple[str, int, NativeModel]]:
    """(variant, threads, model) for every supported variant and thread count."""
    return [(v, t, NativeModel(model, variant=v, threads=t)) for v in VARIANTS for t in threads]


def check_exact(models: tuple[bytes, bytes], rng, kind: str, inputs: int = 2) -> None:
    model, oracle = models
    natives = natives_for(model)
    for v, _, m in natives:
        assert m.kernels == [kernel_name(v, kind)]
    shape = tuple(natives[0][2].input(0).shape)
    for _ in range(inputs):
        x = rng.integers(-128, 128, shape).astype(np.int8)
        want = oracle_run(oracle, x)
        # a model whose outputs all clamp to one value would prove little
        assert len(np.unique(want)) > 1 or want.size < 4, "degenerate test case: constant output"
        for v, t, m in natives:
            got = m.run(x)[0]
            assert got.shape == want.shape and got.dtype == np.int8
            np.testing.assert_array_equal(got, want, err_msg=f"{m.kernels[0]} threads={t}")


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v in ("sse41", "avx2", "avx512vnni")])
def test_x86_variants_run_their_own_conv_kernels(variant):
    """The SIMD code is what the tests above exercise on x86: each variant fills the three slots itself."""
    for kind, name in (("CONV_2D", "conv_2d"), ("DEPTHWISE_CONV_2D", "depthwise_conv_2d"),
                       ("FULLY_CONNECTED", "fully_connected")):
        assert kernel_name(variant, kind) == f"ev_{name}_{variant}"


# -- CONV_2D ------------------------------------------------------------------------------------------------------

CONV_CASES = [
    # id, kwargs
    ("3x3_same_s1", dict()),
    ("3x3_valid_s1", dict(padding=VALID)),
    ("3x3_same_s2", dict(stride=(2, 2), hw=(10, 11))),
    ("3x3_valid_s2_odd", dict(stride=(2, 2), padding=VALID, hw=(11, 10))),
    ("1x1", dict(kernel=(1, 1), in_c=17, out_c=33)),
    ("1x1_s2", dict(kernel=(1, 1), stride=(2, 2), in_c=7, out_c=16)),
    ("5x5_same", dict(kernel=(5, 5), in_c=4, out_c=7)),
    ("3x2_same_s21", dict(kernel=(3, 2), stride=(2, 1), in_c=1, out_c=3)),
    ("2x3_valid_s12", dict(kernel=(2, 3), stride=(1, 2), padding=VALID, in_c=7, out_c=1)),
    ("dilation2_same", dict(dilation=(2, 2), hw=(12, 12))),
    ("dilation2_valid", dict(dilation=(2, 2), padding=VALID, hw=(12, 13), in_c=7)),
    ("dilation21_s2", dict(dilation=(2, 1), stride=(2, 2), kernel=(3, 3), hw=(13, 12))),
    ("batch2", dict(batch=2, in_c=3, out_c=17)),
    ("relu", dict(act="relu")),
    ("relu6", dict(act="relu6", in_c=8, out_c=16)),
    ("relu_n1_to_1", dict(act="relu_n1_to_1")),
    ("per_tensor", dict(per_channel=False, in_c=7, out_c=9)),
    ("bias_absent", dict(bias="absent", in_c=3, out_c=8)),
    ("grouped", dict(groups=3, in_c=6, out_c=9)),
    ("stem_like", dict(hw=(16, 16), in_c=3, out_c=32, stride=(2, 2), act="relu6")),
    ("kernel_larger_than_input_same", dict(hw=(2, 3), kernel=(5, 5))),
]

# SIMD tails and blocking: the x86 kernels tile 4 or 5 pixels x 8 or 16 output channels and take the depth in
# pairs; 1x1 stride-1 convolutions run all rows of a thread as one run of pixels.
CONV_SIMD_CASES = [
    ("1x1_c1", dict(kernel=(1, 1), in_c=1, out_c=1, hw=(5, 7))),
    ("1x1_7_15", dict(kernel=(1, 1), in_c=7, out_c=15, hw=(9, 13))),
    ("1x1_15_16", dict(kernel=(1, 1), in_c=15, out_c=16, hw=(9, 13))),
    ("1x1_16_17", dict(kernel=(1, 1), in_c=16, out_c=17, hw=(9, 13))),
    ("1x1_17_31", dict(kernel=(1, 1), in_c=17, out_c=31, hw=(7, 11))),
    ("1x1_31_33", dict(kernel=(1, 1), in_c=31, out_c=33, hw=(7, 11))),
    ("1x1_33_64", dict(kernel=(1, 1), in_c=33, out_c=64, hw=(6, 7))),
    ("1x1_64_100", dict(kernel=(1, 1), in_c=64, out_c=100, hw=(5, 9))),
    ("1x1_100_7", dict(kernel=(1, 1), in_c=100, out_c=7, hw=(5, 9))),
    ("1x1_large_hw", dict(kernel=(1, 1), in_c=24, out_c=40, hw=(37, 41))),
    ("1x1_large_hw_batch2", dict(kernel=(1, 1), in_c=16, out_c=24, hw=(23, 29), batch=2)),
    ("1x1_per_tensor_relu6", dict(kernel=(1, 1), in_c=64, out_c=100, hw=(6, 7), per_channel=False, act="relu6")),
    ("1x1_s2_100_33", dict(kernel=(1, 1), stride=(2, 2), in_c=100, out_c=33, hw=(9, 11))),
    ("3x3_width1", dict(hw=(5, 1), in_c=16, out_c=17)),
    ("3x3_height1", dict(hw=(1, 9), in_c=5, out_c=33)),
    ("3x3_width13_16_17", dict(hw=(6, 13), in_c=16, out_c=17)),
    ("3x3_s2_33_31", dict(stride=(2, 2), hw=(15, 17), in_c=33, out_c=31)),
    ("3x3_c1_100", dict(in_c=1, out_c=100, hw=(7, 9))),
    ("3x3_deep_64_16", dict(in_c=64, out_c=16, hw=(6, 7))),
    ("3x3_dilation32", dict(dilation=(3, 2), hw=(14, 15), in_c=17, out_c=16)),
    ("5x5_s2_valid_stem", dict(kernel=(5, 5), stride=(2, 2), padding=VALID, hw=(21, 23), in_c=3, out_c=33)),
    ("stem_3x3_s2_112", dict(hw=(31, 33), in_c=3, out_c=32, stride=(2, 2))),
    ("grouped_2x17", dict(groups=2, in_c=34, out_c=34, hw=(6, 7))),
    ("grouped_4x16", dict(groups=4, in_c=8, out_c=64, hw=(5, 6))),
    ("grouped_1x1_3", dict(groups=3, kernel=(1, 1), in_c=48, out_c=33, hw=(7, 9))),
    ("grouped_1x1_s2", dict(groups=2, kernel=(1, 1), stride=(2, 2), in_c=32, out_c=18, hw=(9, 9))),
]


@pytest.mark.parametrize("case", [c[1] for c in CONV_CASES + CONV_SIMD_CASES],
                         ids=[c[0] for c in CONV_CASES + CONV_SIMD_CASES])
def test_conv_2d_bit_exact(case):
    rng = case_rng(case)
    check_exact(conv_model(rng, **case), rng, "CONV_2D")


def test_conv_2d_effective_scale_above_one():
    """Effective scale > 1: QuantizeMultiplier gives a positive shift (MultiplyByQuantizedMultiplier's left
    shift path)."""
    rng = np.random.default_rng(7)
    b = TFLiteBuilder()
    x = b.input("x", [1, 6, 6, 2], ttype=I8, quant=b.quant([0.05], [0]))
    w_scales = np.array([0.02, 0.03, 0.05])
    w = b.const("w", weights(rng, (3, 1, 1, 2), -3, 3), quant=b.quant(w_scales, [0, 0, 0]))
    bt = b.const("b", rng.integers(-20, 21, 3).astype(np.int32), quant=b.quant(0.05 * w_scales, [0, 0, 0]))
    y = b.op("CONV_2D", [x, w, bt], b.options("Conv2DOptions", padding=SAME, strideH=1, strideW=1),
             out_type=I8, out_quant=b.quant([0.0004], [3]))
    b.output(y)
    model = b.build()
    # the case is what it claims: every channel's effective scale is > 1
    assert all(convops.quantize_multiplier(0.05 * s / 0.0004)[1] > 0 for s in np.float32(w_scales))
    for _ in range(3):
        xs = rng.integers(-12, 13, (1, 6, 6, 2)).astype(np.int8)
        want = oracle_run(model, xs)
        for v, t, m in natives_for(model):
            np.testing.assert_array_equal(m.run(xs)[0], want, err_msg=f"{v} threads={t}")


def test_conv_2d_tiny_effective_scale_flushes_to_zero():
    """An effective scale below 2**-31 is flushed to a zero multiplier (QuantizeMultiplier's shift < -31 case):
    every output is the zero point plus clamping, as in TFLite."""
    rng = np.random.default_rng(8)
    b = TFLiteBuilder()
    x = b.input("x", [1, 4, 4, 3], ttype=I8, quant=b.quant([1e-6], [5]))
    w = b.const("w", weights(rng, (4, 3, 3, 3)), quant=b.quant([1e-6] * 4, [0] * 4))
    bt = b.const("b", rng.integers(-100, 100, 4).astype(np.int32), quant=b.quant([1e-12] * 4, [0] * 4))
    y = b.op("CONV_2D", [x, w, bt], b.options("Conv2DOptions", padding=SAME, strideH=1, strideW=1),
             out_type=I8, out_quant=b.quant([2.0], [-7]))
    b.output(y)
    model = b.build()
    assert convops.quantize_multiplier(1e-6 * 1e-6 / 2.0) == (0, 0)
    xs = rng.integers(-128, 128, (1, 4, 4, 3)).astype(np.int8)
    want = oracle_run(model, xs)
    for v, t, m in natives_for(model, threads=(2,)):
        np.testing.assert_array_equal(m.run(xs)[0], want, err_msg=v)


# -- DEPTHWISE_CONV_2D --------------------------------------------------------------------------------------------

DW_CASES = [
    ("3x3_same_s1", dict()),
    ("3x3_valid_s1", dict(padding=VALID, in_c=7)),
    ("3x3_same_s2", dict(stride=(2, 2), hw=(10, 11), in_c=17)),
    ("3x3_valid_s2", dict(stride=(2, 2), padding=VALID, hw=(11, 11), in_c=33)),
    ("5x5_same_s2", dict(kernel=(5, 5), stride=(2, 2), hw=(12, 12), in_c=16)),
    ("1x1", dict(kernel=(1, 1), in_c=5)),
    ("3x2_valid", dict(kernel=(3, 2), padding=VALID, in_c=1)),
    ("multiplier2", dict(multiplier=2, in_c=3)),
    ("multiplier3_s2", dict(multiplier=3, in_c=5, stride=(2, 2))),
    ("dilation2", dict(dilation=(2, 2), hw=(12, 12), in_c=7)),
    ("dilation2_valid_s2", dict(dilation=(2, 2), padding=VALID, stride=(2, 2), hw=(13, 12), in_c=4)),
    ("batch2", dict(batch=2, in_c=8)),
    ("relu", dict(act="relu", in_c=7)),
    ("relu6", dict(act="relu6", in_c=32)),
    ("relu_n1_to_1", dict(act="relu_n1_to_1", in_c=3)),
    ("per_tensor", dict(per_channel=False, in_c=9)),
    ("per_tensor_multiplier2", dict(per_channel=False, multiplier=2, in_c=3)),
    ("bias_absent", dict(bias="absent", in_c=6)),
    ("two_inputs", dict(two_inputs=True, in_c=5)),
]

# SIMD tails and blocking: channel blocks of 8 or 16, tap pairs, pair rows built per input row and reused
DW_SIMD_CASES = [
    *[(f"3x3_c{c}", dict(in_c=c, hw=(7, 13))) for c in (1, 7, 15, 16, 17, 31, 33, 64, 100)],
    ("5x5_s1_c33", dict(kernel=(5, 5), in_c=33, hw=(9, 11))),
    ("5x5_s2_valid_c100", dict(kernel=(5, 5), stride=(2, 2), padding=VALID, in_c=100, hw=(13, 15))),
    ("5x5_s2_c48_relu6", dict(kernel=(5, 5), stride=(2, 2), in_c=48, hw=(14, 14), act="relu6")),
    ("7x7_c17", dict(kernel=(7, 7), in_c=17, hw=(9, 10))),
    ("4x4_c31", dict(kernel=(4, 4), in_c=31, hw=(9, 10))),
    ("1x5_c15", dict(kernel=(1, 5), in_c=15, hw=(6, 9))),
    ("5x1_c16_s2", dict(kernel=(5, 1), in_c=16, hw=(9, 6), stride=(2, 2))),
    ("3x3_dilation3_c16", dict(dilation=(3, 3), in_c=16, hw=(13, 14))),
    ("3x3_dilation12_s2", dict(dilation=(1, 2), stride=(2, 2), in_c=24, hw=(11, 12))),
    ("3x3_s12_c20", dict(stride=(1, 2), in_c=20, hw=(8, 13))),
    ("3x3_s3_c16", dict(stride=(3, 3), in_c=16, hw=(13, 14))),
    ("3x3_width1_c16", dict(in_c=16, hw=(6, 1))),
    ("3x3_s2_batch3_c33", dict(stride=(2, 2), in_c=33, hw=(7, 9), batch=3)),
    ("multiplier2_c9", dict(multiplier=2, in_c=9, hw=(7, 8))),
    ("multiplier4_c4", dict(multiplier=4, in_c=4, hw=(6, 7))),
    ("multiplier3_5x5_s2", dict(multiplier=3, kernel=(5, 5), stride=(2, 2), in_c=6, hw=(11, 12))),
    ("per_tensor_c64", dict(per_channel=False, in_c=64, hw=(6, 7))),
    ("large_56x56_c32", dict(in_c=32, hw=(56, 56))),
    # 3 pair rows of 60k entries x 112 channels (80 MB): the x86 kernels hand this op to the reference kernel
    ("dilation_30000", dict(dilation=(1, 30000), in_c=100, hw=(3, 4))),
]


@pytest.mark.parametrize("case", [c[1] for c in DW_CASES + DW_SIMD_CASES],
                         ids=[c[0] for c in DW_CASES + DW_SIMD_CASES])
def test_depthwise_conv_2d_bit_exact(case):
    rng = case_rng(case)
    check_exact(dw_model(rng, **case), rng, "DEPTHWISE_CONV_2D")


# -- FULLY_CONNECTED ----------------------------------------------------------------------------------------------

FC_CASES = [
    ("2d", dict(in_shape=(1, 16), out_c=10)),
    ("2d_batch3", dict(in_shape=(3, 33), out_c=17)),
    ("2d_per_channel", dict(in_shape=(2, 40), out_c=33, per_channel=True)),
    ("4d_flattened", dict(in_shape=(1, 2, 2, 8), out_c=7)),
    ("4d_batch2_flattened", dict(in_shape=(2, 3, 1, 5), out_c=3)),
    ("4d_keep_num_dims", dict(in_shape=(1, 3, 2, 6), out_c=5, keep_num_dims=True)),
    ("3d_keep_num_dims_per_channel", dict(in_shape=(2, 3, 7), out_c=19, keep_num_dims=True, per_channel=True)),
    ("relu", dict(in_shape=(4, 24), out_c=12, act="relu")),
    ("relu6", dict(in_shape=(4, 24), out_c=12, act="relu6", per_channel=True)),
    ("relu_n1_to_1", dict(in_shape=(4, 24), out_c=12, act="relu_n1_to_1")),
    ("bias_absent", dict(in_shape=(3, 20), out_c=9, bias="absent")),
    ("bias_absent_per_channel", dict(in_shape=(3, 20), out_c=9, bias="absent", per_channel=True)),
    ("one_output", dict(in_shape=(5, 3), out_c=1)),
    ("classifier_head", dict(in_shape=(1, 1280), out_c=1001)),
    ("classifier_head_per_channel", dict(in_shape=(1, 320), out_c=100, per_channel=True)),
    ("many_rows", dict(in_shape=(64, 50), out_c=37, per_channel=True)),
]

# SIMD tails: depth in vectors of 16 or 8 plus a scalar rest, output channels in fours plus a rest
FC_SIMD_CASES = [
    *[(f"depth{d}_out{o}", dict(in_shape=(3, d), out_c=o, per_channel=(d % 2 == 1)))
      for d, o in ((1, 1), (7, 3), (15, 5), (16, 16), (17, 17), (31, 4), (33, 15), (100, 33))],
    ("depth1000_out17", dict(in_shape=(2, 1000), out_c=17, per_channel=True)),
    ("weights_minus128", dict(in_shape=(4, 40), out_c=21, w_range=(-128, 127))),
]


@pytest.mark.parametrize("case", [c[1] for c in FC_CASES + FC_SIMD_CASES],
                         ids=[c[0] for c in FC_CASES + FC_SIMD_CASES])
def test_fully_connected_bit_exact(case):
    rng = case_rng(case)
    check_exact(fc_model(rng, **case), rng, "FULLY_CONNECTED")


def test_fully_connected_output_shape_follows_keep_num_dims():
    rng = np.random.default_rng(3)
    for keep, want in ((True, (2, 3, 4, 6)), (False, (24, 6))):
        m = NativeModel(fc_model(rng, in_shape=(2, 3, 4, 5), out_c=6, keep_num_dims=keep)[0], variant="ref",
                        threads=1)
        assert tuple(m.output(0).shape) == want


def test_fully_connected_requantises_in_double_like_the_reference():
    """TFLite's reference FC requantises with round(acc * scale) in double, not MultiplyByQuantizedMultiplier:
    find inputs where the two disagree and check the engine follows the oracle there."""
    rng = np.random.default_rng(11)
    model, _ = fc_model(rng, in_shape=(256, 30), out_c=40, per_channel=True)
    x = rng.integers(-128, 128, (256, 30)).astype(np.int8)
    want = oracle_run(model, x)
    nm = NativeModel(model, variant="ref", threads=2)
    for v, t, m in natives_for(model, threads=(2,)):
        np.testing.assert_array_equal(m.run(x)[0], want, err_msg=v)
    # the fixed-point alternative on the same accumulators differs somewhere (otherwise this proves nothing)
    g = nm.graph
    op = g.operators[0]
    xt, wt, bt, yt = (g.tensors[i] for i in (*op.inputs, op.outputs[0]))
    acc = (x.astype(np.int64) - xt.zero_point[0]) @ wt.array().astype(np.int64).T + bt.array()
    fixed = np.empty_like(acc)
    for c in range(acc.shape[1]):
        q, s = convops.quantize_multiplier(convops.effective_scale(xt.scale[0], wt.scale[c], yt.scale[0]))
        fixed[:, c] = [mbqm(int(a), q, s) for a in acc[:, c]]
    fixed = np.clip(fixed + yt.zero_point[0], -128, 127)
    assert (fixed != want).any()


def mbqm(x: int, q: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier (double rounding), in Python integers, for the test above."""
    left, right = max(shift, 0), max(-shift, 0)
    x = ((x << left) + 2**31) % 2**32 - 2**31
    ab = x * q
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    high = abs(ab + nudge) // 2**31 * (1 if ab + nudge >= 0 else -1)
    mask = (1 << right) - 1
    rem, threshold = high & mask, (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if rem > threshold else 0)


# -- rounding ties --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("opcode", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
def test_rounding_ties(opcode):
    """Power-of-two scales make the effective scale exactly 1/4, so small accumulators land on ties: conv and
    depthwise must round twice as TFLite's double-rounding MultiplyByQuantizedMultiplier does (acc = 1 -> 1/2
    rounds up to 1, then 1/2 rounds up to 1 again; exactly rounded it would be 0), the fully connected kernel once,
    in double, half away from zero (acc = 1 -> 0, acc = 2 -> 1, acc = -2 -> -1)."""
    rng = np.random.default_rng(13)
    b = TFLiteBuilder()
    c = 4
    shape = [2, 5, 5, c] if opcode != "FULLY_CONNECTED" else [40, c]
    x = b.input("x", shape, ttype=I8, quant=b.quant([0.5], [-1]))
    if opcode == "CONV_2D":
        wshape, axis, opts = (c, 1, 1, c), 0, b.options("Conv2DOptions", padding=SAME, strideH=1, strideW=1)
    elif opcode == "DEPTHWISE_CONV_2D":
        wshape, axis, opts = (1, 1, 1, c), 3, b.options("DepthwiseConv2DOptions", padding=SAME, strideH=1,
                                                        strideW=1, depthMultiplier=1)
    else:
        wshape, axis, opts = (c, c), 0, b.options("FullyConnectedOptions")
    w = b.const("w", weights(rng, wshape, -2, 2), quant=b.quant([0.5] * c, [0] * c, axis))
    bias = b.const("b", rng.integers(-3, 4, c).astype(np.int32), quant=b.quant([0.25] * c, [0] * c))
    y = b.op(opcode, [x, w, bias], opts, out_type=I8, out_quant=b.quant([1.0], [0]))
    b.output(y)
    model = b.build()
    assert convops.quantize_multiplier(0.5 * 0.5 / 1.0) == (1 << 30, -1)
    xs = rng.integers(-4, 3, shape).astype(np.int8)
    want = oracle_run(model, xs)
    nm = NativeModel(model, variant="ref", threads=3)
    for v, t, m in natives_for(model, threads=(1, 3)):
        np.testing.assert_array_equal(m.run(xs)[0], want, err_msg=f"{v} threads={t}")
    # the case exercises what it claims: accumulators = 1 (mod 4) and 2 (mod 4) occur, and the two roundings
    # disagree on some of them, in the direction the kernel kind says
    _, w_index, b_index = nm.graph.operators[0].inputs
    xi = xs.astype(np.int64) + 1   # minus the input zero point
    wi = nm.graph.tensors[w_index].array().astype(np.int64)
    bi = nm.graph.tensors[b_index].array()
    if opcode == "CONV_2D":
        acc = np.einsum("bhwi,oi->bhwo", xi, wi[:, 0, 0, :]) + bi
    elif opcode == "DEPTHWISE_CONV_2D":
        acc = xi * wi[0, 0, 0, :] + bi
    else:
        acc = xi @ wi.T + bi
    single = np.sign(acc) * np.floor(np.abs(acc) / 4 + 0.5)
    double = np.array([mbqm(int(a), 1 << 30, -1) for a in acc.ravel()]).reshape(acc.shape)
    assert (single != double).any()
    np.testing.assert_array_equal(want, np.clip(single if opcode == "FULLY_CONNECTED" else double, -128, 127))


# -- weights computed at run time ---------------------------------------------------------------------------------

def dynamic_weights_model(kind: str) -> bytes:
    """A one-op model whose filter (weights) and bias are graph inputs, not constants: the SIMD variants pack
    weights when the engine is built and must notice that these are not constants."""
    I32 = fb.TensorType.INT32
    b = TFLiteBuilder()
    x = b.input("x", [1, 5, 6, 20] if kind != "fc" else [3, 40], ttype=I8, quant=b.quant([0.05], [3]))
    if kind == "conv":
        w = b.input("w", [18, 3, 3, 20], ttype=I8, quant=b.quant(list(np.linspace(0.002, 0.004, 18)), [0] * 18, 0))
        bias = b.input("b", [18], ttype=I32, quant=b.quant([0.0001] * 18, [0] * 18))
        opts = b.options("Conv2DOptions", padding=SAME, strideH=1, strideW=1)
        y = b.op("CONV_2D", [x, w, bias], opts, out_type=I8, out_quant=b.quant([0.5], [1]))
    elif kind == "dw":
        w = b.input("w", [1, 3, 3, 20], ttype=I8, quant=b.quant(list(np.linspace(0.01, 0.02, 20)), [0] * 20, 3))
        bias = b.input("b", [20], ttype=I32, quant=b.quant([0.0005] * 20, [0] * 20))
        opts = b.options("DepthwiseConv2DOptions", padding=SAME, strideH=1, strideW=1, depthMultiplier=1)
        y = b.op("DEPTHWISE_CONV_2D", [x, w, bias], opts, out_type=I8, out_quant=b.quant([0.2], [1]))
    else:
        w = b.input("w", [21, 40], ttype=I8, quant=b.quant([0.004], [0]))
        bias = b.input("b", [21], ttype=I32, quant=b.quant([0.0002], [0]))
        y = b.op("FULLY_CONNECTED", [x, w, bias], b.options("FullyConnectedOptions"), out_type=I8,
                 out_quant=b.quant([0.5], [1]))
    b.output(y)
    return b.build()


@pytest.mark.parametrize("kind", ["conv", "dw", "fc"])
def test_weights_and_bias_computed_at_run_time(kind):
    """All-zero weights and biases first (what a packing kernel sees when the engine is built), then real ones,
    then zero weights with a real bias, on the same engines: every variant follows the tensors' current values."""
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    model = dynamic_weights_model(kind)
    natives = natives_for(model, threads=(1, 2))
    it = interpreter(model)
    it.allocate_tensors()
    details = it.get_input_details()
    shapes = [tuple(d["shape"]) for d in details]
    zero_w, zero_b = np.zeros(shapes[1], np.int8), np.zeros(shapes[2], np.int32)
    for step in range(5):
        x = rng.integers(-128, 128, shapes[0]).astype(np.int8)
        w = zero_w if step in (0, 3) else rng.integers(-127, 128, shapes[1]).astype(np.int8)
        bias = zero_b if step in (0, 2) else rng.integers(-2000, 2001, shapes[2]).astype(np.int32)
        for d, v in zip(details, (x, w, bias)):
            it.set_tensor(d["index"], v)
        it.invoke()
        want = it.get_tensor(it.get_output_details()[0]["index"])
        for v, t, m in natives:
            np.testing.assert_array_equal(m.run(x, w, bias)[0], want, err_msg=f"{m.kernels[0]} threads={t} step {step}")


# -- every variant against the reference kernels, on params no real model has --------------------------------------

FUZZ_MODELS = {
    "conv_1x1": lambda rng: conv_model(rng, kernel=(1, 1), in_c=37, out_c=21, hw=(5, 7))[0],
    "conv_3x3_s2": lambda rng: conv_model(rng, in_c=5, out_c=19, hw=(9, 10), stride=(2, 2))[0],
    "conv_grouped": lambda rng: conv_model(rng, groups=2, in_c=6, out_c=18, hw=(6, 5))[0],
    "dw_3x3": lambda rng: dw_model(rng, in_c=37, hw=(6, 7))[0],
    "dw_5x5_m2": lambda rng: dw_model(rng, kernel=(5, 5), multiplier=2, in_c=9, hw=(7, 6))[0],
    "fc": lambda rng: fc_model(rng, in_shape=(3, 45), out_c=23)[0],
    # the avx512vnni paths: 1x1 input converted 32 + 16 + 4 bytes at a time, 3 channel blocks (the last partial),
    # pixel tails; dilated im2col with padding; depthwise 5x5 stride 2 and dilated 3x3 stride 2 quad rows built
    # 32 + 16 + tail channels at a time; FC depths below and at a multiple of 32
    "conv_1x1_wide": lambda rng: conv_model(rng, kernel=(1, 1), in_c=52, out_c=40, hw=(7, 9))[0],
    "conv_3x3_dilated": lambda rng: conv_model(rng, in_c=6, out_c=17, hw=(8, 9), dilation=(2, 2))[0],
    "dw_5x5_s2": lambda rng: dw_model(rng, kernel=(5, 5), stride=(2, 2), in_c=52, hw=(11, 12))[0],
    "dw_3x3_s2_dilated": lambda rng: dw_model(rng, stride=(2, 2), dilation=(1, 2), in_c=20, hw=(9, 11))[0],
    "fc_depth64": lambda rng: fc_model(rng, in_shape=(2, 64), out_c=9)[0],
    "fc_depth7": lambda rng: fc_model(rng, in_shape=(4, 7), out_c=6)[0],
}


def fuzz_op(op: list, constants: list, rng, mode: str) -> None:
    """Replace an op's quantization params, weights and bias with random values over their whole legal range.
    mode "wild": biases over all of int32 (so accumulators cover it, wrapping included) and shifts from -31 to 30
    (left shifts that wrap): the x86 kernels' exact requantisation; "tame": small biases and right shifts only,
    from 0 to 31: their fast form; "mixed": tame but for a few channels with huge biases, left shifts or zero
    multipliers, as real models have ("dead" channels), so vectors mix both forms. Always multipliers up to
    2^31 - 1 and 0, int8 weights including -128, FC scales from 0 to 1e12."""
    params = params_of(op)
    kind = OP_KINDS[op[0]]
    header = {"CONV_2D": convops.CONV_NPARAMS, "DEPTHWISE_CONV_2D": convops.DW_NPARAMS,
              "FULLY_CONNECTED": convops.FC_NPARAMS}[kind]
    out_c = params[2] if kind == "FULLY_CONNECTED" else params[6]
    io, oo, lo, hi = (4, 5, 6, 7) if kind == "FULLY_CONNECTED" else (16, 17, 18, 19)
    params[io] = int(rng.integers(-127, 129))
    params[oo] = int(rng.integers(-128, 128))
    a, b = sorted(rng.integers(-128, 128, 2).tolist())
    params[lo], params[hi] = (a, b) if rng.random() < 0.5 else (-128, 127)
    if kind == "FULLY_CONNECTED":
        scales = np.concatenate([10.0 ** rng.uniform(-7, 0, out_c - 3), [0.0, 1e12, 10.0 ** rng.uniform(0, 9)]])
        rng.shuffle(scales)
        params[header:] = np.frombuffer(scales.astype("<f8").tobytes(), dtype="<i4").tolist()
    else:
        mult = rng.integers(0, 2**31, out_c)
        mult[:4] = [0, 1 << 30, 2**31 - 1, (1 << 30) + 1][:min(4, out_c)]
        shift = rng.integers(-31, 31, out_c) if mode == "wild" else -rng.integers(0, 32, out_c)
        rng.shuffle(mult)
        if mode == "mixed":
            odd = rng.choice(out_c, size=min(3, out_c), replace=False)
            shift[odd[:1]] = rng.integers(1, 31)
            mult[odd[1:2]] = 0
        params[header:] = mult.tolist() + shift.tolist()
    op[2] = np.asarray(params, dtype="<i4").tobytes()
    for t in (1, 2):  # weights, bias: constants of their own in a one-op model
        src, off, n = op[3][t]
        assert src >= 0 and off == 0 and n == len(constants[src])
        if t == 1:
            constants[src] = rng.integers(-128, 128, n, dtype=np.int8).tobytes()
        else:
            lo, hi = (-2**31, 2**31) if mode == "wild" else (-5000, 5001)
            bias = rng.integers(lo, hi, n // 4, dtype=np.int64)
            if mode == "mixed":
                bias[rng.choice(n // 4, size=min(2, n // 4), replace=False)] = [2**31 - 1, -2**31][:min(2, n // 4)]
            constants[src] = bias.astype("<i4").tobytes()


@pytest.mark.parametrize("name", sorted(FUZZ_MODELS))
def test_variants_match_the_reference_kernels_on_random_params(name):
    from edgevision import _native
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    arena, consts, (op,) = engine_args(FUZZ_MODELS[name](rng))
    in_src, in_off, in_n = op[3][0]
    out_src, out_off, out_n = op[3][3]
    assert in_src == -1 and out_src == -1
    for trial in range(9):
        fop, fconsts = list(op), list(consts)
        fuzz_op(fop, fconsts, rng, ("wild", "tame", "mixed")[trial % 3])
        engines = {(v, t): _native.Engine(v, t, arena, fconsts, [tuple(fop)]) for v in VARIANTS for t in THREADS}
        xs = [rng.integers(-128, 128, in_n, dtype=np.int8) for _ in range(2)]
        xs += [np.full(in_n, -128, np.int8), np.full(in_n, 127, np.int8)]
        for x in xs:
            outs = {}
            for key, e in engines.items():
                mem = np.frombuffer(e, dtype=np.uint8)
                mem[in_off:in_off + in_n] = x.view(np.uint8)
                e.invoke()
                outs[key] = mem[out_off:out_off + out_n].copy()
            want = outs[("ref", 1)]
            for key, got in outs.items():
                np.testing.assert_array_equal(got, want, err_msg=f"{name} trial {trial}: {key}")


# -- the planner's arithmetic, against TFLite's rules -------------------------------------------------------------

def test_quantize_multiplier_edges():
    # exact powers of two: q = 2**30, shift = exponent + 1
    assert convops.quantize_multiplier(0.5) == (1 << 30, 0)
    assert convops.quantize_multiplier(1.0) == (1 << 30, 1)
    # a mantissa that rounds up to 2**31 is renormalised
    assert convops.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    # a tie rounds away from zero (std::round), not to even
    assert convops.quantize_multiplier((2**30 + 0.5) / 2**31) == (2**30 + 1, 0)
    assert convops.quantize_multiplier(0.0) == (0, 0)
    assert convops.quantize_multiplier(2.0 ** -40) == (0, 0)


def test_activation_range_rounds_half_away():
    from edgevision.native.graph import Operator, Tensor
    op = Operator(0, "CONV_2D", 1, (0, 1, 2), (3,))
    out = Tensor(3, "y", (1,), "INT8", (0.4,), (-3,))
    # 6 / 0.4f = 14.9999998 -> 15.0 in float32 -> 15; the RELU floor is the zero point
    assert convops.activation_range(op, "RELU6", out) == (-3, 12)
    out = Tensor(3, "y", (1,), "INT8", (0.8,), (0,))
    # 1 / 0.8 = 1.25 -> 1, -1.25 -> -1
    assert convops.activation_range(op, "RELU_N1_TO_1", out) == (-1, 1)
    out = Tensor(3, "y", (1,), "INT8", (2.0,), (120,))
    # -1 / 2 = -0.5 rounds away from zero to -1 (numpy's round would give 0); 1 / 2 -> +1
    assert convops.activation_range(op, "RELU_N1_TO_1", out) == (119, 121)


# -- the C checks -------------------------------------------------------------------------------------------------

def engine_args(model: bytes):
    nm = NativeModel(model, variant="ref", threads=1)
    p = nm.plan
    return p.arena_size, list(p.constants), [list(o) for o in p.engine_ops]


def build_engine(arena_size, constants, ops):
    from edgevision import _native
    return _native.Engine("ref", 1, arena_size, constants, [tuple(o) for o in ops])


def with_params(op, params):
    op = list(op)
    op[2] = np.asarray(params, dtype="<i4").tobytes()
    return op


def params_of(op) -> list[int]:
    return np.frombuffer(op[2], dtype="<i4").tolist()


def expect_refused(arena_size, constants, op, match):
    with pytest.raises(ValueError, match=match):
        build_engine(arena_size, constants, [op])


@pytest.mark.parametrize("kind", ["conv", "dw", "fc"])
def test_check_refuses_inconsistent_ops(kind):
    rng = np.random.default_rng(5)
    model = {"conv": lambda: conv_model(rng, in_c=3, out_c=5)[0], "dw": lambda: dw_model(rng, in_c=4)[0],
             "fc": lambda: fc_model(rng, in_shape=(2, 12), out_c=20)[0]}[kind]()
    arena, consts, ops = engine_args(model)
    (op,) = ops
    assert OP_KINDS[op[0]] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    build_engine(arena, consts, [op])  # the planned op itself is accepted
    params = params_of(op)
    header = {"conv": convops.CONV_NPARAMS, "dw": convops.DW_NPARAMS, "fc": convops.FC_NPARAMS}[kind]

    # params count: one short, one extra, header only
    expect_refused(arena, consts, with_params(op, params[:-1]), "params")
    expect_refused(arena, consts, with_params(op, params + [0]), "params")
    expect_refused(arena, consts, with_params(op, params[:header]), "params")
    # a channel count that disagrees with the per-channel arrays
    p = list(params)
    p[{"conv": 6, "dw": 6, "fc": 2}[kind]] += 1
    expect_refused(arena, consts, with_params(op, p), "params")
    # a tensor one byte too small (input, filter/weights, output)
    for t, name in ((0, "input"), (1, "filter|weights"), (3, "output")):
        bad = list(op)
        tensors = [list(x) for x in op[3]]
        tensors[t][2] -= 1
        bad[3] = [tuple(x) for x in tensors]
        expect_refused(arena, consts, bad, name)
    # a bias of the wrong length
    bad = list(op)
    tensors = [list(x) for x in op[3]]
    tensors[2][2] -= 4
    bad[3] = [tuple(x) for x in tensors]
    expect_refused(arena, consts, bad, "bias")
    # a wrong tensor count
    bad = list(op)
    bad[3] = list(op[3])[:3]
    expect_refused(arena, consts, bad, "tensors")
    # a wrong work-item count
    bad = list(op)
    bad[1] = op[1] + 1
    expect_refused(arena, consts, bad, "work items")
    # an input larger than its shape in params says (a shape the kernel would misread)
    p = list(params)
    p[0] += 1   # batches / rows
    expect_refused(arena, consts, with_params(op, p), "input")
    # activation clamp outside int8
    p = list(params)
    p[header - 1] = 200
    expect_refused(arena, consts, with_params(op, p), "activation")
    if kind == "fc":
        p = list(params)
        p[header:header + 2] = struct.unpack("<ii", struct.pack("<d", float("nan")))
        expect_refused(arena, consts, with_params(op, p), "scale")
        p = list(params)
        p[3] = 0   # channel block
        expect_refused(arena, consts, with_params(op, p), "block")
    else:
        out_c = params[6]
        p = list(params)
        p[header + out_c] = 31   # shift of channel 0
        expect_refused(arena, consts, with_params(op, p), "shift")
        p = list(params)
        p[header] = -5   # multiplier of channel 0
        expect_refused(arena, consts, with_params(op, p), "multiplier")
        p = list(params)
        p[10] = 0   # stride_h
        expect_refused(arena, consts, with_params(op, p), "stride")
        p = list(params)
        p[9] = 2   # filter input channels (conv) / depth multiplier (dw)
        expect_refused(arena, consts, with_params(op, p), "channels|multiplier")
        p = list(params)
        p[10] = 2**30   # a huge stride: window arithmetic would overflow int
        expect_refused(arena, consts, with_params(op, p), "overflow")


# -- the preparers' refusals --------------------------------------------------------------------------------------

def simple_conv_builder(*, w_zero_point=0, act=None, in_type=I8, opcode="CONV_2D"):
    b = TFLiteBuilder()
    q = (lambda s, z: b.quant(s, z)) if in_type == I8 else (lambda s, z: None)
    x = b.input("x", [1, 5, 5, 2], ttype=in_type, quant=q([0.1], [0]))
    wdata = np.ones((3, 3, 3, 2), np.int8) if in_type == I8 else np.ones((3, 3, 3, 2), np.float32)
    w = b.const("w", wdata, quant=q([0.01], [w_zero_point]))
    bias = b.const("b", np.zeros(3, np.int32 if in_type == I8 else np.float32), quant=q([0.001], [0]))
    y = b.op(opcode, [x, w, bias], b.options("Conv2DOptions", padding=SAME, strideH=1, strideW=1,
                                              fusedActivationFunction=ACT[act]),
             out_type=in_type, out_quant=q([0.2], [0]))
    b.output(y)
    return b


def test_preparer_refuses_asymmetric_weights():
    b = simple_conv_builder(w_zero_point=3)
    b._fix_shapes = lambda: None   # TFLite itself refuses the model; write the shape by hand
    b.tensors[-1].shape = np.asarray([1, 5, 5, 3], np.int32)
    with pytest.raises(ModelError, match=r"operator 0 \(CONV_2D.*asymmetric"):
        NativeModel(b.build(), variant="ref")


def test_preparer_refuses_float_conv():
    with pytest.raises(ModelError, match=r"operator 0 \(CONV_2D.*FLOAT32.*int8"):
        NativeModel(simple_conv_builder(in_type=fb.TensorType.FLOAT32).build(), variant="ref")


def test_preparer_refuses_tanh_activation():
    with pytest.raises(ModelError, match=r"operator 0 \(CONV_2D.*fused activation TANH"):
        NativeModel(simple_conv_builder(act="tanh").build(), variant="ref")


def test_preparer_refuses_unknown_version():
    b = simple_conv_builder()
    b.build()   # writes the output shape
    m = b.model()
    m.operatorCodes[0].version = 99
    with pytest.raises(ModelError, match=r"operator 0 \(CONV_2D v99\).*version"):
        NativeModel(pack(m), variant="ref")


def test_preparer_refuses_shuffled_fc_weights():
    rng = np.random.default_rng(1)
    b = TFLiteBuilder()
    x = b.input("x", [1, 16], ttype=I8, quant=b.quant([0.1], [0]))
    w = b.const("w", weights(rng, (4, 16)), quant=b.quant([0.01], [0]))
    opts = b.options("FullyConnectedOptions", weightsFormat=fb.FullyConnectedOptionsWeightsFormat.SHUFFLED4x16INT8)
    y = b.op("FULLY_CONNECTED", [x, w, -1], opts, out_type=I8, out_quant=b.quant([0.2], [0]))
    b.output(y)
    b.tensors[y].shape = np.asarray([1, 4], np.int32)
    with pytest.raises(ModelError, match=r"FULLY_CONNECTED.*weights format SHUFFLED4x16INT8"):
        NativeModel(b.build(fix_shapes=False), variant="ref")


def test_preparer_refuses_per_channel_scales_on_the_wrong_axis():
    rng = np.random.default_rng(2)
    b = TFLiteBuilder()
    x = b.input("x", [1, 5, 5, 3], ttype=I8, quant=b.quant([0.1], [0]))
    # DEPTHWISE filter [1, 3, 3, 3] quantized along dimension 1 (3 scales, so the reader accepts the count)
    w = b.const("w", weights(rng, (1, 3, 3, 3)), quant=b.quant([0.01, 0.02, 0.03], [0, 0, 0], 1))
    y = b.op("DEPTHWISE_CONV_2D", [x, w], b.options("DepthwiseConv2DOptions", padding=SAME, strideH=1, strideW=1,
                                                     depthMultiplier=1), out_type=I8, out_quant=b.quant([0.2], [0]))
    b.output(y)
    b.tensors[y].shape = np.asarray([1, 5, 5, 3], np.int32)
    with pytest.raises(ModelError, match=r"DEPTHWISE_CONV_2D.*dimension 1.*dimension 3"):
        NativeModel(b.build(fix_shapes=False), variant="ref")


def test_preparer_refuses_wrong_output_shape():
    b = simple_conv_builder()
    b.build()
    b.tensors[-1].shape = np.asarray([1, 4, 5, 3], np.int32)
    with pytest.raises(ModelError, match=r"CONV_2D.*should have shape \[1, 5, 5, 3\]"):
        NativeModel(b.build(fix_shapes=False), variant="ref")
