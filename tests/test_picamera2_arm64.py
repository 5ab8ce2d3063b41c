"""The Picamera2 source's real code path inside an arm64 Debian userland (qemu user emulation) where the real
picamera2 and Debian's python3-libcamera are installed: the imports resolve, picamera2's platform detection
and libcamera's camera manager run, and with no camera attached the source reports that clearly.

Heavy (a prepared rootfs, root for chroot): runs only when EDGEVISION_ARM64_ROOT names a root made by
tools/setup_arm64_root.sh, e.g. ``EDGEVISION_ARM64_ROOT=/var/cache/edgevision/arm64-trixie pytest -m arm64``.
.ci/run sets it, so in CI these tests run or fail.
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
from arm64 import VENV_PYTHON, arm64_root, copy_into_root, guest_path, run_in_root

pytestmark = pytest.mark.arm64



@pytest.fixture(scope="module")
def root() -> pathlib.Path:
    return arm64_root()


@pytest.fixture(scope="module")
def repo_in_root(root):
    """A copy of the edgevision package (sources only) inside the rootfs; removed afterwards."""
    dest = copy_into_root(root, ["edgevision"], ignore=("__pycache__", "*.tflite", "*.jpg", "*.so", "csrc"))
    yield guest_path(root, dest)
    shutil.rmtree(dest, ignore_errors=True)


def run_python(root: pathlib.Path, pythonpath: str, code: str) -> subprocess.CompletedProcess:
    return run_in_root(root, [VENV_PYTHON, "-c", code], env={"PYTHONPATH": pythonpath}, timeout=600)


def test_picamera2_source_imports_with_real_picamera2_and_libcamera(root, repo_in_root):
    code = (
        "import platform, picamera2, libcamera\n"
        "from picamera2 import Picamera2\n"
        "from edgevision.sources.picamera2_source import Picamera2Source, isp_platform\n"
        "print('machine', platform.machine())\n"
        "print('isp', isp_platform(Picamera2))\n"
        "print('colour', libcamera.ColorSpace.Smpte170m().range == libcamera.ColorSpace.Range.Limited)\n"
    )
    r = run_python(root, repo_in_root, code)
    assert r.returncode == 0, r.stderr
    assert "machine aarch64" in r.stdout
    assert "isp vc4" in r.stdout  # no ISP device in a chroot: picamera2 falls back to VC4
    assert "colour True" in r.stdout  # the libcamera API the adapter relies on exists as used


def test_no_camera_in_the_chroot_is_a_clear_source_error(root, repo_in_root):
    code = (
        "from edgevision.sources import camera_present, SourceError\n"
        "from edgevision.sources.picamera2_source import Picamera2Source\n"
        "print('present', camera_present())\n"
        "try:\n"
        "    Picamera2Source(lores_size=(224, 224)).open()\n"
        "except SourceError as e:\n"
        "    print('error', e)\n"
    )
    r = run_python(root, repo_in_root, code)
    assert r.returncode == 0, r.stderr
    assert "present False" in r.stdout
    assert "error picamera2:0: no camera 0" in r.stdout, r.stdout + r.stderr
