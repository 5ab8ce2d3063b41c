"""Float TFLite importer: a float32 ``.tflite`` file becomes a :class:`converters.ir.Graph`.

TFLite already uses the graph's conventions (NHWC activations, OHWI conv weights, [1,KH,KW,C*M] depthwise
weights, [O,K] fully-connected weights, fused activations), so import is mostly a one-to-one mapping. The
work is in the details:

* Constants may sit inside the flatbuffer (``Buffer.data``) or after it (``Buffer.offset``/``size``, the
  layout TFLite uses for files over 2 GB); both are read.
* fp16-weight models store weights as float16 behind ``DEQUANTIZE``; "dynamic range" models store int8
  weights (behind ``DEQUANTIZE``, or read directly by hybrid kernels). Every such constant is folded into a
  float32 constant, so the graph never holds a DEQUANTIZE.
* Shapes are inferred here, from the inputs, rather than trusted from the file: the file's shapes are
  placeholders wherever the model has dynamic dimensions. A dynamic batch becomes 1; other dynamic input
  dimensions come from ``input_shape``.
* With a SignatureDef the graph's inputs and outputs follow the signature's order and names; without one,
  subgraph 0's input and output tensors (named as in the file).

Everything is checked while importing, so an unsupported model fails here with a message that names the
operator, its index and tensors, and says what to do.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

from converters.ir import ConversionError, Graph, conv_out_size, same_pads

try:
    from ai_edge_litert import schema_py_generated as _fb
except ImportError:  # pragma: no cover - depends on the install
    _fb = None

_FILE_IDENTIFIER = b"TFL3"

# TensorType -> numpy dtype for constants we can read (all little-endian, as TFLite stores them).
_NUMPY_TYPES = {
    0: np.dtype("<f4"),  # FLOAT32
    1: np.dtype("<f2"),  # FLOAT16
    2: np.dtype("<i4"),  # INT32
    3: np.dtype("u1"),  # UINT8
    4: np.dtype("<i8"),  # INT64
    6: np.dtype("?"),  # BOOL
    7: np.dtype("<i2"),  # INT16
    9: np.dtype("i1"),  # INT8
    10: np.dtype("<f8"),  # FLOAT64
}
_QUANTIZED_ACTIVATION_TYPES = {3, 7, 9}  # UINT8, INT16, INT8

_FUSED_ACTIVATIONS = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}

SUPPORTED_OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "DIV", "CONCATENATION", "PAD",
    "PADV2", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC",
    "HARD_SWISH", "TANH", "PRELU", "LEAKY_RELU", "SOFTMAX", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "QUANTIZE", "DEQUANTIZE",
)


def _enum_names(cls: Any) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def import_tflite(path_or_bytes: str | os.PathLike | bytes | bytearray | memoryview,
                  input_shape: tuple[int, ...] | None = None) -> Graph:
    """Read a float32 TFLite model into a :class:`Graph`.

    ``path_or_bytes`` is a file path or the file's contents. ``input_shape`` fixes the dynamic dimensions
    of the first input (in signature order); a dynamic batch becomes 1 without it. Raises
    :class:`ConversionError` for anything that is not a supported float model.
    """
    if _fb is None:
        raise ConversionError("reading .tflite files needs the 'ai-edge-litert' package (its flatbuffer schema); "
                              "install it with: pip install 'edgevision[convert]'")
    data, label, source = _read(path_or_bytes)
    return _Importer(data, label, source, input_shape).run()


def _read(path_or_bytes: Any) -> tuple[bytes, str, str]:
    """(contents, graph name, how messages refer to the model)."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "model", "the given model bytes"
    if not isinstance(path_or_bytes, (str, os.PathLike)):
        raise ConversionError("import_tflite takes a file path or the file's bytes; "
                              f"got {type(path_or_bytes).__name__}")
    path = os.fspath(path_or_bytes)
    if not os.path.exists(path):
        raise ConversionError(f"TFLite model {path!r} not found: check the path")
    if os.path.isdir(path):
        raise ConversionError(f"{path!r} is a directory, not a .tflite file (a SavedModel folder must first be "
                              "converted with TensorFlow's TFLiteConverter, or imported through the Keras importer)")
    with open(path, "rb") as f:
        data = f.read()
    return data, os.path.splitext(os.path.basename(path))[0] or "model", repr(path)


