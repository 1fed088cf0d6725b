"""Job plan of the generation stages, from Snakemake's dry run: how many model-server starts a
config costs and the GPUs they hold, for this checkout and, with ``--before REV``, for another
revision side by side.

    python scripts/bench_job_plan.py [--before REV] [--load-minutes 5] [CONFIG ...]

Each generation job starts its model once (a server, or the in-process model of the hf
backend) and holds its GPUs while the weights load; ``GPU-h loading`` is starts x GPUs x
``--load-minutes`` (an assumption you set: a 14B-32B model on 8 GPUs takes minutes to load and
warm up).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATION_RULES = ("extract_problems", "generate_solutions", "generate_eval")
DEFAULT_CONFIGS = [
    "config/config.yaml",
    "config/recipes/openmathreasoning.yaml",
    "config/recipes/qlora-8b-reasoning.yaml",
    "config/recipes/demo-gpu.yaml",
]


def planned(tree: Path, config: Path) -> list[dict]:
    """Every job of a forced dry run: rule, the files it writes (its declared outputs, or the
    outputs of its ``--work`` for a generation job that declares only its done file) and
    resources."""
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    with tempfile.TemporaryDirectory() as workdir:
        result = subprocess.run(
            [snakemake, "-s", str(tree / "Snakefile"), "-d", workdir, "-n", "-p", "--forceall",
             "--configfile", str(config)],
            capture_output=True, text=True,
        )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"dry run of {config} in {tree} failed:\n{result.stderr[-2000:]}")
    jobs, job = [], None
    for line in result.stdout.splitlines():
        if re.match(r"(local)?(rule|checkpoint) ", line):
            job = {"rule": line.split()[1].rstrip(":"), "outputs": 0, "gpu": 0}
            jobs.append(job)
        elif job and line.strip().startswith("output:"):
            job["outputs"] = len(line.split(":", 1)[1].split(","))
        elif job and "--work " in line:
            words = shlex.split(line)
            work = json.loads(words[words.index("--work") + 1])
            job["outputs"] = sum(len(w["outputs"]) for w in work)
        elif job and line.strip().startswith("resources:"):
            match = re.search(r"\bgpu=(\d+)", line)
            job["gpu"] = int(match.group(1)) if match else 0
    return jobs


def summary(jobs: list[dict], load_minutes: float) -> dict:
    starts = [j for j in jobs if j["rule"] in GENERATION_RULES]
    gpus = sum(j["gpu"] for j in starts)
    per_rule = {r: sum(j["rule"] == r for j in starts) for r in GENERATION_RULES}
    return {
        "jobs": len(jobs),
        "starts": len(starts),
        "per_rule": " / ".join(str(per_rule[r]) for r in GENERATION_RULES),
        "files": sum(j["outputs"] for j in starts) / max(1, len(starts)),
        "gpus": gpus,
        "gpu_hours": gpus * load_minutes / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=DEFAULT_CONFIGS)
    parser.add_argument("--before", help="git revision to compare with (a worktree of it)")
    parser.add_argument("--load-minutes", type=float, default=5.0)
    args = parser.parse_args()
    trees = [("now", REPO)]
    scratch = None
    if args.before:
        scratch = tempfile.TemporaryDirectory()
        before = Path(scratch.name) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q",
                        str(before), args.before], check=True)  # fmt: skip
        trees.insert(0, (args.before, before))
    try:
        print(
            "| config | revision | jobs | generation jobs (extract / solutions / eval) | "
            "output files per job | GPUs held by them | GPU-h loading weights |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for config in args.configs:
            path = REPO / config
            if not path.exists():
                continue
            for name, tree in trees:
                s = summary(planned(tree, path), args.load_minutes)
                print(
                    f"| {config} | {name} | {s['jobs']} | {s['starts']} ({s['per_rule']}) | "
                    f"{s['files']:.1f} | {s['gpus']} | {s['gpu_hours']:.1f} |"
                )
        print(f"\nGPU-h loading weights: starts x GPUs x {args.load_minutes:g} min per start.")
    finally:
        if scratch is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(Path(scratch.name) / "before")], check=False)  # fmt: skip
            scratch.cleanup()


if __name__ == "__main__":
    main()
