#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Write a Raspberry Pi OS image to an SD card (or to an image file), verify it, and prepare its first boot:
# host name, user and password, SSH with your key, Wi-Fi, time zone and keyboard, and edgevision, which the Pi
# installs by itself once it is online, then runs as a service (live recognition from the camera).
#
# usage: flash.sh --image IMG --device DEV_OR_FILE [options]
#   --image IMG              Raspberry Pi OS Bookworm or Trixie image, .img or .img.xz
#   --device DEV_OR_FILE     the whole SD card (/dev/sdX, /dev/mmcblkN; see lsblk) or an image file to create
#   --hostname NAME          host name (default edgevision: the Pi answers to edgevision.local)
#   --user NAME              the login account (default pi)
#   --password-file F        its password, alone on the first line of F (stored on the card only as a hash)
#   --ssh-key PUBKEY_FILE    public key(s) allowed to log in over SSH (e.g. ~/.ssh/id_ed25519.pub); with a key,
#                            SSH accepts keys only. At least one of --password-file and --ssh-key is needed.
#   --wifi-ssid SSID         Wi-Fi network name (leave out on Ethernet)
#   --wifi-password-file F   its passphrase, alone on the first line of F (stored only as the derived WPA key)
#   --wifi-country CC        two-letter country code, needed with --wifi-ssid (e.g. GB, US, DE)
#   --timezone TZ            e.g. Europe/London      --keyboard LAYOUT   e.g. gb, us, de
#   --model M.tflite         the model the service runs (default: the embedded EfficientNet-Lite0)
#   --config config.toml     the service's settings (default: firmware_scripts/config.toml plus a web page on
#                            port 8080 with a fresh token; --no-web leaves the web page out)
#   --init-format F          auto (default: read it from the image), firstrun (Bookworm) or cloud-init (Trixie)
#   --work-dir DIR           where to unpack an .img.xz and stage files (default ${TMPDIR:-/var/tmp})
#   --yes                    do not ask before erasing DEV
# Secrets are read from files so they never appear in a process list or in the shell history.
# Nothing is written until every check has passed and you have confirmed; a failure says what state DEV is in.
set -euo pipefail

# shellcheck disable=SC2034 # PROG is used by lib/common.sh
PROG=flash.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/quote.sh
. "$here/lib/quote.sh"
# shellcheck source=lib/values.sh
. "$here/lib/values.sh"
# shellcheck source=lib/bundle.sh
. "$here/lib/bundle.sh"

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; }

# --- options ----------------------------------------------------------------------------------------------------
IMAGE='' DEVICE='' HOST=edgevision USERNAME=pi PASSWORD_FILE='' SSH_KEY_FILE='' WIFI_SSID='' WIFI_SSID_SET=0
WIFI_PASSWORD_FILE='' WIFI_COUNTRY='' TIMEZONE='' KEYBOARD='' MODEL='' CONFIG='' INIT_FORMAT=auto
WORK_PARENT=${TMPDIR:-/var/tmp} ASSUME_YES=0 WEB=1

while (($#)); do
    opt=$1 val='' has_val=0
    if [[ $opt == --*=* ]]; then val=${opt#*=} opt=${opt%%=*} has_val=1; fi
    case $opt in
        -h|--help) usage; exit 0 ;;
        --yes|-y) ASSUME_YES=1; shift; continue ;;
        --no-web) WEB=0; shift; continue ;;
        --image|--device|--hostname|--user|--password-file|--ssh-key|--wifi-ssid|--wifi-password-file|\
        --wifi-country|--timezone|--keyboard|--model|--config|--init-format|--work-dir)
            if ((!has_val)); then
                (($# >= 2)) || usage_error "$opt needs a value"
                val=$2; shift
            fi
            shift ;;
        *) usage_error "unknown option $(shown "$opt")" ;;
    esac
    case $opt in
        --image) IMAGE=$val ;;
        --device) DEVICE=$val ;;
        --hostname) HOST=$val ;;
        --user) USERNAME=$val ;;
        --password-file) PASSWORD_FILE=$val ;;
        --ssh-key) SSH_KEY_FILE=$val ;;
        --wifi-ssid) WIFI_SSID=$val WIFI_SSID_SET=1 ;;
        --wifi-password-file) WIFI_PASSWORD_FILE=$val ;;
        --wifi-country) WIFI_COUNTRY=$val ;;
        --timezone) TIMEZONE=$val ;;
        --keyboard) KEYBOARD=$val ;;
        --model) MODEL=$val ;;
        --config) CONFIG=$val ;;
        --init-format) INIT_FORMAT=$val ;;
        --work-dir) WORK_PARENT=$val ;;
    esac
