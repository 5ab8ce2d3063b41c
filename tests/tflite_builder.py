"""Build small float .tflite models in tests, without TensorFlow, through the schema's object API.

    b = TFLiteBuilder()
    x = b.input("image", [1, 8, 8, 3])
    w = b.const("w", rng.standard_normal((4, 3, 3, 3)))          # or b.fp16_weight(...) / b.int8_weight(...)
    y = b.op("CONV_2D", [x, w, -1], b.options("Conv2DOptions", padding=SAME, strideH=1, strideW=1))
    b.output(y)
    model = b.build(signature={"inputs": {"image": x}, "outputs": {"scores": y}})

Output tensors are created with a placeholder shape; ``build`` runs the model once through LiteRT's
interpreter and writes back the shapes it computed, so the file's shapes are TFLite's own (the importer's
shape inference is then checked against them, not against a second copy of the same formulas).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.interpreter import Interpreter, OpResolverType

SAME, VALID = fb.Padding.SAME, fb.Padding.VALID
ACT = {None: 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3, "tanh": 4, "sign_bit": 5}

_TYPES = {
    np.dtype(np.float32): fb.TensorType.FLOAT32,
    np.dtype(np.float16): fb.TensorType.FLOAT16,
    np.dtype(np.int32): fb.TensorType.INT32,
    np.dtype(np.int64): fb.TensorType.INT64,
    np.dtype(np.int8): fb.TensorType.INT8,
    np.dtype(np.uint8): fb.TensorType.UINT8,
}


def interpreter(model: bytes, reference: bool = True) -> Interpreter:
    """LiteRT interpreter on the model; reference=True uses TFLite's reference kernels (the oracle)."""
    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    return Interpreter(model_content=model, experimental_op_resolver_type=kind)


