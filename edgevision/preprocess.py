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

import functools

import numpy as np

from .frames import Frame
from .model_info import ModelInfo

RESIZE_MODES = ("stretch", "center_crop", "letterbox")

try:  # numpy >= 2
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:  # numpy 1.x
    _byte_bounds = np.byte_bounds


def _crop_box(h: int, w: int, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """Largest central (top, left, height, width) region of an h×w frame with aspect out_w/out_h."""
    if w * out_h > h * out_w:  # frame wider than the model: crop the sides
        cw = max(1, round(h * out_w / out_h))
        return 0, (w - cw) // 2, h, cw
    ch = max(1, round(w * out_h / out_w))
    return (h - ch) // 2, 0, ch, w


def _box_sum_u8(img: np.ndarray, f: int) -> tuple[np.ndarray, int]:
    """Sums of f×f blocks of an H×W×C uint8 image, exact, in integers; edges that do not fill a block are
    dropped. Returns (sums, pixel_stride): ``sums`` is (H//f)×(W//f·f·C) and the sum for block (i, j),
    channel ch, sits at ``sums[i, j·pixel_stride + ch]`` (the other columns are partial sums; never read).

    A block sum is at most f²·255, so uint16 holds it up to f = 15 and uint32 beyond. Rows are summed as f
    strided row slices; columns by adding the flattened rows to themselves shifted by C, 2C, ... elements,
    which keeps every numpy loop long and contiguous (summing 3-byte pixels as (…, f, C) views is 10× slower).
    Nothing is converted to float at full size."""
    acc = np.uint16 if f * f * 255 < 2 ** 16 else np.uint32
    h, w, c = img.shape[0] // f, img.shape[1] // f, img.shape[2]
    img = img[: h * f, : w * f]
    rows = img[0::f].astype(acc)
    for k in range(1, f):
        rows += img[k::f]
    flat = rows.reshape(-1)
    sums = flat.copy()
    n = flat.size
    # sums[p] = flat[p] + flat[p + c] + ... + flat[p + (f-1)c]; block starts p = j·f·c + ch never read past
    # the end of their own row, so positions near the end (left as partial sums) are never used.
    for k in range(1, f):
        sums[: n - k * c] += flat[k * c:]
    return sums.reshape(h, w * f * c), f * c


def _box_shrink(img: np.ndarray, f: int) -> np.ndarray:
    """Average f×f blocks (edges that do not fill a block are dropped). float32 in, float32 out."""
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    v = img[:h, :w].reshape(h // f, f, w // f, f, img.shape[2])
    return v.mean(axis=(1, 3), dtype=np.float32)


@functools.lru_cache(maxsize=64)
def _bilinear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel-centre sample positions: indices i0, i1 and weight of i1, for one axis.

    Cached (a video stream asks for the same sizes every frame); the arrays are read-only."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (pos - i0).astype(np.float32)
    for a in (i0, i1, w1):
        a.flags.writeable = False
    return i0, i1, w1


@functools.lru_cache(maxsize=64)
def _column_taps(n_in: int, n_out: int, channels: tuple[int, ...], pixel_stride: int, scale: float):
    """The horizontal bilinear pass as two flat gathers over rows laid out ``pixel_stride`` elements per pixel:
    element indices and per-element weights (times ``scale``) of the left and right taps. Output channel k
    reads element ``channels[k]`` of a pixel, so channel reordering and selection cost nothing. Cached and
    read-only."""
    x0, x1, w1 = _bilinear_axis(n_in, n_out)
    ch = np.asarray(channels, dtype=np.intp)
    idx0 = (x0[:, None] * pixel_stride + ch).reshape(-1)
    idx1 = (x1[:, None] * pixel_stride + ch).reshape(-1)
    wt0 = np.repeat((1 - w1) * np.float32(scale), len(ch)).astype(np.float32)
    wt1 = np.repeat(w1 * np.float32(scale), len(ch)).astype(np.float32)
    for a in (idx0, idx1, wt0, wt1):
        a.flags.writeable = False
    return idx0, idx1, wt0, wt1


def _memory_pixels(img: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """The same pixels as a view whose channels run forwards and fill the whole pixel, and which element of
    that pixel each of img's channels is. A BGR frame seen as RGB (``bgr[..., ::-1]``) or a BGRX frame seen
    as RGB (``bgrx[..., 2::-1]``) is read in memory order, instead of through 3-element strided loops that
    numpy runs ~10× slower."""
    c = img.shape[2]
    channels = tuple(range(c))
    if c > 1 and img.strides[2] < 0:
        img, channels = img[..., ::-1], tuple(reversed(channels))
    item, pixel = img.itemsize, img.strides[1]
    if c > 1 and img.strides[2] == item and pixel % item == 0 and c < pixel // item <= 4:
        # padded pixels (X byte): widen the view to the whole pixel if that stays inside the same buffer
        root = img
        while isinstance(root.base, np.ndarray):
            root = root.base
        wide = np.lib.stride_tricks.as_strided(img, (img.shape[0], img.shape[1], pixel // item),
                                               img.strides, writeable=False)
        lo, hi = _byte_bounds(root)
        wlo, whi = _byte_bounds(wide)
        if lo <= wlo and whi <= hi:
            img = wide
    return img, channels


def _resize(img: np.ndarray, out_h: int, out_w: int, channels: tuple[int, ...] | None = None) -> np.ndarray:
    """resize(), with output channel k taken from input channel ``channels[k]`` (default: all, in order)."""
    if channels is None:
        channels = tuple(range(img.shape[2]))
    img, mem = _memory_pixels(img)
    channels = tuple(mem[k] for k in channels)
    c = img.shape[2]
    f = int(min(img.shape[0] / out_h, img.shape[1] / out_w))
    scale = 1.0
    if f >= 2 and img.dtype == np.uint8:
        x, stride = _box_sum_u8(img, f)
        scale = 1.0 / (f * f)
        w = img.shape[1] // f
    else:
        x = _box_shrink(img.astype(np.float32, copy=False), f) if f >= 2 else img
        stride, w = c, x.shape[1]
        x = x.reshape(x.shape[0], w * c)
    idx0, idx1, wt0, wt1 = _column_taps(w, out_w, channels, stride, scale)
    cols = np.multiply(np.take(x, idx0, axis=1), wt0, dtype=np.float32)
    cols += np.multiply(np.take(x, idx1, axis=1), wt1, dtype=np.float32)
    if x.shape[0] == out_h:  # same height: the vertical pass is the identity
        return cols.reshape(out_h, out_w, len(channels))
    y0, y1, wy1 = _bilinear_axis(x.shape[0], out_h)
    out = np.take(cols, y0, axis=0)
    out *= (1 - wy1)[:, None]
    tmp = np.take(cols, y1, axis=0)
    tmp *= wy1[:, None]
    out += tmp
    return out.reshape(out_h, out_w, len(channels))


def resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize an H×W×C image (any dtype) to out_h×out_w×C float32, box prefilter + bilinear.

    What it computes: when the image is at least 2× the output on both axes, the mean of f×f blocks (f the
    smaller integer shrink factor); then bilinear interpolation with half-pixel centres, which is separable:
    a horizontal pass, then a vertical one. tests/test_pipeline.py keeps the plain float version (mean of
    blocks, then rows, then columns) and checks this one against it.

    How, for speed: uint8 blocks are summed exactly in integers and 1/f² is folded into the horizontal
    weights; each pass is two gathers (np.take with cached indices), two multiplies and an add, and the
    full-size frame is never converted to float. About 0.6 ms for 1280×720 → 224×224 on one x86 core."""
    if img.shape[0] == out_h and img.shape[1] == out_w:
        return img.astype(np.float32, copy=True)
    return _resize(img, out_h, out_w)


def to_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB float image, H×W×1 (exact for grey pixels: the weights sum to 1)."""
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]


def prepare(frame: np.ndarray, info: ModelInfo) -> np.ndarray:
    """An RGB uint8 H×W×3 (or H×W grey) frame → the model's float32 input, h×w×c, normalised."""
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image array H×W×3 (RGB), got shape {frame.shape}")
    if info.input_size is None:
        raise ValueError("the model does not say its input size; pass one (e.g. --input-size 224x224)")
    # Which frame channel feeds each resized channel: the first three of RGBX; grey copied to R, G, B; R and B
    # swapped for a BGR model. Selecting them inside the resize costs nothing (see _column_taps).
    grey = frame.shape[2] == 1
    if grey:
        channels = (0, 0, 0) if info.channels == 3 else (0,)
    elif info.channels == 3 and info.channel_order == "BGR":
        channels = (2, 1, 0)
    else:
        channels = (0, 1, 2)
    out_h, out_w = info.input_size
    h, w = frame.shape[:2]
    mode = info.resize_mode
    if mode == "center_crop":
        top, left, ch, cw = _crop_box(h, w, out_h, out_w)
        x = _resize(frame[top:top + ch, left:left + cw], out_h, out_w, channels)
    elif mode == "stretch":
        x = _resize(frame, out_h, out_w, channels)
    elif mode == "letterbox":
        s = min(out_h / h, out_w / w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        inner = _resize(frame, nh, nw, channels)
        # the mean colour: the resized channels are already in the model's order, as info.mean is, so the bars
        # normalise to exactly 0
        fill = np.asarray(info.mean, dtype=np.float32)[: len(channels)]
        x = np.empty((out_h, out_w, len(channels)), np.float32)
        x[...] = fill
        top, left = (out_h - nh) // 2, (out_w - nw) // 2
        x[top:top + nh, left:left + nw] = inner
    else:
        raise ValueError(f"unknown resize mode {mode!r}; expected one of {', '.join(RESIZE_MODES)}")
    if info.channels == 1 and x.shape[2] == 3:
        x = to_luma(x)
    c = x.shape[2]
    mean = np.tile(np.asarray(info.mean, dtype=np.float32)[:c], out_w)
    std = np.tile(np.asarray(info.std, dtype=np.float32)[:c], out_w)
    # (x - mean) / std on out_h rows of out_w·c values, so numpy's inner loops are rows, not pixels
    y = np.subtract(x.reshape(out_h, out_w * c), mean, dtype=np.float32)
    y /= std
    return y.reshape(out_h, out_w, c)


def prepare_frame(frame: Frame, info: ModelInfo, dtype=np.float32, quantization=None) -> np.ndarray:
    """A captured Frame → the model's input tensor (h×w×c), what the pipeline and `classify` feed a backend.

    A quantized (int8/uint8) input is made by the fused kernel (edgevision.native.preprocess: crop, box
    prefilter, bilinear, colour conversion, normalisation and quantisation in one integer pass straight from
    the frame's own pixel format — C when the extension is built, else its numpy twin, same bytes; within one
    quantization step of quantize(prepare(...))). A float input gets prepare() on the frame's RGB view."""
    if quantization is not None and np.dtype(dtype) in (np.dtype(np.int8), np.dtype(np.uint8)):
        from .native.preprocess import preprocess
        scale, zero_point = quantization
        return preprocess(frame, info, scale, zero_point, dtype)
    return prepare(frame.to_rgb(), info)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """Float tensor → integer tensor with TFLite's rounding (half away from zero) and saturation."""
    info = np.iinfo(dtype)
    v = np.asarray(x, dtype=np.float32) / np.float32(scale)
    # trunc(v ± 0.5) is sign(v)·floor(|v| + 0.5) in two passes instead of five (this runs on every frame)
    q = np.trunc(v + np.copysign(np.float32(0.5), v), out=v if v is not x else None)
    q += zero_point
    return np.clip(q, info.min, info.max, out=q).astype(dtype)
