# Config validation and the small helpers rules use; the logic lives in src/distillery.
import json
import os
import sys

SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
# Jobs run `python -m distillery.<stage>`: this makes the package importable in any job
# environment (conda, container, cluster node), installed there or not.
JOB_PYTHONPATH = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)

from distillery.planning import workflow as wf

shell.prefix(wf.shell_prefix(JOB_PYTHONPATH))
from distillery.planning.config_check import validate_config
from distillery.generation.reuse import REGENERATE_ENV
from distillery.settings.base import setting
from distillery.settings.generation import Server
from distillery.settings.steps import Step
from distillery.reports.provenance import config_hash
from distillery.nemo_skills_prompts import COMMIT as _NEMO_SKILLS_COMMIT

# the one parse: rules read settings from CFG (defaults stated in the settings models); command
# lines and params keep the config's own blocks, so their text, and what reruns, is unchanged
CFG = validate_config(
    config,
    workflow.source_path("../schemas/config.schema.yaml"),
    workflow_dir=workflow.basedir,
)


def get_prompt(stage):
    return wf.resource_path(config[stage]["prompt"], workflow.basedir)


EVAL = config["evaluation"]
SOLUTION_SEEDS = wf.seeds(CFG.solutions.seeds)
SOLUTION_CHUNKS = list(range(CFG.solutions.chunks))
EVAL_CHUNKS = list(range(CFG.evaluation.chunks))
GRADING = config.get("grading", {})
# nemo-skills:<name> prompts are fetched at this commit (distillery.nemo_skills_prompts)
NEMO_SKILLS_COMMIT = _NEMO_SKILLS_COMMIT[:7]
WANDB = config.get("wandb") or {}
wf.export_wandb(WANDB)
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
EVAL_GENERATED = wf.generated_benchmarks(config, os.environ.get(wf.TARGET_BENCHMARKS_ENV))
CONFIG_HASH = config_hash(config)


wildcard_constraints:
    seed=r"\d+",
    chunk=r"\d+",
    run=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    bench=r"[A-Za-z0-9][A-Za-z0-9._-]*",


def get_gguf(wildcards):
    return wf.gguf_file(config["models"][wildcards.model])


def get_model_dir(name):
    return wf.model_dir(config, name)


def get_model_param(stage):
    """The stage's --model: its model directory input, or the external endpoint's model name."""

    def get_model(wildcards, input):
        if input.model:
            return input.model
        return config[stage]["server"]["model"]

    return get_model


def get_eval_model_param(wildcards, input):
    return input.model if input.model else wf.run_model(config, wildcards.run)


def get_eval_model_inputs(wildcards):
    return wf.stage_model_inputs(config, "evaluation", wf.run_model(config, wildcards.run))


def get_eval_seed_files(wildcards):
    return wf.eval_summary_files(config, wildcards.run, wildcards.bench)


def get_eval_chunks(wildcards):
    return expand(
        "results/evals/{run}/generations/{bench}/output-rs{seed}_chunk_{chunk}.jsonl",
        run=wildcards.run,
        bench=wildcards.bench,
        seed=wildcards.seed,
        chunk=EVAL_CHUNKS,
    )


def get_grading_mode(wildcards):
    return wf.benchmark_grading(config, wildcards.bench)


def get_run_max_samples(wildcards):
    # a run overrides its reasoning parsing, system prompt and sampling, never max_samples
    return CFG.evaluation.max_samples


def get_eval_generation_args(wildcards):
    return wf.block_json(wf.run_block(config, wildcards.run))


def get_solution_work(wildcards, input):
    work = wf.solution_work(config, wildcards.chunk, input.data, input.prompt)
    return json.dumps(work)


def get_eval_benchmark_files(wildcards):
    return [f"results/benchmarks/{bench}/test.jsonl" for bench in EVAL_GENERATED]


def get_eval_prompts(wildcards):
    return [
        wf.resource_path(wf.run_prompt(config, wildcards.run, bench), workflow.basedir)
        for bench in EVAL_GENERATED
    ]


def get_eval_work(wildcards, input):
    work = wf.eval_work(
        config,
        wildcards.run,
        wildcards.chunk,
        list(input.data),
        list(input.prompts),
        EVAL_GENERATED,
    )
    return json.dumps(work)


def get_benchmark_file(wildcards):
    path = config["benchmarks"][wildcards.bench].get("path")
    return [path] if path else []


def get_comparison_inputs():
    return [path for _, path in wf.comparison_entries(config)]


def get_benchmark_block(wildcards):
    return wf.block_json(wf.benchmark_block(config, wildcards.bench))


def get_model_dtype(wildcards):
    return CFG.models[wildcards.model].dtype


def get_comparison_entries(wildcards):
    return [f"{run}={path}" for run, path in wf.comparison_entries(config)]


def get_run_metrics(wildcards):
    return [
        f"results/evals/{wildcards.run}/eval-results/{bench}/metrics.json"
        for bench in EVAL["benchmarks"]
    ]


