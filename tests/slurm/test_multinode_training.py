"""Training over two nodes of a real Slurm cluster: `distillery.launch` in a two-node batch job
starts one task per node with srun, each node's torchrun joins the first node's rendezvous, and
the run trains as one (CPU processes, gloo). Needs a cluster of two or more nodes
(`SLURM_NODES=2 scripts/slurm/start-local-cluster.sh`, as CI starts it); skipped otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from ..conftest import write_jsonl
from ..unit.test_train_sft import records
from ..unit.test_train_sft_processes import source_env, train_args


def partition_of_two_nodes() -> str | None:
    """A partition with two or more idle nodes, if the cluster has one."""
    if shutil.which("sinfo") is None:
        return None
    out = subprocess.run(["sinfo", "-h", "-o", "%P %D %t"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        partition, count, state = line.split()
        if state == "idle" and int(count) >= 2:
            return partition.rstrip("*")
    return None


PARTITION = partition_of_two_nodes()
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(PARTITION is None, reason="needs a Slurm partition of two idle nodes"),
]


def test_training_over_two_slurm_nodes(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "sft.jsonl", records(16))
    train = [
        sys.executable, "-m", "distillery.launch", "--nodes", "2", "--gpus", "0", "--",
        *train_args(tmp_path, tiny_model_dir, "--max-steps", "3", "--learning-rate", "1e-3"),
    ]  # fmt: skip
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\n{subprocess.list2cmdline(train)}\n")
    env = source_env()
    log = tmp_path / "job.log"
    submit = subprocess.run(
        ["sbatch", "--wait", f"--partition={PARTITION}", "--nodes=2", "--ntasks=2", "--mem=2000",
         "-t", "10", f"--output={log}", f"--chdir={tmp_path}", str(script)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    text = log.read_text() if log.exists() else ""
    assert submit.returncode == 0, submit.stderr + text[-4000:]
    # one srun task per node, each starting torchrun with its node's rank
    assert "srun --nodes=2 --ntasks=2 --ntasks-per-node=1" in text
    assert "node 0: " in text and "node 1: " in text
    assert "--node-rank=0" in text and "--node-rank=1" in text
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 3
    assert text.count("trained 3 steps") == 1  # the first process of the first node writes
    assert (tmp_path / "model" / "model.safetensors").is_file()
