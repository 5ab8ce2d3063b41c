"""Result sinks: each publishes :class:`edgevision.frames.Result` objects somewhere (console, file, web...)."""
from __future__ import annotations

import abc

from ..frames import Frame, Result


class Sink(abc.ABC):
    """``publish`` is called from the pipeline's result thread for every result, with the frame it came from
    (sinks that do not show images ignore it). It must not block for long: slow consumers drop, not stall.
    ``close()`` flushes and releases everything; it may be called twice. A sink is a context manager."""

    name: str = "sink"

    def open(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    def publish(self, result: Result, frame: Frame | None) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
