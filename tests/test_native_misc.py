"""RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, TANH, PRELU and TRANSPOSE on the native engine, bit-exact with TFLite's
reference kernels (ai-edge-litert, OpResolverType.BUILTIN_REF) on one-op models built here with varied
quantization parameters and inputs covering the whole int8 range; every case on every kernel variant this CPU
runs (ref, and e.g. sse41/avx2 or neon/dotprod) and on 1, 2 and 3 threads (tensors span several work items, so
the split must not change a byte). Where a SIMD variant has its own kernel (RELU and PRELU everywhere, TANH's
table lookup on aarch64 NEON) the test asserts that kernel ran; sizes around the vector widths exercise the tails.

Also: the C checks refuse inconsistent params and sizes (the engine is built directly with a broken op), the
preparers refuse what they (or TFLite) do not support with a ModelError naming the operator, and a small
PyTorch net converted by our converter, which emits every one of these operators, runs bit-exactly.
"""
from __future__ import annotations

import platform
import struct

import numpy as np
import pytest
from tflite_builder import TFLiteBuilder, fb, interpreter, pack

import native_oracle
from native_oracle import THREADS, VARIANTS, run_oracle
from edgevision.native import variants
from edgevision.native.engine import NativeModel
from edgevision.native.graph import ModelError
from edgevision.native.ops import OP_KINDS
from edgevision.native.ops import activation as actops
from edgevision.native.ops import misc

I8 = fb.TensorType.INT8
BIG = (2, 19, 23, 7)        # 6118 elements: two work items of misc.BLOCK, the second one partial
BIGGER = (1, 37, 41, 9)     # 13653 elements: four work items
SIMD_IMPL = {"sse41": "sse41", "avx2": "avx2", "avx512vnni": "avx2", "neon": "neon", "dotprod": "neon"}  # dotprod runs neon's here
ARMV7 = platform.machine().lower().startswith("arm") and struct.calcsize("P") == 4
TAIL_SIZES = (1, 15, 16, 17, 31, 32, 33, 63, 65, 129)


def own_kernel(variant: str, kind: str):
    """The kernel a SIMD variant has of its own for `kind` (csrc/x86/x86_elementwise.h, csrc/neon/
    elementwise_neon.c), or None: RELU and PRELU everywhere, TANH's table lookup only with aarch64 NEON."""
    impl = SIMD_IMPL.get(variant)
    if impl and (kind in ("relu", "prelu") or (kind == "tanh" and impl == "neon" and not ARMV7)):
        return f"ev_{kind}_{impl}"
    return None


# -- model helpers ----------------------------------------------------------------------------------------------

def one_op_model(opcode: str, shape, in_q, out_q, extra=(), ttype=I8, out_shape=None, version=None) -> bytes:
    """input (ttype, quantization in_q = (scale, zp) or None) -> opcode(input, *extra) -> output (out_q). `extra`
    are callables adding the other inputs (constants) to the builder. The output shape is TFLite's own unless
    `out_shape` gives it (for models TFLite refuses to prepare); `version` overrides the operator's version."""
    b = TFLiteBuilder()
    quant = (lambda q: None if q is None else b.quant([q[0]], [q[1]]))
    x = b.input("x", list(shape), ttype=ttype, quant=quant(in_q))
    y = b.op(opcode, [x] + [f(b) for f in extra], None, out_type=ttype, out_quant=quant(out_q))
    b.output(y)
    if out_shape is not None:
        b.tensors[y].shape = np.asarray(out_shape, np.int32)
    data = b.build(fix_shapes=out_shape is None)   # TFLite's shapes are now in b.tensors
    if version is None:
        return data
    m = b.model()
    m.operatorCodes[0].version = version
    return pack(m)


def alpha_const(values, shape, q):
    return lambda b: b.const("alpha", np.asarray(values, np.int8).reshape(shape), quant=b.quant([q[0]], [q[1]]))


def perm_const(perm, dtype=np.int32):
    return lambda b: b.const("perm", np.asarray(perm, dtype), dtype=dtype)


def prelu_model(shape, alpha_shape, in_q, alpha_q, out_q, alpha_values) -> bytes:
    return one_op_model("PRELU", shape, in_q, out_q, [alpha_const(alpha_values, alpha_shape, alpha_q)])


def transpose_model(shape, perm, ttype=I8, q=(0.05, 3)) -> bytes:
    return one_op_model("TRANSPOSE", shape, q, q, [perm_const(perm)], ttype=ttype)


def assert_native_matches(model: bytes, x: np.ndarray, kernel: str) -> np.ndarray:
    return native_oracle.assert_native_matches(model, x, kernel, own_kernel)


