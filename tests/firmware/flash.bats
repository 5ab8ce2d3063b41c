#!/usr/bin/env bats
# firmware_scripts/flash.sh on stand-in Raspberry Pi OS images (make_standin_image.sh: a real MBR made by
# sfdisk, a FAT32 boot partition made by mkfs.vfat/mtools, an ext4 root made by mkfs.ext4 -d). Every file it
# writes is read back from the written card with mtools (and the root with debugfs) and checked against what the
# user gave, computed here independently (openssl for the password hash, PBKDF2 for the Wi-Fi key).

# shellcheck disable=SC2016,SC2094 # literal $ in single quotes are meant; fat_cat reads the image, not the file
bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    standin bookworm bookworm >/dev/null
    standin trixie-ci trixie --cloud-init >/dev/null
}

setup() {
    load helpers
    cd "$BATS_TEST_TMPDIR" || return 1
    PW=$(secret_file pw "$HOSTILE_PASSWORD")
    WPW=$(secret_file wpw "$HOSTILE_PASSPHRASE")
    KEY=$(pubkey_file id "$HOSTILE_COMMENT")
    OUT=$BATS_TEST_TMPDIR/card.img
}

# loop devices and mounts made by a test, undone whatever happens
teardown() {
    [[ -n ${MOUNTED:-} ]] && umount "$MOUNTED"
    [[ -n ${LOOP:-} ]] && { partx -d "$LOOP" 2>/dev/null; losetup -d "$LOOP"; }
    return 0
}

# flash_hostile IMAGE [ARGS...]: flash IMAGE to $OUT with every hostile value
flash_hostile() {
    local image=$1
    shift
    flash --image "$image" --device "$OUT" --hostname pi-cam-1 --user ana --password-file "$PW" --ssh-key "$KEY" \
        --wifi-ssid "$HOSTILE_SSID" --wifi-password-file "$WPW" --wifi-country de --timezone Europe/Berlin \
        --keyboard de --yes "$@"
}

# the lines of the original cmdline.txt must all still be there, in order, followed by what flash.sh adds
cmdline_args() { tr ' ' '\n' | sed '/^$/d'; }

@test "bookworm: the card is the image, byte for byte, apart from the files flash.sh adds to the boot partition" {
    img=$(standin bookworm bookworm)
    run -0 flash_hostile "$img"
    no_pwn
    [ "$(stat -c %s "$OUT")" -eq "$(stat -c %s "$img")" ]
    # everything before the boot partition (MBR) and the whole root partition: identical
    boot=$(part_offset "$img" 1) root=$(part_offset "$img" 2)
    cmp -n "$boot" "$img" "$OUT"
    cmp -i "$root:$root" "$img" "$OUT"
    debugfs -R 'cat /usr/lib/os-release' "$OUT?offset=$root" 2>/dev/null | grep -qx 'VERSION_CODENAME=bookworm'
    # boot partition: every original file unchanged except cmdline.txt; new: firstrun.sh and edgevision/
    fat_tree "$img" before
    fat_tree "$OUT" after
    run diff -r before after
    [ "$status" -eq 1 ]
    diff <(diff -rq before after | sort) <(printf '%s\n' \
        "Files before/cmdline.txt and after/cmdline.txt differ" \
        "Only in after: edgevision" "Only in after: firstrun.sh" | sort)
}

@test "bookworm: cmdline.txt keeps its arguments and starts firstrun.sh the way Raspberry Pi Imager does" {
    img=$(standin bookworm bookworm)
    run -0 flash_hostile "$img"
    fat_cat "$img" cmdline.txt > before
    fat_cat "$OUT" cmdline.txt > after
    [ "$(wc -l < after)" -eq 1 ]
    diff <(cmdline_args < after) <(cmdline_args < before; printf '%s\n' cfg80211.ieee80211_regdom=DE \
        systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target)
}

