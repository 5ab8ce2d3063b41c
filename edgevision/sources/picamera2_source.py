"""Raspberry Pi cameras through picamera2 (libcamera): a main stream plus a lores stream that the ISP scales
to about the model's input size, so the CPU never resizes a full frame.

The lores format depends on the ISP, read from what picamera2 reports (``Picamera2.platform``):

- VC4 (Pi 4 and older): its lores output must be YUV420. picamera2 hands it over as one (H·3/2)×stride array:
  H rows of Y, then the U and V planes, each row half the stride; the driver pads the Y stride to 64 bytes
  (224 px → 256). That is our ``yuv420`` with ``stride`` = the array's width.
- PiSP (Pi 5): lores can be RGB. libcamera's ``RGB888`` is B, G, R in memory (our ``bgr``) and ``XRGB8888``
  is B, G, R, X (our ``bgrx``); picamera2's ``make_array`` strips the row padding of these.

Each captured request is released as soon as its arrays are copied, so the camera never runs out of buffers.
The main stream is ``RGB888`` (``bgr``); ``keep_main=True`` keeps the latest one in ``last_main``.
"""
from __future__ import annotations

import time
from typing import Optional, Tuple

import numpy as np

from ..frames import Frame
from .base import Source, SourceError

INSTALL_HINT = (
    "on Raspberry Pi OS: sudo apt install python3-picamera2 (it brings python3-libcamera); in a venv make it "
    "with --system-site-packages so libcamera's bindings are visible, then pip install picamera2"
)

# libcamera/DRM fourcc name → our memory-order name (see edgevision/frames.py).
FORMAT_NAMES = {
    "RGB888": "bgr",
    "BGR888": "rgb",
    "XRGB8888": "bgrx",
    "XBGR8888": "rgbx",
    "YUV420": "yuv420",
}


def _import_picamera2():
    try:
        import libcamera  # type: ignore[import-not-found]
        from picamera2 import Picamera2  # type: ignore[import-not-found]
    except ImportError as e:
        raise ImportError(f"the Raspberry Pi camera source needs picamera2 ({e}): {INSTALL_HINT}") from e
    return Picamera2, libcamera


def isp_platform(Picamera2) -> str:
    """"vc4" or "pisp", from picamera2's own detection (it asks the V4L2 devices which ISP is present)."""
    plat = getattr(Picamera2, "platform", None)
    name = str(getattr(plat, "name", plat) or "").upper()
    return "pisp" if "PISP" in name else "vc4"


