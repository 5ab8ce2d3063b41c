"""Benchmark our converter against TensorFlow's: conversion wall time and install size, two models.

Runs under the main venv; TensorFlow's side runs in the TF peer venv (tools/setup_tf_venv.sh) by subprocess:

    .venv/bin/python tools/bench_converter.py --out bench.json [--repeats 2] [--skip-install-size]

Models and settings (the same calibration images for both converters):

* Fashion-MNIST (models/fashion_mnist/fashion_mnist.keras): calibration = tools.fashion_mnist.
  calibration_images(200), pixel/255 (mean 0, std 255), calibration "minmax" (our default; TF's method).
  Ours: converters.convert(the .keras file, ...) with no eval set, so its built-in check runs on the
  calibration images. TF: tools/tf_peer.py's convert_int8 on the same array (passed in an .npz).
* EfficientNet-Lite0: the ONNX export of converters/zoo/efficientnet_lite.py; calibration = 200 views made
  from the 36 views of tools/build_default_model.py by export_efficientnet_npz.calibration_views_n (the 36
  whole, then fixed square crops of them), prepared as that script does (mean 127, std 128, center_crop);
  calibration "mse" and the 108 evaluation views as the build script. TF: tools/tf_efficientnet_peer.py
  on an .npz holding the same prepared arrays and the float weights.

Timing: wall time of converters.convert() (import, optimisation passes, calibration, quantisation, writing
and its float-vs-int8 check, which TF's converter does not do; the check's share is reported separately)
against the wall time of TF's converter.convert() (tracing, its calibration, quantisation). Each conversion
runs ``--repeats`` times in one process per converter; the fastest counts (a shared machine is noisy; the
first run also pays one-time lazy imports and initialisation, on both sides). Model export (ONNX, Keras
build) and TensorFlow's import are outside both timers.

Install size (du -sm of site-packages minus a bare venv's): ours = a fresh venv with ``pip install
<repo>[convert]`` (from a copy of the package sources, so the build leaves nothing in the tree); TF = the TF
peer venv's site-packages, less the Pillow our tools add to it.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_TF_PYTHON = ROOT / ".cache" / "tf-venv" / "bin" / "python"
FASHION_MODEL = ROOT / "models" / "fashion_mnist" / "fashion_mnist.keras"
CALIB_N = 200
SETUP_HINT = "run tools/setup_tf_venv.sh"


class BenchError(RuntimeError):
    """A precondition is missing; the message says how to fix it."""


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- our converter

@contextlib.contextmanager
def _timing_check(spent: list[float]):
    """Time the float-vs-int8 check inside convert() (converters.report.evaluate, as convert.py calls it)."""
    mod = importlib.import_module("converters.convert")
    original = mod.evaluate

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    mod.evaluate = timed
    try:
        yield
    finally:
        mod.evaluate = original


def time_ours(model, calib: np.ndarray, repeats: int, out_dir: Path, **kwargs) -> dict:
    """Run converters.convert ``repeats`` times; the fastest run's total and check times, and its report."""
    from converters import convert

    runs = []
    for i in range(repeats):
        spent: list[float] = []
        with _timing_check(spent):
            start = time.perf_counter()
            result = convert(model, calib, out_dir / f"ours_{i}.tflite", progress=False, force=True, **kwargs)
            total = time.perf_counter() - start
        runs.append((total, sum(spent), result.report))
        log(f"  ours run {i + 1}/{repeats}: {total:.2f} s (check {sum(spent):.2f} s)")
    total, check, report = min(runs, key=lambda r: r[0])
    return {
        "convert_seconds": round(total, 2),
        "check_seconds": round(check, 2),
        "convert_seconds_excl_check": round(total - check, 2),
        "convert_seconds_all": [round(r[0], 2) for r in runs],
        "n_calib": report.calibration_images,
        "n_eval": report.eval_images,
        "eval_source": report.eval_source,
        "calibration": report.calibration_method,
        "agreement_top1": round(report.agreement_top1, 2),
        "output_sqnr_db": round(report.output_sqnr_db, 2),
    }


# ---------------------------------------------------------------- TensorFlow's converter

def run_tf(tf_python: Path, args: list[str]) -> dict:
    """Run a TF-venv script whose JSON report goes to its --out; return the report."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [str(tf_python), *args, "--out", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise BenchError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(out.read_text())


# ---------------------------------------------------------------- the two models

# TensorFlow's side of the Fashion model: tools/tf_peer.py's own convert_int8, run --repeats times in one
# process (as tools/tf_efficientnet_peer.py does) on the calibration array this script saved.
_TF_FASHION = """
import contextlib, json, sys, time
sys.path.insert(0, sys.argv[1])
from tools import tf_peer
import numpy as np, tensorflow as tf, keras
model = keras.models.load_model(sys.argv[2], compile=False)
calib = np.load(sys.argv[3])["calib"]
times = []
for _ in range(int(sys.argv[4])):
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        tflite = tf_peer.convert_int8(tf, model, calib)
    times.append(time.perf_counter() - start)
