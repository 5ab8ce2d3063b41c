"""A .tflite model as the native engine sees it: plain, validated data (no flatbuffer objects).

tflite.read_model() builds it from a file and checks everything a kernel will rely on (indices, shapes, buffer
sizes, quantization parameters, operator versions); plan.py turns it into engine ops. Field and option names
are those of TFLite's schema.fbs in snake_case (``stride_w``, ``fused_activation_function``, ...), with enum
values as their schema names (``"SAME"``, ``"RELU6"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

# schema.fbs TensorType -> numpy dtype (the ones the engine can hold; others are refused by the reader)
DTYPES = {"FLOAT32": np.float32, "INT32": np.int32, "UINT8": np.uint8, "INT64": np.int64, "INT16": np.int16,
          "INT8": np.int8, "BOOL": np.bool_}


def _short(name: str, limit: int = 64) -> str:
    """A name as messages show it: a file may hold names of any length."""
    return name if len(name) <= limit else name[:limit] + "…"


class ModelError(ValueError):
    """The model cannot run on the native engine: malformed, or uses something it does not support. The
    message names the operator or tensor and says what was expected."""


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                                  # a key of DTYPES
    scale: tuple[float, ...] = ()               # empty: not quantized
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0
    data: Optional[bytes] = None                # constant contents (exactly size*itemsize bytes), else None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(DTYPES[self.dtype]).itemsize

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def array(self) -> np.ndarray:
        """A constant's contents as a read-only numpy array of its shape."""
        if self.data is None:
            raise ModelError(f"tensor {self.index} ({self.name!r}) is not a constant")
        return np.frombuffer(self.data, dtype=DTYPES[self.dtype]).reshape(self.shape)

    def describe(self) -> str:
        return f"tensor {self.index} ({_short(self.name)!r}, {self.dtype}{list(self.shape)})"


@dataclass(frozen=True)
class Operator:
    index: int
    opcode: str                                 # BuiltinOperator name, e.g. "CONV_2D"
    version: int                                # OperatorCode.version (>= 1); ops/ checks what it accepts
    inputs: tuple[int, ...]                     # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"operator {self.index} ({_short(self.opcode)} v{self.version})"


@dataclass(frozen=True)
class Graph:
    """The first subgraph of a model (the only one the engine runs)."""
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""
