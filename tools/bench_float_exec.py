#!/usr/bin/env python3
"""Rough throughput of converters.float_exec on conv-heavy 224x224 stacks with random weights.

Not a test: prints ms/image for a MobileNetV1-1.0 stack and an EfficientNet-Lite0-shaped stack
(MBConv blocks, relu6, 3x3/5x5 depthwise), at a few batch sizes. Wall time on a shared machine is noisy; with
OPENBLAS_NUM_THREADS=1 the CPU time is the load-independent figure. When other processes compete for the
cores, two OpenBLAS threads can make small batches many times slower: set OPENBLAS_NUM_THREADS=1 then.

    python tools/bench_float_exec.py [--batch 1 8 32] [--repeat 3]
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from converters.float_exec import FloatExecutor  # noqa: E402
from converters.ir import Graph, conv_out_size, same_pads  # noqa: E402


class _Builder:
    def __init__(self, name: str, size: int) -> None:
        self.g = Graph(name)
        self.rng = np.random.default_rng(0)
        self.x = self.g.add_input("image", (1, size, size, 3))
        self.h = self.w = size
        self.c = 3
        self.macs = 0
        self.k = 0

    def _name(self, op: str) -> str:
        self.k += 1
        return f"{op}_{self.k}"

    def conv(self, o: int, k: int, s: int, act: str | None = "relu6") -> None:
        pt, pb = same_pads(self.h, k, s)
        pl, pr = same_pads(self.w, k, s)
        oh, ow = conv_out_size(self.h, k, s, 1, pt, pb), conv_out_size(self.w, k, s, 1, pl, pr)
        std = (2 / (k * k * self.c)) ** 0.5
        w = self.g.add_const("w", (self.rng.standard_normal((o, k, k, self.c)) * std).astype(np.float32))
        b = self.g.add_const("b", np.zeros(o, np.float32))
        self.x = self.g.add_node("conv2d", [self.x, w, b], (1, oh, ow, o), name=self._name("conv"),
                                 strides=(s, s), dilations=(1, 1), pads=(pt, pl, pb, pr), act=act)
        self.macs += oh * ow * o * k * k * self.c
        self.h, self.w, self.c = oh, ow, o

    def dw(self, k: int, s: int, act: str | None = "relu6") -> None:
        pt, pb = same_pads(self.h, k, s)
        pl, pr = same_pads(self.w, k, s)
        oh, ow = conv_out_size(self.h, k, s, 1, pt, pb), conv_out_size(self.w, k, s, 1, pl, pr)
        std = (2 / (k * k)) ** 0.5
        w = self.g.add_const("dw", (self.rng.standard_normal((1, k, k, self.c)) * std).astype(np.float32))
        b = self.g.add_const("b", np.zeros(self.c, np.float32))
        self.x = self.g.add_node("depthwise_conv2d", [self.x, w, b], (1, oh, ow, self.c), name=self._name("dw"),
                                 strides=(s, s), dilations=(1, 1), pads=(pt, pl, pb, pr), multiplier=1, act=act)
        self.macs += oh * ow * self.c * k * k
        self.h, self.w = oh, ow

    def head(self, classes: int = 1000) -> Graph:
        self.x = self.g.add_node("mean", [self.x], (1, self.c), name="pool", axes=(1, 2), keepdims=False)
        w = self.g.add_const("fc_w", self.rng.standard_normal((classes, self.c)).astype(np.float32) * 0.01)
        b = self.g.add_const("fc_b", np.zeros(classes, np.float32))
        x = self.g.add_node("fully_connected", [self.x, w, b], (1, classes), name="logits")
        self.macs += self.c * classes
        self.g.outputs = [self.g.add_node("softmax", [x], (1, classes), name="probs", axis=-1)]
        self.g.check()
        return self.g


def mobilenet_v1(size: int = 224) -> tuple[Graph, int]:
    b = _Builder("mobilenet_v1", size)
    b.conv(32, 3, 2)
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for o, s in plan:
        b.dw(3, s)
        b.conv(o, 1, 1)
    return b.head(), b.macs


def efficientnet_lite0(size: int = 224) -> tuple[Graph, int]:
    b = _Builder("efficientnet_lite0", size)
    b.conv(32, 3, 2)
    # (expand, kernel, stride, out, repeats): EfficientNet-B0 stages, as Lite0 keeps them.
    for e, k, s, o, r in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]:
        for i in range(r):
            skip = b.x if (i > 0) else None
            if e != 1:
                b.conv(b.c * e, 1, 1)
            b.dw(k, s if i == 0 else 1)
            b.conv(o, 1, 1, act=None)
            if skip is not None:
                b.x = b.g.add_node("add", [b.x, skip], (1, b.h, b.w, b.c), name=b._name("add"))
    b.conv(1280, 1, 1)
    return b.head(), b.macs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for make in (mobilenet_v1, efficientnet_lite0):
        g, macs = make()
        ex = FloatExecutor(g)
        for n in args.batch:
            x = np.random.default_rng(1).standard_normal((n, 224, 224, 3)).astype(np.float32)
            ex.run(x)  # warm-up
            best = cpu = float("inf")
            for _ in range(args.repeat):
                t, c = time.perf_counter(), time.process_time()
                ex.run(x)
                best = min(best, time.perf_counter() - t)
                cpu = min(cpu, time.process_time() - c)
            print(f"{g.name:<20} {macs / 1e9:.2f} GMAC  batch {n:>3}: {1000 * best / n:7.1f} ms/image wall, "
                  f"{1000 * cpu / n:7.1f} ms/image CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
