"""The native engine's ADD, MUL, pools, MEAN, PAD, COPY (RESHAPE/SQUEEZE/EXPAND_DIMS), CONCATENATION, QUANTIZE
and DEQUANTIZE kernels against TFLite's reference kernels (LiteRT's BUILTIN_REF resolver, the oracle).

Every model is a single int8 operator (or a short chain) built with tests/tflite_builder.py, with random
quantization parameters and random inputs; the expected bytes always come from the interpreter. Each model runs
on every kernel variant this CPU supports (``ref``, and e.g. ``sse41`` and ``avx2`` on x86, ``neon`` and
``dotprod`` on aarch64) with 1, 2 and 3 threads, which must all give the oracle's bytes exactly; for the kinds a
SIMD variant implements itself (ADD, MUL, MEAN, the pools, QUANTIZE's requantisation) the test also asserts that
its own kernel is the one that ran, not the reference filling an empty slot. Sizes around the vector widths
(1, 15, 16, 17, 31, 33, 63, 65, ...) exercise the SIMD tails; csrc/tests/test_elementwise_variants.c, built and
run here for this machine, fuzzes the same kernels against the reference with params no converter writes.

With EDGEVISION_XNNPACK_REPORT=path, LiteRT's default kernels (the XNNPACK delegate) run every model too, only to
record how far they are from the reference: the largest difference per case, in output steps, is written to
that JSON file (never asserted; off by default because some of LiteRT's aarch64 optimized kernels die with
SIGILL under qemu's Cortex-A72).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tflite_builder import SAME, VALID, TFLiteBuilder, fb, interpreter

from edgevision.native import variants
from edgevision.native.engine import NativeModel
from edgevision.native.graph import ModelError
from edgevision.native.ops import OP_KINDS
from edgevision.native.tflite import read_model

try:
    variants.extension()
except variants.NativeUnavailable as e:  # pragma: no cover
    pytest.skip(f"native extension not built: {e}", allow_module_level=True)

I8, U8, F32, I32, I64 = (fb.TensorType.INT8, fb.TensorType.UINT8, fb.TensorType.FLOAT32, fb.TensorType.INT32,
                         fb.TensorType.INT64)
ACTS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
THREADS = (1, 2, 3)
XNNPACK_MAX_DIFF: dict[str, float] = {}
ROOT = Path(__file__).resolve().parents[1]

# every variant this CPU runs, ref first
VARIANTS = variants.supported() if variants.compiled() else ("ref",)
# the implementation whose kernels a variant runs for the kinds below (dotprod takes neon's), and those kinds
SIMD_IMPL = {"sse41": "sse41", "avx2": "avx2", "avx512vnni": "avx2", "neon": "neon", "dotprod": "neon"}
SIMD_KINDS = ("ADD", "MUL", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D", "QUANTIZE")
TAIL_SIZES = (1, 15, 16, 17, 31, 32, 33, 63, 65, 129)


def expected_kernel(variant: str, kind: str):
    """The C function `variant` must run for an op kind, when it has its own SIMD kernel for it (else None)."""
    if variant in SIMD_IMPL and kind in SIMD_KINDS:
        return f"ev_{kind.lower()}_{SIMD_IMPL[variant]}"
    return None


def test_simd_variants_fill_their_elementwise_slots():
    """Each SIMD variant this CPU runs has its own kernel for every kind in SIMD_KINDS."""
    names = {v: variants.extension().kernel_names(v) for v in VARIANTS}
    for v in VARIANTS:
        for kind in SIMD_KINDS:
            want = expected_kernel(v, kind) or f"ev_{kind.lower()}_ref"
            assert names[v][kind] == want, (v, kind)


# -- helpers -----------------------------------------------------------------------------------------------------

def seed_of(*parts) -> int:
    """A reproducible seed from a test case's description (hash() of a str changes per process)."""
    return zlib.crc32(repr(parts).encode())


def rand_quant(rng, lo=0.004, hi=0.2, dtype="int8"):
    scale = float(np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
    zp = int(rng.integers(-128, 128)) if dtype == "int8" else int(rng.integers(0, 256))
    return scale, zp


def q(b: TFLiteBuilder, scale_zp):
    return b.quant([scale_zp[0]], [scale_zp[1]])


def rand_input(rng, shape, dtype=np.int8):
    if dtype == np.float32:
        return rng.standard_normal(shape).astype(np.float32) * 3
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)


def oracle(model: bytes, inputs, reference=True):
    it = interpreter(model, reference=reference)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def _steps(a, b, scale=None):
    """Largest difference in output steps (quantized) or in multiples of `scale` (float outputs)."""
    if a.dtype.kind == "f":
        d = np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0.0)
        return float(d / scale) if scale else float(d)
    return float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max(initial=0))


def check(model: bytes, inputs, label: str, float_scale=None):
    """The oracle's outputs, and the native engine's on every variant with 1, 2 and 3 threads, must be identical;
    a step of a kind a SIMD variant implements must run that variant's own kernel."""
    want = oracle(model, inputs)
    for v in VARIANTS:
        for t in THREADS:
            m = NativeModel(model, variant=v, threads=t)
            for step, kernel in zip(m.plan.steps, m.kernels):
                assert expected_kernel(v, step.kind) in (None, kernel), f"{label}: {v} ran {kernel}"
            got = m.run(*inputs)
            assert len(got) == len(want)
            for g_, w in zip(got, want):
                assert g_.dtype == w.dtype and g_.shape == w.shape
                np.testing.assert_array_equal(g_, w, err_msg=f"{label}, {v}, threads={t}")
    if not os.environ.get("EDGEVISION_XNNPACK_REPORT"):
        return want
    try:
        xnn = oracle(model, inputs, reference=False)
        XNNPACK_MAX_DIFF[label] = max(_steps(x, w, float_scale) for x, w in zip(xnn, want))
    except Exception as e:  # recorded, never asserted
        XNNPACK_MAX_DIFF[label] = f"error: {e}"
    return want


