"""Requests a rerun sends after each one-line config change, before and after generation jobs
reuse the samples of unchanged files (``distillery.generation.reuse``), against a stub
OpenAI-compatible server that counts its requests.

    python scripts/bench_incremental.py [--rows 30] [CONFIG ...]

For each config (default: the embedded default and the seed recipe) the evaluation jobs of its
first run and the solution jobs are planned by the workflow's own code (``eval_work``,
``solution_work``, the config's chunks), run on the stub with every benchmark's test file and
the problems made of ``--rows`` synthetic rows, and merged, the chunk files kept as the
workflow keeps them; then each change is applied and the jobs of the stage it changes run again.
"before" is the same rerun with ``DISTILLERY_REGENERATE=1``, which generates every file as jobs
did before they reused samples (a job reran everything it writes). Each row gives the requests
sent and the chunk files written (new, or written again: the workflow merges and grades those
again, and only those). Prints one table row per config and change.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from distillery import generate, merge_chunks  # noqa: E402
from distillery.generation.reuse import REGENERATE_ENV, merged_path  # noqa: E402
from distillery.generation.servers import free_port  # noqa: E402
from distillery.jsonl import write_jsonl  # noqa: E402
from distillery.planning import workflow as wf  # noqa: E402
from distillery.planning.config_check import resolve_benchmarks  # noqa: E402
from distillery.settings.base import parse  # noqa: E402
from distillery.settings.generation import Generation, Server, Solutions  # noqa: E402
from distillery.settings.workflow import WorkflowConfig  # noqa: E402

DEFAULT_CONFIGS = ["config/config.yaml", "config/recipes/openmathreasoning.yaml"]
OTHER_PROMPT = "prompts/math-few-shot.yaml"


@contextlib.contextmanager
def stub_server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "stub_openai_server.py"), "--port", str(port),
         "--tokens", "8"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            time.sleep(0.1)
        yield url
    finally:
        process.kill()
        process.wait()


def served(url: str) -> int:
    with urllib.request.urlopen(url + "/stats") as response:
        return json.loads(response.read())["requests"]


def run_jobs(
    config: dict, workdir: Path, url: str, rows: int, stages=("evaluation", "solutions")
) -> None:
    """The first run's evaluation jobs and the solution jobs of ``config`` (those of
    ``stages``), their chunk files merged afterwards."""
    resolve_benchmarks(config)
    cfg = parse(WorkflowConfig, config)
    run = next(iter(cfg.evaluation.runs))
    benches = list(cfg.evaluation.benchmarks)
    for bench in benches:
        path = workdir / "results" / "benchmarks" / bench / "test.jsonl"
        if not path.exists():
            write_jsonl(path, [{"problem": f"{bench} problem {i}"} for i in range(rows)])
    problems = workdir / "results" / "sdg" / "extracted-problems.jsonl"
    if not problems.exists():
        write_jsonl(problems, [{"problem": f"problem {i}"} for i in range(rows)])
    data = [str(workdir / "results" / "benchmarks" / b / "test.jsonl") for b in benches]
    prompts = [str(REPO / wf.run_prompt(cfg, run, b)) for b in benches]
    jobs = []
    chunks = cfg.evaluation.chunks
    for chunk in range(chunks if "evaluation" in stages else 0):
        work = wf.eval_work(cfg, run, chunk, data, prompts)
        jobs.append((work, chunks, chunk, cfg.evaluation.inference))
    solutions = cfg.solutions
    chunks = solutions.chunks
    prompt = str(REPO / solutions.prompt)
    for chunk in range(chunks if "solutions" in stages else 0):
        work = wf.solution_work(wf.seeds(solutions.seeds), chunk, str(problems), prompt)
        jobs.append((work, chunks, chunk, solutions.inference))
    outputs = set()
    with contextlib.chdir(workdir):
        for work, chunks, chunk, inference in jobs:
            stage = Generation(server=Server(type="openai", base_url=url), inference=inference)
            generate.main(generate.Config(work=json.dumps(work), model="stub", stage=stage,
                                          num_chunks=chunks, chunk_id=chunk))  # fmt: skip
            outputs.update(o for item in work for o in item["outputs"])
        merged: dict[Path, list[str]] = {}
        for output in sorted(outputs):
            merged.setdefault(merged_path(output), []).append(output)
        for target, parts in merged.items():
            merge_chunks.main(merge_chunks.Config(inputs=tuple(parts), output=str(target)))


def chunk_times(workdir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (workdir / "results").rglob("*_chunk_*.jsonl")}


def changes(config: dict) -> list[tuple[str, str, dict]]:
    """(what changed, the stage whose jobs Snakemake reruns for it, the changed config) for
    each one-line change."""
    evaluation = config["evaluation"]["benchmarks"]
    first = next(iter(evaluation))
    seeds = evaluation[first] or 1
    found = []
    added = copy.deepcopy(config)
    added["evaluation"]["benchmarks"]["gsm8k"] = 1
    found.append(("a benchmark added (gsm8k:1)", "evaluation", added))
    raised = copy.deepcopy(config)
    raised["evaluation"]["benchmarks"][first] = 2 * seeds
    found.append((f"{first} seeds {seeds} -> {2 * seeds}", "evaluation", raised))
    more = copy.deepcopy(config)
    solution_seeds = parse(Solutions, config["solutions"], "solutions").seeds
    more["solutions"]["seeds"] = 2 * solution_seeds
    found.append((f"solutions.seeds {solution_seeds} -> {2 * solution_seeds}", "solutions", more))
    prompt = copy.deepcopy(config)
    prompt["benchmarks"] = {**(prompt.get("benchmarks") or {})}
    prompt["benchmarks"][first] = {**(prompt["benchmarks"].get(first) or {}),
                                   "prompt": OTHER_PROMPT}  # fmt: skip
    found.append((f"{first}'s prompt changed", "evaluation", prompt))
    return found


def measure(path: str, rows: int) -> list[tuple[str, str, tuple[int, int], tuple[int, int]]]:
    original = yaml.safe_load((REPO / path).read_text())
    table = []
    with stub_server() as url:
        for name, stage, changed in changes(original):
            counts = []
            for regenerate in (True, False):
                with tempfile.TemporaryDirectory() as workdir:
                    run_jobs(copy.deepcopy(original), Path(workdir), url, rows)
                    fresh, times = served(url), chunk_times(Path(workdir))
                    if regenerate:
                        os.environ[REGENERATE_ENV] = "1"
                    try:
                        run_jobs(copy.deepcopy(changed), Path(workdir), url, rows, (stage,))
                    finally:
                        os.environ.pop(REGENERATE_ENV, None)
                    written = sum(times.get(p) != t for p, t in chunk_times(Path(workdir)).items())
                    counts.append((served(url) - fresh, written))
            table.append((path, name, counts[0], counts[1]))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=DEFAULT_CONFIGS)
    parser.add_argument("--rows", type=int, default=30, help="rows of every synthetic input")
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)
    print(f"requests a rerun sends ({args.rows} rows per benchmark and problems file)\n")
    print("| config | change | requests before | after | chunk files written before | after |")
    print("|---|---|---:|---:|---:|---:|")
    for path in args.configs:
        for config, name, before, after in measure(path, args.rows):
            print(f"| {config} | {name} | {before[0]} | {after[0]} | {before[1]} | {after[1]} |")


if __name__ == "__main__":
    main()
