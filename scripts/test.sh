#!/usr/bin/env bash
# Set up .venv (Python 3.13, pinned dependencies) and run the whole test suite:
# engine + end-to-end tests in one process with Blender's modules blocked (the
# engine must not need bpy), then the Blender add-on tests against the bpy module.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
status=0
"$VENV/bin/python" -m pytest tests/engine tests/e2e "$@" || status=$?
[ "$status" -eq 5 ] && status=0   # no tests collected in a tier is not a failure
addon=0
"$VENV/bin/python" -m pytest tests/addon "$@" || addon=$?
[ "$addon" -eq 5 ] && addon=0
[ "$status" -ne 0 ] && exit "$status"
exit "$addon"
