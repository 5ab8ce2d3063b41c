"""Running code inside the arm64 Debian userland made by tools/setup_arm64_root.sh (qemu user emulation).

Tests marked ``arm64`` run only when EDGEVISION_ARM64_ROOT names a finished root (.ci/run sets it); once it is
set, a problem with the root fails the test instead of skipping it.

The emulated CPU is chosen with QEMU_CPU (qemu-user reads it at start-up, through binfmt_misc too), so the
same root runs as a Cortex-A72 (Pi 4: no dot product) or a Cortex-A76 (Pi 5). The guest's getauxval(AT_HWCAP)
comes from qemu's model of that core. Programs that read /proc/cpuinfo or /sys/devices/system/cpu (LiteRT's
cpuinfo library) find files describing the same core: /proc and /sys are not mounted here, so plain files are
written in their place, as ../shared/ENVIRONMENT.md describes.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
VENV = "/opt/edgevision-venv"  # made by tools/setup_arm64_root.sh
VENV_PYTHON = f"{VENV}/bin/python3"

# What a Linux kernel on each core reports (CPU part numbers from Arm's TRMs; Features as the kernel names
# the HWCAP bits qemu sets for that model).
CPUS = {
    "cortex-a72": ("0xd08", "fp asimd evtstrm crc32 cpuid"),
    "cortex-a76": ("0xd0b", "fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
}


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
    for mnt in ("proc", "sys"):
        if os.path.ismount(root / mnt):
            pytest.fail(f"{root / mnt} is mounted (a setup run in progress?); these tests write plain files there")
    return root


def describe_cpu(root: pathlib.Path, cpu: str) -> None:
    """Make ROOT/proc/cpuinfo and ROOT/sys/devices/system/cpu describe one core of the given model."""
    part, features = CPUS[cpu]
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(
        f"processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 0\n\n")
    cpu_dir = root / "sys" / "devices" / "system" / "cpu"
    cpu_dir.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present", "online"):
        (cpu_dir / name).write_text("0\n")


def copy_into_root(root: pathlib.Path, paths: list[str], ignore=("__pycache__", "*.so", "*.egg-info")) -> pathlib.Path:
    """A fresh directory under ROOT/tmp holding copies of the given repository paths; returns its host path."""
    dest = pathlib.Path(tempfile.mkdtemp(prefix="edgevision-test-", dir=root / "tmp"))
    for rel in paths:
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns(*ignore))
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def guest_path(root: pathlib.Path, host_path: pathlib.Path) -> str:
    return "/" + str(pathlib.Path(host_path).relative_to(root))


def run_in_root(root: pathlib.Path, argv: list[str], *, cpu: str | None = None, env: dict | None = None,
                cwd: str = "/", timeout: float = 1200) -> subprocess.CompletedProcess:
    """Run argv in the chroot (as the emulated `cpu` when given); output captured as text."""
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    full_env = {"PATH": f"{VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root",
                "LIBCAMERA_LOG_LEVELS": "*:ERROR", "PYTHONDONTWRITEBYTECODE": "1"}
    if cpu is not None:
        describe_cpu(root, cpu)
        full_env["QEMU_CPU"] = cpu
    full_env.update(env or {})
    return subprocess.run([chroot, str(root), "/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd, *argv], env=full_env,
                          capture_output=True, text=True, timeout=timeout)
