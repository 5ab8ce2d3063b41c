"""The firmware scripts (firmware_scripts/): flashing an SD card and provisioning a Pi, tested without a Pi.

The tests are bats suites in tests/firmware (shell tests for shell scripts); this file runs them so that
`tools/test.sh` does.

* Always: shellcheck over every script; quoting (lib/quote.sh) against sh, dash and PyYAML; flash.sh on stand-in
  Raspberry Pi OS images built with sfdisk, mkfs.vfat/mtools and mkfs.ext4 -d, every written file read back;
  provision.sh's command line, the unit files under systemd-analyze verify, make_bundle.sh. They need the tools
  tools/setup_firmware_tests.sh installs (bats, mtools, dosfstools, fdisk, ...), and fail, saying so, without them.
* When EDGEVISION_PROVISION_ROOTS names prepared arm64 bases (colon-separated; tools/setup_firmware_tests.sh
  --roots makes them and prints the value; .ci/run sets it): for each, a fresh copy boots a flashed card's first
  boot under qemu and runs provision.sh there (tests/firmware/emulated_provision.bats). Once the variable is
  set, a missing or broken base fails; it never skips.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SUITES = REPO / "tests" / "firmware"
SETUP = "tools/setup_firmware_tests.sh"
HOST_TOOLS = ["bats", "shellcheck", "mcopy", "mkfs.vfat", "mkfs.ext4", "debugfs", "sfdisk", "xz", "openssl",
              "systemd-analyze", "ssh-keygen"]


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run {SETUP} (as root) to install the firmware tests' tools")


def run_bats(path: pathlib.Path, env: dict | None = None, timeout: float = 900) -> str:
    require_tools(*HOST_TOOLS)
    full_env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin", **(env or {}))
    r = subprocess.run(["bats", "--tap", str(path)], cwd=REPO, env=full_env, capture_output=True, text=True,
                       timeout=timeout)
    out = r.stdout + ("\n" + r.stderr if r.stderr.strip() else "")
    assert r.returncode == 0, f"bats {path.name} failed:\n{out[-12000:]}"
    assert "\nok " in "\n" + r.stdout and "not ok" not in r.stdout, out
    return out


SHELL_SCRIPTS = ["firmware_scripts/flash.sh", "firmware_scripts/provision.sh", "firmware_scripts/make_bundle.sh",
                 "firmware_scripts/lib/common.sh", "firmware_scripts/lib/quote.sh", "firmware_scripts/lib/values.sh",
                 "firmware_scripts/lib/bundle.sh", "tests/firmware/make_standin_image.sh",
                 "tests/firmware/helpers.bash", "tests/firmware/emulated.bash", SETUP,
                 "tools/setup_arm64_root.sh", "tools/lib/arm64_chroot.sh"]
POSIX_SH = ["firmware_scripts/firstboot-setup.sh", "firmware_scripts/templates/firstrun.sh.in"]


def test_shell_scripts_are_shellcheck_clean():
    require_tools("shellcheck")
    for args in (["-x", *SHELL_SCRIPTS], ["-s", "sh", *POSIX_SH],
                 ["-s", "bash", *(str(p.relative_to(REPO)) for p in sorted(SUITES.glob("*.bats")))]):
        r = subprocess.run(["shellcheck", *args], cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_quoting_of_typed_values():
    print(run_bats(SUITES / "quote.bats"))


def test_flash_on_standin_images():
    print(run_bats(SUITES / "flash.bats"))


def test_provision_command_line_units_and_bundle():
    print(run_bats(SUITES / "provision.bats"))


def _roots() -> list[str]:
    value = os.environ.get("EDGEVISION_PROVISION_ROOTS", "")
    return [r for r in value.split(":") if r]


@pytest.mark.arm64
@pytest.mark.parametrize("base", _roots() or [None], ids=lambda b: pathlib.Path(b).name if b else "unset")
def test_first_boot_and_provisioning_in_emulated_arm64_root(base, tmp_path):
    if base is None:
        pytest.skip("EDGEVISION_PROVISION_ROOTS is not set: make the arm64 bases with "
                    f"{SETUP} --roots (root, ~25 min the first time) and set it to the value it prints")
    # The variable is a request to run these (CI sets it): from here on a problem fails, never skips.
    if os.geteuid() != 0:
        pytest.fail("EDGEVISION_PROVISION_ROOTS is set, but chroot and mount need root")
    if not (pathlib.Path(base) / ".edgevision" / "ready").exists():
        pytest.fail(f"{base} is not a finished base (no .edgevision/ready): {SETUP} --roots did not complete")
    timings = tmp_path / "timings"
    out = run_bats(SUITES / "emulated_provision.bats", env={"EV_BASE": base, "EV_TIMINGS": str(timings)},
                   timeout=5400)
    print(out)
    print("timings (s):\n" + (timings.read_text() if timings.exists() else "(none)"))
