"""Starts a training module with one process per GPU, on one node or several under Slurm.

    python -m distillery.launch --gpus 8 --nodes 2 -- distillery.train_sft --data ...

- one device (``--gpus`` 0 or 1, one node): the module itself, in this process;
- several GPUs on one node: ``torchrun --standalone``, one process per GPU;
- several nodes: only inside a Slurm job of that many nodes. Run from the job's batch script,
  it starts itself once per node with ``srun`` (one task per node); each of those starts
  torchrun with the node's rank and the first node as the rendezvous. ``--kill-on-bad-exit``
  takes every node down when one fails, so a failed node does not leave the others waiting.

Each step replaces the process before it (``exec``), so a signal sent to the job (preemption,
``scancel``, Ctrl-C) reaches the launcher that owns the workers.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import subprocess
import sys

from distillery.cli import configure_logging
from distillery.errors import DistilleryError

logger = logging.getLogger(__name__)

# set in the srun task of each node, to the job's id: that task starts torchrun, not srun again
PER_NODE = "DISTILLERY_LAUNCH_JOB"
# rendezvous ports: one per job, so jobs that share a first node do not collide
PORT_BASE, PORT_SPAN = 29500, 10000


def command(gpus: int, nodes: int, module: str, args: list[str], env: dict) -> list[str]:
    """The command that runs next (see the module's docstring).

    Example:
        >>> command(1, 1, "m", ["--x"], {})[1:]
        ['-m', 'm', '--x']
        >>> command(4, 1, "m", [], {})[1:]
        ['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=4', '--module', 'm']
    """
    python = sys.executable
    if nodes < 1 or gpus < 0:
        raise DistilleryError(f"--nodes must be >= 1 and --gpus >= 0, got {nodes} and {gpus}")
    per_node = max(1, gpus)
    if nodes == 1:
        if per_node == 1:
            return [python, "-m", module, *args]
        return [
            python, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={per_node}", "--module", module, *args,
        ]  # fmt: skip
    job = env.get("SLURM_JOB_ID")
    if not job:
        raise DistilleryError(
            f"training.nodes is {nodes}: several nodes train inside a Slurm job (run the workflow "
            "with --profile profiles/slurm), or set training.nodes: 1"
        )
    allocated = int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 0)
    if allocated < nodes:
        count = allocated or "an unknown number of"
        raise DistilleryError(
            f"training.nodes is {nodes} but Slurm job {job} has {count} node(s); submit it "
            f"with --nodes={nodes} (the workflow's slurm profile does) or lower training.nodes"
        )
    if env.get(PER_NODE) != job:
        return [
            "srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1",
            "--kill-on-bad-exit=1", "--export=ALL",
            python, "-m", "distillery.launch", f"--gpus={gpus}", f"--nodes={nodes}", "--",
            module, *args,
        ]  # fmt: skip
    # srun starts the tasks from the first node (the batch script's), so its address is the
    # first node's as the other nodes reach it
    first = env.get("SLURM_LAUNCH_NODE_IPADDR") or first_host(env.get("SLURM_JOB_NODELIST", ""))
    if not first:
        raise DistilleryError(f"Slurm job {job}: no SLURM_LAUNCH_NODE_IPADDR or nodelist")
    return [
        python, "-m", "torch.distributed.run", f"--nnodes={nodes}",
        f"--node-rank={env['SLURM_NODEID']}", f"--nproc-per-node={per_node}",
        f"--master-addr={first}", f"--master-port={PORT_BASE + int(job) % PORT_SPAN}",
        "--module", module, *args,
    ]  # fmt: skip


def job_nodes(job: str) -> str | None:
    """The node count of a Slurm job, from scontrol: Snakemake's job step removes the SLURM_*
    variables but the job id from the environment of the commands it runs."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\bNumNodes=(\d+)", out)
    return match.group(1) if match else None


def first_host(nodelist: str) -> str:
    """The first host of a Slurm hostlist.

    Example:
        >>> first_host("gpu[007-010,12],login1"), first_host("node3,node4"), first_host("")
        ('gpu007', 'node3', '')
    """
    match = re.match(r"([^,\[]+)(?:\[([^\],-]+))?", nodelist)
    if not match:
        return ""
    return match.group(1) + (match.group(2) or "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m distillery.launch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per node (0: CPU)")
    parser.add_argument("--nodes", type=int, default=1, help="nodes (more than 1: Slurm)")
    parser.add_argument("module", help="the Python module to run, then its arguments")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    configure_logging()
    env = dict(os.environ)
    if options.nodes > 1 and env.get("SLURM_JOB_ID") and not env.get("SLURM_JOB_NUM_NODES"):
        env["SLURM_JOB_NUM_NODES"] = job_nodes(env["SLURM_JOB_ID"]) or ""
    try:
        run = command(options.gpus, options.nodes, options.module, options.args, env)
    except DistilleryError as error:
        logger.error("%s", error)
        sys.exit(1)
    on_node = env.get(PER_NODE) == env.get("SLURM_JOB_ID") and run[0] != "srun"
    if run[0] == "srun":
        env[PER_NODE] = env["SLURM_JOB_ID"]
    logger.info("%s%s", f"node {env['SLURM_NODEID']}: " if on_node else "", shlex.join(run))
    sys.stdout.flush()
    os.execvpe(run[0], run, env)


if __name__ == "__main__":
    main()
