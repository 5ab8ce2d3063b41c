#!/usr/bin/env python3
"""Write the TF-made .tflite fixtures that tests/test_tflite_importer.py checks the importer against.

Converts the Fashion-MNIST Keras model with TensorFlow's own TFLiteConverter, twice:

* ``fashion_mnist_float32.tflite``: plain float32;
* ``fashion_mnist_fp16.tflite``: fp16 weights behind DEQUANTIZE (optimizations=[DEFAULT] with
  target_spec.supported_types=[tf.float16]);
* ``fashion_mnist_dynamic_int8.tflite``: "dynamic range" int8 weights (optimizations=[DEFAULT] alone);
* ``fashion_mnist_int8.tflite``: fully int8 (with a representative dataset), the model the importer must
  refuse as already quantized.

TensorFlow lives in its own venv, never in the project's; run this script with that venv's Python:

    .cache/tf-venv/bin/python tools/make_tflite_fixtures.py [--model models/fashion_mnist/fashion_mnist.keras]
                                                            [--out tests/data]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(f"make_tflite_fixtures: {msg}", file=sys.stderr)


IMAGES = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")  # Debian's dataset-fashion-mnist


def calibration_images(np, shape: tuple[int, ...], n: int = 200):
    """Representative inputs for full-int8 conversion: Fashion-MNIST images in [0, 1] (random if absent).

    The exact scaling does not matter for a fixture: the test only checks that import refuses the result."""
    if IMAGES.exists() and tuple(shape[1:]) == (28, 28, 1):
        import gzip
        with gzip.open(IMAGES) as f:
            raw = np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784]
        return (raw.reshape(n, 1, 28, 28, 1) / 255.0).astype(np.float32)
    log(f"{IMAGES} not found or model input {shape} is not 28x28x1: calibrating on random data")
    return np.random.default_rng(0).random((n, 1) + tuple(shape[1:]), dtype=np.float32)


def convert(tf, model, kind: str) -> bytes:
    def configure(converter):
        if kind != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if kind == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        if kind == "int8":
            import numpy as np
            images = calibration_images(np, tuple(model.inputs[0].shape))
            converter.representative_dataset = lambda: ([x] for x in images)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()

    try:
        return configure(tf.lite.TFLiteConverter.from_keras_model(model))
    except Exception as e:  # Keras 3 models may need the SavedModel route
        log(f"from_keras_model failed ({type(e).__name__}: {e}); converting through a SavedModel export")
        with tempfile.TemporaryDirectory() as d:
            model.export(d)
            return configure(tf.lite.TFLiteConverter.from_saved_model(d))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "models/fashion_mnist/fashion_mnist.keras",
                   help="Keras model to convert (default: %(default)s)")
    p.add_argument("--out", type=Path, default=ROOT / "tests/data", help="output folder (default: %(default)s)")
    args = p.parse_args(argv)
    if not args.model.is_file():
        log(f"Keras model {args.model} not found: train it first or pass --model")
        return 2
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
    except ImportError:
        log(f"TensorFlow is not importable from {sys.executable}; run this script with the TF venv's Python, "
            "e.g. .cache/tf-venv/bin/python tools/make_tflite_fixtures.py")
        return 1
    model = tf.keras.models.load_model(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in ("float32", "fp16", "dynamic_int8", "int8"):
        name = f"fashion_mnist_{kind}.tflite"
        data = convert(tf, model, kind)
        (args.out / name).write_bytes(data)
        log(f"wrote {args.out / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
