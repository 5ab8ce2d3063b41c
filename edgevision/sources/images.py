"""Image files as a source: one file or every image in a folder (sorted by name), decoded with Pillow.

Also home to the two helpers the demo source shares: :class:`Pacer` (frames on a fixed time grid) and
:func:`decode_image_rgb`.
"""
from __future__ import annotations

import os
import pathlib
import threading
import time
from typing import List, Optional, Union

import numpy as np

from ..frames import Frame
from . import IMAGE_EXTENSIONS
from .base import CorruptFrameError, EndOfStream, Source


class Pacer:
    """Frame k is due at ``t0 + k / fps``, the grid anchored at the first frame, so sleeping to each deadline
    never accumulates drift. ``wait_for(k)`` returns False when ``stop`` was set while waiting."""

    def __init__(self, fps: float, stop: threading.Event, clock=time.monotonic):
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.period = 1.0 / float(fps)
        self.stop = stop
        self.clock = clock
        self.t0: Optional[float] = None

    def due(self, k: int) -> float:
        if self.t0 is None:
            self.t0 = self.clock()
        return self.t0 + k * self.period

    def newest_due(self) -> int:
        """Index of the newest frame whose deadline has passed (0 before the grid starts)."""
        if self.t0 is None:
            return 0
        return int((self.clock() - self.t0) / self.period)

    def wait_for(self, k: int) -> bool:
        delay = self.due(k) - self.clock()
        if delay > 0:
            return not self.stop.wait(delay)
        return not self.stop.is_set()


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError as e:
        raise ImportError(
            "reading images needs Pillow: pip install pillow  (or pip install 'edgevision[images]'; "
            "on Raspberry Pi OS: sudo apt install python3-pil)"
        ) from e
    return Image, ImageOps


def decode_image_rgb(path: Union[str, os.PathLike]) -> np.ndarray:
    """Decode an image file to H×W×3 uint8 RGB, turned upright by its EXIF orientation. Raises whatever
    Pillow raises for a file it cannot read."""
    Image, ImageOps = _pillow()
    with Image.open(path) as im:
        im.load()  # decode now, so a truncated file fails here and not later
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def list_images(folder: Union[str, os.PathLike]) -> List[pathlib.Path]:
    """Image files directly inside ``folder`` (by extension, case-insensitive), sorted by name."""
    return sorted(
        p for p in pathlib.Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


class ImageSource(Source):
    """Frames in ``rgb`` from one image file or a folder of them. ``fps`` paces delivery on a fixed grid
    (None: as fast as ``read()`` is called); at the end, :class:`EndOfStream` unless ``loop``. A file Pillow
    cannot decode raises :class:`CorruptFrameError` naming it, and the next ``read()`` moves on to the next
    file. ``seq`` counts the frames delivered."""

    name = "images"

    def __init__(self, path: Union[str, os.PathLike], fps: Optional[float] = None, loop: bool = False):
        self.path = pathlib.Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"image source: no such file or folder: {self.path}")
        if self.path.is_file() and self.path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(
                f"image source: {self.path} is not an image file; expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}"
            )
        self.fps = fps
        self.loop = loop
        self.name = f"images:{self.path}"
        self._stop = threading.Event()
        self._pacer = Pacer(fps, self._stop) if fps is not None else None
        self._files: List[pathlib.Path] = []
        self._pos = 0
        self._seq = 0
        self._opened = False

    def open(self) -> None:
        if self._opened:
            return
        self._files = [self.path] if self.path.is_file() else list_images(self.path)
        if not self._files:
            raise FileNotFoundError(
                f"image source: no images in folder {self.path} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        self._pos = 0
        self._stop.clear()
        self._opened = True

    def read(self) -> Frame:
        if not self._opened:
            self.open()
        if self._pos >= len(self._files):
            if not self.loop:
                raise EndOfStream(f"{self.path}: all {len(self._files)} image(s) read")
            self._pos = 0
        path = self._files[self._pos]
        self._pos += 1
        if self._pacer is not None and not self._pacer.wait_for(self._seq):
            raise EndOfStream(f"{self.path}: source closed")
        try:
            rgb = decode_image_rgb(path)
        except ImportError:
            raise
        except Exception as e:  # Pillow raises several types (UnidentifiedImageError, OSError, SyntaxError...)
            raise CorruptFrameError(f"cannot decode image {path}: {type(e).__name__}: {e}") from e
        frame = Frame(
            data=rgb, format="rgb", width=rgb.shape[1], height=rgb.shape[0], seq=self._seq,
            t_capture=time.monotonic(), source=str(path),
        )
        self._seq += 1
        return frame

    def close(self) -> None:
        self._stop.set()
        self._opened = False
