# shellcheck shell=bash
# Running a fresh copy of a provisioning base (tools/setup_firmware_tests.sh --roots) under qemu user emulation:
# a chroot whose CPU is a Cortex-A72 (Raspberry Pi 4), with /proc for apt and dpkg but a /proc/cpuinfo
# describing that core (LiteRT's cpuinfo library crashes on the host's x86 one), the apt and pip downloads
# cached outside the copy, and the host's CA bundle for pip (a proxy's CA may be in it).

CACHE=${EDGEVISION_CACHE:-/var/cache/edgevision}
CPU=cortex-a72
CPUINFO=$'processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4 (stand-in)\n'

# root_up BASE ROOT: ROOT a fresh copy of BASE, with its mounts (recorded in ROOT.mounts for root_down)
root_up() {
    local base=$1 root=$2 suite
    suite=$(basename "$base")
    root_down "$root"
    cp -a "$base" "$root"
    : > "$root.mounts"
    mkdir -p "$CACHE/provision-debs/$suite" "$CACHE/provision-pip/$suite" "$root/var/cache/apt/archives" "$root/root/.cache/pip"
    mount -t proc proc "$root/proc" && echo "$root/proc" >> "$root.mounts"
    printf '%s' "$CPUINFO" > "$root.cpuinfo"
    mount --bind "$root.cpuinfo" "$root/proc/cpuinfo" && echo "$root/proc/cpuinfo" >> "$root.mounts"
    mount --bind "$CACHE/provision-debs/$suite" "$root/var/cache/apt/archives" && echo "$root/var/cache/apt/archives" >> "$root.mounts"
    mount --bind "$CACHE/provision-pip/$suite" "$root/root/.cache/pip" && echo "$root/root/.cache/pip" >> "$root.mounts"
    mkdir -p "$root/sys/devices/system/cpu"
    local f
    for f in possible present online; do echo 0 > "$root/sys/devices/system/cpu/$f"; done
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/edgevision-host-ca.crt"
}

root_down() {
    local root=$1 m
    if [[ -f $root.mounts ]]; then
        tac "$root.mounts" | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
        rm -f "$root.mounts"
    fi
    # never delete through a mount that is still there
    if grep -q " $root/" /proc/mounts; then
        echo "mounts remain under $root; not deleting it" >&2
        return 1
    fi
    rm -rf "$root" "$root.cpuinfo"
}

# in_root ROOT CMD...: CMD inside ROOT as the emulated Pi, with a clean environment
in_root() {
    local root=$1
    shift
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root QEMU_CPU="$CPU" TERM=dumb \
        PIP_CERT=/etc/ssl/certs/edgevision-host-ca.crt \
        unshare --uts chroot "$root" "$@"  # its own host name: nothing inside can rename this machine
}

# snapshot ROOT: every file's path, type, mode, owner, size, time and link target (what "nothing changed" means)
snapshot() {
    local root=$1
    (cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp -o -path ./run \
        -o -path ./root/.cache -o -path ./var/cache/apt/archives \) -prune -o \
        -printf '%p %y %m %u:%g %s %T@ %l\n' | LC_ALL=C sort)
}
