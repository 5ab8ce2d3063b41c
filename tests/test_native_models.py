"""Whole models on the native engine, bit-exact with TFLite's reference kernels (ai-edge-litert BUILTIN_REF):
the committed EfficientNet-Lite0 default model, Fashion-MNIST as our converter and as TensorFlow's converter
make it, and the op-mix nets of tools/build_native_test_models.py, which cover every operator and option the
converter emits. Every kernel variant this CPU runs, one and several threads.

The difference from LiteRT's default (XNNPACK) kernels is measured by tools/bench_native.py, not asserted.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgevision.cli import DEFAULT_MODEL
from edgevision.native import variants
from edgevision.native.engine import NativeModel

DATA = Path(__file__).resolve().parent / "data"
MODELS = {
    "efficientnet_lite0": Path(DEFAULT_MODEL),
    "fashion_mnist_ours": DATA / "native" / "fashion_mnist_int8.tflite",
    "fashion_mnist_tf": DATA / "fashion_mnist_int8.tflite",
    "opmix_a": DATA / "native" / "opmix_a.tflite",
    "opmix_b": DATA / "native" / "opmix_b.tflite",
}
# Emulated ARM is slow: the arm64 harness sets this to run the reference-kernel oracle on fewer inputs.
INPUTS = int(os.environ.get("EDGEVISION_NATIVE_TEST_INPUTS", "3"))


def litert(model: bytes, reference: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    it = Interpreter(model_content=model, experimental_op_resolver_type=kind, num_threads=1)
    it.allocate_tensors()
    return it


def run_litert(it, x: np.ndarray) -> np.ndarray:
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def inputs_for(model: NativeModel, n: int, seed: int = 0) -> list[np.ndarray]:
    """Random tensors over the input type's whole range, plus an all-minimum one (saturation paths)."""
    view = model.input(0)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if view.dtype == np.float32:
            out.append(rng.uniform(-1.0, 1.0, view.shape).astype(np.float32))
        else:
            info = np.iinfo(view.dtype)
            out.append(rng.integers(info.min, info.max + 1, view.shape, dtype=view.dtype))
    if view.dtype != np.float32:
        out.append(np.full(view.shape, np.iinfo(view.dtype).min, view.dtype))
    return out


@pytest.fixture(scope="module", params=sorted(MODELS))
def model_case(request):
    data = MODELS[request.param].read_bytes()
    ref = litert(data, reference=True)
    probe = NativeModel(data, threads=1, variant="ref")
    xs = inputs_for(probe, INPUTS)
    expected = [run_litert(ref, x) for x in xs]
    return request.param, data, xs, expected


@pytest.mark.parametrize("variant", variants.supported() if variants.compiled() else [])
@pytest.mark.parametrize("threads", [1, 3])
def test_model_is_bit_exact_with_tflite_reference_kernels(model_case, variant, threads):
    name, data, xs, expected = model_case
    m = NativeModel(data, threads=threads, variant=variant)
    for i, (x, want) in enumerate(zip(xs, expected)):
        got = m.run(x)[0]
        assert got.dtype == want.dtype and got.shape == want.shape
        if not np.array_equal(got, want):
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            pytest.fail(f"{name}, {variant} kernels, {threads} threads, input {i}: {int((diff > 0).sum())} of "
                        f"{diff.size} outputs differ from TFLite's reference kernels (max {diff.max()})")


def test_expected_variant_ran_on_every_step_it_implements(model_case):
    """Proof of which code ran: each step's kernel belongs to the chosen variant whenever that variant has
    one for the op (the arm64 harness checks the chosen variant itself is neon or dotprod)."""
    name, data, _, _ = model_case
    chosen, _ = variants.resolve()
    m = NativeModel(data, threads=1)
    assert m.variant == chosen
    own = {k: v for k, v in variants.extension().kernel_names(chosen).items() if v and v.endswith("_" + chosen)}
    assert len(m.kernels) == len(m.plan.steps)
    for step, fn in zip(m.plan.steps, m.kernels):
        if step.kind in own:
            assert fn == own[step.kind], (step.kind, fn)
