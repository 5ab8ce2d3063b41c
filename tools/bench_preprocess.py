#!/usr/bin/env python3
"""Benchmark the fused preprocessing kernel against the two ways of doing it without it.

A 1280×720 camera frame (a demo photo decoded with Pillow and resized to 1280×720, converted to each format) →
the 224×224×3 int8 input of a center-crop model (mean 127.5, std 127.5, scale 2/255, zero point -1):

  fused <variant>   edgevision.native.preprocess.preprocess_into with that kernel variant (C, one thread)
  fused <v> ×N      the same on N threads (rows split)
  numpy twin        edgevision.native.preprocess.preprocess_numpy (the fallback when the extension is not built)
  pillow            frame.to_rgb() → PIL.Image crop + resize(BILINEAR) → numpy (x - mean) / std → quantize()
  prepare           frame.to_rgb() → edgevision.preprocess.prepare + quantize (today's runtime path)

Median milliseconds over --runs runs (default 200) per cell, after warm-up. Prints a table and writes JSON.

    python tools/bench_preprocess.py [--runs 200] [--photo astronaut.jpg] [--json out.json] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgevision.frames import Frame  # noqa: E402
from edgevision.model_info import ModelInfo  # noqa: E402
from edgevision.native import preprocess as pp  # noqa: E402
from edgevision.native import variants  # noqa: E402
from edgevision.preprocess import _crop_box, prepare, quantize  # noqa: E402

W, H = 1280, 720
SCALE, ZP = 2 / 255, -1
INFO = ModelInfo(input_size=(224, 224), mean=(127.5,) * 3, std=(127.5,) * 3, resize_mode="center_crop")


def load_photo(name: str) -> np.ndarray:
    from PIL import Image

    img = Image.open(ROOT / "edgevision" / "demo" / name).convert("RGB")
    return np.asarray(img.resize((W, H), Image.BILINEAR))


def make_frames(rgb: np.ndarray) -> dict[str, Frame]:
    bgrx = np.empty((H, W, 4), np.uint8)
    bgrx[..., :3] = rgb[..., ::-1]
    bgrx[..., 3] = 255
    # BT.601 limited range I420, chroma = mean of 2×2 blocks
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    half = lambda c: c.reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3))  # noqa: E731
    q = lambda c: np.clip(np.round(c), 0, 255).astype(np.uint8).reshape(-1)  # noqa: E731
    yuv = np.concatenate([q(y), q(half(u)), q(half(v))])
    return {"rgb": Frame(np.ascontiguousarray(rgb), "rgb", W, H),
            "bgrx": Frame(bgrx, "bgrx", W, H),
            "yuv420": Frame(yuv, "yuv420", W, H, stride=W)}


def median_ms(fn, runs: int) -> float:
    for _ in range(min(10, runs)):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1e3)


def pillow_path(frame: Frame):
    from PIL import Image

    top, left, ch, cw = _crop_box(H, W, *INFO.input_size)
    mean = np.float32(127.5)
    std = np.float32(127.5)

    def run():
        img = Image.fromarray(np.ascontiguousarray(frame.to_rgb()))
        img = img.resize(INFO.input_size[::-1], Image.BILINEAR, box=(left, top, left + cw, top + ch))
        x = (np.asarray(img, dtype=np.float32) - mean) / std
        return quantize(x, SCALE, ZP, np.int8)

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--photo", default="astronaut.jpg")
    ap.add_argument("--threads", type=int, default=2, help="also time the detected variant on this many threads")
    ap.add_argument("--json", default=None, help="write the results here (default: print only)")
    args = ap.parse_args()

    frames = make_frames(load_photo(args.photo))
    native = pp.native_available()
    vs = list(variants.supported()) if native else []
    if "dotprod" in vs:  # its preprocess slot falls back to neon: the same function
        vs.remove("dotprod")
    rows: dict[str, dict[str, float]] = {}
    ran: dict[str, str] = {}
    for fmt, frame in frames.items():
        plan = pp.plan_preprocess(fmt, W, H, pp._frame_stride(frame), INFO, SCALE, ZP, np.int8)
        out = np.empty(plan.out_shape, np.int8)
        ref = pp.preprocess_numpy(frame, plan)
        for v in vs:
            name = pp.preprocess_into(frame, plan, out, variant=v)
            ran[v] = name
            assert np.array_equal(out, ref), f"{name} differs from the numpy twin"
            rows.setdefault(f"fused {v}", {})[fmt] = median_ms(lambda: pp.preprocess_into(frame, plan, out, variant=v),
                                                                args.runs)
        if vs and args.threads > 1:
            best = pp.resolve_variant()
            rows.setdefault(f"fused {best} x{args.threads} threads", {})[fmt] = median_ms(
                lambda: pp.preprocess_into(frame, plan, out, variant=best, threads=args.threads), args.runs)
        rows.setdefault("numpy twin", {})[fmt] = median_ms(lambda: pp.preprocess_numpy(frame, plan), args.runs)
        rows.setdefault("pillow + numpy", {})[fmt] = median_ms(pillow_path(frame), args.runs)
        rows.setdefault("prepare + quantize", {})[fmt] = median_ms(
            lambda: quantize(prepare(frame.to_rgb(), INFO), SCALE, ZP, np.int8), args.runs)

    fmts = list(frames)
    print(f"1280x720 {args.photo} -> 224x224x3 int8, center crop; median ms over {args.runs} runs")
    print(f"{'path':34}" + "".join(f"{f:>10}" for f in fmts))
    for name, cells in rows.items():
        print(f"{name:34}" + "".join(f"{cells[f]:10.3f}" for f in fmts))
    if ran:
        print("C functions that ran: " + ", ".join(f"{v} -> {n}" for v, n in ran.items()))
    result = {
        "frame": [H, W], "model_input": [224, 224, 3], "dtype": "int8", "photo": args.photo, "runs": args.runs,
        "machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
        "variants": variants.describe(), "functions": ran, "median_ms": rows,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    else:
        print(json.dumps({"median_ms": rows}, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
