"""Scores → a label that does not flicker: probabilities, top-k, temporal smoothing and hysteresis.

Per frame, :meth:`Classifier.update` takes the backend's scores and

1. turns them into probabilities (softmax, unless the model already ends in one; postprocess.py);
2. ranks this frame's top-k;
3. smooths: ``ema = smoothing·ema + (1 − smoothing)·p`` per class (``smoothing`` 0 = no smoothing);
4. applies hysteresis to the smoothed scores to choose the reported label:

   * with no current label, the best class is *entered* once its smoothed score has been ≥ ``threshold``
     for ``switch_frames`` frames in a row;
   * the current label is *left* (label None) as soon as its smoothed score falls below
     ``threshold − hysteresis``;
   * another class *replaces* the current label once it has been ≥ ``threshold`` and ≥ the current label's
     score + ``hysteresis`` for ``switch_frames`` frames in a row.

   So two classes in a near tie cannot make the label alternate, and one bad frame cannot change it.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from .frames import Prediction
from .postprocess import probabilities


@dataclasses.dataclass
class Classification:
    top: list[Prediction]  # this frame's ranked predictions (not smoothed)
    label: Optional[str]  # the reported label (smoothed, with hysteresis); None when nothing is confident
    index: Optional[int]  # its class index
    score: float  # its smoothed score (0.0 when label is None)


class Classifier:
    """Stateful: one instance per stream; :meth:`reset` when the stream changes."""

    def __init__(self, labels: Sequence[str], top_k: int = 5, threshold: float = 0.3, smoothing: float = 0.6,
                 hysteresis: float = 0.1, switch_frames: int = 3):
        if not (isinstance(top_k, int) and top_k >= 1):
            raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability from 0 to 1, got {threshold!r}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be from 0 (none) to below 1, got {smoothing!r}")
        if not 0.0 <= hysteresis <= 1.0:
            raise ValueError(f"hysteresis must be from 0 to 1, got {hysteresis!r}")
        if not (isinstance(switch_frames, int) and switch_frames >= 1):
            raise ValueError(f"switch_frames must be an integer >= 1, got {switch_frames!r}")
        self.labels = tuple(labels)
        self.top_k = top_k
        self.threshold = float(threshold)
        self.exit_threshold = float(threshold) - float(hysteresis)
        self.margin = float(hysteresis)
        self.smoothing = float(smoothing)
        self.switch_frames = switch_frames
        self.reset()

    def reset(self) -> None:
        self._ema: Optional[np.ndarray] = None
        self._current: Optional[int] = None
        self._candidate: Optional[int] = None
        self._streak = 0

    def _name(self, i: int) -> str:
        return self.labels[i] if i < len(self.labels) else str(i)

    def update(self, scores: np.ndarray) -> Classification:
        p = probabilities(scores)
        k = min(self.top_k, p.size)
        order = np.argpartition(-p, k - 1)[:k] if k < p.size else np.arange(p.size)
        order = order[np.argsort(-p[order], kind="stable")]
        top = [Prediction(int(i), self._name(int(i)), float(p[i])) for i in order]

        if self._ema is None or self._ema.shape != p.shape:
            self._ema = p.copy()
        else:
            self._ema *= self.smoothing
            self._ema += (1.0 - self.smoothing) * p
        ema = self._ema

        cur = self._current
        if cur is not None and ema[cur] < self.exit_threshold:
            cur = None
        best = int(ema.argmax())
        qualifies = best != cur and ema[best] >= self.threshold and (
            cur is None or ema[best] >= ema[cur] + self.margin)
        if qualifies:
            self._streak = self._streak + 1 if best == self._candidate else 1
            self._candidate = best
            if self._streak >= self.switch_frames:
                cur, self._candidate, self._streak = best, None, 0
        else:
            self._candidate, self._streak = None, 0
        self._current = cur
        if cur is None:
            return Classification(top, None, None, 0.0)
        return Classification(top, self._name(cur), cur, float(ema[cur]))
