"""The tiny scenario through a real Slurm cluster (scripts/slurm/start-local-cluster.sh): every
rule is submitted with sbatch, GPU rules get GPUs from Slurm, training runs over two nodes where
the cluster has a partition of two, a failed job is reported with its Slurm log and a rerun
completes the rest; a request larger than the cluster fails at once.

Needs the local cluster (CI starts it); skipped otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from distillery.jsonl import read_jsonl

from ..e2e.conftest import REPO, scratch_workdir
from .test_multinode_training import PARTITION

TINY = REPO / "tests" / "scenarios" / "tiny.yaml"
PROFILE = REPO / "profiles" / "slurm-localhost"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def cluster_up() -> bool:
    if shutil.which("scontrol") is None or shutil.which("sacct") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    accounting = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True)
    return "UP" in ping.stdout and accounting.returncode == 0


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        not cluster_up(), reason="no Slurm cluster: scripts/slurm/start-local-cluster.sh"
    ),
]


def run(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    # SIGINT (not SIGTERM) makes Snakemake cancel its Slurm jobs and exit
    command = [
        "timeout", "-s", "INT", "-k", "30", str(timeout),
        SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--profile", str(PROFILE), *args,
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(command, capture_output=True, text=True, env=env)


def slurm_jobs(workdir: Path) -> dict[str, str]:
    """Slurm job id -> rule, from the per-job Slurm logs the profile keeps."""
    jobs = {}
    for log in (workdir / ".snakemake/slurm_logs").rglob("*.log"):
        rule = next(p for p in log.parts if p.startswith("rule_")).removeprefix("rule_")
        jobs[log.stem] = rule
    return jobs


def accounting(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Slurm job (or array task) id -> (state, allocated TRES), from sacct."""
    ids = ",".join(sorted({job.split("_")[0] for job in job_ids}))
    out = subprocess.run(
        ["sacct", "-X", "--parsable2", "--noheader", "-S", "now-2hours",
         "--format=JobID,State,AllocTRES", "-j", ids],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = {}
    for line in out.splitlines():
        job, state, tres = line.split("|")
        rows[job] = (state, tres)
    return rows


def test_tiny_scenario_through_slurm(tmp_path, fake_vllm):
    workdir = scratch_workdir(tmp_path)
    config = yaml.safe_load(TINY.read_text())
    # evaluation jobs must get a GPU from Slurm; their server is the stub behind a stand-in
    # interpreter (an hf job asking for a GPU would need a real one)
    config["evaluation"]["server"] = {"type": "vllm", "gpus": 1, "python": str(fake_vllm)}
    multinode = []
    if PARTITION:  # one training job of two nodes: srun starts torchrun on each
        config["training"]["nodes"] = 2
        multinode = ["--set-resources", f"train_sft:slurm_partition={PARTITION}"]
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    # first run: the evaluation server's environment is broken (its interpreter stand-in dies
    # at start, as a server on a bad node would), so the evaluation jobs fail
    broken = workdir / "broken-python"
    broken.write_text("#!/bin/sh\necho 'stand-in: no usable GPU on this node' >&2\nexit 3\n")
    broken.chmod(0o755)
    config["evaluation"]["server"]["python"] = str(broken)
    broken_config = workdir / "broken.yaml"
    broken_config.write_text(yaml.safe_dump(config))

    first = run(workdir, "--configfile", str(broken_config), *multinode)
    output = first.stdout + first.stderr
    assert first.returncode != 0
    assert re.search(r"Error in rule generate_eval", output), output[-3000:]
    assert "slurm_logs/rule_generate_eval" in output  # where the failed job's Slurm log is
    # the stage's own one-line error, from the failed job's log
    assert "the server exited with status 3 before it was ready" in output
    first_jobs = slurm_jobs(workdir)
    assert {"gguf_to_hf", "train_sft", "prepare_sft_data"} <= set(first_jobs.values())
    if PARTITION:
        train = next(job for job, rule in first_jobs.items() if rule == "train_sft")
        state, tres = accounting([train])[train]
        assert state == "COMPLETED" and "node=2" in tres, (state, tres)
        log = (workdir / "logs" / "train_sft.log").read_text()
        assert "node 0: " in log and "node 1: " in log

    second = run(workdir, "--configfile", str(configfile), *multinode)
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]

    jobs = slurm_jobs(workdir)
    rerun = {job: rule for job, rule in jobs.items() if job not in first_jobs}
    # the rerun did only what had failed or had not run yet
    assert "train_sft" not in rerun.values() and "gguf_to_hf" not in rerun.values()
    assert "generate_eval" in rerun.values() and "grade" in rerun.values()
    states = accounting(list(rerun))
    for job, rule in rerun.items():
        state, tres = states.get(job, states.get(job.split("_")[0], ("missing", "")))
        assert state == "COMPLETED", (job, rule, state)
        if rule == "generate_eval":
            assert "gres/gpu=1" in tres, (job, tres)
        else:
            assert "gres/gpu" not in tres, (job, rule, tres)

    # the same outputs and contracts as a local run
    results = workdir / "results"
    for run_name in ("baseline", "trained", "trained-nothink"):
        rows = read_jsonl(results / f"evals/{run_name}/eval-results/demo/output-rs0.jsonl")
        assert {"generation", "predicted_answer", "symbolic_correct"} <= set(rows[0])
        assert (results / f"evals/{run_name}/eval-results/demo/metrics.json").is_file()
    assert (results / "comparison.md").is_file()


def test_more_gpus_than_the_cluster_has_fails_at_submission(tmp_path):
    workdir = scratch_workdir(tmp_path)
    config = yaml.safe_load(TINY.read_text())
    config["evaluation"]["server"]["gpus"] = 3  # the cluster has 2
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    target = "results/evals/baseline/eval-results/demo/metrics.json"
    started = time.time()
    result = run(workdir, target, "--configfile", str(configfile), timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode not in (0, 124), output[-3000:]  # failed, and not by the timeout
    assert "Requested node configuration is not available" in output
    assert time.time() - started < 300
