"""Keep a source running through failures: reopen with exponential back-off, skip corrupt frames, loop."""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from ..frames import Frame
from .base import CorruptFrameError, EndOfStream, Source, SourceError

_log = logging.getLogger("edgevision.sources")

INITIAL_BACKOFF = 0.5  # seconds before the first reopen; doubles on each failure in a row, up to max_backoff


class RetryingSource(Source):
    """Wraps ``factory`` (a callable returning a new, unopened source) and reopens it when it fails.

    - ``SourceError`` from opening or reading (device gone, stream dropped): close it, log one line with the
      error and the delay, wait (0.5 s, doubling up to ``max_backoff``; back to 0.5 s after a good frame),
      make and open a new one. With ``retry=False`` the error is re-raised instead.
    - :class:`CorruptFrameError` from ``read()``: the frame is skipped and counted; the source stays open.
    - :class:`EndOfStream`: reopened at once if ``loop``, else re-raised.

    Counters: ``frames``, ``errors`` (every SourceError, corrupt frames included), ``skipped`` (corrupt
    frames), ``reopens``. ``close()`` may come from another thread: a back-off wait wakes at once and the
    blocked ``read()`` raises EndOfStream. ``sleep(delay) -> bool`` replaces the waits (tests); it returns
    True when interrupted."""

    def __init__(
        self,
        factory: Callable[[], Source],
        retry: bool = True,
        loop: bool = False,
        max_backoff: float = 10.0,
        log: logging.Logger = _log,
        sleep: Optional[Callable[[float], bool]] = None,
    ):
        if not callable(factory):
            raise TypeError(f"RetryingSource needs a callable returning a Source, got {factory!r}")
        if not max_backoff >= INITIAL_BACKOFF:
            raise ValueError(f"max_backoff must be >= {INITIAL_BACKOFF} s, got {max_backoff!r}")
        self.factory = factory
        self.retry = retry
        self.loop = loop
        self.max_backoff = float(max_backoff)
        self.log = log
        self._closed = threading.Event()
        self._sleep = sleep if sleep is not None else self._closed.wait
        self._lock = threading.Lock()
        self._src: Optional[Source] = None
        self._reading = False
        self._backoff = INITIAL_BACKOFF
        self._good_since_open = False
        self.frames = 0
        self.errors = 0
        self.skipped = 0
        self.reopens = 0
        self.name = "retry"

    # -- helpers ----------------------------------------------------------------------------------------------
    def _drop_source(self) -> None:
        src, self._src = self._src, None
        if src is not None:
            try:
                src.close()
            except Exception as e:  # a failing device may fail to close too; we are replacing it anyway
                self.log.debug("closing %s failed: %s", getattr(src, "name", src), e)

    def _wait_backoff(self, err: BaseException) -> None:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff)
        self.log.warning("source %s failed: %s; reopening in %.1f s", self.name, err, delay)
        if self._sleep(delay) or self._closed.is_set():
            raise EndOfStream("source closed")

    def _ensure_open(self) -> Source:
        while self._src is None:
            if self._closed.is_set():
                raise EndOfStream("source closed")
            try:
                src = self.factory()
                self.name = getattr(src, "name", None) or type(src).__name__
                src.open()
            except SourceError as e:
                self.errors += 1
                if not self.retry:
                    raise
                self._wait_backoff(e)
                continue
            with self._lock:
                if self._closed.is_set():
                    src.close()
                    raise EndOfStream("source closed")
                self._src = src
            self._good_since_open = False
        return self._src

    # -- Source interface ----------------------------------------------------------------------------------
    def open(self) -> None:
        self._closed.clear()
        self._ensure_open()

    def read(self) -> Frame:
        while True:
            src = self._ensure_open()
            with self._lock:
                self._reading = True
            try:
                frame = src.read()
            except CorruptFrameError as e:
                self.errors += 1
                if not self.retry:
                    raise
                self.skipped += 1
                self.log.warning("skipping a corrupt frame from %s: %s", self.name, e)
                continue
            except SourceError as e:
                self.errors += 1
                self._drop_source()
                if not self.retry:
                    raise
                self._wait_backoff(e)
                self.reopens += 1
                continue
            except EndOfStream:
                if self._closed.is_set() or not self.loop:
                    self._drop_source()
                    raise
                # A source that ends before giving a single frame would loop flat out: back off instead.
                empty = not self._good_since_open
                self._drop_source()
                if empty:
                    self._wait_backoff(EndOfStream("ended without a frame"))
                self.reopens += 1
                continue
            finally:
                with self._lock:
                    self._reading = False
                    closed_meanwhile = self._closed.is_set()
                if closed_meanwhile:
                    self._drop_source()
            if closed_meanwhile:
                raise EndOfStream("source closed")
            self._good_since_open = True
            self._backoff = INITIAL_BACKOFF
            self.frames += 1
            return frame

    def close(self) -> None:
        """Stop: wakes a back-off wait in another thread at once; the source is closed here, or by the reading
        thread when its current ``read()`` returns (closing a decoder under a reader is not safe)."""
        with self._lock:
            self._closed.set()
            reading = self._reading
        if not reading:
            self._drop_source()