class _Importer:
    def __init__(self, data: bytes, label: str, source: str, input_shape: tuple[int, ...] | None) -> None:
        self.data = data
        self.label = label
        self.source = source
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        if len(data) < 8 or data[4:8] != _FILE_IDENTIFIER:
            found = repr(data[4:8]) if len(data) >= 8 else f"only {len(data)} bytes"
            raise ConversionError(
                f"{self.source} is not a TFLite model: expected the flatbuffer identifier 'TFL3' at byte 4, found "
                f"{found}. Pass a .tflite file (ONNX and Keras models have their own importers).")
        try:
            self.model = _fb.ModelT.InitFromPackedBuf(data, 0)
        except Exception as e:  # a corrupt flatbuffer raises anything from struct.error to IndexError
            raise ConversionError(f"{self.source} has a TFLite identifier but cannot be parsed "
                                  f"({type(e).__name__}: {e}); "
                                  "the file is truncated or corrupt: export it again") from None
        self.op_names = _enum_names(_fb.BuiltinOperator)
        self.type_names = _enum_names(_fb.TensorType)

    # -- top level ------------------------------------------------------------------------------------------
    def run(self) -> Graph:
        m = self.model
        if not m.subgraphs:
            raise ConversionError(f"{self.source} has no subgraph: the file is empty or corrupt")
        sg_index, ins, outs = self._entry_points()
        self.sg = sg = m.subgraphs[sg_index]
        self.tensors = sg.tensors or []
        self.names = self._tensor_names(ins, outs)
        self.graph = Graph(self.label)
        self.reserved = set(self.names)
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> value (real-valued for quantized types)
        self.ir: dict[int, str] = {}  # tensor index -> name in the graph (activations, materialised constants)

        self._check_indices(sg, ins, outs)
        self._check_float(sg)
        for i in range(len(self.tensors)):
            value = self._buffer_value(i)
            if value is not None:
                self.consts[i] = value
        for pos, t in enumerate(ins):
            if t in self.consts:
                raise ConversionError(f"model input {self.names[t]!r} is a constant; the model file is malformed")
            shape = self._input_shape(t, pos)
            self.shapes[t] = shape
            self.ir[t] = self.graph.add_input(self.names[t], shape)

        for k, op in enumerate(sg.operators or []):
            name = self._op_name(op)
            handler = _HANDLERS.get(name)
            if handler is None:
                raise self._unsupported(k, op, name)
            handler(_Op(self, k, name, op))

        for t in outs:
            if t not in self.ir:
                if t in self.consts:
                    self._value(t)
                else:
                    raise ConversionError(f"model output {self.names[t]!r} is produced by no operator; "
                                          "the model file is malformed")
            self.graph.outputs.append(self.ir[t])
        self.graph.check()
        return self.graph

    def _entry_points(self) -> tuple[int, list[int], list[int]]:
        sigs = self.model.signatureDefs or []
        if sigs:
            keys = [_text(s.signatureKey) for s in sigs]
            sig = sigs[keys.index("serving_default")] if "serving_default" in keys else sigs[0]
            sg_index = sig.subgraphIndex
            if not 0 <= sg_index < len(self.model.subgraphs):
                raise ConversionError(f"signature {_text(sig.signatureKey)!r} points at subgraph {sg_index}, which "
                                      "does not exist; the model file is malformed")
            self.sig_names = {}
            ins = [tm.tensorIndex for tm in sig.inputs or []]
            outs = [tm.tensorIndex for tm in sig.outputs or []]
            for tm in list(sig.inputs or []) + list(sig.outputs or []):
                self.sig_names.setdefault(tm.tensorIndex, _text(tm.name))
            return sg_index, ins, outs
        self.sig_names = {}
        sg = self.model.subgraphs[0]
        return 0, _ints(sg.inputs), _ints(sg.outputs)

    def _tensor_names(self, ins: list[int], outs: list[int]) -> list[str]:
        """One unique name per tensor: signature names first, then the file's names (which may repeat)."""
        names: list[str | None] = [None] * len(self.tensors)
        used: set[str] = set()
        order = [t for t in ins + outs if t in self.sig_names] + list(range(len(self.tensors)))
        for t in order:
            if names[t] is not None:
                continue
            base = self.sig_names.get(t) or _text(self.tensors[t].name) or f"tensor_{t}"
            name, n = base, 0
            while name in used:
                n += 1
                name = f"{base}_{n}"
            names[t] = name
            used.add(name)
        return names  # type: ignore[return-value]

    def _check_indices(self, sg: Any, ins: list[int], outs: list[int]) -> None:
        n = len(self.tensors)
        where = [("model inputs", ins), ("model outputs", outs)] + [
            (f"operator #{k}", _ints(op.inputs) + _ints(op.outputs)) for k, op in enumerate(sg.operators or [])]
        for what, idx in where:
            bad = [t for t in idx if not -1 <= t < n]
            if bad:
                raise ConversionError(f"{what} refer to tensor(s) {bad}, but the subgraph has {n} tensors: "
                                      f"{self.source} is corrupt; export it again")

    def _check_float(self, sg: Any) -> None:
        """Refuse already-quantized models up front, before any per-op message could mislead."""
        # Tensors computed from constants alone (QUANTIZE of a weight ...) are folded, not run: they may be int8.
        const_like = {t for t in range(len(self.tensors)) if self._has_buffer(t)}
        for op in sg.operators or []:
            if all(t in const_like for t in _ints(op.inputs) if t >= 0):
                const_like.update(_ints(op.outputs))
        for k, op in enumerate(sg.operators or []):
            for t in _ints(op.inputs) + _ints(op.outputs):
                if t < 0:
                    continue
                tensor = self.tensors[t]
                if tensor.type in _QUANTIZED_ACTIVATION_TYPES and t not in const_like:
                    raise ConversionError(
                        f"{self.source} is already quantized: operator #{k} {self._op_name(op)} "
                        f"{'reads' if t in _ints(op.inputs) else 'writes'} {self.type_names[tensor.type]} tensor "
                        f"{self.names[t]!r}. The importer takes float32 models (fp16 or int8 weights are fine, "
                        "activations must be float32). An int8 TFLite model is already what this converter "
                        "produces: use it directly.")
        for t in _ints(sg.inputs):
            if self.tensors[t].type in _QUANTIZED_ACTIVATION_TYPES:
                raise ConversionError(f"{self.source} is already quantized: input {self.names[t]!r} is "
                                      f"{self.type_names[self.tensors[t].type]}; use the model directly")

    # -- tensors --------------------------------------------------------------------------------------------
    def _has_buffer(self, t: int) -> bool:
        return self._buffer_bytes(t) is not None

    def _buffer_bytes(self, t: int) -> bytes | np.ndarray | None:
        tensor = self.tensors[t]
        if getattr(tensor, "externalBuffer", 0):
            raise ConversionError(f"tensor {self.names[t]!r} keeps its data in an external buffer group (a separate "
                                  "weights file), which the importer does not read; export a self-contained .tflite")
        b = tensor.buffer
        if b <= 0 or b >= len(self.model.buffers or []):
            return None
        buf = self.model.buffers[b]
        if buf.data is not None and len(buf.data) > 0:
            return buf.data
        if buf.offset > 1 and buf.size > 0:  # data after the flatbuffer; offset counts from the file's start
            end = buf.offset + buf.size
            if end > len(self.data):
                raise ConversionError(f"tensor {self.names[t]!r} points at bytes {buf.offset}..{end} but the file has "
                                      f"only {len(self.data)} bytes: the .tflite file is truncated")
            return self.data[buf.offset:end]
        return None

    def _buffer_value(self, t: int) -> np.ndarray | None:
        raw = self._buffer_bytes(t)
        if raw is None:
            return None
        tensor = self.tensors[t]
        dtype = _NUMPY_TYPES.get(tensor.type)
        if dtype is None:
            kind = self.type_names.get(tensor.type, tensor.type)
            raise ConversionError(f"constant {self.names[t]!r} has type {kind}, "
                                  "which the importer cannot read (supported: float32, float16, int8, uint8, int16, "
                                  "int32, int64, bool)")
        if tensor.sparsity is not None:
            raise ConversionError(f"constant {self.names[t]!r} is stored sparse; the importer needs dense weights: "
                                  "convert without sparsity optimizations")
        shape = tuple(_ints(tensor.shape))
        raw_bytes = bytes(raw) if isinstance(raw, np.ndarray) else raw
        count = int(np.prod(shape)) if shape else 1
        if len(raw_bytes) != count * dtype.itemsize:
            raise ConversionError(f"constant {self.names[t]!r} of shape {list(shape)} needs {count * dtype.itemsize} "
                                  f"bytes but its buffer has {len(raw_bytes)}: the model file is corrupt")
        value = np.frombuffer(raw_bytes, dtype=dtype).reshape(shape)
        value = self._dequantize(t, value)
        value = value.astype(value.dtype.newbyteorder("="), copy=True)
        value.flags.writeable = False
        return value

    def _dequantize(self, t: int, q: np.ndarray) -> np.ndarray:
        """Real value of an int constant carrying a scale (dynamic-range weights); others pass through."""
        quant = self.tensors[t].quantization
        if quant is None or quant.scale is None or len(quant.scale) == 0 or q.dtype.kind not in "iu":
            return q if q.dtype != np.float16 else q.astype(np.float32)
        if self.tensors[t].type not in _QUANTIZED_ACTIVATION_TYPES:
            return q  # an int32 bias of an int8 model: never reached for float models
        scale = np.asarray(quant.scale, dtype=np.float32)
        zp = np.asarray(quant.zeroPoint if quant.zeroPoint is not None else [0], dtype=np.float32)
        if scale.size > 1:
            bshape = [1] * q.ndim
            bshape[quant.quantizedDimension] = scale.size
            scale = scale.reshape(bshape)
            zp = zp.reshape(bshape) if zp.size == scale.size else zp.reshape(())
        return ((q.astype(np.float32) - zp) * scale).astype(np.float32)

    def _input_shape(self, t: int, pos: int) -> tuple[int, ...]:
        tensor = self.tensors[t]
        name = self.names[t]
        if tensor.type != 0:
            raise ConversionError(f"model input {name!r} is {self.type_names.get(tensor.type, tensor.type)}; the "
                                  "importer takes float32 models")
        dims = _ints(tensor.shapeSignature) or _ints(tensor.shape)
        given = self.input_shape if pos == 0 else None
        if given is not None:
            if len(given) != len(dims):
                raise ConversionError(f"input_shape {given} has rank {len(given)} but model input {name!r} has shape "
                                      f"{_fmt(dims)} (rank {len(dims)})")
            for i, (d, g) in enumerate(zip(dims, given)):
                if d != -1 and d != g:
                    raise ConversionError(f"input_shape {given} disagrees with model input {name!r}, whose shape is "
                                          f"{_fmt(dims)} (dimension {i} is fixed at {d}); omit input_shape or match it")
            dims = list(given)
        if len(dims) >= 2 and dims[0] == -1:
            dims[0] = 1
        if any(d < 0 for d in dims):
            example = ", ".join("?" if d < 0 else str(d) for d in dims)
            raise ConversionError(f"model input {name!r} has dynamic dimensions {_fmt(dims)}; pass "
                                  f"input_shape=({example}) with the '?' sizes to convert for")
        if len(dims) >= 2 and dims[0] != 1:
            raise ConversionError(f"model input {name!r} has batch size {dims[0]} (shape {_fmt(dims)}); converted "
                                  "models run one image at a time: export the model with batch 1 or a dynamic batch")
        return tuple(dims)

    def _value(self, t: int) -> str:
        """The graph tensor for TFLite tensor ``t``, materialising a constant on first use."""
        if t in self.ir:
            return self.ir[t]
        if t in self.consts:
            value = self.consts[t]
            if value.dtype != np.float32 and value.dtype.kind == "f":
                value = value.astype(np.float32)
            name = self.graph.add_tensor(self.names[t], value.shape, value).name
            self.ir[t] = name
            self.shapes[t] = tuple(value.shape)
            return name
        raise ConversionError(f"tensor {self.names[t]!r} is read before any operator produces it (operators must "
                              "be in execution order): the model file is malformed")

    def _shape(self, t: int) -> tuple[int, ...]:
        if t in self.consts:
            return tuple(self.consts[t].shape)
        if t not in self.shapes:
            raise ConversionError(f"tensor {self.names[t]!r} is read before any operator produces it (operators must "
                                  "be in execution order): the model file is malformed")
        return self.shapes[t]

    def _tmp_name(self, base: str) -> str:
        name, n = base, 0
        while name in self.reserved or name in self.graph.tensors:
            n += 1
            name = f"{base}_{n}"
        return name

    def _op_name(self, op: Any) -> str:
        codes = self.model.operatorCodes or []
        if not 0 <= op.opcodeIndex < len(codes):
            raise ConversionError(f"an operator uses opcode index {op.opcodeIndex}, but the model has {len(codes)} "
                                  "operator codes: the file is corrupt")
        code = codes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)  # the schema's rule for the two fields
        name = self.op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            return f"CUSTOM({_text(code.customCode)})"
        return name

    def _unsupported(self, k: int, op: Any, name: str) -> ConversionError:
        ins = ", ".join(repr(self.names[t]) for t in _ints(op.inputs) if t >= 0)
        outs = ", ".join(repr(self.names[t]) for t in _ints(op.outputs) if t >= 0)
        return ConversionError(
            f"operator #{k} {name} (inputs {ins}; outputs {outs}) is not supported by the TFLite importer. "
            f"Supported: {', '.join(SUPPORTED_OPS)}. The model must be a float32 image model built from these ops: "
            "replace the op in the source model (or import the original ONNX/Keras model) and convert again.")


