"""Real photos bundled for demos, calibration and agreement checks (origins and licences: SOURCES.md).

All are RGB JPEGs, long side at most 640 px, named by what they show. This module only finds the files;
decoding them is the image source's job (Pillow is imported there, not here).
"""

from __future__ import annotations

import pathlib
from typing import List

_DEMO_DIR = pathlib.Path(__file__).resolve().parent


def demo_photos() -> List[pathlib.Path]:
    """Paths of every bundled photo, sorted by file name."""
    return sorted(_DEMO_DIR.glob("*.jpg"))


def demo_photo(name: str) -> pathlib.Path:
    """Path of one bundled photo by its name with or without ".jpg", e.g. ``demo_photo("cat_chelsea")``."""
    stem = name[:-4] if name.endswith(".jpg") else name
    path = _DEMO_DIR / f"{stem}.jpg"
    if not path.is_file():
        available = ", ".join(p.stem for p in demo_photos())
        raise FileNotFoundError(f"no demo photo named {name!r}; available: {available}")
    return path
