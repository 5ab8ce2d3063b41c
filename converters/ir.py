"""The converter's graph: a small, framework-neutral float network in NHWC layout.

Every importer (ONNX, Keras, float TFLite) produces a :class:`Graph`; passes rewrite it; calibration runs it
with :mod:`converters.float_exec`; quantization annotates it; the writer turns it into an int8 TFLite file.

Conventions
-----------
* Activations of rank 4 are NHWC. Importers from NCHW frameworks transpose constants and remap axes.
* A tensor is either a graph input, a constant (``data`` is a float32/int array), or produced by exactly one
  node. Constants are shared read-only numpy arrays.
* ``Node.name`` is the name the user knows the node by (the ONNX node name, the Keras layer name ...); errors
  about a node use it.
* Batch size is always 1 in a converted model (edge inference); the calibration executor broadcasts over any
  leading batch.

Operators (``Node.op``) and their inputs / attributes
-----------------------------------------------------
conv2d            x[N,H,W,C], w[O,KH,KW,C], b[O]?   strides=(sh,sw) dilations=(dh,dw) pads=(top,left,bottom,right) act
depthwise_conv2d  x[N,H,W,C], w[1,KH,KW,C*M], b[C*M]?  strides dilations pads multiplier=M act
fully_connected   x[N,K], w[O,K], b[O]?             act
add, mul          a, b (numpy broadcasting; either may be a constant)   act
concat            x0, x1, ...                        axis   act
pad               x                                  pads=((before, after), ...) one pair per dim (zero padding)
max_pool2d        x                                  kernel=(kh,kw) strides pads act
avg_pool2d        x                                  kernel strides pads act  (padding cells are not counted)
mean              x                                  axes=(...) keepdims
relu, relu6, relu_n1_to_1, sigmoid, hard_swish, tanh   x
prelu             x, alpha (broadcastable constant)
softmax           x                                  axis=-1 beta=1.0
reshape           x                                  shape=(...)   (fully static)
transpose         x                                  perm=(...)
resize            x                                  size=(oh,ow) mode="bilinear"|"nearest" align_corners half_pixel_centers

``act`` is one of ``None``, ``"relu"``, ``"relu6"``, ``"relu_n1_to_1"`` (a fused activation, as TFLite has).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator

import numpy as np

ACTIVATIONS = (None, "relu", "relu6", "relu_n1_to_1")

# Ops the graph may hold, with the attributes each requires. Validation in one place (Graph.check).
OPS: dict[str, tuple[str, ...]] = {
    "conv2d": ("strides", "dilations", "pads"),
    "depthwise_conv2d": ("strides", "dilations", "pads", "multiplier"),
    "fully_connected": (),
    "add": (),
    "mul": (),
    "concat": ("axis",),
    "pad": ("pads",),
    "max_pool2d": ("kernel", "strides", "pads"),
    "avg_pool2d": ("kernel", "strides", "pads"),
    "mean": ("axes", "keepdims"),
    "relu": (),
    "relu6": (),
    "relu_n1_to_1": (),
    "sigmoid": (),
    "hard_swish": (),
    "tanh": (),
    "prelu": (),
    "softmax": ("axis",),
    "reshape": ("shape",),
    "transpose": ("perm",),
    "resize": ("size", "mode"),
}

# Ops that accept a fused activation.
# (CONCATENATION is not here: LiteRT rejects a fused activation on it.)
FUSABLE = {"conv2d", "depthwise_conv2d", "fully_connected", "add", "mul", "max_pool2d", "avg_pool2d"}


class ConversionError(Exception):
    """A user-facing conversion failure: the message says what was found, what was expected, what to do."""


class DynamicShapeError(ConversionError):
    """The model's input has open dimensions and no size was given (the converter then tries the
    calibration images' size)."""


