#!/usr/bin/env python3
"""Write the int8 models the native engine's model-level tests run (tests/test_native_models.py), made by our
own converter, so the tests exercise exactly what the converter emits. Committed under tests/data/native/ so
that neither CI nor the arm64 userland (which has no converter) has to rebuild them:

* ``fashion_mnist_int8.tflite``: the committed Fashion-MNIST Keras net, calibrated on 200 training images;
* ``opmix_*.tflite``: small PyTorch nets with random weights, made to cover every operator and option the
  converter emits (strided, dilated and grouped convolutions, depth multiplier 2, asymmetric padding,
  pools, mean, concatenation, add, mul, sigmoid gating, hard-swish, bilinear and nearest resize, softmax,
  fully connected, float output through DEQUANTIZE), on odd input sizes and channel counts.

    .venv/bin/python tools/build_native_test_models.py [--out tests/data/native]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def opmix_nets():
    import torch
    from torch import nn
    import torch.nn.functional as F

    class OpMixA(nn.Module):
        """conv s2 + relu6, dilated conv, depthwise ×2 multiplier, hard-swish, SE-style sigmoid gate (MEAN,
        LOGISTIC, MUL), residual ADD, max/avg pools, concat, bilinear + nearest upsampling, FC, softmax."""
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 13, 3, stride=2, padding=1)
            self.c2 = nn.Conv2d(13, 13, 3, padding=2, dilation=2)
            self.dw = nn.Conv2d(13, 26, 5, padding=2, groups=13)
            self.pw = nn.Conv2d(26, 13, 1)
            self.se1 = nn.Conv2d(13, 5, 1)
            self.se2 = nn.Conv2d(5, 13, 1)
            self.c3 = nn.Conv2d(26, 17, (3, 2), stride=(1, 2))
            self.fc = nn.Linear(17, 10)

        def forward(self, x):
            x = F.relu6(self.c1(x))
            y = F.relu(self.c2(x))
            y = F.hardswish(self.pw(self.dw(y)))
            g = torch.sigmoid(self.se2(F.relu(self.se1(y.mean((2, 3), keepdim=True)))))
            y = y * g + x
            a = F.max_pool2d(y, 2, stride=2)
            b = F.avg_pool2d(y, 2, stride=2)
            z = torch.cat([a, b], dim=1)
            z = F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)
            z = F.interpolate(z, size=(11, 7), mode="nearest")
            z = F.relu(self.c3(z)).mean((2, 3))
            return torch.softmax(self.fc(z), dim=1)

    class OpMixB(nn.Module):
        """VALID-style convs on an odd size, asymmetric zero padding (PAD), stride-3 pool, a 1×1 output FC
        with no activation (float output path)."""
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 7, 5, stride=3)
            self.c2 = nn.Conv2d(7, 33, 1)
            self.dw = nn.Conv2d(33, 33, 3, stride=2, groups=33)
            self.fc = nn.Linear(33 * 4 * 7, 6)

        def forward(self, x):
            x = F.relu(self.c1(x))
            x = F.pad(x, (1, 2, 0, 1))
            x = F.hardswish(self.c2(x))
            x = F.avg_pool2d(F.relu(self.dw(x)), 3, stride=1)
            x = F.max_pool2d(x, 3, stride=1, padding=1)
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(0)
    return {"opmix_a": (OpMixA().eval(), (45, 37)), "opmix_b": (OpMixB().eval(), (41, 53))}


def calibration_photos(size_hw, n=24, seed=0) -> np.ndarray:
    """Crops of the bundled demo photos, resized to size_hw (uint8 N×H×W×3)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    photos = sorted((ROOT / "edgevision" / "demo").glob("*.jpg"))
    out = []
    for i in range(n):
        im = Image.open(photos[i % len(photos)]).convert("RGB")
        w, h = im.size
        s = int(min(w, h) * rng.uniform(0.5, 1.0))
        x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        out.append(np.asarray(im.crop((x0, y0, x0 + s, y0 + s)).resize(size_hw[::-1], Image.BILINEAR)))
    return np.stack(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "native"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from converters.convert import convert
    import fashion_mnist as fm

    convert(ROOT / "models" / "fashion_mnist" / "fashion_mnist.keras", fm.calibration_images(200),
            out / "fashion_mnist_int8.tflite", mean=(0,), std=(255,), progress=False, force=True,
            labels=str(ROOT / "models" / "fashion_mnist" / "labels.txt"))
    for name, (net, hw) in opmix_nets().items():
        calib = calibration_photos(hw)
        output_type = "float32" if name == "opmix_b" else "int8"
        convert(net, calib, out / f"{name}.tflite", input_size=hw, mean=(127.5,), std=(127.5,), progress=False,
                force=True, output_type=output_type, resize_mode="stretch")
    for p in sorted(out.glob("*.tflite")):
        print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
