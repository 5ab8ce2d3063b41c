"""GPTQ weight rounding: the same integer grid as round-to-nearest, less error in the layer's output."""
from __future__ import annotations

import numpy as np
import pytest

from converters.gptq import gptq_round, gptq_weights


def _correlated_inputs(n: int, k: int, seed: int, sample_seed: int = 0) -> np.ndarray:
    """Correlated inputs with a non-zero mean (like post-ReLU activations): the correlation comes from
    ``seed``, the samples from ``sample_seed``."""
    mix = np.random.default_rng(seed).normal(size=(k, k)) / np.sqrt(k) + np.eye(k)
    return np.random.default_rng((seed, sample_seed)).normal(size=(n, k)) @ mix + 0.5


def _output_error(w, scale, q, x):
    return float((((w - q * scale[:, None]) @ x.T) ** 2).mean())


@pytest.mark.parametrize("k", [9, 64, 300])
def test_gptq_has_less_output_error_than_round_to_nearest(k):
    rng = np.random.default_rng(k)
    w = rng.normal(size=(32, k))
    scale = np.abs(w).max(axis=1) / 127
    x = _correlated_inputs(4000, k, k + 1)
    h = x.T @ x / len(x)
    q = gptq_round(w, scale, h, block=16)
    rtn = np.clip(np.round(w / scale[:, None]), -127, 127)
    assert np.all(np.abs(q) <= 127) and np.array_equal(q, np.round(q))
    held_out = _correlated_inputs(4000, k, k + 1, sample_seed=1)  # same distribution, samples it did not see
    assert _output_error(w, scale, q, held_out) < 0.8 * _output_error(w, scale, rtn, held_out)


def test_gptq_equals_round_to_nearest_for_uncorrelated_unit_inputs():
    # with H = I no compensation is possible: every weight rounds to its nearest value
    rng = np.random.default_rng(3)
    w = rng.normal(size=(8, 20))
    scale = np.abs(w).max(axis=1) / 127
    q = gptq_round(w, scale, np.eye(20), damp=0.0)
    np.testing.assert_array_equal(q, np.clip(np.sign(w / scale[:, None]) * np.floor(np.abs(w / scale[:, None]) + 0.5),
                                             -127, 127))


def test_depthwise_layout_rounds_each_output_channel_with_its_input_channels_moment():
    rng = np.random.default_rng(4)
    c, m = 3, 2
    w = rng.normal(size=(1, 3, 3, c * m))
    scale = np.abs(w).reshape(9, -1).max(axis=0) / 127
    hs = []
    for _ in range(c):
        x = _correlated_inputs(500, 9, int(rng.integers(100)))
        hs.append(x.T @ x / len(x))
    q = gptq_weights("depthwise_conv2d", w, scale, np.stack(hs), multiplier=m)
    for k in range(c * m):  # output channel k reads input channel k // m
        want = gptq_round(w[0, :, :, k].reshape(1, 9), scale[k:k + 1], hs[k // m])[0]
        np.testing.assert_array_equal(q[0, :, :, k].reshape(9), want)