def _ints(v: Any) -> list[int]:
    """A schema int vector (None, a list, or a numpy array from the object API) as a list."""
    return [] if v is None else [int(x) for x in v]


def _text(s: Any) -> str:
    if s is None:
        return ""
    return s.decode("utf-8", "replace") if isinstance(s, (bytes, bytearray)) else str(s)


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


class _Op:
    """One TFLite operator being imported: its inputs, options, and helpers that emit graph nodes."""

    def __init__(self, imp: _Importer, index: int, name: str, op: Any) -> None:
        self.imp = imp
        self.index = index
        self.name = name
        self.inputs = _ints(op.inputs)
        self.outputs = _ints(op.outputs)
        self.options = op.builtinOptions
        self.g = imp.graph
        if len(self.outputs) != 1 or self.outputs[0] < 0:
            raise ConversionError(f"operator #{index} {name} has outputs {self.outputs}; every supported operator has "
                                  "exactly one: the model file is malformed")

    # -- errors and operands ----------------------------------------------------------------------------
    def error(self, what: str, fix: str) -> ConversionError:
        ins = ", ".join(repr(self.imp.names[t]) for t in self.inputs if t >= 0)
        return ConversionError(f"operator #{self.index} {self.name} (inputs {ins}; output "
                               f"{self.imp.names[self.outputs[0]]!r}): {what}; {fix}")

    def arity(self, lo: int, hi: int | None = None) -> None:
        n = len([t for t in self.inputs if t >= 0])
        hi = lo if hi is None else hi
        if not lo <= n <= hi or len(self.outputs) != 1:
            raise self.error(f"has {n} inputs and {len(self.outputs)} outputs, expected {lo}..{hi} inputs and 1 output",
                             "the model file is malformed")

    def has(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] >= 0

    def is_const(self, i: int) -> bool:
        return self.inputs[i] in self.imp.consts

    def const(self, i: int, what: str) -> np.ndarray:
        t = self.inputs[i]
        if t not in self.imp.consts:
            raise self.error(f"{what} {self.imp.names[t]!r} is computed at run time, but must be a constant",
                             "only constant weights and parameters are supported: freeze them in the exported model")
        return self.imp.consts[t]

    def value(self, i: int) -> str:
        return self.imp._value(self.inputs[i])

    def shape(self, i: int) -> tuple[int, ...]:
        return self.imp._shape(self.inputs[i])

    def opt(self, field: str, default: Any) -> Any:
        return getattr(self.options, field, default) if self.options is not None else default

    def fused(self) -> str | None:
        code = self.opt("fusedActivationFunction", 0)
        if code in _FUSED_ACTIVATIONS:
            return _FUSED_ACTIVATIONS[code]
        # TFLite's float kernels clamp only to RELU/RELU6/RELU_N1_TO_1 ranges: CONV_2D, ADD, MUL ... run a
        # fused TANH as no activation at all and FULLY_CONNECTED refuses it, so the model's meaning is unclear.
        name = _enum_names(_fb.ActivationFunctionType).get(code, str(code))
        raise self.error(f"has fused activation {name}, which TFLite's own kernels ignore or reject",
                         "supported fused activations are NONE, RELU, RELU6, RELU_N1_TO_1: re-export the model "
                         f"with a separate {name} operator")

    # -- emitting -------------------------------------------------------------------------------------------
    def emit(self, op: str, inputs: list[str], out_shape: Sequence[int], /, *, fused: bool = False,
             **attrs: Any) -> str:
        """Emit the node that produces this operator's output; ``fused`` reads the fused activation."""
        out = self.outputs[0]
        if fused:
            attrs["act"] = self.fused()
        name = self.g.add_node(op, inputs, out_shape, name=self.imp.names[out], out=self.imp.names[out], **attrs)
        self.imp.ir[out] = name
        self.imp.shapes[out] = tuple(int(d) for d in out_shape)
        return name

    def tmp(self, op: str, inputs: list[str], out_shape: Sequence[int], suffix: str, /, **attrs: Any) -> str:
        """An intermediate node this importer adds (reshape before FC, negation for SUB ...)."""
        name = self.imp._tmp_name(f"{self.imp.names[self.outputs[0]]}/{suffix}")
        return self.g.add_node(op, inputs, out_shape, name=name, out=name, **attrs)

    def fold(self, value: np.ndarray) -> None:
        """The output is a constant: record it instead of emitting a node."""
        value = np.array(value)
        value.flags.writeable = False
        self.imp.consts[self.outputs[0]] = value

    def all_const(self) -> bool:
        return all(t in self.imp.consts for t in self.inputs if t >= 0)


