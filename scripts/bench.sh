#!/usr/bin/env bash
# Run every benchmark in tests/bench and print their figures (speed, accuracy,
# side-by-side ratios against Pose2Sim and Pose2Sim_Blender). Not part of the
# test suite: figures, not pass/fail. Pass names to run a subset:
#   bash scripts/bench.sh reconstruction kinematics
# Output is also saved to bench-results/<name>.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
mkdir -p bench-results
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(formats reconstruction refinement kinematics ik_solver calibration plan fuzz pose blender_import)
for name in "${names[@]}"; do
    echo "=== bench_${name}"
    "$VENV/bin/python" "tests/bench/bench_${name}.py" 2>&1 | tee "bench-results/${name}.txt"
done