done

# --- dependencies, before anything else -------------------------------------------------------------------------
need_commands dd head tail stat cmp sha256sum sfdisk mcopy mdir mmd debugfs openssl python3 tar gzip iconv \
    lsblk findmnt blockdev losetup
[[ $IMAGE != *.xz ]] || need_commands xz

# --- values -----------------------------------------------------------------------------------------------------
[[ -n $IMAGE ]] || usage_error "--image IMG is required: a Raspberry Pi OS Bookworm or Trixie image (.img or" \
    ".img.xz) from https://www.raspberrypi.com/software/operating-systems/"
[[ -n $DEVICE ]] || usage_error "--device DEV_OR_FILE is required: the SD card's whole device (lsblk shows it," \
    "e.g. /dev/sdb or /dev/mmcblk0) or the name of an image file to write"
[[ -f $IMAGE && -r $IMAGE ]] || usage_error "--image $(shown "$IMAGE"): no such readable file"
[[ $IMAGE == *.img || $IMAGE == *.img.xz ]] ||
    usage_error "--image $(shown "$IMAGE"): expected a .img or .img.xz file (unzip a .zip first)"
case $INIT_FORMAT in
    auto|firstrun|cloud-init) ;;
    *) usage_error "--init-format $(shown "$INIT_FORMAT"): expected auto, firstrun (Bookworm) or cloud-init (Trixie)" ;;
esac

check_hostname "$HOST"
check_username "$USERNAME"

PASSWORD_HASH='' SSH_KEYS=''
[[ -n $PASSWORD_FILE || -n $SSH_KEY_FILE ]] || usage_error "give --password-file F or --ssh-key PUBKEY_FILE (or" \
    "both): without either, nobody could log in to the Pi"
if [[ -n $PASSWORD_FILE ]]; then
    read_secret_file "$PASSWORD_FILE" --password-file
    # SHA-512 crypt, read from stdin: the password is never an argument of any process
    PASSWORD_HASH=$(printf '%s\n' "$SECRET" | openssl passwd -6 -stdin) || die "openssl passwd -6 failed"
    # shellcheck disable=SC2016 # a literal $6$
    [[ $PASSWORD_HASH == '$6$'* ]] || die "openssl passwd -6 gave no SHA-512 crypt hash (OpenSSL 1.1.1 or newer needed)"
    unset SECRET
fi
[[ -z $SSH_KEY_FILE ]] || read_ssh_keys "$SSH_KEY_FILE"

