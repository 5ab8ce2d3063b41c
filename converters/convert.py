"""The converter's flow: importer → graph → calibration → quantization → writer → report.

    result = convert("model.onnx", calib="photos/", output="model_int8.tflite", labels="labels.txt")
    print(result.report.to_table())
"""
from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgevision.model_info import ModelInfo, load_labels_file, read_model_info
from edgevision.preprocess import prepare

from . import passes
from .calibrate import METHODS, calibrate
from .data import class_indices, load_folder
from .ir import ConversionError, DynamicShapeError, Graph
from .quantize import affine_params, quantize_graph
from .report import Report, evaluate
from .tflite_writer import write_tflite

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # torchvision's Normalize, in pixel units
IMAGENET_STD = (58.395, 57.12, 57.375)
MODEL_SUFFIXES = {".onnx": "ONNX", ".keras": "Keras", ".h5": "Keras (HDF5)", ".hdf5": "Keras (HDF5)",
                  ".tflite": "float TFLite"}


class ConversionRefused(ConversionError):
    """The int8 model lost more accuracy than allowed; nothing was written."""

    def __init__(self, report: Report):
        super().__init__(f"int8 accuracy dropped {report.drop_points:.2f} points (> --max-drop {report.max_drop:g});"
                         " the file was not written. Calibrate on images closer to the deployment, try "
                         "--calibration mse, or pass --force to write it anyway.")
        self.report = report


@dataclasses.dataclass
class ConversionResult:
    model: bytes  # the .tflite file, metadata included
    report: Report
    info: ModelInfo
    graph: Graph  # the quantized graph
    tensor_index: dict[str, int]
    pass_stats: dict[str, int]


