"""Fused preprocessing: a camera frame straight into the model's int8/uint8 input tensor, in one pass.

frame (rgb, bgr, bgrx, rgbx, gray, yuv420 with row strides) → crop → box prefilter → bilinear resize → colour
(channel order, BT.601 YUV→RGB, luma) → (x − mean) / std → quantise, with integer arithmetic only, so that the C
kernels (scalar reference, SSE4.1, AVX2, NEON; edgevision/native/csrc/preprocess.h has the arithmetic step by
step) and the numpy twin here give the same bytes.

The semantics are edgevision.preprocess's (geometry modes, box filter when shrinking ≥ 2×, half-pixel-centre
bilinear, RGB→BGR, BT.601 luma, mean/std) followed by quantize(); the fused result is within one quantisation
step of ``quantize(prepare(frame.to_rgb(), info), ...)`` for RGB-type frames (tests/test_native_preprocess.py).
Deliberate differences for yuv420: the crop is rounded to even rows/columns (so the half-resolution chroma crop is
exact); chroma is resampled bilinearly from its own half-resolution plane (its own box factor) rather than
replicated 2×2 first, at the positions of the luma samples (when the box filters of the two planes drop different
edge remainders, the chroma taps are mapped onto the area the luma blocks cover, so colour stays registered).

API:
  plan_preprocess(format, width, height, stride, info, input_scale, input_zero_point, dtype, full_range)
      → PreprocessPlan (cached): geometry, index/weight tables (numpy), quantisation constants.
  preprocess_into(frame, plan, out, variant=None) → name of the C function that ran (GIL released).
  preprocess_numpy(frame, plan) → the numpy twin's output (same bytes as the C reference).
  preprocess(frame, info, input_scale, input_zero_point, dtype, out=None, variant=None) → the input tensor, with
      the C kernel when the extension is built, else the numpy twin.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from fractions import Fraction
from typing import Optional

import numpy as np

from ..frames import FORMATS, Frame
from ..model_info import ModelInfo
from ..preprocess import RESIZE_MODES, _crop_box
from . import variants as _variants

__all__ = ["PreprocessPlan", "plan_preprocess", "preprocess_into", "preprocess_numpy", "preprocess",
           "native_available"]

# enum ev_pp_mode (preprocess.h)
MODE_RGB, MODE_RGB_LUMA, MODE_GRAY, MODE_YUV = 0, 1, 2, 3

# bytes per pixel and the byte offsets of R, G, B within a pixel (formats are named by memory byte order)
_LAYOUT = {
    "rgb": (3, (0, 1, 2)),
    "bgr": (3, (2, 1, 0)),
    "rgbx": (4, (0, 1, 2)),
    "bgrx": (4, (2, 1, 0)),
    "gray": (1, (0,)),
    "yuv420": (1, (0,)),
}

MAX_F = 64
MAX_DIM = 32768
RECIP_SHIFT = 15
WBITS = 11
YUV_SHIFT = 13
LUMA = (4899, 9617, 1868)  # BT.601 0.299, 0.587, 0.114 × 2^14, summing to 2^14
LUMA_SHIFT = 14
PMAX = 65280  # 255 · 256


def _yuv_coefficients(full_range: bool):
    """BT.601 YUV→RGB as (cy, yoff, ((cu, cv) for R, G, B)), coefficients × 2^13, offsets in P units (·256):
    the same constants as frames.yuv420_to_rgb."""
    if full_range:
        gain, yoff, kr, kgu, kgv, kb = 1.0, 0, 1.402, 0.344136, 0.714136, 1.772
    else:
        gain, yoff, kr, kgu, kgv, kb = 255 / 219, 16 * 256, 1.596027, 0.391762, 0.812968, 2.017232
    s = 1 << YUV_SHIFT
    return round(gain * s), yoff, ((0, round(kr * s)), (-round(kgu * s), -round(kgv * s)), (round(kb * s), 0))


def _axis(n_in: int, n_out: int, num: Optional[int] = None, den: int = 1):
    """Half-pixel-centre bilinear taps in integers (preprocess.h step 2): i0, i1 and the 11-bit weight of i1.

    The output spans num/den input pixels (default: all n_in of them); yuv420 chroma planes pass the span of the
    luma samples in chroma units, so that chroma is sampled where luma is."""
    if num is None:
        num = n_in
    o = np.arange(n_out, dtype=np.int64)
    q = (((2 * o + 1) * num - den * n_out) << 16) // (2 * den * n_out)  # floor
    q = np.clip(q, 0, (n_in - 1) << 16)
    i0 = q >> 16
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = ((q & 0xFFFF) + 16) >> 5
    out = tuple(a.astype(np.int32) for a in (i0, i1, w))
    for a in out:
        a.flags.writeable = False
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class PlanePlan:
    """One plane of the source (RGB-type and gray frames have one, yuv420 three: Y, U, V)."""

    base: int  # byte offset of the plane's first pixel in the frame buffer
    row_stride: int
    pixel_stride: int  # 1, 3 or 4
    width: int
    height: int
    crop_top: int
    crop_left: int
    channels: int  # 1 or 3
    chan_off: tuple[int, ...]  # byte within the pixel of each channel read (output order; R, G, B for luma)
    f: int  # box factor
    recip: int  # floor(2^23 / f²)
    vw: int
    vh: int
    x0: np.ndarray
    x1: np.ndarray
    wx: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    wy: np.ndarray

    @property
    def end(self) -> int:
        return self.base + (self.height - 1) * self.row_stride + self.width * self.pixel_stride


@dataclasses.dataclass(frozen=True, eq=False)
class PreprocessPlan:
    """Everything the kernel needs for one (frame format, size, stride, model) combination."""

    frame_format: str
    width: int
    height: int
    stride: int  # bytes per row (of the Y plane for yuv420)
    full_range: bool
    dtype: np.dtype
    out_shape: tuple[int, int, int]  # (out_h, out_w, out_c)
    crop: tuple[int, int, int, int]  # (top, left, height, width) in frame pixels
    dest: tuple[int, int, int, int]  # (top, left, height, width) inside the output
    mode: int
    planes: tuple[PlanePlan, ...]
    qmin: int
    qmax: int
    fill: int
    qshift: int
    qa: tuple[int, int, int]
    qb: tuple[int, int, int]
    yuv_cy: int = 0
    yuv_yoff: int = 0
    yuv_cu: tuple[int, int, int] = (0, 0, 0)
    yuv_cv: tuple[int, int, int] = (0, 0, 0)
    _native: list = dataclasses.field(default_factory=list, repr=False)  # [C plan] once built

    @property
    def src_size(self) -> int:
        """Bytes the frame buffer must span."""
        return max(p.end for p in self.planes)

    def fields(self) -> tuple[dict, list]:
        """The plan as _native.preprocess_plan takes it."""
        oh, ow, oc = self.out_shape
        dt, dl, dh, dw = self.dest
        f = dict(mode=self.mode, out_h=oh, out_w=ow, out_c=oc, dt=dt, dl=dl, dh=dh, dw=dw, qmin=self.qmin,
                 qmax=self.qmax, fill=self.fill, qshift=self.qshift, qa=list(self.qa), qb=list(self.qb),
                 yuv_cy=self.yuv_cy, yuv_yoff=self.yuv_yoff, yuv_cu=list(self.yuv_cu), yuv_cv=list(self.yuv_cv))
        planes = []
        for p in self.planes:
            d = {k: getattr(p, k) for k in ("base", "row_stride", "pixel_stride", "width", "height", "crop_top",
                                            "crop_left", "channels", "f", "recip", "vw", "vh")}
            d["chan_off"] = list(p.chan_off) + [0] * (3 - len(p.chan_off))
            for k in ("x0", "x1", "wx", "y0", "y1", "wy"):
                d[k] = getattr(p, k).tolist()
            planes.append(d)
        return f, planes

    def native(self):
        """The checked C plan (built once), or raises NativeUnavailable."""
        if not self._native:
            self._native.append(_variants.extension().preprocess_plan(*self.fields()))
        return self._native[0]


def _quant_constants(info: ModelInfo, channels: int, scale: float, zero_point: int):
    """qshift, qa, qb of preprocess.h step 4, exact in rationals: the largest qshift with |qa| < 2^31."""
    s = Fraction(scale)
    for t in range(31, -1, -1):
        big = 1 << (32 + t)
        qa, qb = [], []
        for k in range(channels):
            std, mean = Fraction(info.std[k]), Fraction(info.mean[k])
            qa.append(round(big / (256 * std * s)))
            qb.append(round(big * (zero_point - mean / (std * s))) + big // 2)
        if all(abs(a) < 2 ** 31 - 1 for a in qa) and all(abs(b) < 2 ** 61 for b in qb):
            pad = 3 - channels
            return t, tuple(qa) + (0,) * pad, tuple(qb) + (0,) * pad
    raise ValueError(f"input scale {scale} × std {info.std} is too small for the fused kernel: one pixel level "
                     f"would span more than 128 quantisation steps")


def plan_preprocess(frame_format: str, width: int, height: int, stride: Optional[int], info: ModelInfo,
                    input_scale: float, input_zero_point: int, dtype=np.int8, full_range: bool = False
                    ) -> PreprocessPlan:
    """The plan for frames of this format and size feeding this model (cached by its arguments).

    stride: bytes per row (of the Y plane for yuv420); None means unpadded rows (width × bytes per pixel)."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ValueError(f"dtype must be int8 or uint8, got {dt}")
    return _plan_cached(str(frame_format), int(width), int(height), None if stride is None else int(stride), info,
                        float(input_scale), int(input_zero_point), dt.name, bool(full_range))


