"""Scores → ranked labels."""
from __future__ import annotations

import numpy as np

from .frames import Prediction


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Softmax, unless the scores already are probabilities (a model ending in SOFTMAX)."""
    s = np.asarray(scores, np.float64).reshape(-1)
    if s.min() >= 0 and abs(s.sum() - 1.0) < 0.05:
        return s
    e = np.exp(s - s.max())
    return e / e.sum()


def top_k(scores: np.ndarray, labels: tuple[str, ...], k: int = 5) -> list[Prediction]:
    p = probabilities(scores)
    k = max(1, min(k, p.size))
    order = np.argsort(-p, kind="stable")[:k]
    return [Prediction(int(i), labels[i] if i < len(labels) else str(int(i)), float(p[i])) for i in order]