def _axis(op: _Op, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise op.error(f"axis {axis} is out of range for rank {rank}", "the model file is malformed")
    return axis % rank


def _spatial(op: _Op, x: tuple[int, ...], kh: int, kw: int, sh: int, sw: int, dh: int, dw: int
             ) -> tuple[tuple[int, int, int, int], int, int]:
    """Explicit pads and output size from TFLite's SAME/VALID padding."""
    if len(x) != 4:
        raise op.error(f"input has shape {_fmt(x)}, expected rank 4 (NHWC)", "reshape the input to NHWC")
    if min(kh, kw, sh, sw, dh, dw) < 1:
        raise op.error(f"has window {kh}x{kw}, strides {sh}x{sw}, dilations {dh}x{dw}; all must be at least 1",
                       "the model file is malformed")
    padding = op.opt("padding", 0)
    if padding == 0:  # SAME
        pt, pb = same_pads(x[1], kh, sh, dh)
        pl, pr = same_pads(x[2], kw, sw, dw)
    elif padding == 1:  # VALID
        pt = pb = pl = pr = 0
    else:
        raise op.error(f"has padding type {padding}", "only SAME and VALID padding exist in TFLite")
    oh = conv_out_size(x[1], kh, sh, dh, pt, pb)
    ow = conv_out_size(x[2], kw, sw, dw, pl, pr)
    if oh <= 0 or ow <= 0:
        raise op.error(f"the window {kh}x{kw} does not fit the {x[1]}x{x[2]} input", "the model file is malformed")
    return (pt, pl, pb, pr), oh, ow


# -- operator handlers: validate, compute the output shape, emit ---------------------------------------------
def _conv2d(op: _Op) -> None:
    op.arity(2, 3)
    x = op.shape(0)
    w = op.const(1, "the weight tensor")
    if w.ndim != 4:
        raise op.error(f"weights have shape {_fmt(w.shape)}, expected [O, KH, KW, C]", "the model file is malformed")
    if len(x) == 4 and w.shape[3] != x[3]:
        raise op.error(f"weights expect {w.shape[3]} input channels but the input has {x[3]} (a grouped "
                       "convolution)", "grouped convolutions are not supported: use depthwise or full convolutions")
    sh, sw = op.opt("strideH", 1), op.opt("strideW", 1)
    dh, dw = op.opt("dilationHFactor", 1) or 1, op.opt("dilationWFactor", 1) or 1
    pads, oh, ow = _spatial(op, x, w.shape[1], w.shape[2], sh, sw, dh, dw)
    ins = [op.value(0), op.value(1)] + ([op.value(2)] if op.has(2) else [])
    op.emit("conv2d", ins, (x[0], oh, ow, w.shape[0]), fused=True, strides=(sh, sw), dilations=(dh, dw), pads=pads)


def _depthwise(op: _Op) -> None:
    op.arity(2, 3)
    x = op.shape(0)
    w = op.const(1, "the weight tensor")
    if w.ndim != 4 or w.shape[0] != 1:
        raise op.error(f"weights have shape {_fmt(w.shape)}, expected [1, KH, KW, C*M]", "the model file is malformed")
    if len(x) == 4 and (x[3] == 0 or w.shape[3] % x[3]):
        raise op.error(f"weights have {w.shape[3]} channels, not a multiple of the input's {x[3]}",
                       "the model file is malformed")
    sh, sw = op.opt("strideH", 1), op.opt("strideW", 1)
    dh, dw = op.opt("dilationHFactor", 1) or 1, op.opt("dilationWFactor", 1) or 1
    pads, oh, ow = _spatial(op, x, w.shape[1], w.shape[2], sh, sw, dh, dw)
    ins = [op.value(0), op.value(1)] + ([op.value(2)] if op.has(2) else [])
    op.emit("depthwise_conv2d", ins, (x[0], oh, ow, w.shape[3]), fused=True, strides=(sh, sw), dilations=(dh, dw),
            pads=pads, multiplier=w.shape[3] // x[3])


def _fully_connected(op: _Op) -> None:
    op.arity(2, 3)
    if op.opt("weightsFormat", 0) != 0:
        raise op.error("uses shuffled int8 weights", "export the model with default (float) fully-connected weights")
    x = op.shape(0)
    w = op.const(1, "the weight tensor")
    if w.ndim != 2:
        raise op.error(f"weights have shape {_fmt(w.shape)}, expected [O, K]", "the model file is malformed")
    o, k = w.shape
    size = int(np.prod(x)) if x else 1
    if k == 0 or size % k:
        raise op.error(f"input of shape {_fmt(x)} cannot be flattened into rows of {k}", "the model file is malformed")
    xin = op.value(0)
    rows = size // k
    if tuple(x) != (rows, k):
        xin = op.tmp("reshape", [xin], (rows, k), "flatten", shape=(rows, k))
    ins = [xin, op.value(1)] + ([op.value(2)] if op.has(2) else [])
    if op.opt("keepNumDims", False) and len(x) != 2:
        out_shape = tuple(x[:-1]) + (o,)
        y = op.tmp("fully_connected", ins, (rows, o), "fc", act=op.fused())
        op.emit("reshape", [y], out_shape, shape=out_shape)
    else:
        op.emit("fully_connected", ins, (rows, o), fused=True)


def _broadcast(op: _Op, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise op.error(f"operand shapes {_fmt(a)} and {_fmt(b)} do not broadcast",
                       "the model file is malformed") from None


def _binary(kind: str) -> Callable[[_Op], None]:
    def handler(op: _Op) -> None:
        op.arity(2)
        a_shape, b_shape = op.shape(0), op.shape(1)
        shape = _broadcast(op, a_shape, b_shape)
        if op.all_const():  # arithmetic on constants (shape or weight preprocessing): fold it
            a, b = op.imp.consts[op.inputs[0]], op.imp.consts[op.inputs[1]]
            fn = {"add": np.add, "mul": np.multiply, "sub": np.subtract, "div": np.divide}[kind]
            y = fn(a, b).astype(np.result_type(a, b))
            lo, hi = {None: (None, None), "relu": (0, None), "relu6": (0, 6), "relu_n1_to_1": (-1, 1)}[op.fused()]
            op.fold(y if lo is None else np.clip(y, lo, hi))
            return
        a, b, kind_out = op.value(0), None, kind
        if kind in ("add", "mul"):
            b = op.value(1)
        elif kind == "sub":
            kind_out = "add"
            if op.is_const(1):  # a - c == a + (-c)
                c = op.imp.consts[op.inputs[1]]
                b = op.g.add_const(op.imp._tmp_name(f"{op.imp.names[op.inputs[1]]}/neg"), -np.asarray(c, np.float32))
            else:  # a - b == a + (-1 * b)
                minus = op.g.add_const(op.imp._tmp_name(f"{op.imp.names[op.outputs[0]]}/minus_one"),
                                       np.array(-1.0, np.float32))
                b = op.tmp("mul", [op.value(1), minus], b_shape, "neg", act=None)
        else:  # div by a constant == mul by its reciprocal
            kind_out = "mul"
            if not op.is_const(1):
                raise op.error("divides by a computed tensor", "only division by a constant is supported")
            c = np.asarray(op.imp.consts[op.inputs[1]], np.float32)
            if np.any(c == 0):
                raise op.error("divides by a constant containing zeros", "fix the model's divisor")
            b = op.g.add_const(op.imp._tmp_name(f"{op.imp.names[op.inputs[1]]}/reciprocal"), 1.0 / c)
        op.emit(kind_out, [a, b], shape, fused=True)
    return handler


def _concat(op: _Op) -> None:
    ins = [t for t in op.inputs if t >= 0]
    if not ins:
        raise op.error("has no inputs", "the model file is malformed")
    shapes = [op.imp._shape(t) for t in ins]
    rank = len(shapes[0])
    axis = _axis(op, op.opt("axis", 0), rank)
    for s in shapes[1:]:
        if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
            raise op.error(f"input shapes {', '.join(_fmt(s) for s in shapes)} differ outside axis {axis}",
                           "the model file is malformed")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    op.emit("concat", [op.imp._value(t) for t in ins], out, fused=True, axis=axis)


def _pad(op: _Op) -> None:
    op.arity(2, 3)
    x = op.shape(0)
    p = np.asarray(op.const(1, "the paddings tensor")).astype(np.int64)
    if p.shape != (len(x), 2) or np.any(p < 0):
        raise op.error(f"paddings {p.tolist()} do not fit an input of rank {len(x)}", "the model file is malformed")
    if op.has(2):
        v = np.asarray(op.const(2, "the pad value"))
        if v.size != 1 or float(v.reshape(-1)[0]) != 0.0:
            raise op.error(f"pads with the value {v.reshape(-1).tolist()}", "only zero padding is supported")
    pads = tuple((int(a), int(b)) for a, b in p)
    out = tuple(d + a + b for d, (a, b) in zip(x, pads))
    op.emit("pad", [op.value(0)], out, pads=pads)


def _pool(kind: str) -> Callable[[_Op], None]:
    def handler(op: _Op) -> None:
        op.arity(1)
        x = op.shape(0)
        kh, kw = op.opt("filterHeight", 1), op.opt("filterWidth", 1)
        sh, sw = op.opt("strideH", 1), op.opt("strideW", 1)
        pads, oh, ow = _spatial(op, x, kh, kw, sh, sw, 1, 1)
        op.emit(kind, [op.value(0)], (x[0], oh, ow, x[3]), fused=True, kernel=(kh, kw), strides=(sh, sw), pads=pads)
    return handler


def _mean(op: _Op) -> None:
    op.arity(2)
    x = op.shape(0)
    axes = sorted({_axis(op, int(a), len(x)) for a in np.asarray(op.const(1, "the axes tensor")).reshape(-1)})
    keep = bool(op.opt("keepDims", False))
    out = [1 if i in axes else d for i, d in enumerate(x)] if keep else [d for i, d in enumerate(x) if i not in axes]
    op.emit("mean", [op.value(0)], out, axes=tuple(axes), keepdims=keep)


def _unary(kind: str) -> Callable[[_Op], None]:
    def handler(op: _Op) -> None:
        op.arity(1)
        op.emit(kind, [op.value(0)], op.shape(0))
    return handler


def _prelu(op: _Op) -> None:
    op.arity(2)
    alpha = op.const(1, "the alpha (slope) tensor")
    shape = _broadcast(op, op.shape(0), alpha.shape)
    if shape != op.shape(0):
        raise op.error(f"alpha of shape {_fmt(alpha.shape)} enlarges the input {_fmt(op.shape(0))}",
                       "the model file is malformed")
    op.emit("prelu", [op.value(0), op.value(1)], shape)


def _leaky_relu(op: _Op) -> None:
    op.arity(1)
    alpha = op.g.add_const(op.imp._tmp_name(f"{op.imp.names[op.outputs[0]]}/alpha"),
                           np.array(op.opt("alpha", 0.0), np.float32))
    op.emit("prelu", [op.value(0), alpha], op.shape(0))


def _softmax(op: _Op) -> None:
    op.arity(1)
    op.emit("softmax", [op.value(0)], op.shape(0), axis=-1, beta=float(op.opt("beta", 1.0)))


def _resolve_shape(op: _Op, x: tuple[int, ...], target: Sequence[int]) -> tuple[int, ...]:
    size = int(np.prod(x)) if x else 1
    target = [int(d) for d in target]
    if target.count(-1) > 1:
        raise op.error(f"target shape {target} has more than one -1", "the model file is malformed")
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1])) if len(target) > 1 else 1
        if known == 0 or size % known:
            raise op.error(f"cannot reshape {_fmt(x)} into {target}", "the model's shapes are inconsistent")
        target[target.index(-1)] = size // known
    if int(np.prod(target)) != size:
        raise op.error(f"cannot reshape {_fmt(x)} ({size} values) into {target}",
                       "the reshape was exported for another input size: convert with the model's own input shape")
    return tuple(target)


