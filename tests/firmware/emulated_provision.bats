#!/usr/bin/env bats
# A Raspberry Pi's first boot, without a Pi: a fresh copy of an arm64 Debian base (EV_BASE, made by
# tools/setup_firmware_tests.sh --roots) runs under qemu as a Cortex-A72, with the boot partition of a card that
# flash.sh wrote (hostile values and all) as its /boot/firmware. There, the first-boot mechanism of that release
# configures the system (Bookworm: firstrun.sh, after the initramfs' rewrite; Trixie: cloud-init's own schema
# check and network renderer, then its runcmd), then edgevision-firstboot.service's command runs provision.sh
# from the card; then: the unit passes systemd-analyze verify, the venv imports edgevision, the service's user
# classifies demo photos correctly, and a second run of provision.sh changes nothing.
#
# Run by tests/test_firmware.py once per root in EDGEVISION_PROVISION_ROOTS; EV_TIMINGS names a file that
# receives "SUITE STEP SECONDS" lines. Needs root (chroot, mount). Slow: emulated apt, pip and gcc.

# shellcheck disable=SC2016,SC2094,SC2030,SC2031,SC2154 # literal $ meant; bats sets output, status and stderr
bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    load emulated
    [[ -n ${EV_BASE:-} ]] || { echo "EV_BASE is not set: the base root to copy" >&2; return 1; }
    [[ -f $EV_BASE/.edgevision/ready ]] || { echo "$EV_BASE is not a finished base (no .edgevision/ready): run tools/setup_firmware_tests.sh --roots" >&2; return 1; }
    [[ $(id -u) -eq 0 ]] || { echo "chroot and mount need root" >&2; return 1; }
    SUITE=$(sed -n 's/^VERSION_CODENAME=//p' "$EV_BASE/usr/lib/os-release")
    export SUITE
    export ROOT=$CACHE/provision-run-$SUITE
    local t0=$SECONDS
    root_up "$EV_BASE" "$ROOT"
    timing "copy of the base" $((SECONDS - t0))

    # the card: a stand-in image of this release, flashed with hostile values; its boot partition is the Pi's
    local work=$BATS_FILE_TMPDIR
    cd "$work" || return 1
    local img
    if [[ $SUITE == trixie ]]; then
        img=$(standin "$SUITE" "$SUITE" --cloud-init)
    else
        img=$(standin "$SUITE" "$SUITE")
    fi
    printf '%s\n' "$HOSTILE_PASSWORD" > pw
    printf '%s\n' "$HOSTILE_PASSPHRASE" > wpw
    chmod 600 pw wpw
    rm -f id id.pub
    ssh-keygen -q -t ed25519 -N '' -C "$HOSTILE_COMMENT" -f id >/dev/null
    "$FW/flash.sh" --work-dir "$work" --image "$img" --device card.img --hostname pi-cam-1 --user ana \
        --password-file pw --ssh-key id.pub --wifi-ssid "$HOSTILE_SSID" --wifi-password-file wpw --wifi-country DE \
        --timezone Europe/Berlin --keyboard de --yes 2> flash.log || { cat flash.log >&2; return 1; }
    fat_tree card.img "$ROOT/boot/firmware"
    touch "$work/before-first-boot"
}

teardown_file() {
    load helpers
    load emulated
    [[ -n ${ROOT:-} ]] || return 0
    if [[ -n ${EV_KEEP_ROOT:-} ]]; then
        echo "# kept $ROOT (EV_KEEP_ROOT)" >&3
    else
        root_down "$ROOT"
    fi
}

setup() {
    load helpers
    load emulated
}

timing() { [[ -z ${EV_TIMINGS:-} ]] || printf '%s %s %s\n' "$SUITE" "${1// /_}" "$2" >> "$EV_TIMINGS"; }

no_pwn_in_root() {
    local found
    found=$(find "$ROOT" "$BATS_FILE_TMPDIR" -xdev -name pwn -newer "$BATS_FILE_TMPDIR/before-first-boot" 2>/dev/null)
    [[ -z $found ]] || { echo "a typed value was executed: $found" >&2; return 1; }
}