@test "bookworm: firstrun.sh carries every typed value intact, quoted in its value block only" {
    img=$(standin bookworm bookworm)
    run -0 flash_hostile "$img"
    fat_get "$OUT" firstrun.sh firstrun.sh
    sh -n firstrun.sh
    # outside the value block the file is the template, character for character
    diff <(sed '/^# BEGIN VALUES$/,/^# END VALUES$/d' firstrun.sh) \
         <(sed '/^@VALUES@$/d' "$FW/templates/firstrun.sh.in" | sed '/^# BEGIN VALUES$/,/^# END VALUES$/d')
    mapfile -d '' v < <(firstrun_values firstrun.sh EV_HOSTNAME EV_USER EV_PASSWORD_HASH EV_SSH_KEYS \
        EV_WIFI_SSID_BYTES EV_WIFI_PSK EV_WIFI_COUNTRY EV_TIMEZONE EV_KEYBOARD)
    no_pwn
    [ "${v[0]}" = pi-cam-1 ]
    [ "${v[1]}" = ana ]
    # the hash is SHA-512 crypt of the password: openssl, given the same salt, makes the same one
    [[ ${v[2]} == '$6$'* ]]
    salt=$(cut -d'$' -f3 <<< "${v[2]}")
    [ "${v[2]}" = "$(printf '%s\n' "$HOSTILE_PASSWORD" | openssl passwd -6 -salt "$salt" -stdin)" ]
    run ! grep -qF "$HOSTILE_PASSWORD" firstrun.sh
    [ "${v[3]}" = "$(cat "$KEY")" ]
    # NetworkManager's byte list of the SSID; the passphrase only as its WPA key
    [ "$("$SYSPY" -c 'import sys; sys.stdout.buffer.write(bytes(int(b) for b in sys.argv[1].split(";") if b))' "${v[4]}")" = "$HOSTILE_SSID" ]
    [ "${v[5]}" = "$(wpa_key "$HOSTILE_SSID" "$HOSTILE_PASSPHRASE")" ]
    run ! grep -qF "$HOSTILE_PASSPHRASE" firstrun.sh
    [ "${v[6]}" = DE ] && [ "${v[7]}" = Europe/Berlin ] && [ "${v[8]}" = de ]
}

@test "bookworm: after the initramfs rewrites firstrun.sh for /boot/firmware (imager_fixup), it still runs its steps" {
    img=$(standin bookworm bookworm)
    run -0 flash_hostile "$img"
    fat_get "$OUT" firstrun.sh firstrun.sh
    fat_cat "$OUT" cmdline.txt > cmdline.txt
    # what raspberrypi-sys-mods' initramfs-tools/scripts/local-bottom/imager_fixup does to the two files
    sed -i 's|/boot/|/boot/firmware/|g' cmdline.txt
    sed -n -i '/rm.*firstrun\.sh$/q;p' firstrun.sh
    printf '%s\n' 'rm -f /boot/firmware/firstrun.sh' "sed -i 's| systemd\\.[^ ]*||g' /boot/firmware/cmdline.txt" 'exit 0' >> firstrun.sh
    grep -q 'systemd.run=/boot/firmware/firstrun.sh' cmdline.txt
    grep -qx 'main 2>&1 | tee -a "$BOOT/edgevision/firstrun.log"' firstrun.sh
    sh -n firstrun.sh
}

@test "bookworm: the edgevision bundle on the card is complete and checks out against its SHA256SUMS" {
    img=$(standin bookworm bookworm)
    run -0 flash_hostile "$img"
    fat_tree "$OUT" card
    (cd card/edgevision && sha256sum --quiet -c SHA256SUMS)
    for f in provision.sh lib/common.sh edgevision.service edgevision-firstboot.service firstboot-setup.sh \
        config.toml README.txt edgevision-0.1.0.tar.gz; do
        [ -f "card/edgevision/$f" ] || { echo "missing $f"; return 1; }
    done
    [ ! -e card/edgevision/model.tflite ]
    tar -tzf card/edgevision/edgevision-0.1.0.tar.gz > listing
    for f in pyproject.toml setup.py edgevision/cli.py edgevision/models/efficientnet_lite0_int8.tflite \
        edgevision/demo/cat_chelsea.jpg edgevision/native/csrc/module.c; do
        grep -qx "edgevision-0.1.0/$f" listing || { echo "sdist lacks $f"; return 1; }
    done
    run ! grep -E '__pycache__|\.so$|\.pyc$' listing
    # the config: edgevision's own checker accepts it, and it serves the web page with a fresh token
    "$REPO/.venv/bin/python" -c 'import sys; from edgevision.config import load_config; c = load_config(sys.argv[1]); assert c["web"] == "0.0.0.0:8080" and len(c["web_token"]) >= 16, c' card/edgevision/config.toml
}

