#!/usr/bin/env bash
# A stand-in for a Raspberry Pi OS image, small enough for tests, laid out as pi-gen lays out the real ones
# (export-image/prerun.sh): an MBR (sfdisk) with the FAT32 boot partition "bootfs" at 8 MiB (type c, one sector
# per cluster) and the ext4 root "rootfs" after it. The boot partition holds the files flash.sh reads and edits
# (cmdline.txt with root=PARTUUID=..., config.txt, issue.txt) beside small stand-ins for the firmware; the root
# holds Debian's os-release (Raspberry Pi OS keeps Debian's), /etc/rpi-issue, /etc/fstab and, for a cloud-init
# image, /etc/cloud/cloud.cfg; such an image also carries the NoCloud seed (meta-data, user-data,
# network-config) on its boot partition, as pi-gen's stage2/04-cloud-init puts it there.
# Real images cannot be downloaded here; nothing in them but these files matters to flash.sh.
#
# usage: make_standin_image.sh OUT.img bookworm|trixie|bullseye [--cloud-init] [--xz]
#        --xz also writes OUT.img.xz (and removes OUT.img)
set -euo pipefail

log() { printf 'make_standin_image: %s\n' "$*" >&2; }
(($# >= 2)) || { sed -n '10,11p' "$0" >&2; exit 2; }
out=$1 release=$2
shift 2
cloud=0 xz=0
for a in "$@"; do
    case $a in
        --cloud-init) cloud=1 ;;
        --xz) xz=1 ;;
        *) log "unknown option $a"; exit 2 ;;
    esac
done
case $release in
    bullseye) version=11 ;;  # only to test that flash.sh refuses it
    bookworm) version=12 ;;
    trixie) version=13 ;;
    *) log "release $release: expected bullseye, bookworm or trixie"; exit 2 ;;
esac
export MTOOLS_SKIP_CHECK=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
disk_id=$(printf '%s' "$release$cloud" | sha256sum | cut -c1-8)

# --- boot partition files -----------------------------------------------------------------------------------------
boot=$tmp/boot
mkdir -p "$boot/overlays"
cat > "$boot/config.txt" <<'EOF'
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Run in 64-bit mode
arm_64bit=1

[all]
EOF
if [[ $release != trixie ]]; then
    printf 'console=serial0,115200 console=tty1 root=PARTUUID=%s-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n' \
        "$disk_id" > "$boot/cmdline.txt"
    printf 'Raspberry Pi reference 2024-11-19\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, 891df1e21ed2b6099a2e6a13e26c91dea44b34d4, stage2\n' > "$boot/issue.txt"
else
    # an existing regulatory domain, which flash.sh must replace rather than repeat
    printf 'console=serial0,115200 console=tty1 root=PARTUUID=%s-02 rootfstype=ext4 fsck.repair=yes rootwait resize cfg80211.ieee80211_regdom=GB quiet\n' \
        "$disk_id" > "$boot/cmdline.txt"
    printf 'Raspberry Pi reference 2025-11-24\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, 314262cb5a2e1e0f3f1e5c4d8b7a6a9f0c1d2e3f, stage2\n' > "$boot/issue.txt"
fi
for f in start4.elf fixup4.dat kernel8.img kernel_2712.img bcm2711-rpi-4-b.dtb bcm2712-rpi-5-b.dtb initramfs8 initramfs_2712; do
    head -c 4096 /dev/urandom > "$boot/$f"
done
printf 'stand-in for the overlays folder\n' > "$boot/overlays/README"
if ((cloud)); then
    printf '# NoCloud meta-data (stand-in for pi-gen stage2/04-cloud-init)\ndsmode: local\ninstance_id: rpios-image\n' > "$boot/meta-data"
    printf '#cloud-config\n# stand-in for the commented example user-data of pi-gen stage2/04-cloud-init\n#hostname: raspberrypi\n' > "$boot/user-data"
    printf '# stand-in for the commented example network-config of pi-gen stage2/04-cloud-init\n#network:\n#  version: 2\n' > "$boot/network-config"
fi

# --- root file system ---------------------------------------------------------------------------------------------
root=$tmp/root
mkdir -p "$root/etc" "$root/usr/lib" "$root/boot/firmware" "$root/home/pi"
cat > "$root/usr/lib/os-release" <<EOF
PRETTY_NAME="Debian GNU/Linux $version ($release)"
NAME="Debian GNU/Linux"
VERSION_ID="$version"
VERSION="$version ($release)"
VERSION_CODENAME=$release
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
EOF
ln -s ../usr/lib/os-release "$root/etc/os-release"
cp "$boot/issue.txt" "$root/etc/rpi-issue"
echo raspberrypi > "$root/etc/hostname"
printf 'proc            /proc           proc    defaults          0       0\nPARTUUID=%s-01  /boot/firmware  vfat    defaults          0       2\nPARTUUID=%s-02  /               ext4    defaults,noatime  0       1\n' \
    "$disk_id" "$disk_id" > "$root/etc/fstab"
if ((cloud)); then
    mkdir -p "$root/etc/cloud/cloud.cfg.d"
    printf '# stand-in for cloud-init'"'"'s configuration (Raspberry Pi OS Trixie ships cloud-init)\ndatasource_list: [ NoCloud, None ]\n' > "$root/etc/cloud/cloud.cfg"
fi

# --- the disk -----------------------------------------------------------------------------------------------------
MiB=$((1024 * 1024))
boot_start=$((8 * MiB)) boot_size=$((64 * MiB)) root_size=$((32 * MiB))
mkfs.vfat -C -F 32 -n bootfs -s 1 -S 512 "$tmp/boot.fat" $((boot_size / 1024)) >/dev/null 2>&1
mcopy -s -i "$tmp/boot.fat" "$boot"/* ::/
mkfs.ext4 -q -F -L rootfs -d "$root" "$tmp/root.ext4" $((root_size / 1024))k >/dev/null
rm -f "$out"
truncate -s $((boot_start + boot_size + root_size)) "$out"
sfdisk --quiet "$out" <<EOF
label: dos
label-id: 0x$disk_id
unit: sectors

start=$((boot_start / 512)), size=$((boot_size / 512)), type=c
start=$(((boot_start + boot_size) / 512)), size=$((root_size / 512)), type=83
EOF
dd if="$tmp/boot.fat" of="$out" bs=1M seek=$((boot_start / MiB)) conv=notrunc,sparse status=none
dd if="$tmp/root.ext4" of="$out" bs=1M seek=$(((boot_start + boot_size) / MiB)) conv=notrunc,sparse status=none
if ((xz)); then
    xz -T1 -0 -f "$out"
    log "wrote $out.xz"
else
    log "wrote $out"
fi
