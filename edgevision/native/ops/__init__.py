"""Per-operator planning: for each TFLite builtin the engine runs, a function that checks the operator against
what TFLite's reference kernel accepts, computes what TFLite's Prepare computes (multipliers, shifts, tables),
and returns the engine steps that run it.

    @preparer("CONV_2D")
    def conv_2d(op: Operator, g: Graph) -> list[Step]: ...

A Step's tensors are graph tensor indices (activations live in the arena, constants are copied into the
engine) or Const objects the preparer made (repacked weights, lookup tables). Modules in this package register
themselves on import; plan.py imports them all.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

from ..graph import Graph, ModelError, Operator

# Must match EV_OPS in csrc/ev.h, in order.
OP_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D",
            "MEAN", "PAD", "COPY", "CONCATENATION", "SOFTMAX", "LOGISTIC", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE",
            "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RELU", "TANH", "PRELU", "TRANSPOSE")


@dataclass(frozen=True)
class Const:
    """Bytes a preparer derived (e.g. repacked weights); the engine copies them into its constant block."""
    data: bytes
    name: str = ""


TensorRef = Union[int, Const]


@dataclass
class Step:
    kind: str                          # one of OP_KINDS
    items: int                         # work items the engine may split across threads (>= 0)
    params: Sequence[int]              # int32 values, in the layout csrc/<kind>.h documents
    tensors: list[TensorRef]           # inputs then outputs, in the layout csrc/<kind>.h documents
    scratch: int = 0                   # bytes of scratch per thread
    outputs: int = 1                   # how many of `tensors`, at the end, are written
    op: int = -1                       # the graph operator it comes from (for messages)
    extra: dict = field(default_factory=dict)


PREPARERS: dict[str, Callable[[Operator, Graph], list[Step]]] = {}


def preparer(*opcodes: str):
    def register(fn):
        for code in opcodes:
            if code in PREPARERS:
                raise RuntimeError(f"two preparers for {code}")
            PREPARERS[code] = fn
        return fn
    return register


def load_all() -> None:
    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")


def unsupported(op: Operator, why: str) -> ModelError:
    return ModelError(f"{op.describe()}: {why}")
