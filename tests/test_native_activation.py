"""SOFTMAX, LOGISTIC, HARD_SWISH, RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR on the native engine, bit-exact with
TFLite's reference kernels (ai-edge-litert, OpResolverType.BUILTIN_REF) on one-op int8 models built here with
varied quantization parameters and inputs covering the whole int8 range; every case on every kernel variant this
CPU runs (ref, and e.g. sse41/avx2 or neon/dotprod) and on 1, 2 and 3 threads (the work split must not change a
byte). Where a SIMD variant has its own kernel (HARD_SWISH everywhere; LOGISTIC's table lookup on aarch64 NEON),
the test asserts that kernel ran; sizes around the vector widths exercise the SIMD tails.

Also: the C checks refuse inconsistent params, sizes and tables (the engine is built directly with a broken
op), and the preparers refuse what they (or TFLite) do not support with a ModelError naming the operator.
"""
from __future__ import annotations

import math
import platform
import struct

import numpy as np
import pytest
from tflite_builder import TFLiteBuilder, fb, interpreter

import native_oracle
from native_oracle import VARIANTS
from edgevision.native import variants
from edgevision.native.engine import NativeModel
from edgevision.native.graph import ModelError
from edgevision.native.ops import OP_KINDS
from edgevision.native.ops import activation as actops

I8 = fb.TensorType.INT8
U8 = fb.TensorType.UINT8
SIMD_IMPL = {"sse41": "sse41", "avx2": "avx2", "avx512vnni": "avx2", "neon": "neon", "dotprod": "neon"}  # dotprod runs neon's here
ARMV7 = platform.machine().lower().startswith("arm") and struct.calcsize("P") == 4
TAIL_SIZES = (1, 15, 16, 17, 31, 32, 33, 63, 65, 129)


def own_kernel(variant: str, kind: str):
    """The kernel a SIMD variant has of its own for `kind` (csrc/x86/x86_elementwise.h, csrc/neon/
    elementwise_neon.c), or None: HARD_SWISH everywhere, LOGISTIC's table lookup only with aarch64 NEON."""
    impl = SIMD_IMPL.get(variant)
    if impl and (kind == "hard_swish" or (kind == "logistic" and impl == "neon" and not ARMV7)):
        return f"ev_{kind}_{impl}"
    return None


# -- model helpers ----------------------------------------------------------------------------------------------

def one_op_model(opcode: str, shape, in_q, out_q, options=None, size=None, ttype=I8, out_shape=None) -> bytes:
    """A model of one operator: input (ttype, quantization in_q = (scale, zp)) -> opcode -> output (out_q).
    `size` adds the constant INT32[2] size input of the resize operators. The output shape is TFLite's own,
    unless `out_shape` gives it (for models TFLite refuses to prepare, or would abort on)."""
    b = TFLiteBuilder()
    x = b.input("x", list(shape), ttype=ttype, quant=b.quant([in_q[0]], [in_q[1]]))
    inputs = [x]
    if size is not None:
        inputs.append(b.const("size", np.asarray(size, np.int32)))
    y = b.op(opcode, inputs, options, out_type=ttype, out_quant=b.quant([out_q[0]], [out_q[1]]))
    b.output(y)
    if out_shape is not None:
        b.tensors[y].shape = np.asarray(out_shape, np.int32)
        return b.build(fix_shapes=False)
    return b.build()


def assert_native_matches(model: bytes, x: np.ndarray, kernel: str) -> np.ndarray:
    return native_oracle.assert_native_matches(model, x, kernel, own_kernel)


def full_range(rng, shape, dtype=np.int8) -> np.ndarray:
    """Random values over the whole type range, with its two extremes present."""
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, shape).astype(dtype)
    flat = x.reshape(-1)
    flat[0], flat[-1] = info.min, info.max
    return x


SOFTMAX_OUT = (1.0 / 256, -128)


# -- SOFTMAX ----------------------------------------------------------------------------------------------------

def softmax_sum_is_safe(x: np.ndarray, scale: float, beta: float) -> bool:
    """TFLite's reference int8 softmax aborts (a CHECK on the reciprocal's shift) when a row's sum of
    exp(beta * scale * (x - max)) reaches 512; inputs given to the oracle must stay below that."""
    d = (x.astype(np.float64) - x.max(axis=-1, keepdims=True)) * scale * beta
    return bool(np.exp(d).sum(axis=-1).max() < 400)


