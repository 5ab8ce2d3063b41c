"""Convert EfficientNet-Lite0 with TensorFlow's own converter (full int8): the peer we compare against.

Runs under the TensorFlow peer venv (tools/setup_tf_venv.sh), never the main venv. Input is the .npz that
tools/export_efficientnet_npz.py writes in the main venv (weights, prepared calibration and evaluation
inputs, torch's float logits):

    .cache/tf-venv/bin/python tools/tf_efficientnet_peer.py NPZ --out tf_eff.json [--tflite-out tf.tflite]
        [--repeats 2] [--score-also edgevision/models/efficientnet_lite0_int8.tflite]

Steps: build EfficientNet-Lite0 in Keras (this file's own code: ReLU6, BatchNorm eps 1e-3, Keras "same"
padding = TF SAME, no squeeze-excite, stem 32, head 1280), load the npz weights (BatchNorm left for TF's
converter to fold), check its float logits against torch's, then tf.lite.TFLiteConverter.from_keras_model
with Optimize.DEFAULT, representative_dataset = the npz's calibration inputs, TFLITE_BUILTINS_INT8 and int8
input/output. ``tf_convert_seconds`` is the wall time of converter.convert() (which includes TF's
calibration); with --repeats N the fastest of N. The int8 model is scored on the npz's evaluation inputs:
top-1 agreement with the Keras float logits and output SQNR, inputs quantized with the model's own
scale/zero point (round half away from zero), with the interpreter's default kernels (XNNPACK, what
converters/report.py scores accuracy with and what the device runs) and again with the builtin kernels
without delegate (XNNPACK rescales in float, so an output may differ by one step and a near tie flip).
--score-also scores other int8 .tflite files the same way.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgevision.preprocess import quantize  # noqa: E402  (stdlib + numpy: imports in the TF venv too)
from tools.tf_peer import convert_int8  # noqa: E402  (the same TF settings as the Fashion-MNIST peer)

SETUP_HINT = "run tools/setup_tf_venv.sh, then use .cache/tf-venv/bin/python"
# Layers of the same SQNR window as converters/report.py (its output SQNR covers the first 16 images).
REPORT_SQNR_IMAGES = 16
FLOAT_TOLERANCE = 1e-3  # max |keras - torch| logit difference accepted (float32 reordering gives ~1e-5)


def import_tf():
    try:
        import tensorflow as tf
    except ImportError as e:
        raise SystemExit(f"error: TensorFlow is not importable by {sys.executable} ({e}); {SETUP_HINT}")
    return tf


# ---------------------------------------------------------------- the network

def build_keras_model(keras, meta: dict):
    """EfficientNet-Lite0 as a Keras functional model; layer names are the torch module names."""
    L = keras.layers
    eps = float(meta["bn_eps"])
    size = int(meta["input_size"])

    def conv_bn(x, name, filters, kernel, stride, act=True, depthwise=False):
        if depthwise:
            x = L.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}.conv")(x)
        else:
            x = L.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}.conv")(x)
        x = L.BatchNormalization(epsilon=eps, momentum=0.99, name=f"{name}.bn")(x)
        return L.ReLU(max_value=6.0, name=f"{name}.relu6")(x) if act else x

    inp = keras.Input((size, size, 3), batch_size=1, name="input")
    x = conv_bn(inp, "stem", int(meta["stem"]), 3, 2)
    in_ch, b = int(meta["stem"]), 0
    for repeats, kernel, stride, expand, out_ch in meta["stages"]:
        for i in range(repeats):
            s = stride if i == 0 else 1
            name = f"blocks.{b}"
            y = x
            if expand != 1:
                y = conv_bn(y, f"{name}.expand", in_ch * expand, 1, 1)
            y = conv_bn(y, f"{name}.depthwise", None, kernel, s, depthwise=True)
            y = conv_bn(y, f"{name}.project", out_ch, 1, 1, act=False)
            x = L.Add(name=f"{name}.add")([x, y]) if s == 1 and in_ch == out_ch else y
            in_ch, b = out_ch, b + 1
    x = conv_bn(x, "head", int(meta["head"]), 1, 1)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    x = L.Dropout(0.2, name="dropout")(x)
    out = L.Dense(int(meta["num_classes"]), name="classifier")(x)
    return keras.Model(inp, out, name="efficientnet_lite0")


def load_weights(model, npz) -> int:
    """Copy the torch-layout weights into the Keras layers; every npz tensor must be used exactly once."""
    unused = {k[2:] for k in npz.files if k.startswith("w/")}

    def take(key):
        if key not in unused:
            raise KeyError(f"weight {key!r} missing from the npz (or used twice)")
        unused.discard(key)
        return npz[f"w/{key}"]

    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            weights = [take(f"{layer.name}.weight").transpose(2, 3, 1, 0)]  # OIHW -> HWIO
        elif kind == "DepthwiseConv2D":
            weights = [take(f"{layer.name}.weight").transpose(2, 3, 0, 1)]  # [C,1,kh,kw] -> [kh,kw,C,1]
        elif kind == "BatchNormalization":
            weights = [take(f"{layer.name}.{k}") for k in ("weight", "bias", "running_mean", "running_var")]
        elif kind == "Dense":
            weights = [take(f"{layer.name}.weight").T, take(f"{layer.name}.bias")]
        else:
            continue
        want = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(w.shape) for w in weights]
        if want != got:
            raise ValueError(f"layer {layer.name}: npz shapes {got}, Keras expects {want}")
        layer.set_weights(weights)
    if unused:
        raise KeyError(f"{len(unused)} npz weights were not used, e.g. {sorted(unused)[:5]}")
    return sum(1 for k in npz.files if k.startswith("w/"))


# ---------------------------------------------------------------- conversion and scoring

def sqnr_db(f: np.ndarray, q: np.ndarray) -> float:
    signal, noise = float((f.astype(np.float64) ** 2).sum()), float(((f.astype(np.float64) - q) ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


KERNELS = ("xnnpack", "builtin")


def score_int8(tf, tflite: bytes, x: np.ndarray, float_logits: np.ndarray, kernels: str = "xnnpack") -> dict:
    """Agreement and output SQNR of an int8-in/int8-out model against ``float_logits``.

    ``kernels``: "xnnpack" = the default resolver (XNNPACK delegate), "builtin" = builtin kernels only."""
    resolver = tf.lite.experimental.OpResolverType
    interp = tf.lite.Interpreter(
        model_content=tflite, num_threads=2,
        experimental_op_resolver_type=resolver.AUTO if kernels == "xnnpack"
        else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    if inp["dtype"] != np.int8 or out["dtype"] != np.int8:
        raise RuntimeError(f"expected int8 input/output, got {inp['dtype']} / {out['dtype']}")
    in_scale, in_zp = inp["quantization"]
    out_scale, out_zp = out["quantization"]
    q_in = quantize(x, in_scale, in_zp)
    deq = np.empty_like(float_logits)
    for i in range(len(x)):
        interp.set_tensor(inp["index"], q_in[i:i + 1])
        interp.invoke()
        deq[i] = (interp.get_tensor(out["index"])[0].astype(np.float32) - out_zp) * out_scale
    agree = float((deq.argmax(1) == float_logits.argmax(1)).mean() * 100)
    return {
        "agreement_top1": round(agree, 2),
        "output_sqnr_db": round(sqnr_db(float_logits, deq), 2),
        f"output_sqnr_db_first{REPORT_SQNR_IMAGES}": round(sqnr_db(float_logits[:REPORT_SQNR_IMAGES],
                                                                   deq[:REPORT_SQNR_IMAGES]), 2),
        "input_scale": float(in_scale), "input_zero_point": int(in_zp),
        "output_scale": float(out_scale), "output_zero_point": int(out_zp),
        "tflite_bytes": len(tflite),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("npz", type=Path, help="written by tools/export_efficientnet_npz.py (main venv)")
    p.add_argument("--out", type=Path, required=True, help="JSON report to write")
    p.add_argument("--tflite-out", type=Path, help="also write TF's int8 .tflite here")
    p.add_argument("--repeats", type=int, default=1, help="convert N times, report the fastest (default 1)")
    p.add_argument("--score-also", type=Path, action="append", default=[], metavar="TFLITE",
                   help="also score this int8 .tflite on the same inputs, the same way (repeatable)")
    p.add_argument("--no-eval", action="store_true", help="timing only: skip scoring the int8 model")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    if not args.npz.is_file():
        print(f"error: {args.npz} not found; write it with .venv/bin/python tools/export_efficientnet_npz.py "
              f"{args.npz}", file=sys.stderr)
        return 1
    for extra in args.score_also:
        if not extra.is_file():
            print(f"error: --score-also {extra}: no such file", file=sys.stderr)
            return 1

    tf = import_tf()
    import keras

    npz = np.load(args.npz)
    meta = json.loads(npz["meta_json"].tobytes().decode())
    calib, evals, torch_logits = npz["calib"], npz["eval"], npz["eval_logits_torch"]

    model = build_keras_model(keras, meta)
    n_weights = load_weights(model, npz)
    keras_logits = model.predict(evals, batch_size=1, verbose=0).astype(np.float32)
    float_diff = float(np.abs(keras_logits - torch_logits).max())
    if not float_diff <= FLOAT_TOLERANCE:
        print(f"error: Keras float logits differ from torch's by {float_diff:.3g} (> {FLOAT_TOLERANCE:g}); "
              "the Keras network or the weight mapping is wrong", file=sys.stderr)
        return 1

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the converter prints its SavedModel export
            tflite = convert_int8(tf, model, calib)
        times.append(time.perf_counter() - start)

    report = {
        "tf_version": tf.__version__,
        "keras_version": keras.__version__,
        "float_vs_torch_max_abs": float_diff,
        "float_top1_agreement_keras_vs_torch": float((keras_logits.argmax(1) == torch_logits.argmax(1)).mean() * 100),
        "tf_convert_seconds": round(min(times), 2),
        "tf_convert_seconds_all": [round(t, 2) for t in times],
        "n_calib": int(len(calib)),
        "n_eval": int(len(evals)),
        "n_weight_tensors": n_weights,
        "calib_source": meta.get("calib"),
        "cpu_count": os.cpu_count(),
        "eval_kernels": "tf_agreement_top1/tf_output_sqnr_db: default kernels (XNNPACK); '*_builtin': builtin "
                        "kernels without delegate",
    }
    if not args.no_eval:
        tf_score = score_int8(tf, tflite, evals, keras_logits)
        builtin = score_int8(tf, tflite, evals, keras_logits, "builtin")
        report["tf_agreement_top1"] = tf_score.pop("agreement_top1")
        report["tf_output_sqnr_db"] = tf_score.pop("output_sqnr_db")
        report["tf_agreement_top1_builtin"] = builtin["agreement_top1"]
        report["tf_output_sqnr_db_builtin"] = builtin["output_sqnr_db"]
        report["tf_int8"] = tf_score
        report["also_scored"] = {str(path): {k: score_int8(tf, path.read_bytes(), evals, keras_logits, k)
                                             for k in KERNELS} for path in args.score_also}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.tflite_out:
        args.tflite_out.parent.mkdir(parents=True, exist_ok=True)
        args.tflite_out.write_bytes(tflite)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