@pytest.fixture(scope="module", autouse=True)
def _xnnpack_report():
    yield
    path = os.environ.get("EDGEVISION_XNNPACK_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(XNNPACK_MAX_DIFF, f, indent=1, sort_keys=True)


def single_op(opcode, in_specs, options=None, out_quant=None, out_type=I8, consts=(), fix_shapes=True,
              out_shape=None):
    """A model of one operator. in_specs: (shape, type, (scale, zp) or None) per graph input; consts: tensor
    indices made by a callback, appended to the operator's inputs (see callers)."""
    b = TFLiteBuilder()
    ins = [b.input(f"in{k}", shape, ttype=tt, quant=None if qq is None else q(b, qq))
           for k, (shape, tt, qq) in enumerate(in_specs)]
    extra = [c(b) if callable(c) else c for c in consts]
    out = b.op(opcode, ins + extra, options, out_type=out_type,
               out_quant=None if out_quant is None else q(b, out_quant))
    if out_shape is not None:
        b.tensors[out].shape = np.asarray(out_shape, dtype=np.int32)
    b.output(out)
    return b.build(fix_shapes=fix_shapes)


# -- ADD, MUL ----------------------------------------------------------------------------------------------------

BINARY_SHAPES = [
    ([1, 9, 9, 16], [1, 9, 9, 16]),
    ([1, 4, 4, 8], [1, 1, 1, 8]),
    ([1, 1, 1, 8], [1, 4, 4, 8]),
    ([1, 4, 4, 8], [1, 4, 4, 1]),
    ([2, 3, 1, 5], [1, 1, 4, 1]),
    ([8], [3, 5, 8]),
    ([2, 1, 3, 1, 5], [1, 4, 1, 6, 5]),
    ([2, 1, 3, 1, 2, 4], [1, 2, 1, 3, 1, 4]),
]


@pytest.mark.parametrize("opcode", ["ADD", "MUL"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
def test_binary_broadcast_and_activations(opcode, shapes, act):
    rng = np.random.default_rng(seed_of((opcode, str(shapes), act)))
    qa, qb = rand_quant(rng), rand_quant(rng)
    qo = rand_quant(rng, 0.02, 0.3) if opcode == "ADD" else rand_quant(rng, 0.0005, 0.02)
    opts = TFLiteBuilder.options("AddOptions" if opcode == "ADD" else "MulOptions",
                                 fusedActivationFunction=ACTS[act])
    model = single_op(opcode, [(shapes[0], I8, qa), (shapes[1], I8, qb)], opts, qo)
    x, y = rand_input(rng, shapes[0]), rand_input(rng, shapes[1])
    check(model, [x, y], f"{opcode} {shapes[0]}x{shapes[1]} {act}")


@pytest.mark.parametrize("opcode", ["ADD", "MUL"])
@pytest.mark.parametrize("seed", range(6))
def test_binary_equal_and_different_scales(opcode, seed):
    rng = np.random.default_rng(100 + seed)
    qa = rand_quant(rng)
    qb = qa if seed % 2 == 0 else rand_quant(rng)  # equal input scales (and zero points) on even seeds
    qo = rand_quant(rng, 0.01, 0.5) if opcode == "ADD" else rand_quant(rng, 0.0002, 0.05)
    shape = [1, 5, 7, 12]
    opts = TFLiteBuilder.options("AddOptions" if opcode == "ADD" else "MulOptions", fusedActivationFunction=0)
    model = single_op(opcode, [(shape, I8, qa), (shape, I8, qb)], opts, qo)
    check(model, [rand_input(rng, shape), rand_input(rng, shape)], f"{opcode} scales seed {seed}")


@pytest.mark.parametrize("opcode", ["ADD", "MUL"])
def test_binary_with_constant_operand(opcode):
    rng = np.random.default_rng(7)
    qa, qc, qo = rand_quant(rng), rand_quant(rng), rand_quant(rng, 0.01, 0.1)
    const = rand_input(rng, [1, 1, 1, 24])

    def make_const(b):
        return b.const("c", const, quant=q(b, qc))

    opts = TFLiteBuilder.options("AddOptions" if opcode == "ADD" else "MulOptions", fusedActivationFunction=0)
    model = single_op(opcode, [([1, 6, 6, 24], I8, qa)], opts, qo, consts=[make_const])
    check(model, [rand_input(rng, [1, 6, 6, 24])], f"{opcode} constant operand")


@pytest.mark.parametrize("opcode", ["ADD", "MUL"])
@pytest.mark.parametrize("seed", range(8))
def test_binary_every_pair_of_int8_values(opcode, seed):
    # [256, 1] op [1, 256]: all 65536 input pairs, so any rounding difference in the multipliers (float32 vs
    # double in Prepare, the 20-bit headroom, the rounding of each rescale) shows up somewhere
    rng = np.random.default_rng(500 + seed)
    qa, qb = rand_quant(rng, 0.001, 0.5), rand_quant(rng, 0.001, 0.5)
    if opcode == "ADD":
        qo = rand_quant(rng, max(qa[0], qb[0]) / 4, max(qa[0], qb[0]) * 4)
    else:
        qo = rand_quant(rng, qa[0] * qb[0] * 2, qa[0] * qb[0] * 300)
    opts = TFLiteBuilder.options("AddOptions" if opcode == "ADD" else "MulOptions", fusedActivationFunction=0)
    model = single_op(opcode, [([256, 1], I8, qa), ([1, 256], I8, qb)], opts, qo)
    values = np.arange(-128, 128, dtype=np.int8)
    check(model, [values.reshape(256, 1), values.reshape(1, 256)], f"{opcode} all pairs seed {seed}")


def _mbqm(x: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier on int64 arrays (|x| < 2^31 >> max(shift, 0)), only used to pick
    inputs that tell two multipliers apart."""
    x = x.astype(np.int64) << max(shift, 0)
    ab = x * mult
    t = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    hi = np.where(t >= 0, t >> 31, -((-t) >> 31))
    e = max(-shift, 0)
    mask = (1 << e) - 1
    return (hi >> e) + ((hi & mask) > ((mask >> 1) + (hi < 0))).astype(np.int64)


def test_mul_multiplier_is_computed_in_float32_like_tflite():
    # mul.cc computes input1_scale * input2_scale / output_scale in float32; with these scales that multiplier
    # differs from the double-precision one enough to change one output of the 65536 input pairs
    s1, s2, so, z1, z2, zo = 0.01056434866040945, 0.03645157814025879, 0.07662110775709152, 113, -52, 123
    from edgevision.native.ops.elementwise import quantize_multiplier
    m32 = quantize_multiplier(float(np.float32(np.float32(s1) * np.float32(s2)) / np.float32(so)))
    m64 = quantize_multiplier(s1 * s2 / so)
    values = np.arange(-128, 128, dtype=np.int64)
    prods = (values[:, None] - z1) * (values[None, :] - z2)
    a, b = np.clip(_mbqm(prods, *m32) + zo, -128, 127), np.clip(_mbqm(prods, *m64) + zo, -128, 127)
    assert (a != b).any(), "the case no longer tells float32 from double multipliers apart"
    opts = TFLiteBuilder.options("MulOptions", fusedActivationFunction=0)
    model = single_op("MUL", [([256, 1], I8, (s1, z1)), ([1, 256], I8, (s2, z2))], opts, (so, zo))
    v8 = values.astype(np.int8)
    want = check(model, [v8.reshape(256, 1), v8.reshape(1, 256)], "MUL float32 multiplier")[0]
    np.testing.assert_array_equal(want, a.astype(np.int8))  # and the oracle is the float32 one


def _add_model(qa, qb, qo, left_shift=20, truncate_inputs=False):
    """ADD's arithmetic over all int8 pairs (rows: input 1, columns: input 2), with TFLite's Prepare, or a
    variant of it; only used to show the cases below are sensitive to those details."""
    from edgevision.native.ops.elementwise import quantize_multiplier
    (s1, z1), (s2, z2), (so, zo) = qa, qb, qo
    twice = 2.0 * max(s1, s2)
    m1, m2 = quantize_multiplier(s1 / twice), quantize_multiplier(s2 / twice)
    mo = quantize_multiplier(twice / float(np.float32(1 << left_shift) * np.float32(so)))
    v = np.arange(-128, 128, dtype=np.int64)
    a, b = ((v - z1) << left_shift)[:, None], ((v - z2) << left_shift)[None, :]
    if truncate_inputs:
        sa, sb = (a * m1[0]) >> (31 - m1[1]), (b * m2[0]) >> (31 - m2[1])
    else:
        sa, sb = _mbqm(a, *m1), _mbqm(b, *m2)
    return np.clip(_mbqm(sa + sb, *mo) + zo, -128, 127).astype(np.int8)


# quantizations where 18 bits of headroom instead of 20, or truncating instead of rounding the input rescale,
# change at least one of the 65536 outputs (found by searching random ones with _add_model)
ADD_SENSITIVE = [
    ((0.014231194742023945, 20), (0.005111033096909523, 2), (0.010144962929189205, 49)),
    ((0.00882021989673376, -107), (0.20827150344848633, -125), (0.3892008066177368, -120)),
    ((0.012518848292529583, -29), (0.027553195133805275, 94), (0.009322356432676315, -91)),
    ((0.005724824965000153, -62), (0.018180591985583305, 29), (0.011774906888604164, -128)),
    ((0.0026048333384096622, 117), (0.26685795187950134, -106), (0.3432914614677429, -101)),
    ((0.0025014723651111126, -88), (0.04534515365958214, -66), (0.04462524875998497, 10)),
]


@pytest.mark.parametrize("case", range(len(ADD_SENSITIVE)))
def test_add_headroom_and_rounding_cases(case):
    qa, qb, qo = ADD_SENSITIVE[case]
    exact = _add_model(qa, qb, qo)
    assert ((exact != _add_model(qa, qb, qo, left_shift=18)).any()
            or (exact != _add_model(qa, qb, qo, truncate_inputs=True)).any()), "the case is not sensitive"
    model = single_op("ADD", [([256, 1], I8, qa), ([1, 256], I8, qb)], TFLiteBuilder.options("AddOptions"), qo)
    v8 = np.arange(-128, 128, dtype=np.int8)
    want = check(model, [v8.reshape(256, 1), v8.reshape(1, 256)], f"ADD sensitive {case}")[0]
    np.testing.assert_array_equal(want, exact)


def test_binary_extreme_inputs_saturate_like_tflite():
    # inputs at the ends of int8 with a tiny output scale: the clamp and the 20-bit headroom both matter
    rng = np.random.default_rng(3)
    for opcode in ("ADD", "MUL"):
        qa, qb, qo = (0.2, -128), (0.19, 127), (0.01, 5)
        opts = TFLiteBuilder.options("AddOptions" if opcode == "ADD" else "MulOptions", fusedActivationFunction=0)
        model = single_op(opcode, [([4, 64], I8, qa), ([4, 64], I8, qb)], opts, qo)
        x = np.where(rng.random((4, 64)) < 0.5, -128, 127).astype(np.int8)
        y = np.where(rng.random((4, 64)) < 0.5, -128, 127).astype(np.int8)
        check(model, [x, y], f"{opcode} extremes")


@pytest.mark.parametrize("opcode", ["ADD", "MUL"])
@pytest.mark.parametrize("n", TAIL_SIZES)
def test_binary_vector_tails(opcode, n):
    """Runs of n elements around the vector widths: same shapes (one run), a row broadcast over rows (runs of n,
    both inputs stepping), a scalar (one input constant along the run) and a column broadcast."""
    rng = np.random.default_rng(seed_of(opcode, n))
    opts = TFLiteBuilder.options("AddOptions" if opcode == "ADD" else "MulOptions", fusedActivationFunction=0)
    qa, qb = rand_quant(rng), rand_quant(rng)
    qo = rand_quant(rng, 0.02, 0.3) if opcode == "ADD" else rand_quant(rng, 0.0005, 0.02)
    for sa, sb in (([n], [n]), ([3, n], [n]), ([n], [1]), ([1], [n]), ([3, n], [3, 1])):
        model = single_op(opcode, [(sa, I8, qa), (sb, I8, qb)], opts, qo)
        check(model, [rand_input(rng, sa), rand_input(rng, sb)], f"{opcode} {sa}x{sb}")


# -- pools -------------------------------------------------------------------------------------------------------

POOL_CASES = [
    # input shape, filter (h, w), stride (h, w), padding, activation
    ([1, 7, 9, 5], (2, 2), (2, 2), SAME, "NONE"),
    ([1, 7, 9, 5], (2, 2), (2, 2), VALID, "NONE"),
    ([1, 7, 9, 5], (3, 3), (1, 1), SAME, "RELU"),
    ([1, 7, 9, 5], (3, 3), (2, 2), SAME, "RELU6"),
    ([2, 6, 5, 3], (3, 3), (2, 2), VALID, "NONE"),
    ([2, 6, 5, 3], (3, 2), (1, 2), SAME, "NONE"),
    ([1, 11, 11, 16], (3, 3), (2, 2), SAME, "RELU_N1_TO_1"),
    ([1, 7, 7, 32], (7, 7), (1, 1), VALID, "NONE"),  # global average pool
    ([1, 5, 5, 4], (5, 5), (1, 1), SAME, "NONE"),    # windows hanging over every edge
]


def _pool_id(c):
    return f"{c[0]}-f{c[1]}-s{c[2]}-{'SAME' if c[3] == SAME else 'VALID'}-{c[4]}"


@pytest.mark.parametrize("opcode", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("case", POOL_CASES, ids=_pool_id)
def test_pool(opcode, case):
    shape, (fh, fw), (sh, sw), padding, act = case
    rng = np.random.default_rng(seed_of((opcode, str(case))))
    qa = rand_quant(rng)
    opts = TFLiteBuilder.options("Pool2DOptions", padding=padding, strideH=sh, strideW=sw, filterHeight=fh,
                                 filterWidth=fw, fusedActivationFunction=ACTS[act])
    model = single_op(opcode, [(shape, I8, qa)], opts, qa)
    check(model, [rand_input(rng, shape)], f"{opcode} {case}")


@pytest.mark.parametrize("opcode", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("channels", TAIL_SIZES)
def test_pool_channel_tails(opcode, channels):
    """The SIMD pools take 16 (or 32) channels at a time and the rest one by one: every remainder."""
    rng = np.random.default_rng(seed_of(opcode, channels))
    qa = rand_quant(rng)
    opts = TFLiteBuilder.options("Pool2DOptions", padding=SAME, strideH=2, strideW=2, filterHeight=3, filterWidth=3,
                                 fusedActivationFunction=0)
    model = single_op(opcode, [([1, 5, 6, channels], I8, qa)], opts, qa)
    check(model, [rand_input(rng, [1, 5, 6, channels])], f"{opcode} {channels} channels")


def test_average_pool_windows_of_more_than_256_cells():
    """Sums of more than 256 int8 leave int16: the SIMD pools switch to int32 accumulators."""
    rng = np.random.default_rng(21)
    qa = (0.05, -3)
    opts = TFLiteBuilder.options("Pool2DOptions", padding=VALID, strideH=1, strideW=1, filterHeight=17,
                                 filterWidth=16, fusedActivationFunction=0)
    model = single_op("AVERAGE_POOL_2D", [([1, 18, 17, 33], I8, qa)], opts, qa)
    for x in (rand_input(rng, [1, 18, 17, 33]), np.full([1, 18, 17, 33], -128, np.int8),
              np.full([1, 18, 17, 33], 127, np.int8)):
        check(model, [x], "AVERAGE_POOL_2D 17x16")


def test_average_pool_rounds_half_away_from_zero():
    # 2x2 windows of sums = +-2 mod 4: exact halves, positive and negative
    qa = (0.1, 0)
    opts = TFLiteBuilder.options("Pool2DOptions", padding=VALID, strideH=2, strideW=2, filterHeight=2, filterWidth=2,
                                 fusedActivationFunction=0)
    model = single_op("AVERAGE_POOL_2D", [([1, 4, 4, 2], I8, qa)], opts, qa)
    x = np.array([1, 1, 0, 0, -1, -1, 0, 0] * 4, dtype=np.int8).reshape(1, 4, 4, 2)
    want = check(model, [x], "AVERAGE_POOL_2D halves")[0]
    assert set(np.unique(want)) <= {-1, 0, 1}


# -- MEAN --------------------------------------------------------------------------------------------------------

MEAN_CASES = [
    # input shape, axes, keep_dims, same output quantization
    ([1, 7, 7, 32], [1, 2], True, True),
    ([1, 7, 7, 32], [1, 2], True, False),
    ([1, 7, 7, 32], [1, 2], False, True),
    ([1, 7, 7, 32], [1, 2], False, False),
    ([2, 16, 16, 8], [2, 1], True, False),
    ([1, 5, 6, 10], [3], False, False),
    ([1, 5, 6, 10], [-1], True, True),
    ([1, 5, 6, 10], [1], False, False),
    ([2, 5, 6, 10], [0, 3], True, False),
    ([1, 5, 6, 10], [1, 2, 3], False, False),
    ([1, 5, 6, 10], [1, -3, 2], True, False),  # duplicate axis
    ([3, 4, 5], [0, 2], False, False),
    ([1, 3, 50, 50, 2], [2, 3], False, False),  # 2500 elements per mean
]


@pytest.mark.parametrize("case", MEAN_CASES, ids=lambda c: f"{c[0]}-axes{c[1]}-keep{c[2]}-{'same' if c[3] else 'diff'}")
def test_mean(case):
    shape, axes, keep, same = case
    rng = np.random.default_rng(seed_of(str(case)))
    qa = rand_quant(rng)
    qo = qa if same else rand_quant(rng, 0.002, 0.1)

    def axis_const(b):
        return b.const("axis", np.array(axes, dtype=np.int32))

    model = single_op("MEAN", [(shape, I8, qa)], TFLiteBuilder.options("ReducerOptions", keepDims=keep), qo,
                      consts=[axis_const])
    check(model, [rand_input(rng, shape)], f"MEAN {case}")


@pytest.mark.parametrize("channels", TAIL_SIZES)
def test_mean_channel_tails(channels):
    """MEAN over H and W (channels kept: vectors of channels) and over the channels (innermost reduced: runs summed
    in vectors), for channel counts around the vector widths."""
    rng = np.random.default_rng(seed_of("mean", channels))
    for axes, keep in (([1, 2], True), ([3], False), ([2, 3], True)):
        qa, qo = rand_quant(rng), rand_quant(rng, 0.002, 0.05)

        def axis_const(b):
            return b.const("axis", np.array(axes, dtype=np.int32))

        shape = [2, 3, 5, channels]
        model = single_op("MEAN", [(shape, I8, qa)], TFLiteBuilder.options("ReducerOptions", keepDims=keep), qo,
                          consts=[axis_const])
        check(model, [rand_input(rng, shape)], f"MEAN {shape} axes {axes}")


def test_mean_of_many_cells_at_the_int8_limits():
    """More than 256 cells per mean (the SIMD int16 sums are flushed to int32), all at one extreme."""
    def axis_const(b):
        return b.const("axis", np.array([1, 2], dtype=np.int32))

    shape = [1, 23, 19, 40]
    for qa, qo in (((0.05, 127), (0.0005, 0)), ((0.05, -128), (0.0005, 0))):
        model = single_op("MEAN", [(shape, I8, qa)], TFLiteBuilder.options("ReducerOptions", keepDims=True), qo,
                          consts=[axis_const])
        for v in (-128, 127):
            check(model, [np.full(shape, v, np.int8)], f"MEAN {shape} all {v}")


def test_mean_output_scale_larger_and_smaller_than_input():
    # input/output scale ratios above 1 give a positive shift before the 1/count folding
    rng = np.random.default_rng(11)
    for qa, qo in (((0.5, 3), (0.01, -2)), ((0.01, -100), (0.5, 7)), ((0.05, 0), (0.05, 0))):
        def axis_const(b):
            return b.const("axis", np.array([1, 2], dtype=np.int32))

        model = single_op("MEAN", [([1, 3, 3, 16], I8, qa)], TFLiteBuilder.options("ReducerOptions", keepDims=True),
                          qo, consts=[axis_const])
        check(model, [rand_input(rng, [1, 3, 3, 16])], f"MEAN ratio {qa[0] / qo[0]:.3g}")


# -- PAD ---------------------------------------------------------------------------------------------------------

PAD_CASES = [
    ([1, 5, 6, 3], [[0, 0], [1, 2], [0, 3], [0, 0]], I32),
    ([1, 5, 6, 3], [[0, 0], [0, 0], [0, 0], [2, 1]], I32),
    ([2, 4, 4, 8], [[1, 0], [2, 2], [1, 1], [0, 0]], I64),
    ([3, 7, 5], [[0, 1], [3, 0], [1, 4]], I32),
    ([2, 3, 4, 5, 6], [[0, 1], [1, 0], [0, 2], [1, 1], [2, 0]], I32),
]


@pytest.mark.parametrize("opcode", ["PAD", "PADV2"])
@pytest.mark.parametrize("case", PAD_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_pad(opcode, case):
    shape, pads, ptype = case
    rng = np.random.default_rng(seed_of((opcode, str(case))))
    qa = rand_quant(rng)
    consts = [lambda b: b.const("paddings", np.array(pads, dtype=np.int32 if ptype == I32 else np.int64))]
    if opcode == "PADV2":
        value = np.array([int(rng.integers(-128, 128))], dtype=np.int8).reshape(())
        consts.append(lambda b: b.const("value", value, quant=q(b, qa)))
    model = single_op(opcode, [(shape, I8, qa)], None, qa, consts=consts)
    out = check(model, [rand_input(rng, shape)], f"{opcode} {case}")[0]
    assert out.shape == tuple(d + p[0] + p[1] for d, p in zip(shape, pads))


# -- RESHAPE, SQUEEZE, EXPAND_DIMS -------------------------------------------------------------------------------

def test_reshape_squeeze_expand_dims():
    rng = np.random.default_rng(5)
    qa = rand_quant(rng)
    model = single_op("RESHAPE", [([1, 4, 4, 8], I8, qa)], None, qa,
                      consts=[lambda b: b.const("shape", np.array([1, 128], dtype=np.int32))])
    x = rand_input(rng, [1, 4, 4, 8])
    out = check(model, [x], "RESHAPE")[0]
    np.testing.assert_array_equal(out, x.reshape(1, 128))

    model = single_op("SQUEEZE", [([1, 1, 1, 1000], I8, qa)],
                      TFLiteBuilder.options("SqueezeOptions", squeezeDims=[1, 2]), qa)
    check(model, [rand_input(rng, [1, 1, 1, 1000])], "SQUEEZE")

    model = single_op("EXPAND_DIMS", [([3, 10], I8, qa)], None, qa,
                      consts=[lambda b: b.const("axis", np.array([1], dtype=np.int32))])
    check(model, [rand_input(rng, [3, 10])], "EXPAND_DIMS")


# -- CONCATENATION -----------------------------------------------------------------------------------------------

CONCAT_CASES = [
    ([[1, 4, 4, 3], [1, 4, 4, 5], [1, 4, 4, 8]], 3),
    ([[1, 4, 4, 3], [1, 4, 4, 5]], -1),
    ([[1, 2, 4, 3], [1, 5, 4, 3]], 1),
    ([[2, 3, 6], [1, 3, 6], [3, 3, 6]], 0),
    ([[1, 3, 3, 2]] * 9, 3),  # more inputs than one engine step takes
]


@pytest.mark.parametrize("case", CONCAT_CASES, ids=lambda c: f"{len(c[0])}in-axis{c[1]}")
def test_concatenation(case):
    shapes, axis = case
    rng = np.random.default_rng(seed_of(str(case)))
    qa = rand_quant(rng)
    opts = TFLiteBuilder.options("ConcatenationOptions", axis=axis, fusedActivationFunction=0)
    model = single_op("CONCATENATION", [(s, I8, qa) for s in shapes], opts, qa)
    xs = [rand_input(rng, s) for s in shapes]
    out = check(model, xs, f"CONCATENATION {case}")[0]
    np.testing.assert_array_equal(out, np.concatenate(xs, axis=axis))


def test_concatenation_with_differing_scales_is_refused_like_tflite():
    # TFLite's Prepare requires int8 inputs quantized exactly as the output (only uint8 requantizes), so the
    # interpreter refuses the model; the native engine refuses it too, saying why
    shapes = [[1, 4, 4, 3], [1, 4, 4, 5]]
    opts = TFLiteBuilder.options("ConcatenationOptions", axis=3, fusedActivationFunction=0)
    b = TFLiteBuilder()
    a = b.input("a", shapes[0], ttype=I8, quant=b.quant([0.05], [1]))
    c = b.input("c", shapes[1], ttype=I8, quant=b.quant([0.08], [-3]))
    out = b.op("CONCATENATION", [a, c], opts, out_type=I8, out_quant=b.quant([0.08], [-3]))
    b.tensors[out].shape = np.asarray([1, 4, 4, 8], dtype=np.int32)
    b.output(out)
    model = b.build(fix_shapes=False)
    with pytest.raises(Exception):
        interpreter(model).allocate_tensors()
    with pytest.raises(ModelError, match=r"operator 0 \(CONCATENATION.*quantized exactly as the output"):
        NativeModel(model, variant="ref", threads=1)


# -- QUANTIZE, DEQUANTIZE ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("out_type", [I8, U8], ids=["int8", "uint8"])
@pytest.mark.parametrize("seed", range(3))
def test_quantize_from_float(out_type, seed):
    rng = np.random.default_rng(200 + seed)
    qo = rand_quant(rng, 0.01, 0.2, "int8" if out_type == I8 else "uint8")
    shape = [1, 6, 7, 9]
    model = single_op("QUANTIZE", [(shape, F32, None)], None, qo, out_type=out_type)
    x = rand_input(rng, shape, np.float32)
    x.reshape(-1)[:20] = (np.arange(20) - 10) * np.float32(qo[0]) * 0.5  # near-exact halves
    x.reshape(-1)[20:24] = [1e6, -1e6, 0.0, -0.0]
    check(model, [x], f"QUANTIZE float->{'int8' if out_type == I8 else 'uint8'} seed {seed}")


def test_quantize_from_float_exact_ties():
    # a power-of-two scale makes x / scale exact, so .5 ties reach the rounding: half away from zero
    model = single_op("QUANTIZE", [([64], F32, None)], None, (0.25, -3))
    x = (np.arange(64, dtype=np.float32) - 32) * np.float32(0.125)
    out = check(model, [x], "QUANTIZE ties")[0]
    assert out[33] == -3 + 1 and out[31] == -3 - 1  # 0.5 -> 1, -0.5 -> -1


@pytest.mark.parametrize("types", [(I8, I8), (U8, I8), (I8, U8), (U8, U8)],
                         ids=["int8-int8", "uint8-int8", "int8-uint8", "uint8-uint8"])
@pytest.mark.parametrize("seed", range(3))
def test_quantize_requantize(types, seed):
    rng = np.random.default_rng(300 + seed)
    tin, tout = types
    qa = rand_quant(rng, 0.005, 0.2, "int8" if tin == I8 else "uint8")
    qo = rand_quant(rng, 0.005, 0.2, "int8" if tout == I8 else "uint8")
    if seed == 0:
        qo = (qa[0], qo[1])  # same scale, zero point shift only
    shape = [1, 5, 5, 20]
    model = single_op("QUANTIZE", [(shape, tin, qa)], None, qo, out_type=tout)
    names = {I8: "int8", U8: "uint8"}
    check(model, [rand_input(rng, shape, np.int8 if tin == I8 else np.uint8)],
          f"QUANTIZE {names[tin]}->{names[tout]} seed {seed}")


@pytest.mark.parametrize("types", [(I8, I8), (U8, I8), (I8, U8)], ids=["int8-int8", "uint8-int8", "int8-uint8"])
def test_quantize_requantize_vector_tails(types):
    rng = np.random.default_rng(seed_of("requant tails", types))
    tin, tout = types
    for n in TAIL_SIZES:
        qa = rand_quant(rng, 0.005, 0.2, "int8" if tin == I8 else "uint8")
        qo = rand_quant(rng, 0.005, 0.2, "int8" if tout == I8 else "uint8")
        model = single_op("QUANTIZE", [([n], tin, qa)], None, qo, out_type=tout)
        check(model, [rand_input(rng, [n], np.int8 if tin == I8 else np.uint8)], f"QUANTIZE {n}")


def test_quantize_uint8_to_int8_xor_fast_path():
    # zero points 128 apart with one scale: TFLite's Requantize takes its "xor 0x80" shortcut
    model = single_op("QUANTIZE", [([256], U8, (0.03, 128))], None, (0.03, 0), out_type=I8)
    out = check(model, [np.arange(256, dtype=np.uint8)], "QUANTIZE xor")[0]
    np.testing.assert_array_equal(out, (np.arange(256) - 128).astype(np.int8))


@pytest.mark.parametrize("in_type", [I8, U8], ids=["int8", "uint8"])
@pytest.mark.parametrize("seed", range(3))
def test_dequantize(in_type, seed):
    rng = np.random.default_rng(400 + seed)
    qa = rand_quant(rng, 0.001, 2.0, "int8" if in_type == I8 else "uint8")
    dt = np.int8 if in_type == I8 else np.uint8
    shape = [3, 256]
    model = single_op("DEQUANTIZE", [(shape, in_type, qa)], None, None, out_type=F32)
    x = np.stack([np.arange(np.iinfo(dt).min, np.iinfo(dt).max + 1, dtype=np.int64).astype(dt)] +
                 [rand_input(rng, [256], dt) for _ in range(2)])
    check(model, [x], f"DEQUANTIZE {'int8' if in_type == I8 else 'uint8'} seed {seed}", float_scale=qa[0])


# -- a chain: float in, float out --------------------------------------------------------------------------------

def test_chain_of_ops_float_in_float_out():
    rng = np.random.default_rng(42)
    b = TFLiteBuilder()
    x = b.input("x", [1, 9, 9, 6])
    qx, qp, qa, qm = (0.03, -5), (0.03, -5), (0.05, 10), (0.02, -1)
    t = b.op("QUANTIZE", [x], out_type=I8, out_quant=q(b, qx))
    t = b.op("PAD", [t, b.const("p", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], dtype=np.int32))], out_type=I8,
             out_quant=q(b, qp))
    p = b.op("AVERAGE_POOL_2D", [t], b.options("Pool2DOptions", padding=VALID, strideH=2, strideW=2, filterHeight=3,
                                               filterWidth=3), out_type=I8, out_quant=q(b, qp))
    m = b.op("MAX_POOL_2D", [t], b.options("Pool2DOptions", padding=VALID, strideH=2, strideW=2, filterHeight=3,
                                           filterWidth=3), out_type=I8, out_quant=q(b, qp))
    s = b.op("ADD", [p, m], b.options("AddOptions", fusedActivationFunction=1), out_type=I8, out_quant=q(b, qa))
    c = b.op("CONCATENATION", [s, s], b.options("ConcatenationOptions", axis=3), out_type=I8, out_quant=q(b, qa))
    r = b.op("MEAN", [c, b.const("axes", np.array([1, 2], dtype=np.int32))],
             b.options("ReducerOptions", keepDims=False), out_type=I8, out_quant=q(b, qm))
    y = b.op("DEQUANTIZE", [r], out_type=F32)
    b.output(y)
    model = b.build()
    check(model, [rand_input(rng, [1, 9, 9, 6], np.float32)], "chain", float_scale=qm[0])
    kinds = [s.kind for s in NativeModel(model, variant="ref", threads=1).plan.steps]
    assert kinds == ["QUANTIZE", "PAD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "CONCATENATION", "MEAN", "DEQUANTIZE"]


def test_work_is_split_across_threads():
    # the thread tests above only prove something if the ops have several work items
    rng = np.random.default_rng(1)
    qa = rand_quant(rng)
    model = single_op("ADD", [([1, 9, 9, 16], I8, qa), ([1, 9, 9, 16], I8, qa)],
                      TFLiteBuilder.options("AddOptions"), qa)
    m = NativeModel(model, variant="ref", threads=3)
    assert m.plan.steps[0].items >= 3
    assert m.kernels == ["ev_add_ref"]
    pool = single_op("MAX_POOL_2D", [([1, 7, 9, 5], I8, qa)],
                     TFLiteBuilder.options("Pool2DOptions", padding=SAME, strideH=1, strideW=1, filterHeight=3,
                                           filterWidth=3), qa)
    assert NativeModel(pool, variant="ref", threads=3).plan.steps[0].items == 7


# -- the preparers refuse what they do not support ---------------------------------------------------------------

def test_preparer_refuses_tanh_fused_into_add():
    qa = (0.05, 0)
    model = single_op("ADD", [([1, 4, 4, 8], I8, qa), ([1, 4, 4, 8], I8, qa)],
                      TFLiteBuilder.options("AddOptions", fusedActivationFunction=ACTS["TANH"]), qa)
    with pytest.raises(ModelError, match=r"operator 0 \(ADD v1\).*fused activation TANH.*expected one of"):
        NativeModel(model, variant="ref", threads=1)


def test_preparer_refuses_reshape_that_changes_quantization():
    model = single_op("RESHAPE", [([1, 4, 4, 8], I8, (0.05, 3))], None, (0.1, 3),
                      consts=[lambda b: b.const("shape", np.array([1, 128], dtype=np.int32))])
    with pytest.raises(ModelError, match=r"operator 0 \(RESHAPE.*quantized differently.*must be equal"):
        NativeModel(model, variant="ref", threads=1)


def test_preparer_refuses_pool_that_changes_quantization():
    opts = TFLiteBuilder.options("Pool2DOptions", padding=SAME, strideH=2, strideW=2, filterHeight=2, filterWidth=2)
    model = single_op("MAX_POOL_2D", [([1, 4, 4, 8], I8, (0.05, 3))], opts, (0.05, 4))
    with pytest.raises(ModelError, match=r"operator 0 \(MAX_POOL_2D.*must be equal"):
        NativeModel(model, variant="ref", threads=1)


def test_preparer_refuses_float_add():
    model = single_op("ADD", [([1, 4], F32, None), ([1, 4], F32, None)], TFLiteBuilder.options("AddOptions"),
                      out_type=F32)
    with pytest.raises(ModelError, match=r"operator 0 \(ADD.*FLOAT32.*INT8"):
        NativeModel(model, variant="ref", threads=1)


def test_preparer_refuses_add_whose_output_scale_tflite_rejects():
    # 2 * max(input scales) / (2^20 * output scale) must be < 1 (TFLite's QuantizeMultiplierSmallerThanOneExp)
    model = single_op("ADD", [([1, 4], I8, (1.0, 0)), ([1, 4], I8, (1.0, 0))], TFLiteBuilder.options("AddOptions"),
                      (1e-7, 0), fix_shapes=False, out_shape=[1, 4])
    with pytest.raises(ModelError, match=r"operator 0 \(ADD.*output scale"):
        NativeModel(model, variant="ref", threads=1)


# -- the C checks refuse inconsistent params -----------------------------------------------------------------------

def _engine(kind, items, params, tensors, arena=4096, constants=()):
    ext = variants.extension()
    return ext.Engine("ref", 1, arena, list(constants),
                      [(OP_KINDS.index(kind), items, struct.pack(f"<{len(params)}i", *params), tensors, 0)])


def _good_add():
    g = read_model(single_op("ADD", [([2, 8], I8, (0.05, 1)), ([1, 8], I8, (0.05, 1))],
                             TFLiteBuilder.options("AddOptions"), (0.1, 0)))
    from edgevision.native.plan import make_plan
    plan = make_plan(g)
    kind, items, params, tensors, scratch = plan.engine_ops[0]
    return items, list(struct.unpack(f"<{len(params) // 4}i", params)), tensors


def test_check_accepts_the_planned_params():
    items, params, tensors = _good_add()
    _engine("ADD", items, params, tensors)  # no error: the baseline the refusals below differ from


@pytest.mark.parametrize("breakage", ["short params", "long params", "small input", "small output", "stride",
                                      "items", "shift", "activation"])
def test_check_refuses_bad_add_params(breakage):
    items, params, tensors = _good_add()
    tensors = [list(t) for t in tensors]
    if breakage == "short params":
        params = params[:-1]
    elif breakage == "long params":
        params = params + [0]
    elif breakage == "small input":
        tensors[0][2] -= 1
    elif breakage == "small output":
        tensors[2][2] -= 1
    elif breakage == "stride":
        params[6 + 5] = 9  # input1's innermost stride beyond its 16 elements... with dims [2, 8]
    elif breakage == "items":
        items += 1
    elif breakage == "shift":
        params[19 + 9] = 5  # output shift of ADD must be <= 0
    elif breakage == "activation":
        params[19 + 10], params[19 + 11] = 10, -10
    with pytest.raises(ValueError, match=r"op 0 \(ADD\)"):
        _engine("ADD", items, params, [tuple(t) for t in tensors])


def test_check_refuses_bad_params_of_every_kind():
    a = 1024  # arena bytes; tensors below are (source, offset, nbytes) in the arena
    cases = [
        # pool reading a 1x4x4x2 input: output claims 3x3 but VALID 2x2/2 only fits 2x2 windows... last window
        # starts at row 4 (outside)
        ("AVERAGE_POOL_2D", 3, [1, 4, 4, 2, 3, 3, 2, 2, 2, 2, 0, 0, -128, 127], [(-1, 0, 32), (-1, 64, 18)],
         "outside"),
        ("MAX_POOL_2D", 2, [1, 4, 4, 2, 2, 2, 2, 2, 2, 2, 0, 0, -128, 127], [(-1, 0, 31), (-1, 64, 8)],
         "the input"),
        ("MEAN", 2, [1, 1, 1, 2, 3, 2] + [0, 0, 0, 0, 1, 0] + [4, 0, 0, 1 << 30, 0], [(-1, 0, 12), (-1, 64, 4)],
         "count"),
        ("PAD", 4, [1, 1, 1, 1, 2, 3] + [0, 0, 0, 0, 1, 1] + [1, 1, 1, 1, 4, 3] + [1, 0], [(-1, 0, 6), (-1, 64, 12)],
         "does not fit"),
        ("COPY", 1, [10, 64], [(-1, 0, 10), (-1, 64, 9)], "the output"),
        ("CONCATENATION", 4, [2, 2, 5, 0, 3, 3], [(-1, 0, 6), (-1, 64, 6), (-1, 128, 10)], "overflow"),
        ("CONCATENATION", 4, [2, 2, 5, 0, 2], [(-1, 0, 4), (-1, 64, 4), (-1, 128, 10)], "params"),
        ("QUANTIZE", 1, [0, 2, 0, 16, 64, 0x3F800000, 0, 0, 0, 0], [(-1, 0, 60), (-1, 64, 16)], "the input"),
        ("QUANTIZE", 1, [1, 0, 0, 16, 64, 0, 0, 0, 1 << 30, 25], [(-1, 0, 16), (-1, 64, 16)], "shift"),
        ("QUANTIZE", 1, [0, 2, 0, 16, 64, 0x7FC00000, 0, 0, 0, 0], [(-1, 0, 64), (-1, 64, 16)], "scale"),
        ("DEQUANTIZE", 1, [0, 16, 64, 0x3F800000, 0], [(-1, 0, 16), (-1, 64, 60)], "the output"),
        ("DEQUANTIZE", 1, [0, 16, 64, 0x3F800000, 0], [(-1, 0, 16), (-1, 66, 64)], "aligned"),
        ("DEQUANTIZE", 1, [0, 16, 64, 0x3F800000, 300], [(-1, 0, 16), (-1, 64, 64)], "zero point"),
    ]
    for kind, items, params, tensors, why in cases:
        with pytest.raises(ValueError, match=rf"op 0 \({kind}\).*{why}"):
            _engine(kind, items, params, tensors, arena=a)


# -- the C driver: every variant against the reference kernels, on params no real model has ----------------------

def _driver_build(tmp_path: Path) -> Path:
    """csrc/tests/test_elementwise_variants.c with the checks, reference kernels, tables and this machine's SIMD
    kernels, each group compiled with the flags setup.py gives it."""
    cs = ROOT / "edgevision" / "native" / "csrc"
    flags = ["-O2", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror",
             f"-I{cs}"]
    base = [cs / f for f in ("cpu.c", "variants.c", "elementwise_check.c", "activation_check.c", "misc_check.c",
                             "ref/elementwise_ref.c", "ref/activation_ref.c", "ref/misc_ref.c", "ref/table_ref.c",
                             "tests/test_elementwise_variants.c")]
    if platform.machine() in ("x86_64", "AMD64"):
        defs = ["-DEV_HAVE_X86_SSE41=1", "-DEV_HAVE_X86_AVX2=1", "-DEV_HAVE_X86_AVX512VNNI=1"]
        groups = [([], base), (["-msse4.1"], [cs / "x86/table_sse41.c", cs / "x86/elementwise_sse41.c"]),
                  (["-mavx2"], [cs / "x86/table_avx2.c", cs / "x86/elementwise_avx2.c"]),
                  # avx512vnni has no elementwise kernels of its own: its table falls back to avx2's
                  (["-mavx2", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni"],
                   [cs / "x86/table_avx512vnni.c"])]
    else:
        defs = ["-DEV_HAVE_NEON=1", "-DEV_HAVE_DOTPROD=1"]
        groups = [([], base + [cs / "neon/table_neon.c", cs / "neon/elementwise_neon.c"]),
                  (["-march=armv8.2-a+dotprod"], [cs / "dotprod/table_dotprod.c"])]
    objs = []
    for extra, files in groups:
        for f in files:
            o = tmp_path / f"{f.parent.name}_{f.stem}.o"
            subprocess.run(["gcc", *flags, *defs, *extra, "-c", str(f), "-o", str(o)], check=True)
            objs.append(str(o))
    exe = tmp_path / "test_elementwise_variants"
    subprocess.run(["gcc", *objs, "-o", str(exe), "-lm"], check=True)
    return exe


@pytest.mark.skipif(shutil.which("gcc") is None or platform.machine() not in ("x86_64", "aarch64"),
                    reason="needs gcc on x86_64 or aarch64")
@pytest.mark.skipif(bool(os.environ.get("EDGEVISION_NATIVE_TEST_INPUTS")),
                    reason="emulated (the arm64 harness): tools/test_native_arm_elementwise.sh runs this driver")
def test_c_driver_fuzzes_every_variant_against_the_reference(tmp_path):
    """Random ops of every kind the SIMD variants implement, over the whole range the checks accept (left shifts,
    huge multipliers, odd strides, windows over every edge, means of 4M elements), every variant vs ref on every
    split; the best variant must run its own kernels."""
    exe = _driver_build(tmp_path)
    best = VARIANTS[-1]
    args = [str(exe), "--cases", "1500", "--giant-means", "1", "--variant", best]
    if best in SIMD_IMPL:
        args += ["--expect", SIMD_IMPL[best]]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "0 failed" in r.stdout