SOFTMAX_CASES = [
    # shape, input scale, beta
    ((1, 1), 0.1, 1.0),
    ((3, 1), 0.02, 0.5),
    ((4, 10), 0.05, 1.0),
    ((4, 10), 0.05, 0.5),
    ((6, 10), 0.0003, 1.0),        # almost flat rows
    ((5, 10), 0.25, 1.0),          # diff_min cuts most of each row
    ((5, 10), 60.0, 1.0),          # multiplier capped at 2^31 - 1: only the maxima survive
    ((2, 1000), 0.06, 1.0),
    ((3, 1000), 0.1, 0.5),
    ((1, 1000), 0.02, 1.0),
    ((2, 3, 4, 10), 0.08, 1.0),    # 4-D: softmax over the last dimension
    ((1, 5, 5, 7), 0.04, 0.5),
    ((2, 2, 3, 1000), 0.12, 1.0),
]


@pytest.mark.parametrize("shape,scale,beta", SOFTMAX_CASES)
def test_softmax_matches_reference(shape, scale, beta):
    rng = np.random.default_rng(abs(hash((shape, scale, beta))) % 2**32)
    zp = int(rng.integers(-128, 128))
    model = one_op_model("SOFTMAX", shape, (scale, zp), SOFTMAX_OUT, TFLiteBuilder.options("SoftmaxOptions", beta=beta))
    x = full_range(rng, shape)
    if shape[-1] >= 10:
        rows = x.reshape(-1, shape[-1])
        rows[0, :] = -128                     # ties: up to 200 equal maxima (TFLite aborts at 512, see above)
        rows[0, :200] = 0
        rows[-1, :3] = 127                    # several maxima
    assert softmax_sum_is_safe(x, scale, beta)
    y = assert_native_matches(model, x, "ev_softmax_ref")
    assert y.min() >= -128 and y.max() > -128


def test_softmax_rows_are_independent_of_the_split():
    """Many rows of different content: every split across threads gives the same bytes as TFLite."""
    rng = np.random.default_rng(7)
    shape = (97, 33)
    model = one_op_model("SOFTMAX", shape, (0.07, 3), SOFTMAX_OUT, TFLiteBuilder.options("SoftmaxOptions", beta=1.0))
    x = full_range(rng, shape)
    x[::5] //= 16
    assert_native_matches(model, x, "ev_softmax_ref")


def test_softmax_accepts_output_scale_within_tflites_tolerance():
    rng = np.random.default_rng(8)
    model = one_op_model("SOFTMAX", (3, 10), (0.05, 0), (1.0005 / 256, -128),
                         TFLiteBuilder.options("SoftmaxOptions", beta=1.0))
    assert_native_matches(model, full_range(rng, (3, 10)), "ev_softmax_ref")


# -- LOGISTIC ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [0.002, 0.01, 0.03125, 0.0625, 0.1, 0.37, 1.5])
def test_logistic_matches_reference_on_every_input_value(scale):
    rng = np.random.default_rng(int(scale * 1e6))
    zp = int(rng.integers(-128, 128))
    model = one_op_model("LOGISTIC", (2, 8, 16), (scale, zp), (1.0 / 256, -128))
    x = np.arange(-128, 128, dtype=np.int8).reshape(2, 8, 16)   # all 256 values: the whole table
    rng.shuffle(x.reshape(-1))
    assert_native_matches(model, x, "ev_logistic_ref")


def test_logistic_large_tensor_split_in_blocks():
    rng = np.random.default_rng(11)
    shape = (1, 37, 41, 9)                  # 13653 elements: several work items, the last one partial
    assert np.prod(shape) > 3 * actops.BLOCK
    model = one_op_model("LOGISTIC", shape, (0.047, -17), (1.0 / 256, -128))
    assert_native_matches(model, full_range(rng, shape), "ev_logistic_ref")


def test_logistic_other_output_zero_point_follows_tflite():
    """TFLite's reference LOGISTIC checks only the output scale; its table includes any output zero point."""
    model = one_op_model("LOGISTIC", (256,), (0.05, 10), (1.0 / 256, 0))
    assert_native_matches(model, np.arange(-128, 128, dtype=np.int8), "ev_logistic_ref")