def _reshape_or_fold(op: _Op, shape: tuple[int, ...]) -> None:
    if op.is_const(0):
        op.fold(np.reshape(op.imp.consts[op.inputs[0]], shape))
    else:
        op.emit("reshape", [op.value(0)], shape, shape=shape)


def _reshape(op: _Op) -> None:
    op.arity(1, 2)
    x = op.shape(0)
    # TFLite's rule: a 1-D shape tensor wins; otherwise the options' new_shape.
    if op.has(1) and op.is_const(1) and np.asarray(op.imp.consts[op.inputs[1]]).ndim == 1:
        target = np.asarray(op.imp.consts[op.inputs[1]]).tolist()
    elif op.options is not None and op.opt("newShape", None) is not None:
        target = _ints(op.opt("newShape", None))
    elif op.has(1):
        target = np.asarray(op.const(1, "the shape tensor")).reshape(-1).tolist()
    else:
        raise op.error("has neither a shape tensor nor a new_shape option", "the model file is malformed")
    _reshape_or_fold(op, _resolve_shape(op, x, target))


def _squeeze(op: _Op) -> None:
    op.arity(1)
    x = op.shape(0)
    dims = _ints(op.opt("squeezeDims", None))
    axes = {_axis(op, int(d), len(x)) for d in dims} if dims else {i for i, d in enumerate(x) if d == 1}
    bad = [a for a in axes if x[a] != 1]
    if bad:
        raise op.error(f"squeezes dimension(s) {bad} of shape {_fmt(x)}, which are not 1",
                       "the model file is malformed")
    _reshape_or_fold(op, tuple(d for i, d in enumerate(x) if i not in axes))


