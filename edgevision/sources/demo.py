"""The bundled real photos played as a camera: a fixed frame rate with real timing, no hardware needed."""
from __future__ import annotations

import threading
import time
from typing import List, Optional, Tuple

import numpy as np

from ..frames import Frame
from .base import EndOfStream, Source
from .images import Pacer, decode_image_rgb


def fit_to_size(rgb: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Scale and centre-crop an RGB image to exactly ``size`` (w, h), keeping its aspect (as a camera sensor
    cropped to a 16:9 mode would)."""
    from PIL import Image, ImageOps

    w, h = size
    return np.asarray(ImageOps.fit(Image.fromarray(rgb), (w, h), method=Image.BILINEAR), dtype=np.uint8)


class DemoSource(Source):
    """Frames in ``rgb`` from :func:`edgevision.demo.demo_photos`, decoded once at ``open()``.

    Frames come on a fixed grid, frame k at ``t0 + k/fps``, like a free-running camera: ``read()`` sleeps to
    the next deadline. Looping, a reader that falls behind gets the newest frame due, the ones it missed
    counted in ``seq`` (which numbers every frame the "camera" produced) but never delivered; photo k is shown
    as frame k, cycling. Without ``loop`` every photo is delivered once (late ones at once), then
    :class:`EndOfStream`. ``size`` (w, h)
    scales and centre-crops every photo to one camera-like size, e.g. (1280, 720). ``hold`` seconds keeps each
    photo in view for that long (``round(hold·fps)`` frames), as when a camera is pointed at one thing and
    then another; 0 shows a new photo every frame."""

    name = "demo"

    def __init__(self, fps: float = 10.0, loop: bool = True, size: Optional[Tuple[int, int]] = None,
                 hold: float = 0.0):
        if size is not None:
            if len(size) != 2 or int(size[0]) < 1 or int(size[1]) < 1:
                raise ValueError(f"demo source: size must be (width, height) in pixels, got {size!r}")
            size = (int(size[0]), int(size[1]))
        self.fps = float(fps)
        if not hold >= 0:
            raise ValueError(f"demo source: hold must be >= 0 seconds, got {hold!r}")
        self.per_photo = max(1, round(hold * self.fps)) if hold else 1  # frames each photo stays in view
        self.loop = loop
        self.size = size
        self._stop = threading.Event()
        self._pacer = Pacer(self.fps, self._stop)  # validates fps
        self._photos: List[np.ndarray] = []
        self._names: List[str] = []
        self._next = 0  # the frame index to deliver next (at the earliest)

    def open(self) -> None:
        if self._photos:
            return
        from ..demo import demo_photos

        paths = demo_photos()
        if not paths:
            raise FileNotFoundError("demo source: no bundled photos found (edgevision/demo/*.jpg missing)")
        for p in paths:
            rgb = decode_image_rgb(p)
            self._photos.append(fit_to_size(rgb, self.size) if self.size else rgb)
            self._names.append(p.stem)
        self._stop.clear()
        self._pacer = Pacer(self.fps, self._stop)
        self._next = 0

    def read(self) -> Frame:
        if not self._photos:
            self.open()
        photos, names = self._photos, self._names  # close() from another thread may clear the attributes
        # Looping, it is a camera: a late reader gets the newest frame. Once through, every photo is shown.
        k = max(self._next, self._pacer.newest_due()) if self.loop else self._next
        if not self.loop and k >= len(photos) * self.per_photo:
            raise EndOfStream(f"demo: all {len(photos)} photos shown")
        if not self._pacer.wait_for(k):
            raise EndOfStream("demo: source closed")
        self._next = k + 1
        i = (k // self.per_photo) % len(photos)
        rgb = photos[i]
        return Frame(
            data=rgb, format="rgb", width=rgb.shape[1], height=rgb.shape[0], seq=k,
            t_capture=time.monotonic(), source=f"demo:{names[i]}",
        )

    def close(self) -> None:
        """Wakes a ``read()`` sleeping in another thread (it raises EndOfStream); may be called twice."""
        self._stop.set()
        self._photos = []
        self._names = []