@pytest.mark.parametrize("n", TAIL_SIZES)
def test_logistic_vector_tails(n):
    rng = np.random.default_rng(n)
    model = one_op_model("LOGISTIC", (n,), (0.06, 3), (1.0 / 256, -128))
    assert_native_matches(model, full_range(rng, (n,)) if n > 1 else np.array([-77], np.int8), "ev_logistic_ref")


# -- HARD_SWISH -------------------------------------------------------------------------------------------------

HARD_SWISH_CASES = [
    # input scale, output scale
    (0.02, 0.015),
    (0.1, 0.05),
    (0.05, 0.1),
    (6.0 / 255, 6.0 / 255),
    (0.003, 0.002),
    (0.5, 0.3),
    (2.0, 1.1),                 # reluish multiplier > 1: the saturating left-shift path
    (0.001, 1.0),               # output shift of 17: gemmlowp's int16 RoundingDivideByPOT quirk for >= 16
    (0.0004, 0.5),
    (10.0, 0.1),
]


@pytest.mark.parametrize("in_scale,out_scale", HARD_SWISH_CASES)
def test_hard_swish_matches_reference(in_scale, out_scale):
    rng = np.random.default_rng(int(in_scale * 1e5 + out_scale * 1e3))
    for in_zp, out_zp in ((0, 0), (int(rng.integers(-128, 128)), int(rng.integers(-128, 128))), (-128, 127),
                          (127, -128)):
        model = one_op_model("HARD_SWISH", (256,), (in_scale, in_zp), (out_scale, out_zp))
        assert_native_matches(model, np.arange(-128, 128, dtype=np.int8), "ev_hard_swish_ref")


def test_hard_swish_large_tensor_split_in_blocks():
    rng = np.random.default_rng(12)
    shape = (2, 23, 29, 11)
    model = one_op_model("HARD_SWISH", shape, (0.04, 5), (0.03, -60))
    assert_native_matches(model, full_range(rng, shape), "ev_hard_swish_ref")


@pytest.mark.parametrize("n", TAIL_SIZES)
def test_hard_swish_vector_tails(n):
    rng = np.random.default_rng(100 + n)
    for in_q, out_q in (((0.04, 5), (0.03, -60)), ((2.0, -7), (1.1, 3)), ((0.001, 0), (1.0, 0))):
        model = one_op_model("HARD_SWISH", (n,), in_q, out_q)
        assert_native_matches(model, full_range(rng, (n,)) if n > 1 else np.array([101], np.int8),
                              "ev_hard_swish_ref")


def test_simd_variants_fill_their_activation_slots():
    for v in VARIANTS:
        names = variants.extension().kernel_names(v)
        for kind in ("hard_swish", "logistic"):
            assert names[kind.upper()] == (own_kernel(v, kind) or f"ev_{kind}_ref"), (v, kind)


# -- RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR ------------------------------------------------------------------

RESIZE_SIZES = [
    # (in_h, in_w), (out_h, out_w)
    ((4, 4), (8, 8)),           # up x2
    ((5, 7), (9, 4)),           # up rows, down columns, odd sizes
    ((8, 8), (3, 5)),           # down
    ((7, 3), (7, 3)),           # identity
    ((1, 1), (3, 3)),           # from a single pixel
    ((3, 5), (10, 11)),
    ((16, 16), (5, 5)),
    ((6, 9), (1, 1)),           # to a single pixel
    ((11, 13), (29, 31)),
]
BILINEAR_FLAGS = [(False, False), (True, False), (False, True)]
NEAREST_FLAGS = BILINEAR_FLAGS + [(True, True)]


def resize_model(opcode, in_hw, out_hw, align, half, batch=2, depth=3, ttype=I8, q=((0.05, 4), (0.05, 4))):
    kind = "ResizeBilinearOptions" if opcode == "RESIZE_BILINEAR" else "ResizeNearestNeighborOptions"
    options = TFLiteBuilder.options(kind, alignCorners=align, halfPixelCenters=half)
    return one_op_model(opcode, (batch, *in_hw, depth), q[0], q[1], options, size=out_hw, ttype=ttype)