def every_value(rng, shape) -> np.ndarray:
    """All 256 int8 values (repeated to fill the shape), shuffled."""
    n = int(np.prod(shape))
    x = np.resize(np.arange(-128, 128, dtype=np.int8), n)
    rng.shuffle(x)
    return x.reshape(shape)


def full_range(rng, shape, dtype=np.int8) -> np.ndarray:
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, shape).astype(dtype)
    flat = x.reshape(-1)
    flat[0], flat[-1] = info.min, info.max
    return x


def seed(*key) -> int:
    return abs(hash(key)) % 2**32


# -- RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1 ----------------------------------------------------------------------

RELU_OPS = ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1")
RELU_QUANT = [
    # (input scale, zero point), (output scale, zero point)
    ((0.05, 0), (0.05, 0)),             # equal scales and zero points: a pure clamp
    ((0.05, 17), (0.05, 17)),
    ((0.1, -128), (0.1, -128)),
    ((0.05, 3), (0.03, -20)),           # output scale smaller: values grow
    ((0.02, -5), (0.07, 100)),          # output scale larger
    ((0.0235, 40), (6.0 / 255, -128)),  # a typical RELU6 output range [0, 6]
    ((0.5, -100), (0.004, 0)),          # large ratio (shift 7): most values saturate
    ((0.004, -30), (0.1, -128)),        # small ratio: everything collapses to a few values
    ((0.011804454, 9), (0.0054723644, -128)),   # what our converter wrote for a ReLU after an ADD
]


@pytest.mark.parametrize("in_q,out_q", RELU_QUANT)
@pytest.mark.parametrize("opcode", RELU_OPS)
def test_relu_family_matches_reference(opcode, in_q, out_q):
    rng = np.random.default_rng(seed(opcode, in_q, out_q))
    model = one_op_model(opcode, BIG, in_q, out_q)
    y = assert_native_matches(model, every_value(rng, BIG), "ev_relu_ref")
    assert y.min() < y.max()


@pytest.mark.parametrize("n", TAIL_SIZES)
def test_relu_tanh_prelu_vector_tails(n):
    rng = np.random.default_rng(seed("tails", n))
    x = every_value(rng, (n,))
    assert_native_matches(one_op_model("RELU6", (n,), (0.05, 3), (0.03, -20)), x, "ev_relu_ref")
    assert_native_matches(one_op_model("RELU", (n,), (0.5, -100), (0.004, 0)), x, "ev_relu_ref")
    assert_native_matches(one_op_model("TANH", (n,), (0.047, -17), (1.0 / 128, 0)), x, "ev_tanh_ref")
    for alpha_shape in ((n,), (1,)):   # alpha stepping with the input, and one alpha
        model = prelu_model((2, n), alpha_shape, (0.05, 7), (0.01, -3), (0.04, -10), full_range(rng, alpha_shape))
        assert_native_matches(model, every_value(rng, (2, n)), "ev_prelu_ref")


def test_simd_variants_fill_their_misc_slots():
    for v in VARIANTS:
        names = variants.extension().kernel_names(v)
        for kind in ("relu", "prelu", "tanh"):
            assert names[kind.upper()] == (own_kernel(v, kind) or f"ev_{kind}_ref"), (v, kind)


def test_relu_multiplier_is_a_float32_quotient():
    """ReluPrepare divides the two float scales in float32 before QuantizeMultiplier: for these scales the double
    quotient gives a multiplier that changes some outputs, and TFLite's bytes are the float32 ones."""
    in_q, out_q = (0.04363888129591942, 0), (0.028599493205547333, -60)
    m32 = actops.quantize_multiplier(float(np.float32(in_q[0]) / np.float32(out_q[0])))
    m64 = actops.quantize_multiplier(float(np.float32(in_q[0])) / float(np.float32(out_q[0])))
    assert m32 != m64
    model = one_op_model("RELU", (256,), in_q, out_q)
    x = np.arange(-128, 128, dtype=np.int8)
    want = assert_native_matches(model, x, "ev_relu_ref")
    step = NativeModel(model, variant="ref", threads=1).plan.steps[0]
    assert tuple(step.params[4:6]) == m32
    # the double quotient's multiplier gives other bytes at x = -58 and 58 (Python integers here)
    x64 = [mbqm(int(v), *m64) + out_q[1] for v in x]
    x32 = [mbqm(int(v), *m32) + out_q[1] for v in x]
    differ = [int(v) for v, a, b in zip(x, x32, x64) if a != b]
    assert differ == [-58, 58]
    assert int(want[58 + 128]) == x32[58 + 128] != x64[58 + 128]


