"""The runtime pipeline: preprocessing fast path vs its plain reference, newest-frame-wins capture, retries,
per-stage timings, statistics and shutdown."""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from edgevision.frames import Frame
from edgevision.model_info import ModelInfo
from edgevision.preprocess import _crop_box, prepare, resize

# --------------------------------------------------------------------------------------------------------
# preprocess: the fast numpy path must compute what this plain float version computes (to float rounding).


def _reference_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Mean of f×f blocks in float, then bilinear with half-pixel centres: rows, then columns."""
    x = img.astype(np.float64)
    if x.shape[:2] == (out_h, out_w):
        return x
    f = int(min(x.shape[0] / out_h, x.shape[1] / out_w))
    if f >= 2:
        h, w = x.shape[0] // f, x.shape[1] // f
        x = x[:h * f, :w * f].reshape(h, f, w, f, x.shape[2]).mean(axis=(1, 3))

    def axis(n_in, n_out):  # sample positions in float32, as the runtime has always computed them
        pos = np.clip((np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        i0 = np.floor(pos).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), (pos - i0).astype(np.float64)

    y0, y1, wy = axis(x.shape[0], out_h)
    x0, x1, wx = axis(x.shape[1], out_w)
    rows = x[y0] * (1 - wy)[:, None, None] + x[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def _reference_prepare(frame: np.ndarray, info: ModelInfo) -> np.ndarray:
    if frame.ndim == 2:
        frame = frame[..., None]
    frame = np.ascontiguousarray(frame[..., :3])
    if frame.shape[2] == 1 and info.channels == 3:
        frame = np.repeat(frame, 3, axis=2)
    out_h, out_w = info.input_size
    h, w = frame.shape[:2]
    if info.resize_mode == "center_crop":
        top, left, ch, cw = _crop_box(h, w, out_h, out_w)
        x = _reference_resize(frame[top:top + ch, left:left + cw], out_h, out_w)
    elif info.resize_mode == "stretch":
        x = _reference_resize(frame, out_h, out_w)
    else:
        s = min(out_h / h, out_w / w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        x = np.empty((out_h, out_w, frame.shape[2]))
        x[...] = np.asarray(info.mean)[: frame.shape[2]]
        top, left = (out_h - nh) // 2, (out_w - nw) // 2
        x[top:top + nh, left:left + nw] = _reference_resize(frame, nh, nw)
    if info.channels == 1 and x.shape[2] == 3:
        x = (x @ np.array([0.299, 0.587, 0.114]))[..., None]
    elif info.channel_order == "BGR":
        x = x[..., ::-1]
    return (x - np.asarray(info.mean)[: x.shape[2]]) / np.asarray(info.std)[: x.shape[2]]


def _assert_close(got, want, what, atol=1e-5):
    assert got.shape == want.shape and got.dtype == np.float32, (what, got.shape, want.shape, got.dtype)
    err = np.abs(got.astype(np.float64) - want)
    if err.max() > atol:
        i = np.unravel_index(err.argmax(), err.shape)
        pytest.fail(f"{what}: at {i} got {got[i]!r}, reference {want[i]!r} (|diff| {err.max():.3g} > {atol})")


IMAGENET = dict(mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0))
FRAME_SHAPES = [(720, 1280), (1080, 1920), (480, 640), (448, 448), (447, 449), (240, 320), (224, 224),
                (100, 90), (7, 5), (3800, 3900)]  # f = 3, 4, 2, 2, 1 (just below 2), 1, 1, <1, <1, 16 (uint32)


@pytest.mark.parametrize("shape", FRAME_SHAPES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("mode", ["center_crop", "stretch", "letterbox"])
def test_prepare_fast_path_matches_plain_float_reference(shape, mode):
    rng = np.random.default_rng(hash(shape) % 2**32)
    frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    info = ModelInfo(input_size=(224, 224), resize_mode=mode, **IMAGENET)
    _assert_close(prepare(frame, info), _reference_prepare(frame, info), f"{shape} {mode}")


@pytest.mark.parametrize("size", [(224, 224), (160, 96), (1, 1), (300, 300)])
def test_prepare_matches_reference_for_other_model_sizes(size):
    frame = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    for mode in ("center_crop", "stretch", "letterbox"):
        info = ModelInfo(input_size=size, resize_mode=mode, mean=(0.0,), std=(255.0,))
        _assert_close(prepare(frame, info), _reference_prepare(frame, info), f"{size} {mode}")


def test_prepare_reads_channel_reordered_and_padded_views_like_contiguous_rgb():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    bgrx = np.concatenate([bgr, rng.integers(0, 256, (720, 1280, 1), dtype=np.uint8)], axis=2)
    rgbx = np.concatenate([rgb, bgrx[..., 3:]], axis=2)
    info = ModelInfo(input_size=(224, 224), **IMAGENET)
    want = _reference_prepare(rgb, info)
    views = {"bgr[..., ::-1]": bgr[..., ::-1], "bgrx[..., 2::-1]": bgrx[..., 2::-1], "rgbx": rgbx,
             "rgbx[..., :3]": rgbx[..., :3], "Frame(bgrx).to_rgb()": Frame(bgrx, "bgrx", 1280, 720).to_rgb(),
             "cropped rgb": np.ascontiguousarray(np.pad(rgb, ((0, 0), (0, 4), (0, 0))))[:, :1280]}
    for name, view in views.items():
        _assert_close(prepare(view, info), want, name)


def test_prepare_bgr_grey_and_one_channel_models_match_reference():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (480, 640), dtype=np.uint8)
    for mode in ("center_crop", "letterbox"):
        bgr_model = ModelInfo(input_size=(96, 128), channel_order="BGR", resize_mode=mode,
                              mean=(103.9, 116.8, 123.7), std=(57.4, 57.1, 58.4))
        _assert_close(prepare(rgb, bgr_model), _reference_prepare(rgb, bgr_model), f"BGR model {mode}")
        _assert_close(prepare(grey, bgr_model), _reference_prepare(grey, bgr_model), f"grey frame {mode}")
        mono = ModelInfo(input_size=(28, 28), channels=1, resize_mode=mode, mean=(0.0,), std=(255.0,))
        _assert_close(prepare(rgb, mono), _reference_prepare(rgb, mono), f"1-channel model {mode}")
        _assert_close(prepare(grey, mono), _reference_prepare(grey, mono), f"grey, 1-channel {mode}")


def test_resize_of_float_images_still_matches_reference():
    img = np.random.default_rng(4).uniform(0, 255, (50, 70, 3)).astype(np.float32)
    for size in ((4, 4), (20, 30), (50, 70), (120, 90)):
        got = resize(img, *size)
        _assert_close(got, _reference_resize(img, *size), f"float {size}", atol=1e-3)
