#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
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
usage() { sed -n '20p' "$0" >&2; exit 2; }

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

# shellcheck source=lib/native_cross.sh
. "$ROOT/tools/lib/native_cross.sh"
need_arm_cross
OUT="$(mktemp -d "${TMPDIR:-/tmp}/ev-arm-kernels.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

# what every build links: detection, tables, checks, the reference and the driver
COMMON="$CS/cpu.c $CS/variants.c $CS/conv_check.c $CS/ref/conv_ref.c $CS/ref/table_ref.c $CS/tests/test_conv_variants.c"
log "building for aarch64 and armv7"
ev_build_arm aarch64 "$OUT/test_a64" "$COMMON" "$CS/neon/table_neon.c $CS/neon/conv_neon.c" \
    "$CS/dotprod/table_dotprod.c $CS/dotprod/conv_dotprod.c"
ev_build_arm armv7 "$OUT/test_a32" "$COMMON" "$CS/neon/table_neon.c $CS/neon/conv_neon.c" ""

ARGS=(--cases "$cases" --seed "$seed")
expect_run "aarch64 Cortex-A72: neon" pass "${QEMU_A64[@]}" -cpu cortex-a72 "$OUT/test_a64" --variant neon "${ARGS[@]}"
expect_run "aarch64 Cortex-A76: neon" pass "${QEMU_A64[@]}" -cpu cortex-a76 "$OUT/test_a64" --variant neon "${ARGS[@]}"
expect_run "aarch64 Cortex-A76: dotprod" pass "${QEMU_A64[@]}" -cpu cortex-a76 "$OUT/test_a64" --variant dotprod "${ARGS[@]}"
expect_run "aarch64 Cortex-A72: dotprod is refused" fail "${QEMU_A64[@]}" -cpu cortex-a72 "$OUT/test_a64" \
    --variant dotprod "${ARGS[@]}"
expect_run "armv7 NEON: neon" pass "${QEMU_A32[@]}" "$OUT/test_a32" --variant neon "${ARGS[@]}"

if ((FAILED)); then
    die "FAILED"
fi
log "all passed"
