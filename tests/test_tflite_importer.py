"""The float TFLite importer, checked against LiteRT's reference kernels.

Every model is built here with the flatbuffer schema (tests/tflite_builder.py), run through
``ai_edge_litert``'s interpreter with BUILTIN_REF kernels (the oracle), imported, run through the numpy
FloatExecutor, and compared output by output. Shapes the importer infers are checked against the shapes
LiteRT computed for the same tensors.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from converters.float_exec import FloatExecutor
from converters.importers.tflite import SUPPORTED_OPS, import_tflite
from converters.ir import ConversionError, Graph

from tflite_builder import ACT, SAME, VALID, TFLiteBuilder, fb, interpreter, pack

TOL = 1e-4
DATA = Path(__file__).parent / "data"


def rand(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def litert_outputs(model: bytes, feeds: dict[str, np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """The interpreter's outputs: by signature (in signature order) when ``feeds`` is a dict, else in
    subgraph order for a single positional input."""
    it = interpreter(model)
    if isinstance(feeds, dict):
        runner = it.get_signature_runner()
        out = runner(**feeds)
        keys = list(it.get_signature_list()[next(iter(it.get_signature_list()))]["outputs"])
        return [out[k] for k in keys]
    inp = it.get_input_details()[0]
    if tuple(inp["shape"]) != feeds.shape:
        it.resize_tensor_input(inp["index"], feeds.shape)
    it.allocate_tensors()
    it.set_tensor(inp["index"], feeds)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def assert_close(name: str, got: np.ndarray, want: np.ndarray, tol: float = TOL) -> None:
    assert got.shape == want.shape, f"{name}: shape {got.shape} != LiteRT's {want.shape}"
    err = np.abs(got.astype(np.float64) - want)
    if err.size and err.max() > tol * max(1.0, float(np.abs(want).max())):
        i = np.unravel_index(int(err.argmax()), err.shape)
        pytest.fail(f"{name}: max |diff| {err.max():.3g} at {i}: importer {got[i]!r}, LiteRT {want[i]!r}")


def check_model(model: bytes, x: np.ndarray | dict[str, np.ndarray], *, input_shape=None, tol: float = TOL) -> Graph:
    """Import ``model``, run both sides on ``x``, compare every output; returns the graph."""
    g = import_tflite(model, input_shape=input_shape)
    want = litert_outputs(model, x)
    got = FloatExecutor(g).run(x)
    assert len(g.outputs) == len(want)
    for name, w in zip(g.outputs, want):
        assert tuple(g.tensors[name].shape) == w.shape, f"declared shape of {name} differs from LiteRT's"
        assert_close(name, got[name], w, tol)
    return g


def assert_shapes_match_file(model: bytes, g: Graph) -> None:
    """Every tensor the graph shares with the file (by name) has LiteRT's shape."""
    it = interpreter(model)
    it.allocate_tensors()
    for d in it.get_tensor_details():
        t = g.tensors.get(d["name"])
        if t is not None:
            assert tuple(t.shape) == tuple(d["shape"]), f"{d['name']}: {t.shape} != {tuple(d['shape'])}"


# -- one model per operator --------------------------------------------------------------------------------
# Each case builds on a builder with input x [1, 9, 9, 4] and returns the output tensor.
Case = Callable[[TFLiteBuilder, int], int]
O = TFLiteBuilder.options


def conv(padding, stride, dilation=1, act=None, bias=True, weights="float", k=3) -> Case:
    def build(b: TFLiteBuilder, x: int) -> int:
        w = rand(6, k, k, 4, seed=1)
        wt = {"float": b.const, "fp16": b.fp16_weight, "int8": b.int8_weight}[weights]("w", w)
        ins = [x, wt] + ([b.const("bias", rand(6, seed=2))] if bias else [])
        return b.op("CONV_2D", ins, O("Conv2DOptions", padding=padding, strideH=stride, strideW=stride,
                                      dilationHFactor=dilation, dilationWFactor=dilation,
                                      fusedActivationFunction=ACT[act]))
    return build