@functools.lru_cache(maxsize=32)
def _plan_cached(fmt, width, height, stride, info, scale, zero_point, dtype_name, full_range) -> PreprocessPlan:
    if fmt not in _LAYOUT:
        raise ValueError(f"unknown frame format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not isinstance(info, ModelInfo):
        raise TypeError(f"info must be a ModelInfo, got {type(info).__name__}")
    if info.input_size is None:
        raise ValueError("the model does not say its input size; pass one (e.g. --input-size 224x224)")
    if info.resize_mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {info.resize_mode!r}")
    yuv = fmt == "yuv420"
    if not (1 <= width <= MAX_DIM and 1 <= height <= MAX_DIM) or (yuv and (width < 2 or height < 2)):
        raise ValueError(f"frame size {width}x{height} outside {2 if yuv else 1}..{MAX_DIM}")
    ps, rgb_off = _LAYOUT[fmt]
    if stride is None:
        stride = width * ps
    if stride < width * ps:
        raise ValueError(f"stride {stride} is less than a {fmt} row of {width} pixels ({width * ps} bytes)")
    if yuv and stride // 2 < (width + 1) // 2:
        raise ValueError(f"yuv420 stride {stride}: the chroma rows (stride // 2 = {stride // 2} bytes) cannot hold "
                         f"{(width + 1) // 2} chroma samples; an odd width needs stride >= width + 1")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"input scale must be a positive number, got {scale}")
    qmin, qmax = (-128, 127) if dtype_name == "int8" else (0, 255)
    if not qmin <= zero_point <= qmax:
        raise ValueError(f"zero point {zero_point} outside the {dtype_name} range [{qmin}, {qmax}]")

    oh, ow = info.input_size
    oc = info.channels
    if oh > MAX_DIM or ow > MAX_DIM:
        raise ValueError(f"model input {oh}x{ow} larger than {MAX_DIM}")
    # geometry: exactly edgevision.preprocess.prepare's
    if info.resize_mode == "center_crop":
        crop = _crop_box(height, width, oh, ow)
        dest = (0, 0, oh, ow)
    elif info.resize_mode == "stretch":
        crop, dest = (0, 0, height, width), (0, 0, oh, ow)
    else:  # letterbox
        s = min(oh / height, ow / width)
        nh, nw = max(1, round(height * s)), max(1, round(width * s))
        crop, dest = (0, 0, height, width), ((oh - nh) // 2, (ow - nw) // 2, nh, nw)
    top, left, ch, cw = crop
    if yuv:  # even origin and size, so the chroma crop is exactly half
        top, left, ch, cw = top - top % 2, left - left % 2, max(2, ch - ch % 2), max(2, cw - cw % 2)
        crop = (top, left, ch, cw)
    _, _, dh, dw = dest

    def plane(base, row_stride, pstride, pw, ph, ctop, cleft, cch, ccw, chan_off, luma=None):
        f = min(cch // dh, ccw // dw)
        f = 1 if f < 2 else min(f, MAX_F)
        vh, vw = cch // f, ccw // f
        if luma is None:
            x0, x1, wx = _axis(vw, dw)
            y0, y1, wy = _axis(vh, dh)
        else:  # chroma: the luma V grid covers vw·f × vh·f luma pixels; sample the same area
            x0, x1, wx = _axis(vw, dw, luma.vw * luma.f, 2 * f)
            y0, y1, wy = _axis(vh, dh, luma.vh * luma.f, 2 * f)
        return PlanePlan(base=base, row_stride=row_stride, pixel_stride=pstride, width=pw, height=ph,
                         crop_top=ctop, crop_left=cleft, channels=len(chan_off), chan_off=tuple(chan_off), f=f,
                         recip=(1 << 23) // (f * f), vw=vw, vh=vh, x0=x0, x1=x1, wx=wx, y0=y0, y1=y1, wy=wy)

    yuv_fields = {}
    if yuv:
        cs, chh, cww = stride // 2, (height + 1) // 2, (width + 1) // 2
        y = plane(0, stride, 1, width, height, top, left, ch, cw, (0,))
        planes = (y, plane(stride * height, cs, 1, cww, chh, top // 2, left // 2, ch // 2, cw // 2, (0,), y),
                  plane(stride * height + cs * chh, cs, 1, cww, chh, top // 2, left // 2, ch // 2, cw // 2, (0,), y))
        mode = MODE_YUV
        cy, yoff, cuv = _yuv_coefficients(full_range)
        if oc == 3 and info.channel_order == "BGR":
            cuv = cuv[::-1]
        yuv_fields = dict(yuv_cy=cy, yuv_yoff=yoff, yuv_cu=tuple(c[0] for c in cuv),
                          yuv_cv=tuple(c[1] for c in cuv))
    elif fmt == "gray":
        planes = (plane(0, stride, 1, width, height, top, left, ch, cw, (0,)),)
        mode = MODE_GRAY
    else:
        if oc == 1:
            mode, off = MODE_RGB_LUMA, rgb_off  # R, G, B for the luma weights
        else:
            mode, off = MODE_RGB, (rgb_off[::-1] if info.channel_order == "BGR" else rgb_off)
        planes = (plane(0, stride, ps, width, height, top, left, ch, cw, off),)
    qshift, qa, qb = _quant_constants(info, oc, scale, zero_point)
    return PreprocessPlan(frame_format=fmt, width=width, height=height, stride=stride, full_range=full_range,
                          dtype=np.dtype(dtype_name), out_shape=(oh, ow, oc), crop=crop, dest=dest, mode=mode,
                          planes=planes, qmin=qmin, qmax=qmax, fill=zero_point, qshift=qshift, qa=qa, qb=qb,
                          **yuv_fields)


# ---------------------------------------------------------------------------------------------------------------
# Checking a frame against a plan (both paths), and the numpy twin.

def _frame_stride(frame: Frame) -> int:
    if frame.format == "yuv420":
        return frame.stride or frame.width
    d = frame.data
    if isinstance(d, np.ndarray) and d.ndim >= 2:
        return d.strides[0]
    return frame.stride or frame.width * _LAYOUT[frame.format][0]


def _check_frame(frame: Frame, plan: PreprocessPlan) -> np.ndarray:
    if not isinstance(frame, Frame):
        raise TypeError(f"expected an edgevision.frames.Frame, got {type(frame).__name__}")
    if frame.format not in _LAYOUT:
        raise ValueError(f"unknown frame format {frame.format!r}; expected one of {', '.join(FORMATS)}")
    d = frame.data
    if not isinstance(d, np.ndarray) or d.dtype != np.uint8:
        raise ValueError(f"frame data must be a numpy uint8 array, got "
                         f"{type(d).__name__ if not isinstance(d, np.ndarray) else d.dtype}")
    got = (frame.format, frame.width, frame.height, _frame_stride(frame))
    want = (plan.frame_format, plan.width, plan.height, plan.stride)
    if got != want:
        raise ValueError(f"frame (format, width, height, stride) = {got} does not match the plan's {want}")
    if plan.frame_format == "yuv420" and bool(frame.full_range) != plan.full_range:
        raise ValueError(f"frame full_range={frame.full_range} but the plan was made for full_range={plan.full_range}")
    return d


def _plane_pixels(d: np.ndarray, plan: PreprocessPlan, p: PlanePlan) -> np.ndarray:
    """Plane p as a (height, width, pixel_stride) uint8 view, after checking the buffer holds it."""
    ps = p.pixel_stride
    if plan.frame_format == "yuv420":
        if not d.flags.c_contiguous:
            raise ValueError("yuv420 frame data must be one C-contiguous buffer (Y, U, V planes)")
        flat = d.reshape(-1)
        if flat.size < plan.src_size:
            raise ValueError(f"frame data too small: it spans {flat.size} bytes, the plan ({plan.height} rows of "
                             f"stride {plan.stride} plus the U and V planes) needs {plan.src_size}")
        return np.lib.stride_tricks.as_strided(flat[p.base:], (p.height, p.width, 1), (p.row_stride, 1, 1),
                                               writeable=False)
    if d.ndim == 2 and ps == 1:
        d = np.lib.stride_tricks.as_strided(d, d.shape + (1,), d.strides + (1,), writeable=False)
    if d.ndim == 2 and d.shape[1] % ps == 0 and d.strides[1] == 1:  # rows of bytes
        d = d.reshape(d.shape[0], d.shape[1] // ps, ps) if d.flags.c_contiguous else \
            np.lib.stride_tricks.as_strided(d, (d.shape[0], d.shape[1] // ps, ps), (d.strides[0], ps, 1),
                                            writeable=False)
    if d.ndim == 1 and d.flags.c_contiguous:
        if d.size < plan.src_size:
            raise ValueError(f"frame data too small: it spans {d.size} bytes, the plan ({plan.height} rows of "
                             f"stride {plan.stride}) needs {plan.src_size}")
        return np.lib.stride_tricks.as_strided(d, (p.height, p.width, ps), (p.row_stride, ps, 1), writeable=False)
    if d.ndim != 3 or d.shape[2] != ps or d.strides[2] != 1 or d.strides[1] != ps or d.strides[0] != p.row_stride \
            or d.shape[0] < p.height or d.shape[1] < p.width:
        raise ValueError(f"frame data of shape {d.shape} strides {d.strides} does not match the plan: "
                         f"{p.height} rows of {p.width} pixels of {ps} bytes, rows {p.row_stride} bytes apart")
    return d[:p.height, :p.width]


def _box_sums(region: np.ndarray, f: int) -> np.ndarray:
    """Sums of f×f blocks of a (vh·f, vw·f, ps) uint8 array: (vh, vw, ps), exact (uint16 while f²·255 fits)."""
    acc = np.uint16 if f * f * 255 < 2 ** 16 else np.uint32
    vh, vw, ps = region.shape[0] // f, region.shape[1] // f, region.shape[2]
    rows = region[0::f].astype(acc)  # (vh, vw·f, ps): f row slices, long contiguous loops
    for a in range(1, f):
        rows += region[a::f]
    # columns: each row flattened, plus itself shifted by ps, 2·ps, ... elements (contiguous adds, not (…, f, ps)
    # reductions, which numpy runs ~10× slower); the block sums then sit at the start of each f·ps group
    flat = rows.reshape(vh, vw * f * ps)
    sums = flat.copy()
    n = flat.shape[1]
    for k in range(1, f):
        sums[:, :n - k * ps] += flat[:, k * ps:]
    return sums.reshape(vh, vw, f * ps)[:, :, :ps]


def _resample(pix: np.ndarray, p: PlanePlan) -> np.ndarray:
    """Steps 1-2 of preprocess.h: box sums, normalisation, horizontal then vertical bilinear. (dh, dw, C) int32
    (every intermediate fits: B·recip < 2^31, (b - a)·w < 2^28)."""
    f = p.f
    region = pix[p.crop_top:p.crop_top + p.vh * f, p.crop_left:p.crop_left + p.vw * f]
    rows = np.union1d(p.y0, p.y1)  # only the V rows the vertical pass reads
    if f == 1:
        v = region[rows].astype(np.int32) << 8  # (S·2^23 + 2^14) >> 15 = S·256
    else:
        b = _box_sums(region[(rows[:, None] * f + np.arange(f)).reshape(-1)], f)
        v = (b.astype(np.int32) * np.int32(p.recip) + np.int32(1 << (RECIP_SHIFT - 1))) >> RECIP_SHIFT
    v = v[..., list(p.chan_off)]
    a, c = v[:, p.x0], v[:, p.x1]
    h = a + (((c - a) * p.wx[None, :, None] + 1024) >> WBITS)
    pos = np.searchsorted(rows, p.y0), np.searchsorted(rows, p.y1)
    a, c = h[pos[0]], h[pos[1]]
    return a + (((c - a) * p.wy[:, None, None] + 1024) >> WBITS)


def _luma(r, g, b):
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b + (1 << (LUMA_SHIFT - 1))) >> LUMA_SHIFT


def preprocess_numpy(frame: Frame, plan: PreprocessPlan) -> np.ndarray:
    """The numpy twin of the C kernel: the same bytes as ev_preprocess_ref, (out_h, out_w, out_c) of plan.dtype."""
    d = _check_frame(frame, plan)
    pix = [_plane_pixels(d, plan, p) for p in plan.planes]
    o = [_resample(x, p) for x, p in zip(pix, plan.planes)]
    oh, ow, oc = plan.out_shape
    if plan.mode == MODE_RGB:
        c = o[0]
    elif plan.mode == MODE_RGB_LUMA:
        c = _luma(o[0][..., 0], o[0][..., 1], o[0][..., 2])[..., None]
    elif plan.mode == MODE_GRAY:
        c = np.repeat(o[0], oc, axis=2)
    else:
        y = o[0][..., 0] - plan.yuv_yoff
        u, v = o[1][..., 0] - 32768, o[2][..., 0] - 32768
        c = np.stack([np.clip((plan.yuv_cy * y + plan.yuv_cu[k] * u + plan.yuv_cv[k] * v
                               + (1 << (YUV_SHIFT - 1))) >> YUV_SHIFT, 0, PMAX) for k in range(3)], axis=2)
        if oc == 1:
            c = _luma(c[..., 0], c[..., 1], c[..., 2])[..., None]
    qa = np.asarray(plan.qa[:oc], dtype=np.int64)
    qb = np.asarray(plan.qb[:oc], dtype=np.int64)
    q = np.clip((c.astype(np.int64) * qa + qb) >> (32 + plan.qshift), plan.qmin, plan.qmax)
    out = np.full((oh, ow, oc), plan.fill, dtype=plan.dtype)
    dt, dl, dh, dw = plan.dest
    out[dt:dt + dh, dl:dl + dw] = q.astype(plan.dtype)
    return out


# ---------------------------------------------------------------------------------------------------------------
# The C kernel.

def native_available() -> bool:
    try:
        ext = _variants.extension()
    except _variants.NativeUnavailable:
        return False
    return hasattr(ext, "preprocess_plan")


@functools.lru_cache(maxsize=16)
def _resolve_cached(requested: Optional[str], env: Optional[str]) -> str:
    return _variants.resolve(requested)[0]


def resolve_variant(variant: Optional[str] = None) -> str:
    """The kernel variant preprocess_into runs: the argument, else EDGEVISION_KERNELS, else detection (resolved
    once per distinct setting)."""
    if variant is not None and not isinstance(variant, str):
        raise ValueError(f"variant must be a name (str) or None, got {variant!r}")
    return _resolve_cached(variant, os.environ.get(_variants.ENV_VAR))


def preprocess_into(frame: Frame, plan: PreprocessPlan, out: np.ndarray, variant: Optional[str] = None,
                    rows: Optional[tuple[int, int]] = None, threads: int = 1) -> str:
    """Run the fused C kernel for `frame` into `out` (out_h×out_w×C or 1×out_h×out_w×C, C-contiguous, the plan's
    dtype), with the GIL released. Returns the name of the C function that ran (e.g. "ev_preprocess_avx2").

    rows: (begin, end) to compute only those output rows (threads may split a frame; every split gives the same
    bytes). threads: run the rows on that many threads."""
    if not isinstance(plan, PreprocessPlan):
        raise TypeError(f"plan must be a PreprocessPlan (from plan_preprocess), got {type(plan).__name__}")
    d = _check_frame(frame, plan)
    oh, ow, oc = plan.out_shape
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != plan.dtype:
        raise ValueError(f"out has dtype {out.dtype}, the plan writes {plan.dtype}")
    if out.shape not in ((oh, ow, oc), (1, oh, ow, oc)):
        raise ValueError(f"out has shape {out.shape}, expected {(oh, ow, oc)} or {(1, oh, ow, oc)}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous (a fresh np.empty array, not a strided view)")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    name = resolve_variant(variant)
    b, e = (0, oh) if rows is None else rows
    return plan.native().run(d, out, name, int(b), int(e), int(threads))


def preprocess(frame: Frame, info: ModelInfo, input_scale: float, input_zero_point: int, dtype=np.int8,
               out: Optional[np.ndarray] = None, variant: Optional[str] = None) -> np.ndarray:
    """Frame → the model's quantised input (out_h×out_w×C, or into `out`), with the C kernel when the extension
    is built, else the numpy twin (same bytes)."""
    plan = plan_preprocess(frame.format, frame.width, frame.height, _frame_stride(frame), info, input_scale,
                           input_zero_point, dtype, frame.full_range if frame.format == "yuv420" else False)
    if native_available():
        if out is None:
            out = np.empty(plan.out_shape, dtype=plan.dtype)
        preprocess_into(frame, plan, out, variant)
        return out
    x = preprocess_numpy(frame, plan)
    if out is None:
        return x
    if out.dtype != plan.dtype or out.shape not in (x.shape, (1,) + x.shape):
        raise ValueError(f"out has dtype {out.dtype} shape {out.shape}, expected {plan.dtype} {x.shape}")
    out.reshape(x.shape)[...] = x
    return out
