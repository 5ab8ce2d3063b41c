#!/usr/bin/env bash
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
FLAGS=(-O2 -std=c11 -fno-strict-aliasing -Wall -Wextra -Wno-unused-parameter -Werror -I"$CS")
BASE_SRC=("$CS/cpu.c" "$CS/variants.c" "$CS/ref/table_ref.c" "$CS/ref/preprocess_ref.c" "$CS/tests/test_preprocess.c")

NATIVE=0
if [[ "${1:-}" == "--native" ]]; then
    NATIVE=1
    shift
fi
DRIVER_ARGS=("$@")

# build NAME CC "BASE FLAGS" then groups "FLAGS|DEFINE|files..." ...
build() {
    local name="$1" cc="$2" base_flags="$3"
    shift 3
    local dir="$OUT/$name" defs=() objs=() group
    mkdir -p "$dir"
    for group in "$@"; do  # the EV_HAVE_* macros, as setup.py defines them for every file
        IFS='|' read -r _ def _ <<<"$group"
        defs+=("-D$def=1")
    done
    for group in "$@"; do
        local gflags def files f
        IFS='|' read -r gflags def files <<<"$group"
        for f in $files; do
            local o
            o="$dir/$(basename "$(dirname "$f")")_$(basename "${f%.c}").o"
            # shellcheck disable=SC2086
            "$cc" "${FLAGS[@]}" $base_flags $gflags "${defs[@]}" -c "$f" -o "$o"
            objs+=("$o")
        done
    done
    local f
    for f in "${BASE_SRC[@]}"; do
        local o
        o="$dir/base_$(basename "$(dirname "$f")")_$(basename "${f%.c}").o"
        # shellcheck disable=SC2086
        "$cc" "${FLAGS[@]}" $base_flags "${defs[@]}" -c "$f" -o "$o"
        objs+=("$o")
    done
    # shellcheck disable=SC2086
    "$cc" $base_flags "${objs[@]}" -o "$dir/test_preprocess" -lm
    echo "built $dir/test_preprocess"
}

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
        build native gcc "" \
            "-msse4.1|EV_HAVE_X86_SSE41|$CS/x86/table_sse41.c $CS/x86/preprocess_sse41.c" \
            "-mavx2|EV_HAVE_X86_AVX2|$CS/x86/table_avx2.c $CS/x86/preprocess_avx2.c"
        EXPECT="${EV_EXPECT:-ev_preprocess_avx2}"
        ;;
    aarch64)
        build native gcc "" \
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

for tool in aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc qemu-aarch64-static qemu-arm-static; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool: apt-get install -y gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf" \
            "libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user-static" >&2
        exit 2
    }
done

build aarch64 aarch64-linux-gnu-gcc "" \
    "|EV_HAVE_NEON|$CS/neon/table_neon.c $CS/neon/preprocess_neon.c" \
    "-march=armv8.2-a+dotprod|EV_HAVE_DOTPROD|$CS/dotprod/table_dotprod.c"
build armv7 arm-linux-gnueabihf-gcc "" \
    "-march=armv7-a -mfpu=neon -mfloat-abi=hard|EV_HAVE_NEON|$CS/neon/table_neon.c $CS/neon/preprocess_neon.c"

EXPECT=ev_preprocess_neon
run "aarch64 cortex-a72" qemu-aarch64-static -cpu cortex-a72 -L /usr/aarch64-linux-gnu "$OUT/aarch64/test_preprocess"
run "aarch64 cortex-a76" qemu-aarch64-static -cpu cortex-a76 -L /usr/aarch64-linux-gnu "$OUT/aarch64/test_preprocess"
run "armv7 (default cpu)" qemu-arm-static -L /usr/arm-linux-gnueabihf "$OUT/armv7/test_preprocess"
run "armv7 cortex-a7" qemu-arm-static -cpu cortex-a7 -L /usr/arm-linux-gnueabihf "$OUT/armv7/test_preprocess"

if [[ $FAILED == 0 ]]; then echo "ALL PASS"; else echo "SOME RUNS FAILED"; fi
exit $FAILED