def depthwise(padding, stride, multiplier, act=None) -> Case:
    def build(b: TFLiteBuilder, x: int) -> int:
        w = b.const("dw", rand(1, 3, 3, 4 * multiplier, seed=3))
        return b.op("DEPTHWISE_CONV_2D", [x, w, b.const("dwb", rand(4 * multiplier, seed=4))],
                    O("DepthwiseConv2DOptions", padding=padding, strideH=stride, strideW=stride,
                      depthMultiplier=multiplier, dilationHFactor=1, dilationWFactor=1,
                      fusedActivationFunction=ACT[act]))
    return build


def fully_connected(act=None, bias=True, keep_num_dims=False) -> Case:
    def build(b: TFLiteBuilder, x: int) -> int:
        w = b.const("fcw", rand(5, 9 * 9 * 4 if not keep_num_dims else 4, seed=5, scale=0.1))
        return b.op("FULLY_CONNECTED", [x, w, b.const("fcb", rand(5, seed=6)) if bias else -1],
                    O("FullyConnectedOptions", fusedActivationFunction=ACT[act], keepNumDims=keep_num_dims))
    return build


def binary(kind: str, other: str, act=None) -> Case:
    """other: 'const' (broadcast [C]), 'const_first' (constant on the left), 'act' (a second activation)."""
    def build(b: TFLiteBuilder, x: int) -> int:
        opts = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions", "DIV": "DivOptions"}[kind]
        c = b.const("c", rand(4, seed=7) + (3.0 if kind == "DIV" else 0.0))
        if other == "act":
            y = b.op("LOGISTIC", [x])
            ins = [x, y]
        elif other == "const_first":
            ins = [c, x]
        else:
            ins = [x, c]
        return b.op(kind, ins, O(opts, fusedActivationFunction=ACT[act]))
    return build


def unary(kind: str) -> Case:
    return lambda b, x: b.op(kind, [b.op("MUL", [x, b.const("three", np.float32(3.0))])])


def pool(kind: str, padding, k, stride, act=None) -> Case:
    return lambda b, x: b.op(kind, [x], O("Pool2DOptions", padding=padding, strideH=stride, strideW=stride,
                                          filterHeight=k, filterWidth=k, fusedActivationFunction=ACT[act]))


def concat(act=None) -> Case:
    def build(b: TFLiteBuilder, x: int) -> int:
        y = b.op("TANH", [x])
        return b.op("CONCATENATION", [x, y, b.const("cc", rand(1, 9, 9, 2, seed=8))],
                    O("ConcatenationOptions", axis=-1, fusedActivationFunction=ACT[act]))
    return build


def pad(v2: bool) -> Case:
    def build(b: TFLiteBuilder, x: int) -> int:
        p = b.const("paddings", np.array([[0, 0], [1, 2], [0, 3], [1, 1]], np.int32))
        if v2:
            return b.op("PADV2", [x, p, b.const("zero", np.zeros((), np.float32))])
        return b.op("PAD", [x, p])
    return build


def mean(keep: bool) -> Case:
    return lambda b, x: b.op("MEAN", [x, b.const("axes", np.array([1, 2], np.int32))],
                             O("ReducerOptions", keepDims=keep))


def prelu(b: TFLiteBuilder, x: int) -> int:
    return b.op("PRELU", [x, b.const("alpha", rand(1, 1, 4, seed=9))])


def leaky_relu(b: TFLiteBuilder, x: int) -> int:
    return b.op("LEAKY_RELU", [x], O("LeakyReluOptions", alpha=0.2))


def softmax(beta: float) -> Case:
    def build(b: TFLiteBuilder, x: int) -> int:
        logits = fully_connected()(b, x)
        return b.op("SOFTMAX", [logits], O("SoftmaxOptions", beta=beta))
    return build


def reshape_options(b: TFLiteBuilder, x: int) -> int:
    return b.op("RESHAPE", [x], O("ReshapeOptions", newShape=[1, 81, 4]))


