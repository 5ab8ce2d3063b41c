# shellcheck shell=bash
# The one place where values a user typed (host name, user name, Wi-Fi name and passphrase, SSH keys, time zone,
# keyboard) are turned into text for the files flash.sh writes to the card. Nothing else in firmware_scripts/
# puts a user's value into a script or a configuration file.
#
#   sh_quote VALUE     a POSIX shell word: single quotes; a ' inside becomes '\''    (firstrun.sh)
#   yaml_quote VALUE   a YAML double-quoted scalar; \ " control characters and the Unicode line breaks
#                      (U+0085, U+2028, U+2029) escaped, other UTF-8 kept      (cloud-init user-data, network-config)
#   nm_bytes VALUE     the bytes as NetworkManager's keyfile byte list, "72;105;" (any octets, no escaping rules)
#
# Each prints the result without a newline. Values are taken as bytes (LC_ALL=C inside), so non-ASCII text
# passes through unchanged. Checking that a value is acceptable at all (a host name is [a-z0-9-], a Wi-Fi name
# is at most 32 bytes of valid UTF-8) is done before, in flash.sh; these functions escape whatever they get.

sh_quote() {
    local q="'\\''"
    printf "'%s'" "${1//\'/$q}"
}

yaml_quote() {
    local LC_ALL=C v=$1 c code
    v=${v//\\/\\\\}
    v=${v//\"/\\\"}
    # C0 controls and DEL as \xHH (YAML 1.1 and 1.2 both read \x escapes in double-quoted scalars)
    for code in {1..31} 127; do
        printf -v c '%b' "\\x$(printf '%02x' "$code")"
        [[ $v == *"$c"* ]] || continue
        v=${v//"$c"/\\x$(printf '%02x' "$code")}
    done
    # Line breaks YAML 1.1 (PyYAML, what cloud-init uses) would fold inside a quoted scalar
    v=${v//$'\xc2\x85'/\\N}
    v=${v//$'\xe2\x80\xa8'/\\L}
    v=${v//$'\xe2\x80\xa9'/\\P}
    printf '"%s"' "$v"
}

nm_bytes() {
    local LC_ALL=C v=$1 i out=
    for ((i = 0; i < ${#v}; i++)); do
        printf -v out '%s%d;' "$out" "'${v:i:1}"
    done
    printf '%s' "$out"
}
