#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build an arm64 Debian 13 (trixie) userland, run under qemu user emulation, in which picamera2 and Debian's
# python3-libcamera are installed: tests/test_picamera2_arm64.py imports edgevision's Picamera2 source there
# against the real libraries. Needs root (debootstrap, chroot, mount) and the network to Debian and PyPI.
# Idempotent: each finished step leaves a marker in ROOT/.edgevision/ and is skipped on the next run.
#
# usage: tools/setup_arm64_root.sh [ROOT]
#        ROOT defaults to $EDGEVISION_CACHE/arm64-trixie, EDGEVISION_CACHE to /var/cache/edgevision: outside
#        the clone, so a later run (CI included) on the same machine reuses it and only repeats unfinished steps.
#        then: EDGEVISION_ARM64_ROOT=ROOT pytest -m arm64 tests/test_picamera2_arm64.py
set -euo pipefail

log() { printf 'setup_arm64_root: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

case "${1:-}" in
    -h|--help) sed -n '3,11p' "$0"; exit 0 ;;
    -*) log "unknown option $1"; exit 2 ;;
esac
(($# <= 1)) || { sed -n '8,11p' "$0" >&2; exit 2; }
root="${1:-${EDGEVISION_CACHE:-/var/cache/edgevision}/arm64-trixie}"
mkdir -p "$root"
root="$(cd "$root" && pwd)"
stamp="$root/.edgevision"
SUITE=trixie
MIRROR=http://deb.debian.org/debian
VENV=/opt/edgevision-venv  # inside ROOT: picamera2 from PyPI over Debian's python3-libcamera

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot and mount need it)"
start=$SECONDS

# --- host tools ------------------------------------------------------------------------------------------
HOST_PACKAGES=(qemu-user-static debootstrap)
missing=()
for p in "${HOST_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- binfmt_misc: run aarch64 ELF files through qemu ------------------------------------------------------
# shellcheck source=lib/arm64_chroot.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/arm64_chroot.sh"
register_qemu_aarch64

# --- mounts, always undone ---------------------------------------------------------------------------------
trap unmount_all EXIT
mount_in_root() {  # mount_in_root TYPE DIR
    mountpoint -q "$root/$2" && return 0
    mkdir -p "$root/$2"
    mount -t "$1" "$1" "$root/$2"
    mounted+=("$root/$2")
}
in_root() { LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"; }
step_done() { [[ -f $stamp/$1 ]]; }
mark() { mkdir -p "$stamp"; date -u +%FT%TZ > "$stamp/$1"; log "step $1 done ($((SECONDS - start)) s so far)"; }

# --- debootstrap ---------------------------------------------------------------------------------------------
if ! step_done stage1; then
    log "debootstrap --foreign $SUITE arm64 minbase into $root"
    debootstrap --foreign --arch=arm64 --variant=minbase "$SUITE" "$root" "$MIRROR" >/dev/null
    mark stage1
fi
if ! step_done stage2; then
    log "debootstrap second stage (emulated)"
    in_root /debootstrap/debootstrap --second-stage >/dev/null
    mark stage2
fi

cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/etc/ssl/certs"
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
mount_in_root proc proc
mount_in_root sysfs sys

# --- Debian packages ---------------------------------------------------------------------------------------
# Required: the interpreter, pip/venv and the real libcamera bindings. Wanted: picamera2's Python dependencies
# as Debian builds them, so pip has nothing to compile under emulation; any that trixie lacks comes from PyPI.
REQUIRED=(python3 python3-venv python3-pip python3-libcamera python3-numpy python3-pil)
WANTED=(python3-av python3-prctl python3-piexif python3-simplejpeg python3-jsonschema python3-tqdm
        python3-libarchive-c python3-openexr python3-pidng python3-videodev2 python3-kms++ libcamera-ipa)
if ! step_done apt; then
    log "apt-get update (emulated)"
    in_root apt-get update -qq
    available=() unavailable=()
    for p in "${WANTED[@]}"; do
        if in_root apt-cache policy "$p" 2>/dev/null | grep -E '^ *Candidate:' | grep -qv '(none)'; then
            available+=("$p")
        else
            unavailable+=("$p")
        fi
    done
    log "not in Debian $SUITE arm64: ${unavailable[*]:-(none)}"
    printf '%s\n' "${unavailable[@]}" > "$root/.unavailable-packages.tmp"
    log "apt-get install ${REQUIRED[*]} ${available[*]} (emulated; a few minutes)"
    in_root apt-get install -y -qq --no-install-recommends "${REQUIRED[@]}" "${available[@]}" >/dev/null
    in_root apt-get clean
    mkdir -p "$stamp"
    mv "$root/.unavailable-packages.tmp" "$stamp/unavailable-packages"
    mark apt
fi

# --- picamera2 from PyPI --------------------------------------------------------------------------------
# A venv that sees Debian's packages (libcamera has no wheel; it must be the system's build). PiDNG, a
# picamera2 dependency, is a source-only package with C code: it needs a compiler and Python's headers, as does
# edgevision's own C extension, which tests/test_native_arm64.py builds here with pip (setuptools, wheel);
# ai-edge-litert's aarch64 wheel is the oracle those tests compare the native engine against.
# The marker holds the list, so a changed list installs again.
BUILD=(gcc libc6-dev python3-dev)
PIP_PACKAGES=(picamera2 ai-edge-litert pytest setuptools wheel)
if [[ "$(cat "$stamp/pip" 2>/dev/null)" != "${PIP_PACKAGES[*]}" ]]; then
    log "apt-get install ${BUILD[*]} (to build PiDNG, which has no wheel; emulated)"
    in_root apt-get install -y -qq --no-install-recommends "${BUILD[@]}" >/dev/null
    [[ -x $root$VENV/bin/python3 ]] || in_root python3 -m venv --system-site-packages "$VENV"
    # pip inside trusts the CA bundle pip trusts here (a proxy's CA may be in it); Debian's ca-certificates
    # rebuilt the root's own bundle without it.
    host_ca="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}}"
    cp "$host_ca" "$root/etc/ssl/certs/edgevision-host-ca.crt"
    log "pip install ${PIP_PACKAGES[*]} into $VENV (emulated)"
    in_root env -u PIP_FIND_LINKS PIP_CERT=/etc/ssl/certs/edgevision-host-ca.crt \
        "$VENV/bin/pip" install -q --disable-pip-version-check --prefer-binary "${PIP_PACKAGES[@]}"
    mkdir -p "$stamp"
    echo "${PIP_PACKAGES[*]}" > "$stamp/pip"
    log "step pip done ($((SECONDS - start)) s so far)"
fi

# picamera2 imports kms++'s Python bindings (pykms, for its DRM preview window) unconditionally. Raspberry Pi
# OS has them as python3-kms++ in its own archive; Debian has no such package, and PyPI's rpi-kms clones kms++
# from GitHub while building, so neither can be installed from the registries alone. A chroot has no display
# anyway, so a stand-in module takes its place: it satisfies the import and raises if a DRM preview is ever
# started. Everything else picamera2 and libcamera do is the real code. A real pykms, when present, is kept.
if ! in_root "$VENV/bin/python3" -c 'import importlib.util as u, sys; sys.exit(not (u.find_spec("kms") or u.find_spec("pykms")))'; then
    site="$(in_root "$VENV/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    log "no kms++ bindings in $SUITE: installing the pykms stand-in into $site/pykms (DRM preview unavailable)"
    mkdir -p "$root$site/pykms"
    cat > "$root$site/pykms/__init__.py" <<'PY'
"""Stand-in for kms++'s pykms, written by edgevision's tools/setup_arm64_root.sh.

The real bindings come from Raspberry Pi's apt archive (python3-kms++), which this Debian userland cannot reach.
picamera2 imports pykms for its DRM preview only; using anything here raises.
"""


class _Unavailable:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return _Unavailable(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"pykms.{self._name}: kms++ is not installed here (stand-in module; no DRM preview)")


def __getattr__(name):
    return _Unavailable(name)
PY
fi
in_root "$VENV/bin/python3" -c 'import libcamera, picamera2; print("picamera2", picamera2.__file__)' >&2
mark ready
log "ready in $((SECONDS - start)) s: EDGEVISION_ARM64_ROOT=$root pytest -m arm64 tests/test_picamera2_arm64.py"
