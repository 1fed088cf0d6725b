#!/usr/bin/env bash
# Benchmark of the quick start: clone HEAD into a scratch directory once per target, time
# `make run` in one and `make test` in the other (each from nothing: venv, install, run), and
# print wall time, peak RSS, the slowest rules and the baseline-vs-trained table, with the CPU they were measured on
# (the default's number formats follow it: an AVX2-only CPU runs fp32, one with AVX512-BF16 or
# AMX bf16).
#   scripts/measure_fresh_clone.sh [scratch-dir]
#   TARGETS=run scripts/measure_fresh_clone.sh      # the quick start's first command only
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

targets=${TARGETS:-run test}
times=()
for target in $targets; do
    measure "$target" "$target"
    times+=(--time "$target=$scratch/$target.time")
done
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
capability=$("$scratch/$target/.venv/bin/python" -c \
    'from distillery.models.dtypes import describe_cpu; print(describe_cpu())')
echo "$model, $(nproc) cores: $capability"
echo
python3 "$repo/scripts/summarize_run.py" --run-dir "$scratch/run" "${times[@]}"