def mbqm(x: int, mult: int, shift: int) -> int:
    """TFLite's double-rounding MultiplyByQuantizedMultiplier, on Python integers (no overflow here)."""
    a = x << max(shift, 0)
    ab = a * mult
    v = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))  # SaturatingRoundingDoublingHighMul: nudge, then
    q = abs(v) >> 31 if v >= 0 else -(abs(v) >> 31)     # divide by 2^31 truncating toward zero
    e = max(-shift, 0)
    mask = (1 << e) - 1
    return (q >> e) + (1 if (q & mask) > (mask >> 1) + (1 if q < 0 else 0) else 0)


# -- TANH -------------------------------------------------------------------------------------------------------

TANH_SCALES = [0.001, 0.004, 0.0123, 1.0 / 32, 0.05, 0.1, 0.37, 2.5]


@pytest.mark.parametrize("scale", TANH_SCALES)
def test_tanh_matches_reference_on_every_input_value(scale):
    rng = np.random.default_rng(seed("tanh", scale))
    for in_zp in (0, int(rng.integers(-128, 128)), -128, 127):
        model = one_op_model("TANH", (2, 8, 16), (scale, in_zp), (1.0 / 128, 0))
        x = every_value(rng, (2, 8, 16))
        assert_native_matches(model, x, "ev_tanh_ref")


@pytest.mark.parametrize("out_q", [(1.0 / 128, 0), (1.0 / 127, 0), (0.01, 20), (1.0 / 256, -128), (0.02, -50)])
def test_tanh_other_output_quantization_follows_tflite(out_q):
    """TFLite's reference int8 TANH takes any output quantization; the table includes it (and clamps)."""
    rng = np.random.default_rng(seed("tanh-out", out_q))
    model = one_op_model("TANH", BIGGER, (0.047, -17), out_q)
    assert_native_matches(model, every_value(rng, BIGGER), "ev_tanh_ref")


def _tanh_table_with(tanh, in_q, out_q) -> list[int]:
    """LUTPopulate<int8_t>'s float32 arithmetic around another tanh (a float32 -> float32 function)."""
    f32 = np.float32
    inv = f32(1) / f32(out_q[0])
    out = []
    for v in range(-128, 128):
        t = tanh(f32(in_q[0]) * f32(v - in_q[1]))
        q = int(f32(actops.round_half_away(float(t * inv))) + f32(out_q[1]))
        out.append(max(-128, min(127, q)))
    return out


@pytest.mark.parametrize("in_q,out_q,other", [
    # numpy's float32 tanh agrees with libm here, the correctly rounded tanh does not (at one entry)
    ((0.029273618012666702, 48), (0.004157626535743475, 0), "correctly rounded"),
    # the correctly rounded tanh agrees with libm here, numpy's float32 tanh does not
    ((0.1361072063446045, 75), (0.010256407782435417, 0), "numpy"),
])
def test_tanh_table_is_built_with_libm_tanhf(in_q, out_q, other):
    """TFLite's LUTPopulate calls std::tanh(float), the C library's tanhf; two other float32 tanh functions each
    move a table entry for one of these quantizations, and the engine's table is TFLite's in both."""
    assert misc._TANHF is not None
    alternative = {"correctly rounded": lambda v: np.float32(np.tanh(np.float64(v))),
                   "numpy": lambda v: np.tanh(np.float32(v))}[other]
    libm = _tanh_table_with(misc.tanhf, in_q, out_q)
    if platform.machine() not in ("x86_64", "AMD64") and libm == _tanh_table_with(alternative, in_q, out_q):
        pytest.skip(f"this platform's tanhf agrees with the {other} tanh on these quantizations (the cases were "
                    "found with x86-64 glibc): nothing to tell apart")
    assert libm != _tanh_table_with(alternative, in_q, out_q)
    model = one_op_model("TANH", (256,), in_q, out_q)
    x = np.arange(-128, 128, dtype=np.int8)
    want = assert_native_matches(model, x, "ev_tanh_ref")
    assert [int(want[v + 128]) for v in range(-128, 128)] == libm


# -- PRELU ------------------------------------------------------------------------------------------------------

