"""Float-graph rewrites that make the int8 model smaller, faster and more accurate, without changing its
float function: fold per-channel scale/shift (BatchNorm) into the preceding layer, fuse ReLU/ReLU6 into their
producer, fold zero padding into convolutions, fold transposes into fully-connected weights, and make every
padding expressible as TFLite's SAME or VALID.
"""
from __future__ import annotations

import numpy as np

from .ir import FUSABLE, ConversionError, Graph, Node, padding_mode

_LINEAR = ("conv2d", "depthwise_conv2d", "fully_connected")


def _sole_consumer(g: Graph, tensor: str) -> Node | None:
    cs = g.consumers(tensor)
    if len(cs) == 1 and tensor not in g.outputs:
        return cs[0]
    return None


def _per_channel(g: Graph, node: Node, out_channels: int) -> tuple[int, np.ndarray] | None:
    """(index of the activation input, constant as a [out_channels] vector) if ``node`` is an add/mul of an
    activation by a constant that varies along the last axis only."""
    for k in (0, 1):
        c = g.const(node.inputs[1 - k])
        if c is not None and g.const(node.inputs[k]) is None:
            if c.size in (1, out_channels) and all(d == 1 for d in c.shape[:-1]):
                return k, np.broadcast_to(c.reshape(-1), (out_channels,)).astype(np.float32)
    return None


def fold_scale_shift(g: Graph) -> int:
    """conv/dwconv/fc → mul(const per channel) → add(const per channel): fold into weights and bias."""
    folded = 0
    changed = True
    while changed:
        changed = False
        for node in list(g.nodes):
            if node.op not in _LINEAR or node.act:
                continue
            nxt = _sole_consumer(g, node.outputs[0])
            if nxt is None or nxt.op not in ("mul", "add"):
                continue
            w = g.const(node.inputs[1])
            oc = w.shape[0] if node.op != "depthwise_conv2d" else w.shape[3]
            pc = _per_channel(g, nxt, oc)
            if pc is None or g.tensors[nxt.outputs[0]].shape != g.tensors[node.outputs[0]].shape:
                continue
            _, vec = pc
            bias = g.const(node.inputs[2]) if len(node.inputs) > 2 else np.zeros(oc, np.float32)
            if nxt.op == "mul":
                if node.op == "depthwise_conv2d":
                    w = w * vec.reshape(1, 1, 1, -1)
                else:
                    w = w * vec.reshape((-1,) + (1,) * (w.ndim - 1))
                bias = bias * vec
                node.inputs[1] = g.add_const(node.inputs[1] + "_folded", w.astype(np.float32))
            else:
                bias = bias + vec
            b_name = g.add_const(node.name + "/bias_folded", bias.astype(np.float32))
            node.inputs = node.inputs[:2] + [b_name]
            node.attrs["act"] = nxt.act
            # the linear node now produces what the mul/add produced
            g.remove_node(nxt)
            g.replace_uses(nxt.outputs[0], node.outputs[0])
            _rename_output(g, node, nxt.outputs[0])
            folded += 1
            changed = True
    g.prune()
    return folded


def _rename_output(g: Graph, node: Node, new_name: str) -> None:
    """Give ``node``'s output the name of the tensor it replaced (keeps user-visible names stable)."""
    old = node.outputs[0]
    if old == new_name:
        return
    t = g.tensors.pop(old)
    g.tensors.pop(new_name, None)
    t.name = new_name
    g.tensors[new_name] = t
    node.outputs[0] = new_name
    g.replace_uses(old, new_name)


_ACT_OPS = {"relu": "relu", "relu6": "relu6", "relu_n1_to_1": "relu_n1_to_1"}


def fuse_activations(g: Graph) -> int:
    """relu/relu6/relu_n1_to_1 after a fusable op with no activation → the op's fused activation."""
    n = 0
    for node in list(g.nodes):
        if node.op not in FUSABLE or node.act:
            continue
        nxt = _sole_consumer(g, node.outputs[0])
        if nxt is None or nxt.op not in _ACT_OPS:
            continue
        node.attrs["act"] = _ACT_OPS[nxt.op]
        g.remove_node(nxt)
        _rename_output(g, node, nxt.outputs[0])
        n += 1
    g.prune()
    return n


