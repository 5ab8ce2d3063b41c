"""ONNX (what ``torch.onnx.export`` writes, opset 11 and later) → :class:`converters.ir.Graph`.

ONNX is NCHW; the graph is NHWC. The invariant kept here: every rank-4 activation in the graph is the NHWC
transpose of the ONNX tensor of the same name. Constants stay in ONNX layout until a consumer converts them.
Shape-computing subgraphs (Shape → Gather → Concat → Reshape, as ``x.view(x.size(0), -1)`` exports) are
folded to constants first, with ONNX's own reference evaluator.
"""
from __future__ import annotations

import os

import numpy as np

from ..ir import ConversionError, DynamicShapeError, Graph, conv_out_size, same_pads

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
AXIS_TO_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}  # an NCHW axis → the same axis in NHWC


def _onnx():
    try:
        import onnx  # noqa: F401
        import onnx.numpy_helper  # noqa: F401
        import onnx.shape_inference  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ConversionError("reading ONNX needs the 'onnx' package: pip install 'edgevision[convert]'") from e
    return onnx


def _same_memory_order(shape4: tuple[int, ...]) -> bool:
    """An NCHW tensor and its NHWC transpose hold the same bytes when C == 1 or H*W == 1."""
    return shape4[1] == 1 or shape4[2] * shape4[3] == 1


