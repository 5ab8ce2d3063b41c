"""Run a .tflite model on the native engine: read and validate it (tflite.py), plan it (plan.py), build the C
Engine once, then invoke it as often as wanted with no allocation.

    m = NativeModel("model.tflite", threads=2)
    m.input(0)[...] = x          # numpy views into the engine's arena
    m.invoke()                   # the GIL is released while it runs
    y = m.output(0).copy()
"""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from . import variants
from .graph import DTYPES, Graph, ModelError
from .plan import Plan, make_plan


class NativeModel:
    def __init__(self, model: Union[str, os.PathLike, bytes, bytearray, memoryview], threads: Optional[int] = None,
                 variant: Optional[str] = None):
        from .tflite import read_model
        if isinstance(model, (bytes, bytearray, memoryview)):
            data, self.path = bytes(model), None
        else:
            self.path = os.fspath(model)
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                raise FileNotFoundError(f"model file not found: {self.path!r}") from None
        ext = variants.extension()
        self.variant, self.variant_chosen_by = variants.resolve(variant)
        if threads is None:
            threads = os.cpu_count() or 1
        if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= 64:
            raise ValueError(f"threads must be an integer from 1 to 64, got {threads!r}")
        self.graph: Graph = read_model(data)
        self.plan: Plan = make_plan(self.graph)
        try:
            self._engine = ext.Engine(self.variant, threads, self.plan.arena_size, self.plan.constants,
                                      self.plan.engine_ops)
        except ValueError as e:  # the C side's second line of checks: a planner bug, reported against the model
            raise ModelError(f"the native engine refused the planned model: {e}") from None
        self.threads = threads
        arena = np.frombuffer(self._engine, dtype=np.uint8)
        self._inputs = [self._view(arena, t) for t in self.graph.inputs]
        self._outputs = [self._view(arena, t) for t in self.graph.outputs]

    def _view(self, arena: np.ndarray, index: int) -> np.ndarray:
        t = self.graph.tensors[index]
        off = self.plan.offsets[index]
        return arena[off:off + t.nbytes].view(DTYPES[t.dtype]).reshape(t.shape)

    def input(self, i: int = 0) -> np.ndarray:
        """Writable view of input i (its dtype and shape)."""
        return self._inputs[i]

    def output(self, i: int = 0) -> np.ndarray:
        """View of output i; valid until the next invoke()."""
        return self._outputs[i]

    def invoke(self) -> None:
        self._engine.invoke()

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Convenience for tests and one-shot use: copy inputs in, invoke, return copies of the outputs."""
        if len(inputs) != len(self._inputs):
            raise ValueError(f"the model takes {len(self._inputs)} inputs, got {len(inputs)}")
        for view, x in zip(self._inputs, inputs):
            x = np.asarray(x)
            if x.shape != view.shape or x.dtype != view.dtype:
                raise ValueError(f"input must be {view.dtype}{list(view.shape)}, got {x.dtype}{list(x.shape)}")
            view[...] = x
        self.invoke()
        return [o.copy() for o in self._outputs]

    @property
    def kernels(self) -> list[str]:
        """The C function that runs each engine step, in order (proves which variant ran)."""
        return self._engine.kernels
