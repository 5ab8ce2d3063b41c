#!/usr/bin/env bash
# Cross-compile the ARM kernels of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (neon/, dotprod/) with the
# scalar reference, the kernel tables, variant selection and CPU detection of edgevision/native/csrc and the C
# driver csrc/tests/test_conv_variants.c, for aarch64 and 32-bit ARMv7, and run them under qemu-user:
#
#   aarch64 -cpu cortex-a72  (Raspberry Pi 4: ASIMD, no dot product)  neon
#   aarch64 -cpu cortex-a76  (Raspberry Pi 5: ASIMD + dot product)    neon, dotprod
#   armv7   (qemu-arm's default CPU, NEON; Raspberry Pi OS 32-bit)    neon
#   aarch64 -cpu cortex-a72, asking for dotprod                       must fail: the CPU cannot run it, and the
#                                                                     driver refuses a silent fallback
#
# The driver compares the variant with ev_*_ref byte for byte on random ops (shapes, strides, dilations, padding,
# groups, depth multipliers, channel counts around the vector widths, extreme multipliers and shifts, every work
# split; tensors end at a PROT_NONE page) and fails if the variant's own function is not the one that ran.
# Files are compiled with the flags setup.py gives them: neon/ plain on aarch64 and -march=armv7-a -mfpu=neon
# -mfloat-abi=hard on armv7; dotprod/ with -march=armv8.2-a+dotprod. Exits non-zero on any failure.
#
# Installs the cross compilers and qemu-user-static with apt-get when they are missing and this runs as root.
# usage: tools/test_native_arm_kernels.sh [--cases N] [--seed S]     (~2 minutes with the default 4000 cases)
set -euo pipefail

log() { printf 'test_native_arm_kernels: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '19p' "$0" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CS="$ROOT/edgevision/native/csrc"
cases=4000
seed=1
while (($#)); do
    case "$1" in
        --cases) cases="${2:?}"; shift 2 ;;
        --seed) seed="${2:?}"; shift 2 ;;
        -h|--help) usage ;;
        *) log "unknown argument: $1"; usage ;;
    esac
done
[[ $cases =~ ^[0-9]+$ && $seed =~ ^[0-9]+$ ]] || die "--cases and --seed take non-negative integers"

# --- tools ----------------------------------------------------------------------------------------------------
PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user-static)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing packages: ${missing[*]} (run as root to install them, or apt-get install them)"
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

OUT="$(mktemp -d "${TMPDIR:-/tmp}/ev-arm-kernels.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

FLAGS=(-O2 -std=c11 -fno-strict-aliasing -Wall -Wextra -Wno-unused-parameter -Werror -I"$CS")
# what every build links: detection, tables, checks, the reference and the driver
BASE=("$CS/cpu.c" "$CS/variants.c" "$CS/conv_check.c" "$CS/ref/conv_ref.c" "$CS/ref/table_ref.c"
      "$CS/tests/test_conv_variants.c")

compile() {  # compile CC OUTDIR FLAGS-STRING FILES...: objects named after their directory and file
    local cc="$1" dir="$2" flags="$3" f
    shift 3
    for f in "$@"; do
        # shellcheck disable=SC2086
        "$cc" "${FLAGS[@]}" $flags -c "$f" -o "$dir/$(basename "$(dirname "$f")")_$(basename "${f%.c}").o"
    done
}

log "building for aarch64"
mkdir -p "$OUT/a64"
A64_DEFS="-DEV_ARCH_AARCH64=1 -DEV_HAVE_NEON=1 -DEV_HAVE_DOTPROD=1"
compile aarch64-linux-gnu-gcc "$OUT/a64" "$A64_DEFS" "${BASE[@]}" "$CS/neon/table_neon.c" "$CS/neon/conv_neon.c"
compile aarch64-linux-gnu-gcc "$OUT/a64" "$A64_DEFS -march=armv8.2-a+dotprod" "$CS/dotprod/table_dotprod.c" \
    "$CS/dotprod/conv_dotprod.c"
aarch64-linux-gnu-gcc "$OUT"/a64/*.o -o "$OUT/test_a64" -lm

log "building for armv7"
mkdir -p "$OUT/a32"
A32_FLAGS="-march=armv7-a -mfpu=neon -mfloat-abi=hard -DEV_ARCH_ARMV7=1 -DEV_HAVE_NEON=1"
compile arm-linux-gnueabihf-gcc "$OUT/a32" "$A32_FLAGS" "${BASE[@]}" "$CS/neon/table_neon.c" "$CS/neon/conv_neon.c"
arm-linux-gnueabihf-gcc -march=armv7-a -mfpu=neon -mfloat-abi=hard "$OUT"/a32/*.o -o "$OUT/test_a32" -lm

failed=0
run() {  # run LABEL EXPECT(pass|fail) COMMAND...
    local label="$1" expect="$2" rc=0
    shift 2
    log "$label"
    "$@" --cases "$cases" --seed "$seed" >"$OUT/run.log" 2>&1 || rc=$?
    sed 's/^/    /' "$OUT/run.log" | grep -v '^    cpu:' | tail -12 >&2
    if [[ $expect == pass && $rc -eq 0 ]] || [[ $expect == fail && $rc -ne 0 ]]; then
        log "$label: ok"
    else
        log "$label: FAILED (exit status $rc, expected to $expect)"
        failed=1
    fi
}

Q64=(qemu-aarch64-static -L /usr/aarch64-linux-gnu)
run "aarch64 Cortex-A72: neon" pass "${Q64[@]}" -cpu cortex-a72 "$OUT/test_a64" --variant neon
run "aarch64 Cortex-A76: neon" pass "${Q64[@]}" -cpu cortex-a76 "$OUT/test_a64" --variant neon
run "aarch64 Cortex-A76: dotprod" pass "${Q64[@]}" -cpu cortex-a76 "$OUT/test_a64" --variant dotprod
run "aarch64 Cortex-A72: dotprod is refused" fail "${Q64[@]}" -cpu cortex-a72 "$OUT/test_a64" --variant dotprod
run "armv7 NEON: neon" pass qemu-arm-static -L /usr/arm-linux-gnueabihf "$OUT/test_a32" --variant neon

if ((failed)); then
    die "FAILED"
fi
log "all passed"
