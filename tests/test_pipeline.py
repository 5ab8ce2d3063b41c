"""The runtime pipeline: preprocessing fast path vs its plain reference, newest-frame-wins capture, retries,
per-stage timings, statistics and shutdown."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgevision.frames import Frame
from edgevision.model_info import ModelInfo
from edgevision.preprocess import _crop_box, prepare, resize

# --------------------------------------------------------------------------------------------------------
# preprocess: the fast numpy path must compute what this plain float version computes (to float rounding).


def _reference_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Mean of f×f blocks in float, then bilinear with half-pixel centres: rows, then columns."""
    x = img.astype(np.float64)
    if x.shape[:2] == (out_h, out_w):
        return x
    f = int(min(x.shape[0] / out_h, x.shape[1] / out_w))
    if f >= 2:
        h, w = x.shape[0] // f, x.shape[1] // f
        x = x[:h * f, :w * f].reshape(h, f, w, f, x.shape[2]).mean(axis=(1, 3))

    def axis(n_in, n_out):  # sample positions in float32, as the runtime has always computed them
        pos = np.clip((np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        i0 = np.floor(pos).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), (pos - i0).astype(np.float64)

    y0, y1, wy = axis(x.shape[0], out_h)
    x0, x1, wx = axis(x.shape[1], out_w)
    rows = x[y0] * (1 - wy)[:, None, None] + x[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def _reference_prepare(frame: np.ndarray, info: ModelInfo) -> np.ndarray:
    if frame.ndim == 2:
        frame = frame[..., None]
    frame = np.ascontiguousarray(frame[..., :3])
    if frame.shape[2] == 1 and info.channels == 3:
        frame = np.repeat(frame, 3, axis=2)
    out_h, out_w = info.input_size
    h, w = frame.shape[:2]
    if info.resize_mode == "center_crop":
        top, left, ch, cw = _crop_box(h, w, out_h, out_w)
        x = _reference_resize(frame[top:top + ch, left:left + cw], out_h, out_w)
    elif info.resize_mode == "stretch":
        x = _reference_resize(frame, out_h, out_w)
    else:
        s = min(out_h / h, out_w / w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        x = np.empty((out_h, out_w, frame.shape[2]))
        # bars in the mean colour: info.mean is in the model's channel order, x is RGB until the flip below
        mean = np.asarray(info.mean)[: frame.shape[2]]
        x[...] = mean[::-1] if info.channel_order == "BGR" and info.channels == 3 else mean
        top, left = (out_h - nh) // 2, (out_w - nw) // 2
        x[top:top + nh, left:left + nw] = _reference_resize(frame, nh, nw)
    if info.channels == 1 and x.shape[2] == 3:
        x = (x @ np.array([0.299, 0.587, 0.114]))[..., None]
    elif info.channel_order == "BGR":
        x = x[..., ::-1]
    return (x - np.asarray(info.mean)[: x.shape[2]]) / np.asarray(info.std)[: x.shape[2]]


def _assert_close(got, want, what, atol=1e-5):
    assert got.shape == want.shape and got.dtype == np.float32, (what, got.shape, want.shape, got.dtype)
    err = np.abs(got.astype(np.float64) - want)
    if err.max() > atol:
        i = np.unravel_index(err.argmax(), err.shape)
        pytest.fail(f"{what}: at {i} got {got[i]!r}, reference {want[i]!r} (|diff| {err.max():.3g} > {atol})")


IMAGENET = dict(mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0))
FRAME_SHAPES = [(720, 1280), (1080, 1920), (480, 640), (448, 448), (447, 449), (240, 320), (224, 224),
                (100, 90), (7, 5), (3800, 3900)]  # f = 3, 4, 2, 2, 1 (just below 2), 1, 1, <1, <1, 16 (uint32)


@pytest.mark.parametrize("shape", FRAME_SHAPES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("mode", ["center_crop", "stretch", "letterbox"])
def test_prepare_fast_path_matches_plain_float_reference(shape, mode):
    rng = np.random.default_rng(hash(shape) % 2**32)
    frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    info = ModelInfo(input_size=(224, 224), resize_mode=mode, **IMAGENET)
    _assert_close(prepare(frame, info), _reference_prepare(frame, info), f"{shape} {mode}")


@pytest.mark.parametrize("size", [(224, 224), (160, 96), (1, 1), (300, 300)])
def test_prepare_matches_reference_for_other_model_sizes(size):
    frame = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    for mode in ("center_crop", "stretch", "letterbox"):
        info = ModelInfo(input_size=size, resize_mode=mode, mean=(0.0,), std=(255.0,))
        _assert_close(prepare(frame, info), _reference_prepare(frame, info), f"{size} {mode}")


def test_letterbox_bars_normalise_to_zero_for_bgr_models_with_per_channel_mean():
    info = ModelInfo(input_size=(96, 96), channel_order="BGR", resize_mode="letterbox",
                     mean=(103.9, 116.8, 123.7), std=(57.4, 57.1, 58.4))
    x = prepare(np.full((60, 120, 3), 200, np.uint8), info)  # 2:1 frame: bars above and below
    np.testing.assert_array_equal(x[:10], 0.0)
    np.testing.assert_array_equal(x[-10:], 0.0)
    assert np.all(x[48] != 0.0)


def test_prepare_reads_channel_reordered_and_padded_views_like_contiguous_rgb():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    bgrx = np.concatenate([bgr, rng.integers(0, 256, (720, 1280, 1), dtype=np.uint8)], axis=2)
    rgbx = np.concatenate([rgb, bgrx[..., 3:]], axis=2)
    info = ModelInfo(input_size=(224, 224), **IMAGENET)
    want = _reference_prepare(rgb, info)
    views = {"bgr[..., ::-1]": bgr[..., ::-1], "bgrx[..., 2::-1]": bgrx[..., 2::-1], "rgbx": rgbx,
             "rgbx[..., :3]": rgbx[..., :3], "Frame(bgrx).to_rgb()": Frame(bgrx, "bgrx", 1280, 720).to_rgb(),
             "cropped rgb": np.ascontiguousarray(np.pad(rgb, ((0, 0), (0, 4), (0, 0))))[:, :1280]}
    for name, view in views.items():
        _assert_close(prepare(view, info), want, name)


def test_prepare_bgr_grey_and_one_channel_models_match_reference():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (480, 640), dtype=np.uint8)
    for mode in ("center_crop", "letterbox"):
        bgr_model = ModelInfo(input_size=(96, 128), channel_order="BGR", resize_mode=mode,
                              mean=(103.9, 116.8, 123.7), std=(57.4, 57.1, 58.4))
        _assert_close(prepare(rgb, bgr_model), _reference_prepare(rgb, bgr_model), f"BGR model {mode}")
        _assert_close(prepare(grey, bgr_model), _reference_prepare(grey, bgr_model), f"grey frame {mode}")
        mono = ModelInfo(input_size=(28, 28), channels=1, resize_mode=mode, mean=(0.0,), std=(255.0,))
        _assert_close(prepare(rgb, mono), _reference_prepare(rgb, mono), f"1-channel model {mode}")
        _assert_close(prepare(grey, mono), _reference_prepare(grey, mono), f"grey, 1-channel {mode}")


def test_resize_of_float_images_still_matches_reference():
    img = np.random.default_rng(4).uniform(0, 255, (50, 70, 3)).astype(np.float32)
    for size in ((4, 4), (20, 30), (50, 70), (120, 90)):
        got = resize(img, *size)
        _assert_close(got, _reference_resize(img, *size), f"float {size}", atol=1e-3)


# --------------------------------------------------------------------------------------------------------
# the pipeline, with fake sources, backends and sinks (fast; no model needed)

from edgevision.classifier import Classifier  # noqa: E402
from edgevision.pipeline import Pipeline, PipelineError  # noqa: E402
from edgevision.sources.base import EndOfStream, Source, SourceError  # noqa: E402

SMALL = ModelInfo(input_size=(16, 16), labels=("a", "b", "c"), mean=(127.0,), std=(128.0,))


class FakeSource(Source):
    """RGB 48×64 frames; ``period`` seconds per read; ``fail_after``: SourceError after that many frames;
    ``limit``: EndOfStream after that many."""

    name = "fake"

    def __init__(self, period=0.0, fail_after=None, limit=None, start_seq=0):
        self.period, self.fail_after, self.limit = period, fail_after, limit
        self.seq, self.start_seq = start_seq, start_seq
        self.closed = 0
        self.opened = 0

    def open(self):
        self.opened += 1

    def read(self):
        if self.closed:
            raise EndOfStream("closed")
        n = self.seq - self.start_seq
        if self.fail_after is not None and n >= self.fail_after:
            raise SourceError("fake device unplugged")
        if self.limit is not None and n >= self.limit:
            raise EndOfStream("done")
        if self.period:
            time.sleep(self.period)
        data = np.full((48, 64, 3), self.seq % 256, np.uint8)
        f = Frame(data, "rgb", 64, 48, seq=self.seq, t_capture=time.monotonic(), source=f"fake:{self.seq}")
        self.seq += 1
        return f

    def close(self):
        self.closed += 1


class SlowBackend:
    """Sleeps ``delay`` s per inference (as a model would, GIL released); class 'b' always wins."""

    def __init__(self, delay=0.0):
        self.delay, self.calls = delay, 0

    def infer(self, x):
        assert x.shape == (16, 16, 3) and x.dtype == np.float32
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return np.array([0.1, 3.0, 0.2], np.float32)


class ListSink:
    name = "list"

    def __init__(self, fail=False):
        self.results, self.frames, self.fail = [], [], fail
        self.opened = self.closed = 0

    def open(self):
        self.opened += 1

    def publish(self, result, frame):
        if self.fail:
            raise RuntimeError("sink broke")
        self.results.append(result)
        self.frames.append(frame)

    def close(self):
        self.closed += 1


def _pipeline(source, backend=None, sinks=(), **kw):
    return Pipeline(source, backend or SlowBackend(), SMALL, Classifier(SMALL.labels, switch_frames=1), sinks, **kw)


def _no_pipeline_threads():
    return not [t for t in threading.enumerate() if t.name.startswith("edgevision-") and t.is_alive()]


@pytest.mark.parametrize("early", [True, False], ids=["prepare_in_capture", "prepare_inline"])
def test_newest_frame_wins_with_fast_source_and_slow_backend(early):
    src, sink = FakeSource(period=0.002), ListSink()
    p = _pipeline(src, SlowBackend(delay=0.03), [sink], max_frames=8, prepare_in_capture=early)
    stats = p.run()
    assert stats["frames"] == 8 and len(sink.results) == 8
    assert 0 < sink.results[-1].dropped <= stats["dropped"]  # capture kept dropping after the last result
    seqs = [r.seq for r in sink.results]
    assert all(b - a > 1 for a, b in zip(seqs, seqs[1:])), seqs  # frames skipped between results
    # no backlog: every result is at most about one inference old, the last no older than the first
    lat = [r.latency_ms for r in sink.results]
    assert max(lat) < 30 + 100, lat
    assert lat[-1] < lat[0] + 50, lat


@pytest.mark.parametrize("early", [True, False], ids=["prepare_in_capture", "prepare_inline"])
def test_lossless_mode_processes_every_frame_in_order(early):
    src, sink = FakeSource(limit=25), ListSink()
    stats = _pipeline(src, SlowBackend(delay=0.001), [sink], newest_wins=False, prepare_in_capture=early).run()
    assert [r.seq for r in sink.results] == list(range(25))
    assert stats["dropped"] == 0 and stats["frames"] == 25


def test_result_has_label_top_k_stage_timings_and_latency():
    sink = ListSink()
    _pipeline(FakeSource(limit=5), SlowBackend(delay=0.005), [sink]).run()
    r = sink.results[-1]
    assert r.label == "b" and r.top[0].label == "b" and 0 < r.score <= 1
    assert set(r.timings_ms) == {"preprocess", "inference", "postprocess", "sinks"}
    assert r.timings_ms["inference"] >= 4.0 and r.latency_ms >= r.timings_ms["inference"]
    assert sink.frames[-1].seq == r.seq and r.extra["source"] == f"fake:{r.seq}"


def test_stats_report_fps_latency_percentiles_and_stage_means():
    p = _pipeline(FakeSource(), SlowBackend(delay=0.005), [ListSink()], max_frames=20)
    s = p.run()
    assert s["frames"] == 20 and 20 < s["fps"] < 250
    lat = s["latency_ms"]
    assert lat["p50"] <= lat["p95"] <= lat["p99"]
    assert s["stage_ms"]["inference"] >= 4.0 and s["stage_ms"]["sinks"] is not None


def test_failing_source_is_retried_and_the_pipeline_keeps_running():
    from edgevision.sources.retry import RetryingSource
    made = []

    def factory():
        made.append(FakeSource(fail_after=3, start_seq=100 * len(made)))
        return made[-1]

    delays = []
    src = RetryingSource(factory, sleep=lambda d: delays.append(d) or False)
    sink = ListSink()
    stats = _pipeline(src, SlowBackend(), [sink], max_frames=10, newest_wins=False).run()
    assert stats["frames"] == 10 and len(made) >= 4 and src.reopens >= 3
    assert delays[:2] == [0.5, 0.5]  # back-off resets after good frames
    assert [r.seq for r in sink.results][:4] == [0, 1, 2, 100]
    assert all(s.closed for s in made)


def test_unretried_source_failure_ends_run_with_an_error_after_clean_shutdown():
    src, sink = FakeSource(fail_after=2), ListSink()
    with pytest.raises(PipelineError, match="fake device unplugged"):
        _pipeline(src, SlowBackend(), [sink], newest_wins=False).run()
    assert len(sink.results) == 2 and sink.closed == 1 and src.closed >= 1


def test_stop_from_another_thread_closes_source_and_sinks_and_joins_threads():
    src, sinks = FakeSource(period=0.005), [ListSink(), ListSink()]
    p = _pipeline(src, SlowBackend(delay=0.005), sinks)
    threading.Timer(0.3, p.stop).start()
    t = time.monotonic()
    p.run()
    assert time.monotonic() - t < 2.0
    assert src.closed >= 1 and all(s.opened == 1 and s.closed == 1 for s in sinks)
    assert len(sinks[0].results) == p.stats()["frames"] > 0  # everything made was published
    assert _no_pipeline_threads()


def test_a_broken_sink_does_not_stop_the_others():
    good = ListSink()
    stats = _pipeline(FakeSource(limit=5), SlowBackend(), [ListSink(fail=True), good], newest_wins=False).run()
    assert len(good.results) == 5 and stats["sink_errors"] == 5


def test_max_frames_must_be_positive():
    with pytest.raises(ValueError, match="max_frames"):
        _pipeline(FakeSource(), max_frames=0)


def test_jsonl_sink_writes_one_valid_flushed_object_per_result(tmp_path):
    import json

    from edgevision.sinks.jsonl import JsonlSink
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(str(path))
    p = _pipeline(FakeSource(limit=6), SlowBackend(), [sink], newest_wins=False)
    p.run()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["seq"] for r in rows] == list(range(6))
    r = rows[-1]
    assert set(r) >= {"seq", "time", "label", "score", "top", "latency_ms", "timings_ms", "dropped"}
    assert r["time"].endswith("Z") and r["label"] == "b" and r["top"][0]["label"] == "b"
    sink.close()  # twice is fine


def test_console_sink_rewrites_one_line_on_a_tty_and_rate_limits_lines_otherwise():
    import io

    from edgevision.frames import Prediction, Result
    from edgevision.sinks.console import ConsoleSink

    class Tty(io.StringIO):
        def isatty(self):
            return True

    def result(i):
        return Result(i, 0.0, 0.01 * i, [Prediction(1, "cat", 0.9)], "cat", 0.9, {}, 0)

    tty, pipe = Tty(), io.StringIO()
    a, b = ConsoleSink(tty, interval=0), ConsoleSink(pipe)
    for i in range(1, 6):
        a.publish(result(i), None)
        b.publish(result(i), None)
    a.close(), b.close()
    assert tty.getvalue().count("\r") == 5 and tty.getvalue().count("\n") == 1 and "cat 0.90" in tty.getvalue()
    assert pipe.getvalue().count("\n") == 1  # five results within a second: one line


def test_quantize_rounds_half_away_from_zero_and_saturates():
    from edgevision.preprocess import quantize
    x = np.array([-2.5, -1.5, -0.5, -0.49, 0.0, 0.49, 0.5, 1.5, 2.5, 1000.0, -1000.0], np.float32)
    got = quantize(x, 1.0, 0)
    # expected from the definition, in Python's exact arithmetic
    import math
    want = [max(-128, min(127, int(math.copysign(math.floor(abs(float(v)) + 0.5), float(v))))) for v in x]
    assert got.tolist() == want
    assert quantize(x, 0.5, 3, np.uint8).tolist() == [max(0, min(255, w)) for w in
                                                      [int(math.copysign(math.floor(abs(float(v) / 0.5) + 0.5),
                                                                         float(v))) + 3 for v in x]]
    assert x[0] == np.float32(-2.5)  # the input is left alone