WIFI_PSK='' COUNTRY=''
[[ -z $WIFI_COUNTRY ]] || check_country "$WIFI_COUNTRY"
if ((WIFI_SSID_SET)); then
    check_ssid "$WIFI_SSID"
    [[ -n $COUNTRY ]] || usage_error "--wifi-ssid needs --wifi-country CC, the two-letter code of the country the" \
        "Pi is in (e.g. GB, US, DE): Raspberry Pi OS keeps Wi-Fi off until it is set"
    if [[ -n $WIFI_PASSWORD_FILE ]]; then
        read_secret_file "$WIFI_PASSWORD_FILE" --wifi-password-file
        check_wifi_passphrase "$SECRET"
        if [[ $SECRET =~ ^[0-9A-Fa-f]{64}$ ]]; then
            WIFI_PSK=${SECRET,,}
        else
            # the WPA key (PBKDF2-HMAC-SHA1, 4096 rounds, salted with the SSID) as Raspberry Pi Imager stores it:
            # the passphrase itself never reaches the card. Passphrase on stdin, SSID in the environment.
            WIFI_PSK=$(printf '%s' "$SECRET" | EV_SSID=$WIFI_SSID python3 -c '
import hashlib, os, sys
print(hashlib.pbkdf2_hmac("sha1", sys.stdin.buffer.read(), os.environb[b"EV_SSID"], 4096, 32).hex())') ||
                die "python3 could not derive the Wi-Fi key"
        fi
        unset SECRET
    else
        warn "no --wifi-password-file: $(shown "$WIFI_SSID") is taken to be an open network (no passphrase)"
    fi
elif [[ -n $WIFI_PASSWORD_FILE ]]; then
    usage_error "--wifi-password-file is given without --wifi-ssid: which network is it for?"
fi
[[ -z $TIMEZONE ]] || check_timezone "$TIMEZONE"
[[ -z $KEYBOARD ]] || check_keyboard "$KEYBOARD"

if [[ -n $MODEL ]]; then
    [[ -f $MODEL && -r $MODEL ]] || usage_error "--model $(shown "$MODEL"): no such readable file"
    [[ "$(dd if="$MODEL" bs=1 skip=4 count=4 status=none 2>/dev/null)" == TFL3 ]] ||
        usage_error "--model $(shown "$MODEL"): not a TensorFlow Lite model (no TFL3 identifier); expected the" \
            ".tflite file edgevision-convert wrote"
fi

# check_config FILE: edgevision's own checker (edgevision/config.py, loaded by path: no numpy needed here)
read -r -d '' CONFIG_CHECK <<'PY' || true
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("ev_config", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
try:
    values = mod.load_config(os.environ["EV_CONFIG"])
except mod.ConfigError as e:
    if "needs Python 3.11+ or the tomli package" in str(e):
        print(f"warning: {e}; the Pi will check the file instead")
        sys.exit(0)
    print(e)
    sys.exit(2)
if os.environ.get("EV_MODEL_GIVEN") and values.get("model") not in (None, "/etc/edgevision/model.tflite"):
    print(f"it sets model = {values['model']!r} and --model is given too: leave one out "
          "(the service uses /etc/edgevision/model.tflite for --model)")
    sys.exit(2)
PY
check_config() {
    local out rc=0
    out=$(EV_CONFIG=$1 EV_MODEL_GIVEN=${MODEL:+1} python3 -c "$CONFIG_CHECK" "$REPO_DIR/edgevision/config.py" 2>&1) || rc=$?
    ((rc == 0)) || usage_error "--config $(shown "$1"): $out"
    [[ -z $out ]] || warn "${out#warning: }"
}
if [[ -n $CONFIG ]]; then
    [[ -f $CONFIG && -r $CONFIG ]] || usage_error "--config $(shown "$CONFIG"): no such readable file"
    check_config "$CONFIG"
fi

# --- the target -------------------------------------------------------------------------------------------------
TARGET_KIND='' TARGET_DESC=''
# check_target: refuse the disk the system runs from, a partition, anything mounted or otherwise in use
check_target() {
    if [[ -b $DEVICE ]]; then
        TARGET_KIND=block
        local dev type
        dev=$(readlink -f -- "$DEVICE")
        type=$(lsblk -dno TYPE -- "$dev" 2>/dev/null) || die "lsblk cannot read $DEVICE"
        case $type in
            disk|loop) ;;
            part) usage_error "--device $DEVICE is a partition; give the whole card, e.g. /dev/$(lsblk -dno PKNAME -- "$dev")" ;;
            *) usage_error "--device $DEVICE is a '$type' device; expected a whole disk (the SD card, e.g. /dev/sdb)" ;;
        esac
        local m src mounts=() users=()
        for m in / /boot /boot/firmware /boot/efi /usr /var /home; do
            src=$(findmnt -nvo SOURCE --target "$m" 2>/dev/null) || continue
            [[ $src == /dev/* ]] || continue
            if lsblk -nrspo NAME -- "$src" 2>/dev/null | grep -qxF -- "$dev"; then
                usage_error "--device $DEVICE holds $m of the running system: refusing to erase the disk this" \
                    "computer runs from. The SD card is another device: compare lsblk before and after inserting it"
            fi
        done
        local name mnt
        while read -r name mnt; do
            [[ -n $mnt ]] && mounts+=("$name on $mnt")
        done < <(lsblk -nrpo NAME,MOUNTPOINT -- "$dev")
        ((${#mounts[@]} == 0)) || usage_error "--device $DEVICE is in use: ${mounts[*]}. Unmount it first" \
            "(e.g. udisksctl unmount -b ${mounts[0]%% on *}) and run flash.sh again"
        while read -r name type; do
            [[ $type == part || $name == "$dev" ]] || users+=("$name ($type)")
        done < <(lsblk -nrpo NAME,TYPE -- "$dev")
        ((${#users[@]} == 0)) || usage_error "--device $DEVICE is in use by ${users[*]}; release it first"
        local size
        size=$(blockdev --getsize64 "$dev")
        ((size >= IMG_SIZE)) || usage_error "--device $DEVICE holds $((size / 1000000)) MB; the image needs" \
            "$((IMG_SIZE / 1000000)) MB: use a larger card"
        [[ -w $dev ]] || die "cannot write to $DEVICE: run flash.sh with sudo"
        TARGET_DESC="$DEVICE ($(lsblk -dno SIZE,TRAN,MODEL -- "$dev" | tr -s ' ' | sed 's/ *$//'))"
    elif [[ -e $DEVICE && ! -f $DEVICE ]]; then
        usage_error "--device $(shown "$DEVICE"): neither a block device nor a regular file"
    else
        TARGET_KIND='file'
        local parent
        parent=$(dirname -- "$DEVICE")
        [[ -d $parent && -w $parent ]] || usage_error "--device $(shown "$DEVICE"): cannot create a file in $(shown "$parent")"
        if [[ -e $DEVICE ]]; then
            [[ $(stat -L -c %d:%i -- "$DEVICE") != "$(stat -L -c %d:%i -- "$IMAGE")" ]] ||
                usage_error "--device is the image itself; give another file name"
            local loops
            loops=$(losetup -nO NAME -j "$DEVICE" 2>/dev/null | tr '\n' ' ')
            [[ -z $loops ]] || usage_error "--device $(shown "$DEVICE") is in use as loop device ${loops% }: detach it" \
                "(losetup -d ...) first"
            TARGET_DESC="image file $DEVICE (replacing its contents)"
        else
            TARGET_DESC="new image file $DEVICE"
        fi
    fi
}

# --- work area; what the card is in if we stop --------------------------------------------------------------------
[[ -d $WORK_PARENT && -w $WORK_PARENT ]] || usage_error "--work-dir $(shown "$WORK_PARENT"): no such writable folder"
WORK=$(mktemp -d "$WORK_PARENT/edgevision-flash.XXXXXX")
chmod 700 "$WORK"  # the staged files hold the password hash and the Wi-Fi key
PHASE=prepare
on_exit() {
    local rc=$?
    rm -rf -- "$WORK"
    ((rc == 0)) && return 0
    case $PHASE in
        prepare) log "nothing was written to $DEVICE" ;;
        writing) log "$DEVICE is only partly written and will not boot: run flash.sh again (another card if it fails again)" ;;
        verifying) log "$DEVICE was written but does not read back as written: the card or the reader is faulty, or" \
                       "the card was removed. Do not use it; run flash.sh again with another card" ;;
    esac
    return "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
export MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0

# --- the image --------------------------------------------------------------------------------------------------
IMG_SIZE=0
check_target  # before unpacking, which takes minutes: a wrong device is said at once (size is checked later)
IMG=$WORK/image.img
if [[ $IMAGE == *.xz ]]; then
    IMG_SIZE=$(xz --robot --list -- "$IMAGE" | awk -F'\t' '$1 == "totals" {print $5}') ||
        usage_error "--image $(shown "$IMAGE"): xz cannot read it (damaged or incomplete download?)"
    [[ $IMG_SIZE =~ ^[0-9]+$ ]] || usage_error "--image $(shown "$IMAGE"): xz cannot tell its size (damaged download?)"
    avail=$(($(stat -f -c '%a * %S' "$WORK")))
    ((avail > IMG_SIZE + 600000000)) || usage_error "unpacking $IMAGE needs $((IMG_SIZE / 1000000)) MB in" \
        "$WORK_PARENT, which has $((avail / 1000000)) MB free: give --work-dir on a disk with room"
    log "unpacking $IMAGE ($((IMG_SIZE / 1000000)) MB)"
    xz -dc -- "$IMAGE" > "$IMG" || usage_error "--image $(shown "$IMAGE"): xz could not unpack it (damaged download?)"
else
    ln -s -- "$(readlink -f -- "$IMAGE")" "$IMG"
    IMG_SIZE=$(stat -L -c %s -- "$IMG")
fi

# the partition table: MBR with a FAT boot partition first and the ext4 root second, as pi-gen builds it
ptable=$(sfdisk --dump "$IMG" 2>/dev/null) || usage_error "--image $(shown "$IMAGE"): no partition table; expected" \
    "a Raspberry Pi OS image (a FAT boot partition and an ext4 root)"
P_START=() P_SIZE=() P_TYPE=()
while read -r line; do
    if [[ $line =~ start=\ *([0-9]+),\ *size=\ *([0-9]+),\ *type=([0-9a-fA-F]+) ]]; then
        P_START+=("${BASH_REMATCH[1]}") P_SIZE+=("${BASH_REMATCH[2]}") P_TYPE+=("${BASH_REMATCH[3],,}")
    fi
done <<< "$ptable"
[[ $ptable == *"label: dos"* && ${#P_START[@]} -ge 2 && ${P_TYPE[0]} =~ ^(b|c|e|6)$ && ${P_TYPE[1]} == 83 ]] ||
    usage_error "--image $(shown "$IMAGE"): expected an MBR with a FAT boot partition first and a Linux root second" \
        "(Raspberry Pi OS's layout); found: $(printf '%s ' "${P_TYPE[@]:-none}")"
BOOT_OFF=$((P_START[0] * 512)) BOOT_LEN=$((P_SIZE[0] * 512))
ROOT_OFF=$((P_START[1] * 512))
((BOOT_OFF + BOOT_LEN <= IMG_SIZE)) || usage_error "--image $(shown "$IMAGE"): the boot partition runs past the end (truncated download?)"

FAT=$WORK/bootfs.img
dd if="$IMG" of="$FAT" bs=1M iflag=skip_bytes,count_bytes skip="$BOOT_OFF" count="$BOOT_LEN" status=none
for f in cmdline.txt config.txt; do
    mdir -i "$FAT" "::/$f" >/dev/null 2>&1 || usage_error "--image $(shown "$IMAGE"): the first partition has no $f;" \
        "expected a Raspberry Pi OS boot partition"
done
fat_has() { mdir -i "$FAT" "::/$1" >/dev/null 2>&1; }

root_file() { debugfs -R "cat $1" "$IMG?offset=$ROOT_OFF" 2>/dev/null; }
os_release=$(root_file /usr/lib/os-release)
[[ $os_release == *=* ]] || os_release=$(root_file /etc/os-release)
CODENAME=$(sed -n 's/^VERSION_CODENAME=//p' <<< "$os_release" | tr -d '"')
PRETTY=$(sed -n 's/^PRETTY_NAME=//p' <<< "$os_release" | tr -d '"')
HAS_CLOUD_INIT=0
[[ -n "$(root_file /etc/cloud/cloud.cfg)" ]] && HAS_CLOUD_INIT=1

if [[ $INIT_FORMAT == auto ]]; then
    if [[ -z $CODENAME ]]; then
        # the root file system could not be read (e.g. an e2fsprogs older than the image's): the boot partition
        # of an image made for cloud-init carries the NoCloud seed files
        if fat_has meta-data; then INIT_FORMAT=cloud-init; else INIT_FORMAT=firstrun; fi
        warn "cannot read /etc/os-release from the image's root partition; its boot partition says $INIT_FORMAT"
    elif ((HAS_CLOUD_INIT)); then
        INIT_FORMAT=cloud-init
    else
        case $CODENAME in
            bookworm|trixie) INIT_FORMAT=firstrun ;;  # the first Trixie images were still customised this way
            buster|bullseye) usage_error "--image $(shown "$IMAGE") is Raspberry Pi OS $CODENAME, which configures its" \
                "first boot differently; use a Bookworm or Trixie image" ;;
            *) usage_error "--image $(shown "$IMAGE"): a '$CODENAME' system without cloud-init; flash.sh knows" \
                "Raspberry Pi OS Bookworm and Trixie. If you know its first-boot mechanism, give --init-format" ;;
        esac
    fi
fi
log "image: ${PRETTY:-unknown release} ($((IMG_SIZE / 1000000)) MB); first boot set up with $INIT_FORMAT"

check_target

# --- what goes on the boot partition -------------------------------------------------------------------------------
STAGE=$WORK/stage
mkdir -p "$STAGE"
if [[ -z $CONFIG ]]; then
    CONFIG=$WORK/config.toml
    cp "$here/config.toml" "$CONFIG"
    if ((WEB)); then
        WEB_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
        printf '\n# added by flash.sh: the live page at http://%s.local:8080/?token=%s\nweb = "0.0.0.0:8080"\nweb_token = "%s"\n' \
            "$HOST" "$WEB_TOKEN" "$WEB_TOKEN" >> "$CONFIG"
    fi
    check_config "$CONFIG"
fi
make_bundle "$STAGE/edgevision" "$CONFIG" "$MODEL"

mcopy -i "$FAT" -n ::/cmdline.txt "$WORK/cmdline.orig"
cmdline=$(tr -d '\r\n' < "$WORK/cmdline.orig")
cmdline=${cmdline%"${cmdline##*[![:space:]]}"}
# the Wi-Fi regulatory domain at boot, as raspi-config sets it (replacing one already there)
if [[ -n $COUNTRY ]]; then
    cmdline=$(sed -E 's/ ?cfg80211\.ieee80211_regdom=[^ ]*//g' <<< "$cmdline")
    cmdline+=" cfg80211.ieee80211_regdom=$COUNTRY"
fi

# assign NAME VALUE: one line of firstrun.sh's value block
assign() { printf '%s=%s\n' "$1" "$(sh_quote "$2")"; }

write_firstrun() {
    local values tpl=$here/templates/firstrun.sh.in
    values=$(
        assign EV_HOSTNAME "$HOST"
        assign EV_USER "$USERNAME"
        assign EV_PASSWORD_HASH "${PASSWORD_HASH:-!}"
        assign EV_SSH_KEYS "$SSH_KEYS"
        assign EV_WIFI_SSID_BYTES "$( ((WIFI_SSID_SET)) && nm_bytes "$WIFI_SSID")"
        assign EV_WIFI_PSK "$WIFI_PSK"
        assign EV_WIFI_COUNTRY "$COUNTRY"
        assign EV_TIMEZONE "$TIMEZONE"
        assign EV_KEYBOARD "$KEYBOARD"
    )
    { sed '/^@VALUES@$/,$d' "$tpl"; printf '%s\n' "$values"; sed '1,/^@VALUES@$/d' "$tpl"; } > "$STAGE/firstrun.sh"
    cmdline+=" systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"
}

write_cloud_init() {
    local instance
    instance="edgevision-$(date -u +%Y%m%d%H%M%S)-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
    {
        echo '#cloud-config'
        echo '# written by edgevision firmware_scripts/flash.sh: read by cloud-init at the first boot'
        echo 'manage_resolv_conf: false'
        echo "hostname: $(yaml_quote "$HOST")"
        echo 'manage_etc_hosts: true'
        [[ -z $TIMEZONE ]] || echo "timezone: $(yaml_quote "$TIMEZONE")"
        if [[ -n $KEYBOARD ]]; then
            echo 'keyboard:'
            echo '  model: pc105'
            echo "  layout: $(yaml_quote "$KEYBOARD")"
        fi
        # `user:` (singular) renames Raspberry Pi OS's default user and keeps its groups (sudo, video, ...)
        echo 'user:'
        echo "  name: $(yaml_quote "$USERNAME")"
        echo '  shell: /bin/bash'
        if [[ -n $PASSWORD_HASH ]]; then
            echo '  lock_passwd: false'
            echo "  passwd: $(yaml_quote "$PASSWORD_HASH")"
        else
            echo '  lock_passwd: true'
        fi
        if [[ -n $SSH_KEYS ]]; then
            echo '  ssh_authorized_keys:'
            local key
            while IFS= read -r key; do echo "    - $(yaml_quote "$key")"; done <<< "$SSH_KEYS"
            echo 'ssh_pwauth: false'
        else
            echo 'ssh_pwauth: true'
        fi
        echo 'runcmd:'
        echo '  - [systemctl, enable, --now, ssh]'
        if [[ -n $COUNTRY && $WIFI_SSID_SET == 0 ]]; then
            # shellcheck disable=SC2016 # $f is for the Pi's shell
            echo '  - [sh, -c, "rfkill unblock wifi; for f in /var/lib/systemd/rfkill/*:wlan; do echo 0 > \"$f\"; done"]'
        fi
        echo '  - [sh, /boot/firmware/edgevision/firstboot-setup.sh, --now]'
    } > "$STAGE/user-data"
    printf 'instance-id: %s\n' "$instance" > "$STAGE/meta-data"
    if ((WIFI_SSID_SET)); then
        {
            echo '# written by edgevision firmware_scripts/flash.sh (netplan format, applied by cloud-init at first boot)'
            echo 'network:'
            echo '  version: 2'
            echo '  ethernets:'
            echo '    eth0:'
            echo '      dhcp4: true'
            echo '      optional: true'
            echo '  wifis:'
            echo '    wlan0:'
            echo '      dhcp4: true'
            echo '      optional: true'
            echo "      regulatory-domain: $(yaml_quote "$COUNTRY")"
            echo '      access-points:'
            echo "        $(yaml_quote "$WIFI_SSID"):"
            if [[ -n $WIFI_PSK ]]; then
                echo "          password: $(yaml_quote "$WIFI_PSK")"
            else
                echo '          auth:'
                echo '            key-management: none'
            fi
        } > "$STAGE/network-config"
    fi
    cmdline+=" ds=nocloud;i=$instance"
}

case $INIT_FORMAT in
    firstrun) write_firstrun ;;
    cloud-init) write_cloud_init ;;
