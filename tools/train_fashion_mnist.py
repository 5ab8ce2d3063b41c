"""Train the small MobileNet-style Fashion-MNIST model used by the converter acceptance test.

Runs under the TensorFlow peer venv (tools/setup_tf_venv.sh), never the main venv:

    .cache/tf-venv/bin/python tools/train_fashion_mnist.py [--epochs 12] [--out-dir models/fashion_mnist]

Writes fashion_mnist.keras, fashion_mnist.h5 (legacy HDF5), labels.txt and training.json into --out-dir.
The artefacts are committed; CI never retrains.

Model contract (what the converter's Keras importer sees):
  input  [N,28,28,1] float32 = pixel / 255  (mean 0, std 255; the normalisation is NOT in the model)
  output [N,10] softmax probabilities, class order = tools.fashion_mnist.CLASS_NAMES
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools import fashion_mnist  # noqa: E402

SEED = 0


def build_model(keras):
    L = keras.layers

    def conv_bn_relu6(x, filters, kernel, name, strides=1):
        x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        return L.ReLU(max_value=6.0, name=f"{name}_relu6")(x)

    def separable(x, filters, name, strides=1, residual=False):
        shortcut = x
        x = L.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = L.BatchNormalization(name=f"{name}_dw_bn")(x)
        x = L.ReLU(max_value=6.0, name=f"{name}_dw_relu6")(x)
        x = L.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
        x = L.BatchNormalization(name=f"{name}_pw_bn")(x)
        x = L.ReLU(max_value=6.0, name=f"{name}_pw_relu6")(x)
        if residual:
            x = L.Add(name=f"{name}_add")([shortcut, x])
        return x

    inputs = keras.Input((28, 28, 1), name="image")
    # A stride-2 stem as in MobileNet: full-resolution layers make CPU training ~4x slower.
    x = conv_bn_relu6(inputs, 32, 3, "stem", strides=2)      # 14x14x32
    x = separable(x, 64, "block1")                           # 14x14x64
    x = separable(x, 64, "block2", residual=True)            # 14x14x64
    x = separable(x, 128, "block3", strides=2)               # 7x7x128
    x = separable(x, 128, "block4", residual=True)           # 7x7x128
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.2, name="dropout")(x)
    x = L.Dense(10, name="logits")(x)
    outputs = L.Softmax(name="probs")(x)
    return keras.Model(inputs, outputs, name="fashion_mnist_mobilenet")


def save_inference_model(keras, model, out: Path) -> None:
    """Save an uncompiled copy (no optimizer state: a third of the size) as .keras and legacy .h5."""
    export = build_model(keras)  # fresh and uncompiled: keras.models.clone_model would copy the compile state
    export.set_weights(model.get_weights())
    export.save(out / "fashion_mnist.keras")
    export.save(out / "fashion_mnist.h5")  # legacy HDF5, for the converter's .h5 path


def preprocess(images):
    """uint8 [N,28,28] -> float32 [N,28,28,1] in [0,1] (mean 0, std 255)."""
    return (images.astype("float32") / 255.0)[..., None]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out-dir", type=Path, default=REPO / "models" / "fashion_mnist")
    args = p.parse_args(argv)

    import tensorflow as tf
    import keras

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()

    x_train, y_train = fashion_mnist.load("train")
    x_test, y_test = fashion_mnist.load("test")
    x_train, x_test = preprocess(x_train), preprocess(x_test)

    model = build_model(keras)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    lr = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=steps, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    model.summary(line_length=100)

    start = time.perf_counter()
    # A fixed epoch count and no validation split: the test set is never used to choose anything.
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=2)
    train_seconds = time.perf_counter() - start

    probs = model.predict(x_test, batch_size=500, verbose=0)
    test_top1 = float((probs.argmax(axis=1) == y_test).mean())
    print(f"float test top-1: {test_top1:.4f} ({train_seconds:.0f} s training)")

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    save_inference_model(keras, model, out)
    (out / "labels.txt").write_text("".join(f"{name}\n" for name in fashion_mnist.CLASS_NAMES))
    report = {
        "float_test_top1": test_top1,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": SEED,
        "train_seconds": round(train_seconds, 1),
        "params": int(model.count_params()),
        "preprocessing": {"mean": 0.0, "std": 255.0, "layout": "NHWC", "shape": [1, 28, 28, 1]},
        "tf_version": tf.__version__,
        "keras_version": keras.__version__,
        "layers": sorted({type(layer).__name__ for layer in model.layers}),
    }
    (out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