@pytest.mark.parametrize("align,half", BILINEAR_FLAGS)
@pytest.mark.parametrize("in_hw,out_hw", RESIZE_SIZES)
def test_resize_bilinear_matches_reference(in_hw, out_hw, align, half):
    rng = np.random.default_rng(abs(hash((in_hw, out_hw, align, half))) % 2**32)
    model = resize_model("RESIZE_BILINEAR", in_hw, out_hw, align, half)
    assert_native_matches(model, full_range(rng, (2, *in_hw, 3)), "ev_resize_bilinear_ref")


@pytest.mark.parametrize("align,half", NEAREST_FLAGS)
@pytest.mark.parametrize("in_hw,out_hw", RESIZE_SIZES)
def test_resize_nearest_neighbor_matches_reference(in_hw, out_hw, align, half):
    rng = np.random.default_rng(abs(hash((in_hw, out_hw, align, half, 1))) % 2**32)
    model = resize_model("RESIZE_NEAREST_NEIGHBOR", in_hw, out_hw, align, half)
    assert_native_matches(model, full_range(rng, (2, *in_hw, 3)), "ev_resize_nearest_neighbor_ref")


def test_resize_bilinear_extreme_values_and_deep_channels():
    """Constant regions of -128 and 127 and a sharp edge: interpolation stays in range and rounds like TFLite."""
    rng = np.random.default_rng(13)
    x = full_range(rng, (1, 6, 5, 17))
    x[:, :3] = -128
    x[:, 3:, :2] = 127
    for align, half in BILINEAR_FLAGS:
        model = resize_model("RESIZE_BILINEAR", (6, 5), (13, 8), align, half, batch=1, depth=17)
        assert_native_matches(model, x, "ev_resize_bilinear_ref")


def test_resize_bilinear_keeps_values_when_quantization_differs():
    """TFLite interpolates the stored values and ignores the output quantization; so does the engine."""
    rng = np.random.default_rng(14)
    model = resize_model("RESIZE_BILINEAR", (4, 5), (7, 9), False, True, q=((0.05, 4), (0.2, -10)))
    assert_native_matches(model, full_range(rng, (2, 4, 5, 3)), "ev_resize_bilinear_ref")


def test_resize_nearest_neighbor_uint8():
    rng = np.random.default_rng(15)
    for align, half in NEAREST_FLAGS:
        model = resize_model("RESIZE_NEAREST_NEIGHBOR", (5, 6), (12, 4), align, half, ttype=U8,
                             q=((0.05, 128), (0.05, 128)))
        assert_native_matches(model, full_range(rng, (2, 5, 6, 3), np.uint8), "ev_resize_nearest_neighbor_ref")


def test_nearest_index_table_is_tflites_float_arithmetic():
    """A few hand-checked positions (TFLite: floor or roundf of (o + offset) * scale in float32)."""
    assert actops.nearest_indices(4, 8, False, False).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert actops.nearest_indices(3, 5, True, False).tolist() == [0, 1, 1, 2, 2]   # 0.5 * 2 rounds away: 1
    assert actops.nearest_indices(8, 3, False, True).tolist() == [1, 4, 6]


# -- the C checks: the engine refuses malformed ops -------------------------------------------------------------

def build_engine(kind: str, items: int, params, tensor_sizes, constants=(), arena=4096):
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


def test_checks_accept_well_formed_ops():
    """The baseline the refusals below differ from by one thing."""
    build_engine("SOFTMAX", 2, [2, 10, 1 << 30, 24, -124], [20, 20])
    build_engine("LOGISTIC", 1, [100, 4096], [100, ("const", 0), 100], constants=[bytes(256)])
    build_engine("HARD_SWISH", 1, [100, 4096, 0, 0, 20000, -3, 30000, 1], [100, 100])
    build_engine("RESIZE_BILINEAR", 8, [2, 3, 3, 2, 4, 5, 0, 1], [36, 80])
    table = np.array([0, 1, 2, 2, 0, 0, 1, 2, 2], "<i4").tobytes()
    build_engine("RESIZE_NEAREST_NEIGHBOR", 8, [2, 3, 3, 2, 4, 5], [36, ("const", 0), 80], constants=[table])