def reshape_tensor(b: TFLiteBuilder, x: int) -> int:
    return b.op("RESHAPE", [x, b.const("shape", np.array([1, -1, 12], np.int32))])


def squeeze(b: TFLiteBuilder, x: int) -> int:
    m = mean(True)(b, x)
    return b.op("SQUEEZE", [m], O("SqueezeOptions", squeezeDims=[1, 2]))


def squeeze_all(b: TFLiteBuilder, x: int) -> int:
    m = b.op("MEAN", [x, b.const("axes", np.array([1, 2, 3], np.int32))], O("ReducerOptions", keepDims=True))
    return b.op("SQUEEZE", [m], O("SqueezeOptions"))


def expand_dims(b: TFLiteBuilder, x: int) -> int:
    return b.op("EXPAND_DIMS", [x, b.const("axis", np.array([2], np.int32))])


def transpose(b: TFLiteBuilder, x: int) -> int:
    return b.op("TRANSPOSE", [x, b.const("perm", np.array([0, 3, 1, 2], np.int32))])


def resize(kind: str, size, align=False, half=False) -> Case:
    opts = "ResizeBilinearOptions" if kind == "RESIZE_BILINEAR" else "ResizeNearestNeighborOptions"
    return lambda b, x: b.op(kind, [x, b.const("size", np.array(size, np.int32))],
                             O(opts, alignCorners=align, halfPixelCenters=half))


def quantize_dequantize_const(b: TFLiteBuilder, x: int) -> int:
    """QUANTIZE of a float constant, then DEQUANTIZE, feeding MUL: folds to the fake-quantized constant."""
    c = b.const("scale_f", rand(4, seed=10))
    q = b.op("QUANTIZE", [c], out_type=fb.TensorType.INT8, out_quant=TFLiteBuilder.quant([0.02], [3]))
    d = b.op("DEQUANTIZE", [q])
    return b.op("MUL", [x, d], O("MulOptions"))


