"""A stand-in for picamera2 + libcamera that reproduces the arrays the real ones return, for testing
edgevision's Picamera2 adapter without a Raspberry Pi.

What is reproduced (read from picamera2's request.py/picamera2.py and the Raspberry Pi kernel drivers):

- Row strides as the ISP drivers align them (bytesperline): VC4 ``bcm2835-isp`` pads YUV420 to 64 bytes,
  RGB888/BGR888 to 32, XRGB8888/XBGR8888 to 64; PiSP ``pisp_be`` pads YUV420 to 128 (so U/V rows are
  64-aligned), RGB888 to 32, XRGB8888 to 64. ``stride_align`` overrides it for odd-stride tests.
- ``CompletedRequest.make_array``: the buffer is reshaped like picamera2's ``_make_array_shared``: RGB888 and
  XRGB8888 rows lose their padding (H×W×3 / H×W×4, then copied contiguous); YUV420 keeps it, as one
  (H·3/2)×stride array (Y rows, then U then V at stride/2 per row). Padding bytes hold 0xA5, so an adapter
  that reads them shows it.
- Byte order: ``RGB888`` is B,G,R in memory; ``BGR888`` R,G,B; ``XRGB8888`` B,G,R,255; ``XBGR8888`` R,G,B,255.
- YUV encoding by the configured colour space: Smpte170m (BT.601 limited), Rec709 (BT.709 limited), Sycc
  (BT.601 full); 4:2:0 chroma is the mean of each 2×2 block.
- Checks the real ``configure`` makes: even sizes, lores no larger than main, lores must be YUV on VC4.
- Timing: after ``start()`` the sensor delivers frame k at ``t0 + k/fps``; ``capture_request`` waits for the
  next frame not yet returned (skipping to the newest if the caller was slow); metadata carries
  ``SensorTimestamp`` (ns, CLOCK_MONOTONIC) and ``FrameDuration`` (µs).
- Buffers: a request not released keeps its buffer; with all ``buffer_count`` held the real camera stalls —
  here ``capture_request`` raises so a leak fails the test.

``install(monkeypatch, ...)`` puts the fake modules in ``sys.modules``; the scene is a function (w, h) → H×W×3
RGB uint8 of real-world colours, rendered at each stream's size (the ISP scales the whole field of view).
"""
from __future__ import annotations

import enum
import sys
import time
import types
from typing import Callable, List, Optional

import numpy as np

VC4_ALIGN = {"YUV420": 64, "YVU420": 64, "RGB888": 32, "BGR888": 32, "XRGB8888": 64, "XBGR8888": 64}
PISP_ALIGN = {"YUV420": 128, "YVU420": 128, "RGB888": 32, "BGR888": 32, "XRGB8888": 64, "XBGR8888": 64}
BYTES_PER_PIXEL = {"RGB888": 3, "BGR888": 3, "XRGB8888": 4, "XBGR8888": 4, "YUV420": 1, "YVU420": 1}
PAD = 0xA5


