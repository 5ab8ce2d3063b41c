"""The native engine's C code on ARM, under qemu user emulation, without Python on the target: each script
cross-compiles the kernels with a C driver for aarch64 (run as a Cortex-A72 and a Cortex-A76) and 32-bit
ARMv7, and compares every variant the emulated core runs with the scalar reference (and, for whole models,
with TFLite's reference outputs computed here). A driver fails, never skips, when the variant it was asked for
did not run.

Needs the cross compilers and qemu-user-static that tools/setup_dev.sh installs; missing tools are a failure.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# name -> (command, the line a passing run ends with)
SCRIPTS = {
    "preprocess": (["tools/test_native_arm.sh", "--cases", "60"], "ALL PASS"),
    "models": (["tools/test_native_arm_models.sh"], "test_native_arm_models: ALL PASS"),
    "conv": (["tools/test_native_arm_kernels.sh", "--cases", "1500"], "test_native_arm_kernels: all passed"),
    "elementwise": (["tools/test_native_arm_elementwise.sh", "--cases", "400"], "ALL PASS"),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_arm_kernels_match_the_reference_under_qemu(name):
    argv, passed = SCRIPTS[name]
    r = subprocess.run(["bash", str(ROOT / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=1800,
                       cwd=ROOT)
    tail = (r.stdout[-4000:] + "\n" + r.stderr[-2000:]).strip()
    assert r.returncode == 0, tail
    last = [line.strip() for out in (r.stdout, r.stderr) for line in out.strip().splitlines()[-2:]]
    assert passed in last, tail
