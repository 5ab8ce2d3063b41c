"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, with numpy only.

Imported by tests and by tools running in either venv, so it must never import TensorFlow.

Files (IDX format, gzip): ``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.
An IDX image file has a 16-byte header (magic, count, rows, cols) and a label file an 8-byte one
(magic, count); the rest is uint8 pixels / labels. ``FASHION_MNIST_DIR`` overrides the folder.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")

# The official label order (Zalando's README): index i is class i.
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

SPLITS = {"train": ("train", 60000), "test": ("t10k", 10000)}

_IMAGE_MAGIC = 2051
_LABEL_MAGIC = 2049
_INSTALL_HINT = "install it with: apt-get install dataset-fashion-mnist"

_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}


class DatasetMissingError(FileNotFoundError):
    """The Fashion-MNIST files are not where we looked."""


def data_dir() -> Path:
    return Path(os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR))


def folder_name(label: int) -> str:
    """Class name usable as a directory name ("T-shirt/top" -> "T-shirt_top")."""
    return CLASS_NAMES[label].replace("/", "_")


def _read_idx(path: Path, magic: int, header: int) -> tuple[np.ndarray, tuple[int, ...]]:
    if not path.is_file():
        raise DatasetMissingError(f"Fashion-MNIST file not found: {path}; {_INSTALL_HINT}")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got_magic = struct.unpack(">I", raw[:4])[0]
    if got_magic != magic:
        raise ValueError(f"{path}: IDX magic {got_magic}, expected {magic}; the file is not what its name says")
    dims = struct.unpack(f">{(header - 4) // 4}I", raw[4:header])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}; the file is truncated")
    return data.reshape(dims), dims


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 [N,28,28], labels uint8 [N])`` for ``split`` "train" (60k) or "test" (10k).

    The arrays are read-only and cached per process.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    if split not in _cache:
        prefix, count = SPLITS[split]
        root = data_dir()
        images, _ = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz", _IMAGE_MAGIC, 16)
        labels, _ = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz", _LABEL_MAGIC, 8)
        if images.shape != (count, 28, 28) or labels.shape != (count,):
            raise ValueError(
                f"{split}: images {images.shape} and labels {labels.shape}, expected ({count}, 28, 28) and ({count},)"
            )
        _cache[split] = (images, labels)
    return _cache[split]


def calibration_indices(n: int = 200, seed: int = 0) -> np.ndarray:
    """Indices into the TRAINING set of the calibration subset, sorted ascending.

    Definition (keep it stable, results are compared across tools): ``n`` distinct indices drawn by
    ``np.random.default_rng(seed).choice(60000, size=n, replace=False)``, then sorted. Depends only on
    numpy's PCG64 generator, not on the data.
    """
    total = SPLITS["train"][1]
    if not 0 < n <= total:
        raise ValueError(f"n={n}; expected 1..{total}")
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def calibration_images(n: int = 200, seed: int = 0) -> np.ndarray:
    """The fixed calibration subset of the training set: uint8 [n,28,28] (see ``calibration_indices``)."""
    images, _ = load("train")
    return images[calibration_indices(n, seed)]


def write_image_folder(out_dir, split: str, limit: int | None = None, labelled: bool = True) -> int:
    """Write ``split`` as 8-bit grayscale PNGs under ``out_dir``; return the number written.

    ``labelled=True``: one subfolder per class (``folder_name(label)``; all ten are created), so the
    folder is an eval set for the converter's ``--eval``. ``labelled=False``: all PNGs directly in
    ``out_dir`` (a ``--calib`` set). ``limit`` keeps the first ``limit`` images of the split.
    ``split="calib"`` writes the 200 ``calibration_images()`` (with their training labels).
    File names are ``{index:05d}.png``, the index in the split (or in the training set for "calib").
    """
    from PIL import Image  # Pillow is only needed here; loading stays numpy-only.

    if split == "calib":
        idx = calibration_indices()
        images, labels = load("train")
    else:
        images, labels = load(split)
        idx = np.arange(len(images))
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit={limit}; expected >= 0 or None")
        idx = idx[:limit]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if labelled:
        for label in range(len(CLASS_NAMES)):
            (out / folder_name(label)).mkdir(exist_ok=True)
    for i in idx:
        sub = out / folder_name(int(labels[i])) if labelled else out
        Image.fromarray(images[i]).save(sub / f"{int(i):05d}.png")
    return len(idx)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Write Fashion-MNIST as PNG folders for the converter CLI.")
    p.add_argument("out_dir")
    p.add_argument("--split", choices=[*SPLITS, "calib"], default="test")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--flat", action="store_true", help="no per-class subfolders")
    args = p.parse_args(argv)
    try:
        n = write_image_folder(args.out_dir, args.split, args.limit, labelled=not args.flat)
    except DatasetMissingError as e:
        print(f"error: {e}", file=__import__("sys").stderr)
        return 1
    print(f"wrote {n} PNGs to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