first_boot_bookworm() {
    local boot=$ROOT/boot/firmware
    # what raspberrypi-sys-mods' initramfs script imager_fixup does before systemd starts firstrun.sh
    sed -i 's|/boot/|/boot/firmware/|g' "$boot/cmdline.txt"
    sed -n -i '/rm.*firstrun\.sh$/q;p' "$boot/firstrun.sh"
    printf '%s\n' 'rm -f /boot/firmware/firstrun.sh' "sed -i 's| systemd\\.[^ ]*||g' /boot/firmware/cmdline.txt" 'exit 0' >> "$boot/firstrun.sh"
    grep -q 'systemd.run=/boot/firmware/firstrun.sh ' "$boot/cmdline.txt"
    # systemd.run= runs it as root, from /
    run in_root "$ROOT" sh -c 'cd / && exec sh /boot/firmware/firstrun.sh'
    echo "$output"
    [ "$status" -eq 0 ]
    no_pwn_in_root
    [ ! -e "$boot/firstrun.sh" ]
    run ! grep -q 'systemd\.' "$boot/cmdline.txt"
    grep -q 'cfg80211.ieee80211_regdom=DE' "$boot/cmdline.txt"
    grep -q 'firstrun: done' "$boot/edgevision/firstrun.log"
    # the system now: host name, the renamed uid-1000 account with the password's hash, the key, ssh, Wi-Fi
    [ "$(cat "$ROOT/etc/hostname")" = pi-cam-1 ]
    grep -qx $'127.0.1.1\tpi-cam-1' "$ROOT/etc/hosts"
    [ "$(in_root "$ROOT" getent passwd 1000 | cut -d: -f1,6)" = ana:/home/ana ]
    hash=$(grep '^ana:' "$ROOT/etc/shadow" | cut -d: -f2)
    [ "$hash" = "$(printf '%s\n' "$HOSTILE_PASSWORD" | openssl passwd -6 -salt "$(cut -d'$' -f3 <<< "$hash")" -stdin)" ]
    cmp "$BATS_FILE_TMPDIR/id.pub" "$ROOT/home/ana/.ssh/authorized_keys"
    [ "$(in_root "$ROOT" stat -c '%a %U' /home/ana/.ssh/authorized_keys)" = "600 ana" ]
    grep -qx 'PasswordAuthentication no' "$ROOT/etc/ssh/sshd_config.d/10-edgevision.conf"
    [ "$(in_root "$ROOT" systemctl is-enabled ssh.service)" = enabled ]
    conn=$ROOT/etc/NetworkManager/system-connections/edgevision-wifi.nmconnection
    [ "$(stat -c %a "$conn")" = 600 ]
    ssid=$(sed -n 's/^ssid=//p' "$conn")
    [ "$("$SYSPY" -c 'import sys; sys.stdout.buffer.write(bytes(int(b) for b in sys.argv[1].split(";") if b))' "$ssid")" = "$HOSTILE_SSID" ]
    grep -qx "psk=$(wpa_key "$HOSTILE_SSID" "$HOSTILE_PASSPHRASE")" "$conn"
    [ "$(readlink "$ROOT/etc/localtime")" = /usr/share/zoneinfo/Europe/Berlin ]
    grep -qx 'XKBLAYOUT="de"' "$ROOT/etc/default/keyboard"
}