@test "bookworm: --model and --config go into the bundle; a config naming another model is refused" {
    img=$(standin bookworm bookworm)
    model=$REPO/tests/data/fashion_mnist_int8.tflite
    printf 'source = "demo"\nthreshold = 0.5\n' > my.toml
    run -0 flash_hostile "$img" --model "$model" --config my.toml
    fat_tree "$OUT" card
    cmp "$model" card/edgevision/model.tflite
    cmp my.toml card/edgevision/config.toml
    printf 'model = "/home/ana/other.tflite"\n' > other.toml
    rm -f "$OUT"
    run -2 flash_hostile "$img" --model "$model" --config other.toml
    [[ $output == *"sets model = '/home/ana/other.tflite' and --model is given too"* ]]
    [ ! -e "$OUT" ]
}

@test "trixie with cloud-init: user-data, network-config and meta-data carry every value intact" {
    img=$(standin trixie-ci trixie --cloud-init)
    run -0 flash_hostile "$img"
    [[ $output == *"first boot set up with cloud-init"* ]]
    for f in user-data network-config meta-data cmdline.txt; do fat_get "$OUT" "$f" "$f"; done
    [ "$(head -n1 user-data)" = '#cloud-config' ]
    [ "$(yaml_get user-data 'd["hostname"]')" = pi-cam-1 ]
    [ "$(yaml_get user-data 'd["user"]["name"]')" = ana ]
    hash=$(yaml_get user-data 'd["user"]["passwd"]')
    [ "$hash" = "$(printf '%s\n' "$HOSTILE_PASSWORD" | openssl passwd -6 -salt "$(cut -d'$' -f3 <<< "$hash")" -stdin)" ]
    [ "$(yaml_get user-data 'd["user"]["lock_passwd"]')" = False ]
    [ "$(yaml_get user-data 'd["user"]["ssh_authorized_keys"][0]')" = "$(cat "$KEY")" ]
    [ "$(yaml_get user-data 'len(d["user"]["ssh_authorized_keys"])')" = 1 ]
    [ "$(yaml_get user-data 'd["ssh_pwauth"]')" = False ]
    [ "$(yaml_get user-data 'd["timezone"]')" = Europe/Berlin ]
    [ "$(yaml_get user-data 'd["keyboard"]["layout"]')" = de ]
    [ "$(yaml_get user-data 'd["runcmd"]')" = "[['systemctl', 'enable', '--now', 'ssh'], ['sh', '/boot/firmware/edgevision/firstboot-setup.sh', '--now']]" ]
    [ "$(yaml_get user-data 'sorted(d)')" = "['hostname', 'keyboard', 'manage_etc_hosts', 'manage_resolv_conf', 'runcmd', 'ssh_pwauth', 'timezone', 'user']" ]
    [ "$(yaml_get network-config 'list(d["network"]["wifis"]["wlan0"]["access-points"])[0]')" = "$HOSTILE_SSID" ]
    [ "$(yaml_get network-config 'list(d["network"]["wifis"]["wlan0"]["access-points"].values())[0]["password"]')" = \
      "$(wpa_key "$HOSTILE_SSID" "$HOSTILE_PASSPHRASE")" ]
    [ "$(yaml_get network-config 'd["network"]["wifis"]["wlan0"]["regulatory-domain"]')" = DE ]
    run ! grep -qF "$HOSTILE_PASSPHRASE" network-config user-data
    no_pwn
    # the instance id of meta-data is the one on the kernel command line; the image's GB became DE, once
    id=$(yaml_get meta-data 'd["instance-id"]')
    [[ $id == edgevision-* ]]
    [ "$(grep -o 'cfg80211.ieee80211_regdom=[A-Z]*' cmdline.txt)" = cfg80211.ieee80211_regdom=DE ]
    grep -q " ds=nocloud;i=$id\$" cmdline.txt
    [ -z "$(fat_ls "$OUT" firstrun.sh)" ]
}