class _Importer:
    def __init__(self, model, input_shape: tuple[int, ...] | None):
        self.onnx = _onnx()
        self.model = model
        self.g = Graph(model.graph.name or "model")
        self.consts: dict[str, np.ndarray] = {}
        self.act: dict[str, str] = {}  # onnx activation name → graph tensor name
        self.shape: dict[str, tuple[int, ...]] = {}  # onnx (NCHW) shapes of activations
        self.input_shape = input_shape

    # -- helpers ------------------------------------------------------------------------------------------
    def fail(self, node, msg: str) -> ConversionError:
        return ConversionError(f"ONNX node {node.name or node.output[0]!r} ({node.op_type}): {msg}")

    def attrs(self, node) -> dict:
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def graph_tensor(self, name: str, like_rank: int | None = None) -> str:
        """The graph tensor for an ONNX input: an activation, or a constant converted to NHWC if needed."""
        if name in self.act:
            return self.act[name]
        if name in self.consts:
            c = np.asarray(self.consts[name], dtype=np.float32)
            if like_rank == 4 and c.ndim >= 1:
                c = c.reshape((1,) * (4 - c.ndim) + c.shape) if c.ndim < 4 else c
                c = c.transpose(NCHW_TO_NHWC)
            return self.g.add_const(name.replace("/", "_") or "const", c)
        raise ConversionError(f"ONNX tensor {name!r} is used but never defined")

    def emit(self, node, op: str, inputs: list[str], nchw_shape: tuple[int, ...], **attrs) -> str:
        """Add a graph node for ONNX output 0 (whose ONNX shape is nchw_shape)."""
        out = node.output[0]
        shape = tuple(nchw_shape[i] for i in NCHW_TO_NHWC) if len(nchw_shape) == 4 else tuple(nchw_shape)
        name = self.g.add_node(op, inputs, shape, name=node.name or out, out=out, **attrs)
        self.act[out] = name
        self.shape[out] = tuple(nchw_shape)
        return name

    def alias(self, node, src: str) -> None:
        self.act[node.output[0]] = self.act[src]
        self.shape[node.output[0]] = self.shape[src]

    def to_nchw_layout(self, node, name: str) -> str:
        """A graph tensor of an ONNX rank-4 activation, in ONNX's NCHW memory order (for reshapes)."""
        s = self.shape[name]
        if _same_memory_order(s):
            return self.act[name]
        return self.g.add_node("transpose", [self.act[name]], s, name=(node.name or name) + "/to_nchw",
                               perm=NHWC_TO_NCHW)

    # -- import -------------------------------------------------------------------------------------------
    def run(self) -> Graph:
        onnx = self.onnx
        m = self.model
        init_names = {i.name for i in m.graph.initializer}
        for init in m.graph.initializer:
            self.consts[init.name] = onnx.numpy_helper.to_array(init)
        real_inputs = [i for i in m.graph.input if i.name not in init_names]
        if len(real_inputs) != 1:
            raise ConversionError(f"expected a model with one image input, found {len(real_inputs)} inputs: "
                                  f"{[i.name for i in real_inputs]}")
        inp = real_inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
        shape = self._fix_input_shape(inp.name, dims)
        self._set_input_shape(inp, shape)
        self._fold_constants()
        self.shape[inp.name] = shape
        gshape = tuple(shape[i] for i in NCHW_TO_NHWC) if len(shape) == 4 else shape
        self.act[inp.name] = self.g.add_input(inp.name, gshape)
        for node in self.model.graph.node:
            if all(o in self.consts for o in node.output):
                continue
            handler = getattr(self, "op_" + node.op_type, None)
            if handler is None or node.domain not in ("", "ai.onnx"):
                raise self.fail(node, f"operator {node.op_type!r} is not supported. Supported: "
                                      f"{', '.join(sorted(k[3:] for k in dir(self) if k.startswith('op_')))}. "
                                      "Replace it in the model or export with a simpler op.")
            handler(node, self.attrs(node))
        for o in self.model.graph.output:
            if o.name not in self.act:
                raise ConversionError(f"ONNX output {o.name!r} is a constant or was not produced")
            self.g.outputs.append(self.act[o.name])
        self.g.prune()
        self.g.check()
        return self.g

    def _fix_input_shape(self, name: str, dims: list[int | None]) -> tuple[int, ...]:
        if self.input_shape is not None:
            want = tuple(self.input_shape)
            if len(want) == 2 and len(dims) == 4:  # (H, W): channels from the model (3 when dynamic)
                want = (1, dims[1] or 3) + want
            if len(want) == len(dims) - 1:
                want = (1,) + want
            if len(want) != len(dims) or any(d is not None and d != w for d, w in zip(dims[1:], want[1:])):
                raise ConversionError(f"input {name!r} has shape {dims} in the model; the requested input shape "
                                      f"{tuple(self.input_shape)} does not fit it")
            return (1,) + want[1:]
        if any(d is None for d in dims[1:]):
            raise DynamicShapeError(f"input {name!r} has dynamic dimensions {dims}; fix them with --input-size HxW "
                                  "(or input_shape= in the API)")
        return (1,) + tuple(dims[1:])

    def _set_input_shape(self, inp, shape) -> None:
        for d, v in zip(inp.type.tensor_type.shape.dim, shape):
            d.Clear()
            d.dim_value = v

    def _fold_constants(self) -> None:
        """Infer every shape, then evaluate nodes whose inputs are all known (Shape of static tensors too)."""
        onnx = self.onnx
        from onnx.reference import ReferenceEvaluator

        for _ in range(4):  # folding may expose more static shapes: repeat a few times
            try:
                inferred = onnx.shape_inference.infer_shapes(self.model, data_prop=True)
            except Exception as e:  # noqa: BLE001 - onnx raises many kinds
                raise ConversionError(f"ONNX shape inference failed: {e}") from e
            static: dict[str, tuple[int, ...]] = {}
            for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
                dims = vi.type.tensor_type.shape.dim
                if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
                    static[vi.name] = tuple(d.dim_value for d in dims)
            self.static_shapes = static
            changed = False
            for node in self.model.graph.node:
                if all(o in self.consts for o in node.output):
                    continue
                if node.op_type == "Shape" and node.input[0] in static:
                    a = self.attrs(node)
                    s = np.array(static[node.input[0]], dtype=np.int64)[a.get("start", 0):a.get("end", None)]
                    self.consts[node.output[0]] = s
                    changed = True
                elif node.op_type == "Constant":
                    self.consts[node.output[0]] = self._eval(ReferenceEvaluator, node, [])[0]
                    changed = True
                elif node.input and all(i == "" or i in self.consts for i in node.input) and \
                        node.op_type not in ("RandomNormal", "RandomUniform"):
                    vals = self._eval(ReferenceEvaluator, node, [self.consts.get(i) for i in node.input])
                    for o, v in zip(node.output, vals):
                        self.consts[o] = np.asarray(v)
                    changed = True
            if not changed:
                break

    def _eval(self, evaluator, node, values):
        onnx = self.onnx
        from onnx import helper
        ins = [helper.make_tensor_value_info(n or f"_empty{k}", onnx.TensorProto.UNDEFINED, None)
               for k, n in enumerate(node.input)]
        outs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output]
        n2 = helper.make_node(node.op_type, [i.name for i in ins], list(node.output), domain=node.domain,
                              **self.attrs(node))
        opset = [o for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        m = helper.make_model(helper.make_graph([n2], "fold", ins, outs), opset_imports=opset)
        feeds = {i.name: v for i, v in zip(ins, values) if v is not None}
        try:
            return evaluator(m).run(None, feeds)
        except Exception as e:  # noqa: BLE001
            raise self.fail(node, f"could not evaluate constant subgraph: {e}") from e

    # -- operators ----------------------------------------------------------------------------------------
    def _spatial(self, node, a: dict, in_hw: tuple[int, int], kernel: tuple[int, int], strides, dilations):
        pads = a.get("pads", [0, 0, 0, 0])
        if len(pads) != 4:
            raise self.fail(node, f"only 2-D spatial operators are supported (pads {pads})")
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            ph = same_pads(in_hw[0], kernel[0], strides[0], dilations[0])
            pw = same_pads(in_hw[1], kernel[1], strides[1], dilations[1])
            if auto == "SAME_LOWER":
                ph, pw = ph[::-1], pw[::-1]
            return (ph[0], pw[0], ph[1], pw[1])
        if auto == "VALID":
            return (0, 0, 0, 0)
        return (pads[0], pads[1], pads[2], pads[3])  # ONNX order: h_begin, w_begin, h_end, w_end

    def op_Conv(self, node, a):
        x = node.input[0]
        if x not in self.act or len(self.shape[x]) != 4:
            raise self.fail(node, "only 2-D convolutions on an NCHW activation are supported")
        if not self.is_const(node.input[1]):
            raise self.fail(node, "the weights must be constant (initializers)")
        w = np.asarray(self.consts[node.input[1]], np.float32)  # [O, C/groups, KH, KW]
        b = np.asarray(self.consts[node.input[2]], np.float32) if len(node.input) > 2 and node.input[2] else None
        if len(node.input) > 2 and node.input[2] and b is None:
            raise self.fail(node, "the bias must be constant")
        n, c, h, wd = self.shape[x]
        o, cg, kh, kw = w.shape
        groups = a.get("group", 1)
        strides = tuple(a.get("strides", [1, 1]))
        dil = tuple(a.get("dilations", [1, 1]))
        pads = self._spatial(node, a, (h, wd), (kh, kw), strides, dil)
        oh = conv_out_size(h, kh, strides[0], dil[0], pads[0], pads[2])
        ow = conv_out_size(wd, kw, strides[1], dil[1], pads[1], pads[3])
        ins = [self.act[x]]
        if groups == 1:
            op, wg, extra = "conv2d", w.transpose(0, 2, 3, 1), {}
        elif groups == c and cg == 1:
            op, wg, extra = "depthwise_conv2d", w.transpose(1, 2, 3, 0), {"multiplier": o // c}
        else:
            # Grouped convolution: as a dense convolution whose weights are zero across groups. Exact, and runs
            # on every TFLite runtime (groups > 1 CONV_2D is not supported by all int8 kernels).
            dense = np.zeros((o, kh, kw, c), np.float32)
            og = o // groups
            for gi in range(groups):
                dense[gi * og:(gi + 1) * og, :, :, gi * cg:(gi + 1) * cg] = w[gi * og:(gi + 1) * og].transpose(0, 2, 3, 1)
            op, wg, extra = "conv2d", dense, {}
        ins.append(self.g.add_const((node.name or "conv") + "/weights", wg))
        if b is not None:
            ins.append(self.g.add_const((node.name or "conv") + "/bias", b))
        self.emit(node, op, ins, (n, o, oh, ow), strides=strides, dilations=dil, pads=pads, act=None, **extra)

    def op_ConvTranspose(self, node, a):
        raise self.fail(node, "transposed convolution is not supported yet; use Resize + Conv instead")

    def _binary(self, node, op: str):
        a_name, b_name = node.input[0], node.input[1]
        if a_name in self.consts and b_name in self.consts:
            raise self.fail(node, "both operands are constant (should have been folded)")
        ranks = [len(self.shape[n]) for n in (a_name, b_name) if n in self.act]
        rank = max(ranks)
        ash = self.shape.get(a_name, np.shape(self.consts.get(a_name)))
        bsh = self.shape.get(b_name, np.shape(self.consts.get(b_name)))
        out = tuple(np.broadcast_shapes(tuple(ash), tuple(bsh)))
        for n in (a_name, b_name):
            if n in self.act and len(self.shape[n]) != len(out):
                raise self.fail(node, f"broadcasting an activation of rank {len(self.shape[n])} to rank {len(out)}"
                                      " is not supported")
        ins = [self.graph_tensor(n, like_rank=rank) for n in (a_name, b_name)]
        return self.emit(node, op, ins, out, act=None)

    def op_Add(self, node, a):
        self._binary(node, "add")

    def op_Mul(self, node, a):
        self._binary(node, "mul")

    def op_Sub(self, node, a):
        x, y = node.input
        if y in self.consts:  # x - c = x + (-c)
            self.consts[y + "/neg"] = -np.asarray(self.consts[y], np.float32)
        else:  # x - y = x + (-1 · y)
            neg = self.g.add_node("mul", [self.act[y], self.g.add_const("minus_one", np.array([-1.0], np.float32))],
                                  self.g.tensors[self.act[y]].shape, name=(node.name or y) + "/neg", act=None)
            self.act[y + "/neg"], self.shape[y + "/neg"] = neg, self.shape[y]
        node.input[1] = y + "/neg"
        self._binary(node, "add")

    def op_Div(self, node, a):
        x, y = node.input
        if y not in self.consts:
            raise self.fail(node, "division by an activation is not supported; only division by a constant")
        self.consts[y + "/recip"] = 1.0 / np.asarray(self.consts[y], np.float32)
        node.input[1] = y + "/recip"
        self._binary(node, "mul")

    def op_BatchNormalization(self, node, a):
        x = node.input[0]
        scale, bias, mean, var = (np.asarray(self.consts[i], np.float32) for i in node.input[1:5])
        eps = a.get("epsilon", 1e-5)
        mult = scale / np.sqrt(var + eps)
        shift = bias - mean * mult
        rank = len(self.shape[x])
        shp = (1, -1) + (1,) * (rank - 2)
        self.consts[node.output[0] + "/bn_mul"] = mult.reshape(shp)
        self.consts[node.output[0] + "/bn_add"] = shift.reshape(shp)
        s = self.shape[x]
        mul = self.g.add_node("mul", [self.act[x], self.graph_tensor(node.output[0] + "/bn_mul", rank)],
                              self.g.tensors[self.act[x]].shape, name=(node.name or x) + "/scale", act=None)
        add = self.g.add_node("add", [mul, self.graph_tensor(node.output[0] + "/bn_add", rank)],
                              self.g.tensors[self.act[x]].shape, name=node.name or node.output[0], act=None,
                              out=node.output[0])
        self.act[node.output[0]] = add
        self.shape[node.output[0]] = s

    def _unary(self, node, op: str, **attrs):
        x = node.input[0]
        self.emit(node, op, [self.act[x]], self.shape[x], **attrs)

    def op_Relu(self, node, a):
        self._unary(node, "relu")

    def op_Sigmoid(self, node, a):
        self._unary(node, "sigmoid")

    def op_Tanh(self, node, a):
        self._unary(node, "tanh")

    def op_HardSwish(self, node, a):
        self._unary(node, "hard_swish")

    def op_Clip(self, node, a):
        lo = a.get("min", -np.inf)
        hi = a.get("max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(self.consts[node.input[1]])
        if len(node.input) > 2 and node.input[2]:
            hi = float(self.consts[node.input[2]])
        kinds = {(0.0, 6.0): "relu6", (0.0, np.inf): "relu", (-1.0, 1.0): "relu_n1_to_1"}
        op = kinds.get((float(lo), float(hi)))
        if op is None:
            raise self.fail(node, f"Clip({lo}, {hi}) is not supported; supported ranges: [0, 6], [0, inf), [-1, 1]")
        self._unary(node, op)

    def op_HardSigmoid(self, node, a):
        # clip(alpha*x + beta, 0, 1) = relu6(6*alpha*x + 6*beta) / 6: exact, and quantizes with TFLite's fused RELU6.
        alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
        x = self.act[node.input[0]]
        shp = self.g.tensors[x].shape
        nm = node.name or node.output[0]
        t = self.g.add_node("mul", [x, self.g.add_const(nm + "/alpha", np.array([6 * alpha], np.float32))], shp,
                            name=nm + "/scale", act=None)
        t = self.g.add_node("add", [t, self.g.add_const(nm + "/beta", np.array([6 * beta], np.float32))], shp,
                            name=nm + "/shift", act="relu6")
        self.emit(node, "mul", [t, self.g.add_const(nm + "/sixth", np.array([1 / 6], np.float32))],
                  self.shape[node.input[0]], act=None)

    def op_LeakyRelu(self, node, a):
        x = node.input[0]
        alpha = np.array([a.get("alpha", 0.01)], np.float32)
        self.emit(node, "prelu", [self.act[x], self.g.add_const((node.name or "leaky") + "/alpha", alpha)],
                  self.shape[x])

    def op_PRelu(self, node, a):
        x, slope = node.input
        if slope not in self.consts:
            raise self.fail(node, "the slope must be constant")
        s = np.asarray(self.consts[slope], np.float32)
        rank = len(self.shape[x])
        if rank == 4 and s.ndim == 1 and s.size > 1:
            s = s.reshape(-1, 1, 1)  # torch exports per-channel slopes as [C]; ONNX broadcasts them as [C,1,1]
            self.consts[slope] = s
        self.emit(node, "prelu", [self.act[x], self.graph_tensor(slope, rank)], self.shape[x])

    def op_Identity(self, node, a):
        self.alias(node, node.input[0])

    op_Dropout = op_Identity

    def op_Cast(self, node, a):
        self.alias(node, node.input[0])  # float → float casts only reach here (int casts were folded)

    def _pool(self, node, a, op):
        x = node.input[0]
        n, c, h, w = self.shape[x]
        k = tuple(a["kernel_shape"])
        strides = tuple(a.get("strides", [1, 1]))
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise self.fail(node, "dilated pooling is not supported")
        pads = self._spatial(node, a, (h, w), k, strides, (1, 1))
        oh = conv_out_size(h, k[0], strides[0], 1, pads[0], pads[2])
        ow = conv_out_size(w, k[1], strides[1], 1, pads[1], pads[3])
        ceil_extra = (0, 0)
        if a.get("ceil_mode", 0):
            oh2 = -(-(h + pads[0] + pads[2] - k[0]) // strides[0]) + 1
            ow2 = -(-(w + pads[1] + pads[3] - k[1]) // strides[1]) + 1
            # torch and ONNX drop a last window that would start in the end padding
            oh2 -= (oh2 - 1) * strides[0] >= h + pads[0]
            ow2 -= (ow2 - 1) * strides[1] >= w + pads[1]
            if (oh2, ow2) != (oh, ow):
                # Ceil mode adds a partial window at the end: extra end padding, just enough for the last window
                # (fix: it was (oh2 - oh) * stride, which can be a row more than needed and then not TFLite SAME).
                ceil_extra = (max((oh2 - 1) * strides[0] + k[0] - (h + pads[0] + pads[2]), 0),
                              max((ow2 - 1) * strides[1] + k[1] - (w + pads[1] + pads[3]), 0))
                oh, ow = oh2, ow2
        src = self.act[x]
        if op == "avg_pool2d" and a.get("count_include_pad", 0) and any(pads):
            # Padding counted in the average becomes explicit zeros. The ceil-mode overhang is not counted by
            # torch (its divisor stops at the padded input's end), so it stays as uncounted pooling padding
            # (fix: it used to be padded explicitly too, dividing the last row/column's windows by too much).
            t = self.g.add_node("pad", [src], (n, h + pads[0] + pads[2], w + pads[1] + pads[3], c),
                                name=(node.name or x) + "/pad",
                                pads=((0, 0), (pads[0], pads[2]), (pads[1], pads[3]), (0, 0)))
            src, pads = t, (0, 0, 0, 0)
        pads = (pads[0], pads[1], pads[2] + ceil_extra[0], pads[3] + ceil_extra[1])
        self.emit(node, op, [src], (n, c, oh, ow), kernel=k, strides=strides, pads=pads, act=None)

    def op_MaxPool(self, node, a):
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "MaxPool with indices output is not supported")
        self._pool(node, a, "max_pool2d")

    def op_AveragePool(self, node, a):
        self._pool(node, a, "avg_pool2d")

    def op_GlobalAveragePool(self, node, a):
        n, c, h, w = self.shape[node.input[0]]
        self.emit(node, "mean", [self.act[node.input[0]]], (n, c, 1, 1), axes=(1, 2), keepdims=True)

    def op_GlobalMaxPool(self, node, a):
        n, c, h, w = self.shape[node.input[0]]
        self.emit(node, "max_pool2d", [self.act[node.input[0]]], (n, c, 1, 1), kernel=(h, w), strides=(1, 1),
                  pads=(0, 0, 0, 0), act=None)

    def op_ReduceMean(self, node, a):
        x = node.input[0]
        rank = len(self.shape[x])
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(v) for v in self.consts[node.input[1]]]
        if axes is None:
            axes = list(range(rank))
        axes = sorted(ax % rank for ax in axes)
        keep = bool(a.get("keepdims", 1))
        out = tuple(1 if i in axes else d for i, d in enumerate(self.shape[x]) if keep or i not in axes)
        gaxes = tuple(sorted(AXIS_TO_NHWC[ax] for ax in axes)) if rank == 4 else tuple(axes)
        if rank == 4 and not keep and len(out) != 4:
            # the NHWC result has the kept axes in NHWC order; fine unless both C and a spatial axis survive
            kept = [i for i in range(4) if i not in axes]
            if 1 in kept and (2 in kept or 3 in kept):
                raise self.fail(node, "mean over only some spatial axes without keepdims is not supported")
        self.emit(node, "mean", [self.act[x]], out, axes=gaxes, keepdims=keep)

    def op_Concat(self, node, a):
        ins = node.input
        rank = len(self.shape[ins[0]]) if ins[0] in self.act else len(np.shape(self.consts[ins[0]]))
        axis = a["axis"] % rank
        shapes = [self.shape[i] if i in self.act else np.shape(self.consts[i]) for i in ins]
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        gaxis = AXIS_TO_NHWC[axis] if rank == 4 else axis
        self.emit(node, "concat", [self.graph_tensor(i, rank) for i in ins], tuple(out), axis=gaxis, act=None)

    def op_Pad(self, node, a):
        x = node.input[0]
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "constant":
            raise self.fail(node, f"padding mode {mode!r} is not supported; only constant (zero) padding")
        pads = a.get("pads")
        if pads is None:
            pads = [int(v) for v in self.consts[node.input[1]]]
        if len(node.input) > 2 and node.input[2] and float(np.asarray(self.consts[node.input[2]]).ravel()[0]) != 0:
            raise self.fail(node, "only zero padding is supported")
        if len(node.input) > 3 and node.input[3]:
            raise self.fail(node, "padding a subset of axes (the 'axes' input) is not supported")
        rank = len(self.shape[x])
        pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
        if any(p < 0 for pr in pairs for p in pr):
            raise self.fail(node, f"negative padding (cropping) {pads} is not supported")
        out = tuple(d + p0 + p1 for d, (p0, p1) in zip(self.shape[x], pairs))
        if rank == 4:
            pairs = [pairs[i] for i in NCHW_TO_NHWC]
        self.emit(node, "pad", [self.act[x]], out, pads=tuple(pairs))

    def _reshape_to(self, node, x: str, out: tuple[int, ...]):
        src_shape = self.shape[x]
        src = self.to_nchw_layout(node, x) if len(src_shape) == 4 else self.act[x]
        if len(out) == 4 and not _same_memory_order(out):
            t = self.g.add_node("reshape", [src], out, name=(node.name or x) + "/reshape", shape=out)
            self.emit(node, "transpose", [t], out, perm=NCHW_TO_NHWC)
        else:
            gshape = tuple(out[i] for i in NCHW_TO_NHWC) if len(out) == 4 else out
            self.emit(node, "reshape", [src], out, shape=gshape)

    def op_Reshape(self, node, a):
        x = node.input[0]
        if node.input[1] not in self.consts:
            raise self.fail(node, "the target shape is not static; fix the input size (--input-size)")
        target = [int(v) for v in self.consts[node.input[1]]]
        src = self.shape[x]
        target = [src[i] if v == 0 and not a.get("allowzero", 0) else v for i, v in enumerate(target)]
        if -1 in target:
            known = int(np.prod([v for v in target if v != -1]))
            target[target.index(-1)] = int(np.prod(src)) // known
        if int(np.prod(target)) != int(np.prod(src)):
            raise self.fail(node, f"cannot reshape {src} to {target}")
        self._reshape_to(node, x, tuple(target))

    def op_Flatten(self, node, a):
        x = node.input[0]
        s = self.shape[x]
        axis = a.get("axis", 1) % len(s) if len(s) else 0
        out = (int(np.prod(s[:axis])), int(np.prod(s[axis:])))
        self._reshape_to(node, x, out)

    def op_Squeeze(self, node, a):
        x = node.input[0]
        s = self.shape[x]
        axes = a.get("axes")
        if axes is None and len(node.input) > 1:
            axes = [int(v) for v in self.consts[node.input[1]]]
        axes = [ax % len(s) for ax in axes] if axes is not None else [i for i, d in enumerate(s) if d == 1]
        self._reshape_to(node, x, tuple(d for i, d in enumerate(s) if i not in axes))

    def op_Unsqueeze(self, node, a):
        x = node.input[0]
        s = list(self.shape[x])
        axes = a.get("axes")
        if axes is None:
            axes = [int(v) for v in self.consts[node.input[1]]]
        rank = len(s) + len(axes)
        for ax in sorted(ax % rank for ax in axes):
            s.insert(ax, 1)
        self._reshape_to(node, x, tuple(s))

    def op_Transpose(self, node, a):
        x = node.input[0]
        s = self.shape[x]
        perm = tuple(a.get("perm", range(len(s) - 1, -1, -1)))
        out = tuple(s[p] for p in perm)
        if len(s) == 4:
            stored = [NHWC_TO_NCHW[p] for p in perm]  # graph axes giving the ONNX output's axes
            q = tuple(stored[j] for j in NCHW_TO_NHWC) if len(out) == 4 else tuple(stored)
        else:
            q = perm
            if len(out) == 4:
                raise self.fail(node, "transposing into a rank-4 tensor from another rank is not supported")
        if q == tuple(range(len(q))):
            self.alias(node, x)
            self.shape[node.output[0]] = out
            return
        self.emit(node, "transpose", [self.act[x]], out, perm=q)

    def op_Softmax(self, node, a):
        x = node.input[0]
        rank = len(self.shape[x])
        opset = max(o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx"))
        axis = a.get("axis", -1 if opset >= 13 else 1) % rank
        gaxis = AXIS_TO_NHWC[axis] if rank == 4 else axis
        others = [d for i, d in enumerate(self.shape[x]) if i != axis]
        if opset < 13 and axis != rank - 1 and any(d != 1 for d in self.shape[x][axis + 1:]):
            raise self.fail(node, "softmax over flattened trailing axes (opset < 13) is not supported")
        if gaxis != rank - 1 and int(np.prod(others)) != 1:
            raise self.fail(node, f"softmax over axis {axis} (not the innermost) is not supported")
        self.emit(node, "softmax", [self.act[x]], self.shape[x], axis=-1, beta=1.0)

    def op_Gemm(self, node, a):
        x, w = node.input[0], node.input[1]
        if w not in self.consts:
            raise self.fail(node, "the weight matrix (B) must be constant")
        if a.get("transA", 0):
            raise self.fail(node, "transA=1 is not supported")
        if len(self.shape[x]) != 2:
            raise self.fail(node, f"input must be 2-D, got {self.shape[x]}")
        wm = np.asarray(self.consts[w], np.float32) * a.get("alpha", 1.0)
        wm = wm if a.get("transB", 0) else wm.T  # → [O, K]
        ins = [self.act[x], self.g.add_const((node.name or "fc") + "/weights", wm)]
        if len(node.input) > 2 and node.input[2]:
            c = np.asarray(self.consts[node.input[2]], np.float32) * a.get("beta", 1.0)
            ins.append(self.g.add_const((node.name or "fc") + "/bias", np.broadcast_to(c, (wm.shape[0],)).copy()))
        self.emit(node, "fully_connected", ins, (self.shape[x][0], wm.shape[0]), act=None)

    def op_MatMul(self, node, a):
        x, w = node.input
        if w not in self.consts or len(self.shape.get(x, ())) != 2:
            raise self.fail(node, "only [N,K] x constant [K,O] matrix products are supported")
        wm = np.asarray(self.consts[w], np.float32).T
        ins = [self.act[x], self.g.add_const((node.name or "fc") + "/weights", wm)]
        self.emit(node, "fully_connected", ins, (self.shape[x][0], wm.shape[0]), act=None)

    def op_Resize(self, node, a):
        x = node.input[0]
        n, c, h, w = self.shape[x]
        sizes = None
        if len(node.input) > 3 and node.input[3]:
            sizes = [int(v) for v in self.consts[node.input[3]]]
        elif len(node.input) > 2 and node.input[2] and np.size(self.consts.get(node.input[2], [])):
            sc = np.asarray(self.consts[node.input[2]], np.float64)
            sizes = [int(np.floor(d * s)) for d, s in zip((n, c, h, w), sc)]
        elif len(node.input) > 1 and node.input[1] and node.op_type == "Upsample":
            sc = np.asarray(self.consts[node.input[1]], np.float64)
            sizes = [int(np.floor(d * s)) for d, s in zip((n, c, h, w), sc)]
        if sizes is None or sizes[:2] != [n, c]:
            raise self.fail(node, f"only static spatial resizing is supported (sizes {sizes})")
        mode = a.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        ctm = a.get("coordinate_transformation_mode", b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        if node.op_type == "Upsample":
            ctm = "asymmetric"
        if mode == "linear":
            if ctm in ("half_pixel", "pytorch_half_pixel"):
                flags = dict(align_corners=False, half_pixel_centers=True)
            elif ctm == "align_corners":
                flags = dict(align_corners=True, half_pixel_centers=False)
            elif ctm == "asymmetric":
                flags = dict(align_corners=False, half_pixel_centers=False)
            else:
                raise self.fail(node, f"coordinate transformation {ctm!r} is not supported for linear resize")
            gmode = "bilinear"
        elif mode == "nearest":
            nm = a.get("nearest_mode", b"round_prefer_floor")
            nm = nm.decode() if isinstance(nm, bytes) else nm
            if ctm == "asymmetric" and (nm == "floor" or node.op_type == "Upsample"):
                flags = dict(align_corners=False, half_pixel_centers=False)
            elif ctm == "half_pixel" and nm in ("round_prefer_ceil", "round_prefer_floor") and \
                    sizes[2] % h == 0 and sizes[3] % w == 0:
                # integer upscaling: half-pixel rounding picks the same source pixel as floor
                flags = dict(align_corners=False, half_pixel_centers=False)
            elif ctm == "align_corners":
                flags = dict(align_corners=True, half_pixel_centers=False)
            else:
                raise self.fail(node, f"nearest resize with {ctm!r}/{nm!r} is not supported; "
                                      "use asymmetric + floor (torch's default)")
            gmode = "nearest"
        else:
            raise self.fail(node, f"resize mode {mode!r} is not supported (nearest, linear)")
        self.emit(node, "resize", [self.act[x]], (n, c, sizes[2], sizes[3]), size=(sizes[2], sizes[3]),
                  mode=gmode, **flags)

    op_Upsample = op_Resize


def import_onnx(model: "str | os.PathLike | bytes | object", input_shape: tuple[int, ...] | None = None) -> Graph:
    """Read an ONNX model (path, bytes or ``onnx.ModelProto``). ``input_shape`` is NCHW (or CHW) and fixes
    dynamic dimensions."""
    onnx = _onnx()
    if isinstance(model, (str, os.PathLike)):
        if not os.path.exists(model):
            raise ConversionError(f"model file not found: {model}")
        try:
            model = onnx.load(os.fspath(model))
        except Exception as e:  # noqa: BLE001 - protobuf errors vary
            raise ConversionError(f"{model} is not a readable ONNX file ({e.__class__.__name__}: {e}); "
                                  "expected a .onnx written by torch.onnx.export or another ONNX exporter") from e
    elif isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    else:
        m2 = onnx.ModelProto()
        m2.CopyFrom(model)
        model = m2
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 11:
        raise ConversionError(f"ONNX opset {opset} is too old; re-export with opset_version=11 or later")
    return _Importer(model, input_shape).run()