def _expand_dims(op: _Op) -> None:
    op.arity(2)
    x = op.shape(0)
    axis = int(np.asarray(op.const(1, "the axis tensor")).reshape(-1)[0])
    axis = _axis(op, axis, len(x) + 1)
    _reshape_or_fold(op, tuple(x[:axis]) + (1,) + tuple(x[axis:]))


def _transpose(op: _Op) -> None:
    op.arity(2)
    x = op.shape(0)
    perm = tuple(int(p) for p in np.asarray(op.const(1, "the permutation tensor")).reshape(-1))
    if sorted(perm) != list(range(len(x))):
        raise op.error(f"permutation {list(perm)} does not fit rank {len(x)}", "the model file is malformed")
    if op.is_const(0):
        op.fold(np.transpose(op.imp.consts[op.inputs[0]], perm))
    else:
        op.emit("transpose", [op.value(0)], tuple(x[p] for p in perm), perm=perm)


def _resize(mode: str) -> Callable[[_Op], None]:
    def handler(op: _Op) -> None:
        op.arity(2)
        x = op.shape(0)
        if len(x) != 4:
            raise op.error(f"input has shape {_fmt(x)}, expected rank 4 (NHWC)", "the model file is malformed")
        size = np.asarray(op.const(1, "the output size tensor")).reshape(-1)
        if size.size != 2 or np.any(size <= 0):
            raise op.error(f"output size {size.tolist()} is not [height, width]", "the model file is malformed")
        oh, ow = int(size[0]), int(size[1])
        op.emit("resize", [op.value(0)], (x[0], oh, ow, x[3]), size=(oh, ow), mode=mode,
                align_corners=bool(op.opt("alignCorners", False)),
                half_pixel_centers=bool(op.opt("halfPixelCenters", False)))
    return handler


