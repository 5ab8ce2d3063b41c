"""``edgevision``: the on-device command line.

Exit status: 0 success; 1 failure; 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from . import __version__
from .model_info import read_model_info

DEFAULT_MODEL = Path(__file__).with_name("models") / "efficientnet_lite0_int8.tflite"


def _load_image(path: Path):
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit("edgevision: reading image files needs Pillow: pip install 'edgevision[images]'")
    import numpy as np
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise _UserError(f"image not found: {path}")
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
        raise _UserError(f"cannot read {path} as an image ({e.__class__.__name__}: {e})")


class _UserError(Exception):
    pass


def cmd_classify(args) -> int:
    from .backends import BackendUnavailable, create_backend
    from .demo import demo_photos
    from .postprocess import top_k
    from .preprocess import prepare

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
        backend = create_backend(str(model), args.backend, args.threads)
    except (BackendUnavailable, ValueError) as e:
        raise _UserError(str(e))
    results = []
    with backend:
        for path in images:
            rgb = _load_image(path)
            preds = top_k(backend.infer(prepare(rgb, info)), labels, args.top)
            results.append({"image": str(path), "top": [{"index": p.index, "label": p.label,
                                                         "score": round(p.score, 4)} for p in preds]})
            if not args.json:
                best = preds[0]
                rest = ", ".join(f"{p.label} {p.score:.2f}" for p in preds[1:])
                print(f"{path.name:28s} {best.label} ({best.score:.2f})" + (f"   [{rest}]" if rest else ""))
    if args.json:
        print(json.dumps(results if len(results) != 1 else results[0], indent=2, ensure_ascii=False))
    return 0


def cmd_info(args) -> int:
    import numpy as np
    print(f"edgevision {__version__}  Python {platform.python_version()}  numpy {np.__version__}  "
          f"{platform.machine()}")
    try:
        from .backends.litert import load_interpreter_class
        _, pkg = load_interpreter_class()
        print(f"backend litert: available ({pkg})")
    except Exception as e:  # noqa: BLE001
        print(f"backend litert: not available ({e})")
    print("backend native: not available in this version")
    if DEFAULT_MODEL.exists():
        info = read_model_info(DEFAULT_MODEL)
        print(f"default model: {info.name} {info.input_size} {len(info.labels)} labels")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgevision", description="Live image recognition on a Raspberry Pi.")
    p.add_argument("--version", action="version", version=f"edgevision {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify", help="classify image files (default: the bundled demo photos)")
    c.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...)")
    c.add_argument("--model", default=str(DEFAULT_MODEL), help="int8 .tflite model (default: the embedded "
                   "EfficientNet-Lite0)")
    c.add_argument("--labels", help="labels file for a model without embedded labels")
    c.add_argument("--backend", default="auto", choices=("auto", "litert", "native"))
    c.add_argument("--threads", type=int, default=None)
    c.add_argument("--top", type=int, default=3, metavar="K")
    c.add_argument("--json", action="store_true", help="JSON output")
    c.set_defaults(func=cmd_classify)
    i = sub.add_parser("info", help="versions and available backends")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _UserError as e:
        print(f"edgevision: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