@test "trixie with cloud-init: without a password the account is locked and SSH takes the key only" {
    img=$(standin trixie-ci trixie --cloud-init)
    run -0 flash --image "$img" --device "$OUT" --ssh-key "$KEY" --no-web --yes
    fat_get "$OUT" user-data user-data
    [ "$(yaml_get user-data 'd["user"]["lock_passwd"]')" = True ]
    [ "$(yaml_get user-data '"passwd" in d["user"]')" = False ]
    [ "$(yaml_get user-data 'd["user"]["name"]')" = pi ]
    [ -z "$(fat_ls "$OUT" network-config)" ] || [ "$(fat_cat "$OUT" network-config | head -c 40)" = "$(fat_cat "$img" network-config | head -c 40)" ]
    fat_get "$OUT" edgevision/config.toml config.toml
    run ! grep -q '^web' config.toml
}

@test "trixie without cloud-init (the first Trixie images) and .img.xz: firstrun.sh, as for Bookworm" {
    img=$(standin trixie-plain trixie --xz)
    [[ $img == *.img.xz ]]
    run -0 flash --image "$img" --device "$OUT" --password-file "$PW" --yes
    [[ $output == *"Debian GNU/Linux 13 (trixie)"*"first boot set up with firstrun"* ]]
    xz -dc "$img" > plain.img
    root=$(part_offset plain.img 2)
    cmp -i "$root:$root" plain.img "$OUT"
    fat_get "$OUT" firstrun.sh firstrun.sh
    mapfile -d '' v < <(firstrun_values firstrun.sh EV_USER EV_SSH_KEYS EV_WIFI_SSID_BYTES)
    [ "${v[0]}" = pi ] && [ -z "${v[1]}" ] && [ -z "${v[2]}" ]
}

@test "a block device: written, verified and its boot partition read back (loop device)" {
    [[ $(id -u) -eq 0 ]] || skip "needs root for a loop device"
    img=$(standin bookworm bookworm)
    truncate -s 200M disk
    LOOP=$(losetup --show -f disk)
    run -0 flash_hostile "$img" --device "$LOOP"
    [[ $output == *"reads back exactly as written (11 files on the boot partition checked one by one)"* ]]
    fat_cat "$LOOP" firstrun.sh 2>/dev/null > firstrun.sh
    grep -qx "EV_USER='ana'" firstrun.sh
    root=$(part_offset "$img" 2)
    cmp -n "$(part_size "$img" 2)" -i "$root:$root" "$img" disk
}

# --- refusals: each leaves the target untouched and says what was wrong --------------------------------------------

