# shellcheck shell=bash
# Checks of the values a user gives flash.sh, before anything is written. Each check_* function accepts a value
# or ends the program with exit 2 and a message that shows what was given (printf %q, so a newline or an escape
# sequence is shown, not obeyed), what is expected and what to do. The read_* functions take secrets from files
# (never from the command line, where other users and the shell history would see them).
# Needs common.sh (usage_error) sourced first.

shown() { printf '%q' "$1"; }

# UTF-8 validity (YAML and the TOML/INI files on the card must be valid UTF-8)
is_utf8() { printf '%s' "$1" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; }

byte_length() { local LC_ALL=C; printf '%s' "${#1}"; }

check_hostname() {  # RFC 1123 label, lower case: it becomes NAME.local on the network
    [[ $1 =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] && return 0
    local hint=""
    [[ ${1,,} =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] && hint=" (lower case: ${1,,})"
    usage_error "--hostname $(shown "$1"): expected 1-63 characters from a-z, 0-9 and '-', not starting or" \
        "ending with '-'${hint}. The Pi will answer to NAME.local."
}

# The rule of Raspberry Pi OS's own first-boot wizard (userconf-pi), minus names the system or edgevision use.
RESERVED_USERS=" root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc nobody
 systemd-network systemd-timesync messagebus sshd avahi polkitd edgevision "
check_username() {
    if [[ ! $1 =~ ^[a-z][a-z0-9-]{0,31}$ ]]; then
        usage_error "--user $(shown "$1"): expected 1-32 characters from a-z, 0-9 and '-', starting with a letter" \
            "(the rule of Raspberry Pi OS's first-boot wizard), e.g. --user pi"
    fi
    [[ $RESERVED_USERS == *" $1 "* ]] &&
        usage_error "--user $1: that name belongs to a system account (or to the edgevision service); choose another, e.g. pi"
    return 0
}

check_ssid() {  # 1-32 octets (IEEE 802.11); valid UTF-8 so it can be written into YAML unchanged
    local n
    n=$(byte_length "$1")
    ((n >= 1 && n <= 32)) ||
        usage_error "--wifi-ssid $(shown "$1"): a Wi-Fi network name is 1 to 32 bytes; this one is $n"
    is_utf8 "$1" ||
        usage_error "--wifi-ssid $(shown "$1"): not valid UTF-8 text; type the name as your desktop shows it"
    # netplan, which carries the name to NetworkManager on Raspberry Pi OS Trixie, rewrites a newline as \n
    local LC_ALL=C
    [[ $1 != *[[:cntrl:]]* ]] ||
        usage_error "--wifi-ssid $(shown "$1"): contains a control character (newline, tab, ...), which Raspberry" \
            "Pi OS's network configuration cannot carry; type the name as your desktop shows it"
    return 0
}

check_country() {  # sets COUNTRY to the upper-case ISO 3166-1 alpha-2 code
    local cc=${1^^}
    [[ $cc =~ ^[A-Z]{2}$ ]] ||
        usage_error "--wifi-country $(shown "$1"): expected a two-letter ISO 3166 country code such as GB, US, DE or FR"
    local tab=/usr/share/zoneinfo/iso3166.tab
    if [[ -r $tab ]] && ! grep -q "^$cc	" "$tab"; then
        usage_error "--wifi-country $1: not an ISO 3166 country code (see $tab); e.g. GB, US, DE, FR"
    fi
    # shellcheck disable=SC2034 # for the caller
    COUNTRY=$cc
}

check_timezone() {
    [[ $1 =~ ^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$ && ${#1} -le 64 ]] ||
        usage_error "--timezone $(shown "$1"): expected an IANA time zone name such as Europe/London or America/New_York"
    local zi=/usr/share/zoneinfo
    if [[ -d $zi/Europe && ! -f $zi/$1 ]]; then
        usage_error "--timezone $1: no such time zone in $zi; e.g. Europe/London, America/New_York, Asia/Tokyo" \
            "(list them with: timedatectl list-timezones)"
    fi
    return 0
}

check_keyboard() {  # an XKB layout name (gb, us, de, fr, ...)
    [[ $1 =~ ^[a-z][a-z0-9_-]{1,31}$ ]] ||
        usage_error "--keyboard $(shown "$1"): expected an XKB layout name such as gb, us, de or fr"
    local xkb=/usr/share/X11/xkb/symbols
    if [[ -d $xkb && ! -f $xkb/$1 ]]; then
        usage_error "--keyboard $1: no such layout in $xkb; e.g. gb, us, de, fr"
    fi
    return 0
}

# read_secret_file FILE OPTION: the file's one line (a final newline, or CR LF, is not part of it) into SECRET
read_secret_file() {
    local file=$1 opt=$2 content size
    [[ -f $file && -r $file ]] || usage_error "$opt $(shown "$file"): no such readable file (write the secret into" \
        "a file, one line, e.g. with: read -rs P; printf '%s\\n' \"\$P\" > FILE)"
    size=$(stat -c %s -- "$file")
    ((size <= 4096)) || usage_error "$opt $(shown "$file"): $size bytes; expected one line holding the secret"
    IFS= read -r -d '' content < "$file" || true
    (($(byte_length "$content") == size)) || usage_error "$opt $(shown "$file"): contains a NUL byte; expected one line of text"
    content=${content%$'\n'}
    content=${content%$'\r'}
    [[ -n $content ]] || usage_error "$opt $(shown "$file"): the file is empty; expected the secret on one line"
    [[ $content != *$'\n'* && $content != *$'\r'* ]] ||
        usage_error "$opt $(shown "$file"): holds more than one line; expected the secret alone on one line"
    local mode
    mode=$(stat -c %a -- "$file")
    (((8#$mode & 8#077) == 0)) || warn "$file can be read by other users on this computer (chmod 600 $file)"
    # shellcheck disable=SC2034 # for the caller
    SECRET=$content
}

# check_wifi_passphrase VALUE: 8-63 printable ASCII characters (IEEE 802.11i), or 64 hex digits (a raw PSK)
check_wifi_passphrase() {
    local LC_ALL=C
    [[ $1 =~ ^[0-9A-Fa-f]{64}$ ]] && return 0
    local n=${#1}
    ((n >= 8 && n <= 63)) || usage_error "--wifi-password-file: the passphrase is $n characters; Wi-Fi (WPA2/WPA3)" \
        "passphrases are 8 to 63 characters (or exactly 64 hexadecimal digits, a raw key)"
    [[ $1 =~ ^[\ -~]+$ ]] || usage_error "--wifi-password-file: the passphrase holds characters outside printable" \
        "ASCII; WPA passphrases are 8-63 printable ASCII characters (letters, digits, punctuation, spaces)"
    return 0
}

# read_ssh_keys FILE: the public keys in FILE (one per line, OpenSSH format) into SSH_KEYS, newline-separated
SSH_KEY_TYPES='ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com'
read_ssh_keys() {
    local file=$1 line n=0 keys=() content size
    [[ -f $file && -r $file ]] || usage_error "--ssh-key $(shown "$file"): no such readable file; expected your public" \
        "key, e.g. ~/.ssh/id_ed25519.pub (make one with: ssh-keygen -t ed25519)"
    size=$(stat -c %s -- "$file")
    ((size <= 65536)) || usage_error "--ssh-key $(shown "$file"): $size bytes; expected a public key file"
    IFS= read -r -d '' content < "$file" || true
    (($(byte_length "$content") == size)) || usage_error "--ssh-key $(shown "$file"): contains a NUL byte; expected a public key file"
    if [[ $content == *"PRIVATE KEY"* ]]; then
        usage_error "--ssh-key $(shown "$file"): this is a PRIVATE key, which must never leave your computer;" \
            "give the public half, the file ending in .pub"
    fi
    is_utf8 "$content" || usage_error "--ssh-key $(shown "$file"): not valid UTF-8 text; expected an OpenSSH public key file"
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        line=${line%$'\r'}
        [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
        if [[ ! $line =~ ^($SSH_KEY_TYPES)\ [A-Za-z0-9+/]+={0,3}(\ .*)?$ ]]; then
            usage_error "--ssh-key $(shown "$file") line $n: $(shown "${line:0:60}") is not an OpenSSH public key;" \
                "expected 'TYPE BASE64 [comment]' with TYPE one of ${SSH_KEY_TYPES//\\/}"
        fi
        keys+=("$line")
    done <<< "$content"
    ((${#keys[@]})) || usage_error "--ssh-key $(shown "$file"): no public key in it; expected e.g. the contents of ~/.ssh/id_ed25519.pub"
    SSH_KEYS=$(printf '%s\n' "${keys[@]}")
    SSH_KEYS=${SSH_KEYS%$'\n'}
}
