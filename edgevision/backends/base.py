from __future__ import annotations

import abc

import numpy as np


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says what to install."""


class Backend(abc.ABC):
    """One model, loaded once. ``infer`` takes a prepared input — float32 h×w×c normalised as the model's
    metadata says, or already the model's input tensor (its integer dtype, quantized) — and returns float32
    scores (dequantized outputs)."""

    name: str = "backend"
    input_dtype: np.dtype = np.dtype(np.float32)   # the model's input tensor type
    input_quantization: "tuple[float, int] | None" = None  # its (scale, zero point) when quantized

    @abc.abstractmethod
    def infer(self, x: np.ndarray) -> np.ndarray: ...

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