PRELU_CASES = [
    # input shape, alpha shape
    (BIG, (7,)),                    # per-channel alpha [C]
    (BIG, (1, 1, 7)),               # [1, 1, C], as converters write it
    (BIG, (1, 1, 1, 7)),
    (BIG, (1,)),                    # one alpha
    (BIG, (1, 1, 1, 1)),
    (BIG, (23, 1)),                 # alpha along W, broadcast along C
    (BIG, (19, 1, 7)),              # [H, 1, C]: broadcast in the middle
    (BIG, (19, 23, 7)),             # alpha for every element of an image
    (BIG, BIG),                     # no broadcast at all
    ((3, 4, 5, 6, 7), (1, 5, 1, 7)),  # 5-D
    ((2, 3, 2, 3, 2, 3), (3, 1, 3, 1, 3)),   # 6-D, alternating broadcast dimensions
    ((5000,), (1,)),                # 1-D
]
PRELU_QUANT = [
    # input, alpha, output (scale, zero point)
    ((0.05, 7), (0.01, -3), (0.04, -10)),
    ((0.05, 0), (1.0 / 255, -128), (0.05, 0)),      # equal in/out quantization; alpha in [0, 1]
    ((0.02, -128), (0.002, 0), (0.03, 40)),
    ((0.2, 100), (0.02, 127), (0.01, -128)),        # alpha all negative-ish, large ratio
]


@pytest.mark.parametrize("in_q,alpha_q,out_q", PRELU_QUANT)
@pytest.mark.parametrize("shape,alpha_shape", PRELU_CASES)
def test_prelu_matches_reference(shape, alpha_shape, in_q, alpha_q, out_q):
    rng = np.random.default_rng(seed("prelu", shape, alpha_shape, in_q))
    alpha = full_range(rng, alpha_shape)
    model = prelu_model(shape, alpha_shape, in_q, alpha_q, out_q, alpha)
    assert_native_matches(model, every_value(rng, shape), "ev_prelu_ref")


def test_prelu_merges_broadcast_dimensions():
    """[N, H, W, C] with alpha [C] is planned as [N*H*W, C] with alpha strides [0, 1]."""
    model = prelu_model(BIG, (1, 1, 7), (0.05, 7), (0.01, -3), (0.04, -10), np.arange(7))
    p = NativeModel(model, variant="ref", threads=1).plan.steps[0].params
    assert list(p[:6]) == [1, 1, 1, 1, 2 * 19 * 23, 7] and list(p[6:12]) == [0, 0, 0, 0, 0, 1]
    assert misc.merge_broadcast((2, 3, 4, 5), (0, 20, 5, 1)) == ([2, 60], [0, 1])
    assert misc.merge_broadcast((2, 1, 3, 4), (12, 0, 0, 1)) == ([2, 3, 4], [12, 0, 1])


# -- TRANSPOSE --------------------------------------------------------------------------------------------------

TRANSPOSE_CASES = [
    ((37, 201), (1, 0)),                        # 2-D
    ((3, 5), (1, 0)),
    ((64, 96), (0, 1)),                         # identity: a copy
    ((11, 13, 17), (2, 0, 1)),                  # 3-D, every perm below
    ((11, 13, 17), (1, 2, 0)),
    ((11, 13, 17), (2, 1, 0)),
    ((11, 13, 17), (0, 2, 1)),
    ((11, 13, 17), (1, 0, 2)),
    ((11, 13, 17), (-1, 0, 1)),                 # negative entries count from the end
    ((1, 29, 31, 7), (0, 3, 1, 2)),             # NHWC -> NCHW
    ((1, 7, 29, 31), (0, 2, 3, 1)),             # NCHW -> NHWC
    ((2, 9, 15, 13), (0, 2, 1, 3)),             # swap H and W
    ((2, 9, 15, 13), (3, 1, 0, 2)),
    ((3, 1, 17, 19), (2, 1, 3, 0)),             # a size-1 dimension moved
    ((2, 3, 5, 7, 11), (4, 2, 0, 3, 1)),        # 5-D
    ((2, 3, 1, 4, 5, 6), (5, 0, 4, 1, 3, 2)),   # 6-D
    ((1, 1, 1), (2, 1, 0)),                     # one element
]


@pytest.mark.parametrize("shape,perm", TRANSPOSE_CASES)
def test_transpose_matches_reference(shape, perm):
    rng = np.random.default_rng(seed("transpose", shape, perm))
    model = transpose_model(shape, perm)
    want = assert_native_matches(model, full_range(rng, shape), "ev_transpose_ref")
    assert want.shape == tuple(shape[p] for p in perm)


@pytest.mark.parametrize("ttype,dtype", [(fb.TensorType.FLOAT32, np.float32), (fb.TensorType.INT16, np.int16),
                                         (fb.TensorType.INT32, np.int32), (fb.TensorType.UINT8, np.uint8)])