esac
printf '%s\n' "$cmdline" > "$STAGE/cmdline.txt"

# --- customise a copy of the boot partition; the card is written once, with it in place ----------------------------
STAGED=()
while IFS= read -r f; do STAGED+=("$f"); done < <(cd "$STAGE" && find . -type f -printf '%P\n' | LC_ALL=C sort)
while IFS= read -r d; do
    mmd -i "$FAT" "::/$d" 2>/dev/null || fat_has "$d" || die "cannot make the folder $d on the boot partition"
done < <(cd "$STAGE" && find . -mindepth 1 -type d -printf '%P\n' | LC_ALL=C sort)
for f in "${STAGED[@]}"; do
    mcopy -i "$FAT" -o -D o "$STAGE/$f" "::/$f" 2>"$WORK/mcopy.err" ||
        die "cannot write $f to the image's boot partition ($(tr '\n' ' ' < "$WORK/mcopy.err")); it has" \
            "$(($(du -sk "$STAGE" | cut -f1) / 1024)) MB to hold"
done
# read_back SOURCE: every staged file read back from SOURCE (an mtools image spec) and compared
read_back() {
    local src=$1 f out=$WORK/readback
    rm -rf "$out"
    mkdir -p "$out"
    for f in "${STAGED[@]}"; do
        mkdir -p "$out/$(dirname "$f")"
        mcopy -n -i "$src" "::/$f" "$out/$f" 2>/dev/null || { log "$f is missing on the boot partition"; return 1; }
        cmp -s "$STAGE/$f" "$out/$f" || { log "$f on the boot partition differs from what was written"; return 1; }
    done
}
read_back "$FAT" || die "the boot partition did not take the files (a damaged image?)"

