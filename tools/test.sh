#!/usr/bin/env bash
# Set up (tools/setup_dev.sh) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/tools/setup_dev.sh"
cd "$repo"
exec .venv/bin/python -m pytest -q "$@"