@test "refuses bad values before writing anything, showing the value without obeying it" {
    img=$(standin bookworm bookworm)
    run -2 flash --image "$img" --device "$OUT" --hostname 'pi$(touch pwn)' --password-file "$PW" --yes
    [[ $output == *"--hostname"*"expected 1-63 characters from a-z, 0-9 and '-'"* ]]
    [[ $output == *'pi\$\(touch\ pwn\)'* ]]
    run -2 flash --image "$img" --device "$OUT" --hostname Pi-Cam --password-file "$PW" --yes
    [[ $output == *"(lower case: pi-cam)"* ]]
    run -2 flash --image "$img" --device "$OUT" --user $'ana\nroot' --password-file "$PW" --yes
    [[ $output == *"--user \$'ana\\nroot': expected 1-32 characters"* ]]
    run -2 flash --image "$img" --device "$OUT" --user root --password-file "$PW" --yes
    [[ $output == *"belongs to a system account"* ]]
    run -2 flash --image "$img" --device "$OUT" --user edgevision --password-file "$PW" --yes
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --wifi-ssid "$(printf 'x%.0s' {1..33})" --wifi-country GB --yes
    [[ $output == *"1 to 32 bytes; this one is 33"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --wifi-ssid $'bad\xff' --wifi-country GB --yes
    [[ $output == *"not valid UTF-8"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --wifi-ssid $'two\nlines' --wifi-country GB --yes
    [[ $output == *"--wifi-ssid \$'two\\nlines': contains a control character"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --wifi-ssid home --yes
    [[ $output == *"--wifi-ssid needs --wifi-country"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --wifi-ssid home --wifi-country XX --yes
    [[ $output == *"not an ISO 3166 country code"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --wifi-ssid home --wifi-country GB \
        --wifi-password-file "$(secret_file short 1234567)" --yes
    [[ $output == *"the passphrase is 7 characters"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --timezone 'Europe/Atlantis' --yes
    [[ $output == *"no such time zone"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --keyboard 'gb;reboot' --yes
    [[ $output == *"expected an XKB layout name"* ]]
    no_pwn
    [ ! -e "$OUT" ]
}

@test "refuses unusable secret and key files, naming the file and what it should hold" {
    img=$(standin bookworm bookworm)
    run -2 flash --image "$img" --device "$OUT" --yes
    [[ $output == *"give --password-file F or --ssh-key PUBKEY_FILE"* ]]
    printf 'one\ntwo\n' > two-lines && chmod 600 two-lines
    run -2 flash --image "$img" --device "$OUT" --password-file two-lines --yes
    [[ $output == *"holds more than one line"* ]]
    : > empty
    run -2 flash --image "$img" --device "$OUT" --password-file empty --yes
    [[ $output == *"the file is empty"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file missing --yes
    [[ $output == *"--password-file missing: no such readable file"* ]]
    run -2 flash --image "$img" --device "$OUT" --ssh-key "${KEY%.pub}" --yes
    [[ $output == *"this is a PRIVATE key"* ]]
    printf 'ssh-ed25519 not-base64!! x\n' > bad.pub
    run -2 flash --image "$img" --device "$OUT" --ssh-key bad.pub --yes
    [[ $output == *"line 1"*"is not an OpenSSH public key"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --wifi-password-file "$WPW" --yes
    [[ $output == *"without --wifi-ssid"* ]]
    [ ! -e "$OUT" ]
}

@test "refuses images it cannot set up: not an image, no Raspberry Pi boot partition, Bullseye" {
    run -2 flash --image nowhere.img --device "$OUT" --password-file "$PW" --yes
    [[ $output == *"--image nowhere.img: no such readable file"* ]]
    head -c 1M /dev/urandom > random.img
    run -2 flash --image random.img --device "$OUT" --password-file "$PW" --yes
    [[ $output == *"no partition table"* || $output == *"expected an MBR"* ]]
    img=$(standin bullseye bullseye)
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --yes
    [[ $output == *"Raspberry Pi OS bullseye, which configures its first boot differently"* ]]
    run -2 flash --image "$img" --device "$OUT" --password-file "$PW" --model "$REPO/README.md" --yes
    [[ $output == *"not a TensorFlow Lite model"* ]]
    printf 'sauce = "demo"\n' > typo.toml
    run -2 flash --image "$(standin bookworm bookworm)" --device "$OUT" --password-file "$PW" --config typo.toml --yes
    [[ $output == *"unknown key 'sauce'; valid keys: model, source"* ]]
    [ ! -e "$OUT" ]
}

@test "asks before erasing and writes nothing unless the answer is yes" {
    img=$(standin bookworm bookworm)
    printf 'precious' > "$OUT"
    run -1 flash --image "$img" --device "$OUT" --password-file "$PW" <<< "y"
    [[ $output == *"Type yes to erase"*"stopped: the answer was y, not yes"*"nothing was written"* ]]
    [ "$(cat "$OUT")" = precious ]
    run -1 flash --image "$img" --device "$OUT" --password-file "$PW" < /dev/null
    [ "$(cat "$OUT")" = precious ]
    run -0 flash --image "$img" --device "$OUT" --password-file "$PW" <<< "yes"
    [ "$(stat -c %s "$OUT")" -eq "$(stat -c %s "$img")" ]
}

@test "refuses the disk this computer runs from (and would still ask first)" {
    src=$(findmnt -nvo SOURCE --target /)
    [[ $src == /dev/* ]] || skip "/ is not on a block device here ($src)"
    disk=$(lsblk -nrspo NAME,TYPE "$src" | awk '$2 == "disk" {print $1; exit}')
    [[ -n $disk ]] || skip "no disk under $src"
    img=$(standin bookworm bookworm)
    # no --yes and no answer: even if the check failed, flash.sh would stop at the question
    run -2 flash --image "$img" --device "$disk" --password-file "$PW" < /dev/null
    [[ $output == *"holds / of the running system: refusing to erase the disk this computer runs from"* ]]
}

@test "refuses a mounted card and a partition (loop device with partitions)" {
    [[ $(id -u) -eq 0 ]] || skip "needs root for loop devices and mount"
    img=$(standin bookworm bookworm)
    cp "$img" disk.img
    LOOP=$(losetup --show -f disk.img)
    # the partitions' device nodes: this machine has no udev to make them
    partx -a "$LOOP"
    for n in 1 2; do
        dev=$(cat "/sys/block/${LOOP#/dev/}/${LOOP#/dev/}p$n/dev")
        mknod "p$n" b "${dev%%:*}" "${dev##*:}"
    done
    mkdir mnt
    mount -o ro p2 mnt  # the ext4 root (this kernel may lack vfat)
    MOUNTED=$BATS_TEST_TMPDIR/mnt
    run -2 flash --image "$img" --device "$LOOP" --password-file "$PW" < /dev/null
    [[ $output == *"--device $LOOP is in use: ${LOOP}p2 on $BATS_TEST_TMPDIR/mnt. Unmount it first"* ]]
    run -2 flash --image "$img" --device p1 --password-file "$PW" < /dev/null
    [[ $output == *"--device p1 is a partition; give the whole card, e.g. $LOOP"* ]]
    cmp disk.img "$img"
}

@test "refuses a card too small and says which tool is missing and its package" {
    [[ $(id -u) -eq 0 ]] || skip "needs root for a loop device"
    img=$(standin bookworm bookworm)
    truncate -s 50M small
    LOOP=$(losetup --show -f small)
    run -2 flash --image "$img" --device "$LOOP" --password-file "$PW" --yes
    [[ $output == *"holds 52 MB; the image needs 109 MB: use a larger card"* ]]
    [ -z "$(tr -d '\0' < small | head -c 1)" ]
    # a PATH with everything but mtools
    mkdir bin
    for t in bash dd head tail stat cmp sha256sum sfdisk debugfs openssl python3 tar gzip iconv lsblk findmnt \
        blockdev losetup dirname readlink mktemp sed grep awk cat rm chmod mkdir tr od date cut sort find xargs \
        install du printf sync basename ln env; do
        p=$(command -v "$t") && ln -sf "$p" bin/
    done
    run -1 env PATH="$BATS_TEST_TMPDIR/bin" "$FW/flash.sh" --image "$img" --device "$OUT" --password-file "$PW" --yes
    [[ $output == *"missing tools: mcopy (package mtools) mdir (package mtools) mmd (package mtools). Install them with: sudo apt-get install mtools"* ]]
}

@test "a write that fails half-way says the card is only partly written" {
    [[ $(id -u) -eq 0 ]] || skip "needs root to mount a small tmpfs"
    img=$(standin bookworm bookworm)
    mkdir small
    mount -t tmpfs -o size=40M tmpfs small && MOUNTED=$BATS_TEST_TMPDIR/small
    run -1 flash --image "$img" --device small/card.img --password-file "$PW" --yes
    [[ $output == *"writing 109 MB to small/card.img"*"small/card.img is only partly written and will not boot: run flash.sh again"* ]]
}
