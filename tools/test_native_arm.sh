#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Cross-compile the fused preprocessing kernels (scalar reference + NEON) with the kernel tables, variant
# selection and CPU detection of edgevision/native/csrc, plus the C test driver csrc/tests/test_preprocess.c, for
# aarch64 and 32-bit ARMv7, and run them under qemu-user:
#
#   aarch64 -cpu cortex-a72   (Raspberry Pi 4: ASIMD, no dot product)  -> neon must run
#   aarch64 -cpu cortex-a76   (Raspberry Pi 5: ASIMD + dot product)    -> dotprod's table, whose preprocess slot
#                                                                         falls back to neon
#   armv7   (qemu-arm default CPU, NEON)                               -> neon must run
#   armv7   -cpu cortex-a7    (Raspberry Pi 2)                         -> neon must run
#
# Each run compares every variant the emulated CPU supports with ev_preprocess_ref on random frames (all formats,
# geometries, strides, row splits; frame and output end at a PROT_NONE page, so an out-of-bounds access faults)
# and fails if ev_preprocess_neon is not the function detection runs. Exits non-zero on any failure.
#
# Each file group is compiled with the flags setup.py gives it (neon/ plain on aarch64, -march=armv7-a
# -mfpu=neon -mfloat-abi=hard on armv7; dotprod/ with -march=armv8.2-a+dotprod).
#
# Needs: gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user-static
# Usage: tools/test_native_arm.sh [--cases N] [--seed S]      (extra arguments go to the driver)
#        tools/test_native_arm.sh --native [...]              (build and run for this machine's CPU instead)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CS="$ROOT/edgevision/native/csrc"
if [[ -n "${EV_ARM_TEST_DIR:-}" ]]; then
    OUT="$EV_ARM_TEST_DIR"
    mkdir -p "$OUT"
else
    OUT="$(mktemp -d "${TMPDIR:-/tmp}/ev-arm-test.XXXXXX")"
    trap 'rm -rf "$OUT"' EXIT
fi
COMMON="$CS/cpu.c $CS/variants.c $CS/ref/table_ref.c $CS/ref/preprocess_ref.c $CS/tests/test_preprocess.c"
log() { printf 'test_native_arm: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }
# shellcheck source=lib/native_cross.sh
. "$ROOT/tools/lib/native_cross.sh"

NATIVE=0
if [[ "${1:-}" == "--native" ]]; then
    NATIVE=1
    shift
fi
DRIVER_ARGS=("$@")

FAILED=0
run() {  # run LABEL command...
    local label="$1"
    shift
    echo "=== $label: $*"
    if "$@" "${DRIVER_ARGS[@]}" --expect "$EXPECT"; then
        echo "=== $label: PASS"
    else
        echo "=== $label: FAIL"
        FAILED=1
    fi
}

if [[ $NATIVE == 1 ]]; then
    case "$(uname -m)" in
    x86_64)
        ev_build gcc "$OUT/native/test_preprocess" "$COMMON" \
            "-msse4.1|EV_HAVE_X86_SSE41|$CS/x86/table_sse41.c $CS/x86/preprocess_sse41.c" \
            "-mavx2|EV_HAVE_X86_AVX2|$CS/x86/table_avx2.c $CS/x86/preprocess_avx2.c"
        EXPECT="${EV_EXPECT:-ev_preprocess_avx2}"
        ;;
    aarch64)
        ev_build gcc "$OUT/native/test_preprocess" "$COMMON" \
            "|EV_HAVE_NEON|$CS/neon/table_neon.c $CS/neon/preprocess_neon.c" \
            "-march=armv8.2-a+dotprod|EV_HAVE_DOTPROD|$CS/dotprod/table_dotprod.c"
        EXPECT="${EV_EXPECT:-ev_preprocess_neon}"
        ;;
    *)
        echo "--native: no SIMD variant for $(uname -m)" >&2
        exit 2
        ;;
    esac
    run "native $(uname -m)" "$OUT/native/test_preprocess"
    exit $FAILED
fi

need_arm_cross
ev_build_arm aarch64 "$OUT/aarch64/test_preprocess" "$COMMON" "$CS/neon/table_neon.c $CS/neon/preprocess_neon.c" \
    "$CS/dotprod/table_dotprod.c"
ev_build_arm armv7 "$OUT/armv7/test_preprocess" "$COMMON" "$CS/neon/table_neon.c $CS/neon/preprocess_neon.c" ""

EXPECT=ev_preprocess_neon
run "aarch64 cortex-a72" "${QEMU_A64[@]}" -cpu cortex-a72 "$OUT/aarch64/test_preprocess"
run "aarch64 cortex-a76" "${QEMU_A64[@]}" -cpu cortex-a76 "$OUT/aarch64/test_preprocess"
run "armv7 (default cpu)" "${QEMU_A32[@]}" "$OUT/armv7/test_preprocess"
run "armv7 cortex-a7" "${QEMU_A32[@]}" -cpu cortex-a7 "$OUT/armv7/test_preprocess"

if [[ $FAILED == 0 ]]; then echo "ALL PASS"; else echo "SOME RUNS FAILED"; fi
exit $FAILED
