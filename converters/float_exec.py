"""Numpy reference executor for :class:`converters.ir.Graph`, with TFLite float-kernel semantics.

Used for calibration (every intermediate activation over many images) and for the float side of the
accuracy report. Everything is float32; nothing is computed in float64.

Design
------
* ``FloatExecutor.__init__`` validates each node once and turns it into a closure with its constants already
  laid out for the kernel (conv weights as an im2col matrix, fully-connected weights transposed ...).
  ``run`` only computes.
* Activations are batched along axis 0. The graph is declared with batch 1; the executor treats every declared
  leading 1 as "the batch". When a graph moves or mixes that axis (a reshape to ``[49, 64]``, a transpose whose
  ``perm[0] != 0``, a mean over axis 0 ...) it cannot be batched, and ``run`` falls back to one sample at a time
  and concatenates the results along axis 0.
* Intermediates are dropped as soon as their last consumer has run, unless the caller asked to keep them.

Kernel arithmetic follows TFLite's reference float kernels:
conv / depthwise pad with zeros; max pool ignores padding cells; average pool divides by the number of real
(non-padding) cells under the window; resize reproduces RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR index
arithmetic in float32, including their clamping.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Collection

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .ir import ConversionError, Graph, Node

__all__ = ["FloatExecutor"]

F32 = np.float32

# Upper bound on one im2col buffer; larger batches are convolved in chunks of whole samples.
_IM2COL_BYTES = 128 << 20
# Depthwise output block (rows of one sample) accumulated over all kernel taps; sized for L2.
_DW_BLOCK_BYTES = 256 << 10

Kernel = Callable[..., np.ndarray]


@dataclasses.dataclass
class _Step:
    node: Node
    fn: Kernel  # takes the node's non-constant inputs, in order
    args: list[str]  # names of those inputs
    out: str
    frees: list[str]  # tensors whose last reader is this step (never graph outputs)


class FloatExecutor:
    """Runs a :class:`Graph` on batched float32 inputs.

    >>> ex = FloatExecutor(graph)
    >>> outs = ex.run(images)                    # {output name: [N, ...]}
    >>> acts = ex.run(images, keep=True)         # plus every input and intermediate activation
    """

    def __init__(self, graph: Graph) -> None:
        graph.check()
        self.graph = graph
        self._inputs = list(graph.inputs)
        self._outputs = list(graph.outputs)
        self._activations = [t.name for t in graph.activations()]
        self._consts = {t.name: _as_f32(t.data) for t in graph.tensors.values() if t.is_const}

        batch_safe = all(len(graph.tensors[a].shape) >= 1 and graph.tensors[a].shape[0] == 1
                         for a in self._activations)
        steps: list[_Step] = []
        for node in graph.nodes:
            if len(node.outputs) != 1:
                raise ConversionError(f"internal: node {node.name!r} ({node.op}) has {len(node.outputs)} outputs; "
                                      "the executor expects exactly one")
            builder = _BUILDERS[node.op]
            try:
                fn, safe = builder(node, _Ctx(graph, self._consts, node))
            except ConversionError:
                raise
            except (ValueError, TypeError, IndexError, KeyError) as e:
                raise ConversionError(f"node {node.name!r} ({node.op}): bad attributes {node.attrs}: {e}") from e
            batch_safe = batch_safe and safe
            args = [i for i in node.inputs if i not in self._consts]
            steps.append(_Step(node, fn, args, node.outputs[0], []))
        self._batch_safe = batch_safe

        # Liveness: free each activation after the step that reads it last (or right away if nobody does).
        last_use: dict[str, int] = {}
        for k, s in enumerate(steps):
            for a in s.args:
                last_use[a] = k
        pinned = set(self._outputs)
        for k, s in enumerate(steps):
            if s.out not in last_use and s.out not in pinned:
                s.frees.append(s.out)
        for name, k in last_use.items():
            if name not in pinned:
                steps[k].frees.append(name)
        self._steps = steps

    @property
    def batchable(self) -> bool:
        """False when the graph moves its batch axis, so ``run`` executes one sample at a time."""
        return self._batch_safe

    # -- running ----------------------------------------------------------------------------------------
    def run(self, inputs: dict[str, np.ndarray] | np.ndarray, *,
            keep: Collection[str] | bool = False) -> dict[str, np.ndarray]:
        """Execute the graph on inputs batched along axis 0.

        Returns the graph outputs plus every activation named in ``keep`` (``keep=True``: all activations,
        graph inputs included). Intermediates not kept are freed as soon as their last consumer has run.
        """
        feeds = self._check_inputs(inputs)
        keep_set = self._check_keep(keep)
        n = next(iter(feeds.values())).shape[0] if feeds else 1
        if self._batch_safe or n == 1:
            return self._run_once(feeds, keep_set)
        parts = [self._run_once({k: v[i:i + 1] for k, v in feeds.items()}, keep_set) for i in range(n)]
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}

    def _run_once(self, feeds: dict[str, np.ndarray], keep: frozenset[str]) -> dict[str, np.ndarray]:
        env: dict[str, np.ndarray] = dict(self._consts)
        env.update(feeds)
        result = {k: v for k, v in feeds.items() if k in keep}
        for s in self._steps:
            y = s.fn(*[env[a] for a in s.args])
            env[s.out] = y
            if s.out in keep:
                result[s.out] = y
            for f in s.frees:
                del env[f]
        for o in self._outputs:
            result[o] = env[o]
        return result

    def _check_inputs(self, inputs: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        if not isinstance(inputs, dict):
            if len(self._inputs) != 1:
                raise ValueError(f"graph {self.graph.name!r} has inputs {self._inputs}; pass a dict "
                                 "{name: array}, not a single array")
            inputs = {self._inputs[0]: inputs}
        missing = [k for k in self._inputs if k not in inputs]
        extra = [k for k in inputs if k not in self._inputs]
        if missing or extra:
            raise ValueError(f"inputs {sorted(inputs)} do not match the graph's inputs {self._inputs} "
                             f"(missing {missing}, unknown {extra})")
        feeds, batch = {}, None
        for name in self._inputs:
            x = np.ascontiguousarray(inputs[name], dtype=F32)
            want = self.graph.tensors[name].shape
            if x.ndim != len(want) or x.shape[1:] != tuple(want[1:]) or x.shape[0] < 1:
                tail = ", ".join(map(str, want[1:]))
                raise ValueError(f"input {name!r} has shape {list(x.shape)}; expected [N, {tail}] "
                                 f"(declared {list(want)}, batched along axis 0)")
            if batch is not None and x.shape[0] != batch:
                raise ValueError(f"inputs disagree on the batch size: {name!r} has {x.shape[0]}, another has {batch}")
            if want[0] != 1 and x.shape[0] != want[0]:
                raise ValueError(f"input {name!r} is declared with a fixed leading dimension {want[0]}; "
                                 f"got {x.shape[0]}")
            batch = x.shape[0]
            feeds[name] = x
        return feeds

    def _check_keep(self, keep: Collection[str] | bool) -> frozenset[str]:
        if keep is True:
            return frozenset(self._activations)
        if keep is False or keep is None:
            return frozenset()
        keep = [keep] if isinstance(keep, str) else list(keep)
        unknown = [k for k in keep if k not in self.graph.tensors or self.graph.tensors[k].is_const]
        if unknown:
            raise ValueError(f"keep names {unknown}, which are not activations of graph {self.graph.name!r} "
                             "(constants cannot be kept; see Graph.activations())")
        return frozenset(keep)


# ----------------------------------------------------------------------------------------------------------
# Node builders: validate once, return (kernel, batch_safe).
# ----------------------------------------------------------------------------------------------------------
class _Ctx:
    def __init__(self, graph: Graph, consts: dict[str, np.ndarray], node: Node) -> None:
        self.graph, self.consts, self.node = graph, consts, node

    def shape(self, i: int) -> tuple[int, ...]:
        return self.graph.tensors[self.node.inputs[i]].shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.graph.tensors[self.node.outputs[0]].shape

    def const(self, i: int, what: str) -> np.ndarray:
        name = self.node.inputs[i]
        if name not in self.consts:
            raise ConversionError(f"node {self.node.name!r} ({self.node.op}): {what} {name!r} must be a constant")
        return self.consts[name]

    def optional_const(self, i: int, what: str) -> np.ndarray | None:
        return self.const(i, what) if len(self.node.inputs) > i else None

    def n_inputs(self, lo: int, hi: int) -> None:
        n = len(self.node.inputs)
        if not lo <= n <= hi:
            raise ConversionError(f"node {self.node.name!r} ({self.node.op}) has {n} inputs; expected "
                                  f"{lo if lo == hi else f'{lo} to {hi}'}")

    def fail(self, msg: str) -> ConversionError:
        return ConversionError(f"node {self.node.name!r} ({self.node.op}): {msg}")


def _as_f32(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=F32).view()  # a view: the graph's own array keeps its flags
    a.flags.writeable = False
    return a


def _pair(v, ctx: _Ctx, what: str) -> tuple[int, int]:
    t = tuple(int(x) for x in v)
    if len(t) != 2 or min(t) < 1:
        raise ctx.fail(f"{what} must be two positive integers, got {v!r}")
    return t  # type: ignore[return-value]


def _pads4(v, ctx: _Ctx) -> tuple[int, int, int, int]:
    t = tuple(int(x) for x in v)
    if len(t) != 4 or min(t) < 0:
        raise ctx.fail(f"pads must be four non-negative integers (top, left, bottom, right), got {v!r}")
    return t  # type: ignore[return-value]


def _act_fn(ctx: _Ctx) -> Callable[[np.ndarray], np.ndarray]:
    """The fused activation, applied in place to a freshly computed output."""
    act = ctx.node.act
    if act is None:
        return lambda y: y
    if act == "relu":
        return lambda y: np.maximum(y, 0, out=y)
    if act == "relu6":
        return lambda y: np.clip(y, 0, 6, out=y)
    if act == "relu_n1_to_1":
        return lambda y: np.clip(y, -1, 1, out=y)
    raise ctx.fail(f"unknown fused activation {act!r}")


def _pad_zero(x: np.ndarray, pt: int, pl: int, pb: int, pr: int, fill: float = 0.0) -> np.ndarray:
    if not (pt or pl or pb or pr):
        return x
    n, h, w, c = x.shape
    xp = np.full((n, h + pt + pb, w + pl + pr, c), fill, dtype=F32)
    xp[:, pt:pt + h, pl:pl + w, :] = x
    return xp


def _out_size(size: int, k: int, s: int, d: int, before: int, after: int) -> int:
    return (size + before + after - ((k - 1) * d + 1)) // s + 1


def _check_spatial(ctx: _Ctx, kh: int, kw: int, strides, dilations, pads) -> None:
    shape = ctx.shape(0)
    if len(shape) != 4:
        raise ctx.fail(f"expects an NHWC input of rank 4, got shape {list(shape)}")
    _, h, w, _ = shape
    oh = _out_size(h, kh, strides[0], dilations[0], pads[0], pads[2])
    ow = _out_size(w, kw, strides[1], dilations[1], pads[1], pads[3])
    if oh < 1 or ow < 1:
        raise ctx.fail(f"window {kh}x{kw} (dilation {dilations}) does not fit input {h}x{w} with pads {pads}")


def _build_conv2d(node: Node, ctx: _Ctx):
    ctx.n_inputs(2, 3)
    w = ctx.const(1, "weight")
    b = ctx.optional_const(2, "bias")
    strides = _pair(node.attrs["strides"], ctx, "strides")
    dil = _pair(node.attrs["dilations"], ctx, "dilations")
    pads = _pads4(node.attrs["pads"], ctx)
    if w.ndim != 4:
        raise ctx.fail(f"weight must be [O, KH, KW, C], got shape {list(w.shape)}")
    o, kh, kw, c = w.shape
    if ctx.shape(0)[-1] != c:
        raise ctx.fail(f"weight has {c} input channels but the input has {ctx.shape(0)[-1]} "
                       "(grouped convolution is not representable; split it into per-group conv2d + concat)")
    if b is not None and b.shape != (o,):
        raise ctx.fail(f"bias must have shape [{o}], got {list(b.shape)}")
    _check_spatial(ctx, kh, kw, strides, dil, pads)
    # im2col column order is (kh, kw, c), matching the weight's own memory order.
    wmat = np.ascontiguousarray(w.reshape(o, kh * kw * c).T)
    act = _act_fn(ctx)
    sh, sw = strides
    dh, dw = dil
    pt, pl, pb, pr = pads
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    pointwise = kh == kw == 1

    def conv2d(x: np.ndarray) -> np.ndarray:
        xp = _pad_zero(x, pt, pl, pb, pr)
        n = xp.shape[0]
        oh = (xp.shape[1] - eff_h) // sh + 1
        ow = (xp.shape[2] - eff_w) // sw + 1
        if pointwise:
            cols = xp[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw, :]
            y = cols.reshape(n * oh * ow, c) @ wmat
        else:
            # [N, OH', OW', C, effH, effW] view, strided down to [N, OH, OW, C, KH, KW], then copied to
            # (N*OH*OW, KH*KW*C) rows with C innermost, so each row is a run of contiguous pixels.
            win = sliding_window_view(xp, (eff_h, eff_w), axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]
            win = win.transpose(0, 1, 2, 4, 5, 3)
            per_sample = oh * ow * kh * kw * c * 4
            step = max(1, _IM2COL_BYTES // max(per_sample, 1))
            if step >= n:
                y = win.reshape(n * oh * ow, kh * kw * c) @ wmat
            else:
                y = np.empty((n * oh * ow, o), dtype=F32)
                for i in range(0, n, step):
                    j = min(n, i + step)
                    np.matmul(win[i:j].reshape((j - i) * oh * ow, kh * kw * c), wmat, out=y[i * oh * ow:j * oh * ow])
        if b is not None:
            y += b
        return act(y.reshape(n, oh, ow, o))

    return conv2d, True


def _build_depthwise_conv2d(node: Node, ctx: _Ctx):
    ctx.n_inputs(2, 3)
    w = ctx.const(1, "weight")
    b = ctx.optional_const(2, "bias")
    strides = _pair(node.attrs["strides"], ctx, "strides")
    dil = _pair(node.attrs["dilations"], ctx, "dilations")
    pads = _pads4(node.attrs["pads"], ctx)
    m = int(node.attrs["multiplier"])
    c = ctx.shape(0)[-1]
    if m < 1:
        raise ctx.fail(f"multiplier must be >= 1, got {m}")
    if w.ndim != 4 or w.shape[0] != 1 or w.shape[3] != c * m:
        raise ctx.fail(f"weight must be [1, KH, KW, C*M] = [1, KH, KW, {c * m}] for {c} channels and "
                       f"multiplier {m}, got {list(w.shape)}")
    if b is not None and b.shape != (c * m,):
        raise ctx.fail(f"bias must have shape [{c * m}], got {list(b.shape)}")
    _, kh, kw, cm = w.shape
    _check_spatial(ctx, kh, kw, strides, dil, pads)
    taps = [(i, j, np.ascontiguousarray(w[0, i, j])) for i in range(kh) for j in range(kw)]
    act = _act_fn(ctx)
    sh, sw = strides
    dh, dw = dil
    pt, pl, pb, pr = pads
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1

    def depthwise_conv2d(x: np.ndarray) -> np.ndarray:
        if m > 1:
            x = np.repeat(x, m, axis=3)  # output channel c*M+k reads input channel c
        xp = _pad_zero(x, pt, pl, pb, pr)
        n = xp.shape[0]
        oh = (xp.shape[1] - eff_h) // sh + 1
        ow = (xp.shape[2] - eff_w) // sw + 1
        y = np.empty((n, oh, ow, cm), dtype=F32)
        # Accumulate one block of output rows of one sample over all taps while it is still in cache.
        rows = max(1, min(oh, _DW_BLOCK_BYTES // (ow * cm * 4)))
        tmp = np.empty((rows, ow, cm), dtype=F32)
        for s in range(n):
            for r0 in range(0, oh, rows):
                r1 = min(oh, r0 + rows)
                yb, tb = y[s, r0:r1], tmp[:r1 - r0]
                for t, (i, j, wt) in enumerate(taps):
                    y0, x0 = i * dh + r0 * sh, j * dw
                    sl = xp[s, y0:y0 + (r1 - r0 - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :]
                    if t == 0:
                        np.multiply(sl, wt, out=yb)
                    else:
                        np.multiply(sl, wt, out=tb)
                        yb += tb
        if b is not None:
            y += b
        return act(y)

    return depthwise_conv2d, True


def _build_fully_connected(node: Node, ctx: _Ctx):
    ctx.n_inputs(2, 3)
    w = ctx.const(1, "weight")
    b = ctx.optional_const(2, "bias")
    if w.ndim != 2:
        raise ctx.fail(f"weight must be [O, K], got shape {list(w.shape)}")
    o, k = w.shape
    if b is not None and b.shape != (o,):
        raise ctx.fail(f"bias must have shape [{o}], got {list(b.shape)}")
    in_shape, out_shape = ctx.shape(0), ctx.out_shape
    # TFLite flattens the input to rows of K; the declared output tells how the rows are laid out.
    if math.prod(in_shape) % k or math.prod(in_shape) // k * o != math.prod(out_shape):
        raise ctx.fail(f"input {list(in_shape)} and output {list(out_shape)} do not fit weight [{o}, {k}]")
    batch_safe = in_shape[0] == 1 and out_shape[0] == 1
    tail = tuple(out_shape[1:])
    wmat = np.ascontiguousarray(w.T)
    act = _act_fn(ctx)

    def fully_connected(x: np.ndarray) -> np.ndarray:
        y = x.reshape(-1, k) @ wmat
        if b is not None:
            y += b
        return act(y.reshape((x.shape[0],) + tail if batch_safe else out_shape))

    return fully_connected, batch_safe


def _bind_consts(ctx: _Ctx, fn: Kernel) -> Kernel:
    """Wrap fn(all inputs) as a kernel taking only the non-constant inputs."""
    slots = [ctx.consts.get(i) for i in ctx.node.inputs]
    if all(s is None for s in slots):
        return fn

    def bound(*acts: np.ndarray) -> np.ndarray:
        it = iter(acts)
        return fn(*[s if s is not None else next(it) for s in slots])

    return bound


def _consts_keep_batch(ctx: _Ctx) -> bool:
    """A constant operand broadcasts over the batch unless it has a full-rank leading dimension != 1."""
    rank = len(ctx.out_shape)
    for i in ctx.node.inputs:
        c = ctx.consts.get(i)
        if c is not None and c.ndim >= rank and c.ndim > 0 and c.shape[0] != 1:
            return False
    return True


def _build_binary(ufunc):
    def build(node: Node, ctx: _Ctx):
        ctx.n_inputs(2, 2)
        act = _act_fn(ctx)
        if all(i in ctx.consts for i in node.inputs):
            raise ctx.fail("both operands are constants; fold the node before execution")

        def binary(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return act(ufunc(a, b))

        return _bind_consts(ctx, binary), _consts_keep_batch(ctx)

    return build


def _norm_axis(axis: int, rank: int, ctx: _Ctx) -> int:
    if not -rank <= int(axis) < rank:
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    return int(axis) % rank


def _build_concat(node: Node, ctx: _Ctx):
    ctx.n_inputs(1, 1 << 16)
    axis = _norm_axis(node.attrs["axis"], len(ctx.out_shape), ctx)
    act = _act_fn(ctx)
    slots = [ctx.consts.get(i) for i in node.inputs]
    if all(sl is not None for sl in slots):
        raise ctx.fail("every input is a constant; fold the node before execution")
    # A constant part declared with batch 1 is repeated over the batch (it does not broadcast by itself).
    stretch = axis != 0 and all(sl is None or (sl.ndim == len(ctx.out_shape) and sl.shape[0] == 1) for sl in slots)

    def concat(*acts: np.ndarray) -> np.ndarray:
        n = acts[0].shape[0]
        it = iter(acts)
        parts = [next(it) if sl is None else np.broadcast_to(sl, (n,) + sl.shape[1:]) if stretch else sl
                 for sl in slots]
        if len(parts) == 1:
            return act(parts[0].copy())
        return act(np.concatenate(parts, axis=axis))

    return concat, stretch


def _build_pad(node: Node, ctx: _Ctx):
    ctx.n_inputs(1, 1)
    rank = len(ctx.shape(0))
    pads = tuple((int(p[0]), int(p[1])) for p in node.attrs["pads"])
    if len(pads) != rank or any(min(p) < 0 for p in pads):
        raise ctx.fail(f"pads must be {rank} non-negative (before, after) pairs, got {node.attrs['pads']!r}")

    def pad(x: np.ndarray) -> np.ndarray:
        return np.pad(x, pads)

    return pad, pads[0] == (0, 0)


def _pool_params(node: Node, ctx: _Ctx):
    ctx.n_inputs(1, 1)
    kh, kw = _pair(node.attrs["kernel"], ctx, "kernel")
    strides = _pair(node.attrs["strides"], ctx, "strides")
    pads = _pads4(node.attrs["pads"], ctx)
    if pads[0] >= kh or pads[2] >= kh or pads[1] >= kw or pads[3] >= kw:
        # A window lying wholly in the padding has no real cell: TFLite never produces one.
        raise ctx.fail(f"pads {pads} must be smaller than the kernel {kh}x{kw}")
    _check_spatial(ctx, kh, kw, strides, (1, 1), pads)
    return kh, kw, strides, pads


def _build_max_pool2d(node: Node, ctx: _Ctx):
    kh, kw, (sh, sw), (pt, pl, pb, pr) = _pool_params(node, ctx)
    act = _act_fn(ctx)

    def max_pool2d(x: np.ndarray) -> np.ndarray:
        xp = _pad_zero(x, pt, pl, pb, pr, fill=-np.inf)  # padding never wins the max
        oh = (xp.shape[1] - kh) // sh + 1
        ow = (xp.shape[2] - kw) // sw + 1
        y = None
        for i in range(kh):
            for j in range(kw):
                sl = xp[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
                if y is None:
                    y = sl.copy()
                else:
                    np.maximum(y, sl, out=y)
        return act(y)

    return max_pool2d, True


def _valid_counts(size: int, out: int, k: int, s: int, before: int) -> np.ndarray:
    """Per output position, how many of the k window cells fall inside [0, size)."""
    start = np.arange(out) * s - before
    return (np.minimum(start + k, size) - np.maximum(start, 0)).astype(F32)


def _build_avg_pool2d(node: Node, ctx: _Ctx):
    kh, kw, (sh, sw), (pt, pl, pb, pr) = _pool_params(node, ctx)
    act = _act_fn(ctx)
    divisors: dict[tuple[int, int], np.ndarray] = {}

    def avg_pool2d(x: np.ndarray) -> np.ndarray:
        h, w = x.shape[1], x.shape[2]
        xp = _pad_zero(x, pt, pl, pb, pr)
        oh = (xp.shape[1] - kh) // sh + 1
        ow = (xp.shape[2] - kw) // sw + 1
        y = None
        for i in range(kh):
            for j in range(kw):
                sl = xp[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
                if y is None:
                    y = sl.copy()
                else:
                    y += sl
        div = divisors.get((h, w))
        if div is None:
            div = np.outer(_valid_counts(h, oh, kh, sh, pt), _valid_counts(w, ow, kw, sw, pl))[None, :, :, None]
            divisors[(h, w)] = div
        y /= div
        return act(y)

    return avg_pool2d, True


def _build_mean(node: Node, ctx: _Ctx):
    ctx.n_inputs(1, 1)
    rank = len(ctx.shape(0))
    axes = tuple(sorted({_norm_axis(a, rank, ctx) for a in node.attrs["axes"]}))
    keepdims = bool(node.attrs["keepdims"])

    def mean(x: np.ndarray) -> np.ndarray:
        return np.mean(x, axis=axes, keepdims=keepdims, dtype=F32)

    return mean, 0 not in axes


def _unary(fn: Callable[[np.ndarray], np.ndarray]):
    def build(node: Node, ctx: _Ctx):
        ctx.n_inputs(1, 1)
        return fn, True

    return build


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, F32(0))


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, F32(0), F32(6))


def _relu_n1_to_1(x: np.ndarray) -> np.ndarray:
    return np.clip(x, F32(-1), F32(1))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    y = np.negative(x)
    with np.errstate(over="ignore"):  # exp(-x) -> inf gives sigmoid 0, which is right
        np.exp(y, out=y)
    y += F32(1)
    return np.reciprocal(y, out=y)


def _hard_swish(x: np.ndarray) -> np.ndarray:
    y = x + F32(3)
    np.clip(y, F32(0), F32(6), out=y)
    y *= x
    y /= F32(6)
    return y


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def _build_prelu(node: Node, ctx: _Ctx):
    ctx.n_inputs(2, 2)
    alpha = ctx.const(1, "alpha")
    try:
        np.broadcast_shapes(ctx.shape(0), alpha.shape)
    except ValueError:
        raise ctx.fail(f"alpha of shape {list(alpha.shape)} does not broadcast to input {list(ctx.shape(0))}") from None

    def prelu(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x, x * alpha)

    return prelu, _consts_keep_batch(ctx)


def _build_softmax(node: Node, ctx: _Ctx):
    ctx.n_inputs(1, 1)
    axis = _norm_axis(node.attrs.get("axis", -1), len(ctx.shape(0)), ctx)
    beta = F32(node.attrs.get("beta", 1.0))

    def softmax(x: np.ndarray) -> np.ndarray:
        y = x - x.max(axis=axis, keepdims=True)
        if beta != 1:
            y *= beta
        np.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        return y

    return softmax, axis != 0


def _build_reshape(node: Node, ctx: _Ctx):
    ctx.n_inputs(1, 1)
    in_shape = ctx.shape(0)
    shape = [int(s) for s in node.attrs["shape"]]
    total = math.prod(in_shape)
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        raise ctx.fail(f"shape {shape} may hold at most one -1 and no other negative size")
    if -1 in shape:
        rest = math.prod(s for s in shape if s != -1)
        if rest == 0 or total % rest:
            raise ctx.fail(f"shape {shape} does not fit input {list(in_shape)}")
        shape[shape.index(-1)] = total // rest
    if math.prod(shape) != total:
        raise ctx.fail(f"shape {shape} has {math.prod(shape)} elements; input {list(in_shape)} has {total}")
    # With batch 1 declared on both sides, the leading 1 is the batch and stretches to N.
    tail = tuple(shape[1:])
    batch_safe = bool(shape) and shape[0] == 1 and bool(in_shape) and in_shape[0] == 1

    full = tuple(shape)

    def reshape(x: np.ndarray) -> np.ndarray:
        return x.reshape((x.shape[0],) + tail if batch_safe else full)

    return reshape, batch_safe


def _build_transpose(node: Node, ctx: _Ctx):
    ctx.n_inputs(1, 1)
    rank = len(ctx.shape(0))
    perm = tuple(int(p) for p in node.attrs["perm"])
    if sorted(perm) != list(range(rank)):
        raise ctx.fail(f"perm {perm} is not a permutation of {rank} axes")

    def transpose(x: np.ndarray) -> np.ndarray:
        return x.transpose(perm)

    return transpose, perm[0] == 0


def _resize_axis_bilinear(in_size: int, out_size: int, align: bool, half: bool):
    """TFLite RESIZE_BILINEAR source positions for one axis, in float32 as the kernel computes them.

    scale = in/out, or (in-1)/(out-1) with align_corners; the source of output i is i*scale, or
    (i+0.5)*scale-0.5 with half_pixel_centers. lo = max(floor(src), 0), hi = min(ceil(src), in-1); the weight
    of hi is src-lo. When src is clamped, lo == hi, so the (out-of-[0,1]) weight still yields that pixel.
    """
    scale = F32(in_size) / F32(out_size)
    if align and out_size > 1:
        scale = F32(in_size - 1) / F32(out_size - 1)
    i = np.arange(out_size, dtype=F32)
    src = (i + F32(0.5)) * scale - F32(0.5) if half else i * scale
    lo = np.minimum(np.maximum(np.floor(src), 0).astype(np.intp), in_size - 1)
    hi = np.minimum(np.ceil(src).astype(np.intp), in_size - 1)
    frac = (src - lo.astype(F32)).astype(F32)
    return lo, hi, frac


def _resize_axis_nearest(in_size: int, out_size: int, align: bool, half: bool) -> np.ndarray:
    """TFLite RESIZE_NEAREST_NEIGHBOR source index for one axis.

    v = (i + offset) * scale in float32 (offset 0.5 with half_pixel_centers); index = round-half-away(v) with
    align_corners, floor(v) otherwise; clamped to in-1 (and to 0 with half_pixel_centers).
    """
    scale = F32(in_size) / F32(out_size)
    if align and out_size > 1:
        scale = F32(in_size - 1) / F32(out_size - 1)
    offset = F32(0.5) if half else F32(0)
    v = (np.arange(out_size, dtype=F32) + offset) * scale
    if align:
        t = np.trunc(v)
        idx = t + (v - t >= F32(0.5))  # std::round: halves away from zero (v >= 0 here)
    else:
        idx = np.floor(v)
    return np.clip(idx.astype(np.intp), 0, in_size - 1)


def _build_resize(node: Node, ctx: _Ctx):
    ctx.n_inputs(1, 1)
    shape = ctx.shape(0)
    if len(shape) != 4:
        raise ctx.fail(f"expects an NHWC input of rank 4, got shape {list(shape)}")
    oh, ow = _pair(node.attrs["size"], ctx, "size")
    mode = node.attrs["mode"]
    align = bool(node.attrs.get("align_corners", False))
    half = bool(node.attrs.get("half_pixel_centers", False))
    _, h, w, _ = shape
    if mode == "nearest":
        iy = _resize_axis_nearest(h, oh, align, half)
        ix = _resize_axis_nearest(w, ow, align, half)

        def resize_nearest(x: np.ndarray) -> np.ndarray:
            return x[:, iy][:, :, ix]

        return resize_nearest, True
    if mode != "bilinear":
        raise ctx.fail(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    if align and half:
        raise ctx.fail("bilinear resize cannot have both align_corners and half_pixel_centers (TFLite forbids it)")
    y0, y1, fy = _resize_axis_bilinear(h, oh, align, half)
    x0, x1, fx = _resize_axis_bilinear(w, ow, align, half)
    fy = fy[None, :, None, None]
    fx = fx[None, None, :, None]

    def resize_bilinear(x: np.ndarray) -> np.ndarray:
        top, bot = x[:, y0], x[:, y1]
        rows = top + (bot - top) * fy
        left, right = rows[:, :, x0], rows[:, :, x1]
        return left + (right - left) * fx

    return resize_bilinear, True


_BUILDERS: dict[str, Callable[[Node, _Ctx], tuple[Kernel, bool]]] = {
    "conv2d": _build_conv2d,
    "depthwise_conv2d": _build_depthwise_conv2d,
    "fully_connected": _build_fully_connected,
    "add": _build_binary(np.add),
    "mul": _build_binary(np.multiply),
    "concat": _build_concat,
    "pad": _build_pad,
    "max_pool2d": _build_max_pool2d,
    "avg_pool2d": _build_avg_pool2d,
    "mean": _build_mean,
    "relu": _unary(_relu),
    "relu6": _unary(_relu6),
    "relu_n1_to_1": _unary(_relu_n1_to_1),
    "sigmoid": _unary(_sigmoid),
    "hard_swish": _unary(_hard_swish),
    "tanh": _unary(_tanh),
    "prelu": _build_prelu,
    "softmax": _build_softmax,
    "reshape": _build_reshape,
    "transpose": _build_transpose,
    "resize": _build_resize,
}