def split_scene(w: int, h: int) -> np.ndarray:
    """Left half pure red; right half green on top, blue below (edges on even pixels, so 4:2:0 chroma
    blocks never straddle two colours)."""
    img = np.zeros((h, w, 3), np.uint8)
    half_w, half_h = (w // 2) & ~1, (h // 2) & ~1
    img[:, :half_w] = (255, 0, 0)
    img[:half_h, half_w:] = (0, 255, 0)
    img[half_h:, half_w:] = (0, 0, 255)
    return img


# --- libcamera ----------------------------------------------------------------------------------------------
class _Range(enum.Enum):
    Full = 0
    Limited = 1


class _YcbcrEncoding(enum.Enum):
    Null = 0
    Rec601 = 1
    Rec709 = 2


class ColorSpace:
    Range = _Range
    YcbcrEncoding = _YcbcrEncoding

    def __init__(self, name: str, encoding: _YcbcrEncoding, rng: _Range):
        self.name, self.ycbcrEncoding, self.range = name, encoding, rng

    @staticmethod
    def Sycc():
        return ColorSpace("sYCC", _YcbcrEncoding.Rec601, _Range.Full)

    @staticmethod
    def Smpte170m():
        return ColorSpace("SMPTE170M", _YcbcrEncoding.Rec601, _Range.Limited)

    @staticmethod
    def Rec709():
        return ColorSpace("Rec709", _YcbcrEncoding.Rec709, _Range.Limited)

    def __eq__(self, other):
        return isinstance(other, ColorSpace) and (self.ycbcrEncoding, self.range) == (other.ycbcrEncoding, other.range)

    def __repr__(self):
        return f"<libcamera.ColorSpace '{self.name}'>"


class Transform:
    def __init__(self, hflip: int = 0, vflip: int = 0):
        self.hflip, self.vflip = hflip, vflip


def rgb_to_i420(rgb: np.ndarray, stride: int, colour_space: ColorSpace) -> np.ndarray:
    """RGB → one padded I420 buffer, (H·3/2)×stride, as the ISP writes it."""
    h, w, _ = rgb.shape
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    if colour_space.ycbcrEncoding is _YcbcrEncoding.Rec709:
        kr, kb = 0.2126, 0.0722
    else:
        kr, kb = 0.299, 0.114
    kg = 1 - kr - kb
    y = kr * r + kg * g + kb * b
    cb = (b - y) / (2 * (1 - kb))
    cr = (r - y) / (2 * (1 - kr))
    if colour_space.range is _Range.Limited:
        y, cb, cr = 16 + y * 219 / 255, cb * 224 / 255, cr * 224 / 255
    cb, cr = cb + 128, cr + 128

    def sub(c):  # mean of each 2×2 block
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    buf = np.full((h * 3 // 2, stride), PAD, np.uint8)
    buf[:h, :w] = np.clip(np.rint(y), 0, 255)
    chroma = buf[h:].reshape(-1)  # U then V, each (h/2) rows of stride/2
    cs = stride // 2
    u_plane = chroma[: cs * h // 2].reshape(h // 2, cs)
    v_plane = chroma[cs * h // 2:].reshape(h // 2, cs)
    u_plane[:, : w // 2] = np.clip(np.rint(sub(cb)), 0, 255)
    v_plane[:, : w // 2] = np.clip(np.rint(sub(cr)), 0, 255)
    return buf


# --- picamera2 ----------------------------------------------------------------------------------------------
class Platform(enum.Enum):
    VC4 = 0
    PISP = 1


class CompletedRequest:
    def __init__(self, cam: "Picamera2", buffers: dict, metadata: dict):
        self.picam2 = cam
        self.config = {k: dict(v) for k, v in cam.camera_config.items() if isinstance(v, dict)}
        self._buffers = buffers  # name → 1-D uint8 "dmabuf" of stride × rows bytes
        self._metadata = metadata
        self.ref_count = 1

    def make_buffer(self, name: str) -> np.ndarray:
        return self._buffers[name].copy()

    def make_array(self, name: str) -> np.ndarray:
        if self.ref_count <= 0:
            raise RuntimeError("CompletedRequest used after release")
        if name not in self._buffers:
            raise RuntimeError(f"Stream {name!r} is not defined")
        cfg = self.config[name]
        fmt, (w, h), stride = cfg["format"], cfg["size"], cfg["stride"]
        array = self._buffers[name]
        if fmt in ("RGB888", "BGR888", "XRGB8888", "XBGR8888"):
            bpp = BYTES_PER_PIXEL[fmt]
            image = array.reshape(h, stride)[:, : w * bpp].reshape(h, w, bpp)
        elif fmt in ("YUV420", "YVU420"):
            image = array.reshape(h * 3 // 2, stride)
        else:
            raise RuntimeError("Format " + fmt + " not supported")
        return np.copy(image) if image.data.c_contiguous else np.ascontiguousarray(image)

    def get_metadata(self) -> dict:
        return dict(self._metadata)

    def release(self) -> None:
        self.ref_count -= 1
        if self.ref_count < 0:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")
        if self.ref_count == 0:
            self.picam2._held -= 1


class Picamera2:
    platform = Platform.VC4
    _cameras: List[dict] = []
    _scene: Callable[[int, int], np.ndarray] = staticmethod(split_scene)
    _stride_align: Optional[int] = None
    _open: set = set()
    instances: List["Picamera2"] = []
    fail_after: Optional[int] = None  # raise from capture_request after this many frames (unplugged camera)

    @classmethod
    def global_camera_info(cls) -> List[dict]:  # a staticmethod in picamera2; called the same way
        return [dict(c) for c in cls._cameras]

    def __init__(self, camera_num: int = 0, tuning=None):
        if camera_num >= len(self._cameras):
            raise IndexError("list index out of range")
        if camera_num in self._open:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        self._open.add(camera_num)
        self.camera_idx = camera_num
        self.camera = object()
        self.camera_config: Optional[dict] = None
        self.started = False
        self._held = 0
        self._next_k = 0
        self._t0 = 0.0
        self._captured = 0
        self.closed = 0
        type(self).instances.append(self)

    @property
    def camera_properties(self) -> dict:
        info = self._cameras[self.camera_idx]
        return {
            "Model": info["Model"], "Location": info.get("Location", 2), "Rotation": info.get("Rotation", 0),
            "PixelArraySize": (4608, 2592), "ColorFilterArrangement": 0, "UnitCellSize": (1400, 1400),
        }

    def create_video_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,
                                   buffer_count=6, controls={}, display="main", encode="main", queue=True,
                                   sensor={}, use_case="video") -> dict:
        def stream(defaults, updates):
            if updates is None:
                return None
            for key in updates:
                if key not in ("format", "size", "stride", "preserve_ar"):
                    raise ValueError(f"Bad key {key!r}: valid stream configuration keys are "
                                     "('format', 'size', 'stride', 'preserve_ar')")
            cfg = dict(defaults, **updates)
            w, h = cfg["size"]
            cfg["size"] = (w - w % 2, h - h % 2)  # align_stream(optimal=False)
            return cfg

        main_cfg = stream({"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True}, main)
        lores_cfg = stream({"format": "YUV420", "size": main_cfg["size"], "preserve_ar": False}, lores)
        if colour_space is None:
            w, h = main_cfg["size"]
            colour_space = ColorSpace.Smpte170m() if w < 1280 or h < 720 else ColorSpace.Rec709()
        config = {"use_case": use_case, "transform": transform or Transform(), "colour_space": colour_space,
                  "buffer_count": buffer_count, "queue": queue, "main": main_cfg, "lores": lores_cfg,
                  "raw": None, "controls": dict(controls), "sensor": None}
        for role, name in (("display", display), ("encode", encode)):
            if name is not None and config.get(name) is None:
                raise RuntimeError(f"{role.capitalize()} stream {name} was not defined")
            config[role] = name
        return config

    def configure(self, config: dict) -> None:
        for name in ("main", "lores"):
            cfg = config.get(name)
            if cfg is None:
                continue
            w, h = cfg["size"]
            if w % 2 or h % 2:
                raise RuntimeError("width and height should be even")
            if cfg["format"] not in BYTES_PER_PIXEL:
                raise RuntimeError(f"Format {cfg['format']} not supported by the fake")
        if config.get("lores") is not None:
            (mw, mh), (lw, lh) = config["main"]["size"], config["lores"]["size"]
            if lw > mw or lh > mh:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if self.platform == Platform.VC4 and config["lores"]["format"] not in ("YUV420", "YVU420"):
                raise RuntimeError("lores stream must be YUV")
        aligns = PISP_ALIGN if self.platform == Platform.PISP else VC4_ALIGN
        for name in ("main", "lores"):
            cfg = config.get(name)
            if cfg is None:
                continue
            align = self._stride_align or aligns[cfg["format"]]
            row = cfg["size"][0] * BYTES_PER_PIXEL[cfg["format"]]
            cfg["stride"] = -(-row // align) * align
            rows = cfg["size"][1] * 3 // 2 if cfg["format"] in ("YUV420", "YVU420") else cfg["size"][1]
            cfg["framesize"] = cfg["stride"] * rows
        self.camera_config = config
        fps = config.get("controls", {}).get("FrameRate", 30.0)
        self.frame_duration_us = int(round(1e6 / fps))

    def start(self) -> None:
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True
        self._t0 = time.monotonic()
        self._next_k = 0

    def capture_request(self) -> CompletedRequest:
        if not self.started:
            raise RuntimeError("Camera not started")
        if self.fail_after is not None and self._captured >= self.fail_after:
            raise RuntimeError("Camera frontend has timed out!")
        if self._held >= self.camera_config["buffer_count"]:
            raise RuntimeError(f"all {self._held} buffers are held by unreleased requests: the camera would stall")
        period = self.frame_duration_us / 1e6
        k = max(self._next_k, int((time.monotonic() - self._t0) / period))
        due = self._t0 + k * period
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_k = k + 1
        self._captured += 1
        buffers = {}
        for name in ("main", "lores"):
            cfg = self.camera_config.get(name)
            if cfg is not None:
                buffers[name] = self._render(cfg)
        self._held += 1
        metadata = {"SensorTimestamp": int(due * 1e9), "FrameDuration": self.frame_duration_us,
                    "ExposureTime": 10000, "AnalogueGain": 1.0}
        return CompletedRequest(self, buffers, metadata)

    def _render(self, cfg: dict) -> np.ndarray:
        fmt, (w, h), stride = cfg["format"], cfg["size"], cfg["stride"]
        rgb = np.asarray(type(self)._scene(w, h), np.uint8)
        assert rgb.shape == (h, w, 3)
        if fmt in ("YUV420", "YVU420"):
            buf = rgb_to_i420(rgb, stride, self.camera_config["colour_space"])
            if fmt == "YVU420":
                raise RuntimeError("YVU420 not rendered by the fake")
            return buf.reshape(-1)
        order = {"RGB888": [2, 1, 0], "BGR888": [0, 1, 2], "XRGB8888": [2, 1, 0], "XBGR8888": [0, 1, 2]}[fmt]
        pixels = rgb[..., order]
        if BYTES_PER_PIXEL[fmt] == 4:
            pixels = np.concatenate([pixels, np.full((h, w, 1), 255, np.uint8)], axis=2)
        buf = np.full((h, stride), PAD, np.uint8)
        buf[:, : w * BYTES_PER_PIXEL[fmt]] = pixels.reshape(h, -1)
        return buf.reshape(-1)

    def capture_array(self, name: str = "main") -> np.ndarray:
        request = self.capture_request()
        try:
            return request.make_array(name)
        finally:
            request.release()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.started = False
        self._open.discard(self.camera_idx)
        self.closed += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def install(monkeypatch, platform: str = "vc4", cameras: int = 1, model: str = "imx708",
            scene: Callable[[int, int], np.ndarray] = split_scene, stride_align: Optional[int] = None):
    """Make ``import picamera2`` / ``import libcamera`` find the fakes; returns the fake Picamera2 class (a
    fresh subclass, so its settings do not leak between tests)."""
    cls = type("Picamera2", (Picamera2,), {
        "platform": Platform.PISP if platform == "pisp" else Platform.VC4,
        "_cameras": [{"Model": model, "Location": 2, "Rotation": 0, "Id": f"/base/axi/i2c@{i}/{model}@1a", "Num": i}
                     for i in range(cameras)],
        "_scene": staticmethod(scene),
        "_stride_align": stride_align,
        "_open": set(),
        "instances": [],
        "fail_after": None,
    })
    lib = types.ModuleType("libcamera")
    lib.ColorSpace, lib.Transform = ColorSpace, Transform
    pc2 = types.ModuleType("picamera2")
    pc2.Picamera2 = cls
    pc2.CompletedRequest = CompletedRequest
    plat = types.ModuleType("picamera2.platform")
    plat.Platform = Platform
    plat.get_platform = lambda: cls.platform
    pc2.platform = plat
    monkeypatch.setitem(sys.modules, "libcamera", lib)
    monkeypatch.setitem(sys.modules, "picamera2", pc2)
    monkeypatch.setitem(sys.modules, "picamera2.platform", plat)
    return cls