first_boot_trixie() {
    local boot=$ROOT/boot/firmware
    # cloud-init's own check of the user-data flash.sh wrote
    run in_root "$ROOT" cloud-init schema --config-file /boot/firmware/user-data
    echo "$output"
    [ "$status" -eq 0 ]
    [[ $output == *"Valid schema /boot/firmware/user-data"* ]]
    # the modules that make the account and set the time zone, run by cloud-init itself on that user-data.
    # (Debian's cloud-init adds the account; Raspberry Pi OS's renames its uid-1000 user to it: same values.)
    for module in users_groups timezone; do
        run in_root "$ROOT" cloud-init single --name "$module" --frequency always --file /boot/firmware/user-data
        echo "$output"
        [ "$status" -eq 0 ]
    done
    hash=$(grep '^ana:' "$ROOT/etc/shadow" | cut -d: -f2)
    [ "$hash" = "$(printf '%s\n' "$HOSTILE_PASSWORD" | openssl passwd -6 -salt "$(cut -d'$' -f3 <<< "$hash")" -stdin)" ]
    cmp "$BATS_FILE_TMPDIR/id.pub" "$ROOT/home/ana/.ssh/authorized_keys"
    [ "$(readlink "$ROOT/etc/localtime")" = /usr/share/zoneinfo/Europe/Berlin ]
    # Wi-Fi: cloud-init renders network-config to netplan, netplan to NetworkManager (Raspberry Pi OS's path)
    run in_root "$ROOT" cloud-init devel net-convert --network-data /boot/firmware/network-config --kind yaml \
        --distro debian --output-kind netplan --directory /tmp/net
    echo "$output"
    [ "$status" -eq 0 ]
    # (cloud-init 25.1 writes through netplan's API to /etc/netplan, whatever --directory says)
    rendered=$(find "$ROOT/tmp/net/etc/netplan" "$ROOT/etc/netplan" -name '*.yaml' 2>/dev/null | head -n1)
    [ -n "$rendered" ]
    mkdir -p "$ROOT/tmp/np/etc/netplan"
    install -m 600 "$rendered" "$ROOT/tmp/np/etc/netplan/50-cloud-init.yaml"
    printf 'network:\n  version: 2\n  renderer: NetworkManager\n' > "$ROOT/tmp/np/etc/netplan/00-renderer.yaml"
    chmod 600 "$ROOT/tmp/np/etc/netplan/00-renderer.yaml"
    run in_root "$ROOT" netplan generate --root-dir /tmp/np
    conn=$(grep -l '^type=wifi' "$ROOT"/tmp/np/run/NetworkManager/system-connections/*.nmconnection)
    cat "$conn"
    "$SYSPY" - "$conn" "$HOSTILE_SSID" "$(wpa_key "$HOSTILE_SSID" "$HOSTILE_PASSPHRASE")" <<'PY'
import sys
# a NetworkManager keyfile is a GKeyFile: \s \n \t \r \\ are its escapes; an SSID may also be a byte list
groups, group = {}, None
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("["):
        group = groups.setdefault(line.strip("[]"), {})
    elif "=" in line:
        key, _, value = line.partition("=")
        group[key] = value
def unescape(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\" and i + 1 < len(v):
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(v[i + 1], v[i + 1]))
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)
raw = groups["wifi"]["ssid"]
if raw and all(p.isdigit() for p in raw.rstrip(";").split(";")):
    ssid = bytes(int(p) for p in raw.rstrip(";").split(";")).decode()
else:
    ssid = unescape(raw)
assert ssid == sys.argv[2], (ssid, sys.argv[2])
assert groups["wifi-security"]["psk"] == sys.argv[3], groups["wifi-security"]
PY
    grep -q 'DE' "$ROOT/tmp/np/run/systemd/system/netplan-regdom.service"
    # runcmd, as cloud-init's final stage runs it (as root)
    run "$SYSPY" -c 'import sys, yaml, shlex; [print(shlex.join(c)) for c in yaml.safe_load(open(sys.argv[1]))["runcmd"]]' "$boot/user-data"
    [ "${lines[1]}" = 'sh /boot/firmware/edgevision/firstboot-setup.sh --now' ]
    run in_root "$ROOT" sh -c "${lines[1]}"
    echo "$output"
    [ "$status" -eq 0 ]
    no_pwn_in_root
}

@test "first boot configures the system from the card, every typed value intact and none executed" {
    local t0=$SECONDS
    "first_boot_$SUITE"
    # either way, edgevision-firstboot.service is installed and enabled, pointing at the bundle on the card
    unit=$ROOT/etc/systemd/system/edgevision-firstboot.service
    grep -qx 'ExecStart=/bin/bash /boot/firmware/edgevision/provision.sh --bundle /boot/firmware/edgevision' "$unit"
    [ "$(in_root "$ROOT" systemctl is-enabled edgevision-firstboot.service)" = enabled ]
    timing "first boot configuration" $((SECONDS - t0))
}

@test "edgevision-firstboot.service runs provision.sh from the card: packages, venv, edgevision, service" {
    unit=$ROOT/etc/systemd/system/edgevision-firstboot.service
    cmd=$(sed -n 's/^ExecStart=//p' "$unit")
    post=$(sed -n 's/^ExecStartPost=//p' "$unit")
    local t0=$SECONDS
    # shellcheck disable=SC2086 # the unit's command line, split as systemd splits this one
    run in_root "$ROOT" $cmd
    timing "first provisioning" $((SECONDS - t0))
    echo "$output" | tail -n 40
    [ "$status" -eq 0 ]
    [[ $output == *"changed: edgevision in /opt/edgevision/venv"* ]]
    [[ $output == *"check: as user edgevision, efficientnet_lite0_int8.tflite on cat_chelsea.jpg"* ]]
    [[ $output == *"systemd is not running here"* ]]
    [[ $output == *"no camera library: python3-picamera2 is not in this system's apt sources"* ]]
    # shellcheck disable=SC2086
    in_root "$ROOT" $post
    [ "$(in_root "$ROOT" systemctl is-enabled edgevision-firstboot.service)" = disabled ]
}

@test "the installed unit passes systemd-analyze verify, and says what the service needs" {
    # the release's own systemd-analyze (offline: systemd does not run in a chroot), which knows its systemd
    run in_root "$ROOT" systemd-analyze verify edgevision.service edgevision-firstboot.service
    echo "$output"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    unit=$ROOT/etc/systemd/system/edgevision.service
    grep -qx 'User=edgevision' "$unit"
    grep -qx 'Restart=on-failure' "$unit"
    grep -qx 'ExecStart=/opt/edgevision/venv/bin/edgevision run --config /etc/edgevision/config.toml' "$unit"
    run ! grep -q '^StandardOutput=' "$unit"  # the journal, systemd's default
    [ "$(in_root "$ROOT" systemctl is-enabled edgevision.service)" = enabled ]
    # an unprivileged system account in group video; the settings readable by it and not by others
    [ "$(in_root "$ROOT" id -nG edgevision | tr ' ' '\n' | sort | tr '\n' ' ')" = "edgevision video " ]
    [ "$(in_root "$ROOT" getent passwd edgevision | cut -d: -f3)" -lt 1000 ]
    [ "$(in_root "$ROOT" stat -c '%a %U %G' /etc/edgevision/config.toml)" = "640 root edgevision" ]
    cmp "$ROOT/boot/firmware/edgevision/config.toml" "$ROOT/etc/edgevision/config.toml"
}

@test "the venv imports edgevision, sees the system's packages, and has LiteRT" {
    run in_root "$ROOT" /opt/edgevision/venv/bin/python3 -c '
import edgevision, numpy, sys, importlib.util
print("edgevision", edgevision.__version__, edgevision.__file__)
print("numpy", numpy.__file__)
import PIL
print("PIL", PIL.__file__)
print("litert", bool(importlib.util.find_spec("ai_edge_litert")))
'
    echo "$output"
    [ "$status" -eq 0 ]
    [[ $output == *"edgevision 0.1.0 /opt/edgevision/venv/lib/python3."*"/site-packages/edgevision/__init__.py"* ]]
    # the system's numpy and Pillow, not copies from PyPI (the camera stack is compiled against them)
    [[ $output == *"numpy /usr/lib/python3/dist-packages/numpy/__init__.py"* ]]
    [[ $output == *"PIL /usr/lib/python3/dist-packages/PIL/__init__.py"* ]]
    [[ $output == *"litert True"* ]]  # aarch64: PyPI has LiteRT wheels for Debian's Python
}

# classify_demo BACKEND: the cat and the coffee cup, as the service's user; the labels must be right
classify_demo() {
    local demo
    demo=$(in_root "$ROOT" /opt/edgevision/venv/bin/python3 -c 'import edgevision.demo as d, os; print(os.path.dirname(d.__file__))')
    local t0=$SECONDS
    run --separate-stderr in_root "$ROOT" runuser -u edgevision -- /opt/edgevision/venv/bin/edgevision classify \
        "$demo/cat_chelsea.jpg" "$demo/coffee_cup.jpg" --json --top 3 --backend "$1"
    timing "classify ($1)" $((SECONDS - t0))
    echo "$output"
    echo "$stderr"
    [ "$status" -eq 0 ]
    "$SYSPY" -c '
import json, sys
cat, coffee = json.loads(sys.argv[1])
cats = {"Egyptian cat", "Egyptian Mau", "tabby", "tabby cat", "tiger cat"}
assert cat["top"][0]["label"] in cats, cat["top"]
assert coffee["top"][0]["label"] == "espresso", coffee["top"]
' "$output"
}

@test "edgevision classify, as the service's user, names the demo photos right (backend auto: LiteRT)" {
    classify_demo auto
    [[ $stderr == *"XNNPACK"* ]]  # LiteRT's own message: it was LiteRT that ran
}

@test "the native engine compiled on this release's gcc, for this CPU, and names the photos right too" {
    run in_root "$ROOT" /opt/edgevision/venv/bin/python3 -c 'import edgevision._native as n; print(n.compiled_variants())'
    if [ "$status" -ne 0 ]; then
        echo "the native engine is not in the venv: the C extension did not compile with $SUITE's gcc. Its errors:"
        in_root "$ROOT" sh -c 'mkdir -p /tmp/src && tar -xzf /boot/firmware/edgevision/edgevision-*.tar.gz -C /tmp/src &&
            cd /tmp/src/edgevision-* && /opt/edgevision/venv/bin/pip wheel -v --no-deps . -w /tmp/whl 2>&1' |
            grep -E 'error|failed' | head -n 20
        return 1
    fi
    [[ $output == *"'neon'"* ]]
    classify_demo native
}

@test "a second run of provision.sh changes nothing, and says so" {
    before=$(snapshot "$ROOT")
    local t0=$SECONDS
    run in_root "$ROOT" /bin/bash /boot/firmware/edgevision/provision.sh --bundle /boot/firmware/edgevision
    timing "second provisioning" $((SECONDS - t0))
    echo "$output"
    [ "$status" -eq 0 ]
    [[ $output == *"nothing to change: everything was already in place"* ]]
    [[ $output != *"changed:"* ]]
    diff <(echo "$before") <(snapshot "$ROOT")
}