def get_run_graded_files(wildcards):
    return [
        f"results/evals/{wildcards.run}/eval-results/{bench}/output-rs{seed}.jsonl"
        for bench in EVAL["benchmarks"]
        for seed in wf.eval_seeds(config, bench)
    ]


def get_final_outputs():
    outputs = ["results/comparison.md"]
    if CFG.wandb.mode != "disabled":
        outputs += expand("results/evals/{run}/wandb-run.json", run=EVAL["runs"])
        if wf.solutions_generated(config):
            outputs.append("results/sdg/wandb-run.json")
    return outputs


def get_sdg_generations(wildcards, input):
    return [f"problem_extraction={input.problems}"] + [
        f"solutions={path}" for path in input.solutions
    ]


def get_contamination_entries(wildcards, input):
    if not input.benchmarks:
        return []
    names = wf.contamination_benchmarks(config)
    pairs = [f"{n}={p}" for n, p in zip(names, input.benchmarks)]
    return ["--contamination-benchmarks", *pairs]


def get_sft_inputs(wildcards):
    if wf.solutions_generated(config):
        return wf.solution_files(config, SOLUTION_SEEDS)
    return ["results/data/raw-posts.jsonl"]


def get_raw_data_tokenizer(wildcards):
    name = config["raw_data"].get("tokenizer")
    return [wf.model_dir(config, name)] if name else []


def get_raw_data_tokenizer_flag(wildcards, input):
    return ["--tokenizer", input.tokenizer] if input.tokenizer else []


def get_download_options(wildcards):
    return wf.options(config["models"][wildcards.model], ["repo", "revision"])


def get_base_model_dir(wildcards):
    return wf.base_model_dir(config, wildcards.model)


def get_adapter_inputs(wildcards):
    return wf.adapter_inputs(config["models"][wildcards.model]["adapter"])


def get_model_path(wildcards):
    return config["models"][wildcards.model]["path"]


def get_model_gpus(wildcards):
    return CFG.models[wildcards.model].gpus


def get_engine_block(wildcards):
    return wf.block_json(wf.engine_block(config["models"][wildcards.model]))


def get_container(family):
    return wf.container(config, family)


def get_conda_env(family):
    """The conda environment of a rule family (envs/<family>.yaml)."""
    return f"../../envs/{family}.yaml"


def get_threads_flag(wildcards, threads):
    """TRL's stage pins torch's CPU threads; NeMo-RL sizes its own workers."""
    if wf.training_backend(config) == "nemo_rl":
        return []
    return ["--threads", threads]


# Helpers of the LLM processing steps' rules (processing.smk)


def fill(pattern, wildcards):
    """``pattern`` (a path with wildcards) for this job."""
    return pattern.format(**dict(wildcards.items()))


def get_step_block_json(area, keys):
    """The part of the step's block one half of distillery.process reads (``keys``), its
    prompt files resolved."""

    def block_json(wildcards):
        step = wf.area_step(fill(area, wildcards))
        block = wf.area_block(config, fill(area, wildcards))
        resolve = lambda path: wf.resource_path(path, workflow.basedir)
        block = wf.with_prompts(block, step, resolve)
        encoder = get_step_encoder(wildcards)
        if encoder:
            block = {**block, "embedding_model": encoder[0]}
        return wf.block_json(wf.process_block(block, keys))

    return block_json


def get_step_encoder(wildcards):
    """The contamination check's encoder directory, when it names one of ``models``."""
    if getattr(wildcards, "step", None) != "check_contamination":
        return []
    name = config["problem_processing"]["check_contamination"].get("embedding_model")
    return [wf.model_dir(config, name)] if name in config["models"] else []


def get_step_prompts(area):
    def prompts(wildcards):
        path = fill(area, wildcards)
        block = wf.area_block(config, path)
        return [
            wf.resource_path(p, workflow.basedir)
            for p in wf.step_prompts(block, wf.area_step(path))
        ]

    return prompts


def get_area_chunks(wildcards):
    return list(range(setting(wf.area_block(config, wildcards.area), Step, "chunks")))


def get_area_model_inputs(wildcards):
    block = wf.area_block(config, wildcards.area)
    if block["server"]["type"] == "openai":
        return []
    return [wf.model_dir(config, block["server"]["model"])]


def get_area_model(wildcards, input):
    if input.model:
        return input.model
    return wf.area_block(config, wildcards.area)["server"]["model"]


def get_area_work(wildcards, input, output):
    return json.dumps([{"input": input.requests, "seeds": [0], "outputs": [output.generations]}])


def get_area_family(wildcards):
    return wf.area_family(config, wildcards.area)


def get_area_gpus(wildcards):
    return int(setting(wf.area_block(config, wildcards.area)["server"], Server, "gpus"))


def get_contamination_check_benchmarks(wildcards):
    if wildcards.step != "check_contamination":
        return []
    return [f"results/benchmarks/{b}/test.jsonl" for b in wf.check_benchmarks(config)]


def get_contamination_check_entries(wildcards, input):
    pairs = zip(wf.check_benchmarks(config), input.benchmarks)
    return [arg for name, path in pairs for arg in ("--benchmarks", f"{name}={path}")]
