"""Shared by the native engine's single-op tests: TFLite's reference kernels as the oracle, and the check that
every kernel variant, at 1, 2 and 3 threads, gives the oracle's bytes and runs the kernel it should."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from tflite_builder import interpreter

from edgevision.native import variants
from edgevision.native.engine import NativeModel

THREADS = (1, 2, 3)
VARIANTS = variants.supported() if variants.compiled() else ("ref",)


def run_oracle(model: bytes, x: np.ndarray, reference: bool = True) -> np.ndarray:
    it = interpreter(model, reference=reference)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def assert_native_matches(model: bytes, x: np.ndarray, kernel: str,
                          own_kernel: Callable[[str, str], Optional[str]]) -> np.ndarray:
    """NativeModel on every variant, 1, 2 and 3 threads, equals BUILTIN_REF byte for byte; `kernel` is the
    reference kernel ref runs, and a variant with its own kernel for the kind (own_kernel(variant, kind)) must
    run that one."""
    want = run_oracle(model, x)
    kind = kernel[len("ev_"):-len("_ref")]
    for v in VARIANTS:
        for t in THREADS:
            m = NativeModel(model, variant=v, threads=t)
            if v == "ref":
                assert m.kernels == [kernel]
            elif own_kernel(v, kind):
                assert m.kernels == [own_kernel(v, kind)]
            got = m.run(x)[0]
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want, err_msg=f"{v}, threads={t}")
    return want
