"""Frame sources (see base.py for the interface).

Each source module imports its optional library (Pillow, PyAV, picamera2) only when a source of its kind is
made, so ``import edgevision.sources`` needs numpy alone. :func:`open_source` turns a command-line spec into a
source; :class:`RetryingSource` (retry.py) keeps one running through failures.
"""
from __future__ import annotations

import os
import re
from typing import Optional, Tuple

from .base import CorruptFrameError, EndOfStream, Source, SourceError


__all__ = [
    "CorruptFrameError",
    "EndOfStream",
    "Source",
    "SourceError",
    "camera_present",
    "open_source",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".h264", ".264", ".mjpeg", ".mjpg",
     ".flv", ".wmv", ".ogv"}
)

SPEC_FORMS = (
    "demo                      bundled photos played as a camera",
    "picamera2 | picamera2:N   Raspberry Pi camera N (libcamera, via picamera2)",
    "/dev/videoN | usb:N       USB/V4L2 camera (PyAV)",
    "PATH.jpg|.png|...         one image file",
    "FOLDER                    every image in a folder, sorted by name",
    "PATH.mp4|.mkv|...         a video file (PyAV)",
    "rtsp://... | http(s)://...  a network stream (PyAV; RTSP over TCP)",
)


def _spec_error(spec: str, why: str) -> ValueError:
    forms = "\n  ".join(SPEC_FORMS)
    return ValueError(f"cannot open source {spec!r}: {why}; expected one of:\n  {forms}")


DEMO_HOLD_SECONDS = 3.0


def open_source(
    spec: str,
    *,
    fps: Optional[float] = None,
    loop: Optional[bool] = None,
    size: Optional[Tuple[int, int]] = None,
) -> Source:
    """Make (not yet open) the source a spec names; see ``SPEC_FORMS``. ``fps`` paces the demo and image
    sources and sets the Pi camera's rate, ``loop`` restarts files and folders at their end (default: the demo
    loops, files do not), ``size`` (w, h) scales the demo photos or sets the Pi camera's main stream. Raises
    ValueError for a spec of no known form."""
    if not isinstance(spec, str) or not spec.strip():
        raise _spec_error(str(spec), "empty spec")
    spec = spec.strip()
    low = spec.lower()

    if low == "demo":
        from .demo import DemoSource

        # Each photo stays in view for 3 s, so that the smoothed label settles as it would on a real camera.
        return DemoSource(fps=10.0 if fps is None else fps, loop=True if loop is None else loop, size=size,
                          hold=DEMO_HOLD_SECONDS)

    m = re.fullmatch(r"picamera2(?::(\d+))?", low)
    if m:
        from .picamera2_source import Picamera2Source

        kwargs: dict = {} if fps is None else {"fps": fps}
        if size is not None:
            kwargs["main_size"] = size
        return Picamera2Source(camera_num=int(m.group(1) or 0), **kwargs)

    m = re.fullmatch(r"usb:(\d+)", low) or re.fullmatch(r"/dev/video(\d+)", spec)
    if m:
        from .av_source import AVSource

        return AVSource(f"/dev/video{m.group(1)}", loop=bool(loop))

    if re.match(r"(rtsps?|https?)://", low):
        from .av_source import AVSource

        return AVSource(spec, loop=bool(loop))

    if os.path.isdir(spec):
        from .images import ImageSource

        return ImageSource(spec, fps=fps, loop=bool(loop))
    ext = os.path.splitext(low)[1]
    if ext in IMAGE_EXTENSIONS or ext in VIDEO_EXTENSIONS:
        if not os.path.exists(spec):
            raise _spec_error(spec, "no such file")
        if ext in IMAGE_EXTENSIONS:
            from .images import ImageSource

            return ImageSource(spec, fps=fps, loop=bool(loop))
        from .av_source import AVSource

        # A file plays at its own frame rate, as a camera would deliver it.
        return AVSource(spec, loop=bool(loop), realtime=True)
    if os.path.exists(spec):
        raise _spec_error(spec, f"unknown file type {ext or '(no extension)'!r}")
    raise _spec_error(spec, "not a known source form and no such file or folder")


def camera_present() -> bool:
    """True when picamera2 imports and libcamera lists at least one camera (``edgevision run``'s default)."""
    try:
        from picamera2 import Picamera2  # type: ignore[import-not-found]
    except Exception:  # not installed, or libcamera broken: no usable camera either way
        return False
    try:
        return len(Picamera2.global_camera_info()) > 0
    except Exception:
        return False
