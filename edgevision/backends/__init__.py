"""Inference backends: each loads an int8 .tflite once and turns a prepared float frame into scores."""
from .base import Backend, BackendUnavailable
from .litert import LiteRTBackend

__all__ = ["Backend", "BackendUnavailable", "LiteRTBackend", "create_backend"]


def create_backend(model: str, kind: str = "auto", threads: int | None = None) -> Backend:
    if kind in ("auto", "litert"):
        return LiteRTBackend(model, threads=threads)
    if kind == "native":
        raise BackendUnavailable("the native engine is not available yet in this version; use --backend litert")
    raise BackendUnavailable(f"unknown backend {kind!r}; expected auto, litert or native")