@pytest.mark.parametrize("kind,items,params,sizes,constants,message", [
    ("SOFTMAX", 2, [2, 10, 1 << 30, 24], [20, 20], (), "expected 5 int32 params, got 4"),
    ("SOFTMAX", 2, [2, 10, 1 << 30, 24, -124], [20, 19], (), "tensor 1 (output) has 19 bytes, needs 20"),
    ("SOFTMAX", 3, [2, 10, 1 << 30, 24, -124], [20, 20], (), "3 items, expected one per row (2)"),
    ("SOFTMAX", 2, [2, 10, 1 << 30, 32, -124], [20, 20], (), "left shift 32"),
    ("SOFTMAX", 2, [2, 10, 1 << 30, 24, -200], [20, 20], (), "overflows int32"),
    ("SOFTMAX", 2, [2, 10, 1 << 30, 24, -124], [20], (), "expected 2 tensors, got 1"),
    ("LOGISTIC", 1, [100, 4096], [100, ("const", 0), 100], [bytes(255)], "lookup table has 255 bytes, expected 256"),
    ("LOGISTIC", 1, [100, 4096], [100, ("const", 0), 99], [bytes(256)], "tensor 2 (output) has 99 bytes"),
    ("LOGISTIC", 2, [100, 4096], [100, ("const", 0), 100], [bytes(256)], "2 items for 100 elements"),
    ("LOGISTIC", 1, [100, 0], [100, ("const", 0), 100], [bytes(256)], "block size 0"),
    ("HARD_SWISH", 1, [100, 4096, 0, 0, 20000, -3, 30000], [100, 100], (), "expected 8 int32 params, got 7"),
    ("HARD_SWISH", 1, [100, 4096, 0, 0, 20000, 1, 30000, 1], [100, 100], (), "output exponent 1"),
    ("HARD_SWISH", 1, [100, 4096, 0, 0, 20000, -3, 40000, 1], [100, 100], (), "16-bit multipliers"),
    ("HARD_SWISH", 1, [100, 4096, 0, 0, 20000, -3, 30000, 32], [100, 100], (), "reluish exponent 32"),
    ("HARD_SWISH", 1, [100, 4096, 200, 0, 20000, -3, 30000, 1], [100, 100], (), "zero points"),
    ("RESIZE_BILINEAR", 8, [2, 3, 3, 2, 4, 5, 1, 1], [36, 80], (), "not both"),
    ("RESIZE_BILINEAR", 8, [2, 3, 3, 2, 4, 5, 0, 0], [35, 80], (), "tensor 0 (input) has 35 bytes, needs 36"),
    ("RESIZE_BILINEAR", 7, [2, 3, 3, 2, 4, 5, 0, 0], [36, 80], (), "7 items, expected one per output row (8)"),
    ("RESIZE_BILINEAR", 2000, [1, 3, 1, 1, 2000, 1, 0, 0], [3, 2000], (),
     "TFLite's integer scale overshoots the input"),
    ("RESIZE_NEAREST_NEIGHBOR", 8, [2, 3, 3, 2, 4, 5], [36, ("const", 0), 80],
     [np.array([0, 1, 2, 3, 0, 0, 1, 2, 2], "<i4").tobytes()], "output row 3 reads input row 3 of 3"),
    ("RESIZE_NEAREST_NEIGHBOR", 8, [2, 3, 3, 2, 4, 5], [36, ("const", 0), 80],
     [np.array([0, 1, 2, 2, 0, 0, 1, 2, -1], "<i4").tobytes()], "output column 4 reads input column -1"),
    ("RESIZE_NEAREST_NEIGHBOR", 8, [2, 3, 3, 2, 4, 5], [36, ("const", 0), 80],
     [np.array([0, 1, 2, 2, 0, 0, 1, 2], "<i4").tobytes()], "index table has 32 bytes, expected 36"),
])
def test_checks_refuse_malformed_ops(kind, items, params, sizes, constants, message):
    with pytest.raises(ValueError, match=kind) as e:
        build_engine(kind, items, params, sizes, constants)
    assert message in str(e.value)


# -- the preparers refuse what TFLite (or the engine) does not support ------------------------------------------

def refused(model: bytes) -> str:
    with pytest.raises(ModelError) as e:
        NativeModel(model, variant="ref", threads=1)
    return str(e.value)


def tflite_refuses(model: bytes) -> str:
    with pytest.raises(RuntimeError) as e:
        interpreter(model).allocate_tensors()
    return str(e.value)


