#!/usr/bin/env bash
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

for tool in aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc qemu-aarch64-static qemu-arm-static; do
    command -v "$tool" >/dev/null || {
        echo "test_native_arm_models: $tool missing: apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf" \
             "libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user-static" >&2
        exit 2
    }
done

if (($#)); then
    MODELS=("$@")
else
    MODELS=("$ROOT/edgevision/models/efficientnet_lite0_int8.tflite" "$ROOT/tests/data/fashion_mnist_int8.tflite"
            "$ROOT/tests/data/native/fashion_mnist_int8.tflite" "$ROOT/tests/data/native/opmix_a.tflite"
            "$ROOT/tests/data/native/opmix_b.tflite")
fi

FLAGS=(-O2 -std=c11 -fno-strict-aliasing -Wall -Wextra -Wno-unused-parameter -I"$CS")
BASE=()
for f in "$CS"/*.c "$CS"/ref/*.c; do
    case "$(basename "$f")" in module.c | engine.c | preprocess_py.c) ;; *) BASE+=("$f") ;; esac
done

compile() {  # compile CC OUTDIR "FLAGS" FILES...  -> object files listed on stdout
    local cc=$1 dir=$2 extra=$3 f o
    shift 3
    for f in "$@"; do
        o="$dir/$(basename "$(dirname "$f")")_$(basename "${f%.c}").o"
        # shellcheck disable=SC2086
        "$cc" "${FLAGS[@]}" $extra -c "$f" -o "$o"
        echo "$o"
    done
}

build_aarch64() {
    local dir="$OUT/aarch64" defs="-DEV_ARCH_AARCH64=1 -DEV_HAVE_NEON=1 -DEV_HAVE_DOTPROD=1" objs=()
    mkdir -p "$dir"
    mapfile -t objs < <(compile aarch64-linux-gnu-gcc "$dir" "$defs" "${BASE[@]}" "$CS"/tests/run_plan.c "$CS"/neon/*.c)
    mapfile -t -O "${#objs[@]}" objs < <(compile aarch64-linux-gnu-gcc "$dir" "$defs -march=armv8.2-a+dotprod" "$CS"/dotprod/*.c)
    aarch64-linux-gnu-gcc "${objs[@]}" -o "$dir/run_plan" -lpthread -lm
}

build_armv7() {
    local dir="$OUT/armv7" defs="-DEV_ARCH_ARMV7=1 -DEV_HAVE_NEON=1" objs=()
    mkdir -p "$dir"
    mapfile -t objs < <(compile arm-linux-gnueabihf-gcc "$dir" "$defs" "${BASE[@]}" "$CS"/tests/run_plan.c)
    mapfile -t -O "${#objs[@]}" objs < <(compile arm-linux-gnueabihf-gcc "$dir" \
        "$defs -march=armv7-a -mfpu=neon -mfloat-abi=hard" "$CS"/neon/*.c)
    arm-linux-gnueabihf-gcc "${objs[@]}" -o "$dir/run_plan" -lpthread -lm
}

echo "building for aarch64 and armv7 ..."
build_aarch64
build_armv7

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
            run "aarch64 a72 $v t$t" qemu-aarch64-static -cpu cortex-a72 -L /usr/aarch64-linux-gnu "$OUT/aarch64/run_plan" -- "$v" "$t" "$p"
        done
        for v in neon dotprod; do
            run "aarch64 a76 $v t$t" qemu-aarch64-static -cpu cortex-a76 -L /usr/aarch64-linux-gnu "$OUT/aarch64/run_plan" -- "$v" "$t" "$p"
        done
        for v in ref neon; do
            run "armv7 a7 $v t$t" qemu-arm-static -cpu cortex-a7 -L /usr/arm-linux-gnueabihf "$OUT/armv7/run_plan" -- "$v" "$t" "$p"
        done
    done
done
# the dot-product variant must be refused on a core without it, not silently replaced
if qemu-aarch64-static -cpu cortex-a72 -L /usr/aarch64-linux-gnu "$OUT/aarch64/run_plan" dotprod 1 "${plans[0]}" >/dev/null 2>&1; then
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
