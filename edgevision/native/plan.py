"""Graph -> engine: each operator's steps (ops/), a memory plan for the activations (one arena, reused), and
the arguments of edgevision._native.Engine.

Memory: every non-constant tensor gets a 64-byte-aligned range of the arena, live from the step that writes it
to the last step that reads it (graph inputs from the start, graph outputs to the end). Ranges are assigned
greedily, largest first, at the lowest offset not overlapping a tensor live at the same time; the plan is made
once, so an inference allocates nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ops as opsmod
from .graph import Graph, ModelError
from .ops import OP_KINDS, Const, Step

ALIGN = 64


@dataclass
class Plan:
    steps: list[Step]
    arena_size: int
    offsets: dict[int, int]           # tensor index -> arena offset
    constants: list[bytes]
    engine_ops: list[tuple]           # Engine(ops=...)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def make_steps(g: Graph) -> list[Step]:
    opsmod.load_all()
    steps: list[Step] = []
    for op in g.operators:
        fn = opsmod.PREPARERS.get(op.opcode)
        if fn is None:
            supported = ", ".join(sorted(opsmod.PREPARERS))
            raise ModelError(f"{op.describe()}: the native engine does not run {op.opcode}; it runs {supported}. "
                             "Use --backend litert for this model")
        for s in fn(op, g):
            s.op = op.index
            if s.kind not in OP_KINDS:
                raise AssertionError(f"preparer for {op.opcode} made an unknown step kind {s.kind!r}")
            steps.append(s)
    return steps


def plan_memory(g: Graph, steps: list[Step]) -> tuple[dict[int, int], int]:
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    end = len(steps)
    for t in g.inputs:
        first[t] = -1
    for i, s in enumerate(steps):
        for t in s.tensors:
            if isinstance(t, int) and not g.tensors[t].is_constant:
                first.setdefault(t, i)
                last[t] = i
    for t in g.outputs:
        first.setdefault(t, end)
        last[t] = end
    order = sorted(first, key=lambda t: (-g.tensors[t].nbytes, t))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[int, int] = {}
    size_total = 0
    for t in order:
        size = _align(max(1, g.tensors[t].nbytes))
        lo, hi = first[t], last.get(t, first[t])
        busy = sorted((o, o + n) for o, n, a, b in placed if not (b < lo or hi < a))
        offset = 0
        for a, b in busy:
            if offset + size <= a:
                break
            offset = max(offset, _align(b))
        offsets[t] = offset
        placed.append((offset, size, lo, hi))
        size_total = max(size_total, offset + size)
    return offsets, size_total


def make_plan(g: Graph) -> Plan:
    steps = make_steps(g)
    offsets, arena_size = plan_memory(g, steps)
    constants: list[bytes] = []
    const_index: dict[object, int] = {}

    def ref(t) -> tuple[int, int, int]:
        if isinstance(t, Const):
            key = ("derived", id(t))
            if key not in const_index:
                const_index[key] = len(constants)
                constants.append(t.data)
            return const_index[key], 0, len(t.data)
        tensor = g.tensors[t]
        if tensor.is_constant:
            key = ("tensor", t)
            if key not in const_index:
                const_index[key] = len(constants)
                constants.append(tensor.data)
            return const_index[key], 0, len(tensor.data)
        return -1, offsets[t], tensor.nbytes

    engine_ops = []
    for s in steps:
        params = np.asarray(s.params, dtype=np.int64)
        if params.size and (params.min() < -2**31 or params.max() >= 2**31):
            raise AssertionError(f"{s.kind} step of operator {s.op}: a parameter does not fit int32")
        engine_ops.append((OP_KINDS.index(s.kind), int(s.items), params.astype("<i4").tobytes(),
                           [ref(t) for t in s.tensors], int(s.scratch)))
    return Plan(steps, arena_size, offsets, constants, engine_ops)
