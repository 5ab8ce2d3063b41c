#!/usr/bin/env python3
"""Runtime speed: is the pipeline inference-bound, and how much does everything else cost?

(a) end-to-end throughput of the pipeline on the demo source played as fast as possible (1280×720 frames,
    every frame processed) against the backend's raw inference throughput on the same model (target ≥ 0.95×);
(b) work per frame outside inference for the 224×224 default model fed 1280×720 frames: preprocess
    (prepare_frame: the fused kernel for an int8 model), postprocess (classifier) and sinks (console + JSONL)
    (target ≤ 2 ms);
(c) peak RSS of `edgevision run` with the default model (a child process, read back with getrusage).

Prints a table, then the same figures as JSON (--json-out PATH to save them).

    .venv/bin/python tools/bench_runtime.py [--frames 300] [--repeats 3] [--threads N] [--backend B]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgevision.backends import create_backend  # noqa: E402
from edgevision.classifier import Classifier  # noqa: E402
from edgevision.cli import DEFAULT_MODEL, bench_pipeline  # noqa: E402
from edgevision.frames import Frame, Result  # noqa: E402
from edgevision.model_info import read_model_info  # noqa: E402
from edgevision.preprocess import prepare_frame  # noqa: E402
from edgevision.sinks.console import ConsoleSink  # noqa: E402
from edgevision.sinks.jsonl import JsonlSink  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def timed(fn, n: int) -> list[float]:
    """Milliseconds per call, n calls after 3 warm-up calls."""
    for _ in range(3):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def raw_inference_fps(backend, x, n: int) -> float:
    ms = timed(lambda: backend.infer(x), n)
    return 1000.0 * n / sum(ms)


def demo_frame_1280x720() -> Frame:
    from edgevision.sources.demo import DemoSource
    with DemoSource(fps=1e9, loop=True, size=(1280, 720)) as src:
        for _ in range(3):  # the cat photo
            f = src.read()
    return Frame(np.array(f.data), f.format, f.width, f.height, seq=f.seq, t_capture=time.monotonic())


def outside_inference(info, frame: Frame, scores: np.ndarray, n: int, spec) -> dict:
    """Per-frame cost of each stage around inference, measured alone (min and median ms)."""
    clf = Classifier(info.labels)
    with tempfile.TemporaryDirectory() as d:
        jsonl = JsonlSink(os.path.join(d, "r.jsonl"))
        jsonl.open()
        console = ConsoleSink(io.StringIO())
        c = clf.update(scores)
        result = Result(frame.seq, frame.t_capture, time.monotonic(), c.top, c.label, c.score,
                        {"preprocess": 1.0, "inference": 5.0, "postprocess": 0.03, "sinks": 0.02}, 0,
                        {"source": "demo:cat_chelsea"})
        stages = {
            "preprocess": timed(lambda: prepare_frame(frame, info, *spec), n),
            "postprocess": timed(lambda: clf.update(scores), n),
            "sinks": timed(lambda: (jsonl.publish(result, frame), console.publish(result, frame)), n),
        }
        jsonl.close()
    out = {k: {"min": min(v), "median": statistics.median(v)} for k, v in stages.items()}
    out["total"] = {"min": sum(s["min"] for s in out.values()),
                    "median": sum(s["median"] for s in out.values())}
    return out


def contention(backend, x, n: int = 200) -> dict:
    """Raw inference ms alone, then with a pure-Python busy loop in another process: on a machine whose cores
    are really independent the second figure is the same; if it is much higher, work overlapped with inference
    (capture, preprocessing) slows inference itself, and the pipeline cannot reach raw throughput."""
    def ms():
        for _ in range(5):
            backend.infer(x)
        t = time.perf_counter()
        for _ in range(n):
            backend.infer(x)
        return (time.perf_counter() - t) / n * 1000.0
    alone = ms()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        loaded = ms()
    finally:
        busy.kill()
        busy.wait()
    return {"inference_ms_alone": alone, "inference_ms_with_busy_process": loaded, "slowdown": loaded / alone}


def run_peak_rss_mb(frames: int) -> float:
    """Peak RSS of `edgevision run` on the demo source with the default model (its own process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-m", "edgevision", "run", "--source", "demo", "--fps", "0", "--frames",
                    str(frames), "--quiet"], cwd=ROOT, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        log("note: an earlier child had a higher peak; RSS figure is an upper bound")
    return after / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300, help="pipeline frames per repeat (300)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of (a); the median is reported (3)")
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: the backend's choice)")
    ap.add_argument("--backend", default="auto", choices=("auto", "litert", "native"))
    ap.add_argument("--json-out", help="also write the JSON here")
    args = ap.parse_args()

    model = str(DEFAULT_MODEL)
    info = read_model_info(model)
    frame = demo_frame_1280x720()
    backend = create_backend(model, args.backend, args.threads)
    spec = (backend.input_dtype, backend.input_quantization)
    x = prepare_frame(frame, info, *spec)
    try:
        log("(a) raw inference vs pipeline ...")
        raws, pipes, stage_means = [], [], []
        for _ in range(args.repeats):
            r1 = raw_inference_fps(backend, x, args.frames)
            s = bench_pipeline(backend, info, args.frames, size=(1280, 720))
            r2 = raw_inference_fps(backend, x, args.frames)
            raws.append((r1 + r2) / 2)  # before and after, so load drift hits both sides
            pipes.append(s["wall_fps"])
            stage_means.append(s["stage_ms"])
        ratios = [p / r for p, r in zip(pipes, raws)]
        log("(b) work per frame outside inference ...")
        outside = outside_inference(info, frame, backend.infer(x), 300, spec)
        log("(d) does other work slow inference down? ...")
        contended = contention(backend, x)
    finally:
        backend.close()
    log("(c) peak RSS of edgevision run ...")
    rss = run_peak_rss_mb(100)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    report = {
        "cpu_count": os.cpu_count(), "load_average_1min": load, "threads": args.threads,
        "a_throughput": {"raw_inference_fps": statistics.median(raws), "pipeline_fps": statistics.median(pipes),
                         "ratio": statistics.median(ratios), "ratios": ratios, "target_ratio": 0.95,
                         "pipeline_stage_ms": stage_means[len(stage_means) // 2]},
        "b_outside_inference_ms": outside, "b_target_ms": 2.0,
        "c_run_peak_rss_mb": rss,
        "d_contention": contended,
    }
    a, b = report["a_throughput"], outside
    print(f"machine        {os.cpu_count()} cores, load average {load:.1f}" if load is not None else "")
    print(f"(a) raw inference      {a['raw_inference_fps']:8.1f} /s")
    print(f"    pipeline (demo)    {a['pipeline_fps']:8.1f} /s   ratio {a['ratio']:.2f} (target ≥ 0.95; "
          f"repeats {', '.join(f'{r:.2f}' for r in ratios)})")
    print("(b) outside inference, 1280×720 → 224×224, ms per frame (min / median):")
    for k in ("preprocess", "postprocess", "sinks", "total"):
        print(f"    {k:12s} {b[k]['min']:7.3f} / {b[k]['median']:7.3f}")
    print(f"(c) edgevision run peak RSS  {rss:.1f} MB")
    print(f"(d) inference alone {contended['inference_ms_alone']:.2f} ms, with a busy process on the other core "
          f"{contended['inference_ms_with_busy_process']:.2f} ms ({contended['slowdown']:.2f}×)")
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