CASES: dict[str, Case] = {
    "conv_same_stride1_relu": conv(SAME, 1, act="relu"),
    "conv_same_stride2_odd_input_relu6": conv(SAME, 2, act="relu6"),
    "conv_valid_dilation2": conv(VALID, 1, dilation=2),  # LiteRT's CONV_2D requires a bias
    "conv_valid_stride2_relu_n1_to_1": conv(VALID, 2, act="relu_n1_to_1"),
    "conv_fp16_weights": conv(SAME, 1, weights="fp16"),
    "conv_int8_dynamic_range_weights": conv(SAME, 2, weights="int8", act="relu"),
    "depthwise_same_stride2_relu6": depthwise(SAME, 2, 1, act="relu6"),
    "depthwise_valid_multiplier2": depthwise(VALID, 1, 2),
    "fc_4d_input_relu": fully_connected(act="relu"),
    "fc_no_bias": fully_connected(bias=False),
    "fc_keep_num_dims": fully_connected(keep_num_dims=True),
    "add_const_broadcast": binary("ADD", "const"),
    "add_two_activations_relu": binary("ADD", "act", act="relu"),
    "sub_const": binary("SUB", "const"),
    "sub_const_first": binary("SUB", "const_first"),
    "sub_two_activations_relu6": binary("SUB", "act", act="relu6"),
    "mul_const": binary("MUL", "const"),
    "mul_two_activations": binary("MUL", "act"),
    "div_const": binary("DIV", "const", act="relu"),
    "concat_with_const": concat(),
    "pad": pad(False),
    "padv2_zero": pad(True),
    "max_pool_same_3x3_stride2": pool("MAX_POOL_2D", SAME, 3, 2),
    "avg_pool_same_3x3_stride2_counts_real_cells": pool("AVERAGE_POOL_2D", SAME, 3, 2),
    "avg_pool_valid_2x2_relu": pool("AVERAGE_POOL_2D", VALID, 2, 2, act="relu"),
    "mean_keepdims": mean(True),
    "mean_dropdims": mean(False),
    "relu": unary("RELU"),
    "relu6": unary("RELU6"),
    "relu_n1_to_1": unary("RELU_N1_TO_1"),
    "logistic": unary("LOGISTIC"),
    "hard_swish": unary("HARD_SWISH"),
    "tanh": unary("TANH"),
    "prelu": prelu,
    "leaky_relu": leaky_relu,
    "softmax": softmax(1.0),
    "softmax_beta": softmax(0.5),
    "reshape_options": reshape_options,
    "reshape_shape_tensor": reshape_tensor,
    "squeeze_dims": squeeze,
    "squeeze_all": squeeze_all,
    "expand_dims": expand_dims,
    "transpose": transpose,
    "resize_bilinear_up": resize("RESIZE_BILINEAR", [14, 20]),
    "resize_bilinear_half_pixel": resize("RESIZE_BILINEAR", [5, 13], half=True),
    "resize_bilinear_align_corners": resize("RESIZE_BILINEAR", [17, 6], align=True),
    "resize_nearest": resize("RESIZE_NEAREST_NEIGHBOR", [18, 7]),
    "resize_nearest_half_pixel": resize("RESIZE_NEAREST_NEIGHBOR", [13, 5], half=True),
    "resize_nearest_align_corners": resize("RESIZE_NEAREST_NEIGHBOR", [4, 17], align=True),
    "quantize_dequantize_const": quantize_dequantize_const,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_matches_litert(case: str) -> None:
    b = TFLiteBuilder()
    x = b.input("x", [1, 9, 9, 4])
    y = CASES[case](b, x)
    b.output(y)
    model = b.build()
    g = check_model(model, rand(1, 9, 9, 4, seed=42, scale=2.0))
    assert_shapes_match_file(model, g)
    assert not any(n.op in ("dequantize", "quantize") for n in g.nodes)


@pytest.mark.parametrize("case,build", [
    ("conv_same_stride2", conv(SAME, 2, act="relu")),
    ("conv_same_even_kernel", conv(SAME, 1, k=4)),
    ("conv_same_stride2_dilation2", conv(SAME, 2, dilation=2, k=2)),
    ("depthwise_same_stride2", depthwise(SAME, 2, 1)),
    ("max_pool_same_3x3_stride2", pool("MAX_POOL_2D", SAME, 3, 2)),
    ("avg_pool_same_3x3_stride2", pool("AVERAGE_POOL_2D", SAME, 3, 2)),
    ("avg_pool_same_2x2_stride1", pool("AVERAGE_POOL_2D", SAME, 2, 1)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_same_padding_with_extra_cell_after_matches_litert(case: str, build: Case) -> None:
    """On an 8x10 input these windows need an odd total padding: TFLite puts the extra cell after."""
    b = TFLiteBuilder()
    b.output(build(b, b.input("x", [1, 8, 10, 4])))
    model = b.build()
    g = check_model(model, rand(1, 8, 10, 4, seed=43, scale=2.0))
    pads = g.nodes[-1].attrs["pads"]
    assert pads[2] > pads[0] or pads[3] > pads[1], f"{case}: pads {pads} are symmetric; the test proves nothing"


def test_every_supported_op_has_a_test_case() -> None:
    used = set()
    for build in CASES.values():
        b = TFLiteBuilder()
        build(b, b.input("x", [1, 9, 9, 4]))
        names = {v: k for k, v in vars(fb.BuiltinOperator).items() if isinstance(v, int)}
        used |= {names[code] for code, _ in b.opcodes}
    assert set(SUPPORTED_OPS) <= used, f"untested: {sorted(set(SUPPORTED_OPS) - used)}"


def test_sub_and_div_become_add_and_mul() -> None:
    for case, op in (("sub_const", "add"), ("div_const", "mul"), ("sub_two_activations_relu6", "add")):
        b = TFLiteBuilder()
        b.output(CASES[case](b, b.input("x", [1, 9, 9, 4])))
        g = import_tflite(b.build())
        assert g.nodes[-1].op == op, case


def test_fp16_weights_fold_into_float32_constants() -> None:
    b = TFLiteBuilder()
    b.output(conv(SAME, 1, weights="fp16")(b, b.input("x", [1, 9, 9, 4])))
    g = import_tflite(b.build())
    (node,) = g.nodes
    w = g.tensors[node.inputs[1]]
    assert node.op == "conv2d" and w.data.dtype == np.float32
    np.testing.assert_array_equal(w.data, rand(6, 3, 3, 4, seed=1).astype(np.float16).astype(np.float32))


# -- whole small networks -----------------------------------------------------------------------------------
def mini_net(b: TFLiteBuilder, x: int, weight: Callable) -> tuple[int, int]:
    """conv -> depthwise -> pointwise + residual -> pool -> mean -> fc -> softmax; returns (probs, features)."""
    c1 = b.op("CONV_2D", [x, weight("c1w", rand(8, 3, 3, 3, seed=11)), b.const("c1b", rand(8, seed=12))],
              O("Conv2DOptions", padding=SAME, strideH=2, strideW=2, fusedActivationFunction=ACT["relu6"]))
    d1 = b.op("DEPTHWISE_CONV_2D", [c1, weight("d1w", rand(1, 3, 3, 8, seed=13)), b.const("d1b", rand(8, seed=14))],
              O("DepthwiseConv2DOptions", padding=SAME, strideH=1, strideW=1, depthMultiplier=1,
                fusedActivationFunction=ACT["relu6"]))
    p1 = b.op("CONV_2D", [d1, weight("p1w", rand(8, 1, 1, 8, seed=15)), b.const("p1b", rand(8, seed=16))],
              O("Conv2DOptions", padding=SAME, strideH=1, strideW=1))
    r = b.op("ADD", [c1, p1], O("AddOptions"), out_name="residual")
    h = b.op("HARD_SWISH", [r])
    mp = b.op("MAX_POOL_2D", [h], O("Pool2DOptions", padding=VALID, strideH=2, strideW=2, filterHeight=2,
                                    filterWidth=2))
    feat = b.op("MEAN", [mp, b.const("axes", np.array([1, 2], np.int32))], O("ReducerOptions", keepDims=False),
                out_name="features")
    logits = b.op("FULLY_CONNECTED", [feat, weight("fcw", rand(10, 8, seed=17)), b.const("fcb", rand(10, seed=18))],
                  O("FullyConnectedOptions"))
    probs = b.op("SOFTMAX", [logits], O("SoftmaxOptions", beta=1.0), out_name="probs")
    return probs, feat


@pytest.mark.parametrize("weights", ["float", "fp16", "int8"])
def test_mini_network_with_signature_matches_litert(weights: str) -> None:
    b = TFLiteBuilder()
    x = b.input("serving_default_image:0", [1, 16, 16, 3])
    weight = {"float": b.const, "fp16": b.fp16_weight, "int8": b.int8_weight}[weights]
    probs, feat = mini_net(b, x, weight)
    b.output(probs, feat)  # subgraph order: probs, features
    # The signature lists them the other way round and renames everything.
    model = b.build(signature={"inputs": {"image": x}, "outputs": {"embedding": feat, "scores": probs}})
    g = check_model(model, {"image": rand(1, 16, 16, 3, seed=5)})
    assert g.inputs == ["image"]
    assert g.outputs == ["embedding", "scores"]
    assert g.tensors["scores"].shape == (1, 10)


def test_without_signature_uses_subgraph_inputs_and_outputs() -> None:
    b = TFLiteBuilder()
    x = b.input("image", [1, 16, 16, 3])
    probs, feat = mini_net(b, x, b.const)
    b.output(probs, feat)
    model = b.build()
    g = check_model(model, rand(1, 16, 16, 3, seed=6))
    assert g.inputs == ["image"] and g.outputs == ["probs", "features"]


def test_buffers_outside_the_flatbuffer_are_read() -> None:
    b = TFLiteBuilder()
    x = b.input("image", [1, 16, 16, 3])
    b.output(*mini_net(b, x, b.fp16_weight))
    inside, outside = b.build(), b.build(external_buffers=True)
    m = fb.ModelT.InitFromPackedBuf(outside, 0)
    assert all(buf.data is None for buf in m.buffers) and any(buf.offset > 1 for buf in m.buffers)
    x = rand(1, 16, 16, 3, seed=7)
    g_in, g_out = check_model(inside, x), check_model(outside, x)
    for name, t in g_in.tensors.items():
        if t.is_const:
            np.testing.assert_array_equal(g_out.tensors[name].data, t.data)


def test_file_path_and_bytes_give_the_same_graph(tmp_path: Path) -> None:
    b = TFLiteBuilder()
    b.output(conv(SAME, 2, act="relu")(b, b.input("x", [1, 9, 9, 4])))
    model = b.build()
    p = tmp_path / "tiny.tflite"
    p.write_bytes(model)
    assert import_tflite(p).summary().split("\n")[1:] == import_tflite(model).summary().split("\n")[1:]
    assert import_tflite(str(p)).name == "tiny"


# -- dynamic shapes -----------------------------------------------------------------------------------------
def dynamic_model(signature: list[int]) -> bytes:
    b = TFLiteBuilder()
    x = b.input("image", [1, 16, 16, 3], shape_signature=signature)
    c = b.op("CONV_2D", [x, b.const("w", rand(4, 3, 3, 3, seed=1)), b.const("b", rand(4, seed=2))],
             O("Conv2DOptions", padding=SAME, strideH=2, strideW=2, fusedActivationFunction=ACT["relu"]))
    m = b.op("MEAN", [c, b.const("axes", np.array([1, 2], np.int32))], O("ReducerOptions", keepDims=False))
    f = b.op("FULLY_CONNECTED", [m, b.const("fcw", rand(3, 4, seed=3)), -1], O("FullyConnectedOptions"))
    b.output(f)
    return b.build()


def test_dynamic_batch_becomes_one() -> None:
    g = check_model(dynamic_model([-1, 16, 16, 3]), rand(1, 16, 16, 3))
    assert g.tensors[g.inputs[0]].shape == (1, 16, 16, 3)


def test_dynamic_spatial_dims_need_input_shape() -> None:
    model = dynamic_model([-1, -1, -1, 3])
    with pytest.raises(ConversionError, match=r"dynamic dimensions.*input_shape="):
        import_tflite(model)
    g = check_model(model, rand(1, 24, 20, 3), input_shape=(1, 24, 20, 3))
    assert g.tensors[g.nodes[0].outputs[0]].shape == (1, 12, 10, 4)


def test_input_shape_contradicting_a_fixed_shape_is_refused() -> None:
    with pytest.raises(ConversionError, match=r"disagrees with model input 'image'.*\[1, 16, 16, 3\]"):
        import_tflite(dynamic_model([1, 16, 16, 3]), input_shape=(1, 32, 32, 3))


# -- bad inputs ---------------------------------------------------------------------------------------------
def test_missing_file_says_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="not found"):
        import_tflite(tmp_path / "nope.tflite")


def test_non_tflite_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(100))
    with pytest.raises(ConversionError, match="not a TFLite model.*TFL3"):
        import_tflite(p)
    with pytest.raises(ConversionError, match="not a TFLite model"):
        import_tflite(b"")


def test_corrupt_tflite_is_refused() -> None:
    b = TFLiteBuilder()
    b.output(conv(SAME, 1)(b, b.input("x", [1, 9, 9, 4])))
    model = b.build()
    with pytest.raises(ConversionError, match="corrupt|truncated|malformed"):
        import_tflite(model[:8] + bytes([0xFF]) * (len(model) - 8))


def test_randomly_damaged_files_fail_with_conversion_errors_only() -> None:
    b = TFLiteBuilder()
    b.output(*mini_net(b, b.input("image", [1, 16, 16, 3]), b.fp16_weight))
    model = b.build()
    rng = np.random.default_rng(0)
    for _ in range(300):
        damaged = bytearray(model)
        for pos in rng.integers(8, len(model), size=rng.integers(1, 4)):
            damaged[pos] = rng.integers(0, 256)
        try:
            import_tflite(bytes(damaged))
        except ConversionError:
            pass


def int8_model() -> bytes:
    """A fully quantized model as TF's converter writes it: float in, QUANTIZE, int8 conv, DEQUANTIZE."""
    b = TFLiteBuilder()
    x = b.input("image", [1, 8, 8, 3])
    q = b.op("QUANTIZE", [x], out_type=fb.TensorType.INT8, out_quant=b.quant([0.02], [0]), out_name="q")
    w = b.const("w", np.ones((4, 3, 3, 3), np.int8), quant=b.quant([0.01] * 4, [0] * 4))
    bias = b.const("b", np.zeros(4, np.int32), quant=b.quant([0.0002] * 4, [0] * 4))
    c = b.op("CONV_2D", [q, w, bias], O("Conv2DOptions", padding=SAME, strideH=1, strideW=1),
             out_type=fb.TensorType.INT8, out_quant=b.quant([0.05], [-5]))
    b.output(b.op("DEQUANTIZE", [c]))
    return b.build()


def test_int8_model_is_called_already_quantized() -> None:
    model = int8_model()
    interpreter(model).allocate_tensors()  # LiteRT accepts it: a real int8 model
    with pytest.raises(ConversionError, match="already quantized.*use it directly"):
        import_tflite(model)


def test_unsupported_op_names_op_index_tensors_and_supported_list() -> None:
    b = TFLiteBuilder()
    x = b.input("x", [1, 9, 9, 4])
    r = b.op("RELU", [x])
    e = b.op("EXP", [r], out_name="exp_out")
    b.output(e)
    with pytest.raises(ConversionError) as info:
        import_tflite(b.build())
    msg = str(info.value)
    for part in ("operator #1 EXP", "'relu_0'", "'exp_out'", "CONV_2D", "RESIZE_BILINEAR", "float32"):
        assert part in msg, f"{part!r} missing from: {msg}"


def test_custom_op_is_named() -> None:
    b = TFLiteBuilder()
    x = b.input("x", [1, 9, 9, 4])
    b.output(b.op("CUSTOM", [x], custom="MyFancyOp"))
    with pytest.raises(ConversionError, match=r"operator #0 CUSTOM\(MyFancyOp\)"):
        import_tflite(b.build(fix_shapes=False))


@pytest.mark.parametrize("build,match", [
    (binary("DIV", "act"), "divides by a computed tensor"),
    (lambda b, x: b.op("PADV2", [x, b.const("p", np.ones((4, 2), np.int32)), b.const("v", np.float32(1.5))]),
     "only zero padding"),
    (lambda b, x: b.op("ADD", [x, x], O("AddOptions", fusedActivationFunction=ACT["tanh"])),
     "fused activation TANH.*separate TANH"),
    (lambda b, x: b.op("CONV_2D", [x, b.op("RELU", [b.const("w", rand(2, 1, 1, 4))]), -1],
                       O("Conv2DOptions", padding=SAME, strideH=1, strideW=1)),
     "weight tensor .* must be a constant"),
])
def test_unsupported_variants_are_explained(build: Case, match: str) -> None:
    b = TFLiteBuilder()
    b.output(build(b, b.input("x", [1, 9, 9, 4])))
    with pytest.raises(ConversionError, match=match):
        import_tflite(b.build(fix_shapes=False))


# -- models written by TensorFlow's converter (tools/make_tflite_fixtures.py) -------------------------------
def fashion_mnist_images(n: int) -> np.ndarray:
    path = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    if path.exists():
        with gzip.open(path) as f:
            raw = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784]
        return (raw.reshape(n, 28, 28, 1) / 255.0).astype(np.float32)
    return np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)


