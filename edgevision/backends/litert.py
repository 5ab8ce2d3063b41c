"""LiteRT backend: ``ai-edge-litert``, else ``tflite-runtime`` (numpy<2), else ``tensorflow.lite``."""
from __future__ import annotations

import numpy as np

from ..preprocess import quantize
from .base import Backend, BackendUnavailable

INSTALL_HINT = ("no LiteRT interpreter found: pip install ai-edge-litert (Python 3.10+, 64-bit), or "
                "pip install tflite-runtime 'numpy<2' (Python <= 3.11)")


def load_interpreter_class():
    """The first available Interpreter class and the name of its package."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf
        return tf.lite.Interpreter, "tensorflow"
    except ImportError:
        pass
    raise BackendUnavailable(INSTALL_HINT)


class LiteRTBackend(Backend):
    name = "litert"

    def __init__(self, model: str | bytes, threads: int | None = None):
        cls, self.package = load_interpreter_class()
        kw = {"model_content": model} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
        try:
            self.interpreter = cls(num_threads=threads, **kw)
            self.interpreter.allocate_tensors()
        except ValueError as e:
            raise ValueError(f"LiteRT could not load the model: {e}") from e
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        self.input_dtype = np.dtype(self._in["dtype"])
        scale, zp = self._in["quantization"]
        self.input_quantization = (float(scale), int(zp)) if scale else None

    def infer(self, x: np.ndarray) -> np.ndarray:
        d = self._in
        if x.dtype == d["dtype"]:
            pass  # already the model's input tensor (the fused preprocessing kernel writes int8 directly)
        elif d["dtype"] in (np.int8, np.uint8):
            scale, zp = d["quantization"]
            x = quantize(x, scale, zp, d["dtype"])
        else:
            x = x.astype(d["dtype"])
        self.interpreter.set_tensor(d["index"], x.reshape(d["shape"]))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._out["index"])
        scale, zp = self._out["quantization"]
        if self._out["dtype"] in (np.int8, np.uint8) and scale:
            return ((y.astype(np.float32) - zp) * scale).reshape(-1)
        return y.astype(np.float32).reshape(-1)
