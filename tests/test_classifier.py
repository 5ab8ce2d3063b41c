"""Classifier: probabilities, top-k, smoothing and hysteresis keep the reported label from flickering."""
from __future__ import annotations

import numpy as np
import pytest

from edgevision.classifier import Classifier

LABELS = ("cat", "dog", "car", "tree")


def probs(**named) -> np.ndarray:
    """A probability vector over LABELS; the rest of the mass spread evenly over the unnamed classes."""
    p = np.zeros(len(LABELS))
    for k, v in named.items():
        p[LABELS.index(k)] = v
    rest = [i for i, name in enumerate(LABELS) if name not in named]
    p[rest] = (1 - p.sum()) / len(rest)
    return p


def test_logits_become_probabilities_and_top_k_is_ranked():
    c = Classifier(LABELS, top_k=2)
    out = c.update(np.array([2.0, 0.5, -1.0, 3.0]))  # logits: softmax applies
    assert [p.label for p in out.top] == ["tree", "cat"]
    e = np.exp([2.0, 0.5, -1.0, 3.0])
    assert out.top[0].score == pytest.approx(e[3] / e.sum())


def test_flickering_near_tie_yields_one_stable_label():
    c = Classifier(LABELS)  # defaults: threshold 0.3, smoothing 0.6, hysteresis 0.1, switch_frames 3
    for _ in range(10):
        c.update(probs(cat=0.8, dog=0.1))
    labels = []
    for i in range(40):  # cat and dog trade places every frame, never far apart
        labels.append(c.update(probs(cat=0.44, dog=0.48) if i % 2 else probs(cat=0.48, dog=0.44)).label)
    assert set(labels) == {"cat"}, labels


def test_without_smoothing_a_real_change_switches_after_exactly_switch_frames():
    c = Classifier(LABELS, smoothing=0.0, switch_frames=3)
    for _ in range(5):
        assert c.update(probs(cat=0.9)).label in (None, "cat")
    assert c.update(probs(cat=0.9)).label == "cat"
    seen = [c.update(probs(dog=0.7, cat=0.2)).label for _ in range(4)]
    assert seen == ["cat", "cat", "dog", "dog"]


def test_with_smoothing_a_real_change_switches_within_a_few_frames():
    n = 3
    c = Classifier(LABELS, switch_frames=n)
    for _ in range(10):
        c.update(probs(cat=0.9))
    seen = [c.update(probs(dog=0.9)).label for _ in range(n + 3)]
    # the moving average needs ~2 frames to move dog past cat + margin, then n frames in a row
    assert seen[-1] == "dog" and seen.index("dog") <= n + 1, seen
    assert all(x in ("cat", None) for x in seen[:seen.index("dog")]), seen


def test_one_outlier_frame_does_not_change_the_label():
    c = Classifier(LABELS)
    for _ in range(10):
        c.update(probs(cat=0.9))
    assert c.update(probs(car=0.95)).label == "cat"
    assert [c.update(probs(cat=0.9)).label for _ in range(3)] == ["cat"] * 3


def test_nothing_confident_reports_none_and_score_zero():
    c = Classifier(LABELS, threshold=0.5)
    for _ in range(10):
        out = c.update(probs(cat=0.4, dog=0.35))
    assert out.label is None and out.score == 0.0 and out.top[0].label == "cat"


def test_label_is_entered_at_threshold_and_left_only_below_the_lower_exit_threshold():
    c = Classifier(LABELS, threshold=0.5, hysteresis=0.1, smoothing=0.0, switch_frames=2)
    assert c.update(probs(cat=0.55)).label is None  # 1 frame of 2
    assert c.update(probs(cat=0.55)).label == "cat"
    out = c.update(probs(cat=0.45))  # below enter, above exit (0.4): kept
    assert out.label == "cat" and out.score == pytest.approx(0.45)
    assert c.update(probs(cat=0.39)).label is None  # below exit: left at once


def test_reset_forgets_history():
    c = Classifier(LABELS, switch_frames=1)
    c.update(probs(cat=0.9))
    c.reset()
    assert c.update(probs(dog=0.9)).label == "dog"


@pytest.mark.parametrize("kw", [dict(top_k=0), dict(threshold=1.5), dict(smoothing=1.0), dict(hysteresis=-0.1),
                                dict(switch_frames=0)])
def test_bad_settings_are_rejected_with_their_name(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        Classifier(LABELS, **kw)
