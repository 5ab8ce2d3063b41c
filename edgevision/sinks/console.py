"""One live status line: label, score, FPS and latency p50/p95.

On a terminal the line is rewritten in place (``\\r``) at most ``max_hz`` times a second; to a pipe or file it
is printed as ordinary lines, at most one a second, so logs stay readable."""
from __future__ import annotations

import collections
import sys
import time
from typing import IO, Optional

from ..frames import Frame, Result
from .base import Sink


class ConsoleSink(Sink):
    name = "console"

    def __init__(self, stream: Optional[IO[str]] = None, *, window: int = 100, interval: Optional[float] = None,
                 max_hz: float = 10.0):
        self.stream = stream if stream is not None else sys.stdout
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = interval if interval is not None else (1.0 / max_hz if self.tty else 1.0)
        self._t_done: collections.deque = collections.deque(maxlen=window)
        self._latency: collections.deque = collections.deque(maxlen=window)
        self._last_print = float("-inf")
        self._width = 0
        self._pending: Optional[str] = None
        self._closed = False

    def format(self, result: Result) -> str:
        t, lat = self._t_done, sorted(self._latency)
        fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) >= 2 and t[-1] > t[0] else 0.0
        p50 = lat[len(lat) // 2] if lat else 0.0
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else 0.0
        label = f"{result.label} {result.score:.2f}" if result.label is not None else "-"
        drop = f"  dropped {result.dropped}" if result.dropped else ""
        return f"{label:40.40s}  {fps:5.1f} fps  latency p50 {p50:6.1f} ms  p95 {p95:6.1f} ms{drop}"

    def publish(self, result: Result, frame: Optional[Frame]) -> None:
        if self._closed:
            return
        self._t_done.append(result.t_done)
        self._latency.append(result.latency_ms)
        now = time.monotonic()
        line = self.format(result)
        if now - self._last_print < self.interval:
            self._pending = line
            return
        self._write(line)
        self._last_print = now

    def _write(self, line: str) -> None:
        self._pending = None
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._pending is not None and self.tty:
                self._write(self._pending)
            if self.tty and self._width:
                self.stream.write("\n")
            self.stream.flush()
        except (OSError, ValueError):  # stdout closed (a pipe whose reader left)
            pass