# --- confirm ----------------------------------------------------------------------------------------------------
summary() {
    local login=()
    [[ -n $PASSWORD_HASH ]] && login+=("password")
    [[ -n $SSH_KEYS ]] && login+=("$(grep -c . <<< "$SSH_KEYS") SSH key(s)")
    local how
    how=$(printf '%s and ' "${login[@]}")
    printf '  %-10s %s\n' "erase" "$TARGET_DESC" \
        "write" "$IMAGE (${PRETTY:-?}), first boot by $INIT_FORMAT" \
        "host" "$HOST (.local)" "user" "$USERNAME (log in with: ${how% and })"
    if ((WIFI_SSID_SET)); then
        printf '  %-10s %s\n' "Wi-Fi" "$(shown "$WIFI_SSID") in $COUNTRY$([[ -z $WIFI_PSK ]] && echo ', open network')"
    else
        printf '  %-10s %s\n' "network" "Ethernet only${COUNTRY:+ (Wi-Fi country $COUNTRY)}"
    fi
    [[ -z $TIMEZONE$KEYBOARD ]] || printf '  %-10s %s\n' "locale" "${TIMEZONE:-time zone unchanged}, keyboard ${KEYBOARD:-unchanged}"
    printf '  %-10s %s\n' "edgevision" "$(basename "$STAGE"/edgevision/edgevision-*.tar.gz), model ${MODEL:-embedded default}, config ${CONFIG##*/}"
}
log "ready to write:"
summary >&2
if ((!ASSUME_YES)); then
    printf 'Type yes to erase %s and write the card: ' "$DEVICE" >&2
    answer=
    IFS= read -r answer || true
    [[ $answer == yes ]] || { log "stopped: the answer was $(shown "$answer"), not yes"; exit 1; }
