"""Inference backends: each loads an int8 .tflite once and turns a prepared frame into scores."""
from .base import Backend, BackendUnavailable
from .litert import LiteRTBackend

__all__ = ["Backend", "BackendUnavailable", "LiteRTBackend", "create_backend", "BACKENDS"]

BACKENDS = ("auto", "litert", "native")


def create_backend(model: str, kind: str = "auto", threads: int | None = None, variant: str | None = None) -> Backend:
    """``auto``: LiteRT when it is installed, else the native engine. ``litert`` / ``native`` force one.
    ``variant`` picks the native engine's kernels (see edgevision.native.variants)."""
    if kind not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {kind!r}; expected {', '.join(BACKENDS)}")
    if kind == "litert":
        return LiteRTBackend(model, threads=threads)
    from .native import NativeBackend
    if kind == "native":
        return NativeBackend(model, threads=threads, variant=variant)
    try:
        return LiteRTBackend(model, threads=threads)
    except BackendUnavailable as litert_missing:
        try:
            return NativeBackend(model, threads=threads, variant=variant)
        except BackendUnavailable as native_missing:
            raise BackendUnavailable(f"no inference backend: {litert_missing}; and {native_missing}") from None
