"""The live loop: source → preprocess → backend → classifier → sinks, on three threads.

==============  ===========================================================================================
capture         ``source.read()``, then ``prepare_frame()`` (for an int8 model the fused kernel writes its input
                tensor straight from the camera's pixel format); the prepared frame goes into a
                single-slot mailbox. Newest frame wins: a frame still unread when the next one is ready is
                replaced and counted as dropped, so a slow model never builds a backlog and always sees the
                most recent picture. (``newest_wins=False``: capture waits for the slot instead, every frame
                is processed; for files and benchmarks.)
inference       the thread that calls :meth:`Pipeline.run`: takes the newest prepared frame, ``backend.infer``,
                the classifier, makes the :class:`~edgevision.frames.Result`, hands it to the results thread.
results         publishes each result to every sink, in order. Its queue holds two results; if the sinks fall
                further behind, the oldest waiting result is dropped (counted) rather than stalling inference
                (``newest_wins=False``: inference waits instead, and every result is published).
==============  ===========================================================================================

Preprocessing runs in the capture thread so that it overlaps inference (the kernels and LiteRT release the GIL),
at the price of preparing frames that are then dropped; at 30 fps and ~1-4 ms per frame that is a few percent
of one core. That only pays when a core is free: with ``prepare_in_capture=False`` the inference thread
prepares the frame it takes instead (the CLI chooses by core count; on a busy 2-core machine overlapping made
inference ~30 % slower through contention).

Timings per result (``timings_ms``): ``preprocess`` (prepare_frame), ``inference``, ``postprocess``
(classifier), ``sinks`` (the time the previous result took to publish: a result is measured before it is
published), and latency from capture to result (``Result.latency_ms``). :meth:`Pipeline.stats` gives the
rolling FPS and latency percentiles.

Shutdown: :meth:`stop` (thread-safe, also from a signal handler) ends :meth:`run`, which then closes the
source (waking a blocked read), joins the capture thread, lets the results thread publish what is queued,
closes every sink and returns. On the main thread, run() stops on SIGINT and SIGTERM; a second signal exits
at once (JSON lines are flushed per result, so files stay complete).
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time
from typing import Any, Optional, Sequence

import numpy as np

from .classifier import Classifier
from .frames import Frame, Result
from .model_info import ModelInfo
from .preprocess import prepare_frame
from .sinks.base import Sink
from .sources.base import EndOfStream, Source, SourceError

log = logging.getLogger("edgevision.pipeline")

_POLL = 0.05  # seconds: waits wake at least this often to see stop(); a signal handler only sets an Event


FORCE_AFTER_S = 1.0  # a second stop signal at least this long after the first forces the exit


class PipelineError(RuntimeError):
    """The pipeline stopped because a stage failed (message names the stage and the error)."""


class _Capture:
    """What the capture thread hands over: the frame, its prepared input, and preprocessing time."""

    __slots__ = ("frame", "x", "t_capture", "preprocess_ms")

    def __init__(self, frame: Frame, x: Optional[np.ndarray], t_capture: float, preprocess_ms: float):
        self.frame, self.x, self.t_capture, self.preprocess_ms = frame, x, t_capture, preprocess_ms


def _percentile(sorted_values: list, q: float) -> Optional[float]:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(np.ceil(q / 100.0 * len(sorted_values))) - 1))
    return float(sorted_values[i])


class Pipeline:
    """Run a source through a backend and a classifier into sinks until stopped, the source ends, or
    ``max_frames`` results have been made.

    The pipeline owns the source and sinks it is given: :meth:`run` opens them and always closes them.
    The backend is the caller's (it outlives a pipeline, e.g. for benchmarks)."""

    def __init__(self, source: Source, backend, info: ModelInfo, classifier: Classifier,
                 sinks: Sequence[Sink] = (), *, max_frames: Optional[int] = None, stats_window: int = 100,
                 newest_wins: bool = True, results_queue: int = 2, prepare_in_capture: bool = True):
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise ValueError(f"max_frames must be a positive integer or None, got {max_frames!r}")
        if not (isinstance(stats_window, int) and stats_window >= 2):
            raise ValueError(f"stats_window must be an integer >= 2, got {stats_window!r}")
        if info.input_size is None:
            raise ValueError("the model does not say its input size; the pipeline cannot prepare frames for it")
        self.source = source
        self.backend = backend
        self.info = info
        self.classifier = classifier
        self.sinks = list(sinks)
        self.max_frames = max_frames
        self.newest_wins = newest_wins
        self.prepare_in_capture = prepare_in_capture

        self._stop = threading.Event()
        self._ran = False
        # capture → inference: one slot
        self._slot_lock = threading.Condition(threading.Lock())
        self._slot: Optional[_Capture] = None
        self._source_done = False
        self._error: Optional[BaseException] = None
        self._error_stage = ""
        # inference → results: a short queue
        self._results_lock = threading.Condition(threading.Lock())
        self._results: collections.deque = collections.deque()
        self._results_max = max(1, int(results_queue))
        self._results_closed = False
        # statistics (written by inference and results threads, read by stats())
        self._stats_lock = threading.Lock()
        self._frames = 0
        self._captured = 0
        self._dropped = 0
        self._results_dropped = 0
        self._sink_errors = 0
        self._t_start: Optional[float] = None
        self._t_done: collections.deque = collections.deque(maxlen=stats_window)
        self._latency: collections.deque = collections.deque(maxlen=stats_window)
        self._stage: dict[str, collections.deque] = {
            k: collections.deque(maxlen=stats_window) for k in ("preprocess", "inference", "postprocess", "sinks")}
        self._last_sinks_ms = 0.0

    # -- control -----------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to finish; returns at once. Safe from any thread and from a signal handler."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- statistics --------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Results so far, frames dropped, rolling FPS and latency percentiles (ms), mean stage times (ms)."""
        with self._stats_lock:
            t_done = list(self._t_done)
            lat = sorted(self._latency)
            stages = {k: (float(np.mean(v)) if v else None) for k, v in self._stage.items()}
            out = {"frames": self._frames, "captured": self._captured, "dropped": self._dropped,
                   "results_dropped": self._results_dropped, "sink_errors": self._sink_errors}
        fps = (len(t_done) - 1) / (t_done[-1] - t_done[0]) if len(t_done) >= 2 and t_done[-1] > t_done[0] else None
        out["fps"] = fps
        out["latency_ms"] = {"p50": _percentile(lat, 50), "p95": _percentile(lat, 95), "p99": _percentile(lat, 99)}
        out["stage_ms"] = stages
        return out

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Block until stopped (stop(), a signal, end of the source, ``max_frames``); return :meth:`stats`.
        Raises :class:`PipelineError` if the source or a stage failed (after shutting down cleanly)."""
        if self._ran:
            raise RuntimeError("a Pipeline runs once; make a new one")
        self._ran = True
        restore = self._install_signal_handlers()
        capture = threading.Thread(target=self._capture_loop, name="edgevision-capture", daemon=True)
        results = threading.Thread(target=self._results_loop, name="edgevision-results", daemon=True)
        try:
            for s in self.sinks:
                s.open()
            results.start()
            capture.start()
            self._t_start = time.monotonic()
            self._inference_loop()
        except BaseException as e:  # noqa: BLE001 - recorded, shut down, re-raised below
            if self._error is None:
                self._error, self._error_stage = e, "inference"
        finally:
            self._shutdown(capture, results)
            restore()
        if self._error is not None:
            if isinstance(self._error, KeyboardInterrupt):
                raise self._error
            raise PipelineError(f"{self._error_stage} failed: {self._error}") from self._error
        return self.stats()

    def _capture_loop(self) -> None:
        newest_wins, early = self.newest_wins, self.prepare_in_capture
        try:
            self.source.open()
            while not self._stop.is_set():
                try:
                    frame = self.source.read()
                except EndOfStream:
                    break
                t_got = time.monotonic()
                x = self._prepare(frame) if early else None
                prep_ms = (time.monotonic() - t_got) * 1000.0
                item = _Capture(frame, x, frame.t_capture or t_got, prep_ms)
                with self._slot_lock:
                    if not newest_wins:
                        while self._slot is not None and not self._stop.is_set():
                            self._slot_lock.wait(_POLL)
                    if self._slot is not None:
                        self._dropped += 1
                    self._slot = item
                    self._captured += 1
                    self._slot_lock.notify()
        except BaseException as e:  # noqa: BLE001 - any failure here ends the run, reported by run()
            if not self._stop.is_set() or not isinstance(e, (EndOfStream, SourceError)):
                self._error, self._error_stage = e, f"source {getattr(self.source, 'name', '')}".rstrip()
                log.debug("capture failed", exc_info=True)
        finally:
            with self._slot_lock:
                self._source_done = True
                self._slot_lock.notify()

    def _prepare(self, frame):
        return prepare_frame(frame, self.info, getattr(self.backend, "input_dtype", np.float32),
                             getattr(self.backend, "input_quantization", None))

    def _take(self) -> Optional[_Capture]:
        """The newest prepared frame; None when stopping or when the source ended and nothing is left."""
        with self._slot_lock:
            while self._slot is None:
                if self._stop.is_set() or self._source_done:
                    return None
                self._slot_lock.wait(_POLL)
            item, self._slot = self._slot, None
            self._slot_lock.notify()  # a lossless capture thread waits for the empty slot
            return item

    def _inference_loop(self) -> None:
        backend, classifier = self.backend, self.classifier
        while not self._stop.is_set():
            item = self._take()
            if item is None:
                break
            if item.x is None:  # prepare_in_capture=False: prepare here, only the frames that are used
                t = time.monotonic()
                item.x = self._prepare(item.frame)
                item.preprocess_ms = (time.monotonic() - t) * 1000.0
            t0 = time.monotonic()
            scores = backend.infer(item.x)
            t1 = time.monotonic()
            c = classifier.update(scores)
            t2 = time.monotonic()
            frame = item.frame
            with self._stats_lock:
                dropped, sinks_ms = self._dropped, self._last_sinks_ms
            timings = {"preprocess": item.preprocess_ms, "inference": (t1 - t0) * 1000.0,
                       "postprocess": (t2 - t1) * 1000.0, "sinks": sinks_ms}
            result = Result(seq=frame.seq, t_capture=item.t_capture, t_done=t2, top=c.top, label=c.label,
                            score=c.score, timings_ms=timings, dropped=dropped, extra={"source": frame.source})
            with self._stats_lock:
                self._frames += 1
                self._t_done.append(t2)
                self._latency.append(result.latency_ms)
                for k in ("preprocess", "inference", "postprocess"):
                    self._stage[k].append(timings[k])
                n = self._frames
            self._enqueue(result, frame)
            if self.max_frames is not None and n >= self.max_frames:
                self._stop.set()

    def _enqueue(self, result: Result, frame: Frame) -> None:
        if not self.sinks:
            return
        with self._results_lock:
            if not self.newest_wins:  # every frame is processed, so every result is published
                while len(self._results) >= self._results_max and not self._results_closed:
                    self._results_lock.wait(_POLL)
            elif len(self._results) >= self._results_max:
                self._results.popleft()
                with self._stats_lock:
                    self._results_dropped += 1
            self._results.append((result, frame))
            self._results_lock.notify()

    def _results_loop(self) -> None:
        while True:
            with self._results_lock:
                while not self._results and not self._results_closed:
                    self._results_lock.wait(_POLL)
                if not self._results:
                    return  # closed and drained
                result, frame = self._results.popleft()
                self._results_lock.notify()  # a lossless pipeline waits for room
            t0 = time.monotonic()
            for sink in self.sinks:
                try:
                    sink.publish(result, frame)
                except Exception as e:  # noqa: BLE001 - one broken sink must not stop the others
                    with self._stats_lock:
                        self._sink_errors += 1
                        first = self._sink_errors == 1
                    if first:
                        log.warning("sink %s failed: %s (further sink errors are counted, not logged)",
                                    getattr(sink, "name", sink), e)
            ms = (time.monotonic() - t0) * 1000.0
            with self._stats_lock:
                self._last_sinks_ms = ms
                self._stage["sinks"].append(ms)

    def _shutdown(self, capture: threading.Thread, results: threading.Thread) -> None:
        self._stop.set()
        try:
            self.source.close()  # wakes a read() blocked on the device or in a retry back-off
        except Exception as e:  # noqa: BLE001
            log.warning("closing the source failed: %s", e)
        if capture.ident is not None:  # started
            capture.join(timeout=3.0)
            if capture.is_alive():
                log.warning("the capture thread did not stop within 3 s (source read still blocked)")
        with self._results_lock:
            self._results_closed = True
            self._results_lock.notify()
        if results.ident is not None:
            results.join(timeout=5.0)
            if results.is_alive():
                log.warning("the sinks did not finish publishing within 5 s")
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:  # noqa: BLE001
                log.warning("closing sink %s failed: %s", getattr(sink, "name", sink), e)

    # -- signals -----------------------------------------------------------------------------------------
    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}
        first = []  # monotonic time of the first signal

        def handler(signum, _frame):
            now = time.monotonic()
            # A repeat within a second is the same request delivered twice (`timeout` and `kill 0` signal the
            # process and its group): only a deliberate second Ctrl-C forces the exit.
            if first and now - first[0] >= FORCE_AFTER_S:
                os.write(2, b"edgevision: forced exit\n")
                os._exit(128 + signum)
            if first:
                return
            first.append(now)
            log.info("%s: stopping (again to force)", signal.Signals(signum).name)
            self._stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):  # not allowed here (embedded interpreter)
                pass

        def restore():
            for sig, h in previous.items():
                try:
                    signal.signal(sig, h)
                except (ValueError, OSError):
                    pass
        return restore
