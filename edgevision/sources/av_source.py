"""USB/V4L2 cameras, video files and network streams (RTSP, HTTP) through one decoder: PyAV (FFmpeg).

PyAV ships its own FFmpeg in its wheels (x86_64 and aarch64 Linux, macOS, Windows; none for 32-bit ARM, where
Debian's ``python3-av`` is the way). It is imported when an :class:`AVSource` is made, never before.
"""
from __future__ import annotations

import collections
import os
import re
import sys
import threading
import time
from typing import Deque, Dict, Optional, Union

from ..frames import Frame
from .base import CorruptFrameError, EndOfStream, Source, SourceError

INSTALL_HINT = (
    "pip install av  (or pip install 'edgevision[video]'; on 32-bit Raspberry Pi OS, which has no PyAV wheel: "
    "sudo apt install python3-av)"
)


def _import_av():
    try:
        import av
    except ImportError as e:
        raise ImportError(f"cameras, video files and streams need PyAV: {INSTALL_HINT}") from e
    return av


class AVSource(Source):
    """Frames in ``rgb`` (converted by FFmpeg) from ``url_or_device``:

    - an integer N or ``/dev/videoN``: a V4L2 camera (Linux);
    - ``rtsp://``, ``rtsps://``, ``http(s)://``: a network stream; RTSP goes over TCP unless
      ``options={"rtsp_transport": "udp"}``;
    - anything else: a video file.

    ``options`` are FFmpeg's, passed to the demuxer (e.g. ``{"video_size": "640x480", "framerate": "30",
    "input_format": "mjpeg"}`` for a camera). ``t_capture`` is ``time.monotonic()`` when the frame was decoded.
    A camera that goes away or a stream that drops raises :class:`SourceError`; the end of a file raises
    :class:`EndOfStream`, or starts it again if ``loop``. A packet that fails to decode raises
    :class:`CorruptFrameError` and the next ``read()`` goes on. ``realtime`` paces a file at its own frame rate
    (by the frames' timestamps) instead of as fast as ``read()`` is called. ``timeout`` (s) bounds opening and
    each wait for data from a camera or stream."""

    def __init__(
        self,
        url_or_device: Union[str, int],
        loop: bool = False,
        options: Optional[Dict[str, str]] = None,
        *,
        realtime: bool = False,
        timeout: float = 10.0,
    ):
        self.loop = loop
        self.realtime = realtime
        self.timeout = float(timeout)
        self.options = {str(k): str(v) for k, v in (options or {}).items()}
        target = url_or_device
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            target = f"/dev/video{int(target)}"
        if not isinstance(target, str) or not target:
            raise ValueError(f"AVSource needs a device, file path or URL, got {url_or_device!r}")
        self.target = target
        if re.match(r"/dev/video\d+$", target):
            self.kind = "camera"
        elif re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", target):
            self.kind = "stream"
        else:
            self.kind = "file"
            if not os.path.isfile(target):
                raise FileNotFoundError(f"video source: no such file: {target}")
        self.name = f"av:{_redact(target)}"
        self._av = None
        self._container = None
        self._stream = None
        self._packets = None
        self._pending: Deque = collections.deque()
        self._seq = 0
        self._frames_since_open = 0
        self._pace_anchor: Optional[tuple] = None  # (monotonic time, frame time) of the first paced frame
        self._stop = threading.Event()

    # -- opening ---------------------------------------------------------------------------------------------
    def _open_args(self) -> dict:
        kwargs: dict = {}
        opts: Dict[str, str] = {}
        if self.kind == "camera":
            if not sys.platform.startswith("linux"):
                raise SourceError(f"{self.target}: V4L2 cameras are Linux-only; on {sys.platform} pass a file or URL")
            kwargs["format"] = "v4l2"
        if self.target.lower().startswith(("rtsp://", "rtsps://")):
            opts["rtsp_transport"] = "tcp"  # UDP loses packets on Wi-Fi and smears frames
        opts.update(self.options)
        if opts:
            kwargs["options"] = opts
        if self.kind != "file":
            kwargs["timeout"] = (self.timeout, self.timeout)
        return kwargs

    def open(self) -> None:
        if self._container is not None:
            return
        av = self._av = _import_av()
        if self.kind == "camera" and not os.path.exists(self.target):
            raise SourceError(f"camera {self.target} not found (unplugged, or another device number?)")
        try:
            container = av.open(self.target, **self._open_args())
        except (av.FFmpegError, OSError) as e:
            raise SourceError(f"cannot open {self.name}: {e}") from e
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.name} has no video stream")
        self._container = container
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame + slice threads: decoding keeps up on a Pi
        self._packets = container.demux(self._stream)
        self._pending.clear()
        self._frames_since_open = 0
        self._pace_anchor = None
        self._stop.clear()

    # -- reading ---------------------------------------------------------------------------------------------
    def _at_end(self) -> None:
        if self.kind != "file":
            raise SourceError(f"{self.name}: stream ended")
        if not self.loop or self._frames_since_open == 0:
            raise EndOfStream(f"{self.name}: end of file")
        try:
            self._container.seek(0)  # also flushes the decoder
        except self._av.FFmpegError as e:
            raise SourceError(f"{self.name}: cannot seek to the start to loop: {e}") from e
        self._packets = self._container.demux(self._stream)
        self._pace_anchor = None

    def _next_decoded(self):
        av = self._av
        while not self._pending:
            try:
                packet = next(self._packets)
            except (StopIteration, av.error.EOFError):
                self._at_end()
                continue
            except av.InvalidDataError as e:
                # The demuxer generator is finished after raising: make a new one from the current position.
                self._packets = self._container.demux(self._stream)
                if self.kind == "file":
                    raise CorruptFrameError(f"{self.name}: damaged data: {e}") from e
                raise SourceError(f"{self.name}: {e}") from e
            except (av.FFmpegError, OSError) as e:
                raise SourceError(f"{self.name}: read failed: {e}") from e
            try:
                self._pending.extend(packet.decode())
            except (av.InvalidDataError, av.FFmpegError) as e:
                raise CorruptFrameError(f"{self.name}: cannot decode a packet: {e}") from e
        return self._pending.popleft()

    def _pace(self, frame) -> bool:
        t = frame.time
        if t is None:
            return True
        now = time.monotonic()
        if self._pace_anchor is None:
            self._pace_anchor = (now, t)
            return True
        delay = self._pace_anchor[0] + (t - self._pace_anchor[1]) - now
        return not (delay > 0 and self._stop.wait(delay))

    def read(self) -> Frame:
        if self._container is None:
            self.open()
        vf = self._next_decoded()
        if self.realtime and self.kind == "file" and not self._pace(vf):
            raise EndOfStream(f"{self.name}: source closed")
        rgb = vf.to_ndarray(format="rgb24")
        frame = Frame(
            data=rgb, format="rgb", width=rgb.shape[1], height=rgb.shape[0], seq=self._seq,
            t_capture=time.monotonic(), source=self.name,
        )
        self._seq += 1
        self._frames_since_open += 1
        return frame

    def close(self) -> None:
        self._stop.set()
        container, self._container = self._container, None
        self._packets = None
        self._pending.clear()
        if container is not None:
            try:
                container.close()
            except Exception:  # closing a container whose device vanished may fail; nothing left to free
                pass


def _redact(url: str) -> str:
    """The URL without a password, for names and log lines (rtsp://user:secret@cam/ → rtsp://user:***@cam/)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/:@]*):[^/@]*@", r"\1:***@", url)
