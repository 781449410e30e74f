#!/usr/bin/env bash
# Create lab/.cache/venv-python with the pinned DataStax Python driver (idempotent).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../../.cache"
venv="$cache/venv-python"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
PIP_CACHE_DIR="$cache/pip" "$venv/bin/pip" install -q -r "$here/requirements.txt"
echo "$venv/bin/python"
