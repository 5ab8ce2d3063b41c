"""The fused preprocessing kernel (edgevision.native.preprocess, csrc/preprocess.h): every built SIMD variant
gives the bytes of the C reference, the numpy twin gives them too, any split of the rows gives them, the result
means what edgevision.preprocess.prepare + quantize mean, bad arguments are ValueErrors, and the SIMD variant the
CPU supports is the one that runs."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgevision.frames import Frame
from edgevision.model_info import ModelInfo
from edgevision.native import preprocess as pp
from edgevision.native import variants
from edgevision.preprocess import _crop_box, prepare, quantize

ROOT = Path(__file__).resolve().parent.parent
NATIVE = pp.native_available()
needs_native = pytest.mark.skipif(not NATIVE, reason="edgevision._native not built")
PS = {"rgb": 3, "bgr": 3, "bgrx": 4, "rgbx": 4, "gray": 1, "yuv420": 1}
FORMATS = tuple(PS)


def supported_variants() -> tuple[str, ...]:
    return variants.supported() if NATIVE else ()


# --------------------------------------------------------------------------------------------------------------
# frames

def make_frame(fmt: str, h: int, w: int, rng, pad: int = 0, content: np.ndarray | None = None,
               full_range: bool = False, flat: bool = False) -> Frame:
    """A frame of `fmt`: random bytes, or `content` (an RGB uint8 h×w×3 image) encoded into the format. pad adds
    bytes to each row (a strided view for packed formats, a larger stride for yuv420); flat passes packed pixels as
    one 1-D buffer with an explicit stride."""
    ps = PS[fmt]
    if fmt == "yuv420":
        stride = w + (w % 2) + pad
        cs, chh = stride // 2, (h + 1) // 2
        buf = rng.integers(0, 256, stride * h + 2 * cs * chh, dtype=np.uint8)
        if content is not None:
            y, u, v = rgb_to_yuv420(content, full_range)
            buf[: stride * h].reshape(h, stride)[:, :w] = y
            buf[stride * h: stride * h + cs * chh].reshape(chh, cs)[:, : u.shape[1]] = u
            buf[stride * h + cs * chh:].reshape(chh, cs)[:, : v.shape[1]] = v
        return Frame(buf, fmt, w, h, stride=stride, full_range=full_range)
    if content is None:
        pix = rng.integers(0, 256, (h, w, ps), dtype=np.uint8)
    else:
        rgb = content
        order = {"rgb": [0, 1, 2], "bgr": [2, 1, 0], "bgrx": [2, 1, 0], "rgbx": [0, 1, 2]}
        if fmt == "gray":
            pix = np.round(rgb.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)[..., None]
        else:
            pix = np.concatenate([rgb[..., order[fmt]], rng.integers(0, 256, (h, w, ps - 3), dtype=np.uint8)], axis=2)
    if flat:
        stride = w * ps + pad
        buf = rng.integers(0, 256, (h - 1) * stride + w * ps, dtype=np.uint8)
        for r in range(h):
            buf[r * stride: r * stride + w * ps] = pix[r].reshape(-1)
        return Frame(buf, fmt, w, h, stride=stride)
    big = rng.integers(0, 256, (h, w + pad, ps), dtype=np.uint8)
    big[:, :w] = pix
    data = big[:, :w]
    if fmt == "gray":
        data = data[..., 0]
    return Frame(data, fmt, w, h)


def rgb_to_yuv420(rgb: np.ndarray, full_range: bool):
    """BT.601 RGB → I420 planes (chroma: mean of 2×2 blocks), the inverse of frames.yuv420_to_rgb."""
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    if full_range:
        y = 0.299 * r + 0.587 * g + 0.114 * b
        u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
        v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    else:
        y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
        u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
        v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    h, w = y.shape
    hp, wp = h + h % 2, w + w % 2

    def half(c):
        c = np.pad(c, ((0, hp - h), (0, wp - w)), mode="edge")
        return c.reshape(hp // 2, 2, wp // 2, 2).mean(axis=(1, 3))

    q = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)  # noqa: E731
    return q(y), q(half(u)), q(half(v))


def photo(h: int, w: int, name: str = "astronaut.jpg") -> np.ndarray:
    Image = pytest.importorskip("PIL.Image")
    img = Image.open(ROOT / "edgevision" / "demo" / name).convert("RGB")
    return np.asarray(img.resize((w, h), Image.BILINEAR))


def model(size, channels=3, order="RGB", mode="center_crop", mean=None, std=None) -> ModelInfo:
    return ModelInfo(input_size=size, channels=channels, channel_order=order, resize_mode=mode,
                     mean=mean if mean is not None else (127.5,) * channels,
                     std=std if std is not None else (127.5,) * channels)


def plan_for(frame: Frame, info: ModelInfo, scale=2 / 255, zp=-1, dtype=np.int8):
    return pp.plan_preprocess(frame.format, frame.width, frame.height, pp._frame_stride(frame), info, scale, zp,
                              dtype, frame.full_range)


def run_c(frame, plan, variant, rows=None, threads=1, shape=None):
    out = np.empty(shape or plan.out_shape, dtype=plan.dtype)
    name = pp.preprocess_into(frame, plan, out, variant=variant, rows=rows, threads=threads)
    return out.reshape(plan.out_shape), name


# --------------------------------------------------------------------------------------------------------------
# bit-exactness: every variant = ref = numpy twin

# (frame h, w, output (h, w), channels, order, resize mode, dtype, zero point, row pad, expected box factor f of
# plane 0 or None)
CASES = [
    (720, 1280, (224, 224), 3, "RGB", "center_crop", np.int8, -1, 0, 3),
    (481, 643, (224, 224), 3, "BGR", "stretch", np.uint8, 128, 5, 2),
    (449, 461, (224, 224), 1, "RGB", "stretch", np.int8, 0, 3, 2),
    (301, 250, (224, 224), 3, "RGB", "stretch", np.uint8, 3, 0, 1),       # shrink < 2x: no box
    (100, 91, (224, 224), 3, "BGR", "letterbox", np.int8, -5, 7, 1),       # enlargement
    (289, 485, (96, 160), 3, "RGB", "stretch", np.int8, 10, 1, 3),
    (480, 641, (96, 160), 1, "BGR", "letterbox", np.uint8, 200, 0, None),
    (199, 205, (28, 28), 3, "BGR", "stretch", np.int8, -128, 2, 7),
    (720, 1280, (28, 28), 1, "RGB", "center_crop", np.uint8, 0, 0, 25),
    (31, 17, (96, 160), 3, "RGB", "letterbox", np.int8, 127, 3, 1),
    (1080, 1920, (224, 224), 3, "BGR", "letterbox", np.uint8, 100, 0, 8),  # 224x126 inside
    (57, 4000, (28, 28), 3, "RGB", "stretch", np.int8, 0, 0, 2),           # wide: several column tiles
]


@needs_native
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_variants_and_numpy_twin_bit_exact(fmt, case):
    h, w, size, ch, order, mode, dtype, zp, pad, f = CASES[case]
    rng = np.random.default_rng(1000 * case + FORMATS.index(fmt))
    frame = make_frame(fmt, h, w, rng, pad=pad)
    mean = (100.0, 120.0, 140.0)[:ch] if case % 2 else None
    std = (50.0, 60.0, -70.0)[:ch] if case % 3 == 1 else None
    plan = plan_for(frame, model(size, ch, order, mode, mean, std), scale=0.02 if case % 2 else 2 / 255, zp=zp,
                    dtype=dtype)
    if f is not None and fmt != "yuv420":
        assert plan.planes[0].f == f
    ref, name = run_c(frame, plan, "ref")
    assert name == "ev_preprocess_ref"
    assert ref.shape == (*size, ch) and ref.dtype == dtype
    np.testing.assert_array_equal(pp.preprocess_numpy(frame, plan), ref, err_msg="numpy twin != C reference")
    for v in supported_variants():
        out, name = run_c(frame, plan, v)
        np.testing.assert_array_equal(out, ref, err_msg=f"{name} != C reference")
    if mode == "letterbox":  # the bars are the zero point
        dt, dl, dh, dw = plan.dest
        assert (dh, dw) != size
        bars = np.ones(size, bool)
        bars[dt:dt + dh, dl:dl + dw] = False
        assert (ref[bars] == zp).all()


@needs_native
@pytest.mark.parametrize("fmt", FORMATS)
def test_random_geometries_bit_exact(fmt):
    """Many random small geometries: odd sizes, strides, every mode, both orders, 1/3 channels, both dtypes."""
    rng = np.random.default_rng(7 + FORMATS.index(fmt))
    for _ in range(40):
        h, w = int(rng.integers(2, 120)), int(rng.integers(2, 160))
        size = (int(rng.integers(1, 70)), int(rng.integers(1, 70)))
        ch = int(rng.choice([1, 3]))
        info = model(size, ch, str(rng.choice(["RGB", "BGR"])), str(rng.choice(["stretch", "center_crop", "letterbox"])),
                     mean=tuple(float(m) for m in rng.uniform(0, 255, ch)),
                     std=tuple(float(s) for s in rng.uniform(10, 100, ch)))
        dtype = rng.choice([np.int8, np.uint8])
        zp = int(rng.integers(-128, 128)) if dtype == np.int8 else int(rng.integers(0, 256))
        frame = make_frame(fmt, h, w, rng, pad=int(rng.integers(0, 6)), full_range=bool(rng.integers(0, 2)),
                           flat=fmt in ("rgb", "bgrx") and bool(rng.integers(0, 2)))
        plan = plan_for(frame, info, scale=float(rng.uniform(0.005, 0.05)), zp=zp, dtype=dtype)
        ref, _ = run_c(frame, plan, "ref")
        np.testing.assert_array_equal(pp.preprocess_numpy(frame, plan), ref, err_msg=f"twin {h}x{w} {info}")
        for v in supported_variants():
            out, name = run_c(frame, plan, v)
            np.testing.assert_array_equal(out, ref, err_msg=f"{name} {h}x{w} {info}")


@needs_native
@pytest.mark.parametrize("fmt", ["rgb", "bgrx", "yuv420", "gray"])
def test_row_splits_and_threads_identical(fmt):
    rng = np.random.default_rng(3)
    frame = make_frame(fmt, 481, 643, rng, pad=3)
    plan = plan_for(frame, model((224, 224), mode="letterbox"))
    for v in supported_variants():
        whole, _ = run_c(frame, plan, v)
        for threads in (2, 3, 7):
            out, _ = run_c(frame, plan, v, threads=threads)
            np.testing.assert_array_equal(out, whole)
        for cuts in ([0, 1, 224], [0, 50, 51, 117, 224], sorted(rng.choice(np.arange(1, 224), 6, replace=False))):
            cuts = [0, *[int(c) for c in cuts if 0 < c < 224], 224]
            out = np.full(plan.out_shape, 77, dtype=plan.dtype)
            for b, e in zip(cuts[:-1], cuts[1:]):
                pp.preprocess_into(frame, plan, out, variant=v, rows=(b, e))
            np.testing.assert_array_equal(out, whole, err_msg=f"{v} rows split at {cuts}")
        # a range writes its rows and nothing else
        out = np.full(plan.out_shape, 77, dtype=plan.dtype)
        pp.preprocess_into(frame, plan, out, variant=v, rows=(10, 20))
        np.testing.assert_array_equal(out[10:20], whole[10:20])
        assert (out[:10] == 77).all() and (out[20:] == 77).all()


@needs_native
def test_batch_shaped_out_and_convenience():
    rng = np.random.default_rng(4)
    frame = make_frame("bgrx", 120, 160, rng)
    info = model((32, 32))
    plan = plan_for(frame, info)
    out4, _ = run_c(frame, plan, "ref", shape=(1, 32, 32, 3))
    np.testing.assert_array_equal(pp.preprocess(frame, info, 2 / 255, -1, np.int8), out4)
    assert plan_for(frame, info) is plan  # cached
    buf = np.empty((1, 32, 32, 3), np.int8)
    assert pp.preprocess(frame, info, 2 / 255, -1, np.int8, out=buf) is buf
    np.testing.assert_array_equal(buf[0], out4)


def test_numpy_twin_used_without_the_extension(monkeypatch):
    rng = np.random.default_rng(5)
    frame = make_frame("yuv420", 61, 83, rng, pad=2)
    info = model((20, 30), mode="letterbox")
    expected = pp.preprocess_numpy(frame, plan_for(frame, info))
    monkeypatch.setattr(pp, "native_available", lambda: False)
    np.testing.assert_array_equal(pp.preprocess(frame, info, 2 / 255, -1, np.int8), expected)
    if NATIVE:
        monkeypatch.undo()
        np.testing.assert_array_equal(pp.preprocess(frame, info, 2 / 255, -1, np.int8), expected)


# --------------------------------------------------------------------------------------------------------------
# semantics: the float path (edgevision.preprocess.prepare + quantize)

SEM_MODELS = [
    (model((224, 224)), 2 / 255, -1, np.int8),
    (model((224, 224), order="BGR", mode="letterbox", mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4)), 0.0186,
     -14, np.int8),
    (model((96, 160), channels=1, mode="stretch", mean=(0.0,), std=(255.0,)), 1 / 255, 0, np.uint8),
    (model((28, 28), mode="stretch", mean=(120, 110, 100), std=(60, 50, 70)), 0.021, 128, np.uint8),
]


@pytest.mark.parametrize("fmt", ["rgb", "bgr", "bgrx", "rgbx", "gray"])
@pytest.mark.parametrize("content", ["photo", "random"])
@pytest.mark.parametrize("hw", [(720, 1280), (481, 643), (150, 97), (224, 224)])
def test_matches_float_path_within_one_step(fmt, content, hw):
    """|fused - quantize(prepare(frame.to_rgb()))| <= 1 step everywhere, and where they differ the float value
    lies within 0.1 step of a rounding boundary (the fused arithmetic is off from the exact value by a few 1/256
    of a pixel; exact ties round half up in the fused kernel and half away from zero in quantize())."""
    h, w = hw
    rng = np.random.default_rng(h * w)
    rgb = photo(h, w) if content == "photo" else rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame = make_frame(fmt, h, w, rng, pad=1, content=rgb)
    for info, scale, zp, dtype in SEM_MODELS:
        plan = plan_for(frame, info, scale, zp, dtype)
        fused = pp.preprocess(frame, info, scale, zp, dtype) if NATIVE else pp.preprocess_numpy(frame, plan)
        x = prepare(frame.to_rgb() if fmt != "gray" else frame.data, info)
        ref = quantize(x, scale, zp, dtype)
        dt, dl, dh, dw = plan.dest
        bars = np.ones(fused.shape[:2], bool)
        bars[dt:dt + dh, dl:dl + dw] = False
        assert (fused[bars] == zp).all()
        # only inside: prepare() fills a BGR model's letterbox bars with the mean reversed (RGB order) but
        # normalises with it in model order, so its bars are not the zero point when the mean is not uniform
        fused, ref, x = (a[dt:dt + dh, dl:dl + dw] for a in (fused, ref, x))
        d = np.abs(fused.astype(int) - ref.astype(int))
        assert d.max() <= 1, f"{info}: max difference {d.max()} steps"
        v = x.astype(np.float64) / scale + zp
        boundary = np.abs(v - np.floor(v) - 0.5)
        info_q = np.iinfo(dtype)
        inside = (v > info_q.min - 0.5) & (v < info_q.max + 0.5)
        off = (d > 0) & inside
        assert (boundary[off] < 0.1).all(), (
            f"{info}: {off.sum()} values differ away from a rounding boundary (max distance "
            f"{boundary[off].max():.3f} step)")


def test_exact_ties_round_half_up():
    """Identity geometry with mean 127.5, std 127.5, scale 2/255: every value is an exact tie (p - 127.5 steps).
    The fused kernel rounds half up, quantize() half away from zero: they differ by one step for p < 128."""
    rng = np.random.default_rng(9)
    img = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    frame = Frame(img, "rgb", 224, 224)
    info = model((224, 224), mode="stretch")
    fused = pp.preprocess_numpy(frame, plan_for(frame, info, 2 / 255, 0, np.int8)).astype(int)
    np.testing.assert_array_equal(fused, np.clip(np.floor(img - 127.5 + 0.5), -128, 127))


def _box_factor(ch: int, cw: int, dh: int, dw: int) -> int:
    f = min(ch // dh, cw // dw)
    return 1 if f < 2 else min(f, 64)


def _float_resample(img: np.ndarray, f: int, dh: int, dw: int, span_h: float, span_w: float) -> np.ndarray:
    """Mean of f×f blocks, then bilinear with half-pixel centres, the output spanning span_h × span_w block pixels
    (in float64: the semantics, not the integer arithmetic)."""
    vh, vw = img.shape[0] // f, img.shape[1] // f
    v = img[:vh * f, :vw * f].astype(np.float64).reshape(vh, f, vw, f).mean(axis=(1, 3))

    def axis(n_in, span, n_out):
        p = np.clip((np.arange(n_out) + 0.5) * span / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(p).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), p - i0

    y0, y1, wy = axis(vh, span_h, dh)
    x0, x1, wx = axis(vw, span_w, dw)
    rows = v[y0] * (1 - wy)[:, None] + v[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx) + rows[:, x1] * wx


def float_yuv_model(frame: Frame, info: ModelInfo, scale, zp, dtype) -> np.ndarray:
    """An independent float model of the fused yuv420 semantics: even crop of prepare()'s geometry, luma and each
    half-resolution chroma plane box-filtered with their own factor and resampled at the luma sample positions,
    BT.601 (frames.yuv420_to_rgb's coefficients) without rounding, then prepare()'s channel order, luma,
    normalisation and quantize()."""
    h, w, stride = frame.height, frame.width, frame.stride
    oh, ow = info.input_size
    if info.resize_mode == "center_crop":
        t, l, ch, cw = _crop_box(h, w, oh, ow)
        dt, dl, dh, dw = 0, 0, oh, ow
    elif info.resize_mode == "stretch":
        t, l, ch, cw, dt, dl, dh, dw = 0, 0, h, w, 0, 0, oh, ow
    else:
        s = min(oh / h, ow / w)
        dh, dw = max(1, round(h * s)), max(1, round(w * s))
        t, l, ch, cw, dt, dl = 0, 0, h, w, (oh - dh) // 2, (ow - dw) // 2
    t, l, ch, cw = t - t % 2, l - l % 2, ch - ch % 2, cw - cw % 2
    buf = frame.data.reshape(-1)
    cs, chh = stride // 2, (h + 1) // 2
    y = buf[:stride * h].reshape(h, stride)[t:t + ch, l:l + cw]
    u = buf[stride * h:stride * h + cs * chh].reshape(chh, cs)[t // 2:(t + ch) // 2, l // 2:(l + cw) // 2]
    v = buf[stride * h + cs * chh:stride * h + 2 * cs * chh].reshape(chh, cs)[t // 2:(t + ch) // 2, l // 2:(l + cw) // 2]
    fy = _box_factor(ch, cw, dh, dw)
    fc = _box_factor(ch // 2, cw // 2, dh, dw)
    span_h, span_w = (ch // fy) * fy, (cw // fy) * fy  # luma pixels the luma blocks cover
    Y = _float_resample(y, fy, dh, dw, ch // fy, cw // fy)
    U = _float_resample(u, fc, dh, dw, span_h / (2 * fc), span_w / (2 * fc)) - 128
    V = _float_resample(v, fc, dh, dw, span_h / (2 * fc), span_w / (2 * fc)) - 128
    if frame.full_range:
        kr, kgu, kgv, kb = 1.402, 0.344136, 0.714136, 1.772
    else:
        Y, kr, kgu, kgv, kb = (Y - 16) * (255 / 219), 1.596027, 0.391762, 0.812968, 2.017232
    rgb = np.clip(np.stack([Y + kr * V, Y - kgu * U - kgv * V, Y + kb * U], axis=2), 0, 255)
    if info.channels == 1:
        x = rgb @ np.array([0.299, 0.587, 0.114])
        x = x[..., None]
    else:
        x = rgb[..., ::-1] if info.channel_order == "BGR" else rgb
    x = (x - np.asarray(info.mean)) / np.asarray(info.std)
    out = np.full((oh, ow, info.channels), zp, dtype=dtype)
    out[dt:dt + dh, dl:dl + dw] = quantize(x.astype(np.float32), scale, zp, dtype)
    return out


@pytest.mark.parametrize("full_range", [False, True])
@pytest.mark.parametrize("content", ["photo", "random"])
@pytest.mark.parametrize("hw", [(720, 1280), (481, 643), (480, 640), (101, 77)])
def test_yuv420_matches_float_model_within_one_step(hw, content, full_range):
    """Against an independent float model of the yuv420 semantics: within 1 step everywhere, and off only within
    0.1 step of a rounding boundary."""
    h, w = hw
    rng = np.random.default_rng(h + w + full_range)
    rgb = photo(h, w, "dahlia_flower.jpg") if content == "photo" else rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame = make_frame("yuv420", h, w, rng, pad=6, content=rgb, full_range=full_range)
    for info, scale, zp, dtype in SEM_MODELS:
        plan = plan_for(frame, info, scale, zp, dtype)
        fused = pp.preprocess(frame, info, scale, zp, dtype) if NATIVE else pp.preprocess_numpy(frame, plan)
        ref = float_yuv_model(frame, info, scale, zp, dtype)
        d = np.abs(fused.astype(int) - ref.astype(int))
        assert d.max() <= 1, f"{info}: max difference {d.max()} steps at {np.argwhere(d == d.max())[:3]}"
        assert d.mean() < 0.05, f"{info}: mean difference {d.mean():.3f}"


@pytest.mark.parametrize("hw", [(480, 640), (720, 1280)])
@pytest.mark.parametrize("name", ["astronaut.jpg", "coffee_cup.jpg", "rocket_launch.jpg"])
def test_yuv420_close_to_to_rgb_float_path(name, hw):
    """Against Frame.to_rgb() + prepare + quantize (frame sizes whose crops are even, so the geometry is the same).
    The two treat chroma differently: to_rgb() replicates each chroma sample over 2×2 pixels and rounds RGB to
    uint8 before the luma-resolution box filter; the fused kernel filters the half-resolution chroma plane with
    its own (smaller, or no) box and keeps 8 fraction bits. Measured on the demo photos: luma-only models within
    2 steps (99.9% within 1); 224×224 colour models mean |difference| ~0.35 step, 95% within 1 step, a few
    values up to ~20 steps at sharp colour edges; the 28×28 model (box 17 for luma, 8 for chroma) mean ~0.85
    step. Asserted with margin below."""
    h, w = hw
    rng = np.random.default_rng(21)
    frame = make_frame("yuv420", h, w, rng, pad=0, content=photo(h, w, name))
    for info, scale, zp, dtype in SEM_MODELS:
        plan = plan_for(frame, info, scale, zp, dtype)
        assert plan.crop == pp.plan_preprocess("rgb", w, h, None, info, scale, zp, dtype).crop
        fused = pp.preprocess(frame, info, scale, zp, dtype) if NATIVE else pp.preprocess_numpy(frame, plan)
        ref = quantize(prepare(frame.to_rgb(), info), scale, zp, dtype)
        dt, dl, dh, dw = plan.dest  # prepare() fills a BGR model's letterbox bars with the reversed mean
        d = np.abs(fused.astype(int) - ref.astype(int))[dt:dt + dh, dl:dl + dw]
        within, mean = (d <= 1).mean(), d.mean()
        if info.channels == 1:
            assert d.max() <= 2 and within >= 0.999, f"{info.input_size}: max {d.max()}, within 1: {within:.4f}"
        elif info.input_size == (28, 28):
            assert mean <= 1.0 and within >= 0.78, f"{name} 28x28: mean {mean:.3f}, within 1: {within:.4f}"
        else:
            assert mean <= 0.5 and within >= 0.93 and d.max() <= 30, (
                f"{name} {info.input_size}: mean {mean:.3f}, within 1: {within:.4f}, max {d.max()}")


# --------------------------------------------------------------------------------------------------------------
# bad input: ValueError, never a crash

@needs_native
def test_bad_arguments_are_value_errors():
    rng = np.random.default_rng(12)
    frame = make_frame("rgb", 48, 64, rng)
    plan = plan_for(frame, model((16, 16)))
    good = np.empty((16, 16, 3), np.int8)

    def raises(match, f, *a, **k):
        with pytest.raises(ValueError, match=match):
            f(*a, **k)

    raises("dtype uint8, the plan writes int8", pp.preprocess_into, frame, plan, np.empty((16, 16, 3), np.uint8))
    raises(r"shape \(16, 16, 1\), expected \(16, 16, 3\)", pp.preprocess_into, frame, plan, np.empty((16, 16, 1), np.int8))
    raises("C-contiguous", pp.preprocess_into, frame, plan, np.empty((16, 32, 3), np.int8)[:, ::2])
    ro = np.empty((16, 16, 3), np.int8)
    ro.flags.writeable = False
    raises("read-only", pp.preprocess_into, frame, plan, ro)
    raises("numpy array", pp.preprocess_into, frame, plan, bytearray(768))
    raises("unknown kernel variant 'bogus'", pp.preprocess_into, frame, plan, good, variant="bogus")
    other = [v for v in variants.ALL_VARIANTS if v not in variants.compiled()]
    raises("not built for this architecture", pp.preprocess_into, frame, plan, good, variant=other[0])
    raises(r"rows \[5, 40\) not inside", pp.preprocess_into, frame, plan, good, rows=(5, 40))
    raises("threads must be 1..64", pp.preprocess_into, frame, plan, good, threads=0)
    # frames that do not match the plan
    raises("does not match the plan", pp.preprocess_into, make_frame("rgb", 48, 63, rng), plan, good)
    raises("does not match the plan", pp.preprocess_into, make_frame("rgb", 48, 64, rng, pad=2), plan, good)
    raises("does not match the plan", pp.preprocess_into, make_frame("bgr", 48, 64, rng), plan, good)
    with pytest.raises(ValueError, match="unknown pixel format"):
        Frame(frame.data, "nv12", 64, 48)
    raises("unknown frame format 'nv12'", pp.plan_preprocess, "nv12", 64, 48, None, model((16, 16)), 0.1, 0)
    odd = Frame(frame.data, "rgb", 64, 48)
    odd.format = "nv12"  # mutated after construction
    raises("unknown frame format 'nv12'", pp.preprocess_into, odd, plan, good)
    # buffers too small, and a reversed view
    short = Frame(frame.data[:47], "rgb", 64, 48)
    raises("does not match the plan|too small", pp.preprocess_into, short, plan, good)
    yuv = make_frame("yuv420", 48, 64, rng)
    yplan = plan_for(yuv, model((16, 16)))
    raises("too small", pp.preprocess_into, Frame(yuv.data[:-1], "yuv420", 64, 48, stride=64), yplan, good)
    raises("too small", pp.preprocess_numpy, Frame(yuv.data[:-1], "yuv420", 64, 48, stride=64), yplan)
    raises("contiguous", pp.preprocess_into, Frame(np.repeat(yuv.data, 2)[::2], "yuv420", 64, 48, stride=64), yplan,
           good)
    flipped = Frame(np.ascontiguousarray(frame.data)[:, :, ::-1], "rgb", 64, 48)
    raises("negative stride", pp.preprocess_into, flipped, plan, good)
    raises("frame data must be a numpy uint8 array", pp.preprocess_into,
           Frame(frame.data.astype(np.int16), "rgb", 64, 48), plan, good)
    # bad plan arguments
    raises("zero point 200 outside", pp.plan_preprocess, "rgb", 64, 48, None, model((16, 16)), 0.1, 200, np.int8)
    raises("dtype must be int8 or uint8", pp.plan_preprocess, "rgb", 64, 48, None, model((16, 16)), 0.1, 0, np.int16)
    raises("stride 100 is less than", pp.plan_preprocess, "rgb", 64, 48, 100, model((16, 16)), 0.1, 0)
    raises("odd width needs stride", pp.plan_preprocess, "yuv420", 63, 48, 63, model((16, 16)), 0.1, 0)
    raises("too small for the fused kernel", pp.plan_preprocess, "rgb", 64, 48, None,
           model((16, 16), mean=(0,) * 3, std=(1,) * 3), 1e-4, 0)
    raises("does not say its input size", pp.plan_preprocess, "rgb", 64, 48, None, ModelInfo(), 0.1, 0)


@needs_native
def test_c_checks_everything_itself():
    """The C layer does not trust Python: raw buffers of the wrong size or layout, and broken plans."""
    rng = np.random.default_rng(13)
    frame = make_frame("bgrx", 40, 50, rng)
    plan = plan_for(frame, model((10, 10)))
    c = plan.native()
    assert c.src_size == 40 * 50 * 4
    out = np.empty((10, 10, 3), np.int8)
    assert c.run(frame.data, out, "ref") == "ev_preprocess_ref"
    with pytest.raises(ValueError, match="too small"):
        c.run(frame.data.reshape(-1)[:-1], out, "ref")
    with pytest.raises(ValueError, match="does not match the plan"):
        c.run(frame.data[:, :, :3], out, "ref")
    with pytest.raises(ValueError, match="does not match the plan"):
        c.run(frame.data[:20], out, "ref")
    with pytest.raises(ValueError, match="holds 299 bytes"):
        c.run(frame.data, np.empty(299, np.int8), "ref")
    with pytest.raises(ValueError, match="item format"):
        c.run(frame.data, np.empty((10, 10, 3), np.uint8), "ref")
    with pytest.raises(ValueError, match="item format"):
        c.run(frame.data, np.empty((10, 10), np.int16), "ref")
    with pytest.raises(ValueError, match="overlaps"):
        c.run(frame.data, frame.data.reshape(-1)[:300].view(np.int8), "ref")
    with pytest.raises(ValueError, match="out must be a writable"):
        c.run(frame.data, b"x" * 300, "ref")
    with pytest.raises(ValueError, match="frame data must be bytes"):
        c.run(frame.data.view(np.uint32), out, "ref")
    fields, planes = plan.fields()
    ext = variants.extension()
    for key, value, match in [("x1", None, "x1\\[9\\] = \\d+ outside"), ("f", 3, "recip"), ("vh", 41, "does not fit"),
                              ("chan_off", [0, 0, 1], "read the same byte"), ("pixel_stride", 2, "pixel stride"),
                              ("wy", [0] * 9 + [2049], "outside \\[0, 2048\\]"), ("row_stride", 10, "row stride")]:
        bad = [dict(planes[0])]
        bad[0][key] = value if value is not None else planes[0]["x1"][:9] + [planes[0]["vw"]]
        with pytest.raises(ValueError, match=match):
            ext.preprocess_plan(fields, bad)
    for key, value, match in [("dt", 5, "destination rectangle"), ("mode", 3, "needs 3 planes"),
                              ("qmin", -127, "neither int8 nor uint8"), ("fill", 300, "fill 300"),
                              ("qshift", 40, "qshift")]:
        with pytest.raises(ValueError, match=match):
            ext.preprocess_plan({**fields, key: value}, planes)
    with pytest.raises(ValueError, match="missing field out_w"):
        ext.preprocess_plan({k: v for k, v in fields.items() if k != "out_w"}, planes)
    with pytest.raises(ValueError, match="has 9 entries, expected 10"):
        ext.preprocess_plan(fields, [{**planes[0], "x0": planes[0]["x0"][:9]}])


# --------------------------------------------------------------------------------------------------------------
# the SIMD variant runs

def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags |= set(line.split(":", 1)[1].split())
    return flags


def _expected_best() -> str | None:
    """The variant detection must pick on this machine: EDGEVISION_EXPECT_VARIANT when set (the emulated-core
    runs of tests/test_native_arm64.py set it), else from /proc/cpuinfo (independently of cpu.c)."""
    if os.environ.get("EDGEVISION_EXPECT_VARIANT"):
        return os.environ["EDGEVISION_EXPECT_VARIANT"]
    m, flags = platform.machine().lower(), _cpu_flags()
    if m in ("x86_64", "amd64"):
        if {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags:
            return "avx512vnni"
        return "avx2" if {"avx2", "avx"} <= flags else "sse41" if "sse4_1" in flags else "ref"
    if m in ("aarch64", "arm64"):
        return "dotprod" if "asimddp" in flags else "neon" if "asimd" in flags else "ref"
    if m.startswith("armv7") or m.startswith("armv8"):
        return "neon" if "neon" in flags else "ref"
    return None


def _preprocess_fn(variant: str) -> str:
    """The preprocessing function a variant runs: its own, or its fallback's (dotprod: neon; avx512vnni: avx2)."""
    return f"ev_preprocess_{ {'dotprod': 'neon', 'avx512vnni': 'avx2'}.get(variant, variant)}"


def test_the_simd_variant_this_cpu_supports_runs(monkeypatch):
    """Fails (does not skip) when the CPU has a SIMD variant and the extension is missing or runs another
    function."""
    best = _expected_best()
    if best is None or best == "ref":
        pytest.skip(f"no SIMD variant for {platform.machine()}")
    assert NATIVE, f"this CPU supports {best}, but edgevision._native is not built: {variants.describe()}"
    monkeypatch.delenv(variants.ENV_VAR, raising=False)
    expected_fn = _preprocess_fn(best)
    rng = np.random.default_rng(14)
    frame = make_frame("rgb", 72, 96, rng)
    plan = plan_for(frame, model((24, 24)))
    assert pp.resolve_variant() == best
    out, name = run_c(frame, plan, None)
    assert name == expected_fn, f"detection ran {name}, expected {expected_fn}"
    ref, _ = run_c(frame, plan, "ref")
    np.testing.assert_array_equal(out, ref)
    # every supported variant runs its own function (or its documented fallback)
    for v in supported_variants():
        _, name = run_c(frame, plan, v)
        assert name == _preprocess_fn(v)
    # EDGEVISION_KERNELS chooses, an explicit argument wins over it
    monkeypatch.setenv(variants.ENV_VAR, "ref")
    assert run_c(frame, plan, None)[1] == "ev_preprocess_ref"
    assert run_c(frame, plan, best)[1] == expected_fn
    monkeypatch.setenv(variants.ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match="EDGEVISION_KERNELS='nonsense'"):
        run_c(frame, plan, None)


@pytest.mark.skipif(shutil.which("gcc") is None or platform.machine() not in ("x86_64", "aarch64"),
                    reason="needs gcc on x86_64 or aarch64")
def test_c_driver_with_guard_pages(tmp_path):
    """csrc/tests/test_preprocess.c built for this machine: every variant vs ref, frames and outputs ending at a
    PROT_NONE page (an out-of-bounds read or write faults). The ARM builds of the same driver run under qemu in
    tools/test_native_arm.sh."""
    best = _expected_best()
    env = {**os.environ, "EV_ARM_TEST_DIR": str(tmp_path),
           "EV_EXPECT": _preprocess_fn(best)}
    r = subprocess.run(["bash", str(ROOT / "tools" / "test_native_arm.sh"), "--native", "--cases", "120"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "0 failed" in r.stdout