@dataclasses.dataclass
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per channel along ``axis``."""

    scale: np.ndarray  # float32, shape [1] or [channels]
    zero_point: np.ndarray  # int64, same shape
    dtype: str = "int8"  # int8 | int32 (bias) | uint8 (model input option)
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclasses.dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    data: np.ndarray | None = None
    quant: QuantParams | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None


@dataclasses.dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = ""

    @property
    def act(self) -> str | None:
        return self.attrs.get("act")


class Graph:
    """Tensors by name, nodes in topological order, named inputs and outputs."""

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self._counter = 0

    # -- building -------------------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name = base
        while name in self.tensors:
            self._counter += 1
            name = f"{base}_{self._counter}"
        return name

    def add_tensor(self, name: str, shape: Iterable[int], data: np.ndarray | None = None) -> Tensor:
        if name in self.tensors:
            raise ValueError(f"tensor {name!r} defined twice")
        t = Tensor(name, tuple(int(d) for d in shape), data)
        self.tensors[name] = t
        return t

    def add_const(self, base: str, data: np.ndarray) -> str:
        data = np.asarray(data)
        if data.dtype == np.float64:
            data = data.astype(np.float32)
        name = self.unique(base)
        self.add_tensor(name, data.shape, data)
        return name

    def add_input(self, name: str, shape: Iterable[int]) -> str:
        self.add_tensor(name, shape)
        self.inputs.append(name)
        return name

    def add_node(self, op: str, inputs: list[str], out_shape: Iterable[int], *, name: str,
                 out: str | None = None, **attrs: Any) -> str:
        """Append a node producing one new tensor; returns the output tensor's name."""
        out_name = self.unique(out or name or op)
        self.add_tensor(out_name, out_shape)
        self.nodes.append(Node(op, list(inputs), [out_name], dict(attrs), name or out_name))
        return out_name

    # -- queries --------------------------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def const(self, name: str) -> np.ndarray | None:
        return self.tensors[name].data

    def activations(self) -> Iterator[Tensor]:
        """Non-constant tensors: the graph inputs and every node output."""
        for t in self.tensors.values():
            if t.data is None:
                yield t

    # -- editing --------------------------------------------------------------------------------------
    def replace_uses(self, old: str, new: str) -> None:
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_node(self, node: Node) -> None:
        self.nodes.remove(node)

    def prune(self) -> None:
        """Drop nodes and tensors that no graph output depends on."""
        live = set(self.outputs)
        kept: list[Node] = []
        for n in reversed(self.nodes):
            if any(o in live for o in n.outputs):
                kept.append(n)
                live.update(n.inputs)
        self.nodes = kept[::-1]
        live.update(self.inputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in live}

    def toposort(self) -> None:
        ready = set(self.inputs) | {t.name for t in self.tensors.values() if t.is_const}
        pending, ordered = list(self.nodes), []
        while pending:
            progress = False
            for n in list(pending):
                if all(i in ready for i in n.inputs):
                    ordered.append(n)
                    ready.update(n.outputs)
                    pending.remove(n)
                    progress = True
            if not progress:
                names = ", ".join(n.name for n in pending[:5])
                raise ConversionError(f"the graph has a cycle or a missing input around: {names}")
        self.nodes = ordered

    def check(self) -> None:
        """Structural validation: every op known with its attributes, every input defined before use."""
        defined = set(self.inputs) | {t.name for t in self.tensors.values() if t.is_const}
        for n in self.nodes:
            if n.op not in OPS:
                raise ConversionError(f"internal: node {n.name!r} has unknown op {n.op!r}")
            missing = [a for a in OPS[n.op] if a not in n.attrs]
            if missing:
                raise ConversionError(f"internal: node {n.name!r} ({n.op}) lacks attributes {missing}")
            if n.act not in ACTIVATIONS or (n.act and n.op not in FUSABLE):
                raise ConversionError(f"internal: node {n.name!r} ({n.op}) has bad fused activation {n.act!r}")
            for i in n.inputs:
                if i not in defined:
                    raise ConversionError(f"internal: node {n.name!r} reads {i!r} before it is produced")
            defined.update(n.outputs)
        for o in self.outputs:
            if o not in defined:
                raise ConversionError(f"internal: graph output {o!r} is never produced")

    def summary(self) -> str:
        lines = [f"graph {self.name}: inputs {self.inputs} outputs {self.outputs}"]
        for n in self.nodes:
            ins = ", ".join(f"{i}{list(self.tensors[i].shape)}" for i in n.inputs)
            lines.append(f"  {n.op:<18} {n.name}: ({ins}) -> {n.outputs[0]}{list(self.tensors[n.outputs[0]].shape)}"
                         + (f" act={n.act}" if n.act else ""))
        return "\n".join(lines)


def same_pads(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow/TFLite SAME padding for one spatial dimension: (before, after); extra goes after."""
    eff = (kernel - 1) * dilation + 1
    out = -(-in_size // stride)
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2, total - total // 2


def padding_mode(g: "Graph", node: Node) -> str | None:
    """"VALID", "SAME" or None (neither) for the explicit pads of a convolution or pooling node."""
    pads = tuple(node.attrs["pads"])
    if not any(pads):
        return "VALID"
    if node.op in ("conv2d", "depthwise_conv2d"):
        kh, kw = g.const(node.inputs[1]).shape[1:3]
        dh, dw = node.attrs["dilations"]
    else:
        (kh, kw), (dh, dw) = node.attrs["kernel"], (1, 1)
    _, h, w, _ = g.tensors[node.inputs[0]].shape
    sh, sw = node.attrs["strides"]
    ph, pw = same_pads(h, kh, sh, dh), same_pads(w, kw, sw, dw)
    return "SAME" if (ph[0], pw[0], ph[1], pw[1]) == pads else None


def conv_out_size(in_size: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    eff = (kernel - 1) * dilation + 1
    return (in_size + before + after - eff) // stride + 1
