"""``edgevision``: the on-device command line.

    edgevision run      [--model M] [--source S] [--backend auto|litert|native] [--threads N]
                        [--config FILE] [--jsonl PATH|-] [--web HOST:PORT] [--web-token T] [--frames N] ...
    edgevision classify IMAGE... [--model M] [--backend ...] [--top K] [--json]
    edgevision bench    [--model M] [--backend ...] [--json]
    edgevision info

Exit status: 0 success (also when ``run`` is stopped by Ctrl-C or SIGTERM); 1 failure (missing model, camera
or port in use, a missing package); 2 bad usage (unknown flag, bad value, bad config file or source spec).
User mistakes get one ``edgevision: error: ...`` line, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from . import __version__
from .model_info import read_model_info

DEFAULT_MODEL = Path(__file__).with_name("models") / "efficientnet_lite0_int8.tflite"


def _load_image(path: Path):
    from .sources.images import decode_image_rgb
    try:
        return decode_image_rgb(path)
    except ImportError as e:
        raise _UserError(str(e))
    except FileNotFoundError:
        raise _UserError(f"image not found: {path}")
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
        raise _UserError(f"cannot read {path} as an image ({e.__class__.__name__}: {e})")


class _UserError(Exception):
    """A failure the user can fix (exit 1)."""


class _UsageError(Exception):
    """A bad flag value, config file or source spec (exit 2)."""


def cmd_classify(args) -> int:
    from .backends import BackendUnavailable, create_backend
    from .demo import demo_photos
    from .postprocess import top_k
    from .frames import Frame
    from .preprocess import prepare_frame

    model = Path(args.model)
    if not model.exists():
        raise _UserError(f"model not found: {model}")
    try:
        info = read_model_info(model)
    except ValueError as e:
        raise _UserError(f"{model} is not a usable .tflite model: {e}")
    labels = info.labels
    if args.labels:
        from .model_info import load_labels_file
        labels = load_labels_file(args.labels)
    images = [Path(p) for p in args.images] or demo_photos()
    try:
        backend = create_backend(str(model), args.backend, args.threads, args.kernels)
    except (BackendUnavailable, ValueError) as e:
        raise _UserError(str(e))
    results = []
    with backend:
        for path in images:
            rgb = _load_image(path)
            x = prepare_frame(Frame(rgb, "rgb", rgb.shape[1], rgb.shape[0]), info, backend.input_dtype,
                              backend.input_quantization)
            preds = top_k(backend.infer(x), labels, args.top)
            results.append({"image": str(path), "top": [{"index": p.index, "label": p.label,
                                                         "score": round(p.score, 4)} for p in preds]})
            if not args.json:
                best = preds[0]
                rest = ", ".join(f"{p.label} {p.score:.2f}" for p in preds[1:])
                print(f"{path.name:28s} {best.label} ({best.score:.2f})" + (f"   [{rest}]" if rest else ""))
    if args.json:
        print(json.dumps(results if len(results) != 1 else results[0], indent=2, ensure_ascii=False))
    return 0


def _package_version(name: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python < 3.8
        return None
    try:
        return version(name)
    except PackageNotFoundError:
        return None


# CPU features that matter for int8 inference, by /proc/cpuinfo name ("flags" on x86, "Features" on Arm)
_INTERESTING_FEATURES = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni",
                         "avx_vnni", "asimd", "asimddp", "i8mm", "sve", "sve2", "bf16", "fphp", "asimdhp")


def cpu_features(path: str = "/proc/cpuinfo") -> tuple[str, list[str]]:
    """(CPU model name, sorted feature names) from /proc/cpuinfo; empty when it cannot be read."""
    model, feats = "", set()
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key.lower() in ("flags", "features"):
                    feats.update(value.split())
                elif key in ("model name", "Model", "Hardware") and not model:  # x86; Raspberry Pi; other Arm
                    model = value.strip()
    except OSError:
        pass
    return model, sorted(feats)


def cameras() -> tuple[list[str], list[str]]:
    """(libcamera cameras via picamera2, or a note why none; /dev/video* nodes)."""
    import glob
    found: list[str] = []
    try:
        from picamera2 import Picamera2  # type: ignore[import-not-found]
    except Exception as e:  # noqa: BLE001 - not installed or libcamera broken
        found = [f"picamera2 not importable ({e.__class__.__name__})"]
    else:
        try:
            for i, cam in enumerate(Picamera2.global_camera_info()):
                found.append(f"picamera2:{i} {cam.get('Model', '?')} {cam.get('Location', '')}".rstrip())
        except Exception as e:  # noqa: BLE001
            found = [f"picamera2 failed to list cameras ({e})"]
        if not found:
            found = ["picamera2: no cameras"]
    return found, sorted(glob.glob("/dev/video*"))


def cmd_info(args) -> int:
    import numpy as np
    print(f"edgevision {__version__}  Python {platform.python_version()}  numpy {np.__version__}  "
          f"{platform.system()} {platform.machine()}")
    try:
        from .backends.litert import load_interpreter_class
        _, pkg = load_interpreter_class()
        ver = _package_version(pkg)
        print(f"backend litert: available ({pkg}{' ' + ver if ver else ''})")
    except Exception as e:  # noqa: BLE001
        print(f"backend litert: not available ({e})")
    from .native.variants import describe
    native = describe()
    if native["built"]:
        chosen = (f"{native['chosen']} (chosen by {native['chosen_by']})" if native.get("chosen")
                  else f"none: {native.get('error')}")
        print(f"backend native: available; kernels built {', '.join(native['compiled'])}; this CPU runs "
              f"{', '.join(native['supported'])}; using {chosen}; {native['cpu']}")
    else:
        print(f"backend native: not available ({native['error']})")
    model, feats = cpu_features()
    shown = [f for f in _INTERESTING_FEATURES if f in feats]
    print(f"cpu: {model or platform.processor() or '?'}, {os.cpu_count()} cores; "
          f"features: {' '.join(shown) if shown else '(none of interest found)'}")
    cams, nodes = cameras()
    print(f"cameras: {'; '.join(cams)}")
    print(f"video nodes: {' '.join(nodes) if nodes else 'none'}")
    if DEFAULT_MODEL.exists():
        info = read_model_info(DEFAULT_MODEL)
        print(f"default model: {info.name} {info.input_size} {len(info.labels)} labels")
    return 0


# ----------------------------------------------------------------------------------------------------- run

RUN_DEFAULTS = {
    "model": str(DEFAULT_MODEL), "source": None, "backend": "auto", "threads": None, "kernels": None,
    "jsonl": None, "web": None,
    "web_token": None, "frames": None, "fps": None, "size": None, "loop": None, "top_k": 5, "threshold": 0.3,
    "smoothing": 0.6, "hysteresis": 0.1, "quiet": False, "log_level": "warning",
}
from .backends import BACKENDS  # noqa: E402
KERNELS = ("auto", "ref", "sse41", "avx2", "avx512vnni", "neon", "dotprod")
KERNELS_HELP = "native engine kernel variant (default: auto: $EDGEVISION_KERNELS, else the CPU's best)"
LOG_LEVELS = ("debug", "info", "warning", "error")
_UNPACED_FPS = 1e9  # the demo source paces itself and needs fps > 0: "as fast as possible" is a very high rate


def parse_host_port(text: str) -> tuple[str, int]:
    """'HOST:PORT', ':PORT', 'PORT' or '[IPv6]:PORT' → (host, port); host defaults to 127.0.0.1."""
    t = text.strip()
    host, port = "127.0.0.1", t
    if t.startswith("["):
        end = t.find("]")
        if end < 0 or not t[end + 1:].startswith(":"):
            raise _UsageError(f"--web {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
        host, port = t[1:end], t[end + 2:]
    elif ":" in t:
        host, port = t.rsplit(":", 1)
        host = host or "0.0.0.0"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise _UsageError(f"--web {text!r}: expected HOST:PORT with a port from 0 to 65535, e.g. 0.0.0.0:8080")
    return host, int(port)


def parse_size(text: str) -> tuple[int, int]:
    import re
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise _UsageError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1280x720")
    return int(m.group(1)), int(m.group(2))


def _run_settings(args) -> dict:
    """Defaults < --config file < flags; every value checked (a bad one is a usage error)."""
    from .config import RUN_KEYS, ConfigError, load_config, merge, validate
    file_values = {}
    if args.config:
        try:
            file_values = load_config(args.config)
        except ConfigError as e:
            raise _UsageError(str(e))
    flags = {k: getattr(args, k, None) for k in RUN_KEYS}
    try:
        validate({k: v for k, v in flags.items() if v is not None}, where="flags")
    except ConfigError as e:  # argparse already typed them; this guards the two agreeing
        raise _UsageError(str(e))
    cfg = merge(RUN_DEFAULTS, file_values, flags)
    checks = [
        ("backend", cfg["backend"] in BACKENDS, f"one of {', '.join(BACKENDS)}"),
        ("threads", cfg["threads"] is None or cfg["threads"] >= 1, "an integer >= 1"),
        ("kernels", cfg["kernels"] is None or cfg["kernels"] in KERNELS, f"one of {', '.join(KERNELS)}"),
        ("frames", cfg["frames"] is None or cfg["frames"] >= 1, "an integer >= 1"),
        ("fps", cfg["fps"] is None or cfg["fps"] >= 0, "a number >= 0 (0: as fast as possible)"),
        ("top_k", cfg["top_k"] >= 1, "an integer >= 1"),
        ("threshold", 0 <= cfg["threshold"] <= 1, "a number from 0 to 1"),
        ("smoothing", 0 <= cfg["smoothing"] < 1, "a number from 0 to below 1"),
        ("hysteresis", 0 <= cfg["hysteresis"] <= 1, "a number from 0 to 1"),
        ("log_level", str(cfg["log_level"]).lower() in LOG_LEVELS, f"one of {', '.join(LOG_LEVELS)}"),
    ]
    for key, ok, expected in checks:
        if not ok:
            raise _UsageError(f"{key.replace('_', '-')} {cfg[key]!r}: expected {expected}")
    cfg["log_level"] = cfg["log_level"].lower()
    if cfg["web"] is not None:
        cfg["web"] = parse_host_port(cfg["web"])
    if cfg["size"] is not None:
        cfg["size"] = parse_size(cfg["size"])
    return cfg


def _open_model(model_path: str, backend_kind: str, threads, kernels=None):
    from .backends import BackendUnavailable, create_backend
    model = Path(model_path)
    if not model.is_file():
        raise _UserError(f"model not found: {model}" + ("" if model.suffix else " (expected a .tflite file)"))
    try:
        info = read_model_info(model)
    except (ValueError, OSError) as e:
        raise _UserError(f"{model} is not a usable .tflite model: {e}")
    if info.input_size is None:
        raise _UserError(f"{model} does not say its input size (dynamic input); convert it with --input-size")
    try:
        backend = create_backend(str(model), backend_kind, threads, kernels)
    except (BackendUnavailable, ValueError) as e:
        raise _UserError(str(e))
    return info, backend


def _make_source(cfg: dict):
    """(RetryingSource, spec, newest_wins). The spec is checked here, so a typo is a usage error at once."""
    from .sources import camera_present, open_source
    from .sources.retry import RetryingSource
    spec = cfg["source"]
    if spec is None:
        if camera_present():
            spec = "picamera2"
        else:
            spec = "demo"
            print("edgevision: no camera found; showing the bundled demo photos (choose with --source)",
                  file=sys.stderr)
    fps = cfg["fps"]
    lossless = fps == 0  # as fast as possible: nothing to drop, every frame is processed
    if lossless:
        low = spec.strip().lower()
        if low.startswith(("picamera2", "usb:", "/dev/video", "rtsp://", "rtsps://", "http://", "https://")):
            raise _UsageError(f"--fps 0 (as fast as possible) is for the demo, files and folders, not {spec!r}")
        fps = _UNPACED_FPS if low == "demo" else None
    kwargs = {"fps": fps, "loop": cfg["loop"], "size": cfg["size"]}
    try:
        first = [open_source(spec, **kwargs)]
    except ValueError as e:
        raise _UsageError(str(e))
    except (FileNotFoundError, ImportError, OSError) as e:
        raise _UserError(str(e))

    def factory():
        return first.pop() if first else open_source(spec, **kwargs)

    return RetryingSource(factory, loop=False), spec, not lossless


def _make_sinks(cfg: dict) -> list:
    from .sinks.console import ConsoleSink
    from .sinks.jsonl import JsonlSink
    sinks: list = []
    try:
        if cfg["jsonl"] is not None:
            if cfg["jsonl"] != "-":
                parent = Path(cfg["jsonl"]).expanduser().resolve().parent
                if not parent.is_dir():
                    raise _UserError(f"--jsonl {cfg['jsonl']}: folder {parent} does not exist")
            sink = JsonlSink(str(Path(cfg["jsonl"]).expanduser()) if cfg["jsonl"] != "-" else "-")
            sink.open()  # fail now (permissions) rather than in the results thread
            sinks.append(sink)
        if cfg["web"] is not None:
            from .sinks.web import WebSink
            host, port = cfg["web"]
            try:
                web = WebSink(host, port, cfg["web_token"])
            except ValueError as e:
                raise _UserError(str(e))
            except OSError as e:
                why = "port in use" if e.errno in (98, 48, 10048) else (e.strerror or str(e))
                raise _UserError(f"cannot serve the web page on {host}:{port}: {why}")
            sinks.append(web)
            shown = f"http://{host}:{web.port}/" + ("?token=..." if cfg["web_token"] else "")
            print(f"edgevision: web page at {shown}", file=sys.stderr)
        if not cfg["quiet"]:
            # JSON on stdout keeps stdout clean: the live line goes to stderr then
            sinks.append(ConsoleSink(sys.stderr if cfg["jsonl"] == "-" else sys.stdout))
    except ImportError as e:
        _close_all(sinks)
        raise _UserError(str(e))
    except OSError as e:
        _close_all(sinks)
        raise _UserError(f"--jsonl {cfg['jsonl']}: {e.strerror or e}")
    except BaseException:
        _close_all(sinks)
        raise
    return sinks


def overlap_preprocessing(threads) -> bool:
    """Prepare frames in the capture thread (overlapping inference) only when a core is free for it: with
    inference on every core the two threads just contend (measured: slower than preparing inline)."""
    return (os.cpu_count() or 1) >= (threads or 1) + 1


def _close_all(things) -> None:
    for t in things:
        try:
            t.close()
        except Exception:  # noqa: BLE001
            pass


def _setup_logging(level: str) -> None:
    import logging
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="edgevision: %(levelname)s: %(message)s")


def cmd_run(args) -> int:
    from .classifier import Classifier
    from .pipeline import Pipeline, PipelineError
    cfg = _run_settings(args)
    _setup_logging(cfg["log_level"])
    info, backend = _open_model(cfg["model"], cfg["backend"], cfg["threads"], cfg["kernels"])
    with backend:
        classifier = Classifier(info.labels, top_k=cfg["top_k"], threshold=cfg["threshold"],
                                smoothing=cfg["smoothing"], hysteresis=cfg["hysteresis"])
        source, spec, newest_wins = _make_source(cfg)
        try:
            sinks = _make_sinks(cfg)
        except BaseException:
            source.close()
            raise
        pipeline = Pipeline(source, backend, info, classifier, sinks, max_frames=cfg["frames"],
                            newest_wins=newest_wins, prepare_in_capture=overlap_preprocessing(cfg["threads"]))
        try:
            stats = pipeline.run()
        except PipelineError as e:
            raise _UserError(str(e))
    if not cfg["quiet"]:
        lat = stats["latency_ms"]
        fps = f"{stats['fps']:.1f} fps" if stats["fps"] else "- fps"
        p50 = f"{lat['p50']:.1f}" if lat["p50"] is not None else "-"
        p95 = f"{lat['p95']:.1f}" if lat["p95"] is not None else "-"
        print(f"edgevision: {stats['frames']} frames from {spec}, {fps}, latency p50 {p50} ms p95 {p95} ms, "
              f"dropped {stats['dropped']}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------------- bench

def _percentiles_ms(seconds: list) -> dict:
    import numpy as np
    ms = np.asarray(seconds) * 1000.0
    return {f"p{q}": float(np.percentile(ms, q)) for q in (50, 95, 99)}


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2 ** 20  # KiB on Linux, bytes on macOS


def bench_pipeline(backend, info, frames: int, size=(1280, 720), sinks=(), **pipeline_options) -> dict:
    """End-to-end throughput on the demo source played as fast as possible (no frame dropped), ``size``
    frames, so preprocessing does real work; returns the pipeline's stats."""
    import time

    from .classifier import Classifier
    from .pipeline import Pipeline
    from .sources.demo import DemoSource
    from .sources.retry import RetryingSource
    src = RetryingSource(lambda: DemoSource(fps=_UNPACED_FPS, loop=True, size=size))
    src.open()  # decode the photos before the clock starts
    pipeline_options.setdefault("prepare_in_capture", overlap_preprocessing(getattr(backend, "threads", None)))
    pipe = Pipeline(src, backend, info, Classifier(info.labels), list(sinks), max_frames=frames,
                    newest_wins=False, stats_window=frames, **pipeline_options)
    t0 = time.perf_counter()
    stats = pipe.run()
    stats["wall_fps"] = stats["frames"] / (time.perf_counter() - t0)
    return stats


