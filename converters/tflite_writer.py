"""Quantized graph → TFLite flatbuffer bytes (schema from ``ai_edge_litert.schema_py_generated``).

Every tensor keeps the graph's name, so the report can find a layer's int8 output in the interpreter. Shape
operands (reshape target, transpose permutation, pad amounts, mean axes, resize size) become int32 constants.
Operator versions are the ones TFLite assigns to these int8 kernels, so that older runtimes (tflite-runtime
2.14) accept the file.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .ir import ConversionError, Graph, padding_mode
from .quantize import QuantizedGraph


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as s
    except ImportError as e:  # pragma: no cover
        raise ConversionError("writing TFLite needs 'ai-edge-litert': pip install 'edgevision[convert]'") from e
    return s


# graph op → (TFLite builtin name, version for int8)
BUILTINS = {
    "conv2d": ("CONV_2D", 3),
    "depthwise_conv2d": ("DEPTHWISE_CONV_2D", 3),
    "fully_connected": ("FULLY_CONNECTED", 4),
    "add": ("ADD", 2),
    "mul": ("MUL", 2),
    "concat": ("CONCATENATION", 2),
    "pad": ("PAD", 2),
    "max_pool2d": ("MAX_POOL_2D", 2),
    "avg_pool2d": ("AVERAGE_POOL_2D", 2),
    "mean": ("MEAN", 2),
    "relu": ("RELU", 2),
    "relu6": ("RELU6", 2),
    "relu_n1_to_1": ("RELU_N1_TO_1", 1),
    "sigmoid": ("LOGISTIC", 2),
    "hard_swish": ("HARD_SWISH", 1),
    "tanh": ("TANH", 2),
    "prelu": ("PRELU", 1),
    "softmax": ("SOFTMAX", 2),
    "reshape": ("RESHAPE", 1),
    "transpose": ("TRANSPOSE", 2),
    "quantize": ("QUANTIZE", 2),
    "dequantize": ("DEQUANTIZE", 2),
}
_ACT = {None: "NONE", "relu": "RELU", "relu6": "RELU6", "relu_n1_to_1": "RELU_N1_TO_1"}
_NP_TYPES = {"int8": np.int8, "uint8": np.uint8, "int32": np.int32, "float32": np.float32}


@dataclasses.dataclass
class Written:
    data: bytes
    tensor_index: dict[str, int]  # graph tensor name → TFLite tensor index


class _Writer:
    def __init__(self, qg: QuantizedGraph):
        self.s = _schema()
        self.qg = qg
        self.g: Graph = qg.graph
        s = self.s
        self.model = s.ModelT()
        self.model.version = 3
        self.model.description = "edgevision-convert"
        self.model.buffers = [s.BufferT()]  # buffer 0: the empty buffer of every non-constant tensor
        self.model.operatorCodes = []
        self.sub = s.SubGraphT()
        self.sub.tensors, self.sub.operators, self.sub.name = [], [], "main"
        self.index: dict[str, int] = {}
        self.opcodes: dict[tuple[str, int], int] = {}

    def opcode(self, name: str, version: int) -> int:
        s = self.s
        key = (name, version)
        if key not in self.opcodes:
            code = getattr(s.BuiltinOperator, name)
            oc = s.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = version
            self.opcodes[key] = len(self.model.operatorCodes)
            self.model.operatorCodes.append(oc)
        return self.opcodes[key]

    def tensor(self, name: str, shape, dtype: str, quant=None, data: np.ndarray | None = None) -> int:
        s = self.s
        t = s.TensorT()
        t.name = name
        t.shape = [int(d) for d in shape]
        t.type = {"int8": s.TensorType.INT8, "uint8": s.TensorType.UINT8, "int32": s.TensorType.INT32,
                  "float32": s.TensorType.FLOAT32}[dtype]
        if data is not None:
            buf = s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data, dtype=_NP_TYPES[dtype]).tobytes(), np.uint8)
            t.buffer = len(self.model.buffers)
            self.model.buffers.append(buf)
        else:
            t.buffer = 0
        if quant is not None:
            qp = s.QuantizationParametersT()
            qp.scale = [float(v) for v in quant.scale]
            qp.zeroPoint = [int(v) for v in quant.zero_point]
            qp.quantizedDimension = int(quant.axis) if quant.per_channel else 0
            t.quantization = qp
        self.sub.tensors.append(t)
        return len(self.sub.tensors) - 1

    def graph_tensor(self, name: str) -> int:
        if name in self.index:
            return self.index[name]
        t = self.g.tensors[name]
        if t.is_const:
            q = self.qg.qdata[name]
            dtype = "int32" if q.dtype == np.int32 else "int8"
            idx = self.tensor(name, t.shape, dtype, t.quant, q)
        else:
            idx = self.tensor(name, t.shape, "int8", t.quant)
        self.index[name] = idx
        return idx

    def int32_const(self, name: str, values) -> int:
        v = np.asarray(values, np.int32)
        return self.tensor(name, v.shape, "int32", None, v)

    def op(self, kind: str, inputs: list[int], outputs: list[int], options_type: str | None = None,
           options=None) -> None:
        s = self.s
        name, version = BUILTINS[kind]
        o = s.OperatorT()
        o.opcodeIndex = self.opcode(name, version)
        o.inputs, o.outputs = inputs, outputs
        if options_type:
            o.builtinOptionsType = getattr(s.BuiltinOptions, options_type)
            o.builtinOptions = options
        self.sub.operators.append(o)

    def padding(self, node) -> int:
        mode = padding_mode(self.g, node)
        if mode is None:
            raise ConversionError(f"internal: node {node.name!r} has padding {node.attrs['pads']} that is neither "
                                  "SAME nor VALID")
        return getattr(self.s.Padding, mode)

    def act(self, node) -> int:
        return getattr(self.s.ActivationFunctionType, _ACT[node.act])

    # -- the model --------------------------------------------------------------------------------------
    def write(self) -> Written:
        s, g = self.s, self.g
        inp = g.inputs[0]
        in_t = g.tensors[inp]
        if self.qg.input_dtype == "uint8":
            q = in_t.quant
            u8 = dataclasses.replace(q, zero_point=q.zero_point + 128, dtype="uint8")
            ext = self.tensor(inp + "_uint8", in_t.shape, "uint8", u8)
            self.op("quantize", [ext], [self.graph_tensor(inp)])
            model_inputs = [ext]
        else:
            model_inputs = [self.graph_tensor(inp)]
        for node in g.nodes:
            self.node(node)
        model_outputs = []
        for out in g.outputs:
            idx = self.graph_tensor(out)
            if self.qg.output_dtype == "float32":
                f = self.tensor(out + "_float", g.tensors[out].shape, "float32")
                self.op("dequantize", [idx], [f])
                idx = f
            model_outputs.append(idx)
        self.sub.inputs, self.sub.outputs = model_inputs, model_outputs
        self.model.subgraphs = [self.sub]
        sig = s.SignatureDefT()
        sig.signatureKey = "serving_default"
        sig.subgraphIndex = 0
        sig.inputs = [self._tmap("input", model_inputs[0])]
        sig.outputs = [self._tmap("output" if i == 0 else f"output_{i}", t) for i, t in enumerate(model_outputs)]
        self.model.signatureDefs = [sig]
        import flatbuffers
        b = flatbuffers.Builder(1024)
        b.Finish(self.model.Pack(b), file_identifier=b"TFL3")
        return Written(bytes(b.Output()), dict(self.index))

    def _tmap(self, name: str, idx: int):
        tm = self.s.TensorMapT()
        tm.name, tm.tensorIndex = name, idx
        return tm

    def node(self, node) -> None:
        s = self.s
        op = node.op
        ins = [self.graph_tensor(i) for i in node.inputs]
        out = [self.graph_tensor(node.outputs[0])]
        a = node.attrs
        if op == "conv2d":
            o = s.Conv2DOptionsT()
            o.padding = self.padding(node)
            o.strideH, o.strideW = a["strides"]
            o.dilationHFactor, o.dilationWFactor = a["dilations"]
            o.fusedActivationFunction = self.act(node)
            self.op(op, ins, out, "Conv2DOptions", o)
        elif op == "depthwise_conv2d":
            o = s.DepthwiseConv2DOptionsT()
            o.padding = self.padding(node)
            o.strideH, o.strideW = a["strides"]
            o.dilationHFactor, o.dilationWFactor = a["dilations"]
            o.depthMultiplier = a["multiplier"]
            o.fusedActivationFunction = self.act(node)
            self.op(op, ins, out, "DepthwiseConv2DOptions", o)
        elif op == "fully_connected":
            o = s.FullyConnectedOptionsT()
            o.fusedActivationFunction = self.act(node)
            self.op(op, ins, out, "FullyConnectedOptions", o)
        elif op in ("add", "mul"):
            o = s.AddOptionsT() if op == "add" else s.MulOptionsT()
            o.fusedActivationFunction = self.act(node)
            self.op(op, ins, out, "AddOptions" if op == "add" else "MulOptions", o)
        elif op == "concat":
            o = s.ConcatenationOptionsT()
            o.axis = a["axis"]
            o.fusedActivationFunction = self.act(node)
            self.op(op, ins, out, "ConcatenationOptions", o)
        elif op in ("max_pool2d", "avg_pool2d"):
            o = s.Pool2DOptionsT()
            o.padding = self.padding(node)
            o.strideH, o.strideW = a["strides"]
            o.filterHeight, o.filterWidth = a["kernel"]
            o.fusedActivationFunction = self.act(node)
            self.op(op, ins, out, "Pool2DOptions", o)
        elif op == "pad":
            p = self.int32_const(node.outputs[0] + "/paddings", [list(x) for x in a["pads"]])
            self.op(op, ins + [p], out, "PadOptions", s.PadOptionsT())
        elif op == "mean":
            ax = self.int32_const(node.outputs[0] + "/axes", list(a["axes"]))
            o = s.ReducerOptionsT()
            o.keepDims = bool(a["keepdims"])
            self.op(op, ins + [ax], out, "ReducerOptions", o)
        elif op == "reshape":
            shp = self.int32_const(node.outputs[0] + "/shape", list(a["shape"]))
            o = s.ReshapeOptionsT()
            o.newShape = [int(d) for d in a["shape"]]
            self.op(op, ins + [shp], out, "ReshapeOptions", o)
        elif op == "transpose":
            perm = self.int32_const(node.outputs[0] + "/perm", list(a["perm"]))
            self.op(op, ins + [perm], out, "TransposeOptions", s.TransposeOptionsT())
        elif op == "softmax":
            o = s.SoftmaxOptionsT()
            o.beta = float(a.get("beta", 1.0))
            self.op(op, ins, out, "SoftmaxOptions", o)
        elif op == "resize":
            size = self.int32_const(node.outputs[0] + "/size", list(a["size"]))
            if a["mode"] == "bilinear":
                o = s.ResizeBilinearOptionsT()
                kind, opt = "RESIZE_BILINEAR", "ResizeBilinearOptions"
            else:
                o = s.ResizeNearestNeighborOptionsT()
                kind, opt = "RESIZE_NEAREST_NEIGHBOR", "ResizeNearestNeighborOptions"
            o.alignCorners = bool(a.get("align_corners", False))
            o.halfPixelCenters = bool(a.get("half_pixel_centers", False))
            version = 3 if o.halfPixelCenters else 2
            oo = s.OperatorT()
            oo.opcodeIndex = self.opcode(kind, version)
            oo.inputs, oo.outputs = ins + [size], out
            oo.builtinOptionsType = getattr(s.BuiltinOptions, opt)
            oo.builtinOptions = o
            self.sub.operators.append(oo)
        elif op in ("relu", "relu6", "relu_n1_to_1", "sigmoid", "hard_swish", "tanh", "prelu"):
            self.op(op, ins, out)
        else:
            raise ConversionError(f"internal: no TFLite writer for op {op!r} (node {node.name!r})")


def write_tflite(qg: QuantizedGraph) -> Written:
    return _Writer(qg).write()
