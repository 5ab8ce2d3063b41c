#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian 12 machine: apt packages, the project venv (.venv) and
# the side venvs of the real peers we test against (tflite-support's metadata reader, tflite-runtime 2.14,
# both needing numpy<2). Idempotent: a second run only checks.
#
# usage: tools/setup_dev.sh [--with-tf]     --with-tf also builds the TensorFlow peer venv (1.6 GB)
set -euo pipefail

log() { printf 'setup_dev: %s\n' "$*" >&2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
with_tf=0
for arg in "$@"; do
    case "$arg" in
        --with-tf) with_tf=1 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) log "unknown option $arg"; exit 2 ;;
    esac
done

# chromium: the web view's browser test (driven by Playwright, never downloading a browser)
# gcc, python3-dev: the native engine's C extension (built by pip install -e below)
# cross compilers + qemu-user-static + shellcheck: the ARM kernel tests under emulation, the shell scripts' lint
APT_PACKAGES=(dataset-fashion-mnist python3-venv chromium gcc python3-dev
              gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
              qemu-user-static shellcheck)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        log "missing Debian packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv"
    "$PY" -m venv .venv
fi
# torch==2.13.0 is a CPU build on this machine's disk; an unpinned torch would download a multi-GB CUDA build.
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0 -e '.[dev]'

side_venv() {  # side_venv DIR PIP-ARGS...: a venv for one peer, rebuilt only when its marker is missing
    local dir=$1; shift
    if [[ -f "$dir/READY" ]]; then return 0; fi
    log "creating $dir ($*)"
    rm -rf "$dir"
    "$PY" -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    touch "$dir/READY"
}
mkdir -p .cache
side_venv .cache/tfsupport-venv tflite-support==0.4.4 'numpy<2'
side_venv .cache/tflite-runtime-venv tflite-runtime==2.14.0 'numpy<2'
# the firmware scripts' tests: bats, mtools, dosfstools, e2fsprogs, ... (the emulated provisioning roots are
# separate: tools/setup_firmware_tests.sh --roots, which .ci/run calls)
tools/setup_firmware_tests.sh
if ((with_tf)); then
    tools/setup_tf_venv.sh
fi
log "ready"
