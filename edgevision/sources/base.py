"""Frame sources: each yields :class:`edgevision.frames.Frame` objects from one kind of device or file."""
from __future__ import annotations

import abc

from ..frames import Frame


class SourceError(RuntimeError):
    """A source failed (device gone, stream dropped, corrupt data); the pipeline retries with back-off."""


class CorruptFrameError(SourceError):
    """One frame could not be decoded (a corrupt image file, a damaged packet); the source itself is still
    usable and the next ``read()`` moves on. :class:`RetryingSource` skips and counts these."""


class EndOfStream(Exception):
    """The source has no more frames (end of a file or folder when not looping)."""


class Source(abc.ABC):
    """Open on construction or in ``open()``; ``read()`` blocks until the next frame and returns it, raises
    :class:`EndOfStream` when there are no more, :class:`SourceError` when the device fails. ``close()`` may be
    called twice. A source is a context manager."""

    name: str = "source"

    def open(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    def read(self) -> Frame: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