def fold_pads(g: Graph) -> int:
    """Zero pad over H and W only, consumed only by a convolution: add it to the convolution's padding."""
    n = 0
    for node in list(g.nodes):
        if node.op != "pad":
            continue
        p = node.attrs["pads"]
        if len(p) != 4 or p[0] != (0, 0) or p[3] != (0, 0):
            continue
        cs = g.consumers(node.outputs[0])
        if not cs or node.outputs[0] in g.outputs or any(c.op not in ("conv2d", "depthwise_conv2d") for c in cs):
            continue
        for c in cs:
            t, l, b, r = c.attrs["pads"]
            c.attrs["pads"] = (t + p[1][0], l + p[2][0], b + p[1][1], r + p[2][1])
            c.inputs[0] = node.inputs[0]
        g.remove_node(node)
        n += 1
    g.prune()
    return n


# Ops whose output is >= 0 whatever their input, and ops whose output is >= 0 when all their inputs are
# (they select, average or move values).
_NON_NEGATIVE_OPS = ("relu", "relu6", "sigmoid", "softmax")
_SIGN_KEEPING_OPS = ("max_pool2d", "avg_pool2d", "mean", "pad", "reshape", "transpose", "resize", "concat")


def _non_negative(g: Graph, tensor: str) -> bool:
    """True when every value of ``tensor`` is >= 0 by construction (then zero padding cannot win a max)."""
    t = g.tensors[tensor]
    if t.is_const:
        return bool(t.data.size == 0 or t.data.min() >= 0)
    prod = g.producer(tensor)
    if prod is None:
        return False  # the model input
    if prod.act in ("relu", "relu6") or prod.op in _NON_NEGATIVE_OPS:
        return True
    return prod.op in _SIGN_KEEPING_OPS and all(_non_negative(g, i) for i in prod.inputs)


def legalize_padding(g: Graph) -> int:
    """TFLite convolutions and pools pad only as SAME or VALID: split any other padding into a PAD op.

    Max pooling pads with the lowest value rather than zero, so a max pool whose padding is not SAME is an
    error here only if its input can be negative; we pad explicitly and let calibration see the zeros, which is
    exact after a ReLU (the usual case) and is refused otherwise."""
    n = 0
    for node in list(g.nodes):
        if node.op not in ("conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d") or padding_mode(g, node):
            continue
        pads = tuple(node.attrs["pads"])
        if node.op == "max_pool2d" and not _non_negative(g, node.inputs[0]):
            raise ConversionError(f"node {node.name!r}: max pooling with padding {pads} (not SAME) on an input"
                                  " that can be negative is not supported")
        if node.op == "avg_pool2d":
            raise ConversionError(f"node {node.name!r}: average pooling with padding {pads} that is not TFLite "
                                  "SAME is not supported; use padding that matches 'same' or none")
        shp = g.tensors[node.inputs[0]].shape
        t, l, b, r = pads
        padded = (shp[0], shp[1] + t + b, shp[2] + l + r, shp[3])
        p = g.add_node("pad", [node.inputs[0]], padded, name=node.name + "/pad",
                       pads=((0, 0), (t, b), (l, r), (0, 0)))
        g.nodes.insert(g.nodes.index(node), g.nodes.pop())  # keep topological order
        node.inputs[0] = p
        node.attrs["pads"] = (0, 0, 0, 0)
        n += 1
    return n


def fold_transpose_into_fc(g: Graph) -> int:
    """transpose(NHWC→NCHW) → reshape [N, C*H*W] → fully_connected: permute the weight columns instead, so the
    int8 model flattens NHWC directly (no TRANSPOSE op on the device)."""
    n = 0
    for node in list(g.nodes):
        if node.op != "transpose" or tuple(node.attrs["perm"]) != (0, 3, 1, 2):
            continue
        rs = _sole_consumer(g, node.outputs[0])
        if rs is None or rs.op != "reshape" or len(rs.attrs["shape"]) != 2:
            continue
        fcs = g.consumers(rs.outputs[0])
        if not fcs or rs.outputs[0] in g.outputs or any(f.op != "fully_connected" for f in fcs):
            continue
        _, h, w, c = g.tensors[node.inputs[0]].shape
        # column j of the weights reads NCHW-flat index j = c*H*W + y*W + x; the NHWC-flat index of the same
        # element is (y*W + x)*C + c.
        idx = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
        for f in fcs:
            wm = g.const(f.inputs[1])
            f.inputs[1] = g.add_const(f.inputs[1] + "_nhwc", wm[:, idx])
        rs.inputs[0] = node.inputs[0]
        g.remove_node(node)
        n += 1
    g.prune()
    return n


