#!/usr/bin/env bash
# Create the TensorFlow "peer" venv that tools/train_fashion_mnist.py and tools/tf_peer.py run under.
#
# TensorFlow is only the peer we measure our converter against; it lives in its own venv so the main
# venv (numpy 2, torch, ai-edge-litert) never gets it. Idempotent: if READY exists and TF imports,
# nothing is done. Writes READY last, so another process may wait for that file.
#
# usage: tools/setup_tf_venv.sh [VENV_DIR]      (default: <repo>/.cache/tf-venv)
set -euo pipefail

TF_SPEC='tensorflow-cpu==2.21.*'

log() { printf 'setup_tf_venv: %s\n' "$*" >&2; }

usage() { printf 'usage: %s [VENV_DIR]\n' "$0" >&2; }

if [[ $# -gt 1 || "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    usage
    exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo_root/.cache/tf-venv}"

tf_imports() {
    "$venv/bin/python" -c 'import tensorflow as tf, PIL; print(tf.__version__)' >/dev/null 2>&1
}

if [[ -f "$venv/READY" ]] && tf_imports; then
    log "already set up: $venv"
    exit 0
fi

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "python3 cannot create venvs here; install it with: apt-get install -y python3-venv"
    exit 1
fi

rm -f "$venv/READY"
start=$(date +%s)
log "creating $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
log "installing $TF_SPEC and pillow (about 1.6 GB; a few minutes)"
"$venv/bin/python" -m pip install --quiet "$TF_SPEC" pillow

version="$(TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" -c 'import tensorflow as tf; print(tf.__version__)')"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
size="$(du -sh "$site" | cut -f1)"
touch "$venv/READY"
log "tensorflow $version ready in $(( $(date +%s) - start )) s; site-packages $size"
