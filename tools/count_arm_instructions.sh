#!/usr/bin/env bash
# Instructions per inference on emulated Raspberry Pi cores: edgevision's native engine (kernel variant neon on a
# Cortex-A72 / Pi 4, dotprod on a Cortex-A76 / Pi 5) against ai-edge-litert's default kernels (XNNPACK), on
# EfficientNet-Lite0 (the default model) and the Fashion-MNIST test model, with the models' MAC counts.
#
# How (../shared/ENVIRONMENT.md): qemu's instruction-counting plugin (tests/plugin/insn.c, built from Debian's qemu
# source package against the installed qemu-user) counts every guest instruction of the userland's python3 run by
# the dynamic qemu-aarch64 with the arm64 userland as prefix (-L ROOT). ROOT/proc/cpuinfo and
# ROOT/sys/devices/system/cpu/{possible,present,online} are written for the core (LiteRT's cpuinfo reads them; qemu
# looks inside ROOT first), ROOT/proc and ROOT/sys must not be mounted. One thread; the guest script
# (count_arm_instructions.py) builds the interpreter, runs one warm-up inference, then N more; the script runs it
# with 0 and with N and reports (difference) / N, free of start-up cost (repeatable to ~0.2%).
#
# The native engine is first pip-installed from this checkout into the userland's venv (compiled there by its gcc,
# as tests/test_native_arm64.py does); --no-install skips that.
#
# usage: tools/count_arm_instructions.sh [--root ROOT] [--runs N] [--no-install] [--models efficientnet,fashion]
#        ROOT defaults to $EDGEVISION_ARM64_ROOT, else /var/cache/edgevision/arm64-trixie (tools/setup_arm64_root.sh).
#        Needs root (apt-get, chroot). Takes ~5-10 minutes.
set -euo pipefail

log() { printf 'count_arm_instructions: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '17,20p' "$0" >&2; exit 2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${EDGEVISION_CACHE:-/var/cache/edgevision}/qemu-insn"
root="${EDGEVISION_ARM64_ROOT:-/var/cache/edgevision/arm64-trixie}"
runs=3
install=1
models="efficientnet,fashion"
while (($#)); do
    case "$1" in
        --root) root="${2:?}"; shift 2 ;;
        --runs) runs="${2:?}"; shift 2 ;;
        --no-install) install=0; shift ;;
        --models) models="${2:?}"; shift 2 ;;
        -h|--help) usage ;;
        *) log "unknown argument: $1"; usage ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, got '$runs'"
[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, chroot)"
[[ -f $root/.edgevision/ready ]] || die "$root is not a finished arm64 userland: run tools/setup_arm64_root.sh"
root="$(cd "$root" && pwd)"
VENV=/opt/edgevision-venv
for mnt in proc sys; do
    ! mountpoint -q "$root/$mnt" || die "$root/$mnt is mounted; unmount it first (this script writes plain files there)"
done

# --- host tools: qemu-user (the dynamic qemu-aarch64 loads plugins, the -static one cannot), glib for the plugin
missing=()
for p in qemu-user libglib2.0-dev pkg-config gcc xz-utils dpkg-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
QEMU=/usr/bin/qemu-aarch64
[[ -x $QEMU ]] || die "$QEMU missing after installing qemu-user"
CHROOT="$(command -v chroot || echo /usr/sbin/chroot)"

# --- the plugin, from the source package of the installed qemu (the plugin API must match) -------------------
qemu_version="$(dpkg-query -W -f='${source:Version}' qemu-user)"
PLUGIN="$CACHE/$qemu_version/libinsn.so"
if [[ ! -f $PLUGIN ]]; then
    mkdir -p "$CACHE/$qemu_version"
    (
        cd "$CACHE/$qemu_version"
        if ! ls qemu_*.orig.tar.* >/dev/null 2>&1; then
            codename="$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)"
            list=/etc/apt/sources.list.d/edgevision-src.list
            if ! apt-get source --download-only "qemu=$qemu_version" >/dev/null 2>&1; then
                log "adding deb-src for $codename ($list) to fetch qemu's source"
                echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename main" >"$list"
                echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $codename-security main" >>"$list"
                apt-get update -qq
                apt-get source --download-only "qemu=$qemu_version" >/dev/null 2>&1 || apt-get source --download-only qemu >/dev/null
            fi
        fi
        orig="$(ls qemu_*.orig.tar.*)"
        tar xf "$orig" --wildcards '*/include/qemu/qemu-plugin.h' '*/tests/plugin/insn.c'
        top="$(dirname "$(dirname "$(ls -d ./*/tests/plugin/insn.c)")")"
        top="${top%/tests}"
        # shellcheck disable=SC2046
        gcc -shared -fPIC -O2 -I"$top/include/qemu" $(pkg-config --cflags glib-2.0) "$top/tests/plugin/insn.c" \
            -o libinsn.so $(pkg-config --libs glib-2.0)
    )
    log "built $PLUGIN"
fi

# --- a work directory inside the userland (guest path /tmp/...), always removed -------------------------------
work="$(mktemp -d "$root/tmp/edgevision-count.XXXXXX")"
guest_work="/${work#"$root"/}"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