def run_bench(model: str, kind: str, info, runs: int = 50, pipeline_frames: int = 100, kernels=None) -> dict:
    """Load time, latency percentiles, throughput per thread count, pipeline throughput, peak RSS."""
    import time

    import numpy as np

    from .backends import create_backend
    from .demo import demo_photo
    from .frames import Frame
    from .preprocess import prepare_frame
    try:
        rgb = _load_image(demo_photo("cat_chelsea"))
    except SystemExit:  # no Pillow: a synthetic frame does as well for timing
        rgb = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    t = time.perf_counter()
    backend = create_backend(model, kind, None, kernels)
    load_ms = (time.perf_counter() - t) * 1000.0
    # the model's own input tensor, as the pipeline hands it over: raw inference excludes preprocessing
    x = prepare_frame(Frame(rgb, "rgb", rgb.shape[1], rgb.shape[0]), info, backend.input_dtype,
                      backend.input_quantization)
    report = {"model": str(model), "backend": getattr(backend, "name", kind),
              "backend_package": getattr(backend, "package", ""), "cpu_count": os.cpu_count() or 1,
              "runs": runs, "load_ms": load_ms}
    with backend:
        for _ in range(3):
            backend.infer(x)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            backend.infer(x)
            times.append(time.perf_counter() - t)
        report["latency_ms"] = _percentiles_ms(times)
        raw_fps = runs / sum(times)
        report["raw_fps"] = raw_fps
        stats = bench_pipeline(backend, info, pipeline_frames)
        report["pipeline"] = {"frames": stats["frames"], "fps": stats["wall_fps"],
                              "ratio_to_raw": stats["wall_fps"] / raw_fps, "latency_ms": stats["latency_ms"],
                              "stage_ms": stats["stage_ms"]}
    report["throughput"] = []
    for threads in range(1, (os.cpu_count() or 1) + 1):
        with create_backend(model, kind, threads, kernels) as b:
            for _ in range(3):
                b.infer(x)
            t = time.perf_counter()
            for _ in range(runs):
                b.infer(x)
            report["throughput"].append({"threads": threads, "fps": runs / (time.perf_counter() - t)})
    report["peak_rss_mb"] = _peak_rss_mb()
    return report


