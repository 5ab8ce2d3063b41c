#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Whole models on ARM, bit-exact with TFLite's reference kernels, without Python on the target:
# tools/dump_plan.py writes each test model's native-engine plan with random inputs and ai-edge-litert
# BUILTIN_REF's outputs (on this machine); the engine's C sources (engine_core.c, every kernel, no Python glue)
# and csrc/tests/run_plan.c are cross-compiled for aarch64 and 32-bit ARMv7 and run the plans under qemu-user:
#
#   aarch64 -cpu cortex-a72  variants ref, neon      (Raspberry Pi 4)
#   aarch64 -cpu cortex-a76  variants neon, dotprod  (Raspberry Pi 5)
#   armv7   -cpu cortex-a7   variants ref, neon      (32-bit Raspberry Pi OS: no LiteRT wheel exists there)
#
# each at 1 and 2 threads. run_plan refuses a variant the emulated CPU cannot run (no silent fallback) and
# prints how many steps ran the variant's own kernels. Exits non-zero on any mismatch or failure.
#
# Needs: gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross
#        qemu-user-static, and the project venv (.venv, for dump_plan.py)
# Usage: tools/test_native_arm_models.sh [MODEL.tflite ...]   (default: the models tests/test_native_models.py runs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CS="$ROOT/edgevision/native/csrc"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/ev-arm-models.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

log() { printf 'test_native_arm_models: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }
# shellcheck source=lib/native_cross.sh
. "$ROOT/tools/lib/native_cross.sh"
need_arm_cross

if (($#)); then
    MODELS=("$@")
else
    MODELS=("$ROOT/edgevision/models/efficientnet_lite0_int8.tflite" "$ROOT/tests/data/fashion_mnist_int8.tflite"
            "$ROOT/tests/data/native/fashion_mnist_int8.tflite" "$ROOT/tests/data/native/opmix_a.tflite"
            "$ROOT/tests/data/native/opmix_b.tflite")
fi

# the engine's C core and every kernel, without the Python glue
COMMON="$CS/tests/run_plan.c"
for f in "$CS"/*.c "$CS"/ref/*.c; do
    case "$(basename "$f")" in module.c | engine.c | preprocess_py.c) ;; *) COMMON+=" $f" ;; esac
done
log "building for aarch64 and armv7"
ev_build_arm aarch64 "$OUT/aarch64/run_plan" "$COMMON" "$(echo "$CS"/neon/*.c)" "$(echo "$CS"/dotprod/*.c)"
ev_build_arm armv7 "$OUT/armv7/run_plan" "$COMMON" "$(echo "$CS"/neon/*.c)" ""

plans=()
for m in "${MODELS[@]}"; do
    p="$OUT/$(basename "${m%.tflite}").evplan"
    "$PY" "$ROOT/tools/dump_plan.py" "$m" "$p" --cases 2
    plans+=("$p")
done

fail=0
run() {  # run LABEL QEMU... -- VARIANT THREADS PLAN
    local label=$1
    shift
    local cmd=()
    while [[ $1 != -- ]]; do cmd+=("$1"); shift; done
    shift
    local out
    if out=$("${cmd[@]}" "$3" "$1" "$2" 2>&1); then
        printf '%-28s %s\n' "$label" "$(tr '\n' ' ' <<<"$out")"
    else
        printf '%-28s FAILED: %s\n' "$label" "$(tr '\n' ' ' <<<"$out")"
        fail=1
    fi
}

for p in "${plans[@]}"; do
    for t in 1 2; do
        for v in ref neon; do
            run "aarch64 a72 $v t$t" "${QEMU_A64[@]}" -cpu cortex-a72 "$OUT/aarch64/run_plan" -- "$v" "$t" "$p"
        done
        for v in neon dotprod; do
            run "aarch64 a76 $v t$t" "${QEMU_A64[@]}" -cpu cortex-a76 "$OUT/aarch64/run_plan" -- "$v" "$t" "$p"
        done
        for v in ref neon; do
            run "armv7 a7 $v t$t" "${QEMU_A32[@]}" -cpu cortex-a7 "$OUT/armv7/run_plan" -- "$v" "$t" "$p"
        done
    done
done
# the dot-product variant must be refused on a core without it, not silently replaced
if "${QEMU_A64[@]}" -cpu cortex-a72 "$OUT/aarch64/run_plan" dotprod 1 "${plans[0]}" >/dev/null 2>&1; then
    echo "aarch64 a72 dotprod: ran, but a Cortex-A72 has no dot product: detection is wrong"
    fail=1
else
    echo "aarch64 a72 dotprod: refused, as it must be"
fi
if ((fail)); then
    echo "test_native_arm_models: FAILED"
    exit 1
fi
echo "test_native_arm_models: ALL PASS"
