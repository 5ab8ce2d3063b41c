"""Frame → model input: the one preprocessing both the runtime and the converter's calibration apply.

Calibrating on images prepared differently from the frames the device will see is the most common cause of
an int8 model that is accurate on the desktop and wrong on the Pi; so the converter imports this module
rather than re-implementing it.

Steps, in order (all numpy, no Pillow):

1. geometry (``resize_mode``): ``stretch`` the whole frame; ``center_crop`` the largest central region with the
   model's aspect ratio; ``letterbox`` fits the whole frame and pads with the mean colour (zero after
   normalisation);
2. resize: when shrinking by 2× or more, an integer box filter first (averaging f×f blocks, like an ISP's
   downscaler) so that fine detail does not alias; then bilinear with half-pixel centres;
3. channels: RGB → BGR if the model wants it; RGB → luma (ITU-R BT.601) for one-channel models;
4. normalise: ``(pixel - mean) / std`` in float32.
"""
from __future__ import annotations

import numpy as np

from .model_info import ModelInfo

RESIZE_MODES = ("stretch", "center_crop", "letterbox")


def _crop_box(h: int, w: int, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """Largest central (top, left, height, width) region of an h×w frame with aspect out_w/out_h."""
    if w * out_h > h * out_w:  # frame wider than the model: crop the sides
        cw = max(1, round(h * out_w / out_h))
        return 0, (w - cw) // 2, h, cw
    ch = max(1, round(w * out_h / out_w))
    return (h - ch) // 2, 0, ch, w


def _box_shrink(img: np.ndarray, f: int) -> np.ndarray:
    """Average f×f blocks (edges that do not fill a block are dropped). float32 in, float32 out."""
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    v = img[:h, :w].reshape(h // f, f, w // f, f, img.shape[2])
    return v.mean(axis=(1, 3), dtype=np.float32)


def _bilinear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel-centre sample positions: indices i0, i1 and weight of i1, for one axis."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize an H×W×C image (any dtype) to out_h×out_w×C float32, box prefilter + bilinear."""
    x = img.astype(np.float32, copy=False)
    if x.shape[0] == out_h and x.shape[1] == out_w:
        return x.copy() if x is img else x
    f = int(min(x.shape[0] / out_h, x.shape[1] / out_w))
    if f >= 2:
        x = _box_shrink(x, f)
    y0, y1, wy = _bilinear_axis(x.shape[0], out_h)
    x0, x1, wx = _bilinear_axis(x.shape[1], out_w)
    rows = x[y0] * (1 - wy)[:, None, None] + x[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def to_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB float image, H×W×1 (exact for grey pixels: the weights sum to 1)."""
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]


def prepare(frame: np.ndarray, info: ModelInfo) -> np.ndarray:
    """An RGB uint8 H×W×3 (or H×W grey) frame → the model's float32 input, h×w×c, normalised."""
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image array H×W×3 (RGB), got shape {frame.shape}")
    if frame.shape[2] == 4:
        frame = frame[..., :3]
    if frame.shape[2] == 1 and info.channels == 3:
        frame = np.repeat(frame, 3, axis=2)
    if info.input_size is None:
        raise ValueError("the model does not say its input size; pass one (e.g. --input-size 224x224)")
    out_h, out_w = info.input_size
    h, w = frame.shape[:2]
    mode = info.resize_mode
    if mode == "center_crop":
        top, left, ch, cw = _crop_box(h, w, out_h, out_w)
        x = resize(frame[top:top + ch, left:left + cw], out_h, out_w)
    elif mode == "stretch":
        x = resize(frame, out_h, out_w)
    elif mode == "letterbox":
        s = min(out_h / h, out_w / w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        inner = resize(frame, nh, nw)
        fill = np.asarray(info.mean, dtype=np.float32)[: frame.shape[2]]
        x = np.empty((out_h, out_w, frame.shape[2]), np.float32)
        x[...] = fill
        top, left = (out_h - nh) // 2, (out_w - nw) // 2
        x[top:top + nh, left:left + nw] = inner
    else:
        raise ValueError(f"unknown resize mode {mode!r}; expected one of {', '.join(RESIZE_MODES)}")
    if info.channels == 1 and x.shape[2] == 3:
        x = to_luma(x)
    elif info.channel_order == "BGR":
        x = x[..., ::-1]
    mean = np.asarray(info.mean, dtype=np.float32)[: x.shape[2]]
    std = np.asarray(info.std, dtype=np.float32)[: x.shape[2]]
    return ((x - mean) / std).astype(np.float32, copy=False)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """Float tensor → integer tensor with TFLite's rounding (half away from zero) and saturation."""
    info = np.iinfo(dtype)
    v = np.asarray(x, dtype=np.float32) / np.float32(scale)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)