def cmd_bench(args) -> int:
    if args.runs < 1:
        raise _UsageError(f"--runs {args.runs}: expected an integer >= 1")
    info, backend = _open_model(args.model, args.backend, None, args.kernels)
    backend.close()
    report = run_bench(args.model, args.backend, info, runs=args.runs, pipeline_frames=args.pipeline_frames,
                       kernels=args.kernels)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_bench(report))
    return 0


def format_bench(r: dict) -> str:
    lat = r["latency_ms"]
    lines = [f"model       {r['model']}",
             f"backend     {r['backend']} ({r['backend_package']}), {r['cpu_count']} cores",
             f"load        {r['load_ms']:.1f} ms",
             f"latency     p50 {lat['p50']:.2f} ms  p95 {lat['p95']:.2f} ms  p99 {lat['p99']:.2f} ms  "
             f"({r['runs']} runs, default threads)",
             "threads     " + "  ".join(f"{t['threads']}: {t['fps']:.1f}/s" for t in r["throughput"]),
             f"pipeline    {r['pipeline']['fps']:.1f} fps end to end on the demo source "
             f"({r['pipeline']['frames']} frames, {r['pipeline']['ratio_to_raw']:.2f}× raw inference), "
             f"preprocess {r['pipeline']['stage_ms']['preprocess']:.2f} ms/frame",
             f"peak RSS    {r['peak_rss_mb']:.1f} MB" if r["peak_rss_mb"] is not None else "peak RSS    -"]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgevision", description="Live image recognition on a Raspberry Pi.")
    p.add_argument("--version", action="version", version=f"edgevision {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="recognise what the camera sees, live",
                       description="Recognise what the camera (or another source) sees, live. Settings come "
                                   "from defaults, then --config FILE, then flags.")
    r.add_argument("--model", help="int8 .tflite model (default: the embedded EfficientNet-Lite0)")
    r.add_argument("--source", help="demo | picamera2[:N] | /dev/videoN | usb:N | IMAGE | FOLDER | VIDEO | "
                   "rtsp://... (default: the Pi camera if present, else demo)")
    r.add_argument("--backend", choices=BACKENDS, help="inference engine (default: auto)")
    r.add_argument("--threads", type=int, metavar="N", help="inference threads (default: the backend's choice)")
    r.add_argument("--kernels", choices=KERNELS, help=KERNELS_HELP)
    r.add_argument("--config", metavar="FILE", help="TOML file with these settings (keys: the flag names "
                   "with _ for -)")
    r.add_argument("--jsonl", metavar="PATH|-", help="append one JSON object per result to PATH (- = stdout)")
    r.add_argument("--web", metavar="HOST:PORT", help="serve a live page (e.g. 127.0.0.1:8080; another "
                   "address needs --web-token)")
    r.add_argument("--web-token", dest="web_token", metavar="T", help="token the web page requires")
    r.add_argument("--frames", type=int, metavar="N", help="stop after N results")
    r.add_argument("--fps", type=float, help="pace the demo, image or camera source (0: as fast as possible, "
                   "every frame processed; demo and files only)")
    r.add_argument("--size", metavar="WxH", help="demo frame size, e.g. 1280x720")
    r.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None,
                   help="restart files and folders at their end")
    r.add_argument("--top-k", dest="top_k", type=int, metavar="K", help="ranked predictions per result (5)")
    r.add_argument("--threshold", type=float, help="smoothed score needed to report a label (0.3)")
    r.add_argument("--smoothing", type=float, help="weight of the past in the moving average, 0..<1 (0.6)")
    r.add_argument("--hysteresis", type=float, help="margin to switch labels and to drop one (0.1)")
    r.add_argument("--quiet", action="store_true", default=None, help="no live console line")
    r.add_argument("--log-level", dest="log_level", choices=LOG_LEVELS, help="(default: warning)")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("classify", help="classify image files (default: the bundled demo photos)")
    c.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...)")
    c.add_argument("--model", default=str(DEFAULT_MODEL), help="int8 .tflite model (default: the embedded "
                   "EfficientNet-Lite0)")
    c.add_argument("--labels", help="labels file for a model without embedded labels")
    c.add_argument("--backend", default="auto", choices=BACKENDS)
    c.add_argument("--threads", type=int, default=None)
    c.add_argument("--kernels", choices=KERNELS, default=None, help=KERNELS_HELP)
    c.add_argument("--top", type=int, default=3, metavar="K")
    c.add_argument("--json", action="store_true", help="JSON output")
    c.set_defaults(func=cmd_classify)

    b = sub.add_parser("bench", help="measure load time, latency, throughput, memory and the pipeline")
    b.add_argument("--model", default=str(DEFAULT_MODEL), help="int8 .tflite model (default: the embedded one)")
    b.add_argument("--backend", default="auto", choices=BACKENDS)
    b.add_argument("--kernels", choices=KERNELS, default=None, help=KERNELS_HELP)
    b.add_argument("--runs", type=int, default=50, metavar="N", help="timed inferences per measurement (50)")
    b.add_argument("--pipeline-frames", dest="pipeline_frames", type=int, default=100, metavar="N",
                   help="frames for the end-to-end pipeline measurement (100)")
    b.add_argument("--json", action="store_true", help="JSON output")
    b.set_defaults(func=cmd_bench)

    i = sub.add_parser("info", help="versions, backends, CPU features and cameras")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except _UsageError as e:
        print(f"edgevision {args.command}: error: {e}", file=sys.stderr)
        return 2
    except _UserError as e:
        print(f"edgevision: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgevision: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head, or a closed terminal
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
