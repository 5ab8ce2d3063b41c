"""Measure TensorFlow's own full-int8 conversion of a Fashion-MNIST Keras model: the peer we compare against.

Runs under the TensorFlow peer venv (tools/setup_tf_venv.sh), never the main venv:

    .cache/tf-venv/bin/python tools/tf_peer.py --out tf_peer.json [--tflite-out tf_int8.tflite] [--model M.keras]

Conversion: tf.lite.TFLiteConverter.from_keras_model, Optimize.DEFAULT, representative dataset = exactly
tools.fashion_mnist.calibration_images(200) preprocessed (x - mean) / std, supported_ops TFLITE_BUILTINS_INT8,
int8 input and output. Both the Keras float model and the TF int8 model (tf.lite.Interpreter) are scored
top-1 on the full 10k test set. The JSON written to --out holds the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import warnings
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from tools import fashion_mnist  # noqa: E402

DEFAULT_MODEL = REPO / "models" / "fashion_mnist" / "fashion_mnist.keras"
CALIB_N = 200
CALIB_SEED = 0


def preprocess(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 [N,28,28] -> float32 [N,28,28,1]."""
    return ((images.astype(np.float32) - mean) / std)[..., None]


def display_path(path: Path) -> str:
    """Repo-relative when inside the repo, so reports do not depend on where the clone lives."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)


def venv_size_mb() -> float:
    """Size of this interpreter's site-packages (the TF venv's), in MB (du -sm, as the report elsewhere)."""
    site = sysconfig.get_paths()["purelib"]
    try:
        out = subprocess.run(["du", "-sm", site], check=True, capture_output=True, text=True).stdout
        return float(out.split()[0])
    except (OSError, subprocess.CalledProcessError):
        total = sum(p.stat().st_size for p in Path(site).rglob("*") if p.is_file() and not p.is_symlink())
        return round(total / 2**20, 1)


def convert_int8(tf, model, calib: np.ndarray) -> bytes:
    def representative_dataset():
        for x in calib:
            yield [x[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def int8_predictions(tf, tflite: bytes, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Top-1 class of each row of float ``x`` through the int8 model, one image per invoke."""
    interp = tf.lite.Interpreter(model_content=tflite, num_threads=2)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    if inp["dtype"] != np.int8 or out["dtype"] != np.int8:
        raise RuntimeError(f"expected int8 input/output, got {inp['dtype']} / {out['dtype']}")
    in_scale, in_zp = inp["quantization"]
    q = np.clip(np.round(x / in_scale) + in_zp, -128, 127).astype(np.int8)
    preds = np.empty(len(x), dtype=np.int64)
    for i in range(len(x)):
        interp.set_tensor(inp["index"], q[i : i + 1])
        interp.invoke()
        # The output scale is positive, so argmax of the int8 values is argmax of the dequantised ones.
        preds[i] = int(np.argmax(interp.get_tensor(out["index"])[0]))
    # Op list from an interpreter without the XNNPACK delegate, which would otherwise show as "DELEGATE".
    plain = tf.lite.Interpreter(
        model_content=tflite,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    ops = sorted({d["op_name"] for d in plain._get_ops_details()})
    quant = {
        "input_scale": float(in_scale),
        "input_zero_point": int(in_zp),
        "output_scale": float(out["quantization"][0]),
        "output_zero_point": int(out["quantization"][1]),
        "ops": ops,
        "eval_kernels": "tf.lite.Interpreter default resolver (XNNPACK)",
    }
    return preds, quant


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="JSON report to write")
    p.add_argument("--tflite-out", type=Path, help="also write TF's int8 .tflite here")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="Keras model (.keras or .h5)")
    p.add_argument("--mean", type=float, default=0.0, help="preprocessing: (pixel - mean) / std")
    p.add_argument("--std", type=float, default=255.0)
    args = p.parse_args(argv)
    if not args.model.is_file():
        print(f"error: model not found: {args.model}; train it with tools/train_fashion_mnist.py", file=sys.stderr)
        return 1
    if args.std <= 0:
        p.error(f"--std must be > 0, got {args.std}")

    try:
        calib = preprocess(fashion_mnist.calibration_images(CALIB_N, CALIB_SEED), args.mean, args.std)
        x_test, y_test = fashion_mnist.load("test")
    except fashion_mnist.DatasetMissingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    x_test = preprocess(x_test, args.mean, args.std)

    import tensorflow as tf
    import keras

    model = keras.models.load_model(args.model, compile=False)

    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the converter prints its SavedModel export; stdout is the JSON
        tflite = convert_int8(tf, model, calib)
    convert_seconds = time.perf_counter() - start

    float_pred = model.predict(x_test, batch_size=500, verbose=0).argmax(axis=1)
    int8_pred, quant = int8_predictions(tf, tflite, x_test)
    float_top1 = float((float_pred == y_test).mean())
    int8_top1 = float((int8_pred == y_test).mean())

    report = {
        "model": display_path(args.model),
        "model_sha256": hashlib.sha256(args.model.read_bytes()).hexdigest(),
        "preprocessing": {"mean": args.mean, "std": args.std},
        "calibration": {"split": "train", "n": CALIB_N, "seed": CALIB_SEED},
        "num_test": int(len(y_test)),
        "float_top1": float_top1,
        "tf_int8_top1": int8_top1,
        "tf_drop_points": round(100.0 * (float_top1 - int8_top1), 2),
        "tf_float_int8_agreement": float((float_pred == int8_pred).mean()),
        "tf_convert_seconds": round(convert_seconds, 2),
        "tf_tflite_bytes": len(tflite),
        "tf_int8": quant,
        "tf_venv_size_mb": venv_size_mb(),
        "tf_version": tf.__version__,
        "keras_version": keras.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.tflite_out:
        args.tflite_out.parent.mkdir(parents=True, exist_ok=True)
        args.tflite_out.write_bytes(tflite)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
