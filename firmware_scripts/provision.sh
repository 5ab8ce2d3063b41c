#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install edgevision on a Raspberry Pi as a service: live recognition from the camera, started at boot.
# Runs at first boot from the bundle flash.sh puts on the card (edgevision-firstboot.service), or by hand over
# SSH on a Pi that is already running (from a checkout of edgevision, or from a folder made by make_bundle.sh).
#
# usage: sudo provision.sh [--model M.tflite] [--config config.toml] [--package SDIST_OR_DIR] [--bundle DIR]
#                          [--no-start]
#   --model M.tflite   the model the service runs (installed as /etc/edgevision/model.tflite)
#   --config FILE      the service's settings (installed as /etc/edgevision/config.toml; the previous file, if
#                      different, is kept as config.toml.old). Without it an existing config.toml is kept.
#   --package P        edgevision's source: an sdist (.tar.gz) or a checkout (default: the bundle's sdist, else
#                      the checkout this script is in)
#   --bundle DIR       take package, model and config from a bundle (default: this script's folder, if it is one)
#   --no-start         do not start or restart the service now (it still starts at boot)
#
# What it does, each step only when needed (a second run changes nothing and says so):
#   apt: python3-venv, python3-dev, gcc (the native engine is compiled here, for this CPU), numpy, Pillow and
#        python3-picamera2 (Raspberry Pi OS's camera library; said plainly when this system has no such package)
#   user edgevision (system account, group video: the camera); venv /opt/edgevision/venv that sees the system's
#   picamera2; edgevision in it, with LiteRT when PyPI has a wheel for this Python and CPU, else the native
#   engine; /etc/edgevision/{config.toml,model.tflite}; edgevision.service enabled (restart on failure, logs to
#   the journal); a check that the service user can classify a photo with the installed model.
set -euo pipefail

# shellcheck disable=SC2034 # PROG is used by lib/common.sh
PROG=provision.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; }

VENV=/opt/edgevision/venv
ETC=/etc/edgevision
UNIT=/etc/systemd/system/edgevision.service
SERVICE_USER=edgevision
STATE_DIR=/var/lib/edgevision
INSTALLED_MODEL=$ETC/model.tflite
EXTRAS=images,config
REQUIRED_PACKAGES=(python3 python3-venv python3-dev gcc libc6-dev python3-numpy python3-pil ca-certificates)
CAMERA_PACKAGE=python3-picamera2

MODEL='' CONFIG='' PACKAGE='' BUNDLE='' START=1
while (($#)); do
    opt=$1 val='' has_val=0
    if [[ $opt == --*=* ]]; then val=${opt#*=} opt=${opt%%=*} has_val=1; fi
    case $opt in
        -h|--help) usage; exit 0 ;;
        --no-start) START=0; shift; continue ;;
        --model|--config|--package|--bundle)
            if ((!has_val)); then
                (($# >= 2)) || usage_error "$opt needs a value"
                val=$2; shift
            fi
            shift ;;
        *) usage_error "unknown option $(printf '%q' "$opt")" ;;
    esac
    case $opt in
        --model) MODEL=$val ;;
        --config) CONFIG=$val ;;
        --package) PACKAGE=$val ;;
        --bundle) BUNDLE=$val ;;
    esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages, a user and a service): sudo $0 $*"
need_commands apt-get dpkg-query systemctl useradd usermod getent runuser sha256sum install cmp flock

# --- where things come from --------------------------------------------------------------------------------------
if [[ -z $BUNDLE && -f $here/SHA256SUMS ]] && compgen -G "$here/edgevision-*.tar.gz" >/dev/null; then
    BUNDLE=$here
