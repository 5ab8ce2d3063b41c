#!/usr/bin/env bats
# The parts of provisioning that need no Pi and no emulation: provision.sh's command line, the unit files
# (systemd-analyze verify), firstboot-setup.sh's refusal of odd paths, and make_bundle.sh. The installation
# itself is tested under qemu in emulated_provision.bats.

# shellcheck disable=SC2016,SC2094 # literal $ in single quotes are meant; fat_cat reads the image, not the file
bats_require_minimum_version 1.5.0

setup() {
    load helpers
    cd "$BATS_TEST_TMPDIR" || return 1
}

# provision.sh runs as root below only inside read_only_host (helpers.bash): it must never install on this machine

@test "provision.sh --help describes it; a wrong option or value is a usage error (exit 2)" {
    run -0 "$FW/provision.sh" --help
    [[ $output == *"usage: sudo provision.sh [--model M.tflite] [--config config.toml]"* ]]
    [[ $output == *"a second run changes nothing"* ]]
    [[ $(id -u) -eq 0 ]] || skip "the checks below need root (provision.sh refuses to run without)"
    run -2 read_only_host "$FW/provision.sh" --colour
    [[ $output == *"unknown option --colour"* ]]
    run -2 read_only_host "$FW/provision.sh" --model "$REPO/README.md"
    [[ $output == *"--model $REPO/README.md: not a readable TensorFlow Lite model"* ]]
    run -2 read_only_host "$FW/provision.sh" --bundle "$BATS_TEST_TMPDIR"
    [[ $output == *"not an edgevision bundle (no SHA256SUMS)"* ]]
    run -2 read_only_host "$FW/provision.sh" --package /nowhere.tar.gz
    [[ $output == *"--package /nowhere.tar.gz: no such file or folder"* ]]
}

@test "provision.sh refuses to run without root, saying why" {
    [[ $(id -u) -eq 0 ]] || { run -1 "$FW/provision.sh"; [[ $output == *"must run as root"* ]]; return; }
    run -1 runuser -u nobody -- bash "$FW/provision.sh"
    [[ $output == *"must run as root (it installs packages, a user and a service)"* ]]
}

@test "a damaged bundle is refused before anything is installed" {
    [[ $(id -u) -eq 0 ]] || skip "provision.sh needs root"
    "$FW/make_bundle.sh" ev 2>/dev/null
    printf 'x' >> ev/config.toml
    run -1 read_only_host bash ev/provision.sh
    [[ $output == *"the bundle in $BATS_TEST_TMPDIR/ev is damaged"*"config.toml: FAILED"* ]]
}

@test "edgevision.service and edgevision-firstboot.service pass systemd-analyze verify without a word" {
    # the programs they start exist only on the Pi: verify here with /bin/true in their place
    sed 's|^ExecStart=.*|ExecStart=/bin/true|' "$FW/edgevision.service" > edgevision.service
    sed 's|@BUNDLE@|/boot/firmware/edgevision|g; s|^ExecStart=.*|ExecStart=/bin/true|' \
        "$FW/edgevision-firstboot.service" > edgevision-firstboot.service
    run -0 systemd-analyze verify edgevision.service edgevision-firstboot.service
    [ -z "$output" ]
    # the test can fail: a misspelt key is reported
    printf '[Service]\nExecStart=/bin/true\nRestrat=on-failure\n' > typo.service
    run systemd-analyze verify typo.service
    [[ $output == *"Unknown key 'Restrat'"* ]]
}

@test "firstboot-setup.sh refuses a bundle folder whose name would break the unit file" {
    mkdir -p 'odd dir|x'
    cp "$FW/firstboot-setup.sh" "$FW/edgevision-firstboot.service" 'odd dir|x/'
    run -1 sh 'odd dir|x/firstboot-setup.sh'
    [[ $output == *"unexpected folder name"* ]]
}

@test "make_bundle.sh: a complete bundle, the same bytes every time for the same checkout" {
    run -0 "$FW/make_bundle.sh" a --model "$REPO/tests/data/fashion_mnist_int8.tflite"
    sleep 1
    run -0 "$FW/make_bundle.sh" b --model "$REPO/tests/data/fashion_mnist_int8.tflite"
    (cd a && sha256sum --quiet -c SHA256SUMS)
    diff -r a b
    [ -f a/model.tflite ] && cmp a/config.toml "$FW/config.toml"
    run -2 "$FW/make_bundle.sh" a
    [[ $output == *"a exists and is not empty"* ]]
}
