"""The data that flows through the pipeline: a captured :class:`Frame` and the :class:`Result` made from it.

Pixel formats are named by the order of the bytes in memory, lowest address first — *not* by DRM/libcamera
fourcc names, which read the other way on little-endian machines (libcamera's ``RGB888`` is B, G, R in memory;
``XRGB8888`` is B, G, R, X). Sources convert their device's naming into these names once, at the edge.

===========  ===========================================================================================
``rgb``      H×W×3 uint8, bytes R, G, B
``bgr``      H×W×3 uint8, bytes B, G, R  (OpenCV; libcamera ``RGB888``)
``bgrx``     H×W×4 uint8, bytes B, G, R, X  (libcamera ``XRGB8888``)
``rgbx``     H×W×4 uint8, bytes R, G, B, X  (libcamera ``XBGR8888``)
``yuv420``   planar I420 in one (H·3/2)×stride uint8 buffer: Y rows, then U rows, then V rows, each chroma
             row half as wide (stride/2); ``stride`` ≥ width (rows may be padded); BT.601 coefficients,
             limited range unless ``full_range`` (libcamera's sYCC/JPEG colour space is full range)
``gray``     H×W uint8
===========  ===========================================================================================
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

FORMATS = ("rgb", "bgr", "bgrx", "rgbx", "yuv420", "gray")


@dataclasses.dataclass
class Frame:
    data: np.ndarray
    format: str
    width: int
    height: int
    seq: int = 0  # frame number from the source, counting every frame it produced
    t_capture: float = 0.0  # time.monotonic() when the frame was captured
    source: str = ""
    stride: int | None = None  # bytes per row of the Y plane (yuv420); None = width
    full_range: bool = False  # yuv420 only: 0..255 luma (sYCC/JPEG) instead of 16..235

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown pixel format {self.format!r}; expected one of {', '.join(FORMATS)}")

    def to_rgb(self) -> np.ndarray:
        """H×W×3 uint8 RGB (a view when the frame already is RGB)."""
        f, d, w, h = self.format, self.data, self.width, self.height
        if f == "rgb":
            return d[:h, :w, :3]
        if f in ("bgr", "bgrx"):
            return d[:h, :w, 2::-1]
        if f == "rgbx":
            return d[:h, :w, :3]
        if f == "gray":
            return np.repeat(d[:h, :w, None], 3, axis=2)
        return yuv420_to_rgb(d, w, h, self.stride or w, self.full_range)


def yuv420_to_rgb(buf: np.ndarray, width: int, height: int, stride: int, full_range: bool = False) -> np.ndarray:
    """I420 with BT.601 coefficients → RGB uint8. Chroma is sampled by nearest neighbour (each chroma sample
    covers 2×2 pixels)."""
    buf = np.asarray(buf).reshape(-1)
    y = buf[: stride * height].reshape(height, stride)[:, :width].astype(np.float32)
    cs, ch, cw = stride // 2, (height + 1) // 2, (width + 1) // 2
    u0 = stride * height
    u = buf[u0: u0 + cs * ch].reshape(ch, cs)[:, :cw].astype(np.float32) - 128
    v = buf[u0 + cs * ch: u0 + 2 * cs * ch].reshape(ch, cs)[:, :cw].astype(np.float32) - 128
    u = u.repeat(2, 0).repeat(2, 1)[:height, :width]
    v = v.repeat(2, 0).repeat(2, 1)[:height, :width]
    if full_range:
        yy, kr, kgu, kgv, kb = y, 1.402, 0.344136, 0.714136, 1.772
    else:
        yy, kr, kgu, kgv, kb = (y - 16) * (255 / 219), 1.596027, 0.391762, 0.812968, 2.017232
    r = yy + kr * v
    g = yy - kgu * u - kgv * v
    b = yy + kb * u
    return np.clip(np.stack([r, g, b], axis=2) + 0.5, 0, 255).astype(np.uint8)


@dataclasses.dataclass
class Prediction:
    index: int
    label: str
    score: float


@dataclasses.dataclass
class Result:
    """What the pipeline publishes for one frame."""

    seq: int  # frame number from the source
    t_capture: float
    t_done: float
    top: list[Prediction]  # this frame's ranked predictions
    label: str | None  # the smoothed, hysteresis-filtered label currently reported (None: nothing confident)
    score: float  # smoothed score of ``label``
    timings_ms: dict[str, float]  # per stage: preprocess, inference, postprocess
    dropped: int = 0  # frames the source produced that were skipped (newest frame wins) so far
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        return (self.t_done - self.t_capture) * 1000.0
