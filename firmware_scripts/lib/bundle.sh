# shellcheck shell=bash
# The edgevision bundle: one folder holding everything provision.sh needs to install edgevision on a Pi.
# flash.sh puts it on the card's boot partition (/boot/firmware/edgevision); make_bundle.sh writes it anywhere
# (to copy to a Pi that is already running). Layout:
#
#   edgevision-VERSION.tar.gz   the package's source (as an sdist: the Pi compiles the native engine for its CPU)
#   provision.sh, lib/common.sh the installer
#   edgevision.service          the service unit provision.sh installs
#   edgevision-firstboot.service, firstboot-setup.sh
#                               first boot: run provision.sh once the network is up
#   config.toml                 the settings the service runs with (/etc/edgevision/config.toml)
#   model.tflite                only when a model was given
#   SHA256SUMS                  checked by provision.sh: a card corrupted in the post shows up before installing
#
# Needs common.sh sourced first.

FIRMWARE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$FIRMWARE_DIR/.." && pwd)

package_version() {
    local v
    v=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$REPO_DIR/pyproject.toml" | head -n1)
    [[ -n $v ]] || die "cannot read the version from $REPO_DIR/pyproject.toml"
    printf '%s' "$v"
}

# make_sdist OUT_DIR: edgevision-VERSION.tar.gz of this checkout's working tree, byte-for-byte reproducible
# (sorted, fixed owner and time, gzip without a time stamp), so the same checkout always gives the same bundle.
# pip builds it like any sdist (pyproject.toml + setup.py); no Python build tools are needed on the desktop.
make_sdist() {
    local out=$1 version name
    version=$(package_version)
    name="edgevision-$version"
    local mtime=${SOURCE_DATE_EPOCH:-1577836800}
    local parts=(pyproject.toml setup.py README.md edgevision converters)
    local p
    for p in "${parts[@]}"; do
        [[ -e $REPO_DIR/$p ]] || die "$REPO_DIR/$p is missing: make_sdist needs a complete edgevision checkout"
    done
    tar -C "$REPO_DIR" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
        --mode='u+rwX,go+rX,go-w' --transform="s|^|$name/|" \
        --exclude='__pycache__' --exclude='*.pyc' --exclude='*.so' --exclude='*.egg-info' --exclude='build' \
        -cf - "${parts[@]}" | gzip -n -9 > "$out/$name.tar.gz"
    printf '%s' "$out/$name.tar.gz"
}

# make_bundle OUT_DIR CONFIG [MODEL]: the bundle in OUT_DIR (created; must not exist or be empty)
make_bundle() {
    local out=$1 config=$2 model=${3:-}
    mkdir -p "$out/lib"
    make_sdist "$out" >/dev/null
    install -m 0755 "$FIRMWARE_DIR/provision.sh" "$FIRMWARE_DIR/firstboot-setup.sh" "$out/"
    install -m 0644 "$FIRMWARE_DIR/lib/common.sh" "$out/lib/"
    install -m 0644 "$FIRMWARE_DIR/edgevision.service" "$FIRMWARE_DIR/edgevision-firstboot.service" "$out/"
    install -m 0644 "$config" "$out/config.toml"
    [[ -z $model ]] || install -m 0644 "$model" "$out/model.tflite"
    cat > "$out/README.txt" <<'EOF'
edgevision bundle, written by edgevision's firmware_scripts (flash.sh or make_bundle.sh).

On the first boot of a card written by flash.sh, edgevision-firstboot.service runs provision.sh from this
folder once the network is up: it installs the packages, edgevision and the edgevision service.
Follow it with:   journalctl -u edgevision-firstboot -f      then:   journalctl -u edgevision -f
To run it again by hand:   sudo bash /boot/firmware/edgevision/provision.sh
EOF
    local files
    files=$(cd "$out" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort)
    (cd "$out" && xargs -d '\n' sha256sum <<< "$files") > "$out/SHA256SUMS"
}