def test_transpose_other_element_types(ttype, dtype):
    rng = np.random.default_rng(seed("transpose-types", ttype))
    shape, perm = (2, 17, 19, 5), (0, 3, 1, 2)
    q = (0.05, 128) if dtype == np.uint8 else ((0.05, 0) if dtype == np.int16 else None)
    model = transpose_model(shape, perm, ttype=ttype, q=q)
    if dtype == np.float32:
        x = rng.standard_normal(shape).astype(np.float32)
    else:
        x = full_range(rng, shape, dtype)
    assert_native_matches(model, x, "ev_transpose_ref")


def test_transpose_simplification_is_the_same_permutation():
    """simplify_transpose on random shapes (with 1s) and perms gives the same element order as numpy."""
    rng = np.random.default_rng(3)
    for _ in range(300):
        rank = int(rng.integers(1, 7))
        shape = tuple(int(d) for d in rng.choice([1, 1, 2, 3, 4], rank))
        perm = tuple(int(p) for p in rng.permutation(rank))
        x = np.arange(int(np.prod(shape))).reshape(shape)
        new_shape, new_perm = misc.simplify_transpose(shape, perm)
        assert sorted(new_perm) == list(range(len(new_shape)))
        assert all(p != q + 1 for p, q in zip(new_perm[1:], new_perm[:-1]))     # nothing left to merge
        got = np.transpose(x.reshape(new_shape), new_perm).reshape(-1) if new_shape else x.reshape(-1)
        np.testing.assert_array_equal(got, np.transpose(x, perm).reshape(-1))
    assert misc.simplify_transpose((1, 5, 7, 3), (0, 3, 1, 2)) == ([35, 3], [1, 0])
    assert misc.simplify_transpose((4, 5), (0, 1)) == ([20], [0])


# -- every kernel variant this CPU runs ----------------------------------------------------------------------

def _variant_cases():
    rng = np.random.default_rng(11)
    yield "RELU6", one_op_model("RELU6", BIGGER, (0.05, 3), (0.03, -20)), every_value(rng, BIGGER)
    yield "TANH", one_op_model("TANH", BIGGER, (0.047, -17), (1.0 / 128, 0)), every_value(rng, BIGGER)
    yield "PRELU", prelu_model(BIGGER, (9,), (0.05, 7), (0.01, -3), (0.04, -10), full_range(rng, (9,))), \
        every_value(rng, BIGGER)
    yield "TRANSPOSE", transpose_model(BIGGER, (0, 3, 1, 2)), full_range(rng, BIGGER)


def _supported_variants():
    from edgevision.native import variants
    return variants.supported() if variants.compiled() else ()


@pytest.mark.parametrize("variant", _supported_variants())
def test_every_variant_gives_the_reference_bytes(variant):
    """Whatever implementation a variant has for these kinds (its own, or ref's filling its empty slot), the
    bytes are TFLite's, on 1 and 3 threads."""
    for name, model, x in _variant_cases():
        want = run_oracle(model, x)
        for t in (1, 3):
            m = NativeModel(model, variant=variant, threads=t)
            assert m.kernels[0].startswith(f"ev_{name.lower().replace('relu6', 'relu')}_")
            np.testing.assert_array_equal(m.run(x)[0], want, err_msg=f"{name} on {variant}, threads={t}")


# -- a model our converter makes -------------------------------------------------------------------------------

def converted_net(path):
    torch = pytest.importorskip("torch")
    from torch import nn
    import torch.nn.functional as F
    from converters.convert import convert

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1)
            self.pr = nn.PReLU(8)
            self.c3 = nn.Conv2d(8, 6, 1)
            self.pr1 = nn.PReLU()

        def forward(self, x):
            x = self.c1(x)
            s = x + self.c2(x)
            y = F.relu(s)                        # standalone RELU: s also feeds the residual, so no fusion
            y = self.pr(y) + s                   # PRELU, one alpha per channel
            t = torch.tanh(self.c3(y))           # TANH
            u = (t * 4).permute(0, 3, 1, 2)      # TRANSPOSE
            u = F.relu6(u)                       # standalone RELU6 (after a TRANSPOSE, nothing to fuse into)
            u = self.pr1(u - 1.5)                # PRELU, one alpha
            return F.hardtanh(u.permute(0, 2, 3, 1))   # TRANSPOSE back, then RELU_N1_TO_1

    torch.manual_seed(0)
    with torch.no_grad():
        net = Net().eval()
        net.pr.weight.copy_(torch.linspace(-0.5, 0.9, 8))
        net.pr1.weight.fill_(0.3)
    rng = np.random.default_rng(0)
    hw = (11, 9)
    calib = rng.integers(0, 256, (16, *hw, 3), dtype=np.uint8)
    convert(net, calib, path, input_size=hw, mean=(127.5,), std=(127.5,), progress=False, force=True)
    return path.read_bytes()