fi
if [[ -n $BUNDLE ]]; then
    [[ -d $BUNDLE && -f $BUNDLE/SHA256SUMS ]] || usage_error "--bundle $BUNDLE: not an edgevision bundle (no SHA256SUMS)"
    bad=$(cd "$BUNDLE" && sha256sum --quiet -c SHA256SUMS 2>&1) ||
        die "the bundle in $BUNDLE is damaged (the card may be failing; write it again with flash.sh): $bad"
    if [[ -z $PACKAGE ]]; then
        sdists=("$BUNDLE"/edgevision-*.tar.gz)
        ((${#sdists[@]} == 1)) || die "the bundle in $BUNDLE holds ${#sdists[@]} edgevision-*.tar.gz; expected one"
        PACKAGE=${sdists[0]}
    fi
    [[ -n $MODEL || ! -f $BUNDLE/model.tflite ]] || MODEL=$BUNDLE/model.tflite
    [[ -n $CONFIG || ! -f $BUNDLE/config.toml ]] || CONFIG=$BUNDLE/config.toml
fi
if [[ -z $PACKAGE ]]; then
    PACKAGE=$(cd "$here/.." && pwd)
    grep -qs '^name = "edgevision"' "$PACKAGE/pyproject.toml" ||
        usage_error "no edgevision source here: give --package (an sdist or a checkout) or --bundle DIR" \
            "(made by make_bundle.sh), or run the provision.sh of an edgevision checkout"
fi
[[ -e $PACKAGE ]] || usage_error "--package $PACKAGE: no such file or folder"
[[ -z $MODEL ]] || [[ -f $MODEL && "$(dd if="$MODEL" bs=1 skip=4 count=4 status=none 2>/dev/null)" == TFL3 ]] ||
    usage_error "--model $MODEL: not a readable TensorFlow Lite model (no TFL3 identifier)"
[[ -z $CONFIG || -f $CONFIG ]] || usage_error "--config $CONFIG: no such file"
if [[ -z $CONFIG && ! -f $ETC/config.toml ]]; then
    CONFIG=$here/config.toml
fi

# One provision at a time (the first-boot service and a user over SSH could meet)
lock_dir=/run/lock
[[ -d $lock_dir ]] || lock_dir=/tmp
exec 9>"$lock_dir/edgevision-provision.lock"
flock -n 9 || die "another provision.sh is running (see: journalctl -u edgevision-firstboot)"

# pip quiet and non-interactive; Python leaves no new byte code behind (so a second run changes no file)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CHANGES=()
changed() { CHANGES+=("$1"); log "changed: $1"; }
start=$SECONDS
# shellcheck disable=SC1091
log "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown system}"), $(dpkg --print-architecture 2>/dev/null || uname -m)"

# --- apt -------------------------------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -qv '^(none)$'; }
apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
missing=()
for p in "${REQUIRED_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
    log "apt: installing ${missing[*]}"
    apt_get update -qq
    if ! installed "$CAMERA_PACKAGE" && candidate "$CAMERA_PACKAGE"; then missing+=("$CAMERA_PACKAGE"); fi
    apt_get install --no-install-recommends "${missing[@]}" >&2 || die "apt-get could not install ${missing[*]}"
    changed "apt packages ${missing[*]}"
elif ! installed "$CAMERA_PACKAGE" && candidate "$CAMERA_PACKAGE"; then
    log "apt: installing $CAMERA_PACKAGE"
    apt_get install --no-install-recommends "$CAMERA_PACKAGE" >&2 ||
        { apt_get update -qq && apt_get install --no-install-recommends "$CAMERA_PACKAGE" >&2; } ||
        die "apt-get could not install $CAMERA_PACKAGE"
    changed "apt package $CAMERA_PACKAGE"
fi
if ! installed "$CAMERA_PACKAGE" && ! python3 -c 'import picamera2' 2>/dev/null; then
    warn "no camera library: $CAMERA_PACKAGE is not in this system's apt sources. It comes from Raspberry Pi's" \
        "archive (archive.raspberrypi.com), which Raspberry Pi OS has and plain Debian does not. edgevision is" \
        "installed anyway and shows its demo photos until a camera works (or set source in $ETC/config.toml)." \
        "On Raspberry Pi OS: sudo apt update && sudo apt install $CAMERA_PACKAGE, then sudo systemctl restart" \
        "edgevision. On Debian, pip install picamera2 in $VENV needs python3-libcamera and kms++'s Python bindings."
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die "Python $(python3 -c 'import platform; print(platform.python_version())') is too old: edgevision needs 3.9+"
PY_VERSION=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# --- the service account ------------------------------------------------------------------------------------------
if ! getent passwd "$SERVICE_USER" >/dev/null; then
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
        --comment "edgevision service" "$SERVICE_USER"
    changed "system user $SERVICE_USER"
fi
if ! id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx video; then
    usermod -aG video "$SERVICE_USER"
    changed "$SERVICE_USER in group video (the camera)"
fi
if [[ ! -d $STATE_DIR || "$(stat -c '%U:%G %a' "$STATE_DIR")" != "$SERVICE_USER:$SERVICE_USER 750" ]]; then
    install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 750 "$STATE_DIR"
    changed "$STATE_DIR"
fi

# --- the venv: it sees the system's packages (picamera2 and libcamera come from apt, not PyPI) -----------------------
venv_ok() {
    [[ -x $VENV/bin/python3 ]] && grep -qs '^include-system-site-packages = true' "$VENV/pyvenv.cfg" &&
        [[ "$("$VENV/bin/python3" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == "$PY_VERSION" ]]
}
if ! venv_ok; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv --system-site-packages "$VENV"
    changed "venv $VENV (Python $PY_VERSION, with the system's site-packages)"
fi

# --- edgevision in the venv -----------------------------------------------------------------------------------------
source_id() {  # a hash of the package source: an sdist's bytes, or a checkout's files
    if [[ -f $PACKAGE ]]; then
        sha256sum < "$PACKAGE" | cut -d' ' -f1
    else
        (cd "$PACKAGE" && find pyproject.toml setup.py README.md edgevision converters -type f \
            ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '*.so' -print0 2>/dev/null |
            LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
    fi
}
MARKER=$VENV/.edgevision-source
want="source $(source_id) python $PY_VERSION extras $EXTRAS"
if [[ "$(head -n1 "$MARKER" 2>/dev/null)" != "$want" ]] || ! "$VENV/bin/python3" -c 'import edgevision' 2>/dev/null; then
    # LiteRT where PyPI has a wheel for this Python and CPU (aarch64, x86_64); otherwise (32-bit Raspberry Pi OS,
    # a Python too new) the native engine, which pip compiles from the sdist below in either case.
    mkdir -p "$TMP/wheels"
    litert=()
    if out=$("$VENV/bin/pip" download -q --only-binary=:all: --no-deps -d "$TMP/wheels" 'ai-edge-litert>=2.0' 2>&1); then
        litert=("$TMP"/wheels/ai_edge_litert-*.whl)
        log "LiteRT: ${litert[0]##*/}"
    elif grep -qE 'No matching distribution|Could not find a version' <<< "$out"; then
        log "LiteRT: PyPI has no wheel for Python $PY_VERSION on $(uname -m); edgevision will use its native engine"
    else
        die "pip could not look for LiteRT on PyPI (is the network up?): $out"
    fi
    if "$VENV/bin/pip" show -q edgevision >/dev/null 2>&1; then
        "$VENV/bin/pip" uninstall -q -y edgevision >&2
    fi
    # The system's numpy stays: Raspberry Pi OS's camera stack (python3-picamera2, simplejpeg, ...) is compiled
    # against it, and a second numpy in the venv (pip would bring numpy 2 for LiteRT's dependencies) breaks it.
    : > "$TMP/constraints.txt"
    if system_numpy=$(python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null); then
        printf 'numpy==%s\n' "$system_numpy" > "$TMP/constraints.txt"
    fi
    spec="${PACKAGE}[$EXTRAS]"
    pip_install() {
        "$VENV/bin/pip" install -q --prefer-binary -c "$TMP/constraints.txt" "$@" >&2
    }
    log "pip: installing edgevision from ${PACKAGE##*/}${litert:+ with LiteRT} (compiles the native engine; minutes on a Pi)"
    if ! pip_install "${litert[@]}" "$spec"; then
        ((${#litert[@]})) || die "pip could not install edgevision (its output is above)"
        log "LiteRT cannot be installed beside this system's numpy ${system_numpy:-}: edgevision will use its native engine"
        litert=()
        pip_install "$spec" || die "pip could not install edgevision (its output is above)"
    fi
    "$VENV/bin/python3" -c 'import edgevision' || die "edgevision does not import after pip installed it"
    if ! "$VENV/bin/python3" -c 'import edgevision._native' 2>/dev/null; then
        ((${#litert[@]})) || die "no inference engine: PyPI has no LiteRT for this system and the native engine" \
            "did not compile (it needs gcc and python3-dev; the compiler's messages: $VENV/bin/pip install -v" \
            "--no-deps --force-reinstall $PACKAGE)"
        warn "the native engine did not compile here; LiteRT runs the model instead. The compiler's messages:" \
            "$VENV/bin/pip install -v --no-deps --force-reinstall $PACKAGE 2>&1 | grep -B2 -A2 error"
    fi
    printf '%s\n' "$want" > "$MARKER"
    changed "edgevision in $VENV"
fi
engines=$("$VENV/bin/python3" - <<'PY'
import importlib.util
found = []
if importlib.util.find_spec("ai_edge_litert"):
    found.append("LiteRT")
try:
    import edgevision._native  # noqa: F401
    found.append("native")
except ImportError:
    pass
print(", ".join(found) or "none")
PY
)

# --- model and settings -------------------------------------------------------------------------------------------
# install_file SRC DEST MODE OWNER GROUP: copy when content, mode or owner differ; true when it copied
install_file() {
    local src=$1 dest=$2 mode=$3 owner=$4 group=$5
    if [[ -f $dest ]] && cmp -s "$src" "$dest" && [[ "$(stat -c '%a %U %G' "$dest")" == "$mode $owner $group" ]]; then
        return 1
    fi
    if [[ -f $dest && $dest == *.toml ]] && ! cmp -s "$src" "$dest"; then
        cp -p "$dest" "$dest.old"
        log "the previous $dest is kept as $dest.old"
    fi
    install -D -m "$mode" -o "$owner" -g "$group" "$src" "$dest"
}
if [[ ! -d $ETC ]]; then
    install -d -m 755 "$ETC"
    changed "$ETC"
fi
if [[ -n $MODEL ]] && install_file "$MODEL" "$INSTALLED_MODEL" 644 root root; then
    changed "model $INSTALLED_MODEL"
fi
config_src=${CONFIG:-$ETC/config.toml}
cp "$config_src" "$TMP/config.toml"
# edgevision's own checker, and the model: --model fills in `model` when the file has none
check=$("$VENV/bin/python3" - "$TMP/config.toml" "${MODEL:+$INSTALLED_MODEL}" <<'PY' 2>&1
import os, sys
from edgevision.config import ConfigError, load_config
try:
    values = load_config(sys.argv[1])
except ConfigError as e:
    print(e)
    sys.exit(2)
given, model = sys.argv[2], values.get("model")
if given and model is None:
    print("add-model")
elif given and model != given:
    print(f"it sets model = {model!r}, but a model was given to install as {given}: leave one out")
    sys.exit(2)
elif model is not None and not os.path.isfile(model):
    print(f"it sets model = {model!r}, and there is no such file on this system")
    sys.exit(2)
PY
) || usage_error "config $config_src: $check"
if [[ $check == add-model ]]; then
    printf '\n# added by provision.sh: the model it installed\nmodel = "%s"\n' "$INSTALLED_MODEL" >> "$TMP/config.toml"
fi
if install_file "$TMP/config.toml" "$ETC/config.toml" 640 root "$SERVICE_USER"; then
    changed "settings $ETC/config.toml"
fi

# --- the service --------------------------------------------------------------------------------------------------
unit_changed=0
if install_file "$here/edgevision.service" "$UNIT" 644 root root; then
    unit_changed=1
    changed "unit $UNIT"
fi
if [[ "$(systemctl is-enabled edgevision.service 2>/dev/null)" != enabled ]]; then
    systemctl enable -q edgevision.service
    changed "edgevision.service enabled (starts at boot)"
fi

# --- check: the service's user classifies a demo photo with the installed model and reads the settings -------------
model_in_use=$(runuser -u "$SERVICE_USER" -- env PYTHONDONTWRITEBYTECODE=1 HOME="$STATE_DIR" "$VENV/bin/python3" -c '
import sys
from edgevision.cli import DEFAULT_MODEL
from edgevision.config import load_config
print(load_config(sys.argv[1]).get("model") or DEFAULT_MODEL)' "$ETC/config.toml" 2>&1) ||
    die "user $SERVICE_USER cannot read $ETC/config.toml: $model_in_use"
photo=$("$VENV/bin/python3" -c 'from edgevision.demo import demo_photos; print([p for p in demo_photos() if p.name == "cat_chelsea.jpg"][0])')
result=$(cd / && runuser -u "$SERVICE_USER" -- env PYTHONDONTWRITEBYTECODE=1 HOME="$STATE_DIR" \
    "$VENV/bin/edgevision" classify "$photo" --model "$model_in_use" --top 1 2>&1) ||
    die "user $SERVICE_USER cannot classify a photo with $model_in_use: $result"
log "check: as user $SERVICE_USER, ${model_in_use##*/} on ${photo##*/}: $(tail -n1 <<< "$result" | tr -s ' ' | cut -c1-80)"

# --- start ----------------------------------------------------------------------------------------------------------
if [[ ! -d /run/systemd/system ]]; then
    log "systemd is not running here (a chroot or an image being prepared): edgevision starts at the next boot"
elif ((START)); then
    ((unit_changed)) && systemctl daemon-reload
    if ((${#CHANGES[@]})); then
        systemctl restart --no-block edgevision.service
        log "edgevision.service (re)started"
    elif ! systemctl is-active -q edgevision.service; then
        systemctl start --no-block edgevision.service
        log "edgevision.service started"
    fi
fi

took=$((SECONDS - start))
if ((${#CHANGES[@]})); then
    log "done in ${took} s: ${#CHANGES[@]} changes; engines: $engines. Watch it: journalctl -u edgevision -f"
else
    log "nothing to change: everything was already in place (${took} s); engines: $engines"
fi
