"""``edgevision-convert MODEL --calib DIR -o OUT.tflite``: the converter's command line.

Exit status: 0 written; 1 conversion failed or accuracy gate refused; 2 bad usage.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .ir import ConversionError


def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected one number or three separated by commas, got {text!r}")
    if len(vals) not in (1, 3):
        raise argparse.ArgumentTypeError(f"expected one number or three separated by commas, got {text!r}")
    return vals


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("×", "x").split("x")
    try:
        if len(parts) == 1:
            return int(parts[0]), int(parts[0])
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected HxW (e.g. 224x224) or one number, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgevision-convert",
        description="Convert a trained convnet (.onnx, .keras, .h5, float .tflite) to a full-integer int8 TFLite "
                    "model with labels and preprocessing embedded, and report float-vs-int8 accuracy.")
    p.add_argument("model", help="the float model: .onnx, .keras, .h5 or float .tflite")
    p.add_argument("--calib", required=True, metavar="DIR", help="folder of calibration images (100-500 photos "
                   "like the camera will see)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.tflite", help="where to write the int8 model")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line, in output order")
    p.add_argument("--eval", metavar="DIR", help="evaluation images: one subfolder per class (labelled) or flat")
    p.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS",
                   help="refuse to write if int8 top-1 drops more than this (default 1.0)")
    p.add_argument("--force", action="store_true", help="write the model even if the accuracy gate fails")
    p.add_argument("--report-json", metavar="PATH", help="also write the report as JSON ('-' for stdout)")
    g = p.add_argument_group("preprocessing (read from the model where it says; these override)")
    g.add_argument("--input-size", type=_size, metavar="HxW", help="fix dynamic input dimensions")
    g.add_argument("--mean", type=_floats, metavar="M[,M,M]", help="pixel-unit mean: x = (pixel - mean) / std")
    g.add_argument("--std", type=_floats, metavar="S[,S,S]", help="pixel-unit standard deviation")
    g.add_argument("--channel-order", choices=("RGB", "BGR"), help="channel order the model expects")
    g.add_argument("--resize-mode", choices=("center_crop", "stretch", "letterbox"),
                   help="how a frame is fitted to the input (default center_crop)")
    q = p.add_argument_group("quantization")
    q.add_argument("--calibration", choices=("minmax", "percentile", "mse"), default="minmax",
                   help="activation range method (default minmax)")
    q.add_argument("--percentile", type=float, default=99.99, help="for --calibration percentile")
    q.add_argument("--weight-rounding", choices=("nearest", "gptq"), default="nearest",
                   help="int8 weight rounding: nearest, or gptq (compensates rounding errors using the "
                        "calibration inputs; slower, helps deep networks)")
    q.add_argument("--calib-limit", type=int, default=500, metavar="N", help="use at most N calibration images")
    q.add_argument("--eval-limit", type=int, metavar="N", help="use at most N evaluation images")
    q.add_argument("--input-type", choices=("int8", "uint8"), default="int8")
    q.add_argument("--output-type", choices=("int8", "float32"), default="int8")
    p.add_argument("--name", help="model name stored in the metadata")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .convert import ConversionRefused, convert
    try:
        result = convert(
            args.model, args.calib, args.output, labels=args.labels, eval=args.eval, input_size=args.input_size,
            mean=args.mean, std=args.std, channel_order=args.channel_order, resize_mode=args.resize_mode,
            calibration=args.calibration, percentile=args.percentile, calib_limit=args.calib_limit,
            eval_limit=args.eval_limit, input_type=args.input_type, output_type=args.output_type,
            max_drop=args.max_drop, force=args.force, name=args.name, progress=not args.quiet,
            weight_rounding=args.weight_rounding)
        report = result.report
        status = 0
    except ConversionRefused as e:
        report = e.report
        status = 1
        print(report.to_table())
        print(f"\nedgevision-convert: {e}", file=sys.stderr)
    except ConversionError as e:
        print(f"edgevision-convert: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgevision-convert: interrupted; nothing written", file=sys.stderr)
        return 130
    if status == 0:
        print(report.to_table())
        print(f"\nwrote {args.output} ({Path(args.output).stat().st_size / 1024:.0f} KiB)")
    if args.report_json:
        if args.report_json == "-":
            print(report.to_json())
        else:
            Path(args.report_json).write_text(report.to_json() + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