def _dequantize(op: _Op) -> None:
    op.arity(1)
    if not op.is_const(0):
        t = op.imp.tensors[op.inputs[0]]
        raise op.error(f"dequantizes the computed {op.imp.type_names.get(t.type, t.type)} tensor "
                       f"{op.imp.names[op.inputs[0]]!r}",
                       "only DEQUANTIZE of constant weights is supported: the model must be float32 "
                       "(an already-quantized model needs no conversion; use it directly)")
    op.fold(np.asarray(op.imp.consts[op.inputs[0]], dtype=np.float32))  # constants are stored real-valued


def _quantize(op: _Op) -> None:
    op.arity(1)
    if not op.is_const(0):
        raise op.error("quantizes a computed tensor",
                       "the model must be float32 (an already-quantized model needs no conversion; use it directly)")
    x = np.asarray(op.imp.consts[op.inputs[0]], np.float32)
    quant = op.imp.tensors[op.outputs[0]].quantization
    if quant is None or quant.scale is None or len(quant.scale) == 0:
        op.fold(x)
        return
    # Fold to the real value the quantized constant stands for, so a following DEQUANTIZE is exact.
    q_type = op.imp.tensors[op.outputs[0]].type
    lo, hi = {9: (-128, 127), 3: (0, 255), 7: (-32768, 32767)}.get(q_type, (-128, 127))
    scale = np.asarray(quant.scale, np.float32)
    zp = np.asarray(quant.zeroPoint if quant.zeroPoint is not None else [0], np.float32)
    if scale.size > 1:
        bshape = [1] * x.ndim
        bshape[quant.quantizedDimension] = scale.size
        scale, zp = scale.reshape(bshape), zp.reshape(bshape) if zp.size == scale.size else zp.reshape(())
    q = np.clip(np.round(x / scale) + zp, lo, hi)
    op.fold(((q - zp) * scale).astype(np.float32))


