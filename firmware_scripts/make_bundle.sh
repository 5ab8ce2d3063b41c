#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Make the edgevision bundle (what flash.sh puts on a card) in a folder, to install edgevision on a Pi that is
# already running:
#     firmware_scripts/make_bundle.sh /tmp/ev [--model M.tflite] [--config config.toml]
#     scp -r /tmp/ev pi@edgevision.local:
#     ssh pi@edgevision.local sudo bash ev/provision.sh
# Without --config the bundle carries firmware_scripts/config.toml (camera if present, else demo photos; no web page).
set -euo pipefail

# shellcheck disable=SC2034 # PROG is used by lib/common.sh
PROG=make_bundle.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/bundle.sh
. "$here/lib/bundle.sh"

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; }

OUT='' MODEL='' CONFIG=$here/config.toml
while (($#)); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --model) (($# >= 2)) || usage_error "--model needs a value"; MODEL=$2; shift 2 ;;
        --config) (($# >= 2)) || usage_error "--config needs a value"; CONFIG=$2; shift 2 ;;
        -*) usage_error "unknown option $(printf '%q' "$1")" ;;
        *) [[ -z $OUT ]] || usage_error "one output folder, please (got $(printf '%q' "$OUT") and $(printf '%q' "$1"))"
           OUT=$1; shift ;;
    esac
done
[[ -n $OUT ]] || usage_error "give the folder to write the bundle to, e.g. make_bundle.sh /tmp/ev"
need_commands tar gzip sha256sum
[[ ! -e $OUT ]] || [[ -d $OUT && -z "$(ls -A "$OUT")" ]] || usage_error "$(printf '%q' "$OUT") exists and is not empty"
[[ -z $MODEL || -f $MODEL ]] || usage_error "--model $(printf '%q' "$MODEL"): no such file"
[[ -f $CONFIG ]] || usage_error "--config $(printf '%q' "$CONFIG"): no such file"
make_bundle "$OUT" "$CONFIG" "$MODEL"
log "bundle in $OUT: copy it to the Pi and run: sudo bash $(basename "$OUT")/provision.sh"