def fashion_mnist_labels(n: int) -> np.ndarray | None:
    path = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    if not path.exists():
        return None
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=8)[:n].astype(np.int64)


def tf_fixture(kind: str) -> Path:
    path = DATA / f"fashion_mnist_{kind}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not generated: run .cache/tf-venv/bin/python tools/make_tflite_fixtures.py")
    return path


def file_ops_and_types(model: bytes) -> tuple[set[str], set[int]]:
    m = fb.ModelT.InitFromPackedBuf(model, 0)
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if isinstance(v, int)}
    ops = {names[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in m.operatorCodes}
    return ops, {t.type for t in m.subgraphs[0].tensors}


def dequantized_copy(model: bytes) -> bytes:
    """The model with every int8 weight replaced by its float32 value scale * (q - zero_point)."""
    m = fb.ModelT.InitFromPackedBuf(model, 0)
    for t in m.subgraphs[0].tensors:
        buf = m.buffers[t.buffer]
        if t.type != fb.TensorType.INT8 or buf.data is None or t.quantization is None:
            continue
        q = np.frombuffer(bytes(buf.data), np.int8).reshape(list(t.shape)).astype(np.float64)
        bshape = [1] * q.ndim
        if len(t.quantization.scale) > 1:
            bshape[t.quantization.quantizedDimension] = -1
        scale = np.asarray(t.quantization.scale, np.float64).reshape(bshape)
        zp = np.asarray(t.quantization.zeroPoint, np.float64).reshape(bshape)
        buf.data = np.frombuffer(((q - zp) * scale).astype(np.float32).tobytes(), np.uint8)
        t.type, t.quantization = fb.TensorType.FLOAT32, None
    return pack(m)


def check_tf_fixture(model: bytes, oracle: bytes, tol: float) -> np.ndarray:
    """Import ``model``; compare with LiteRT running ``oracle`` image by image; returns LiteRT's outputs."""
    g = import_tflite(model)
    assert all(t.data.dtype == np.float32 for t in g.tensors.values() if t.is_const), "constants must be float32"
    it = interpreter(oracle)
    (key,) = it.get_signature_list()
    runner = it.get_signature_runner(key)
    (in_name,) = it.get_signature_list()[key]["inputs"]
    assert g.inputs == [in_name] and g.outputs == list(it.get_signature_list()[key]["outputs"])
    images = fashion_mnist_images(32)
    got = FloatExecutor(g).run(images)  # the executor batches; LiteRT runs one image at a time
    wants = []
    for i, img in enumerate(images):
        want = runner(**{in_name: img[None]})
        for o in g.outputs:
            assert_close(f"{o}[image {i}]", got[o][i:i + 1], want[o], tol)
        wants.append(want[g.outputs[0]])
    assert (got[g.outputs[0]].argmax(-1) == np.concatenate(wants).argmax(-1)).mean() >= 0.95
    return np.concatenate(wants)


def test_tf_converted_float32_fashion_mnist_matches_litert() -> None:
    model = tf_fixture("float32").read_bytes()
    probs = check_tf_fixture(model, model, TOL)
    labels = fashion_mnist_labels(len(probs))
    if labels is not None:  # the fixture is a trained model, not noise
        assert (probs.argmax(-1) == labels).mean() >= 0.7


def test_tf_converted_fp16_fashion_mnist_matches_litert() -> None:
    model = tf_fixture("fp16").read_bytes()
    ops, types = file_ops_and_types(model)
    assert "DEQUANTIZE" in ops and fb.TensorType.FLOAT16 in types  # the file really holds fp16 weights
    check_tf_fixture(model, model, TOL)


def test_tf_converted_dynamic_range_fashion_mnist_matches_litert() -> None:
    model = tf_fixture("dynamic_int8").read_bytes()
    _, types = file_ops_and_types(model)
    assert fb.TensorType.INT8 in types
    # Exact oracle: the same model with its int8 weights written out as float32.
    check_tf_fixture(model, dequantized_copy(model), TOL)
    # LiteRT's own hybrid kernels also quantize activations on the fly: close, not equal.
    check_tf_fixture(model, model, 0.1)


def test_tf_converted_int8_model_is_refused_as_already_quantized() -> None:
    with pytest.raises(ConversionError, match="already quantized.*use it directly"):
        import_tflite(tf_fixture("int8"))
