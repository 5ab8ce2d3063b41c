#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Set up what the firmware-script tests need (tests/firmware, tests/test_firmware.py).
#
#   host tools      bats, shellcheck, mtools, dosfstools, e2fsprogs, fdisk, xz-utils, openssl, python3-yaml,
#                   systemd (systemd-analyze verify): the flasher's tests build and read disk images with them
#   --roots         also the arm64 Debian userlands under qemu in which provision.sh is tested: a bookworm and a
#                   trixie base standing in for Raspberry Pi OS (minbase + systemd, python3, openssh-server,
#                   tzdata, sudo, a uid-1000 user "pi", /boot/firmware; trixie also cloud-init, as Raspberry Pi
#                   OS Trixie has). Each test run copies a base fresh and throws the copy away; the bases are
#                   never provisioned themselves. Downloaded .debs are kept under $EDGEVISION_CACHE so a
#                   rebuilt base downloads nothing.
#
# usage: tools/setup_firmware_tests.sh [--roots]
#        Needs root for apt-get (and, with --roots, debootstrap, chroot, mount, binfmt_misc) and the network to
#        Debian's archive. Idempotent: finished steps leave markers and are skipped. Prints, last, the variable
#        that makes the emulated tests run: EDGEVISION_PROVISION_ROOTS=ROOT1:ROOT2
#        EDGEVISION_CACHE defaults to /var/cache/edgevision.
set -euo pipefail

log() { printf 'setup_firmware_tests: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '3,18p' "$0"; }

with_roots=0
for arg in "$@"; do
    case "$arg" in
        --roots) with_roots=1 ;;
        -h|--help) usage; exit 0 ;;
        *) log "unknown option $arg (expected --roots or --help)"; exit 2 ;;
    esac
done

CACHE="${EDGEVISION_CACHE:-/var/cache/edgevision}"
MIRROR=http://deb.debian.org/debian
SUITES=(bookworm trixie)
start=$SECONDS

# --- host packages ------------------------------------------------------------------------------------------
HOST_PACKAGES=(bats shellcheck mtools dosfstools e2fsprogs fdisk xz-utils openssl python3 python3-yaml systemd
               util-linux coreutils)
((with_roots)) && HOST_PACKAGES+=(debootstrap qemu-user-static)
missing=()
for p in "${HOST_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
((with_roots)) || { log "host tools ready ($((SECONDS - start)) s)"; exit 0; }

# --- binfmt_misc: run aarch64 ELF files through qemu ---------------------------------------------------------
[[ $(id -u) -eq 0 ]] || die "--roots must run as root (debootstrap, chroot and mount need it)"
# shellcheck source=lib/arm64_chroot.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/arm64_chroot.sh"
register_qemu_aarch64

# --- mounts, always undone ----------------------------------------------------------------------------------
trap unmount_all EXIT

# rpi_like_files ROOT: files every Raspberry Pi OS image has that debootstrap does not make (cheap; each run)
rpi_like_files() {
    local root=$1
    mkdir -p "$root/boot/firmware"
    [[ -s $root/etc/hostname ]] || echo raspberrypi > "$root/etc/hostname"
    if [[ ! -f $root/etc/hosts ]]; then
        printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n\n127.0.1.1\traspberrypi\n' \
            > "$root/etc/hosts"
    fi
}

build_base() {  # build_base SUITE: $CACHE/provision-SUITE, a stand-in for Raspberry Pi OS SUITE (arm64)
    local suite=$1 root="$CACHE/provision-$1"
    local stamp="$root/.edgevision" debs="$CACHE/debootstrap-debs/$1"
    local t0=$SECONDS
    mkdir -p "$root" "$debs"
    in_root() { LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"; }
    step_done() { [[ -f $stamp/$1 ]]; }
    mark() { mkdir -p "$stamp"; date -u +%FT%TZ > "$stamp/$1"; log "$suite: step $1 done ($((SECONDS - t0)) s)"; }

    if ! step_done stage1; then
        log "$suite: debootstrap --foreign arm64 minbase into $root (debs cached in $debs)"
        debootstrap --foreign --arch=arm64 --variant=minbase --cache-dir="$debs" "$suite" "$root" "$MIRROR" >/dev/null
        mark stage1
    fi
    if ! step_done stage2; then
        log "$suite: debootstrap second stage (emulated)"
        in_root /debootstrap/debootstrap --second-stage >/dev/null
        mark stage2
    fi
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    local mnt
    for mnt in proc sys; do
        if ! mountpoint -q "$root/$mnt"; then
            mount -t "$([[ $mnt == proc ]] && echo proc || echo sysfs)" "$mnt" "$root/$mnt"
            mounted+=("$root/$mnt")
        fi
    done

    # What Raspberry Pi OS Lite has and provision.sh / firstrun.sh touch: systemd (systemctl enable works
    # offline in a chroot), python3, ssh, tzdata, sudo; Trixie images also carry cloud-init.
    local packages=(systemd python3 ca-certificates openssh-server tzdata sudo)
    # cloud-init renders Wi-Fi through netplan (to NetworkManager) there: the tests run both on what flash.sh wrote
    [[ $suite == trixie ]] && packages+=(cloud-init netplan.io)
    if [[ "$(cat "$stamp/apt" 2>/dev/null)" != "${packages[*]}" ]]; then
        log "$suite: apt-get install ${packages[*]} (emulated; a few minutes)"
        mkdir -p "$root/var/cache/apt/archives"
        mount --bind "$debs" "$root/var/cache/apt/archives"
        mounted+=("$root/var/cache/apt/archives")
        in_root apt-get update -qq
        # no policy-rc.d dance needed: nothing starts services in a chroot without a running systemd
        in_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
        umount "$root/var/cache/apt/archives" && unset 'mounted[${#mounted[@]}-1]'
        mkdir -p "$stamp"
        echo "${packages[*]}" > "$stamp/apt"
        log "$suite: step apt done ($((SECONDS - t0)) s)"
    fi

    # The uid-1000 account every Raspberry Pi OS image has (renamed at first boot by userconf / cloud-init) and
    # the mount point of the boot partition.
    if ! in_root getent passwd 1000 >/dev/null; then
        in_root useradd -m -u 1000 -s /bin/bash pi
        local g
        for g in adm dialout cdrom sudo audio video plugdev games users input render netdev; do
            in_root getent group "$g" >/dev/null && in_root usermod -aG "$g" pi
        done
    fi
    rpi_like_files "$root"
    unmount_all
    if [[ -f $stamp/ready ]]; then
        log "$suite: $root is ready ($((SECONDS - t0)) s; delete it to rebuild from scratch)"
    else
        mark ready
        log "$suite: base ready in $((SECONDS - t0)) s: $root"
    fi
}

for suite in "${SUITES[@]}"; do build_base "$suite"; done
roots=$(printf "$CACHE/provision-%s:" "${SUITES[@]}")
log "ready in $((SECONDS - start)) s"
echo "EDGEVISION_PROVISION_ROOTS=${roots%:}"