def _progress(enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    def wrap(it, total, desc):
        return tqdm(it, total=total, desc=desc, unit="batch", file=sys.stderr, disable=None, leave=False)
    return wrap


def load_graph(model: Any, input_shape: Sequence[int] | None = None) -> tuple[Graph, str, ModelInfo | None]:
    """Import any supported model: (graph, format name, metadata already in the file if any)."""
    if isinstance(model, Graph):
        return model, "graph", None
    if type(model).__name__ == "ModelProto":
        from .importers.onnx import import_onnx
        return import_onnx(model, input_shape), "ONNX", None
    if _is_torch_module(model):
        return _import_torch(model, input_shape), "PyTorch", None
    if not isinstance(model, (str, os.PathLike)):
        raise ConversionError(f"cannot convert a {type(model).__name__}; expected a path to a .onnx, .keras, .h5 or "
                              ".tflite file, an onnx.ModelProto or a torch.nn.Module")
    path = Path(model)
    if not path.exists():
        raise ConversionError(f"model file not found: {path}")
    if path.is_dir():
        raise ConversionError(f"{path} is a folder; expected a model file ({', '.join(MODEL_SUFFIXES)}). "
                              "For a TensorFlow SavedModel, convert it to float .tflite or .keras first")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from .importers.onnx import import_onnx
        return import_onnx(path, input_shape), "ONNX", None
    if suffix in (".keras", ".h5", ".hdf5"):
        from .importers.keras import import_keras
        return import_keras(path, input_shape), "Keras", None
    if suffix == ".tflite":
        from .importers.tflite import import_tflite
        try:
            meta = read_model_info(path)
        except ValueError:
            meta = None
        return import_tflite(path, input_shape), "float TFLite", meta
    if suffix in (".pt", ".pth"):
        raise ConversionError(f"{path.name}: a PyTorch checkpoint holds weights, not the network; load your module "
                              "and call converters.convert(module, ...), or export it with torch.onnx.export")
    raise ConversionError(f"{path.name}: unknown model format {suffix!r}; expected one of "
                          f"{', '.join(f'{k} ({v})' for k, v in MODEL_SUFFIXES.items())}")


def _is_torch_module(obj) -> bool:
    mod = sys.modules.get("torch")
    return mod is not None and isinstance(obj, mod.nn.Module)


def _import_torch(module, input_shape) -> Graph:
    import torch
    from .importers.onnx import import_onnx
    if input_shape is None:
        raise ConversionError("a PyTorch module needs input_size=(H, W) (or (C, H, W), (1, C, H, W))")
    shape = tuple(input_shape)
    if len(shape) == 2:
        shape = (3,) + shape
    if len(shape) == 3:
        shape = (1,) + shape
    module = module.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        with torch.no_grad():
            torch.onnx.export(module, torch.zeros(shape), path, input_names=["input"], output_names=["output"],
                              opset_version=17, do_constant_folding=True, **kwargs)
        return import_onnx(path)


def resolve_info(graph: Graph, fmt: str, meta: ModelInfo | None, *, input_size=None, mean=None, std=None,
                 channel_order=None, resize_mode=None, labels=None, name=None) -> tuple[ModelInfo, list[str]]:
    """What the runtime must know: from the user, else from the model, else a stated default."""
    notes = []
    shape = graph.tensors[graph.inputs[0]].shape
    if len(shape) != 4:
        raise ConversionError(f"expected an image input [1, H, W, C], the model's input has shape {shape}")
    channels = shape[3]
    if channels not in (1, 3):
        raise ConversionError(f"the model's input has {channels} channels; only 1 (grayscale) and 3 (colour) "
                              "images are supported")
    if meta is not None and (any(meta.mean) or any(v != 1.0 for v in meta.std)):
        default, why = (meta.mean, meta.std), None  # the float model's own metadata says
    elif fmt in ("ONNX", "PyTorch") and channels == 3:
        default, why = (IMAGENET_MEAN, IMAGENET_STD), "torchvision's ImageNet mean/std"
    elif fmt in ("ONNX", "PyTorch", "Keras"):
        default, why = ((0.0,), (255.0,)), "pixel/255 (a Rescaling layer inside the model means --mean 0 --std 1)"
    else:
        default, why = ((127.5,), (127.5,)), "(pixel - 127.5)/127.5"
    if why and (mean is None or std is None):
        notes.append(f"normalisation not fully given: assumed {why}; pass --mean/--std if the model was "
                     "trained otherwise")
    mean = default[0] if mean is None else mean
    std = default[1] if std is None else std
    if labels is None and meta is not None and meta.labels:
        labels = meta.labels
    elif isinstance(labels, (str, os.PathLike)):
        try:
            labels = load_labels_file(labels)
        except (OSError, ValueError) as e:
            raise ConversionError(f"cannot read the labels file {labels}: {e}") from e
    labels = tuple(labels or ())
    out_shape = graph.tensors[graph.outputs[0]].shape
    n_out = int(np.prod(out_shape[1:])) if len(out_shape) > 1 else int(out_shape[0])
    if labels and len(labels) != n_out:
        raise ConversionError(f"the labels file has {len(labels)} labels but the model has {n_out} outputs")
    if not labels:
        notes.append("no labels: results will be class indices (pass --labels FILE, one label per line)")
    h, w = shape[1], shape[2]
    if input_size is not None and tuple(input_size)[-2:] != (h, w):
        raise ConversionError(f"--input-size {input_size} differs from the model's fixed input {h}x{w}")
    try:
        info = ModelInfo(name=name or graph.name or "model", description="int8 model written by edgevision-convert",
                         labels=labels, input_size=(h, w), channels=channels, mean=tuple(mean), std=tuple(std),
                         channel_order=channel_order or (meta.channel_order if meta else "RGB"),
                         resize_mode=resize_mode or (meta.resize_mode if meta else "center_crop"))
    except (TypeError, ValueError) as e:
        raise ConversionError(str(e)) from e
    return info, notes


def input_quant_params(info: ModelInfo) -> tuple[float, int]:
    """Input (scale, zero point). When every channel shares one integral mean and one std, choose
    scale = 1/std and zero point = mean − 128: then int8 = pixel − 128 exactly, and no input precision is lost.
    Otherwise cover the whole range a pixel can reach after normalisation."""
    m, s = np.asarray(info.mean), np.asarray(info.std)
    if np.all(m == m[0]) and np.all(s == s[0]) and abs(m[0] - round(m[0])) < 1e-6 and s[0] > 0 and 0 <= m[0] <= 255:
        return float(1.0 / s[0]), int(round(m[0])) - 128
    lo = float(np.min((0 - m) / s))
    hi = float(np.max((255 - m) / s))
    return affine_params(lo, hi)


def _prepare_arrays(arr: np.ndarray, info: ModelInfo, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    h, w = info.input_size
    if arr.dtype == np.uint8:
        if arr.ndim == 3 and info.channels == 1:
            arr = arr[..., None]
        if arr.ndim != 4:
            raise ConversionError(f"{what} images must be an array N×H×W×3 (uint8 RGB), got shape {arr.shape}")
        return np.stack([prepare(a, info) for a in arr])
    if arr.ndim == 4 and arr.shape[1:] == (h, w, info.channels) and np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32)
    raise ConversionError(f"{what} arrays must be uint8 images N×H×W×C (preprocessed by us) or float32 model "
                          f"inputs N×{h}×{w}×{info.channels}; got {arr.dtype} {arr.shape}")


def convert(model: Any, calib: Any, output: str | os.PathLike | None = None, *, labels=None, eval: Any = None,
            eval_labels: np.ndarray | None = None, input_size=None, mean=None, std=None, channel_order=None,
            resize_mode=None, calibration: str = "minmax", percentile: float = 99.99, calib_limit: int = 500,
            eval_limit: int | None = None, input_type: str = "int8", output_type: str = "int8",
            max_drop: float = 1.0, force: bool = False, name: str | None = None, progress: bool = True,
            bias_correction: bool = True, weight_rounding: str = "nearest") -> ConversionResult:
    """Convert ``model`` to a full-integer int8 TFLite model, calibrated on ``calib``.

    ``calib`` and ``eval`` are image folders or arrays (uint8 images, or float32 prepared inputs).
    ``eval_labels`` gives class indices for an ``eval`` array. Raises :class:`ConversionRefused` (with the
    report) when the top-1 drop exceeds ``max_drop`` and ``force`` is false; then nothing is written."""
    if calibration not in METHODS:
        raise ConversionError(f"unknown calibration method {calibration!r}; expected one of {', '.join(METHODS)}")
    if weight_rounding not in ("nearest", "gptq"):
        raise ConversionError(f"unknown weight rounding {weight_rounding!r}; expected nearest or gptq")
    if input_type not in ("int8", "uint8") or output_type not in ("int8", "float32"):
        raise ConversionError("input_type must be int8 or uint8; output_type int8 or float32")
    try:
        graph, fmt, meta = load_graph(model, tuple(input_size) if input_size is not None else None)
    except DynamicShapeError as e:
        size = _calibration_size(calib)
        if size is None:
            raise ConversionError(f"{e}; the calibration images differ in size, so they cannot fix it") from e
        graph, fmt, meta = load_graph(model, size)
    if not graph.outputs:
        raise ConversionError("the model has no outputs")
    info, notes = resolve_info(graph, fmt, meta, input_size=input_size, mean=mean, std=std,
                               channel_order=channel_order, resize_mode=resize_mode, labels=labels, name=name)
    stats = passes.optimize(graph)
    prog = _progress(progress)

    skipped = 0
    if isinstance(calib, (str, os.PathLike)):
        cdata, cset = load_folder(calib, info, calib_limit, "calibration")
        skipped += len(cset.skipped)
    else:
        cdata = _prepare_arrays(calib, info, "calibration")
        if calib_limit and len(cdata) > calib_limit:
            cdata = cdata[np.sort(np.random.default_rng(0).choice(len(cdata), calib_limit, replace=False))]
    if len(cdata) < 10:
        notes.append(f"only {len(cdata)} calibration images; 100-500 varied photos give more reliable ranges")
    cal = calibrate(graph, cdata, calibration, percentile=percentile, progress=prog, hessians=weight_rounding == "gptq")
    in_params = input_quant_params(info)
    qg = quantize_graph(graph, cal.ranges, input_params=in_params, input_dtype=input_type, output_dtype=output_type,
                        channel_means=cal.channel_means if bias_correction else None, hessians=cal.hessians or None)
    written = write_tflite(qg)

    targets = None
    if eval is None:
        edata, source, labelled = cdata, "calibration images; pass --eval DIR for an honest figure", False
    elif isinstance(eval, (str, os.PathLike)):
        edata, eset = load_folder(eval, info, eval_limit, "evaluation")
        skipped += len(eset.skipped)
        labelled = eset.classes is not None
        source = "labelled folder" if labelled else "unlabelled folder"
        if labelled:
            targets = class_indices(eset.classes, info.labels)
    else:
        edata = _prepare_arrays(eval, info, "evaluation")
        labelled = eval_labels is not None
        source = "arrays"
        if labelled:
            targets = np.asarray(eval_labels)
    res = evaluate(graph, written.data, written.tensor_index, edata, targets, progress=prog)
    node_of = {n.outputs[0]: n for n in graph.nodes}
    from .report import LayerSQNR
    layers = [LayerSQNR(t, node_of[t].op if t in node_of else "input", node_of[t].name if t in node_of else t, v)
              for t, v in res["layers"].items()]
    drop = (res["float_top1"] - res["int8_top1"]) if labelled else 100.0 - res["agreement"]
    report = Report(
        model=str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__,
        calibration_method=calibration + (f" (p={percentile})" if calibration == "percentile" else ""),
        calibration_images=len(cdata), eval_images=len(edata), eval_source=source, labelled=labelled,
        float_top1=res.get("float_top1"), int8_top1=res.get("int8_top1"), float_top5=res.get("float_top5"),
        int8_top5=res.get("int8_top5"), agreement_top1=res["agreement"], drop_points=drop, max_drop=max_drop,
        output_sqnr_db=res["output_sqnr"], layers=layers, passed=drop <= max_drop, skipped_images=skipped,
        notes=notes)

    from .metadata_writer import embed_metadata
    data = embed_metadata(written.data, info)
    result = ConversionResult(data, report, info, graph, written.tensor_index, stats)
    if not report.passed and not force:
        raise ConversionRefused(report)
    if output is not None:
        write_atomic(output, data)
        report.written = str(output)
    return result


def _calibration_size(calib) -> tuple[int, int] | None:
    """(H, W) shared by every calibration image, to fix a model's open input dimensions; else None."""
    if isinstance(calib, (str, os.PathLike)):
        from .data import list_images
        try:
            from PIL import Image
        except ImportError:
            return None
        sizes = set()
        for p in list_images(calib).paths[:500]:
            try:
                with Image.open(p) as im:
                    sizes.add((im.height, im.width))
            except Exception:  # noqa: BLE001 - unreadable files are reported later, by the loader
                continue
        return sizes.pop() if len(sizes) == 1 else None
    arr = np.asarray(calib)
    return (int(arr.shape[1]), int(arr.shape[2])) if arr.ndim >= 3 else None


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename: a crash never leaves a partial model."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ConversionError(f"output folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + path.name, dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a model file is as readable as any other
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