def test_softmax_refuses_wrong_output_quantization():
    opts = TFLiteBuilder.options("SoftmaxOptions", beta=1.0)
    model = one_op_model("SOFTMAX", (2, 10), (0.05, 0), (1.0 / 128, -128), opts, out_shape=(2, 10))
    assert "failed to prepare" in tflite_refuses(model)
    msg = refused(model)
    assert "operator 0 (SOFTMAX" in msg and "scale 1/256 and zero point -128" in msg
    model = one_op_model("SOFTMAX", (2, 10), (0.05, 0), (1.0 / 256, 0), opts, out_shape=(2, 10))
    assert "failed to prepare" in tflite_refuses(model)
    assert "zero point 0" in refused(model)


def test_softmax_refuses_a_multiplier_tflite_cannot_scale():
    # TFLite's Prepare aborts the process on this one (a CHECK), so the model is built without asking it
    msg = refused(one_op_model("SOFTMAX", (2, 10), (1e-9, 0), SOFTMAX_OUT,
                               TFLiteBuilder.options("SoftmaxOptions", beta=1.0), out_shape=(2, 10)))
    assert "SOFTMAX" in msg and "must be > 1" in msg


def test_logistic_refuses_wrong_output_scale():
    model = one_op_model("LOGISTIC", (2, 10), (0.05, 0), (1.0 / 128, -128), out_shape=(2, 10))
    assert "failed to prepare" in tflite_refuses(model)
    msg = refused(model)
    assert "operator 0 (LOGISTIC" in msg and "scale 1/256" in msg


def test_hard_swish_refuses_what_tflite_refuses():
    model = one_op_model("HARD_SWISH", (2, 10), (1.0, 0), (0.001, 0), out_shape=(2, 10))
    assert "output_multiplier_exponent <= 0" in tflite_refuses(model)
    msg = refused(model)
    assert "operator 0 (HARD_SWISH" in msg and "output_multiplier_exponent <= 0" in msg


def test_resize_bilinear_refuses_both_flags_and_overshooting_scale():
    options = TFLiteBuilder.options("ResizeBilinearOptions", alignCorners=True, halfPixelCenters=True)
    model = one_op_model("RESIZE_BILINEAR", (1, 3, 3, 1), (0.1, 0), (0.1, 0), options, size=(4, 4),
                         out_shape=(1, 4, 4, 1))
    assert "failed to prepare" in tflite_refuses(model)
    msg = refused(model)
    assert "operator 0 (RESIZE_BILINEAR" in msg and "align_corners and half_pixel_centers" in msg
    # 3 rows -> 2000: the rounded 10-bit scale (2/1024 for 1.536/1024) walks past the last input row
    assert max(lo for lo, _ in actops.bilinear_positions(3, 2000, False, False)) > 2
    msg = refused(resize_model("RESIZE_BILINEAR", (3, 1), (2000, 1), False, False, batch=1, depth=1))
    assert "RESIZE_BILINEAR" in msg and "out-of-bounds" in msg


def test_resize_refuses_float_input():
    b = TFLiteBuilder()
    x = b.input("x", [1, 3, 3, 1])
    size = b.const("size", np.asarray([4, 4], np.int32))
    y = b.op("RESIZE_NEAREST_NEIGHBOR", [x, size], TFLiteBuilder.options("ResizeNearestNeighborOptions"))
    b.output(y)
    msg = refused(b.build())
    assert "operator 0 (RESIZE_NEAREST_NEIGHBOR" in msg and "INT8 or UINT8" in msg and "FLOAT32" in msg


# -- the LUT arithmetic helpers ----------------------------------------------------------------------------------

def test_quantize_multiplier_matches_tflite_rounding():
    assert actops.quantize_multiplier(0.5) == (1 << 30, 0)
    assert actops.quantize_multiplier(1.0) == (1 << 30, 1)
    assert actops.quantize_multiplier(2**31 - 1.0) == (2**31 - 1, 31)
    assert actops.quantize_multiplier(1e-12) == (0, 0)
    # a mantissa rounding up to 2^31 moves to the next exponent
    assert actops.quantize_multiplier(math.ldexp(1 - 2**-40, 3)) == (1 << 30, 4)
    assert actops.round_half_away(2.5) == 3 and actops.round_half_away(-2.5) == -3
    assert actops.round_half_away(0.49999999999999994) == 0