class TFLiteBuilder:
    def __init__(self) -> None:
        self.tensors: list[fb.TensorT] = []
        self.buffers: list[fb.BufferT] = [fb.BufferT()]  # buffer 0: the schema's empty sentinel
        self.operators: list[fb.OperatorT] = []
        self.opcodes: dict[tuple[int, str], int] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    # -- tensors --------------------------------------------------------------------------------------------
    def tensor(self, name: str, shape: Sequence[int], ttype: int = fb.TensorType.FLOAT32, *,
               data: np.ndarray | None = None, quant: fb.QuantizationParametersT | None = None,
               shape_signature: Sequence[int] | None = None) -> int:
        t = fb.TensorT()
        t.name = name
        t.shape = np.asarray(list(shape), dtype=np.int32)
        t.type = ttype
        t.quantization = quant
        if shape_signature is not None:
            t.shapeSignature = np.asarray(list(shape_signature), dtype=np.int32)
        if data is not None:
            buf = fb.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def input(self, name: str, shape: Sequence[int], shape_signature: Sequence[int] | None = None,
              ttype: int = fb.TensorType.FLOAT32, quant: fb.QuantizationParametersT | None = None) -> int:
        t = self.tensor(name, shape, ttype, shape_signature=shape_signature, quant=quant)
        self.inputs.append(t)
        return t

    def const(self, name: str, value: Any, dtype: Any = None, quant: fb.QuantizationParametersT | None = None) -> int:
        a = np.asarray(value)
        if dtype is not None:
            a = a.astype(dtype)
        elif a.dtype == np.float64:
            a = a.astype(np.float32)
        elif a.dtype == np.int64 and a.dtype.kind == "i":
            a = a.astype(np.int32)
        return self.tensor(name, a.shape, _TYPES[a.dtype], data=a, quant=quant)

    def output(self, *ts: int) -> None:
        self.outputs.extend(ts)

    @staticmethod
    def quant(scale: Iterable[float], zero_point: Iterable[int], axis: int = 0) -> fb.QuantizationParametersT:
        q = fb.QuantizationParametersT()
        q.scale = [float(s) for s in scale]
        q.zeroPoint = [int(z) for z in zero_point]
        q.quantizedDimension = axis
        return q

    # -- weights stored the way converters store them -----------------------------------------------------
    def fp16_weight(self, name: str, value: np.ndarray) -> int:
        """float16 constant behind DEQUANTIZE, as TF's converter writes fp16-weight models."""
        h = self.const(name + "_fp16", np.asarray(value, np.float16))
        return self.op("DEQUANTIZE", [h], out_name=name)

    def int8_weight(self, name: str, value: np.ndarray, axis: int = 0) -> int:
        """Per-channel symmetric int8 constant behind DEQUANTIZE (dynamic-range style)."""
        value = np.asarray(value, np.float32)
        red = tuple(i for i in range(value.ndim) if i != axis)
        scale = np.maximum(np.abs(value).max(axis=red), 1e-8) / 127.0
        shape = [1] * value.ndim
        shape[axis] = -1
        q = np.clip(np.round(value / scale.reshape(shape)), -127, 127).astype(np.int8)
        t = self.const(name + "_int8", q, quant=self.quant(scale, [0] * scale.size, axis))
        return self.op("DEQUANTIZE", [t], out_name=name)

    # -- operators ------------------------------------------------------------------------------------------
    @staticmethod
    def options(kind: str, **fields: Any) -> Any:
        """An options table by schema name, e.g. options("Conv2DOptions", padding=SAME, strideH=2)."""
        o = getattr(fb, kind + "T")()
        for k, v in fields.items():
            if not hasattr(o, k):
                raise AttributeError(f"{kind} has no field {k!r}")
            setattr(o, k, v)
        return o

    def opcode(self, builtin: str, custom: str | None = None) -> int:
        code = getattr(fb.BuiltinOperator, builtin)
        key = (code, custom or "")
        if key not in self.opcodes:
            self.opcodes[key] = len(self.opcodes)
        return self.opcodes[key]

    def op(self, builtin: str, inputs: Sequence[int], options: Any = None, *, out_name: str | None = None,
           out_type: int = fb.TensorType.FLOAT32, out_quant: fb.QuantizationParametersT | None = None,
           custom: str | None = None) -> int:
        """Append an operator with one new output tensor (shape filled in by ``build``); returns its index."""
        out = self.tensor(out_name or f"{builtin.lower()}_{len(self.operators)}", [1], out_type, quant=out_quant)
        o = fb.OperatorT()
        o.opcodeIndex = self.opcode(builtin, custom)
        o.inputs = np.asarray(list(inputs), dtype=np.int32)
        o.outputs = np.asarray([out], dtype=np.int32)
        if options is not None:
            o.builtinOptionsType = getattr(fb.BuiltinOptions, type(options).__name__[:-1])
            o.builtinOptions = options
        if custom is not None:
            o.customOptions = []
        self.operators.append(o)
        return out

    # -- serialising ----------------------------------------------------------------------------------------
    def model(self, signature: Mapping[str, Mapping[str, int]] | None = None) -> fb.ModelT:
        m = fb.ModelT()
        m.version = 3
        m.description = "edgevision test model"
        codes = []
        for (code, custom), _ in sorted(self.opcodes.items(), key=lambda kv: kv[1]):
            c = fb.OperatorCodeT()
            c.builtinCode = code
            c.deprecatedBuiltinCode = min(code, 127)  # the schema's rule: the old int8 field saturates at 127
            c.version = 1
            if custom:
                c.customCode = custom
            codes.append(c)
        m.operatorCodes = codes
        sg = fb.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = np.asarray(self.inputs, dtype=np.int32)
        sg.outputs = np.asarray(self.outputs, dtype=np.int32)
        sg.operators = self.operators
        sg.name = "main"
        m.subgraphs = [sg]
        m.buffers = self.buffers
        if signature is not None:
            sd = fb.SignatureDefT()
            sd.signatureKey = signature.get("key", "serving_default")
            sd.subgraphIndex = 0
            sd.inputs = [_tensor_map(n, i) for n, i in signature["inputs"].items()]
            sd.outputs = [_tensor_map(n, i) for n, i in signature["outputs"].items()]
            m.signatureDefs = [sd]
        return m

    def build(self, signature: Mapping[str, Mapping[str, int]] | None = None, *, external_buffers: bool = False,
              fix_shapes: bool = True) -> bytes:
        """Serialise; with ``external_buffers`` constants go after the flatbuffer (offset/size, as >2 GB files)."""
        if fix_shapes:
            self._fix_shapes()
        m = self.model(signature)
        if not external_buffers:
            return pack(m)
        blobs = []
        for k, buf in enumerate(m.buffers):
            if buf.data is not None and len(buf.data):
                blobs.append((buf, bytes(buf.data)))
                buf.data = None
                buf.offset, buf.size = (1 << 40) + k, len(blobs[-1][1])  # placeholders of the final width
        head = pack(m)
        pos = _align(len(head))
        for buf, blob in blobs:
            buf.offset = pos
            pos = _align(pos + len(blob))
        head2 = pack(m)
        assert len(head2) == len(head), "offsets changed the flatbuffer's size"
        out = bytearray(head2)
        for buf, blob in blobs:
            out.extend(b"\0" * (buf.offset - len(out)))
            out.extend(blob)
        return bytes(out)

    def _fix_shapes(self) -> None:
        """Let LiteRT compute every operator output's shape and write it into the model."""
        interp = interpreter(pack(self.model()))
        interp.allocate_tensors()
        produced = {int(o) for op in self.operators for o in op.outputs}
        for d in interp.get_tensor_details():
            if d["index"] in produced:
                self.tensors[d["index"]].shape = np.asarray(d["shape"], dtype=np.int32)


def _tensor_map(name: str, index: int) -> fb.TensorMapT:
    tm = fb.TensorMapT()
    tm.name = name
    tm.tensorIndex = index
    return tm


def _align(n: int, a: int = 16) -> int:
    return -(-n // a) * a


def pack(m: fb.ModelT) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
