"""distillery.launch's commands: one process, torchrun on one node, srun then torchrun per node
under Slurm (run for real on a two-node cluster in tests/slurm/test_multinode_training.py)."""

import sys

import pytest

from distillery.errors import DistilleryError
from distillery.launch import PER_NODE, command, first_host

JOB = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "gpu[07-08]"}


def test_one_device_runs_the_module_in_place():
    assert command(0, 1, "m", ["--a", "1"], {}) == [sys.executable, "-m", "m", "--a", "1"]
    assert command(1, 1, "m", [], JOB) == [sys.executable, "-m", "m"]


def test_one_node_starts_a_process_per_gpu():
    run = command(8, 1, "m", ["--a"], {})
    assert run[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=8", "--module", "m", "--a"
    ]  # fmt: skip


def test_several_nodes_srun_one_task_per_node_then_torchrun_on_each():
    run = command(4, 2, "m", ["--a"], JOB)
    assert run[:5] == [
        "srun",
        "--nodes=2",
        "--ntasks=2",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
    ]
    assert run[-6:] == ["distillery.launch", "--gpus=4", "--nodes=2", "--", "m", "--a"]

    task = {**JOB, PER_NODE: "4242", "SLURM_NODEID": "1", "SLURM_LAUNCH_NODE_IPADDR": "10.1.2.3"}
    run = command(4, 2, "m", ["--a"], task)
    assert run[1:3] == ["-m", "torch.distributed.run"]
    assert "--nnodes=2" in run and "--node-rank=1" in run and "--nproc-per-node=4" in run
    assert "--master-addr=10.1.2.3" in run and "--master-port=33742" in run
    assert run[-3:] == ["--module", "m", "--a"]
    # without srun's address the first host of the allocation is the rendezvous
    del task["SLURM_LAUNCH_NODE_IPADDR"]
    assert "--master-addr=gpu07" in command(4, 2, "m", [], task)
    # a marker from another job (a nested allocation) does not count as this job's task
    assert command(4, 2, "m", [], {**task, PER_NODE: "1"})[0] == "srun"


def test_several_nodes_outside_slurm_or_a_smaller_job_are_errors():
    with pytest.raises(DistilleryError, match="several nodes train inside a Slurm job"):
        command(8, 2, "m", [], {})
    with pytest.raises(DistilleryError, match="Slurm job 4242 has 2 node"):
        command(8, 4, "m", [], JOB)
    with pytest.raises(DistilleryError, match="--nodes must be >= 1"):
        command(8, 0, "m", [], {})


def test_first_host_of_a_slurm_hostlist():
    assert first_host("gpu[007-010,12],login1") == "gpu007"
    assert first_host("node3,node4") == "node3"
    assert first_host("a-b") == "a-b"
    assert first_host("") == ""
