"""edgevision run / bench / info, as users type them: real model, real demo source, real signals."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgevision.cli import main

ROOT = Path(__file__).resolve().parents[1]
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian Mau

pytest.importorskip("ai_edge_litert", reason="needs the litert extra (ai-edge-litert)")
pytest.importorskip("PIL", reason="the demo source decodes photos with Pillow")


def _edgevision(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "edgevision", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _rows(path: Path):
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "last line not complete"
    return [json.loads(line) for line in text.splitlines()]


def test_run_demo_20_frames_writes_20_json_lines(tmp_path):
    out = tmp_path / "r.jsonl"
    p = _edgevision("run", "--source", "demo", "--fps", "30", "--frames", "20", "--jsonl", str(out))
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr
    rows = _rows(out)
    assert len(rows) == 20
    for r in rows:
        assert set(r) >= {"seq", "time", "label", "score", "top", "latency_ms", "timings_ms", "dropped"}
        assert len(r["top"]) == 5 and r["latency_ms"] > 0
    assert all(r["source"].startswith("demo:") for r in rows)
    assert "fps" in stdout  # the live console line
    assert "Traceback" not in stderr


def test_run_on_the_cat_photo_reports_a_cat_once_the_label_settles(tmp_path):
    from edgevision.demo import demo_photos
    cat = next(p for p in demo_photos() if p.name.startswith("cat"))
    out = tmp_path / "r.jsonl"
    p = _edgevision("run", "--source", str(cat), "--loop", "--fps", "50", "--frames", "20", "--jsonl", str(out),
                    "--quiet")
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr
    rows = _rows(out)
    assert len(rows) == 20
    assert all(r["top"][0]["index"] in CAT_CLASSES for r in rows), [r["top"][0] for r in rows]
    # smoothing and hysteresis: a label is reported after a few frames, and it is a cat
    settled = [r for r in rows if r["label"] is not None]
    assert settled and len(settled) >= 10
    labels = (Path(__file__).resolve().parents[1] / "edgevision/models/imagenet_labels.txt").read_text().splitlines()
    assert all(labels.index(r["label"]) in CAT_CLASSES for r in settled), {r["label"] for r in settled}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_run_cleanly_with_a_complete_jsonl_file(tmp_path, sig):
    out = tmp_path / "r.jsonl"
    p = _edgevision("run", "--source", "demo", "--fps", "50", "--jsonl", str(out), "--quiet")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 5):
            time.sleep(0.05)
        p.send_signal(sig)
        t = time.monotonic()
        _, stderr = p.communicate(timeout=10)
        assert time.monotonic() - t < 3.0
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, stderr
    rows = _rows(out)
    assert len(rows) >= 5 and "Traceback" not in stderr
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)


def test_a_stop_signal_delivered_twice_at_once_still_stops_cleanly():
    """`timeout` and `kill 0` deliver SIGTERM to the process and to its group: that is one request, not a
    second one forcing an exit that skips flushing. (The handler is called directly: the kernel may merge
    two real signals into one, which would hide the difference.)"""
    script = (
        "import signal, threading\n"
        "from edgevision.pipeline import Pipeline\n"
        "p = Pipeline.__new__(Pipeline); p._stop = threading.Event()\n"
        "p._install_signal_handlers()\n"
        "h = signal.getsignal(signal.SIGTERM)\n"
        "h(signal.SIGTERM, None); h(signal.SIGTERM, None)\n"
        "print('stopping' if p._stop.is_set() else 'running')\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "stopping", (r.returncode, r.stdout, r.stderr)
    assert "forced exit" not in r.stderr


def test_config_file_with_flag_override(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    cfg = tmp_path / "ev.toml"
    cfg.write_text(f'source = "demo"\nframes = 6\nfps = 0\ntop_k = 2\nquiet = true\njsonl = "{out}"\n')
    assert main(["run", "--config", str(cfg), "--frames", "3"]) == 0
    rows = _rows(out)
    assert len(rows) == 3 and all(len(r["top"]) == 2 for r in rows)
    assert all(r["dropped"] == 0 for r in rows)  # fps 0: as fast as possible, every frame processed


def test_default_source_without_a_camera_is_the_demo_with_one_notice_line(tmp_path, capsys, monkeypatch):
    import edgevision.sources as sources
    monkeypatch.setattr(sources, "camera_present", lambda: False)
    assert main(["run", "--frames", "2", "--quiet", "--fps", "0"]) == 0
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if "demo" in line and "camera" in line]
    assert len(notices) == 1, err


def test_jsonl_to_stdout_keeps_stdout_pure_json(capsys):
    assert main(["run", "--source", "demo", "--fps", "0", "--frames", "3", "--jsonl", "-"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["dropped"] for line in out.splitlines()] == [0, 0, 0]
    assert "fps" in err


def _built_variants():
    from edgevision.native.variants import compiled
    return compiled()


def _port_in_use():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


@pytest.mark.parametrize("args, code, message", [
    # a kernel variant of another architecture (this build cannot have both)
    (["--backend", "native", "--kernels", "neon" if "neon" not in _built_variants() else "avx2"], 1,
     "is not built for this architecture"),
    (["--model", "/nonexistent/m.tflite"], 1, "model not found: /nonexistent/m.tflite"),
    (["--source", "no-such-thing"], 2, "cannot open source 'no-such-thing'"),
    (["--source", "picamera2", "--fps", "0"], 2, "--fps 0 (as fast as possible) is for the demo"),
    (["--threads", "0"], 2, "threads 0: expected an integer >= 1"),
    (["--threshold", "2"], 2, "threshold 2.0: expected a number from 0 to 1"),
    (["--web", "localhost:http"], 2, "expected HOST:PORT"),
    (["--web", "0.0.0.0:0"], 1, "without a token"),
    (["--size", "big"], 2, "expected WIDTHxHEIGHT"),
    (["--config", "/nonexistent.toml"], 2, "config file not found"),
    (["--jsonl", "/nonexistent-dir/r.jsonl"], 1, "does not exist"),
])
def test_bad_run_inputs_exit_with_one_line_and_no_traceback(capsys, args, code, message):
    assert main(["run", "--frames", "1", "--quiet", *args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_web_port_in_use_is_a_clear_failure(capsys):
    s = _port_in_use()
    try:
        port = s.getsockname()[1]
        assert main(["run", "--source", "demo", "--frames", "1", "--quiet", "--web", f"127.0.0.1:{port}"]) == 1
    finally:
        s.close()
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}: port in use" in err, err


def test_unknown_flag_is_usage_error_exit_2():
    p = _edgevision("run", "--no-such-flag")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2 and "unrecognized arguments" in err


def test_bad_config_key_exits_2_naming_it(tmp_path, capsys):
    cfg = tmp_path / "ev.toml"
    cfg.write_text("thread = 2\n")
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'thread'" in err and "threads" in err


def test_info_lists_versions_backends_cpu_and_cameras(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for what in ("edgevision", "numpy", "backend litert: available (ai-edge-litert", "backend native",
                 "cpu:", "cameras:", "video nodes:", "default model:"):
        assert what in out, out


def test_cpu_features_reads_x86_flags_and_arm_features(tmp_path):
    from edgevision.cli import cpu_features
    x86 = tmp_path / "x86"
    x86.write_text("model\t\t: 17\nmodel name\t: Some CPU\nflags\t\t: fpu sse4_2 avx2\n")
    arm = tmp_path / "arm"
    arm.write_text("Features\t: fp asimd asimddp\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 5\n")
    assert cpu_features(str(x86)) == ("Some CPU", ["avx2", "fpu", "sse4_2"])
    assert cpu_features(str(arm)) == ("BCM2835", ["asimd", "asimddp", "fp"])


def test_bench_json_has_every_figure(capsys):
    assert main(["bench", "--json", "--runs", "3", "--pipeline-frames", "5"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["load_ms"] > 0 and r["latency_ms"]["p50"] > 0 and r["peak_rss_mb"] > 10
    assert [t["threads"] for t in r["throughput"]] == list(range(1, (os.cpu_count() or 1) + 1))
    assert r["pipeline"]["frames"] == 5 and r["pipeline"]["fps"] > 0


def test_python_dash_m_edgevision_works():
    p = _edgevision("--version")
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0 and out.startswith("edgevision ")
