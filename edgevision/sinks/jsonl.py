"""One JSON object per result, one per line, flushed per line: a file another program can ``tail -f``, and
that stays complete (every line valid) however the process is stopped."""
from __future__ import annotations

import datetime
import json
import sys
import threading
from typing import IO, Optional

from ..frames import Frame, Result
from .base import Sink


def result_record(result: Result) -> dict:
    """The JSON-ready dict for one result: seq, time (ISO 8601 UTC, when the result was made), label, score,
    top (index, label, score), latency_ms, timings_ms, dropped, source."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "seq": int(result.seq),
        "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "label": result.label,
        "score": round(float(result.score), 4),
        "top": [{"index": int(p.index), "label": p.label, "score": round(float(p.score), 4)} for p in result.top],
        "latency_ms": round(float(result.latency_ms), 2),
        "timings_ms": {k: round(float(v), 3) for k, v in result.timings_ms.items()},
        "dropped": int(result.dropped),
        "source": result.extra.get("source", ""),
    }


class JsonlSink(Sink):
    """``JsonlSink("results.jsonl")`` appends to a file (created on open); ``JsonlSink("-")`` writes to stdout."""

    name = "jsonl"

    def __init__(self, path: str):
        if not isinstance(path, str) or not path:
            raise ValueError(f"jsonl sink: expected a file path or '-', got {path!r}")
        self.path = path
        self._fh: Optional[IO[str]] = None
        self._owns = path != "-"
        self._lock = threading.Lock()
        self._closed = False

    def open(self) -> None:
        with self._lock:
            if self._fh is None and not self._closed:
                # line-buffered text; we flush after every record anyway
                self._fh = open(self.path, "a", encoding="utf-8", buffering=1) if self._owns else sys.stdout

    def publish(self, result: Result, frame: Optional[Frame]) -> None:
        line = json.dumps(result_record(result), ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if self._closed:
                return
            if self._fh is None:
                self._fh = open(self.path, "a", encoding="utf-8", buffering=1) if self._owns else sys.stdout
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            fh, self._fh = self._fh, None
        if fh is not None:
            fh.flush()
            if self._owns:
                fh.close()
