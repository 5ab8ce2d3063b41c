"""The native engine on aarch64: `pip install` builds it inside an arm64 Debian userland (qemu user emulation),
then its tests run there as a Cortex-A72 (Raspberry Pi 4: NEON, no dot product) and as a Cortex-A76
(Raspberry Pi 5: dot product), with ai-edge-litert's aarch64 build as the bit-exactness oracle.

Each run sets EDGEVISION_EXPECT_VARIANT (neon on the A72, dotprod on the A76): the tests inside fail if
detection chose anything else. Emulation is 5-20x slower than the host, so only a small set runs there:
ARM_TESTS below. Runs when EDGEVISION_ARM64_ROOT names a root made by tools/setup_arm64_root.sh (.ci/run sets it).
"""
from __future__ import annotations

import shutil

import pytest
from arm64 import VENV, arm64_root, copy_into_root, guest_path, run_in_root

pytestmark = pytest.mark.arm64

# test files run inside the userland, and the files they need
ARM_TESTS = ["tests/test_native_variants.py", "tests/test_native_models.py", "tests/test_native_elementwise.py"] + []  # preprocessing runs on ARM through tools/test_native_arm.sh (tests/test_native_arm_qemu.py)
ARM_TEST_SUPPORT = ["tests/tflite_builder.py", "tests/arm64.py", "tests/data/native", "tests/data/fashion_mnist_int8.tflite",
                    "edgevision/demo"]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "edgevision"]


@pytest.fixture(scope="module")
def root():
    return arm64_root()


@pytest.fixture(scope="module")
def installed(root):
    """edgevision installed into the userland's venv by pip, from a copy of this checkout (the C extension is
    compiled there, by the userland's gcc); yields the guest directory holding a copy of the tests."""
    src = copy_into_root(root, SOURCES)
    run = copy_into_root(root, ARM_TESTS + ARM_TEST_SUPPORT)
    try:
        r = run_in_root(root, [f"{VENV}/bin/pip", "install", "-q", "--no-deps", "--no-build-isolation",
                               "--force-reinstall", "--disable-pip-version-check", guest_path(root, src)],
                        env={"PIP_NO_INDEX": "1"}, timeout=1800)
        assert r.returncode == 0, f"pip install in the arm64 userland failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        r = run_in_root(root, [f"{VENV}/bin/python3", "-c",
                               "import edgevision._native as n, platform; print(platform.machine(), n.compiled_variants())"],
                        cwd="/tmp")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[0] == "aarch64" and "'neon', 'dotprod'" in r.stdout, r.stdout
        yield guest_path(root, run)
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


@pytest.mark.parametrize("cpu, variant", [("cortex-a72", "neon"), ("cortex-a76", "dotprod")])
def test_native_engine_tests_pass_on_emulated_pi_cores(root, installed, cpu, variant):
    r = run_in_root(root, [f"{VENV}/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           "--rootdir", installed, *[f"{installed}/{t}" for t in ARM_TESTS]],
                    cpu=cpu, cwd=installed, timeout=3600,
                    env={"EDGEVISION_EXPECT_VARIANT": variant, "EDGEVISION_NATIVE_TEST_INPUTS": "1"})
    tail = (r.stdout[-6000:] + "\n" + r.stderr[-3000:]).strip()
    assert r.returncode == 0, f"native tests failed as {cpu}:\n{tail}"
    assert " passed" in r.stdout and " failed" not in r.stdout, tail
    print(f"{cpu}: {r.stdout.strip().splitlines()[-1]}")
