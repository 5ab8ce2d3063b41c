"""The native backend: edgevision's own int8 kernels (edgevision.native), needing only numpy at run time.

It runs where no LiteRT wheel exists (32-bit Raspberry Pi OS, new Pythons); its outputs are bit-exact with
TFLite's reference kernels."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..preprocess import quantize
from .base import Backend, BackendUnavailable


class NativeBackend(Backend):
    name = "native"

    def __init__(self, model, threads: Optional[int] = None, variant: Optional[str] = None):
        from ..native.engine import NativeModel
        from ..native.variants import NativeUnavailable
        try:
            self.model = NativeModel(model, threads=threads, variant=variant)
        except NativeUnavailable as e:
            raise BackendUnavailable(str(e)) from None
        g = self.model.graph
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise ValueError(f"the model has {len(g.inputs)} inputs and {len(g.outputs)} outputs; edgevision runs "
                             "classifiers with one image input and one score output")
        self._in_t, self._out_t = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
        self.threads = self.model.threads
        self.variant = self.model.variant
        self.package = f"edgevision native, {self.variant} kernels"
        self.input_dtype = np.dtype(self.model.input(0).dtype)
        self.input_quantization = (self._in_t.scale[0], self._in_t.zero_point[0]) if self._in_t.scale else None

    def infer(self, x: np.ndarray) -> np.ndarray:
        dst = self.model.input(0)
        if x.dtype != dst.dtype:  # a float frame: quantize as TFLite's QUANTIZE would
            if self.input_quantization is not None:
                x = quantize(x, *self.input_quantization, dst.dtype)
            else:
                x = x.astype(dst.dtype)
        dst[...] = x.reshape(dst.shape)
        self.model.invoke()
        y = self.model.output(0)
        t = self._out_t
        if t.scale and y.dtype != np.float32:
            return ((y.astype(np.float32) - t.zero_point[0]) * np.float32(t.scale[0])).reshape(-1)
        return y.astype(np.float32).reshape(-1)
