# Config validation and the plan the rules read; the logic lives in src/distillery.
import os
import sys

SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
# Jobs run `python -m distillery.<stage>`: this makes the package importable in any job
# environment (conda, container, cluster node), installed there or not.
JOB_PYTHONPATH = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)

from snakemake.exceptions import IncompleteCheckpointException

from distillery.planning import workflow as wf

shell.prefix(wf.shell_prefix(JOB_PYTHONPATH))
from distillery.planning.config_check import validate_config
from distillery.generation.reuse import REGENERATE_ENV
from distillery.planning.plan import Plan
from distillery.reports.provenance import config_hash
from distillery.nemo_skills_prompts import COMMIT as _NEMO_SKILLS_COMMIT

# the one parse: the rules ask PLAN (distillery.planning.plan), which reads settings from the
# typed config (defaults stated in the settings models); command lines and params keep the
# config's own blocks, so their text, and what reruns, is what the config says
CFG = validate_config(
    config,
    workflow.source_path("../schemas/config.schema.yaml"),
    workflow_dir=workflow.basedir,
)


# nemo-skills:<name> prompts are fetched at this commit (distillery.nemo_skills_prompts)
NEMO_SKILLS_COMMIT = _NEMO_SKILLS_COMMIT[:7]
wf.export_wandb(CFG.wandb)
# A generation job reuses the samples of files an earlier run generated with the same inputs
# and settings (distillery.generation.reuse); a forced run generates them again. Only the
# invocation the user started decides: a cluster job's own Snakemake is always forced.
# Asking for one benchmark's files of a run (its metrics, say) generates that benchmark only.
if not (workflow.remote_exec or workflow.subprocess_exec):
    _command = wf.snakemake_command(sys.argv[1:])
    if wf.forces_generation(_command):
        os.environ[REGENERATE_ENV] = "1"
    _targeted = wf.targeted_benchmarks(getattr(_command, "targets", None))
    if _targeted:
        os.environ[wf.TARGET_BENCHMARKS_ENV] = ",".join(_targeted)
    else:
        os.environ.pop(wf.TARGET_BENCHMARKS_ENV, None)
PLAN = Plan(config, CFG, workflow.basedir, os.environ.get(wf.TARGET_BENCHMARKS_ENV))
SOLUTION_SEEDS = PLAN.solution_seeds
SOLUTION_CHUNKS = PLAN.solution_chunk_ids
EVAL_CHUNKS = PLAN.eval_chunk_ids
CONFIG_HASH = config_hash(config)


def waiting_for(generating, chunks, **wildcards):
    """The done files of the jobs of the checkpoint ``generating`` (one per chunk) that have not
    run: an input function that returns them makes its job wait for all of them (not one at a
    time) and is asked again after; nothing once they ran."""
    waiting = []
    for chunk in chunks:
        try:
            generating.get(chunk=chunk, **wildcards)
        except IncompleteCheckpointException as incomplete:
            waiting.append(incomplete.targetfile)
    return waiting


def eval_chunks(wildcards):
    waiting = after_eval_jobs(wildcards)
    return waiting or wf.generated(PLAN.eval_chunks(wildcards), "generate_eval")


def after_eval_jobs(wildcards):
    """Nothing, once the run's generation jobs ran: a job with this input is decided again
    then, by the files they changed, not by the jobs having run."""
    return waiting_for(checkpoints.generate_eval, EVAL_CHUNKS, run=wildcards.run)


def solution_chunks(wildcards):
    waiting = waiting_for(checkpoints.generate_solutions, SOLUTION_CHUNKS)
    return waiting or wf.generated(PLAN.solution_chunks(wildcards), "generate_solutions")


wildcard_constraints:
    seed=r"\d+",
    chunk=r"\d+",
    run=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    bench=r"[A-Za-z0-9][A-Za-z0-9._-]*",
