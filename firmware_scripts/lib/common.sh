# shellcheck shell=bash
# Shared by flash.sh, make_bundle.sh and provision.sh: messages, exit codes, dependency checks.
# The caller sets PROG (the name shown in messages) before sourcing.
#
# Exit codes: 2 bad usage (unknown option, bad value: the message says what was given and what is expected),
# 1 a failure (a missing tool, a write that did not verify, a package that would not install).

log() { printf '%s: %s\n' "${PROG:-edgevision}" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "${PROG:-edgevision}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${PROG:-edgevision}" "$*" >&2; exit 1; }
usage_error() {
    printf '%s: %s\n' "${PROG:-edgevision}" "$*" >&2
    printf "Run '%s --help' for the options.\n" "${PROG:-edgevision}" >&2
    exit 2
}

# command -> Debian/Ubuntu package that provides it
declare -A PACKAGE_OF=(
    [dd]=coreutils [sha256sum]=coreutils [head]=coreutils [tail]=coreutils [stat]=coreutils [cmp]=diffutils
    [sfdisk]=fdisk [blockdev]=util-linux [lsblk]=util-linux [findmnt]=util-linux [losetup]=mount
    [mcopy]=mtools [mdir]=mtools [mtype]=mtools [mmd]=mtools [minfo]=mtools
    [debugfs]=e2fsprogs [xz]=xz-utils [openssl]=openssl [python3]=python3 [tar]=tar [gzip]=gzip
    [iconv]=libc-bin [getent]=libc-bin [sed]=sed [grep]=grep [awk]=mawk [flock]=util-linux
    [apt-get]=apt [dpkg-query]=dpkg [systemctl]=systemd [useradd]=passwd [usermod]=passwd [runuser]=util-linux
)

# need_commands CMD...: all present, or one message naming each missing command and its package
need_commands() {
    local c missing=() pkgs=()
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 && continue
        missing+=("$c")
        [[ " ${pkgs[*]} " == *" ${PACKAGE_OF[$c]:-$c} "* ]] || pkgs+=("${PACKAGE_OF[$c]:-$c}")
    done
    ((${#missing[@]} == 0)) && return 0
    local what=()
    for c in "${missing[@]}"; do what+=("$c (package ${PACKAGE_OF[$c]:-$c})"); done
    die "missing tools: ${what[*]}. Install them with: sudo apt-get install ${pkgs[*]}"
}
