#!/usr/bin/env python3
"""Write a model's native-engine plan, with inputs and TFLite's reference outputs, for csrc/tests/run_plan.c.

The plan (constants, arena size, every op's kind, items, params and tensor ranges) is what edgevision.native
makes on this machine; the expected outputs are ai-edge-litert's BUILTIN_REF (the oracle) on random inputs. A
cross-compiled run_plan then runs the plan on an ARM target under qemu (32-bit ARMv7 has no LiteRT and no
Python wheel for the engine's tests) and compares byte for byte.

File layout (little-endian): b"EVPLAN01"; u32 n_consts, then per constant u64 length + bytes; u64 arena_size;
u32 n_ops, then per op i32 kind, i32 items, u32 n_params, i32 params[n_params], u32 n_tensors,
(i64 source, i64 offset, i64 nbytes) per tensor, u64 scratch; u32 n_cases; u32 n_inputs, per input
u64 offset, u64 nbytes; u32 n_outputs, per output u64 offset, u64 nbytes; then per case the input bytes and
the expected output bytes, in that order.

    .venv/bin/python tools/dump_plan.py MODEL.tflite OUT.evplan [--cases 2] [--seed 0]
"""
from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgevision.native.graph import DTYPES  # noqa: E402
from edgevision.native.plan import make_plan  # noqa: E402
from edgevision.native.tflite import read_model  # noqa: E402


def reference_outputs(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def random_input(shape, dtype, rng) -> np.ndarray:
    if np.dtype(dtype) == np.float32:
        return rng.uniform(-1, 1, shape).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape, dtype=dtype)


def dump(model_path: Path, out: Path, cases: int = 2, seed: int = 0) -> None:
    data = model_path.read_bytes()
    g = read_model(data)
    plan = make_plan(g)
    rng = np.random.default_rng(seed)
    ins = [g.tensors[t] for t in g.inputs]
    outs = [g.tensors[t] for t in g.outputs]
    blob = bytearray(b"EVPLAN01")
    blob += struct.pack("<I", len(plan.constants))
    for c in plan.constants:
        blob += struct.pack("<Q", len(c)) + bytes(c)
    blob += struct.pack("<Q", plan.arena_size)
    blob += struct.pack("<I", len(plan.engine_ops))
    for kind, items, params, tensors, scratch in plan.engine_ops:
        blob += struct.pack("<iiI", kind, items, len(params) // 4) + params
        blob += struct.pack("<I", len(tensors))
        for s, o, n in tensors:
            blob += struct.pack("<qqq", s, o, n)
        blob += struct.pack("<Q", scratch)
    blob += struct.pack("<I", cases)
    blob += struct.pack("<I", len(ins))
    for t in ins:
        blob += struct.pack("<QQ", plan.offsets[t.index], t.nbytes)
    blob += struct.pack("<I", len(outs))
    for t in outs:
        blob += struct.pack("<QQ", plan.offsets[t.index], t.nbytes)
    for _ in range(cases):
        xs = [random_input(t.shape, DTYPES[t.dtype], rng) for t in ins]
        for x in xs:
            blob += x.tobytes()
        for y in reference_outputs(data, xs):
            blob += y.tobytes()
    out.write_bytes(bytes(blob))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--cases", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    dump(a.model, a.out, a.cases, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
