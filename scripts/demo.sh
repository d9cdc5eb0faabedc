#!/usr/bin/env bash
# Set up .venv (Python 3.13, pinned dependencies), obtain the demo project and run the pipeline on it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/openkin" demo "$@"
