#!/usr/bin/env bash
# Create or reuse the Python 3.13 virtual environment at .venv/ and install OpenKin
# with pinned dependencies (constraints.txt). Sourced by demo.sh and test.sh.
# Reinstalls only when constraints.txt or engine/pyproject.toml change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python313() {
    local c
    for c in "${OPENKIN_PYTHON:-}" python3.13 "$(command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null)/versions/"3.13*/bin/python3.13 \
             "$HOME/.pyenv/versions/"3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13 \
             /opt/homebrew/bin/python3.13 python3 python; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' 2>/dev/null; then
            command -v "$c"; return 0
        fi
    done
    return 1
}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' 2>/dev/null; then
    if ! PY="$(find_python313)"; then
        cat >&2 <<'MSG'
OpenKin needs Python 3.13 (the Python of Blender 5.1+), and none was found.
Install one, then run this command again:
  - pyenv:         pyenv install 3.13
  - Debian/Ubuntu: sudo apt install python3.13 python3.13-venv
  - macOS:         brew install python@3.13
  - Windows:       the installer from python.org (3.13.x)
Or point OPENKIN_PYTHON at a python3.13 executable.
MSG
        exit 1
    fi
    echo "openkin: creating $VENV with $PY" >&2
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi

STAMP="$VENV/.openkin-installed"
WANT="$(cat "$ROOT/constraints.txt" "$ROOT/engine/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "openkin: installing pinned dependencies into .venv (first run takes a few minutes)" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$ROOT/constraints.txt" -e "$ROOT/engine[opensim,cluster]" pytest hypothesis onnx bpy
    # rtmlib pins opencv-python and opencv-contrib-python, which would install two more
    # OpenCVs over opencv-python-headless (three packages writing one cv2/ folder). It is
    # pure Python and needs nothing the engine does not already install: no deps.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        -c "$ROOT/constraints.txt" rtmlib
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