def test_converted_net_with_every_op_is_bit_exact(tmp_path):
    data = converted_net(tmp_path / "misc_net.tflite")
    probe = NativeModel(data, variant="ref", threads=1)
    opcodes = [op.opcode for op in probe.graph.operators]
    for code in ("RELU", "RELU6", "RELU_N1_TO_1", "TANH", "PRELU", "TRANSPOSE"):
        assert code in opcodes, f"the converter did not emit {code}: {opcodes}"
    assert opcodes.count("TRANSPOSE") == 2 and opcodes.count("PRELU") == 2
    rng = np.random.default_rng(1)
    shape = probe.input(0).shape
    xs = [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(4)] + [np.full(shape, -128, np.int8),
                                                                            np.full(shape, 127, np.int8)]
    wants = [run_oracle(data, x) for x in xs]
    for t in THREADS:
        m = NativeModel(data, variant="ref", threads=t)
        for i, (x, want) in enumerate(zip(xs, wants)):
            np.testing.assert_array_equal(m.run(x)[0], want, err_msg=f"threads={t}, input {i}")


# -- the C checks: the engine refuses malformed ops -------------------------------------------------------------

def build_engine(kind: str, items: int, params, tensor_sizes, constants=(), arena=1 << 16):
    """Engine with one op whose tensors are arena ranges of the given sizes, or ("const", k) for constant k."""
    from edgevision.native import variants
    ext = variants.extension()
    tensors, offset = [], 0
    for s in tensor_sizes:
        if isinstance(s, tuple):
            tensors.append((s[1], 0, len(constants[s[1]])))
        else:
            tensors.append((-1, offset, s))
            offset += s
    op = (OP_KINDS.index(kind), items, np.asarray(params, "<i4").tobytes(), tensors, 0)
    return ext.Engine("ref", 1, max(arena, offset), list(constants), [op])


RELU_OK = [100, 64, 3, -20, 1 << 30, 1, -20, 127]
TANH_OK = [100, 64]
PRELU_OK = [1, 1, 1, 2, 5, 3] + [0, 0, 0, 0, 0, 1] + [16, 7, -3, -10, 1 << 30, 0, 1 << 30, -5]
TRANSPOSE_OK = [1, 1, 1, 2, 5, 3] + [0, 1, 2, 5, 3, 4] + [1, 7]


def test_checks_accept_well_formed_ops():
    """The baseline each refusal below differs from by one thing; and the engine runs it."""
    build_engine("RELU", 2, RELU_OK, [100, 100])
    build_engine("TANH", 2, TANH_OK, [100, ("const", 0), 100], constants=[bytes(256)])
    build_engine("PRELU", 2, PRELU_OK, [30, 3, 30])
    build_engine("TRANSPOSE", 5, TRANSPOSE_OK, [30, 30])
    build_engine("TRANSPOSE", 5, TRANSPOSE_OK[:12] + [4, 7], [120, 120])
    build_engine("RELU", 0, changed(RELU_OK, p0=0), [0, 0])                  # no elements, no items


def changed(base, **at):
    out = list(base)
    for k, v in at.items():
        out[int(k[1:])] = v
    return out