if ((install)); then
    log "pip install this checkout into $VENV in the userland (compiles the extension there; ~1-2 min)"
    mkdir -p "$work/src"
    tar -C "$REPO" --exclude=__pycache__ --exclude='*.so' --exclude='*.egg-info' --exclude=build \
        -cf - pyproject.toml setup.py README.md edgevision | tar -C "$work/src" -xf -
    env -i PATH="$VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin" LC_ALL=C.UTF-8 HOME=/root PIP_NO_INDEX=1 \
        "$CHROOT" "$root" "$VENV/bin/pip" install -v --no-deps --no-build-isolation --force-reinstall \
        --disable-pip-version-check "$guest_work/src" >"$work/pip.log" 2>&1 || { tail -30 "$work/pip.log" >&2; die "pip install failed"; }
    rm -rf "$work/src"
    # the extension is optional for pip: a compile error leaves a package without it
    if ! env -i PATH="$VENV/bin:/usr/bin:/bin" LC_ALL=C.UTF-8 HOME=/root "$CHROOT" "$root" "$VENV/bin/python3" -c \
        "import edgevision._native" >/dev/null 2>&1; then
        grep -B2 -A6 -m3 'error' "$work/pip.log" >&2 || tail -30 "$work/pip.log" >&2
        die "edgevision was installed without its C extension: the build failed in the userland (above)"
    fi
fi

cp "$REPO/tools/count_arm_instructions.py" "$work/"
declare -A MODEL_FILE=([efficientnet]="$REPO/edgevision/models/efficientnet_lite0_int8.tflite"
                       [fashion]="$REPO/tests/data/native/fashion_mnist_int8.tflite")
IFS=',' read -r -a model_list <<<"$models"
for m in "${model_list[@]}"; do
    [[ -n ${MODEL_FILE[$m]:-} ]] || die "unknown model '$m': expected efficientnet or fashion"
    cp "${MODEL_FILE[$m]}" "$work/$m.tflite"
done

site="$(cd "$root$VENV/lib" && ls -d python3.*)/site-packages"
python="$(readlink -f "$root/usr/bin/python3")"  # resolved inside ROOT: the link is relative
python="$root/usr/bin/$(basename "$python")"
[[ -x $python ]] || die "no python3 in $root/usr/bin"

# Absolute symlinks inside ROOT (Debian's alternatives: libblas.so.3 -> /etc/alternatives/...) would resolve on the
# host, where qemu's -L prefix does not apply: the loader is pointed at their real directories instead.
libdirs=()
for link in "$root"/usr/lib/*-linux-gnu/*.so*; do
    target="$(readlink "$link")" || continue
    [[ $target == /* ]] || continue
    while [[ -L $root$target ]]; do
        next="$(readlink "$root$target")"
        [[ $next == /* ]] || next="$(dirname "$target")/$next"
        target="$next"
    done
    libdirs+=("$(dirname "$target")")
done
ld_path="$(printf '%s\n' "${libdirs[@]}" | sort -u | paste -sd: -)"

describe_cpu() {  # what a Linux kernel on that core reports (tests/arm64.py writes the same)
    local part features
    case "$1" in
        cortex-a72) part=0xd08; features="fp asimd evtstrm crc32 cpuid" ;;
        cortex-a76) part=0xd0b; features="fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
        *) die "no description for core $1" ;;
    esac
    mkdir -p "$root/proc" "$root/sys/devices/system/cpu"
    printf 'processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 0\n\n' \
        "$features" "$part" >"$root/proc/cpuinfo"
    local f
    for f in possible present online; do echo 0 >"$root/sys/devices/system/cpu/$f"; done
}

count() {  # count CORE ENGINE MODEL N [VARIANT] -> total guest instructions
    local core="$1" engine="$2" model="$3" n="$4" logf="$work/plugin.log" extra=()
    [[ -z ${5:-} ]] || extra=("$5")
    rm -f "$logf"
    (cd / && env -i PATH=/usr/bin:/bin LC_ALL=C.UTF-8 HOME=/root PYTHONDONTWRITEBYTECODE=1 \
        PYTHONPATH="$VENV/lib/$site" LD_LIBRARY_PATH="$ld_path" \
        "$QEMU" -cpu "$core" -L "$root" -plugin "$PLUGIN,inline=on" -d plugin -D "$logf" \
        "$python" "$guest_work/count_arm_instructions.py" run "$engine" "$guest_work/$model.tflite" "$n" "${extra[@]}") \
        >"$work/run.log" 2>&1 || { cat "$work/run.log" >&2; die "$engine on $core failed"; }
    sed -n 's/^insns: \([0-9]*\)$/\1/p' "$logf" | tail -1
}

per_inference() {  # per_inference CORE ENGINE MODEL [VARIANT]
    local a b
    a="$(count "$1" "$2" "$3" 0 "${4:-}")"
    b="$(count "$1" "$2" "$3" "$runs" "${4:-}")"
    [[ -n $a && -n $b ]] || die "no instruction total from the plugin ($2 on $1)"
    echo $(((b - a) / runs))
}

host_python="$REPO/.venv/bin/python"
[[ -x $host_python ]] || host_python=python3
results=()
for m in "${model_list[@]}"; do
    read -r _ macs _ conv _ dw _ fc < <(cd "$REPO" && "$host_python" tools/count_arm_instructions.py macs "${MODEL_FILE[$m]}")
    log "$m: $macs MACs (conv $conv, depthwise $dw, fully connected $fc)"
    for spec in "cortex-a72 native neon" "cortex-a72 litert" "cortex-a76 native dotprod" "cortex-a76 litert"; do
        read -r core engine variant <<<"$spec"
        describe_cpu "$core"
        log "$m: $engine ${variant:-xnnpack} on $core ..."
        insns="$(per_inference "$core" "$engine" "$m" "$variant")"
        label="$engine ${variant:-(XNNPACK)}"
        results+=("$(printf '%-13s %-11s %-24s %14s %10s' "$m" "$core" "$label" "$insns" \
            "$(awk -v i="$insns" -v m="$macs" 'BEGIN { printf "%.3f", i / m }')")")
        log "$m: $engine ${variant:-xnnpack} on $core: $insns instructions per inference"
    done
done

printf '%-13s %-11s %-24s %14s %10s\n' model core engine "instr/infer" "instr/MAC"
printf '%s\n' "${results[@]}"