print(json.dumps({"tf_version": tf.__version__, "times": times, "n_calib": len(calib), "bytes": len(tflite)}))
"""


def bench_fashion(tf_python: Path, repeats: int, work: Path) -> dict:
    from tools import fashion_mnist

    if not FASHION_MODEL.is_file():
        raise BenchError(f"{FASHION_MODEL} not found; train it with tools/train_fashion_mnist.py")
    try:
        images = fashion_mnist.calibration_images(CALIB_N)
    except fashion_mnist.DatasetMissingError as e:
        raise BenchError(str(e)) from e
    calib = (images.astype(np.float32) / 255.0)[..., None]  # tools/tf_peer.py's preprocess(images, 0, 255)
    npz_path = work / f"fashion_calib{CALIB_N}.npz"
    np.savez(npz_path, calib=calib)

    log("Fashion-MNIST: ours")
    ours = time_ours(FASHION_MODEL, calib, repeats, work, mean=(0.0,), std=(255.0,), calibration="minmax")
    log("Fashion-MNIST: TensorFlow (tools/tf_peer.convert_int8)")
    cmd = [str(tf_python), "-c", _TF_FASHION, str(ROOT), str(FASHION_MODEL), str(npz_path), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BenchError(f"TensorFlow's Fashion-MNIST conversion failed (exit {proc.returncode}):\n{tail}")
    rep = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"  TF runs: {[round(t, 2) for t in rep['times']]} s")
    tf = {
        "convert_seconds": round(min(rep["times"]), 2),
        "convert_seconds_all": [round(t, 2) for t in rep["times"]],
        "n_calib": rep["n_calib"],
        "tf_version": rep["tf_version"],
    }
    return {"model": "Fashion-MNIST CNN (Keras)", "calibration_images": f"tools.fashion_mnist.calibration_images"
            f"({CALIB_N}), pixel/255", "ours": ours, "tf": tf}


def bench_efficientnet(tf_python: Path, repeats: int, work: Path) -> dict:
    from converters.zoo import efficientnet_lite as eff
    from tools import build_default_model as bdm
    from tools import export_efficientnet_npz as exp

    npz_path = work / f"efficientnet_lite0_calib{CALIB_N}.npz"
    onnx_path = work / "efficientnet_lite0.onnx"
    log(f"EfficientNet-Lite0: exporting {npz_path.name} and the ONNX model (not timed)")
    exp.export(npz_path, CALIB_N)
    eff.export_onnx(str(onnx_path))
    with np.load(npz_path) as npz:
        calib, evals = npz["calib"], npz["eval"]

    log("EfficientNet-Lite0: ours")
    ours = time_ours(onnx_path, calib, repeats, work, eval=evals, mean=eff.MEAN, std=eff.STD,
                     resize_mode=eff.RESIZE_MODE, calibration=bdm.CALIBRATION,
                     weight_rounding=bdm.WEIGHT_ROUNDING, labels=bdm.LABELS,
                     max_drop=bdm.MAX_DISAGREEMENT, name="EfficientNet-Lite0 (ImageNet, int8)")
    log("EfficientNet-Lite0: TensorFlow (tools/tf_efficientnet_peer.py)")
    rep = run_tf(tf_python, ["tools/tf_efficientnet_peer.py", str(npz_path), "--repeats", str(repeats)])
    log(f"  TF runs: {rep['tf_convert_seconds_all']} s")
    tf = {
        "convert_seconds": rep["tf_convert_seconds"],
        "convert_seconds_all": rep["tf_convert_seconds_all"],
        "n_calib": rep["n_calib"],
        "tf_version": rep["tf_version"],
        "float_vs_torch_max_abs": rep["float_vs_torch_max_abs"],
        "agreement_top1": rep["tf_agreement_top1"],  # default kernels (XNNPACK), as converters/report.py
        "agreement_top1_builtin": rep["tf_agreement_top1_builtin"],
        "output_sqnr_db": rep["tf_output_sqnr_db"],
        # converters/report.py's output SQNR covers the first 16 evaluation images; this is the same window.
        "output_sqnr_db_first16": rep["tf_int8"]["output_sqnr_db_first16"],
    }
    return {"model": "EfficientNet-Lite0 (ONNX / Keras)", "calibration_images":
            f"{CALIB_N} views: the 36 calibration views whole, then crops {exp.EXTRA_CROPS} "
            "(export_efficientnet_npz.calibration_views_n)", "ours": ours, "tf": tf}


# ---------------------------------------------------------------- install sizes

def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sm", str(path)], check=True, capture_output=True, text=True).stdout
    return float(out.split()[0])


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout
    return Path(out.strip())


def _new_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    return path / "bin" / "python"


def install_sizes(tf_python: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bare = du_mb(site_packages(_new_venv(tmp / "bare")))
        # pip would build in the source tree (build/, *.egg-info); a copy of the sources keeps the repo clean.
        src = tmp / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        for pkg in ("edgevision", "converters"):
            shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        py = _new_venv(tmp / "ours")
        log("install size: pip install <repo>[convert] into a fresh venv")
        proc = subprocess.run([str(py), "-m", "pip", "install", "--quiet", f"{src}[convert]"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise BenchError(f"pip install {src}[convert] failed:\n{proc.stderr[-2000:]}")
        ours_site = site_packages(py)
        ours = du_mb(ours_site) - bare
        freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.splitlines()

    tf_site = site_packages(tf_python)
    pillow = sum(du_mb(p) for p in tf_site.iterdir() if p.name.lower().startswith(("pil", "pillow")))
    tf_total = du_mb(tf_site) - bare
    return {
        "bare_venv_mb": bare,
        "ours_mb": ours,
        "ours_packages": [f for f in freeze if not f.startswith("edgevision")],
        "tf_mb": tf_total - pillow,
        "tf_venv_mb_incl_pillow": tf_total,
        "tf_site_packages": str(tf_site),
    }


# ---------------------------------------------------------------- report

def markdown_table(results: list[dict], sizes: dict | None) -> str:
    def mb(key):
        return f"{sizes[key]:.0f}" if sizes else "n/a"

    lines = ["| model | converter | calib images | conversion s | ratio ours/TF | install MB |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        o, t = r["ours"], r["tf"]
        lines.append(f"| {r['model']} | edgevision convert() | {o['n_calib']} | {o['convert_seconds']:.2f} "
                     f"({o['convert_seconds_excl_check']:.2f} without its {o['n_eval']}-image check) | "
                     f"{o['convert_seconds'] / t['convert_seconds']:.2f} "
                     f"({o['convert_seconds_excl_check'] / t['convert_seconds']:.2f}) | {mb('ours_mb')} |")
        lines.append(f"| {r['model']} | TensorFlow {t['tf_version']} TFLiteConverter | {t['n_calib']} | "
                     f"{t['convert_seconds']:.2f} | 1 | {mb('tf_mb')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON report to write")
    ap.add_argument("--repeats", type=int, default=2, help="conversions per converter; the fastest counts")
    ap.add_argument("--tf-python", type=Path, default=DEFAULT_TF_PYTHON,
                    help=f"the TF peer venv's python (default {DEFAULT_TF_PYTHON.relative_to(ROOT)})")
    ap.add_argument("--models", default="fashion,efficientnet",
                    help="comma-separated subset of fashion,efficientnet (default both)")
    ap.add_argument("--skip-install-size", action="store_true", help="do not build the fresh venv")
    ap.add_argument("--work-dir", type=Path, help="keep the npz, ONNX and .tflite files here (default: temporary)")
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - {"fashion", "efficientnet"})
    if unknown or not models:
        ap.error(f"--models {args.models!r}: expected a comma-separated subset of fashion,efficientnet")
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if not (args.tf_python.is_file() and os.access(args.tf_python, os.X_OK)):
        print(f"error: TensorFlow venv not found ({args.tf_python}); {SETUP_HINT}", file=sys.stderr)
        return 1

    load_before = os.getloadavg()
    results = []
    try:
        with contextlib.ExitStack() as stack:
            if args.work_dir:
                work = args.work_dir
                work.mkdir(parents=True, exist_ok=True)
            else:
                work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_converter_")))
            if "fashion" in models:
                results.append(bench_fashion(args.tf_python, args.repeats, work))
            if "efficientnet" in models:
                results.append(bench_efficientnet(args.tf_python, args.repeats, work))
        sizes = None if args.skip_install_size else install_sizes(args.tf_python)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    report = {
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "repeats": args.repeats,
        "timing": "fastest of --repeats wall times; ours = converters.convert() incl. its float/int8 check "
                  "(check share given); TF = converter.convert() incl. its calibration",
        "models": results,
        "install_size": sizes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"CPUs: {report['cpu_count']}, load average before/after: {report['load_average_before'][0]} / "
          f"{report['load_average_after'][0]}; fastest of {args.repeats} runs")
    print(markdown_table(results, sizes))
    for r in results:
        if "agreement_top1" in r["tf"]:
            o, t = r["ours"], r["tf"]
            print(f"\n{r['model']}: float/int8 top-1 agreement on {o['n_eval']} evaluation views: ours "
                  f"{o['agreement_top1']:.2f} %, TF {t['agreement_top1']:.2f} %; output SQNR (first 16) ours "
                  f"{o['output_sqnr_db']:.1f} dB, TF {t['output_sqnr_db_first16']:.1f} dB")
    if sizes:
        print(f"\ninstall MB = du -sm site-packages minus a bare venv's ({sizes['bare_venv_mb']:.0f} MB); "
              f"TF excludes Pillow (with it: {sizes['tf_venv_mb_incl_pillow']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