@pytest.mark.parametrize("kind,items,params,sizes,constants,message", [
    ("RELU", 2, RELU_OK[:7], [100, 100], (), "expected 8 int32 params, got 7"),
    ("RELU", 2, RELU_OK, [100], (), "expected 2 tensors, got 1"),
    ("RELU", 2, RELU_OK, [100, 99], (), "tensor 1 (output) has 99 bytes, needs 100"),
    ("RELU", 3, RELU_OK, [100, 100], (), "3 items for 100 elements in blocks of 64, expected 2"),
    ("RELU", 2, changed(RELU_OK, p1=0), [100, 100], (), "block size 0"),
    ("RELU", 2, changed(RELU_OK, p2=128), [100, 100], (), "input zero point 128 outside int8"),
    ("RELU", 2, changed(RELU_OK, p4=-1), [100, 100], (), "output multiplier -1 is negative"),
    ("RELU", 2, changed(RELU_OK, p5=31), [100, 100], (), "output shift 31 outside [-31, 30]"),
    ("RELU", 2, changed(RELU_OK, p5=24), [100, 100], (), "output shift 24 overflows int32"),
    ("RELU", 2, changed(RELU_OK, p6=10, p7=5), [100, 100], (), "activation range [10, 5]"),
    ("RELU", 2, changed(RELU_OK, p7=128), [100, 100], (), "activation range [-20, 128]"),
    ("TANH", 2, TANH_OK, [100, ("const", 0), 100], [bytes(255)], "lookup table has 255 bytes, expected 256"),
    ("TANH", 2, TANH_OK, [100, ("const", 0), 99], [bytes(256)], "tensor 2 (output) has 99 bytes, needs 100"),
    ("TANH", 1, TANH_OK, [100, ("const", 0), 100], [bytes(256)], "1 items for 100 elements"),
    ("TANH", 2, TANH_OK + [0], [100, ("const", 0), 100], [bytes(256)], "expected 2 int32 params, got 3"),
    ("PRELU", 2, PRELU_OK, [30, 2, 30], (), "tensor 1 (alpha) has 2 bytes, needs 3"),
    ("PRELU", 2, changed(PRELU_OK, p10=1), [30, 3, 30], (), "tensor 1 (alpha) has 3 bytes, needs 7"),
    ("PRELU", 2, changed(PRELU_OK, p11=-1), [30, 3, 30], (), "alpha stride 5 is -1, must be >= 0"),
    ("PRELU", 2, changed(PRELU_OK, p3=0), [30, 3, 30], (), "the input dimension 3 is 0, must be >= 1"),
    ("PRELU", 2, PRELU_OK, [29, 3, 30], (), "tensor 0 (input) has 29 bytes, needs 30"),
    ("PRELU", 1, PRELU_OK, [30, 3, 30], (), "1 items for 30 elements in blocks of 16, expected 2"),
    ("PRELU", 2, changed(PRELU_OK, p14=-129), [30, 3, 30], (), "alpha zero point -129 outside int8"),
    ("PRELU", 2, changed(PRELU_OK, p19=16), [30, 3, 30], (), "alpha shift 16 overflows int32"),
    ("PRELU", 2, changed(PRELU_OK, p17=24), [30, 3, 30], (), "identity shift 24 overflows int32"),
    ("PRELU", 2, PRELU_OK, [30, 30], (), "expected 3 tensors, got 2"),
    ("TRANSPOSE", 5, changed(TRANSPOSE_OK, p11=3), [30, 30], (), "perm names dimension 3 twice"),
    ("TRANSPOSE", 5, changed(TRANSPOSE_OK, p6=6), [30, 30], (), "perm[0] is 6, must be 0..5"),
    ("TRANSPOSE", 5, changed(TRANSPOSE_OK, p9=-1), [30, 30], (), "perm[3] is -1, must be 0..5"),
    ("TRANSPOSE", 5, changed(TRANSPOSE_OK, p12=3), [90, 90], (), "element size 3, must be 1, 2 or 4"),
    ("TRANSPOSE", 5, TRANSPOSE_OK, [30, 29], (), "tensor 1 (output) has 29 bytes, needs 30"),
    ("TRANSPOSE", 5, changed(TRANSPOSE_OK, p12=2), [30, 60], (), "tensor 0 (input) has 30 bytes, needs 60"),
    ("TRANSPOSE", 4, TRANSPOSE_OK, [30, 30], (), "4 items for 30 elements in blocks of 7, expected 5"),
    ("TRANSPOSE", 5, changed(TRANSPOSE_OK, p4=-5), [30, 30], (), "dimension 4 is -5, must be >= 1"),
    ("TRANSPOSE", 5, TRANSPOSE_OK[:13], [30, 30], (), "expected 14 int32 params, got 13"),
])
def test_checks_refuse_malformed_ops(kind, items, params, sizes, constants, message):
    with pytest.raises(ValueError, match=kind) as e:
        build_engine(kind, items, params, sizes, constants)
    assert message in str(e.value)


def test_checked_ops_run_and_split_like_one_thread():
    """A direct engine with small blocks: 1, 2 and 3 threads give the same bytes (TRANSPOSE_OK moves 30 elements
    in blocks of 7: input [2, 5, 3], perm (2, 0, 1) on those three dimensions)."""
    from edgevision.native import variants
    ext = variants.extension()
    x = np.arange(30, dtype=np.int8)
    outs = []
    for t in THREADS:
        op = (OP_KINDS.index("TRANSPOSE"), 5, np.asarray(TRANSPOSE_OK, "<i4").tobytes(), [(-1, 0, 30), (-1, 64, 30)], 0)
        e = ext.Engine("ref", t, 128, [], [op])
        arena = np.frombuffer(e, dtype=np.int8)
        arena[:30] = x
        e.invoke()
        outs.append(arena[64:94].copy())
    np.testing.assert_array_equal(outs[0], np.transpose(x.reshape(2, 5, 3), (2, 0, 1)).reshape(-1))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


# -- the preparers refuse what TFLite (or the engine) does not support ------------------------------------------

