"""Activation ranges from calibration data, by one of three methods:

``minmax``      the observed minimum and maximum (what TensorFlow's converter does);
``percentile``  the p-th and (100-p)-th percentiles of the observed values (outlier-robust);
``mse``         the clipping range that minimises the expected squared error of int8 rounding plus clipping,
                estimated from a histogram of the observed values (outlier-robust, no parameter to tune).

The outlier-robust methods build a histogram of a fixed-size random sample of each tensor per batch, over a
range that widens as needed, in the same single pass as the minimum and maximum.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

from .float_exec import FloatExecutor
from .gptq import HessianCollector
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
    hessians: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # E[x xᵀ] per linear node output


def _batches(data: np.ndarray, batch: int) -> Iterable[np.ndarray]:
    for i in range(0, len(data), batch):
        yield data[i:i + batch]


class _Histogram:
    """Counts of values over [lo, lo + BINS·width) that grows as later batches reach further: doubling the
    width merges bins pairwise, so one pass over the data suffices whatever range it turns out to have."""

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None
        self.lo = 0.0
        self.width = 1.0

    @property
    def hi(self) -> float:
        return self.lo + BINS * self.width

    def add(self, v: np.ndarray) -> None:
        vmin, vmax = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
        if self.counts is None:
            self.lo, self.width = vmin, max(vmax - vmin, 1e-8) * (1 + 1e-6) / BINS
            self.counts = np.zeros(BINS, np.int64)
        while vmin < self.lo or vmax >= self.hi:
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.zeros(BINS, np.int64)
            if vmin < self.lo:  # grow downwards: the old range becomes the upper half
                self.counts[BINS // 2:] = merged
                self.lo -= BINS * self.width
            else:
                self.counts[:BINS // 2] = merged
            self.width *= 2
        idx = ((v - self.lo) / self.width).astype(np.int64)
        self.counts += np.bincount(np.clip(idx, 0, BINS - 1), minlength=BINS)


HESSIAN_IMAGES = 64  # calibration images that feed GPTQ's input moments
SAMPLES_PER_BATCH = 1 << 16  # values per tensor per batch that feed the histogram (all feed min/max/mean)


def calibrate(g: Graph, data: np.ndarray, method: str = "minmax", *, percentile: float = 99.99,
              batch: int = 8, progress: Callable[[Iterable, int, str], Iterable] | None = None,
              hessians: bool = False) -> Calibration:
    """Run the float graph over ``data`` (N×H×W×C model inputs) once and choose a range for every activation.
    With ``hessians``, also collect each weighted layer's input second moments (for GPTQ weight rounding)."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    if len(data) == 0:
        raise ValueError("no calibration data")
    ex = FloatExecutor(g)
    names = [t.name for t in g.activations()]
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    sums = {n: 0.0 for n in names}
    counts = {n: 0 for n in names}
    hists = {n: _Histogram() for n in names} if method != "minmax" else {}
    picks: dict[int, np.ndarray] = {}  # fixed random sample positions per tensor size (reproducible)
    rng = np.random.default_rng(0)
    steps = (len(data) + batch - 1) // batch
    wrap = progress or (lambda it, total, desc: it)
    inp = g.inputs[0]
    collector = HessianCollector(g) if hessians else None
    seen = 0
    for x in wrap(_batches(data, batch), steps, "calibrating"):
        acts = ex.run({inp: x}, keep=True)
        acts.setdefault(inp, x)
        if collector is not None and seen < HESSIAN_IMAGES:  # second moments settle long before ranges do
            collector.add(acts)
        seen += len(x)
        for n in names:
            v = acts[n]
            lo[n] = min(lo[n], float(v.min()))
            hi[n] = max(hi[n], float(v.max()))
            flat = v.reshape(-1, v.shape[-1])
            sums[n] = sums[n] + flat.sum(axis=0, dtype=np.float64)
            counts[n] += flat.shape[0]
            if hists:
                r = v.reshape(-1)
                if r.size > SAMPLES_PER_BATCH:
                    if r.size not in picks:
                        picks[r.size] = np.sort(rng.choice(r.size, SAMPLES_PER_BATCH, replace=False))
                    r = r[picks[r.size]]
                hists[n].add(r)
    observed = {n: (lo[n], hi[n]) for n in names}
    means = {n: sums[n] / counts[n] for n in names}
    moments = collector.hessians() if collector is not None else {}
    if method == "minmax":
        return Calibration(method, dict(observed), observed, len(data), means, moments)
    ranges = {}
    for n in names:
        a, b = min(lo[n], 0.0), max(hi[n], 0.0)
        h = hists[n]
        if b - a <= 0:
            ranges[n] = (a, b)
        elif method == "percentile":
            r_lo, r_hi = _percentile_range(h.counts, h.lo, h.hi, percentile)
            ranges[n] = (max(r_lo, a), min(r_hi, b))
        else:
            ranges[n] = _mse_range(h.counts, h.lo, h.hi, a, b)
    return Calibration(method, ranges, observed, len(data), means, moments)


def _percentile_range(h: np.ndarray, a: float, b: float, p: float) -> tuple[float, float]:
    c = np.cumsum(h) / max(h.sum(), 1)
    width = (b - a) / BINS
    lo_bin = int(np.searchsorted(c, (100 - p) / 100))
    hi_bin = int(np.searchsorted(c, p / 100))
    return min(a + lo_bin * width, 0.0), max(a + (hi_bin + 1) * width, 0.0)


def _mse_range(h: np.ndarray, h_lo: float, h_hi: float, a: float | None = None, b: float | None = None
               ) -> tuple[float, float]:
    """Shrink the observed range [a, b] towards zero by a common factor; keep the factor with the least
    expected error, estimated from the histogram ``h`` over [h_lo, h_hi]."""
    a = h_lo if a is None else a
    b = h_hi if b is None else b
    centers = h_lo + (np.arange(BINS) + 0.5) * (h_hi - h_lo) / BINS
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
