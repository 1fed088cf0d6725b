"""What vLLM's per-step statistics cost the in-process engine's loop: the engine as
``vllm_engine`` builds it (statistics off, as vLLM's offline ``LLM`` has them), against the
same engine with them on (the bare ``LLMEngine``'s default).

    python scripts/bench_engine_stats.py --model <HF dir> [--requests 1024] [--tokens 16]
        [--rounds 2] [--args "..."]

Run it under an interpreter with vLLM (``.venv-vllm/bin/python`` for the CPU build). Every
request ignores EOS, so each run does the same steps; timers around vLLM's output processing
(``OutputProcessor.process_outputs``: detokenizing, and with statistics on, each request's
token counts and latencies), its stat loggers (``StatLoggerManager.record``: Prometheus and the
periodic log line) and the scheduler's statistics give their milliseconds per step. That is
time in the loop that feeds the accelerator: with the engine's core in the job's process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``) the next step waits for it. The settings alternate
over ``--rounds``; the table gives each one's medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from distillery.generation.pythonpath import with_source  # noqa: E402

# a KV cache that holds 1,024 requests at once on the CPU build (one 128-token block each)
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "7", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}

RUN = """
import json, sys, time
from distillery.generation.vllm_engine import engine_args, engine_argv
from vllm import LLMEngine, SamplingParams
from vllm.sampling_params import RequestOutputKind
from vllm.usage.usage_lib import UsageContext
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.engine.output_processor import OutputProcessor
from vllm.v1.metrics.loggers import StatLoggerManager

spent = {"output": 0.0, "record": 0.0, "scheduler": 0.0}
def timed(owner, name, key):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - began
    setattr(owner, name, wrapper)
timed(OutputProcessor, "process_outputs", "output")
timed(StatLoggerManager, "record", "record")
timed(Scheduler, "make_stats", "scheduler")

model, requests, tokens, stats, extra = sys.argv[1:6]
args = engine_args(engine_argv(model, 1, None, json.loads(extra)))
args.disable_log_stats = stats == "off"
engine = LLMEngine.from_engine_args(args, usage_context=UsageContext.LLM_CLASS)
params = SamplingParams(temperature=0.7, top_p=0.95, max_tokens=int(tokens), ignore_eos=True,
                        seed=0, output_kind=RequestOutputKind.FINAL_ONLY)
for i in range(int(requests)):
    engine.add_request(str(i), {"prompt_token_ids": [1 + i % 50] * 8}, params)
# the requests each step ran (the engine's core is in this process)
scheduler = engine.engine_core.engine_core.scheduler
steps, running, began = 0, 0, time.perf_counter()
while engine.has_unfinished_requests():
    engine.step()
    steps += 1
    running += len(scheduler.running)
wall = time.perf_counter() - began
print("RESULT", json.dumps({"steps": steps, "running": running / steps, "wall": wall, **spent}),
      flush=True)
"""


def run(python: str, model: str, requests: int, tokens: int, stats: str, extra: list[str],
        env: dict) -> dict:  # fmt: skip
    result = subprocess.run(
        [python, "-c", RUN, model, str(requests), str(tokens), stats, json.dumps(extra)],
        capture_output=True, text=True, check=False,
        env={**os.environ, **env, "PYTHONPATH": with_source(),
             "VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"statistics {stats}: the run failed:\n{result.stderr[-4000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def table(runs: dict[str, list[dict]]) -> str:
    """Milliseconds per step, each the median over the rounds of one setting.

    Example:
        >>> one = {"steps": 10, "running": 900.0, "wall": 1.0, "output": 0.02, "record": 0.01,
        ...        "scheduler": 0.0}
        >>> print(table({"off": [one]}).splitlines()[-1])
        | off | 10 | 900 | 100.00 | 2.00 | 1.00 | 0.00 | 3.00 |
    """
    lines = [
        "| statistics | steps | requests a step | step | output processing | stat loggers "
        "| scheduler stats | all three |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stats, results in runs.items():
        cells = [per_step(results, "wall"), per_step(results, "output"),
                 per_step(results, "record"), per_step(results, "scheduler"),
                 per_step(results, "output", "record", "scheduler")]  # fmt: skip
        running = statistics.median(r["running"] for r in results)
        lines.append(f"| {stats} | {results[0]['steps']} | {running:.0f} | "
                     + " | ".join(f"{c:.2f}" for c in cells) + " |")  # fmt: skip
    return "\n".join(lines)


def per_step(results: list[dict], *keys: str) -> float:
    """The median over ``results`` of the milliseconds a step spent in ``keys`` together."""
    return statistics.median(sum(r[k] for k in keys) / r["steps"] * 1000 for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an HF model directory")
    parser.add_argument("--requests", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--args",
        default="--enforce-eager --max-model-len 512 --dtype float32 "
        "--max-num-batched-tokens 16384 --max-num-seqs 1024",
        help="vLLM engine arguments (the default fits vLLM's CPU build)",
    )
    parser.add_argument("--env", default=json.dumps(CPU_ENV), help="JSON environment for vLLM")
    parser.add_argument("--python", default=sys.executable, help="an interpreter with vLLM")
    args = parser.parse_args()
    extra, env = shlex.split(args.args), json.loads(args.env)
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for round_ in range(1, args.rounds + 1):
        for stats in runs:
            print(f"# round {round_}: statistics {stats} ...", file=sys.stderr, flush=True)
            result = run(args.python, args.model, args.requests, args.tokens, stats, extra, env)
            runs[stats].append(result)
            print(f"# round {round_}: statistics {stats}: {json.dumps(result)}", file=sys.stderr,
                  flush=True)  # fmt: skip
    print(f"\n{args.model}: {args.requests} requests x {args.tokens} tokens (ignore_eos), "
          f"vLLM args: {args.args}; {args.rounds} round(s), alternating; ms a step\n")  # fmt: skip
    print(table(runs))


if __name__ == "__main__":
    main()
