"""What each rule asks the scheduler for under a profile and a config: jobs, threads, memory,
GPUs, wall time, image and conda environment, as a Markdown table (README's cluster section).
Also times the dry run, which is what Snakemake spends before submitting anything.

Usage: python scripts/rule_requests.py [--profile profiles/slurm]
                                       [--configfile config/recipes/openmathreasoning.yaml]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def dry_run(profile: str, configfile: str, workdir: Path) -> tuple[str, float]:
    command = [
        SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--profile", str(REPO / profile), "-n", "--forceall",
        "--configfile", str(REPO / configfile),
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])
    return result.stdout + result.stderr, elapsed


def jobs_by_rule(text: str) -> dict[str, dict]:
    """The first job of each rule in a dry run's listing, with the rule's job count."""
    rules: dict[str, dict] = {}
    counts: Counter = Counter()
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", text):
        match = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if not match:
            continue
        name = match.group(1)
        counts[name] += 1
        if name in rules:
            continue
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        threads = re.search(r"^\s+threads: (\d+)$", block, flags=re.MULTILINE)
        fields = dict(
            item.split("=", 1) for item in (resources.group(1).split(", ") if resources else [])
        )
        rules[name] = {"threads": threads.group(1) if threads else "1", **fields}
    for name, count in counts.items():
        rules[name]["jobs"] = count
    return rules


def rule_settings(configfile: str) -> dict[str, tuple[str, str, str]]:
    """(threads, image, conda env) of every rule, from the workflow itself (a dry run caps
    threads at the local core count)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, ResourceSettings

    with SnakemakeApi() as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[REPO / configfile]),
            snakefile=REPO / "Snakefile",
            workdir=Path(tempfile.mkdtemp()),
        )
        workflow_api.dag()  # parses the Snakefile
        rules = workflow_api._workflow.rules
        return {
            rule.name: (
                str(getattr(rule.resources.get("_cores"), "value", 1)),
                _shown(rule.container_img, lambda v: str(v).removeprefix("docker://")),
                _shown(rule.conda_env, lambda v: Path(str(v)).name),
            )
            for rule in rules
        }


def _shown(value, show) -> str:
    """A rule's image or environment; one chosen per job (an LLM step's, by its server) is
    shown as such."""
    if callable(value):
        return "its server's"
    return show(value) if value else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="profiles/slurm")
    parser.add_argument("--configfile", default="config/recipes/openmathreasoning.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        text, elapsed = dry_run(args.profile, args.configfile, Path(tmp))
    rules = jobs_by_rule(text)
    settings = rule_settings(args.configfile)
    print(f"{args.configfile} under {args.profile}: {sum(r['jobs'] for r in rules.values())} jobs")
    print(f"dry run (DAG of every job, nothing run): {elapsed:.1f} s\n")
    print("| rule | jobs | threads | mem_mb | gpu | runtime (min) | image | conda env |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for name, job in rules.items():
        if name == "all":
            continue
        threads, image, env = settings.get(name, (job["threads"], "—", "—"))
        print(
            f"| {name} | {job['jobs']} | {threads} | {job.get('mem_mb', '—')} | "
            f"{job.get('gpu', '0')} | {job.get('runtime', '—')} | {image} | {env} |"
        )


if __name__ == "__main__":
    main()
