#!/usr/bin/env bats
# firmware_scripts/lib/quote.sh, the one place where typed values become text in generated files: every value
# must come back exactly as given when the file is read by what reads it on the Pi (sh, YAML, NetworkManager),
# and nothing in a value may run.

# shellcheck disable=SC2016,SC2094,SC1003 # literal $ in single quotes are meant; fat_cat reads the image, not the file
bats_require_minimum_version 1.5.0

setup() {
    load helpers
    # shellcheck disable=SC1091
    . "$FW/lib/quote.sh"
    cd "$BATS_TEST_TMPDIR" || return 1
    VALUES=(
        "plain"
        "$HOSTILE_SSID"
        "$HOSTILE_PASSWORD"
        "$HOSTILE_PASSPHRASE"
        "$HOSTILE_COMMENT"
        "'"
        "''\\'"
        '$HOME ${HOME} $((1+1)) !! !$ \$ \\'
        $'tab\there\rcr\x01\x1f\x7f'
        $'line1\nline2\n'
        '  leading and trailing spaces  '
        $'Wi-Fi \xe2\x80\xa8 U+2028 \xe2\x80\xa9 U+2029 \xc2\x85 NEL'
        'Café ☕ 東京 🐱'
        '# not a comment: key: value, [list], {map}, &anchor *alias !tag | > %'
        '-'
        'yes'
        'null'
        '0x1F'
    )
}

@test "sh_quote: dash and bash read every hostile value back unchanged, and run none of it" {
    local v out shell
    for shell in sh bash; do
        for v in "${VALUES[@]}"; do
            out=$("$shell" -c "v=$(sh_quote "$v"); printf '%s|' \"\$v\"")
            [[ $out == "$v|" ]] || { printf '%s: sent %q, got back %q\n' "$shell" "$v" "${out%|}"; return 1; }
        done
    done
    no_pwn
}

@test "sh_quote: a value is one word even where the shell splits and globs" {
    touch a1 a2
    run -0 sh -c "set -- $(sh_quote 'a* b  c'); echo \$#"
    [ "$output" = 1 ]
}

@test "yaml_quote: PyYAML (what cloud-init uses) reads every hostile value back unchanged" {
    local v doc=$BATS_TEST_TMPDIR/values.yaml
    : > "$doc"
    local i=0
    for v in "${VALUES[@]}"; do
        printf 'v%d: %s\n' "$i" "$(yaml_quote "$v")" >> "$doc"
        i=$((i + 1))
    done
    printf '%s\0' "${VALUES[@]}" > expected
    "$SYSPY" - "$doc" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
expected = open("expected", "rb").read().split(b"\0")[:-1]
got = [doc[f"v{i}"].encode() for i in range(len(expected))]
bad = [(e, g) for e, g in zip(expected, got) if e != g]
assert not bad, "\n".join(f"sent {e!r} got {g!r}" for e, g in bad)
PY
}

@test "yaml_quote: a value stays on one line of the file (no value can add YAML keys)" {
    local v
    for v in "${VALUES[@]}"; do
        [ "$(yaml_quote "$v" | wc -l)" -eq 0 ]
    done
}

@test "nm_bytes: every value is NetworkManager's byte list of exactly its bytes" {
    local v
    for v in "${VALUES[@]}"; do
        expected=$(printf '%s' "$v" | od -An -v -tu1 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//; s/ /;/g')
        [ "$(nm_bytes "$v")" = "$expected;" ]
    done
    [ "$(nm_bytes 'Hi')" = "72;105;" ]
}
