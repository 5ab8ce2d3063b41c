"""Error-compensating weight rounding (GPTQ / OPTQ, Frantar et al. 2022), for int8 per-channel weights.

Rounding each weight to the nearest int8 value (round-to-nearest) ignores that a layer's inputs are correlated:
the error one rounded weight causes can be cancelled by nudging the weights not yet rounded. With
H = E[x xᵀ] the second moment of the layer's inputs (from calibration), quantizing the input dimensions one at
a time and spreading each rounding error over the remaining ones through H⁻¹ minimises the expected squared
error of the layer's *output* rather than of its weights. The output scale of every channel stays what
round-to-nearest would use, so the file format and the kernels are unchanged.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph, Node

MAX_ROWS = 1 << 14  # input vectors per batch and layer that feed H (a random subset beyond this)
MAX_DEPTHWISE_ROWS = 1 << 9  # per batch for depthwise layers (H is only taps × taps per channel there)


def _sampled_patches(x: np.ndarray, node: Node, kh: int, kw: int, n: int, rng) -> np.ndarray:
    """``n`` random input patches of a convolution (or all of them if fewer), [P, KH, KW, C], in the weight's
    (kh, kw, c) order. Windows are gathered from a strided view: nothing of full im2col size is built."""
    t, l, b, r = node.attrs["pads"]
    sh, sw = node.attrs["strides"]
    dh, dw = node.attrs["dilations"]
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    win = win[:, ::sh, ::sw, :, ::dh, ::dw]  # [N, OH, OW, C, KH, KW] view
    total = win.shape[0] * win.shape[1] * win.shape[2]
    idx = np.arange(total) if total <= n else rng.integers(0, total, n)
    ni, rest = np.divmod(idx, win.shape[1] * win.shape[2])
    oi, wi = np.divmod(rest, win.shape[2])
    return win[ni, oi, wi].transpose(0, 2, 3, 1)  # [P, KH, KW, C]


class HessianCollector:
    """Accumulates E[x xᵀ] of the inputs of every conv2d, depthwise_conv2d and fully_connected node."""

    def __init__(self, g: Graph, seed: int = 0):
        self.g = g
        self.nodes = [n for n in g.nodes if n.op in ("conv2d", "depthwise_conv2d", "fully_connected")]
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        self.rng = np.random.default_rng(seed)

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) > MAX_ROWS:
            rows = rows[self.rng.integers(0, len(rows), MAX_ROWS)]
        return np.ascontiguousarray(rows, dtype=np.float32)

    def add(self, acts: dict[str, np.ndarray]) -> None:
        for n in self.nodes:
            x = acts[n.inputs[0]]
            w = self.g.const(n.inputs[1])
            if n.op == "fully_connected":
                rows = self._rows(x.reshape(-1, w.shape[1]))
            elif n.op == "conv2d":
                kh, kw = w.shape[1:3]
                if kh == kw == 1 and tuple(n.attrs["strides"]) == (1, 1) and not any(n.attrs["pads"]):
                    rows = self._rows(x.reshape(-1, x.shape[-1]))
                else:
                    p = _sampled_patches(x, n, kh, kw, MAX_ROWS, self.rng)
                    rows = np.ascontiguousarray(p.reshape(len(p), -1), dtype=np.float32)
            else:  # depthwise: one KH·KW × KH·KW moment per input channel
                kh, kw = w.shape[1:3]
                p = _sampled_patches(x, n, kh, kw, MAX_DEPTHWISE_ROWS, self.rng)
                per_channel = np.ascontiguousarray(p.reshape(len(p), kh * kw, -1).transpose(2, 0, 1),
                                                   dtype=np.float32)  # [C, P, taps]
                h = np.matmul(per_channel.transpose(0, 2, 1), per_channel).astype(np.float64)
                self._accumulate(n, h, len(p))
                continue
            self._accumulate(n, (rows.T @ rows).astype(np.float64), len(rows))

    def _accumulate(self, n: Node, h: np.ndarray, count: int) -> None:
        key = n.outputs[0]
        self.sums[key] = self.sums.get(key, 0.0) + h
        self.counts[key] = self.counts.get(key, 0) + count

    def hessians(self) -> dict[str, np.ndarray]:
        return {k: v / max(self.counts[k], 1) for k, v in self.sums.items()}


def gptq_round(w: np.ndarray, scale: np.ndarray, h: np.ndarray, qmax: int = 127, damp: float = 0.01,
               block: int = 128) -> np.ndarray:
    """Integer weights for ``w`` [O, K] with per-row ``scale`` [O], minimising E‖(W − s·Q) x‖² for inputs
    with second moment ``h`` [K, K]. Rows are quantized symmetrically to [-qmax, qmax]."""
    w = w.astype(np.float64).copy()
    o, k = w.shape
    h = h.astype(np.float64).copy()
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += np.eye(k) * damp * max(float(np.mean(np.diag(h))), 1e-12)
    # Upper Cholesky factor of H⁻¹: row j holds how the error of input j spreads over inputs j+1..K.
    try:
        hinv = np.linalg.cholesky(np.linalg.inv(h)).T
    except np.linalg.LinAlgError:
        return np.clip(np.round(w / scale[:, None]), -qmax, qmax)
    s = scale.astype(np.float64)[:, None]
    q = np.zeros_like(w)
    for b0 in range(0, k, block):
        b1 = min(b0 + block, k)
        wb = w[:, b0:b1].copy()
        errs = np.zeros_like(wb)
        hb = hinv[b0:b1, b0:b1]
        for j in range(b1 - b0):
            col = wb[:, j]
            qc = np.clip(np.sign(col / s[:, 0]) * np.floor(np.abs(col / s[:, 0]) + 0.5), -qmax, qmax)
            q[:, b0 + j] = qc
            e = (col - qc * s[:, 0]) / hb[j, j]
            wb[:, j:] -= np.outer(e, hb[j, j:])
            errs[:, j] = e
        w[:, b1:] -= errs @ hinv[b0:b1, b1:]
    return q


def gptq_weights(op: str, w: np.ndarray, scale: np.ndarray, h: np.ndarray, multiplier: int = 1) -> np.ndarray:
    """GPTQ integer weights in the graph's layout for a conv2d [O,KH,KW,C], depthwise [1,KH,KW,C·M] or fully
    connected [O,K] weight tensor."""
    if op == "depthwise_conv2d":
        _, kh, kw, cm = w.shape
        w2 = w.reshape(kh * kw, cm).T  # [C·M, taps]
        out = np.empty_like(w2)
        for c in range(cm):  # each output channel reads input channel c // M: its own small H
            out[c] = gptq_round(w2[c:c + 1], scale[c:c + 1], h[c // multiplier])[0]
        return out.T.reshape(w.shape)
    return gptq_round(w.reshape(w.shape[0], -1), scale, h).reshape(w.shape)
