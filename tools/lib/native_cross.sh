# shellcheck shell=bash
# Building the native engine's C sources outside setup.py, for the C drivers in edgevision/native/csrc/tests that
# tools/test_native_arm*.sh run: each file group with the flags setup.py gives it and every group's EV_HAVE_*
# macro defined for every file, as setup.py does; for aarch64 and 32-bit ARMv7 with the cross compilers (run
# under qemu-user), or for this machine. The caller sets CS (the csrc folder) and OUT (a scratch folder) and
# defines log and die. File lists are space-separated (the checkout's path must not contain spaces).

# shellcheck disable=SC2034 # QEMU_A64, QEMU_A32 and FAILED are for the caller
EV_CFLAGS=(-O2 -std=c11 -fno-strict-aliasing -Wall -Wextra -Wno-unused-parameter -Werror)
QEMU_A64=(qemu-aarch64-static -L /usr/aarch64-linux-gnu)  # then -cpu cortex-a72 / cortex-a76
QEMU_A32=(qemu-arm-static -L /usr/arm-linux-gnueabihf)    # ARMv7 with NEON (qemu's default CPU, or -cpu cortex-a7)
ARM_CROSS_PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
                    qemu-user-static)

# need_arm_cross: the cross compilers and qemu-user, installed with apt-get when missing and running as root
need_arm_cross() {
    local p missing=()
    for p in "${ARM_CROSS_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) -eq 0 ]] || die "missing packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ev_build CC BINARY "COMMON FILES" ["GROUP FLAGS|EV_HAVE_MACRO|GROUP FILES" ...]: compile and link BINARY
ev_build() {
    local cc=$1 bin=$2 common=$3
    shift 3
    local dir=$bin.objs defs=() objs=() group gflags def files f o
    mkdir -p "$dir"
    for group in "$@"; do
        IFS='|' read -r _ def _ <<<"$group"
        defs+=("-D$def=1")
    done
    for group in "|EV_COMMON|$common" "$@"; do
        IFS='|' read -r gflags def files <<<"${group//$'\n'/ }"  # a list may span lines
        for f in $files; do
            o="$dir/$(basename "$(dirname "$f")")_$(basename "${f%.c}").o"
            # shellcheck disable=SC2086
            "$cc" "${EV_CFLAGS[@]}" -I"$CS" $gflags "${defs[@]}" -c "$f" -o "$o"
            objs+=("$o")
        done
    done
    "$cc" "${objs[@]}" -o "$bin" -lpthread -lm
}

# ev_build_arm aarch64|armv7 BINARY "COMMON FILES" "NEON FILES" "DOTPROD FILES" (armv7 has no dot product)
ev_build_arm() {
    local arch=$1 bin=$2 common=$3 neon=$4 dotprod=$5
    case $arch in
        aarch64) ev_build aarch64-linux-gnu-gcc "$bin" "$common" "|EV_HAVE_NEON|$neon" \
                     "-march=armv8.2-a+dotprod|EV_HAVE_DOTPROD|$dotprod" ;;
        armv7) ev_build arm-linux-gnueabihf-gcc "$bin" "$common" \
                   "-march=armv7-a -mfpu=neon -mfloat-abi=hard|EV_HAVE_NEON|$neon" ;;
        *) die "ev_build_arm: unknown architecture $arch" ;;
    esac
}

# expect_run LABEL pass|fail COMMAND...: runs COMMAND; one line when it ends as expected (its last line of
# output), its whole output otherwise, and then FAILED=1
FAILED=0
expect_run() {
    local label=$1 want=$2 rc=0
    shift 2
    "$@" >"$OUT/run.log" 2>&1 || rc=$?
    if [[ $want == pass && $rc -eq 0 ]] || [[ $want == fail && $rc -ne 0 ]]; then
        log "$label: ok ($(grep -v '^cpu:' "$OUT/run.log" | tail -n1))"
    else
        sed 's/^/    /' "$OUT/run.log" >&2
        log "$label: FAILED (exit status $rc, expected to $want)"
        FAILED=1
    fi
}
