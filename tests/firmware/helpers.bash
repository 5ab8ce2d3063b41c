# shellcheck shell=bash
# shellcheck disable=SC2034,SC2016 # the variables are for the bats files that load this; the literal $ are meant
# Shared by the bats files in tests/firmware.
REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
FW=$REPO/firmware_scripts
export MTOOLS_SKIP_CHECK=1
# Debian's python3, which has PyYAML (python3-yaml); the project venv has not
SYSPY=/usr/bin/python3

# Values a user might type, meant to break out of quoting. Each runs `touch pwn` if it ever reaches a shell
# unquoted; tests run where a file called pwn must then appear, and check that it never does.
HOSTILE_SSID=$'\'"$(touch pwn)`touch pwn`\\;\xc3\x89 #'        # 31 of the 32 bytes allowed; É
HOSTILE_PASSWORD=$'p\'"$(touch pwn)`touch pwn`\\ \xc3\xbc;|&'  # and ü
HOSTILE_PASSPHRASE='q'\''"$(touch pwn)`touch pwn`\;|&<>'          # printable ASCII, as WPA wants
HOSTILE_COMMENT=$'J\xc3\xb6rg\'s "laptop" $(touch pwn) `touch pwn` \\n #x'

# secret_file NAME CONTENT: a mode-600 file holding CONTENT and a newline
secret_file() {
    printf '%s\n' "$2" > "$BATS_TEST_TMPDIR/$1"
    chmod 600 "$BATS_TEST_TMPDIR/$1"
    printf '%s' "$BATS_TEST_TMPDIR/$1"
}

# pubkey_file NAME COMMENT: a real ed25519 public key (ssh-keygen) with COMMENT
pubkey_file() {
    local f=$BATS_TEST_TMPDIR/$1
    rm -f "$f" "$f.pub"
    ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$f" >/dev/null
    printf '%s' "$f.pub"
}

# standin NAME RELEASE [--cloud-init] [--xz]: a stand-in Raspberry Pi OS image, built once per bats file
standin() {
    local name=$1
    shift
    local out=$BATS_FILE_TMPDIR/$name.img
    if [[ ! -f $out && ! -f $out.xz ]]; then
        "$BATS_TEST_DIRNAME/make_standin_image.sh" "$out" "$@" 2>/dev/null
    fi
    if [[ -f $out ]]; then printf '%s' "$out"; else printf '%s' "$out.xz"; fi
}

# part_offset IMG N: byte offset of partition N
part_offset() {
    sfdisk --dump "$1" | awk -v n="$2" 'NR > 0 && /start=/ { i++; if (i == n) { sub(/.*start= */, ""); sub(/,.*/, ""); print $0 * 512 } }'
}
part_size() {
    sfdisk --dump "$1" | awk -v n="$2" '/start=/ { i++; if (i == n) { sub(/.*size= */, ""); sub(/,.*/, ""); print $0 * 512 } }'
}

# fat_cat IMG PATH: a file from the boot partition of IMG (a disk image or a device)
fat_cat() { mtype -i "$1@@$(part_offset "$1" 1)" "::/$2"; }
fat_get() { mcopy -n -i "$1@@$(part_offset "$1" 1)" "::/$2" "$3"; }
fat_ls() { mdir -b -i "$1@@$(part_offset "$1" 1)" "::/${2:-}" 2>/dev/null | sed 's|^::/||'; }
# fat_tree IMG DIR: the whole boot partition copied into DIR
fat_tree() { mkdir -p "$2" && mcopy -s -n -i "$1@@$(part_offset "$1" 1)" ::/ "$2/"; }

# flash ARGS...: flash.sh, working in this test's temporary folder, never asking
flash() { "$FW/flash.sh" --work-dir "$BATS_TEST_TMPDIR" "$@"; }

# firstrun_values FIRSTRUN NAME...: the values flash.sh wrote, NUL-separated, read by sh from the value block
firstrun_values() {
    local f=$1
    shift
    sed -n '/^# BEGIN VALUES$/,/^# END VALUES$/p' "$f" > "$BATS_TEST_TMPDIR/values.sh"
    local script='. "$1"; shift; for n in "$@"; do eval "printf '\''%s\0'\'' \"\$$n\""; done'
    (cd "$BATS_TEST_TMPDIR" && sh -c "$script" sh "$BATS_TEST_TMPDIR/values.sh" "$@")
}

# yaml_get FILE EXPR: a value from a YAML file, as Python's repr of the bytes (EXPR indexes `d`)
yaml_get() {
    "$SYSPY" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1], encoding="utf-8")); v = eval(sys.argv[2]); sys.stdout.buffer.write(v.encode() if isinstance(v, str) else repr(v).encode())' "$1" "$2"
}

# wpa_key SSID PASSPHRASE: the WPA PSK computed here, independently of flash.sh
wpa_key() {
    "$SYSPY" -c 'import hashlib, sys; print(hashlib.pbkdf2_hmac("sha1", sys.argv[2].encode(), sys.argv[1].encode(), 4096, 32).hex())' "$1" "$2"
}

no_pwn() {
    if [[ -e $BATS_TEST_TMPDIR/pwn || -e pwn || -e $BATS_FILE_TMPDIR/pwn ]]; then
        echo "a value was executed: a file named pwn appeared" >&2
        return 1
    fi
}

# read_only_host CMD...: CMD in a private mount namespace in which / is read-only. The provision.sh tests that
# run as root on this machine use it, so a provision.sh that wrongly got past its checks could not install
# anything here.
read_only_host() {
    unshare -m sh -c 'mount --make-rprivate / && mount -o bind,remount,ro / && exec "$@"' sh "$@"
}
