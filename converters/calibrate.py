"""Activation ranges from calibration data, by one of three methods:

``minmax``      the observed minimum and maximum (what TensorFlow's converter does);
``percentile``  the p-th and (100-p)-th percentiles of the observed values (outlier-robust);
``mse``         the clipping range that minimises the expected squared error of int8 rounding plus clipping,
                estimated from a histogram of the observed values (outlier-robust, no parameter to tune).

The outlier-robust methods need a histogram over a known range, so they take a second pass over the data.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

from .float_exec import FloatExecutor
from .ir import Graph

METHODS = ("minmax", "percentile", "mse")
BINS = 2048


@dataclasses.dataclass
class Calibration:
    method: str
    ranges: dict[str, tuple[float, float]]  # the chosen range per activation tensor
    observed: dict[str, tuple[float, float]]  # the raw min/max
    images: int
    channel_means: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # mean over all but the last axis


def _batches(data: np.ndarray, batch: int) -> Iterable[np.ndarray]:
    for i in range(0, len(data), batch):
        yield data[i:i + batch]


def calibrate(g: Graph, data: np.ndarray, method: str = "minmax", *, percentile: float = 99.99,
              batch: int = 8, progress: Callable[[Iterable, int, str], Iterable] | None = None) -> Calibration:
    """Run the float graph over ``data`` (N×H×W×C model inputs) and choose a range for every activation."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    if len(data) == 0:
        raise ValueError("no calibration data")
    ex = FloatExecutor(g)
    names = [t.name for t in g.activations()]
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    steps = (len(data) + batch - 1) // batch
    wrap = progress or (lambda it, total, desc: it)
    passes = 1 if method == "minmax" else 2
    inp = g.inputs[0]
    sums = {n: 0.0 for n in names}
    counts = {n: 0 for n in names}
    for x in wrap(_batches(data, batch), steps, f"calibrating (pass 1/{passes})"):
        acts = ex.run({inp: x}, keep=True)
        acts.setdefault(inp, x)
        for n in names:
            v = acts[n]
            lo[n] = min(lo[n], float(v.min()))
            hi[n] = max(hi[n], float(v.max()))
            flat = v.reshape(-1, v.shape[-1])
            sums[n] = sums[n] + flat.sum(axis=0, dtype=np.float64)
            counts[n] += flat.shape[0]
    observed = {n: (lo[n], hi[n]) for n in names}
    means = {n: sums[n] / counts[n] for n in names}
    if method == "minmax":
        return Calibration(method, dict(observed), observed, len(data), means)

    edges = {n: (min(lo[n], 0.0), max(hi[n], 0.0)) for n in names}
    hist = {n: np.zeros(BINS, np.int64) for n in names}
    for x in wrap(_batches(data, batch), steps, "calibrating (pass 2/2)"):
        acts = ex.run({inp: x}, keep=True)
        acts.setdefault(inp, x)
        for n in names:
            a, b = edges[n]
            if b - a <= 0:
                continue
            idx = ((acts[n].ravel() - a) * ((BINS - 1e-3) / (b - a))).astype(np.int64)
            hist[n] += np.bincount(np.clip(idx, 0, BINS - 1), minlength=BINS)
    ranges = {}
    for n in names:
        a, b = edges[n]
        if b - a <= 0:
            ranges[n] = (a, b)
        elif method == "percentile":
            ranges[n] = _percentile_range(hist[n], a, b, percentile)
        else:
            ranges[n] = _mse_range(hist[n], a, b)
    return Calibration(method, ranges, observed, len(data), means)


def _percentile_range(h: np.ndarray, a: float, b: float, p: float) -> tuple[float, float]:
    c = np.cumsum(h) / max(h.sum(), 1)
    width = (b - a) / BINS
    lo_bin = int(np.searchsorted(c, (100 - p) / 100))
    hi_bin = int(np.searchsorted(c, p / 100))
    return min(a + lo_bin * width, 0.0), max(a + (hi_bin + 1) * width, 0.0)


def _mse_range(h: np.ndarray, a: float, b: float) -> tuple[float, float]:
    """Shrink the range towards zero by a common factor; keep the factor with the least expected error."""
    centers = a + (np.arange(BINS) + 0.5) * (b - a) / BINS
    w = h.astype(np.float64)
    best, best_err = (a, b), np.inf
    for f in np.linspace(0.25, 1.0, 76):
        lo, hi = a * f, b * f
        step = (hi - lo) / 255
        inside = (centers >= lo) & (centers <= hi)
        err = (w[inside].sum() * step * step / 12
               + (w[~inside] * (np.maximum(lo - centers[~inside], centers[~inside] - hi)) ** 2).sum())
        if err < best_err:
            best, best_err = (lo, hi), err
    return best
