"""converters.float_exec against independent oracles.

Oracles: PyTorch's functional ops (NHWC <-> NCHW transposed here), and for what torch cannot express in TFLite's
terms (legacy resize index arithmetic, nearest-neighbour rounding, TFLite's own SAME average pool and depthwise
multiplier layout) LiteRT's builtin float kernels, run on one-op .tflite models built here with the schema's
object API. Every case runs with batch N=3 although the graphs declare batch 1.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from converters import float_exec
from converters.float_exec import FloatExecutor
from converters.ir import OPS, ConversionError, Graph, conv_out_size, same_pads

N = 3
RTOL = ATOL = 1e-4

torch.set_num_threads(1)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def randn(shape, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return np.asarray(rng(seed).standard_normal(shape) * scale, dtype=np.float32)


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


def assert_close(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    want = np.asarray(want)
    assert got.dtype == np.float32, f"{what}: dtype {got.dtype}, expected float32"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bad = ~np.isclose(got, want, rtol=RTOL, atol=ATOL)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        pytest.fail(f"{what}: {bad.sum()} of {bad.size} values differ; first at {idx}: got {got[idx]}, "
                    f"expected {want[idx]} (shape {got.shape})")


def run1(g: Graph, x: np.ndarray) -> np.ndarray:
    out = FloatExecutor(g).run(x)
    assert list(out) == g.outputs
    return out[g.outputs[0]]


def apply_act(t: torch.Tensor, act: str | None) -> torch.Tensor:
    return {None: t, "relu": torch.relu(t), "relu6": F.relu6(t), "relu_n1_to_1": t.clamp(-1, 1)}[act]


# --------------------------------------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------------------------------------
CONV_CASES = [
    # (H, W, C, O, KH, KW, stride, dilation, pads(t, l, b, r), bias, act)
    (9, 11, 3, 5, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), True, None),
    (9, 11, 3, 5, 3, 3, (2, 2), (1, 1), (0, 0, 1, 1), True, "relu6"),  # TF SAME, stride 2, even size
    (10, 7, 4, 6, 3, 2, (2, 1), (1, 1), (1, 0, 2, 1), False, "relu"),  # rectangular kernel, asymmetric pads
    (12, 12, 5, 4, 3, 3, (1, 1), (2, 3), (2, 3, 2, 3), True, "relu_n1_to_1"),  # dilation
    (13, 9, 2, 3, 5, 5, (3, 2), (2, 1), (3, 1, 4, 2), True, None),  # dilation + stride + odd pads
    (8, 8, 6, 7, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), True, None),  # pointwise
    (9, 8, 6, 7, 1, 1, (2, 2), (1, 1), (0, 0, 0, 0), True, "relu"),  # strided pointwise
    (9, 8, 6, 7, 1, 1, (2, 3), (1, 1), (1, 0, 0, 2), False, None),  # padded pointwise
    (7, 7, 3, 4, 7, 7, (1, 1), (1, 1), (0, 0, 0, 0), True, None),  # kernel covers the whole input
]


def conv_graph(h, w, c, o, kh, kw, stride, dil, pads, bias, act, seed=0) -> tuple[Graph, np.ndarray, np.ndarray | None]:
    g = Graph("conv")
    x = g.add_input("x", (1, h, w, c))
    wt = randn((o, kh, kw, c), seed + 1, 0.5)
    b = randn((o,), seed + 2) if bias else None
    ins = [x, g.add_const("w", wt)] + ([g.add_const("b", b)] if bias else [])
    oh = conv_out_size(h, kh, stride[0], dil[0], pads[0], pads[2])
    ow = conv_out_size(w, kw, stride[1], dil[1], pads[1], pads[3])
    g.outputs = [g.add_node("conv2d", ins, (1, oh, ow, o), name="conv", strides=stride, dilations=dil, pads=pads,
                            act=act)]
    return g, wt, b


def torch_conv(x, wt, b, stride, dil, pads, act, groups=1) -> np.ndarray:
    t = F.pad(nchw(x), (pads[1], pads[3], pads[0], pads[2]))
    w_oihw = torch.from_numpy(np.ascontiguousarray(wt.transpose(0, 3, 1, 2)))
    y = F.conv2d(t, w_oihw, None if b is None else torch.from_numpy(b), stride=stride, dilation=dil, groups=groups)
    return nhwc(apply_act(y, act))


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[4]}x{c[5]}s{c[6]}d{c[7]}p{c[8]}{c[10] or ''}")
def test_conv2d_matches_torch_conv2d(case):
    h, w, c, o, kh, kw, stride, dil, pads, bias, act = case
    g, wt, b = conv_graph(*case)
    x = randn((N, h, w, c), 7)
    assert_close(run1(g, x), torch_conv(x, wt, b, stride, dil, pads, act), f"conv2d {case}")


def test_conv2d_im2col_chunked_over_batch_matches_unchunked(monkeypatch):
    case = CONV_CASES[4]
    g, wt, b = conv_graph(*case)
    x = randn((5, *case[:3]), 3)
    whole = run1(g, x)
    monkeypatch.setattr(float_exec, "_IM2COL_BYTES", 1)  # one sample per chunk
    chunked = run1(g, x)
    np.testing.assert_array_equal(chunked, whole)


# --------------------------------------------------------------------------------------------------------
# depthwise_conv2d
# --------------------------------------------------------------------------------------------------------
DW_CASES = [
    # (H, W, C, M, K, stride, dilation, pads, bias, act)
    (9, 11, 4, 1, 3, (1, 1), (1, 1), (1, 1, 1, 1), True, "relu6"),
    (10, 10, 3, 2, 3, (2, 2), (1, 1), (0, 0, 1, 1), True, None),  # multiplier 2, TF SAME stride 2
    (11, 8, 2, 3, 5, (2, 1), (1, 1), (2, 1, 2, 3), False, "relu"),  # multiplier 3, asymmetric pads
    (12, 13, 5, 1, 3, (1, 2), (2, 2), (2, 2, 2, 1), True, "relu_n1_to_1"),  # dilation
    (7, 9, 6, 1, 5, (3, 3), (1, 2), (0, 4, 1, 0), True, None),
]


def dw_graph(h, w, c, m, k, stride, dil, pads, bias, act):
    g = Graph("dw")
    x = g.add_input("x", (1, h, w, c))
    wt = randn((1, k, k, c * m), 1)
    b = randn((c * m,), 2) if bias else None
    ins = [x, g.add_const("w", wt)] + ([g.add_const("b", b)] if bias else [])
    oh = conv_out_size(h, k, stride[0], dil[0], pads[0], pads[2])
    ow = conv_out_size(w, k, stride[1], dil[1], pads[1], pads[3])
    g.outputs = [g.add_node("depthwise_conv2d", ins, (1, oh, ow, c * m), name="dw", strides=stride, dilations=dil,
                            pads=pads, multiplier=m, act=act)]
    return g, wt, b


@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: f"m{c[3]}k{c[4]}s{c[5]}d{c[6]}p{c[7]}{c[9] or ''}")
def test_depthwise_conv2d_matches_torch_grouped_conv(case):
    h, w, c, m, k, stride, dil, pads, bias, act = case
    g, wt, b = dw_graph(*case)
    x = randn((N, h, w, c), 5)
    # torch groups=C: output channel c*M+m belongs to group c, i.e. reads input channel c, as TFLite's layout.
    w_oihw = wt[0].transpose(2, 0, 1)[:, None]  # [C*M, 1, K, K]
    t = F.pad(nchw(x), (pads[1], pads[3], pads[0], pads[2]))
    y = F.conv2d(t, torch.from_numpy(np.ascontiguousarray(w_oihw)), None if b is None else torch.from_numpy(b),
                 stride=stride, dilation=dil, groups=c)
    assert_close(run1(g, x), nhwc(apply_act(y, act)), f"depthwise {case}")


def test_depthwise_row_blocking_matches_unblocked(monkeypatch):
    case = DW_CASES[2]
    g, _, _ = dw_graph(*case)
    x = randn((N, *case[:3]), 3)
    whole = run1(g, x)
    monkeypatch.setattr(float_exec, "_DW_BLOCK_BYTES", 1)  # one output row per block
    np.testing.assert_array_equal(run1(g, x), whole)


# --------------------------------------------------------------------------------------------------------
# fully_connected, add, mul, concat, pad
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias,act", [(True, None), (False, "relu"), (True, "relu6")])
def test_fully_connected_matches_torch_linear(bias, act):
    g = Graph("fc")
    x = g.add_input("x", (1, 37))
    w, b = randn((11, 37), 1), randn((11,), 2)
    ins = [x, g.add_const("w", w)] + ([g.add_const("b", b)] if bias else [])
    g.outputs = [g.add_node("fully_connected", ins, (1, 11), name="fc", act=act)]
    xv = randn((N, 37), 3)
    want = apply_act(F.linear(torch.from_numpy(xv), torch.from_numpy(w), torch.from_numpy(b) if bias else None), act)
    assert_close(run1(g, xv), want.numpy(), "fully_connected")


BINARY_CASES = [
    # (a shape, b shape, b constant?)
    ((1, 5, 6, 4), (1, 5, 6, 4), False),
    ((1, 5, 6, 4), (4,), True),
    ((1, 5, 6, 4), (1, 1, 1, 4), True),
    ((1, 5, 6, 4), (1, 1, 6, 1), True),
    ((1, 5, 6, 4), (), True),
    ((1, 5, 6, 4), (1, 1, 1, 4), False),  # squeeze-excite style: per-sample channel scale
]


@pytest.mark.parametrize("op,tfn", [("add", torch.add), ("mul", torch.mul)])
@pytest.mark.parametrize("a_shape,b_shape,b_const", BINARY_CASES)
@pytest.mark.parametrize("act", [None, "relu6"])
def test_binary_broadcasting_matches_torch(op, tfn, a_shape, b_shape, b_const, act):
    g = Graph(op)
    a = g.add_input("a", a_shape)
    bv = randn(b_shape if b_const else (N,) + tuple(b_shape[1:]), 2, 3.0)
    b = g.add_const("b", bv) if b_const else g.add_input("b", b_shape)
    out_shape = np.broadcast_shapes(a_shape, b_shape)
    g.outputs = [g.add_node(op, [b, a] if b_const else [a, b], out_shape, name=op, act=act)]
    av = randn((N,) + tuple(a_shape[1:]), 1, 3.0)
    feeds = {"a": av} if b_const else {"a": av, "b": bv}
    got = FloatExecutor(g).run(feeds)[g.outputs[0]]
    assert_close(got, apply_act(tfn(torch.from_numpy(av), torch.from_numpy(bv)), act).numpy(), f"{op} {b_shape}")


@pytest.mark.parametrize("axis", [3, -1, 1, 2])
def test_concat_matches_torch_cat(axis):
    g = Graph("cat")
    a = g.add_input("a", (1, 4, 5, 3))
    b = g.add_input("b", (1, 4, 5, 3))
    cv = randn((1, 4, 5, 3), 9)
    c = g.add_const("c", cv)
    out = [1, 4, 5, 3]
    out[axis] *= 3
    g.outputs = [g.add_node("concat", [a, c, b], out, name="cat", axis=axis)]
    av, bv = randn((N, 4, 5, 3), 1), randn((N, 4, 5, 3), 2)
    got = FloatExecutor(g).run({"a": av, "b": bv})[g.outputs[0]]
    cb = torch.from_numpy(np.broadcast_to(cv, (N, 4, 5, 3)).copy())
    want = torch.cat([torch.from_numpy(av), cb, torch.from_numpy(bv)], dim=axis)
    assert_close(got, want.numpy(), "concat")


def test_pad_matches_torch_pad():
    g = Graph("pad")
    x = g.add_input("x", (1, 5, 4, 3))
    pads = ((0, 0), (2, 1), (0, 3), (1, 2))
    g.outputs = [g.add_node("pad", [x], (1, 8, 7, 6), name="pad", pads=pads)]
    xv = randn((N, 5, 4, 3), 1)
    flat = [p for pair in reversed(pads) for p in pair]  # torch: last dim first
    assert_close(run1(g, xv), F.pad(torch.from_numpy(xv), flat).numpy(), "pad")


# --------------------------------------------------------------------------------------------------------
# pooling and mean
# --------------------------------------------------------------------------------------------------------
POOL_CASES = [
    # (H, W, kernel, strides, pads)
    (8, 8, (2, 2), (2, 2), (0, 0, 0, 0)),
    (9, 11, (3, 3), (2, 2), (1, 1, 1, 1)),
    (10, 9, (3, 3), (2, 2), (0, 1, 1, 1)),  # TF SAME: extra padding after
    (7, 7, (3, 2), (1, 2), (1, 0, 1, 1)),
    (7, 7, (7, 7), (1, 1), (0, 0, 0, 0)),  # global
    (6, 5, (4, 4), (1, 1), (1, 1, 2, 2)),  # TF SAME, stride 1, even kernel
]


def pool_graph(op, h, w, k, s, p, act=None):
    g = Graph(op)
    x = g.add_input("x", (1, h, w, 4))
    oh = conv_out_size(h, k[0], s[0], 1, p[0], p[2])
    ow = conv_out_size(w, k[1], s[1], 1, p[1], p[3])
    g.outputs = [g.add_node(op, [x], (1, oh, ow, 4), name=op, kernel=k, strides=s, pads=p, act=act)]
    return g


@pytest.mark.parametrize("h,w,k,s,p", POOL_CASES)
def test_max_pool2d_ignores_padding_cells(h, w, k, s, p):
    xv = randn((N, h, w, 4), 1) - 5  # all negative: a zero from the padding would win the max
    t = F.pad(nchw(xv), (p[1], p[3], p[0], p[2]), value=-np.inf)
    want = nhwc(F.max_pool2d(t, k, s))
    assert_close(run1(pool_graph("max_pool2d", h, w, k, s, p), xv), want, "max_pool2d")


@pytest.mark.parametrize("h,w,k,s,p", POOL_CASES)
def test_avg_pool2d_divides_by_real_cells_only(h, w, k, s, p):
    xv = randn((N, h, w, 4), 1)
    got = run1(pool_graph("avg_pool2d", h, w, k, s, p, act="relu6"), xv)
    if p[0] == p[2] and p[1] == p[3]:
        want = F.avg_pool2d(nchw(xv), k, s, padding=(p[0], p[1]), count_include_pad=False)
    else:  # torch pads symmetrically only: mean over the zero-padded window / fraction of real cells
        pad = (p[1], p[3], p[0], p[2])
        want = (F.avg_pool2d(F.pad(nchw(xv), pad), k, s)
                / F.avg_pool2d(F.pad(torch.ones(1, 1, h, w), pad), k, s))
    assert_close(got, nhwc(F.relu6(want)), "avg_pool2d")


@pytest.mark.parametrize("axes,keepdims", [((1, 2), True), ((1, 2), False), ((-1,), False), ((2,), True)])
def test_mean_matches_torch_mean(axes, keepdims):
    g = Graph("mean")
    x = g.add_input("x", (1, 5, 6, 7))
    shape = [1, 5, 6, 7]
    out = [1 if i in [a % 4 for a in axes] else d for i, d in enumerate(shape)]
    if not keepdims:
        out = [d for i, d in enumerate(shape) if i not in [a % 4 for a in axes]]
    g.outputs = [g.add_node("mean", [x], out, name="mean", axes=axes, keepdims=keepdims)]
    xv = randn((N, 5, 6, 7), 1)
    assert_close(run1(g, xv), torch.from_numpy(xv).mean(dim=axes, keepdim=keepdims).numpy(), "mean")


# --------------------------------------------------------------------------------------------------------
# element-wise activations, prelu, softmax
# --------------------------------------------------------------------------------------------------------
UNARY = {
    "relu": torch.relu,
    "relu6": F.relu6,
    "relu_n1_to_1": lambda t: t.clamp(-1, 1),
    "sigmoid": torch.sigmoid,
    "hard_swish": F.hardswish,
    "tanh": torch.tanh,
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_activation_matches_torch(op):
    g = Graph(op)
    x = g.add_input("x", (1, 4, 5, 6))
    g.outputs = [g.add_node(op, [x], (1, 4, 5, 6), name=op)]
    xv = randn((N, 4, 5, 6), 1, 4.0)
    xv[0, 0, 0, :3] = [-200.0, 200.0, 0.0]  # saturation must not warn or produce nan
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = run1(g, xv)
    assert_close(got, UNARY[op](torch.from_numpy(xv)).numpy(), op)


def test_prelu_per_channel_matches_torch_prelu():
    g = Graph("prelu")
    x = g.add_input("x", (1, 4, 5, 6))
    alpha = randn((6,), 2, 0.3)
    g.outputs = [g.add_node("prelu", [x, g.add_const("alpha", alpha)], (1, 4, 5, 6), name="prelu")]
    xv = randn((N, 4, 5, 6), 1)
    assert_close(run1(g, xv), nhwc(F.prelu(nchw(xv), torch.from_numpy(alpha))), "prelu")


@pytest.mark.parametrize("axis,beta", [(-1, 1.0), (-1, 0.5), (1, 2.0)])
def test_softmax_with_beta_matches_torch(axis, beta):
    g = Graph("softmax")
    x = g.add_input("x", (1, 4, 10))
    g.outputs = [g.add_node("softmax", [x], (1, 4, 10), name="sm", axis=axis, beta=beta)]
    xv = randn((N, 4, 10), 1, 10.0)
    assert_close(run1(g, xv), torch.softmax(torch.from_numpy(xv) * beta, dim=axis).numpy(), "softmax")


# --------------------------------------------------------------------------------------------------------
# reshape, transpose, batch handling
# --------------------------------------------------------------------------------------------------------
def test_reshape_stretches_declared_leading_one_over_the_batch():
    g = Graph("reshape")
    x = g.add_input("x", (1, 3, 4, 5))
    r = g.add_node("reshape", [x], (1, 60), name="flat", shape=(1, 60))
    g.outputs = [g.add_node("reshape", [r], (1, 5, 12), name="back", shape=(1, -1, 12))]
    xv = randn((N, 3, 4, 5), 1)
    ex = FloatExecutor(g)
    assert ex.batchable
    assert_close(ex.run(xv)[g.outputs[0]], torch.from_numpy(xv).reshape(N, 5, 12).numpy(), "reshape")


def test_transpose_matches_torch_permute():
    g = Graph("transpose")
    x = g.add_input("x", (1, 3, 4, 5))
    g.outputs = [g.add_node("transpose", [x], (1, 5, 3, 4), name="t", perm=(0, 3, 1, 2))]
    xv = randn((N, 3, 4, 5), 1)
    assert_close(run1(g, xv), torch.from_numpy(xv).permute(0, 3, 1, 2).numpy(), "transpose")


def test_graph_that_moves_the_batch_axis_runs_one_sample_at_a_time():
    g = Graph("tokens")
    x = g.add_input("x", (1, 4, 4, 8))
    t = g.add_node("reshape", [x], (16, 8), name="tokens", shape=(16, 8))  # batch folded into rows
    w = g.add_const("w", randn((3, 8), 2))
    y = g.add_node("fully_connected", [t, w], (16, 3), name="fc")
    s = g.add_node("transpose", [y], (3, 16), name="t", perm=(1, 0))
    g.outputs = [g.add_node("reshape", [s], (1, 48), name="out", shape=(1, 48))]
    ex = FloatExecutor(g)
    assert not ex.batchable
    xv = randn((N, 4, 4, 8), 1)
    got = ex.run(xv)[g.outputs[0]]
    want = np.concatenate([(xv[i].reshape(16, 8) @ randn((3, 8), 2).T).T.reshape(1, 48) for i in range(N)])
    assert_close(got, want, "per-sample fallback")


def test_batched_run_equals_per_sample_runs():
    g, _, _ = conv_graph(*CONV_CASES[1])
    ex = FloatExecutor(g)
    xv = randn((N, 9, 11, 3), 4)
    batched = ex.run(xv)[g.outputs[0]]
    single = np.concatenate([ex.run(xv[i:i + 1])[g.outputs[0]] for i in range(N)])
    np.testing.assert_allclose(batched, single, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------------------
# LiteRT as the oracle: resize, TFLite SAME average pool, depthwise multiplier layout
# --------------------------------------------------------------------------------------------------------
def tflite_run(op: str, options, inputs: list[np.ndarray | tuple[str, np.ndarray]], out_shape) -> np.ndarray:
    """Run one float builtin op through LiteRT. An input given as ("const", array) is stored in the model."""
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="LiteRT oracle needs ai-edge-litert")
    flatbuffers = pytest.importorskip("flatbuffers")
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]
    sub = s.SubGraphT()
    sub.tensors, sub.inputs, feeds = [], [], []
    for k, item in enumerate(inputs):
        t = s.TensorT()
        t.name = f"in{k}".encode()
        t.buffer = 0
        if isinstance(item, tuple):
            arr = np.ascontiguousarray(item[1])
            buf = s.BufferT()
            buf.data = arr.tobytes()
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
        else:
            arr = item
            sub.inputs.append(k)
            feeds.append(arr)
        t.shape = list(arr.shape)
        t.type = s.TensorType.INT32 if arr.dtype == np.int32 else s.TensorType.FLOAT32
        sub.tensors.append(t)
    out = s.TensorT()
    out.name, out.buffer, out.shape, out.type = b"out", 0, list(out_shape), s.TensorType.FLOAT32
    sub.tensors.append(out)
    sub.outputs = [len(sub.tensors) - 1]
    code = s.OperatorCodeT()
    code.builtinCode = getattr(s.BuiltinOperator, op)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    model.operatorCodes = [code]
    node = s.OperatorT()
    node.opcodeIndex, node.inputs, node.outputs = 0, list(range(len(inputs))), sub.outputs
    node.builtinOptionsType = getattr(s.BuiltinOptions, type(options).__name__[:-1])
    node.builtinOptions = options
    sub.operators = [node]
    model.subgraphs = [sub]
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    interp = litert.Interpreter(model_content=bytes(b.Output()),
                                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    for detail, arr in zip(interp.get_input_details(), feeds):
        interp.set_tensor(detail["index"], arr)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


RESIZE_SIZES = [((4, 5), (8, 10)), ((5, 7), (12, 9)), ((9, 8), (4, 3)), ((3, 3), (1, 1)), ((1, 4), (5, 7))]
RESIZE_FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def resize_graph(hw, out, mode, align, half):
    g = Graph("resize")
    x = g.add_input("x", (1, *hw, 3))
    g.outputs = [g.add_node("resize", [x], (1, *out, 3), name="resize", size=out, mode=mode, align_corners=align,
                            half_pixel_centers=half)]
    return g


@pytest.mark.parametrize("hw,out", RESIZE_SIZES)
@pytest.mark.parametrize("align,half", RESIZE_FLAGS)
def test_resize_nearest_matches_tflite(hw, out, align, half):
    from ai_edge_litert import schema_py_generated as s
    xv = randn((N, *hw, 3), 1)
    opts = s.ResizeNearestNeighborOptionsT()
    opts.alignCorners, opts.halfPixelCenters = align, half
    want = tflite_run("RESIZE_NEAREST_NEIGHBOR", opts, [xv, ("const", np.array(out, np.int32))], (N, *out, 3))
    np.testing.assert_array_equal(run1(resize_graph(hw, out, "nearest", align, half), xv), want)


@pytest.mark.parametrize("hw,out", RESIZE_SIZES)
@pytest.mark.parametrize("align,half", RESIZE_FLAGS[:3])
def test_resize_bilinear_matches_tflite(hw, out, align, half):
    from ai_edge_litert import schema_py_generated as s
    xv = randn((N, *hw, 3), 1)
    opts = s.ResizeBilinearOptionsT()
    opts.alignCorners, opts.halfPixelCenters = align, half
    want = tflite_run("RESIZE_BILINEAR", opts, [xv, ("const", np.array(out, np.int32))], (N, *out, 3))
    assert_close(run1(resize_graph(hw, out, "bilinear", align, half), xv), want, f"bilinear {align=} {half=}")


@pytest.mark.parametrize("hw,out", RESIZE_SIZES)
@pytest.mark.parametrize("align", [True, False])
def test_resize_bilinear_matches_torch_interpolate(hw, out, align):
    # torch align_corners=False is TFLite's half_pixel_centers=True (both clamp the source to the edge).
    xv = randn((N, *hw, 3), 1)
    want = nhwc(F.interpolate(nchw(xv), size=out, mode="bilinear", align_corners=align))
    assert_close(run1(resize_graph(hw, out, "bilinear", align, not align), xv), want, "bilinear vs torch")


def test_resize_nearest_legacy_is_floor_of_scaled_index():
    # The documented formula, written out: in = min(floor(out * in_size / out_size), in_size - 1).
    xv = np.arange(N * 5 * 7 * 3, dtype=np.float32).reshape(N, 5, 7, 3)
    got = run1(resize_graph((5, 7), (3, 16), "nearest", False, False), xv)
    iy = [min(int(np.floor(i * 5 / 3)), 4) for i in range(3)]
    ix = [min(int(np.floor(i * 7 / 16)), 6) for i in range(16)]
    np.testing.assert_array_equal(got, xv[:, iy][:, :, ix])


@pytest.mark.parametrize("h,w,k,s", [(9, 10, 3, 2), (7, 7, 4, 1), (8, 5, 2, 3)])
def test_avg_pool2d_with_same_pads_matches_tflite(h, w, k, s):
    from ai_edge_litert import schema_py_generated as sch
    pt, pb = same_pads(h, k, s)
    pl, pr = same_pads(w, k, s)
    g = pool_graph("avg_pool2d", h, w, (k, k), (s, s), (pt, pl, pb, pr))
    opts = sch.Pool2DOptionsT()
    opts.padding, opts.strideH, opts.strideW, opts.filterHeight, opts.filterWidth = sch.Padding.SAME, s, s, k, k
    xv = randn((N, h, w, 4), 1)
    want = tflite_run("AVERAGE_POOL_2D", opts, [xv], (N, -(-h // s), -(-w // s), 4))
    assert_close(run1(g, xv), want, "avg_pool2d vs TFLite")


def test_depthwise_multiplier_layout_matches_tflite():
    from ai_edge_litert import schema_py_generated as sch
    h, w, c, m, k, s = 9, 8, 3, 2, 3, 2
    pt, pb = same_pads(h, k, s)
    pl, pr = same_pads(w, k, s)
    g, wt, b = dw_graph(h, w, c, m, k, (s, s), (1, 1), (pt, pl, pb, pr), True, "relu6")
    opts = sch.DepthwiseConv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW, opts.depthMultiplier = sch.Padding.SAME, s, s, m
    opts.dilationHFactor = opts.dilationWFactor = 1
    opts.fusedActivationFunction = sch.ActivationFunctionType.RELU6
    xv = randn((N, h, w, c), 1)
    want = tflite_run("DEPTHWISE_CONV_2D", opts, [xv, ("const", wt), ("const", b)], (N, 5, 4, c * m))
    assert_close(run1(g, xv), want, "depthwise vs TFLite")


# --------------------------------------------------------------------------------------------------------
# keep / freeing / validation
# --------------------------------------------------------------------------------------------------------
def chain_graph() -> Graph:
    g = Graph("chain")
    x = g.add_input("x", (1, 6, 6, 3))
    c, _, _ = conv_graph(6, 6, 3, 4, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), True, None)
    w = g.add_const("w", c.const("w"))
    a = g.add_node("conv2d", [x, w], (1, 6, 6, 4), name="conv", strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1),
                   act="relu")
    r = g.add_node("sigmoid", [a], (1, 6, 6, 4), name="sig")
    s = g.add_node("add", [a, r], (1, 6, 6, 4), name="sum")
    m = g.add_node("mean", [s], (1, 4), name="pool", axes=(1, 2), keepdims=False)
    g.add_node("tanh", [s], (1, 6, 6, 4), name="unused")
    g.outputs = [m, r]
    return g


def test_default_run_returns_only_the_outputs():
    g = chain_graph()
    out = FloatExecutor(g).run(randn((N, 6, 6, 3)))
    assert sorted(out) == sorted(g.outputs)
    assert out["pool"].shape == (N, 4) and out["sig"].shape == (N, 6, 6, 4)


def test_keep_true_returns_every_activation():
    g = chain_graph()
    out = FloatExecutor(g).run(randn((N, 6, 6, 3)), keep=True)
    assert sorted(out) == sorted(t.name for t in g.activations())
    for name, v in out.items():
        assert v.shape == (N,) + g.tensors[name].shape[1:], name


def test_keep_names_returns_outputs_plus_those():
    g = chain_graph()
    ex = FloatExecutor(g)
    xv = randn((N, 6, 6, 3))
    out = ex.run(xv, keep=["conv", "x"])
    assert sorted(out) == sorted(g.outputs + ["conv", "x"])
    np.testing.assert_array_equal(out["pool"], ex.run(xv)["pool"])


def test_every_intermediate_is_freed_exactly_once_after_its_last_reader():
    g = chain_graph()
    ex = FloatExecutor(g)
    freed = [f for s in ex._steps for f in s.frees]
    assert sorted(freed) == sorted(t.name for t in g.activations() if t.name not in g.outputs)
    order = {s.out: k for k, s in enumerate(ex._steps)}
    where = {f: k for k, s in enumerate(ex._steps) for f in s.frees}
    assert where["conv"] == order["sum"]  # read by sig and sum; sum runs last
    assert where["unused"] == order["unused"]  # nobody reads it: dropped at once


def test_run_does_not_modify_inputs_or_constants():
    g = chain_graph()
    xv = randn((N, 6, 6, 3))
    x0, w0 = xv.copy(), g.const("w").copy()
    FloatExecutor(g).run(xv, keep=True)
    np.testing.assert_array_equal(xv, x0)
    np.testing.assert_array_equal(g.const("w"), w0)


def test_single_array_input_needs_a_single_input_graph():
    g = Graph("two")
    a, b = g.add_input("a", (1, 2)), g.add_input("b", (1, 2))
    g.outputs = [g.add_node("add", [a, b], (1, 2), name="add")]
    with pytest.raises(ValueError, match="pass a dict"):
        FloatExecutor(g).run(np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="missing"):
        FloatExecutor(g).run({"a": np.zeros((1, 2), np.float32)})


def test_wrong_input_shape_names_expected_shape():
    g = chain_graph()
    with pytest.raises(ValueError, match=r"expected \[N, 6, 6, 3\]"):
        FloatExecutor(g).run(np.zeros((2, 6, 6, 4), np.float32))


def test_unknown_keep_name_is_refused():
    with pytest.raises(ValueError, match="nope"):
        FloatExecutor(chain_graph()).run(randn((1, 6, 6, 3)), keep=["nope"])


def test_non_constant_conv_weight_is_refused_at_construction():
    g = Graph("bad")
    x = g.add_input("x", (1, 4, 4, 2))
    w = g.add_input("w", (3, 1, 1, 2))
    g.outputs = [g.add_node("conv2d", [x, w], (1, 4, 4, 3), name="c", strides=(1, 1), dilations=(1, 1),
                            pads=(0, 0, 0, 0))]
    with pytest.raises(ConversionError, match="'c'.*must be a constant"):
        FloatExecutor(g)


def test_conv_channel_mismatch_is_refused_at_construction():
    g, _, _ = conv_graph(6, 6, 3, 4, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), True, None)
    g.tensors["w"].data = np.zeros((4, 3, 3, 2), np.float32)
    with pytest.raises(ConversionError, match="2 input channels but the input has 3"):
        FloatExecutor(g)


def test_every_ir_op_has_a_kernel():
    missing = sorted(set(OPS) - set(float_exec._BUILDERS))
    assert not missing, f"ir ops without a kernel: {missing}"


def test_mobilenet_block_pipeline_matches_torch():
    """An end-to-end stack: conv -> depthwise -> pointwise -> residual add -> mean -> fc -> softmax."""
    g = Graph("block")
    x = g.add_input("x", (1, 16, 16, 3))
    w1, b1 = randn((8, 3, 3, 3), 1, 0.3), randn((8,), 2)
    w2, b2 = randn((1, 3, 3, 8), 3, 0.3), randn((8,), 4)
    w3, b3 = randn((8, 1, 1, 8), 5, 0.3), randn((8,), 6)
    wf, bf = randn((5, 8), 7), randn((5,), 8)
    t1 = g.add_node("conv2d", [x, g.add_const("w1", w1), g.add_const("b1", b1)], (1, 8, 8, 8), name="stem",
                    strides=(2, 2), dilations=(1, 1), pads=(0, 0, 1, 1), act="relu6")
    t2 = g.add_node("depthwise_conv2d", [t1, g.add_const("w2", w2), g.add_const("b2", b2)], (1, 8, 8, 8), name="dw",
                    strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1), multiplier=1, act="relu6")
    t3 = g.add_node("conv2d", [t2, g.add_const("w3", w3), g.add_const("b3", b3)], (1, 8, 8, 8), name="pw",
                    strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0))
    t4 = g.add_node("add", [t3, t1], (1, 8, 8, 8), name="res")
    t5 = g.add_node("mean", [t4], (1, 8), name="gap", axes=(1, 2), keepdims=False)
    t6 = g.add_node("fully_connected", [t5, g.add_const("wf", wf), g.add_const("bf", bf)], (1, 5), name="fc")
    g.outputs = [g.add_node("softmax", [t6], (1, 5), name="prob", axis=-1)]

    xv = randn((N, 16, 16, 3), 9)
    a = torch.from_numpy(torch_conv(xv, w1, b1, (2, 2), (1, 1), (0, 0, 1, 1), "relu6").copy())
    d = F.relu6(F.conv2d(F.pad(a.permute(0, 3, 1, 2), (1, 1, 1, 1)),
                         torch.from_numpy(np.ascontiguousarray(w2[0].transpose(2, 0, 1)[:, None])),
                         torch.from_numpy(b2), groups=8))
    p = F.conv2d(d, torch.from_numpy(np.ascontiguousarray(w3.transpose(0, 3, 1, 2))), torch.from_numpy(b3))
    r = (p + a.permute(0, 3, 1, 2)).mean(dim=(2, 3))
    want = torch.softmax(F.linear(r, torch.from_numpy(wf), torch.from_numpy(bf)), dim=-1)
    assert_close(run1(g, xv), want.numpy(), "pipeline")


@pytest.mark.parametrize("h,w,k,s,d", list(itertools.product([11, 16], [9], [3, 5], [1, 2], [1, 2])))
def test_conv2d_tf_same_padding_matches_torch(h, w, k, s, d):
    pt, pb = same_pads(h, k, s, d)
    pl, pr = same_pads(w, k, s, d)
    case = (h, w, 3, 4, k, k, (s, s), (d, d), (pt, pl, pb, pr), True, "relu")
    g, wt, b = conv_graph(*case)
    x = randn((N, h, w, 3), 2)
    assert_close(run1(g, x), torch_conv(x, wt, b, (s, s), (d, d), (pt, pl, pb, pr), "relu"), f"conv SAME {case}")
