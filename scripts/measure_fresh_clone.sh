#!/usr/bin/env bash
# Benchmark of the quick start: clone HEAD twice into a scratch directory, time `make run` in one
# and `make test` in the other (each from nothing: venv, install, run), and print wall time, peak
# RSS, the slowest rules and the baseline-vs-trained table.
#   scripts/measure_fresh_clone.sh [scratch-dir]
set -euo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
scratch=${1:-$(mktemp -d)}
mkdir -p "$scratch"
export PIP_NO_CACHE_DIR=1

measure() {  # name, target
    local dir="$scratch/$1"
    rm -rf "$dir"
    git clone --quiet "$repo" "$dir"
    /usr/bin/time -f "%e %M" -o "$scratch/$1.time" make -C "$dir" "$2" > "$scratch/$1.log" 2>&1
}

measure run run
measure test test
python3 "$repo/scripts/summarize_run.py" \
    --run-dir "$scratch/run" --time "run=$scratch/run.time" --time "test=$scratch/test.time"
