"""The Picamera2 source's real code path inside an arm64 Debian userland (qemu user emulation) where the real
picamera2 and Debian's python3-libcamera are installed: the imports resolve, picamera2's platform detection
and libcamera's camera manager run, and with no camera attached the source reports that clearly.

Heavy (a prepared rootfs, root for chroot): runs only when EDGEVISION_ARM64_ROOT names a root made by
tools/setup_arm64_root.sh, e.g. ``EDGEVISION_ARM64_ROOT=/var/cache/edgevision/arm64-trixie pytest -m arm64``.
.ci/run sets it, so in CI these tests run or fail.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

pytestmark = pytest.mark.arm64

REPO = pathlib.Path(__file__).resolve().parents[1]
VENV_PYTHON = "/opt/edgevision-venv/bin/python3"  # made by tools/setup_arm64_root.sh


@pytest.fixture(scope="module")
def arm64_root() -> pathlib.Path:
    value = os.environ.get("EDGEVISION_ARM64_ROOT")
    if not value:
        pytest.skip("EDGEVISION_ARM64_ROOT is not set: build the rootfs with tools/setup_arm64_root.sh (needs root, "
                    "~25 min) and point the variable at it")
    root = pathlib.Path(value).resolve()
    # The variable is a request to run these tests (CI sets it): from here on, a problem fails, never skips.
    if not (root / ".edgevision" / "ready").exists():
        pytest.fail(f"EDGEVISION_ARM64_ROOT={root} is not a finished rootfs (no .edgevision/ready): "
                    "tools/setup_arm64_root.sh did not complete; run it and read its last line")
    if os.geteuid() != 0:
        pytest.fail("EDGEVISION_ARM64_ROOT is set, but chroot into the arm64 rootfs needs root")
    return root


@pytest.fixture(scope="module")
def repo_in_root(arm64_root):
    """A copy of the edgevision package (sources only) inside the rootfs; removed afterwards."""
    dest = pathlib.Path(tempfile.mkdtemp(prefix="edgevision-test-", dir=arm64_root / "tmp"))
    shutil.copytree(REPO / "edgevision", dest / "edgevision",
                    ignore=shutil.ignore_patterns("__pycache__", "*.tflite", "*.jpg"))
    yield "/" + str(dest.relative_to(arm64_root))
    shutil.rmtree(dest, ignore_errors=True)


def run_in_root(root: pathlib.Path, pythonpath: str, code: str) -> subprocess.CompletedProcess:
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": pythonpath, "LC_ALL": "C.UTF-8",
           "LIBCAMERA_LOG_LEVELS": "*:ERROR"}
    return subprocess.run([chroot, str(root), VENV_PYTHON, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)


def test_picamera2_source_imports_with_real_picamera2_and_libcamera(arm64_root, repo_in_root):
    code = (
        "import platform, picamera2, libcamera\n"
        "from picamera2 import Picamera2\n"
        "from edgevision.sources.picamera2_source import Picamera2Source, isp_platform\n"
        "print('machine', platform.machine())\n"
        "print('isp', isp_platform(Picamera2))\n"
        "print('colour', libcamera.ColorSpace.Smpte170m().range == libcamera.ColorSpace.Range.Limited)\n"
    )
    r = run_in_root(arm64_root, repo_in_root, code)
    assert r.returncode == 0, r.stderr
    assert "machine aarch64" in r.stdout
    assert "isp vc4" in r.stdout  # no ISP device in a chroot: picamera2 falls back to VC4
    assert "colour True" in r.stdout  # the libcamera API the adapter relies on exists as used


def test_no_camera_in_the_chroot_is_a_clear_source_error(arm64_root, repo_in_root):
    code = (
        "from edgevision.sources import camera_present, SourceError\n"
        "from edgevision.sources.picamera2_source import Picamera2Source\n"
        "print('present', camera_present())\n"
        "try:\n"
        "    Picamera2Source(lores_size=(224, 224)).open()\n"
        "except SourceError as e:\n"
        "    print('error', e)\n"
    )
    r = run_in_root(arm64_root, repo_in_root, code)
    assert r.returncode == 0, r.stderr
    assert "present False" in r.stdout
    assert "error picamera2:0: no camera 0" in r.stdout, r.stdout + r.stderr