_HANDLERS: dict[str, Callable[[_Op], None]] = {
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary("add"),
    "SUB": _binary("sub"),
    "MUL": _binary("mul"),
    "DIV": _binary("div"),
    "CONCATENATION": _concat,
    "PAD": _pad,
    "PADV2": _pad,
    "MAX_POOL_2D": _pool("max_pool2d"),
    "AVERAGE_POOL_2D": _pool("avg_pool2d"),
    "MEAN": _mean,
    "RELU": _unary("relu"),
    "RELU6": _unary("relu6"),
    "RELU_N1_TO_1": _unary("relu_n1_to_1"),
    "LOGISTIC": _unary("sigmoid"),
    "HARD_SWISH": _unary("hard_swish"),
    "TANH": _unary("tanh"),
    "PRELU": _prelu,
    "LEAKY_RELU": _leaky_relu,
    "SOFTMAX": _softmax,
    "RESHAPE": _reshape,
    "SQUEEZE": _squeeze,
    "EXPAND_DIMS": _expand_dims,
    "TRANSPOSE": _transpose,
    "RESIZE_BILINEAR": _resize("bilinear"),
    "RESIZE_NEAREST_NEIGHBOR": _resize("nearest"),
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
}
assert set(_HANDLERS) == set(SUPPORTED_OPS)