def drop_identities(g: Graph) -> int:
    """Reshapes to the same shape and identity transposes."""
    n = 0
    for node in list(g.nodes):
        src = g.tensors[node.inputs[0]] if node.inputs else None
        same = src is not None and src.shape == g.tensors[node.outputs[0]].shape
        if (node.op == "reshape" and same) or (node.op == "transpose" and
                                               tuple(node.attrs["perm"]) == tuple(range(len(node.attrs["perm"])))):
            if node.outputs[0] in g.outputs and node.inputs[0] in g.inputs:
                continue
            g.remove_node(node)
            g.replace_uses(node.outputs[0], node.inputs[0])
            n += 1
    g.prune()
    return n


def collapse_reshapes(g: Graph) -> int:
    """reshape → reshape: one reshape."""
    n = 0
    for node in list(g.nodes):
        if node.op != "reshape":
            continue
        prod = g.producer(node.inputs[0])
        if prod is not None and prod.op == "reshape" and _sole_consumer(g, prod.outputs[0]) is node:
            node.inputs[0] = prod.inputs[0]
            g.remove_node(prod)
            n += 1
    g.prune()
    return n


def _const_scalar(g: Graph, node: Node) -> tuple[str, float] | None:
    """(activation input, constant) of a binary node whose other operand is a one-element constant."""
    for k in (0, 1):
        c = g.const(node.inputs[1 - k])
        if c is not None and c.size == 1 and g.const(node.inputs[k]) is None:
            return node.inputs[k], float(c.reshape(-1)[0])
    return None


def fuse_hard_swish(g: Graph) -> int:
    """x · hard_sigmoid(x) → hard_swish(x). Older exports (ONNX opset < 14) write HardSwish that way; the
    importers turn hard_sigmoid into mul(6α) → add(6β, relu6) → mul(1/6). One HARD_SWISH is exact and
    quantizes better than four int8 ops."""
    n = 0
    for node in list(g.nodes):
        if node.op != "mul" or node.act or len(node.inputs) != 2 or node not in g.nodes:
            continue
        for k in (0, 1):
            x, t = node.inputs[k], node.inputs[1 - k]
            sixth = g.producer(t)
            if sixth is None or sixth.op != "mul" or sixth.act or _sole_consumer(g, t) is not node:
                continue
            a = _const_scalar(g, sixth)
            if a is None or not np.isclose(a[1], 1 / 6):
                continue
            add = g.producer(a[0])
            if add is None or add.op != "add" or add.act != "relu6" or _sole_consumer(g, a[0]) is not sixth:
                continue
            b = _const_scalar(g, add)
            if b is None or not np.isclose(b[1], 3.0):
                continue
            src = b[0]
            scale = g.producer(src)
            if scale is not None and scale.op == "mul" and not scale.act and _sole_consumer(g, src) is add:
                c = _const_scalar(g, scale)
                if c is not None and np.isclose(c[1], 1.0):
                    src = c[0]
            if src != x:
                continue
            node.op, node.inputs, node.attrs = "hard_swish", [x], {}
            n += 1
            break
    g.prune()
    return n


def optimize(g: Graph) -> dict[str, int]:
    """All passes, in an order where each exposes work for the next."""
    stats = {
        "identities": drop_identities(g),
        "scale_shift_folded": fold_scale_shift(g),
        "pads_folded": fold_pads(g),
        "activations_fused": fuse_activations(g),
        "hard_swish_fused": fuse_hard_swish(g),
        "transposes_folded": fold_transpose_into_fc(g),
        "reshapes_collapsed": collapse_reshapes(g),
    }
    stats["identities"] += drop_identities(g)
    stats["pads_legalized"] = legalize_padding(g)
    g.toposort()
    g.check()
    return stats