def refused(model: bytes) -> str:
    with pytest.raises(ModelError) as e:
        NativeModel(model, variant="ref", threads=1)
    return str(e.value)


def tflite_refuses(model: bytes) -> str:
    with pytest.raises(RuntimeError) as e:
        interpreter(model).allocate_tensors()
    return str(e.value)


def test_relu_refuses_float_and_unknown_versions():
    b = TFLiteBuilder()
    x = b.input("x", [2, 3])
    b.output(b.op("RELU6", [x]))
    msg = refused(b.build())
    assert "operator 0 (RELU6" in msg and "int8 tensors only" in msg and "FLOAT32" in msg
    msg = refused(one_op_model("RELU", (2, 3), (0.1, 0), (0.1, 0), version=4))
    assert "operator 0 (RELU v4)" in msg and "up to version 3" in msg


def test_relu_refuses_per_channel_and_overflowing_scales():
    b = TFLiteBuilder()
    x = b.input("x", [1, 2, 2, 3], ttype=I8, quant=b.quant([0.1, 0.2, 0.3], [0, 0, 0], axis=3))
    b.output(b.op("RELU", [x], out_type=I8, out_quant=b.quant([0.1], [0])))
    msg = refused(_with_shape(b, (1, 2, 2, 3)))
    assert "operator 0 (RELU" in msg and "one scale and zero point" in msg
    msg = refused(one_op_model("RELU", (4,), (1.0, 0), (1e-7, 0)))
    assert "operator 0 (RELU" in msg and "too large" in msg


def _with_shape(b: TFLiteBuilder, shape) -> bytes:
    b.tensors[b.outputs[0]].shape = np.asarray(shape, np.int32)
    return b.build(fix_shapes=False)


def test_tanh_refuses_int16():
    q = (1.0 / 4096, 0)
    model = one_op_model("TANH", (4, 4), q, (1.0 / 32768, 0), ttype=fb.TensorType.INT16)
    msg = refused(model)
    assert "operator 0 (TANH" in msg and "int8 tensors only" in msg and "INT16" in msg


def test_prelu_refuses_alpha_that_does_not_broadcast():
    model = one_op_model("PRELU", (1, 4, 4, 3), (0.1, 0), (0.1, 0),
                         [alpha_const(np.zeros(4), (4,), (0.01, 0))], out_shape=(1, 4, 4, 3))
    tflite_refuses(model)
    msg = refused(model)
    assert "operator 0 (PRELU" in msg and "does not broadcast" in msg


def test_prelu_refuses_float_alpha():
    b = TFLiteBuilder()
    x = b.input("x", [1, 4, 4, 3], ttype=I8, quant=b.quant([0.1], [0]))
    a = b.const("alpha", np.full(3, 0.25, np.float32))
    b.output(b.op("PRELU", [x, a], out_type=I8, out_quant=b.quant([0.1], [0])))
    msg = refused(_with_shape(b, (1, 4, 4, 3)))
    assert "operator 0 (PRELU" in msg and "alpha" in msg and "FLOAT32" in msg


def test_transpose_refuses_bad_permutations():
    # a repeated axis: TFLite accepts it and reads a diagonal; the engine refuses
    msg = refused(one_op_model("TRANSPOSE", (3, 3), (0.1, 0), (0.1, 0), [perm_const([0, 0])], out_shape=(3, 3)))
    assert "operator 0 (TRANSPOSE" in msg and "not a permutation" in msg
    model = one_op_model("TRANSPOSE", (3, 4), (0.1, 0), (0.1, 0), [perm_const([2, 0])], out_shape=(4, 3))
    assert "out of bounds" in tflite_refuses(model)
    assert "outside [-2, 2)" in refused(model)
    model = one_op_model("TRANSPOSE", (3, 4), (0.1, 0), (0.1, 0), [perm_const([1, 0], np.int64)], out_shape=(4, 3))
    assert "must be INT32[2]" in refused(model)


def test_transpose_refuses_a_variable_permutation_and_requantisation():
    b = TFLiteBuilder()
    x = b.input("x", [3, 4], ttype=I8, quant=b.quant([0.1], [0]))
    p = b.input("perm", [2], ttype=fb.TensorType.INT32)
    b.output(b.op("TRANSPOSE", [x, p], out_type=I8, out_quant=b.quant([0.1], [0])))
    msg = refused(_with_shape(b, (4, 3)))
    assert "operator 0 (TRANSPOSE" in msg and "must be a constant" in msg
    model = one_op_model("TRANSPOSE", (3, 4), (0.1, 0), (0.2, 0), [perm_const([1, 0])])
    msg = refused(model)
    assert "operator 0 (TRANSPOSE" in msg and "quantized differently" in msg