def _even_size(size, what: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (width, height), got {size!r}") from None
    if w < 2 or h < 2 or w % 2 or h % 2:
        raise ValueError(f"{what} must be even and at least 2×2 (libcamera's rule), got {w}×{h}")
    return w, h


class Picamera2Source(Source):
    """Frames from Raspberry Pi camera ``camera_num``: the lores stream when ``lores_size`` (w, h) is given,
    else the main stream. ``fps`` fixes the frame rate. ``lores_format`` overrides the automatic choice
    (YUV420 on VC4, RGB888 on PiSP; XRGB8888 also works on PiSP). ``seq`` counts every frame the sensor
    produced (from the sensor timestamps, so frames dropped before ``read()`` show as gaps) and
    ``t_capture`` is the sensor timestamp (CLOCK_MONOTONIC, the clock of ``time.monotonic()``)."""

    def __init__(
        self,
        camera_num: int = 0,
        main_size: Tuple[int, int] = (1280, 720),
        lores_size: Optional[Tuple[int, int]] = None,
        fps: float = 30,
        *,
        lores_format: Optional[str] = None,
        keep_main: bool = False,
    ):
        self.camera_num = int(camera_num)
        self.main_size = _even_size(main_size, "main_size")
        self.lores_size = None if lores_size is None else _even_size(lores_size, "lores_size")
        if self.lores_size and (self.lores_size[0] > self.main_size[0] or self.lores_size[1] > self.main_size[1]):
            raise ValueError(f"lores_size {self.lores_size} may not exceed main_size {self.main_size}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        if lores_format is not None and lores_format not in FORMAT_NAMES:
            raise ValueError(f"lores_format {lores_format!r} unknown; expected one of {', '.join(FORMAT_NAMES)}")
        self.fps = float(fps)
        self.lores_format = lores_format
        self.keep_main = keep_main
        self.name = f"picamera2:{self.camera_num}"
        self.platform: Optional[str] = None
        self.stream: Optional[str] = None  # "lores" or "main": the stream read() returns
        self.stream_config: dict = {}
        self.last_main: Optional[Frame] = None
        self._cam = None
        self._full_range = False
        self._seq = -1
        self._ts0: Optional[int] = None

    # -- opening ---------------------------------------------------------------------------------------------
    def open(self) -> None:
        if self._cam is not None:
            return
        Picamera2, libcamera = _import_picamera2()
        self.platform = isp_platform(Picamera2)
        try:
            cameras = Picamera2.global_camera_info()
        except Exception as e:
            raise SourceError(f"{self.name}: libcamera cannot list cameras: {e}") from e
        if self.camera_num >= len(cameras):
            found = ", ".join(f"{i}: {c.get('Model', '?')}" for i, c in enumerate(cameras)) or "none"
            raise SourceError(
                f"{self.name}: no camera {self.camera_num} (libcamera found {found}); check the ribbon cable and "
                "`rpicam-hello --list-cameras`"
            )
        lores_fmt = None
        if self.lores_size is not None:
            lores_fmt = self.lores_format or ("YUV420" if self.platform == "vc4" else "RGB888")
            if self.platform == "vc4" and lores_fmt != "YUV420":
                raise ValueError(
                    f"lores_format {lores_fmt} is not possible on a Pi 4 (VC4 ISP): its lores must be YUV420"
                )
        try:
            cam = Picamera2(self.camera_num)
        except Exception as e:
            raise SourceError(f"{self.name}: cannot open the camera ({e}); is another program using it?") from e
        try:
            config = cam.create_video_configuration(
                main={"size": self.main_size, "format": "RGB888"},
                lores=None if lores_fmt is None else {"size": self.lores_size, "format": lores_fmt},
                # BT.601 limited range: the YCbCr encoding that frames.yuv420_to_rgb decodes (the default for
                # ≥1280×720 would be Rec709, whose other coefficients would shift every colour).
                colour_space=libcamera.ColorSpace.Smpte170m(),
                controls={"FrameRate": self.fps},
                buffer_count=4,
                display=None,
                encode=None,
            )
            cam.configure(config)
            actual = cam.camera_config
            self.stream = "lores" if lores_fmt is not None else "main"
            self.stream_config = dict(actual[self.stream])
            self._full_range = _is_full_range(actual.get("colour_space"), libcamera)
            fmt = self.stream_config["format"]
            if fmt not in FORMAT_NAMES:
                raise SourceError(f"{self.name}: {self.stream} stream came out as {fmt}, which edgevision cannot read")
            cam.start()
        except SourceError:
            _close_quietly(cam)
            raise
        except Exception as e:
            _close_quietly(cam)
            raise SourceError(f"{self.name}: cannot configure or start the camera: {e}") from e
        self._cam = cam
        self._seq = -1
        self._ts0 = None

    # -- reading ---------------------------------------------------------------------------------------------
    def read(self) -> Frame:
        if self._cam is None:
            self.open()
        cam = self._cam
        try:
            request = cam.capture_request()
        except Exception as e:
            raise SourceError(f"{self.name}: capture failed: {e}") from e
        try:
            array = request.make_array(self.stream)
            main = request.make_array("main") if self.keep_main and self.stream != "main" else None
            metadata = request.get_metadata()
        except Exception as e:
            raise SourceError(f"{self.name}: cannot read the captured buffers: {e}") from e
        finally:
            request.release()  # make_array copied the pixels; hand the buffers back at once
        t_capture, seq = self._timing(metadata)
        frame = self._frame(array, self.stream_config, seq, t_capture)
        if self.keep_main:
            self.last_main = frame if main is None else self._frame(main, cam.camera_config["main"], seq, t_capture)
        return frame

    def _timing(self, metadata: dict) -> Tuple[float, int]:
        ts = metadata.get("SensorTimestamp")
        duration_us = metadata.get("FrameDuration")
        now = time.monotonic()
        if ts is None:
            self._seq += 1
            return now, self._seq
        if self._ts0 is None:
            self._ts0, self._seq = ts, -1
        period_ns = (duration_us or 1e6 / self.fps) * 1000.0
        counted = int(round((ts - self._ts0) / period_ns))
        self._seq = max(self._seq + 1, counted)
        return ts / 1e9, self._seq

    def _frame(self, array: np.ndarray, config: dict, seq: int, t_capture: float) -> Frame:
        """One captured array → a Frame, checking the layout picamera2 promises (a mismatch is a bug, so it
        raises SourceError with both shapes rather than showing scrambled colours)."""
        fmt, (w, h) = config["format"], config["size"]
        ours = FORMAT_NAMES[fmt]
        stride = None
        if ours == "yuv420":
            expected: tuple = (h * 3 // 2, array.shape[1] if array.ndim == 2 else -1)
            stride = expected[1]
            ok = array.ndim == 2 and array.shape == expected and stride >= w and stride % 2 == 0
        else:
            expected = (h, w, 4 if ours in ("bgrx", "rgbx") else 3)
            ok = array.shape == expected
        if not ok or array.dtype != np.uint8:
            raise SourceError(
                f"{self.name}: {fmt} {w}×{h} array has shape {array.shape} {array.dtype}, expected {expected} uint8"
            )
        return Frame(
            data=array, format=ours, width=w, height=h, seq=seq, t_capture=t_capture, source=self.name,
            stride=stride, full_range=self._full_range if ours == "yuv420" else False,
        )

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            _close_quietly(cam)


def _is_full_range(colour_space, libcamera) -> bool:
    rng = getattr(colour_space, "range", None)
    full = getattr(getattr(getattr(libcamera, "ColorSpace", None), "Range", None), "Full", None)
    return rng is not None and full is not None and rng == full


def _close_quietly(cam) -> None:
    for step in ("stop", "close"):
        try:
            getattr(cam, step)()
        except Exception:  # a camera that failed may fail to stop as well; close() must still be reached
            pass
