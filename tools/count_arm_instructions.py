"""Helper of tools/count_arm_instructions.sh, run in two places:

  on the host:   count_arm_instructions.py macs MODEL
                 prints the model's multiply-accumulates per inference (CONV_2D, DEPTHWISE_CONV_2D,
                 FULLY_CONNECTED, as the native engine plans them), as "macs N conv N depthwise N fc N"

  in the arm64 userland, under qemu with the instruction-counting plugin:
                 count_arm_instructions.py run ENGINE MODEL N [VARIANT]
                 ENGINE is native (edgevision's engine, the kernel VARIANT forced) or litert (ai-edge-litert's
                 default resolver: XNNPACK); one thread; builds the interpreter, runs one warm-up inference
                 (LiteRT packs its weights on the first), then N more on a fixed random input. The shell script
                 runs it with N = 0 and N = n and divides the difference of the instruction totals by n.
"""
from __future__ import annotations

import sys


def count_macs(path: str) -> None:
    from edgevision.native.plan import make_steps
    from edgevision.native.tflite import read_model

    with open(path, "rb") as f:
        graph = read_model(f.read())
    per_kind = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 0, "FULLY_CONNECTED": 0}
    for s in make_steps(graph):
        p = s.params
        if s.kind == "CONV_2D":  # batches * out_h * out_w * out_c * filter_h * filter_w * filter_in_c
            per_kind[s.kind] += p[0] * p[4] * p[5] * p[6] * p[7] * p[8] * p[9]
        elif s.kind == "DEPTHWISE_CONV_2D":  # batches * out_h * out_w * out_c * filter_h * filter_w
            per_kind[s.kind] += p[0] * p[4] * p[5] * p[6] * p[7] * p[8]
        elif s.kind == "FULLY_CONNECTED":  # rows * depth * out_c
            per_kind[s.kind] += p[0] * p[1] * p[2]
    print(f"macs {sum(per_kind.values())} conv {per_kind['CONV_2D']} depthwise {per_kind['DEPTHWISE_CONV_2D']} "
          f"fc {per_kind['FULLY_CONNECTED']}")


def run(engine: str, path: str, n: int, variant: str | None) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    if engine == "native":
        from edgevision.native.engine import NativeModel

        m = NativeModel(path, threads=1, variant=variant)
        if variant and m.variant != variant:
            sys.exit(f"asked for kernel variant {variant}, the engine chose {m.variant}")
        x = m.input(0)
        x[...] = rng.integers(-128, 128, x.shape).astype(x.dtype) if x.dtype != np.float32 else rng.uniform(
            -1, 1, x.shape).astype(np.float32)
        m.invoke()  # warm-up
        for _ in range(n):
            m.invoke()
        print(f"native {m.variant} ran {n} inferences", file=sys.stderr)
    elif engine == "litert":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=path, num_threads=1)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        if d["dtype"] == np.float32:
            x = rng.uniform(-1, 1, d["shape"]).astype(np.float32)
        else:
            info = np.iinfo(d["dtype"])
            x = rng.integers(info.min, info.max + 1, d["shape"]).astype(d["dtype"])
        it.set_tensor(d["index"], x)
        it.invoke()  # warm-up: XNNPACK packs the weights here
        for _ in range(n):
            it.invoke()
        print(f"litert ran {n} inferences", file=sys.stderr)
    else:
        sys.exit(f"unknown engine {engine!r}: expected native or litert")


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "macs":
        count_macs(argv[1])
    elif len(argv) in (4, 5) and argv[0] == "run":
        run(argv[1], argv[2], int(argv[3]), argv[4] if len(argv) == 5 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
