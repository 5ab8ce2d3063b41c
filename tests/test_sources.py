"""Frame sources: demo photos, image files, PyAV video, picamera2 (against a faithful fake), the retrying
wrapper and the spec parser. No hardware; timing tests measure behaviour with generous tolerances."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edgevision.demo import demo_photos
from edgevision.frames import Frame
from edgevision.sources import CorruptFrameError, EndOfStream, Source, SourceError, camera_present, open_source
from edgevision.sources.retry import RetryingSource

import fake_picamera2  # pytest puts tests/ on sys.path (the folder has no __init__.py)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def test_core_sources_import_with_numpy_alone():
    code = (
        "import sys\n"
        "for m in ('av', 'PIL', 'picamera2', 'libcamera'): sys.modules[m] = None\n"
        "import edgevision.sources, edgevision.sources.demo, edgevision.sources.images, "
        "edgevision.sources.av_source, edgevision.sources.picamera2_source, edgevision.sources.retry\n"
        "from edgevision.sources.av_source import AVSource\n"
        "try:\n    AVSource('rtsp://cam/x').open()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install av" in out


# --- demo ----------------------------------------------------------------------------------------------------
def test_demo_gives_rgb_photos_with_seq_counting_frames():
    with open_source("demo", fps=50) as src:
        frames = [src.read() for _ in range(3)]
    assert frames[0].seq == 0 and frames[0].seq < frames[1].seq < frames[2].seq  # gaps only if this runs late
    for f in frames:
        assert f.format == "rgb" and f.data.dtype == np.uint8 and f.data.shape == (f.height, f.width, 3)
        assert f.source.startswith("demo:")
    assert frames[0].source == frames[1].source  # the spec holds each photo in view for a few seconds


def test_demo_hold_keeps_each_photo_for_round_hold_times_fps_frames():
    from edgevision.sources.demo import DemoSource
    with DemoSource(fps=1000, loop=False, hold=0.003) as src:
        names = []
        while True:
            try:
                names.append(src.read().source)
            except EndOfStream:
                break
    photos = sorted(set(names))
    assert len(names) == 3 * len(photos)
    assert names[0] == names[1] == names[2] != names[3]


def test_demo_n_frames_at_fps_take_n_over_fps():
    fps, n = 20.0, 10
    with open_source("demo", fps=fps) as src:
        src.read()  # starts the clock
        t0 = time.monotonic()
        seqs = [src.read().seq for _ in range(n)]
        elapsed = time.monotonic() - t0
    assert seqs == list(range(1, n + 1))
    assert n / fps * 0.9 <= elapsed <= n / fps + 0.3, elapsed


def test_demo_slow_reader_gets_newest_frame_and_seq_counts_the_missed_ones():
    with open_source("demo", fps=20) as src:
        src.read()
        time.sleep(0.33)  # ~6 frame periods
        t0 = time.monotonic()
        f = src.read()
        assert time.monotonic() - t0 < 0.06  # no burst of stale frames, no sleep: it is already due
        assert 5 <= f.seq <= 8


def test_demo_size_scales_and_center_crops_to_camera_frame():
    with open_source("demo", fps=200, size=(320, 180)) as src:
        f = src.read()
    assert (f.width, f.height) == (320, 180) and f.data.shape == (180, 320, 3)


def test_demo_without_loop_ends_after_each_photo_once():
    from edgevision.sources.demo import DemoSource

    with DemoSource(fps=1000, loop=False) as src:
        n = 0
        with pytest.raises(EndOfStream):
            while True:
                src.read()
                n += 1
    assert n == len(demo_photos())


def test_demo_close_from_another_thread_wakes_a_sleeping_read():
    from edgevision.sources.demo import DemoSource

    src = DemoSource(fps=0.2)
    src.open()
    src.read()
    threading.Timer(0.1, src.close).start()
    t0 = time.monotonic()
    with pytest.raises(EndOfStream):
        src.read()  # would sleep 5 s
    assert time.monotonic() - t0 < 1.0


# --- image files ---------------------------------------------------------------------------------------------
@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    for name, colour in (("a.png", RED), ("b.jpg", GREEN), ("d.png", BLUE)):
        Image.new("RGB", (40, 30), colour).save(tmp_path / name)
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    return tmp_path


def test_image_folder_reads_sorted_and_a_corrupt_file_raises_naming_it(image_folder):
    from edgevision.sources.images import ImageSource

    with ImageSource(image_folder) as src:
        a, b = src.read(), src.read()
        with pytest.raises(CorruptFrameError, match="c.jpg"):
            src.read()
        d = src.read()
        with pytest.raises(EndOfStream):
            src.read()
    assert [f.source.rsplit("/", 1)[1] for f in (a, b, d)] == ["a.png", "b.jpg", "d.png"]
    assert a.format == "rgb" and a.data.shape == (30, 40, 3)
    assert tuple(a.data[15, 20]) == RED and tuple(d.data[15, 20]) == BLUE
    assert np.abs(b.data[15, 20].astype(int) - GREEN).max() <= 3  # JPEG
    assert [a.seq, b.seq, d.seq] == [0, 1, 2]


def test_image_folder_loops_when_asked(image_folder):
    with open_source(str(image_folder), loop=True) as src:
        names = []
        for _ in range(7):
            try:
                names.append(src.read().source.rsplit("/", 1)[1])
            except CorruptFrameError:
                names.append("corrupt")
    assert names == ["a.png", "b.jpg", "corrupt", "d.png", "a.png", "b.jpg", "corrupt"]


def test_single_image_file_gives_one_frame(image_folder):
    with open_source(str(image_folder / "a.png")) as src:
        assert src.read().width == 40
        with pytest.raises(EndOfStream):
            src.read()


def test_image_source_missing_path_is_a_user_error(tmp_path):
    from edgevision.sources.images import ImageSource

    with pytest.raises(FileNotFoundError, match="nope"):
        ImageSource(tmp_path / "nope")


# --- PyAV ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def colour_video(tmp_path_factory):
    """A real MPEG-4 file made with PyAV: 6 red frames, then 6 blue, 64×48 at 50 fps."""
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("video") / "colours.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=50)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(12):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:] = RED if i < 6 else BLUE
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _mean_colour(frame: Frame) -> np.ndarray:
    return frame.to_rgb()[8:-8, 8:-8].reshape(-1, 3).mean(axis=0)


def test_av_file_decodes_known_colours_then_ends(colour_video):
    from edgevision.sources.av_source import AVSource

    with AVSource(str(colour_video)) as src:
        frames = []
        with pytest.raises(EndOfStream):
            while True:
                frames.append(src.read())
    assert len(frames) == 12
    assert [f.seq for f in frames] == list(range(12))
    assert frames[0].format == "rgb" and frames[0].data.shape == (48, 64, 3)
    for f, want in zip(frames, [RED] * 6 + [BLUE] * 6):
        assert np.abs(_mean_colour(f) - want).max() < 24, (f.seq, _mean_colour(f))


def test_av_file_loops_by_seeking_to_the_start(colour_video):
    from edgevision.sources.av_source import AVSource

    with AVSource(str(colour_video), loop=True) as src:
        frames = [src.read() for _ in range(30)]
    for i, f in enumerate(frames):  # three passes through 6 red + 6 blue
        want = RED if i % 12 < 6 else BLUE
        assert np.abs(_mean_colour(f) - want).max() < 24, (i, _mean_colour(f))
    assert [f.seq for f in frames] == list(range(30))


def test_av_file_realtime_plays_at_its_frame_rate(colour_video):
    with open_source(str(colour_video)) as src:  # a video file spec plays in real time
        src.read()
        t0 = time.monotonic()
        for _ in range(10):
            src.read()
        elapsed = time.monotonic() - t0
    assert 10 / 50 * 0.8 <= elapsed <= 10 / 50 + 0.25, elapsed


def test_av_retry_wrapper_loops_a_file(colour_video):
    from edgevision.sources.av_source import AVSource

    src = RetryingSource(lambda: AVSource(str(colour_video)), loop=True, sleep=lambda d: False)
    with src:
        frames = [src.read() for _ in range(20)]
    assert src.reopens == 1 and src.errors == 0
    assert frames[12].seq == 0  # a new source after the reopen


def test_av_garbage_file_and_missing_camera_are_source_errors(tmp_path):
    pytest.importorskip("av")
    from edgevision.sources.av_source import AVSource

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(SourceError, match="broken.mp4"):
        AVSource(str(bad)).open()
    with pytest.raises(SourceError, match="/dev/video99"):
        AVSource(99).open()


def test_av_names_hide_stream_passwords():
    from edgevision.sources.av_source import AVSource

    assert AVSource("rtsp://admin:s3cret@10.0.0.9/stream1").name == "av:rtsp://admin:***@10.0.0.9/stream1"


def test_av_rtsp_defaults_to_tcp_and_user_options_win():
    from edgevision.sources.av_source import AVSource

    assert AVSource("rtsp://cam/x")._open_args()["options"] == {"rtsp_transport": "tcp"}
    args = AVSource("rtsp://cam/x", options={"rtsp_transport": "udp"})._open_args()
    assert args["options"]["rtsp_transport"] == "udp" and args["timeout"] == (10.0, 10.0)


# --- retry wrapper -------------------------------------------------------------------------------------------
class ScriptedSource(Source):
    """Plays a script: "frame", "corrupt", "fail" (SourceError), "end" (EndOfStream); "open-fail" as the first
    step makes open() fail."""

    def __init__(self, script):
        self.script, self.pos, self.closed = list(script), 0, False
        self.name = "scripted"

    def open(self):
        if self.script and self.script[0] == "open-fail":
            raise SourceError("device not ready")

    def read(self):
        step = self.script[self.pos] if self.pos < len(self.script) else "end"
        self.pos += 1
        if step == "frame":
            return Frame(np.zeros((2, 2, 3), np.uint8), "rgb", 2, 2, seq=self.pos)
        if step == "corrupt":
            raise CorruptFrameError("bad frame")
        if step == "fail":
            raise SourceError("cable pulled")
        raise EndOfStream("done")

    def close(self):
        self.closed = True


def scripted_factory(*scripts):
    made = []

    def factory():
        made.append(ScriptedSource(scripts[min(len(made), len(scripts) - 1)]))
        return made[-1]

    return factory, made


class RecordingSleep:
    def __init__(self):
        self.delays = []

    def __call__(self, delay):
        self.delays.append(delay)
        return False


def test_retry_flaky_open_fails_twice_then_works_with_doubling_backoff():
    factory, made = scripted_factory(["open-fail"], ["open-fail"], ["frame", "frame"])
    sleep = RecordingSleep()
    with RetryingSource(factory, sleep=sleep) as src:
        assert src.read().seq == 1
    assert sleep.delays == [0.5, 1.0]
    assert src.errors == 2 and len(made) == 3


def test_retry_backoff_resets_after_a_good_frame_and_caps_at_max():
    factory, made = scripted_factory(["fail"], ["fail"], ["frame", "fail"], ["fail"], ["fail"], ["fail"], ["frame"])
    sleep = RecordingSleep()
    src = RetryingSource(factory, max_backoff=2.0, sleep=sleep)
    src.read()  # after fail, fail
    src.read()  # after fail (reset by the good frame), fail, fail, fail
    assert sleep.delays == [0.5, 1.0, 0.5, 1.0, 2.0, 2.0]
    assert src.reopens == 6 and src.errors == 6
    assert all(s.closed for s in made[:-1])
    src.close()
    assert made[-1].closed


def test_retry_skips_and_counts_corrupt_frames_without_waiting():
    factory, _ = scripted_factory(["corrupt", "frame", "corrupt", "corrupt", "frame"])
    sleep = RecordingSleep()
    src = RetryingSource(factory, sleep=sleep)
    assert [src.read().seq, src.read().seq] == [2, 5]
    assert (src.skipped, src.errors, src.reopens, sleep.delays) == (3, 3, 0, [])


def test_retry_end_of_stream_reopens_only_when_looping():
    factory, made = scripted_factory(["frame", "end"])
    src = RetryingSource(factory, sleep=RecordingSleep())
    src.read()
    with pytest.raises(EndOfStream):
        src.read()
    factory, made = scripted_factory(["frame", "end"])
    src = RetryingSource(factory, loop=True, sleep=RecordingSleep())
    assert [src.read().seq for _ in range(3)] == [1, 1, 1]
    assert src.reopens == 2 and len(made) == 3


def test_retry_disabled_reraises_and_logs_one_line_per_failure(caplog):
    factory, _ = scripted_factory(["fail"])
    with pytest.raises(SourceError, match="cable pulled"):
        RetryingSource(factory, retry=False).read()
    factory, _ = scripted_factory(["fail"], ["frame"])
    with caplog.at_level(logging.WARNING, logger="edgevision.sources"):
        RetryingSource(factory, sleep=RecordingSleep()).read()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "cable pulled" in lines[0] and "0.5 s" in lines[0]


def test_retry_close_from_another_thread_interrupts_the_backoff_wait():
    factory, _ = scripted_factory(["open-fail"])
    src = RetryingSource(factory, max_backoff=10.0)
    outcome = {}

    def reader():
        t0 = time.monotonic()
        try:
            src.read()
        except EndOfStream as e:
            outcome["raised"] = e
        outcome["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(1.0)  # inside the 1 s wait (after 0.5 s) by now
    t0 = time.monotonic()
    src.close()
    t.join(2.0)
    assert not t.is_alive() and "raised" in outcome
    assert time.monotonic() - t0 < 0.3


# --- picamera2 (against the fake) ---------------------------------------------------------------------------
def assert_split_scene(frame: Frame, tol: int):
    rgb = frame.to_rgb()
    h, w = frame.height, frame.width
    hw, hh = (w // 2) & ~1, (h // 2) & ~1
    for region, want in ((rgb[:, :hw], RED), (rgb[:hh, hw:], GREEN), (rgb[hh:, hw:], BLUE)):
        err = np.abs(region.astype(int) - np.array(want)).max()
        assert err <= tol, (frame.format, frame.stride, want, err)


def open_fake(monkeypatch, platform, **kwargs):
    from edgevision.sources.picamera2_source import Picamera2Source

    cls = fake_picamera2.install(monkeypatch, platform=platform, stride_align=kwargs.pop("stride_align", None))
    src = Picamera2Source(**kwargs)
    src.open()
    return cls, src


def test_picamera2_pi4_lores_is_yuv420_with_padded_stride_and_decodes_to_true_colours(monkeypatch):
    cls, src = open_fake(monkeypatch, "vc4", main_size=(1280, 720), lores_size=(224, 224), fps=60)
    with src:
        f = src.read()
        # the raw layout picamera2 hands over: (h*3/2, stride) with the stride padded to 64 bytes
        assert src.platform == "vc4" and src.stream_config["stride"] == 256
        assert f.format == "yuv420" and f.data.shape == (336, 256) and f.stride == 256
        assert (f.width, f.height) == (224, 224) and not f.full_range
        assert (f.data[:224, 224:] == fake_picamera2.PAD).all()  # the padding is really there
        assert_split_scene(f, tol=3)  # BT.601 limited-range round trip
        for _ in range(5):
            src.read()
        assert cls.instances[0]._held == 0  # every request was released


@pytest.mark.parametrize("platform,size,align,stride", [
    ("vc4", (320, 240), None, 320),   # already aligned: no padding
    ("vc4", (200, 150), 256, 256),    # an unusual alignment
    ("pisp", (224, 224), None, 256),  # PiSP pads YUV420 to 128
])
def test_picamera2_yuv420_other_strides(monkeypatch, platform, size, align, stride):
    _, src = open_fake(monkeypatch, platform, main_size=(640, 480), lores_size=size, lores_format="YUV420",
                       stride_align=align)
    with src:
        f = src.read()
    assert f.format == "yuv420" and f.stride == stride and f.data.shape == (size[1] * 3 // 2, stride)
    assert_split_scene(f, tol=3)


@pytest.mark.parametrize("fmt,ours,channels", [("RGB888", "bgr", 3), ("XRGB8888", "bgrx", 4)])
@pytest.mark.parametrize("size", [(224, 224), (200, 150)])  # 200×3 = 600 bytes pads to 608
def test_picamera2_pi5_lores_rgb_formats_keep_memory_byte_order(monkeypatch, fmt, ours, channels, size):
    _, src = open_fake(monkeypatch, "pisp", main_size=(640, 480), lores_size=size,
                       lores_format=None if fmt == "RGB888" else fmt)
    with src:
        f = src.read()
    assert src.stream_config["format"] == fmt
    assert f.format == ours and f.data.shape == (size[1], size[0], channels)
    assert tuple(f.data[0, 0, :3]) == (0, 0, 255)  # red in real-world colour is B=0, G=0, R=255 in memory
    assert_split_scene(f, tol=0)


def test_picamera2_pi4_refuses_an_rgb_lores(monkeypatch):
    with pytest.raises(ValueError, match="YUV420"):
        open_fake(monkeypatch, "vc4", lores_size=(224, 224), lores_format="RGB888")


def test_picamera2_main_only_gives_bgr_main_and_keep_main_keeps_it(monkeypatch):
    _, src = open_fake(monkeypatch, "vc4", main_size=(320, 240))
    with src:
        f = src.read()
    assert f.format == "bgr" and f.data.shape == (240, 320, 3)
    assert_split_scene(f, tol=0)
    _, src = open_fake(monkeypatch, "pisp", main_size=(320, 240), lores_size=(160, 120), keep_main=True)
    with src:
        f = src.read()
    assert src.last_main.width == 320 and src.last_main.seq == f.seq
    assert_split_scene(src.last_main, tol=0)


def test_picamera2_frames_come_at_fps_and_seq_counts_dropped_frames(monkeypatch):
    _, src = open_fake(monkeypatch, "pisp", main_size=(320, 240), lores_size=(160, 120), fps=30)
    with src:
        src.read()
        t0 = time.monotonic()
        frames = [src.read() for _ in range(6)]
        elapsed = time.monotonic() - t0
        assert [f.seq for f in frames] == list(range(1, 7))
        assert 6 / 30 * 0.8 <= elapsed <= 6 / 30 + 0.2, elapsed
        assert abs(frames[-1].t_capture - time.monotonic()) < 0.1  # sensor timestamps are CLOCK_MONOTONIC
        time.sleep(0.2)  # ~6 frame periods unread
        assert src.read().seq >= frames[-1].seq + 5


def test_picamera2_missing_camera_and_failing_capture_are_source_errors(monkeypatch):
    from edgevision.sources.picamera2_source import Picamera2Source

    cls = fake_picamera2.install(monkeypatch, "vc4", cameras=1)
    with pytest.raises(SourceError, match=r"no camera 1 .*0: imx708"):
        Picamera2Source(camera_num=1).open()
    cls.fail_after = 2
    src = RetryingSource(lambda: Picamera2Source(main_size=(320, 240), fps=100), sleep=RecordingSleep())
    with src:
        for _ in range(3):
            src.read()
    assert src.errors == 1 and src.reopens == 1
    assert cls.instances[0].closed >= 1  # the failed camera was closed before the new one opened


def test_picamera2_missing_library_says_what_to_install(monkeypatch):
    from edgevision.sources.picamera2_source import Picamera2Source

    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(ImportError, match="python3-picamera2"):
        Picamera2Source().open()


# --- specs -----------------------------------------------------------------------------------------------------
def test_open_source_parses_every_form(image_folder, colour_video):
    from edgevision.sources.av_source import AVSource
    from edgevision.sources.demo import DemoSource
    from edgevision.sources.images import ImageSource
    from edgevision.sources.picamera2_source import Picamera2Source

    demo = open_source("demo", fps=5, size=(64, 48))
    assert isinstance(demo, DemoSource) and demo.fps == 5 and demo.size == (64, 48) and demo.loop
    assert open_source("picamera2").camera_num == 0
    assert open_source("picamera2:1").camera_num == 1
    for spec in ("/dev/video2", "usb:2"):
        s = open_source(spec)
        assert isinstance(s, AVSource) and s.target == "/dev/video2" and s.kind == "camera"
    for spec in ("rtsp://cam.local:554/stream", "http://cam.local/video.mjpg", "https://x/y.m3u8"):
        s = open_source(spec)
        assert isinstance(s, AVSource) and s.kind == "stream"
    assert isinstance(open_source(str(image_folder)), ImageSource)
    assert isinstance(open_source(str(image_folder / "a.png")), ImageSource)
    assert open_source(str(image_folder), loop=True).loop
    video = open_source(str(colour_video))
    assert isinstance(video, AVSource) and video.kind == "file" and video.realtime
    assert isinstance(open_source("picamera2:0"), Picamera2Source)


@pytest.mark.parametrize("spec", ["webcam", "ftp://x/y", "picamera2:x", "missing.jpg", ""])
def test_open_source_unknown_spec_names_it_and_lists_the_forms(spec):
    with pytest.raises(ValueError) as e:
        open_source(spec)
    assert repr(spec) in str(e.value) and "rtsp://" in str(e.value) and "usb:N" in str(e.value)


def test_camera_present(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    assert camera_present() is False
    fake_picamera2.install(monkeypatch, cameras=1)
    assert camera_present() is True
    fake_picamera2.install(monkeypatch, cameras=0)
    assert camera_present() is False
