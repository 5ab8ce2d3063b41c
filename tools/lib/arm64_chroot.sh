# shellcheck shell=bash
# Building arm64 Debian userlands under qemu user emulation: shared by tools/setup_arm64_root.sh and
# tools/setup_firmware_tests.sh. The caller defines log and die and runs as root.
#
#   register_qemu_aarch64   run aarch64 ELF files through qemu-user-static, also inside a chroot
#   mounted+=(PATH)         a mount to undo; unmount_all undoes them, newest first (the callers trap it on EXIT)
#
# The F flag makes the kernel open the interpreter at registration, so it works inside the chroot without a copy
# there. Debian's own entry uses a -P wrapper that breaks debootstrap here; ours is registered under its own name
# and, being newer, is matched first.
register_qemu_aarch64() {
    local qemu=/usr/bin/qemu-aarch64-static binfmt=/proc/sys/fs/binfmt_misc entry=edgevision-qemu-aarch64
    [[ -x $qemu ]] || die "$qemu missing: apt-get install qemu-user-static"
    [[ -e $binfmt/register ]] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
    [[ -e $binfmt/register ]] || die "cannot mount binfmt_misc at $binfmt (a container without it cannot run this)"
    if [[ ! -e $binfmt/$entry ]]; then
        log "registering $qemu for aarch64 ELF in binfmt_misc ($entry)"
        printf '%s' ":$entry:M::"'\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'":"'\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'":$qemu:F" \
            > "$binfmt/register"
    fi
    grep -q '^enabled' "$binfmt/$entry" || echo 1 > "$binfmt/$entry"
}

mounted=()
unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || log "could not unmount ${mounted[i]}"
    done
    mounted=()
}
