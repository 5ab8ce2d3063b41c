#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Cross-compile the NEON elementwise, pooling and reduction kernels (neon/elementwise_neon.c: ADD, MUL, MEAN,
# AVERAGE_POOL_2D, MAX_POOL_2D, QUANTIZE, RELU, PRELU, HARD_SWISH, LOGISTIC, TANH) with the scalar reference, the
# checks, the kernel tables, variant selection and CPU detection of edgevision/native/csrc and the C driver
# csrc/tests/test_elementwise_variants.c, for aarch64 and 32-bit ARMv7, and run them under qemu-user:
#
#   aarch64 -cpu cortex-a72  (Raspberry Pi 4: ASIMD, no dot product)   neon runs its own kernels
#   aarch64 -cpu cortex-a76  (Raspberry Pi 5: ASIMD + dot product)     dotprod, whose table takes these kinds
#                                                                       from neon: ev_<kind>_neon must run
#   armv7   (qemu-arm's default CPU, NEON; Raspberry Pi OS 32-bit)     neon (LOGISTIC and TANH stay scalar)
#   aarch64 -cpu cortex-a72, asking for dotprod                        must fail: the CPU cannot run it, and the
#                                                                       driver refuses a silent fallback
#
# The driver compares every variant the emulated CPU supports with ev_<kind>_ref byte for byte on random ops of
# each kind (broadcasts, strides, sizes around the vector widths, every legal multiplier and shift, pool windows
# over every edge, reductions over any dimensions; every work split; tensors end at a PROT_NONE page) and fails
# if the requested variant's own kernels are not the ones that ran. Files are compiled with the flags setup.py
# gives them: neon/ plain on aarch64 and -march=armv7-a -mfpu=neon -mfloat-abi=hard on armv7; dotprod/ with
# -march=armv8.2-a+dotprod. Exits non-zero on any failure.
#
# Installs the cross compilers and qemu-user-static with apt-get when they are missing and this runs as root.
# usage: tools/test_native_arm_elementwise.sh [--cases N] [--seed S] [--giant-means N]   (~25 s by default)
set -euo pipefail

log() { printf 'test_native_arm_elementwise: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '23p' "$0" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CS="$ROOT/edgevision/native/csrc"
cases=1100
seed=1
giant=1
while (($#)); do
    case "$1" in
        --cases) cases="${2:?}"; shift 2 ;;
        --seed) seed="${2:?}"; shift 2 ;;
        --giant-means) giant="${2:?}"; shift 2 ;;
        -h|--help) usage ;;
        *) log "unknown argument: $1"; usage ;;
    esac
done
[[ $cases =~ ^[0-9]+$ && $seed =~ ^[0-9]+$ && $giant =~ ^[0-9]+$ ]] ||
    die "--cases, --seed and --giant-means take non-negative integers"

# shellcheck source=lib/native_cross.sh
. "$ROOT/tools/lib/native_cross.sh"
need_arm_cross
OUT="$(mktemp -d "${TMPDIR:-/tmp}/ev-arm-elementwise.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

# what every build links: detection, tables, checks, the reference kernels and the driver
COMMON="$CS/cpu.c $CS/variants.c $CS/elementwise_check.c $CS/activation_check.c $CS/misc_check.c
        $CS/ref/elementwise_ref.c $CS/ref/activation_ref.c $CS/ref/misc_ref.c $CS/ref/table_ref.c
        $CS/tests/test_elementwise_variants.c"
log "building for aarch64 and armv7"
ev_build_arm aarch64 "$OUT/test_a64" "$COMMON" "$CS/neon/table_neon.c $CS/neon/elementwise_neon.c" \
    "$CS/dotprod/table_dotprod.c"
ev_build_arm armv7 "$OUT/test_a32" "$COMMON" "$CS/neon/table_neon.c $CS/neon/elementwise_neon.c" ""

ARGS=(--cases "$cases" --seed "$seed" --giant-means "$giant")
expect_run "aarch64 cortex-a72 neon" pass "${QEMU_A64[@]}" -cpu cortex-a72 "$OUT/test_a64" --variant neon "${ARGS[@]}"
expect_run "aarch64 cortex-a76 dotprod (neon kernels)" pass "${QEMU_A64[@]}" -cpu cortex-a76 "$OUT/test_a64" \
    --variant dotprod --expect neon "${ARGS[@]}"
expect_run "armv7 neon" pass "${QEMU_A32[@]}" "$OUT/test_a32" --variant neon "${ARGS[@]}"
expect_run "aarch64 cortex-a72 asked for dotprod" fail "${QEMU_A64[@]}" -cpu cortex-a72 "$OUT/test_a64" \
    --variant dotprod --cases 1

if ((FAILED)); then
    echo "SOME RUNS FAILED"
    exit 1
fi
log "all runs passed"
echo "ALL PASS"