fi
check_target  # again: something may have mounted it while we asked

# --- write, then verify --------------------------------------------------------------------------------------------
BOOT_END=$((BOOT_OFF + BOOT_LEN))
card_bytes() {  # what DEV must hold: the image with the customised boot partition in place
    head -c "$BOOT_OFF" "$IMG"
    cat "$FAT"
    tail -c +"$((BOOT_END + 1))" "$IMG"
}
progress=none
[[ -t 2 ]] && progress=progress
PHASE=writing
log "writing $((IMG_SIZE / 1000000)) MB to $DEVICE"
t0=$SECONDS
card_bytes | dd of="$DEVICE" bs=4M iflag=fullblock conv=fsync status="$progress"
PHASE=verifying
sync
[[ $TARGET_KIND != block ]] || blockdev --flushbufs "$DEVICE"
log "verifying: reading $((IMG_SIZE / 1000000)) MB back"
card_bytes | cmp -n "$IMG_SIZE" - "$DEVICE" >&2
read_back "$DEVICE@@$BOOT_OFF"
[[ $TARGET_KIND != block ]] || blockdev --rereadpt "$DEVICE" 2>/dev/null || true
PHASE=finished
log "done in $((SECONDS - t0)) s: $DEVICE holds ${PRETTY:-the image} and reads back exactly as written" \
    "(${#STAGED[@]} files on the boot partition checked one by one)"

cat >&2 <<EOF

Next:
  1. Put the card in the Pi (camera connected) and power it on. It sets itself up, reboots$([[ $INIT_FORMAT == cloud-init ]] || echo " once"),
     then installs edgevision from the internet (5-30 minutes depending on the model of Pi).
  2. Log in: ssh $USERNAME@$HOST.local      follow the installation: journalctl -u edgevision-firstboot -f
  3. See what it sees: journalctl -u edgevision -f$([[ -n ${WEB_TOKEN:-} ]] && printf '\n     or open http://%s.local:8080/?token=%s' "$HOST" "$WEB_TOKEN")
EOF
