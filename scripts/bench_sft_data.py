"""SFT data benchmark: the prepare_sft_data stage against a plain orjson streaming loop.

    python scripts/bench_sft_data.py --rows 1000000 --tokenizer results/models/smollm2-135m

Writes synthetic solution files (4 seeds; ~660 bytes a row: a problem, a <think>...</think>
solution with a boxed answer, a known answer on 75% of problems), then times, each in its own
process (peak RSS from wait4):
- ``loop`` (scripts/sft_loop_peer.py): one plain loop over the seed files in lockstep doing the
  same default chain with the same functions (answer extraction, majority fill, equivalence,
  selection, deduplication, multi-boxed and think-tag filters, chat formatting), writing orjson;
- ``stage``: ``python -m distillery.prepare_sft_data`` with that chain (two passes, report,
  train/validation split, shuffle);
- ``stage + 13-gram``: the same plus the contamination scan against 1,000 benchmark problems.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
SEEDS = 4
WORDS = "we consider the sum of the terms and compare it with the product of both sides so".split()


def write_inputs(directory: Path, rows: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    problems = rows // SEEDS
    handles = [open(directory / f"output-rs{s}.jsonl", "wb") for s in range(SEEDS)]
    for i in range(problems):
        answer = rng.randint(1, 999)
        problem = f"Problem {i}: " + " ".join(rng.choice(WORDS) for _ in range(22)) + f" {answer}?"
        expected = str(answer) if rng.random() < 0.75 else None
        for handle in handles:
            kind = rng.random()
            predicted = answer if kind < 0.6 else rng.randint(1, 999)
            think = " ".join(rng.choice(WORDS) for _ in range(76))
            generation = f"<think>{think}</think>\n\nThe answer is \\boxed{{{predicted}}}."
            if kind > 0.97:
                generation += f" Or maybe \\boxed{{{predicted + 1}}}."
            elif kind > 0.94:
                generation = generation.replace("</think>", "")
            row = {
                "id": i,
                "problem": problem,
                "expected_answer": expected,
                "generation": generation,
                "num_generated_tokens": 120,
                "finish_reason": "stop",
            }
            handle.write(orjson.dumps(row) + b"\n")
    for handle in handles:
        handle.close()
    return [str(directory / f"output-rs{s}.jsonl") for s in range(SEEDS)]


def write_benchmark(directory: Path, count: int = 1000) -> Path:
    rng = random.Random(1)
    path = directory / "bench.jsonl"
    with open(path, "wb") as handle:
        for i in range(count):
            text = "Benchmark question " + " ".join(
                rng.choice(WORDS + ["x", "y"]) for _ in range(30)
            )
            handle.write(
                orjson.dumps({"id": f"b-{i}", "problem": text, "expected_answer": "1"}) + b"\n"
            )
    return path


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak summed RSS (MB) of the process and its descendants (the stage's
    grading workers included), sampled every 50 ms."""
    import psutil

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        total = 0
        for proc in [tree, *tree.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        peak = max(peak, total)
        time.sleep(0.05)
    wall = time.perf_counter() - began
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed:\n{process.stderr.read().decode()[-3000:]}")
    return wall, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tokenizer", default=str(REPO / "results" / "models" / "smollm2-135m"))
    parser.add_argument("--scratch", help="where the synthetic files go (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs; medians shown")
    parser.add_argument("--threads", type=int, default=2, help="the stage's --threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        scratch = Path(tmp)
        began = time.perf_counter()
        inputs = write_inputs(scratch, args.rows)
        bench = write_benchmark(scratch)
        size = sum(Path(p).stat().st_size for p in inputs)
        print(f"{args.rows} rows, {size / 2**20:.0f} MB in {SEEDS} seed files "
              f"(written in {time.perf_counter() - began:.0f} s)\n")  # fmt: skip
        prompt = str(REPO / "prompts" / "math.yaml")
        stage = [
            sys.executable, "-m", "distillery.prepare_sft_data", "--inputs", *inputs,
            "--output", str(scratch / "sft.jsonl"), "--report", str(scratch / "report.json"),
            "--prompt", prompt, "--tokenizer", args.tokenizer, "--drop-multi-boxed",
            "--remove-no-think-tags", "--threads", str(args.threads),
        ]  # fmt: skip
        commands = {
            "loop": [
                sys.executable,
                str(REPO / "scripts" / "sft_loop_peer.py"),
                ",".join(inputs),
                str(scratch / "loop.jsonl"),
                prompt,
                args.tokenizer,
            ],
            "stage": stage,
            "stage, no shuffle": stage + ["--no-shuffle"],
            "stage + 13-gram": stage
            + [
                "--remove-contaminated",
                "--contamination-benchmarks",
                f"bench={bench}",
                "--contamination-output",
                str(scratch / "flagged.jsonl"),
            ],
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.repeats):  # interleaved, so a noisy moment hits every contender
            for name, command in commands.items():
                runs[name].append(run(command))
        results = {
            name: (statistics.median(w for w, _ in r), max(m for _, m in r))
            for name, r in runs.items()
        }
        loop_rows = sum(1 for _ in open(scratch / "loop.jsonl", "rb"))
        stage_rows = sum(1 for _ in open(scratch / "sft.jsonl", "rb"))
    base = results["loop"][0]
    print(f"median of {args.repeats} interleaved runs\n")
    print(
        "| run | wall (s) | rows/s | × loop throughput | peak RSS (MB) |\n|---|---:|---:|---:|---:|"
    )
    for name, (wall, rss) in results.items():
        print(f"| {name} | {wall:.1f} | {args.rows / wall:,.0f} | {base / wall:.2f} | {rss:.0f} |")
    print(f"\nrecords written: loop {loop_rows}, stage {stage_rows}")


if __name__ == "__main__":
    main()
