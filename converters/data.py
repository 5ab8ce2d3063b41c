"""Image folders for calibration and evaluation, prepared with the runtime's own preprocessing.

A folder is *labelled* when its images sit in one subfolder per class (``eval/tabby/1.jpg``); the class of an
image is its subfolder's name, matched to the model's labels (ignoring case and punctuation) or, when the
model has no labels, to the sorted subfolder names.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from edgevision.model_info import ModelInfo
from edgevision.preprocess import prepare
from edgevision.sources import IMAGE_EXTENSIONS
from edgevision.sources.images import decode_image_rgb

from .ir import ConversionError



@dataclasses.dataclass
class ImageSet:
    paths: list[Path]
    classes: list[str] | None  # subfolder name per image, when labelled
    skipped: list[tuple[Path, str]]  # unreadable files and why


def list_images(folder: str | os.PathLike, what: str = "calibration") -> ImageSet:
    root = Path(folder)
    if not root.exists():
        raise ConversionError(f"{what} folder not found: {root}")
    if root.is_file():
        if root.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageSet([root], None, [])
        raise ConversionError(f"{what} must be a folder of images, got the file {root}")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise ConversionError(f"{what} folder {root} has no images (looked for "
                              f"{', '.join(sorted(IMAGE_EXTENSIONS))}); point it at a folder of photos like the "
                              "ones the camera will see")
    labelled = all(p.parent != root for p in paths)
    classes = [p.relative_to(root).parts[0] for p in paths] if labelled else None
    return ImageSet(paths, classes, [])


def load_rgb(path: Path) -> np.ndarray:
    """The runtime's own decoder (EXIF orientation applied), so calibration sees photos as the device will."""
    try:
        return decode_image_rgb(path)
    except ImportError as e:
        raise ConversionError(str(e)) from e


def load_folder(folder: str | os.PathLike, info: ModelInfo, limit: int | None = None, what: str = "calibration",
                seed: int = 0) -> tuple[np.ndarray, ImageSet]:
    """Prepared model inputs (N×h×w×c float32) for the images in ``folder``; at most ``limit`` images, an
    evenly spread, reproducible subset when there are more."""
    s = list_images(folder, what)
    idx = np.arange(len(s.paths))
    if limit is not None and len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), limit, replace=False))
    out, paths, classes = [], [], []
    for i in idx:
        p = s.paths[i]
        try:
            rgb = load_rgb(p)
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for a broken file
            s.skipped.append((p, f"{e.__class__.__name__}: {e}"))
            continue
        out.append(prepare(rgb, info))
        paths.append(p)
        if s.classes is not None:
            classes.append(s.classes[i])
    if not out:
        raise ConversionError(f"none of the {len(idx)} images in {folder} could be read "
                              f"(first error: {s.skipped[0][1]})")
    return np.stack(out), ImageSet(paths, classes if s.classes is not None else None, s.skipped)


def _norm(name: str) -> str:
    """Folder names cannot hold every label ("T-shirt/top" is saved as T-shirt_top): compare letters and
    digits only."""
    return re.sub(r"[^0-9a-z]+", " ", name.lower()).strip()


def class_indices(classes: list[str], labels: tuple[str, ...]) -> np.ndarray:
    """Subfolder names → label indices. Folder names may be a label, or a number (the index)."""
    if labels:
        lut = {}
        for i, lab in enumerate(labels):
            lut.setdefault(_norm(lab), i)
        out = []
        for c in classes:
            n = _norm(c)
            if n in lut:
                out.append(lut[n])
            elif c.isdigit() and int(c) < len(labels):
                out.append(int(c))
            else:
                raise ConversionError(f"evaluation subfolder {c!r} matches no label of the model; name each "
                                      "subfolder after a label (or its index), or pass --labels")
        return np.array(out)
    names = sorted(set(classes))
    return np.array([names.index(c) for c in classes])
