"""Helpers the Snakemake rules use to turn config into paths and command-line flags.

Kept here, not in ``common.smk``, so they are unit-tested.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from pydantic import BaseModel

from distillery.errors import DistilleryError
from distillery.generation import backends
from distillery.processing.steps import PROBLEM_STEPS, STEPS
from distillery.settings.evaluation import Run
from distillery.settings.generation import Generation, Serving
from distillery.settings.model_entries import TRAINED, ModelEntry
from distillery.settings.steps import Step
from distillery.settings.workflow import WANDB_ENV, Grading, Wandb, WorkflowConfig

RESULTS = "results"
TRAINED_MODEL_DIR = f"{RESULTS}/train/model"
TRAINED_ADAPTER_DIR = f"{RESULTS}/train/adapter"


def shell_prefix(pythonpath: str) -> str:
    """What every rule's shell command starts with. ``shell.prefix`` replaces Snakemake's own
    ``set -euo pipefail;``, so it is restated: a failing command stops the job's script.

    Example:
        >>> shell_prefix("/src dir")
        "set -euo pipefail; export PYTHONPATH='/src dir'; "
    """
    return f"set -euo pipefail; export PYTHONPATH={shlex.quote(pythonpath)}; "


def resource_path(path: str, workflow_dir: str | Path) -> str:
    """A file named in config: relative to the working directory if it exists there, else
    relative to the workflow (prompts/ ships with it), so runs from another directory work.

    A NeMo-Skills prompt (``nemo-skills:judge/math``) is the file the workflow fetches it to.

    Example:
        >>> resource_path("prompts/math.yaml", "/nonexistent")
        'prompts/math.yaml'
        >>> resource_path("nemo-skills:judge/math", "/nonexistent")
        'results/prompts/nemo-skills@0b012df/judge/math.yaml'
    """
    from distillery import nemo_skills_prompts

    if nemo_skills_prompts.is_nemo_skills(path):
        return nemo_skills_prompts.cache_path(path, RESULTS)
    if Path(path).is_absolute() or Path(path).exists():
        return path
    shipped = Path(workflow_dir) / path
    return str(shipped) if shipped.exists() else path


def model_dir(cfg: WorkflowConfig, name: str) -> str:
    """The HF model directory of a model named in config (``trained`` = the SFT output)."""
    if name == TRAINED:
        return TRAINED_MODEL_DIR
    model = cfg.models[name]
    if model.source == "path":
        return model.path
    return f"{RESULTS}/models/{name}"


def models_from(cfg: WorkflowConfig, source: str) -> list[str]:
    """Names of the models with this ``source`` (each source has its own building rule)."""
    return [n for n, m in cfg.models.items() if m.source == source]


def base_model_dir(cfg: WorkflowConfig, name: str) -> str:
    """The directory of the model a converted model (lora, trtllm, nemo) is built from."""
    return model_dir(cfg, cfg.models[name].base)


def adapter_inputs(adapter: str) -> list[str]:
    """What a merge waits for: the adapter, or the training output it is written with (the
    training rule does not declare its adapter, which only LoRA runs write).

    Example:
        >>> adapter_inputs("results/train/adapter")
        ['results/train/model']
    """
    if Path(adapter) == Path(TRAINED_ADAPTER_DIR):
        return [TRAINED_MODEL_DIR]
    return [adapter]


def engine_block(model: dict) -> dict:
    """The ``engine`` block of a ``source: trtllm`` model (the build's limits), as the raw
    model entry writes it: the build's ``--config-json`` is the config's own text."""
    return dict(model.get("engine", {}))


def name_pattern(names: list[str]) -> str:
    """A wildcard constraint matching exactly ``names`` (nothing if empty)."""
    return "|".join(map(re.escape, names)) or "(?!)"


def raw_data_block(config: dict) -> dict:
    """The ``raw_data`` block as the stage takes it: its ``tokenizer`` names a model, whose
    directory the rule hands over as ``--tokenizer``."""
    return {k: v for k, v in config["raw_data"].items() if k != "tokenizer"}


def gguf_file(model: ModelEntry) -> str:
    """The GGUF file of a ``source: gguf`` model: a path, or a file in an installed package."""
    if model.path is not None:
        return model.path
    from distillery.models.files import find_packaged_file

    return str(find_packaged_file(model.package, model.file))


def stage_fields(block: dict, model) -> dict:
    """The keys of a config block that its stage's settings model takes (the rest, such as a
    stage's prompt, seeds and runs or the training model's name, are the rule's business)."""
    return {key: value for key, value in block.items() if key in model.model_fields}


def generation_block(stage: dict) -> dict:
    """What ``distillery.generate`` takes from a stage's block.

    Example:
        >>> generation_block({"prompt": "p.yaml", "seeds": 4, "server": {"type": "hf"}})
        {'server': {'type': 'hf'}}
    """
    return stage_fields(stage, Generation)


def block_json(block: dict) -> str:
    """A config block as the one JSON argument a rule hands its stage (keys sorted, so the
    same settings are the same parameter and a changed one reruns the job)."""
    return json.dumps(block, sort_keys=True)


def is_external(stage: Generation) -> bool:
    """The stage talks to an existing endpoint; its model is a name, not a directory."""
    return stage.server is not None and stage.server.type == "openai"


def export_wandb(wandb: Wandb, environ=os.environ) -> None:
    """Puts the ``wandb`` block where training finds it: the environment of every job (this
    process's, which jobs inherit, locally and through Slurm), not a rule parameter, so that a
    changed W&B setting never reruns training (``distillery.train_sft.wandb_report_to``). The
    keys the config sets, so that training fills in the rest from the same defaults.

    Example:
        >>> env = {}
        >>> export_wandb(Wandb(mode="offline"), env); env[WANDB_ENV]
        '{"mode": "offline", "dir": "results"}'
    """
    if wandb.mode == "disabled":
        environ.pop(WANDB_ENV, None)
    else:
        environ[WANDB_ENV] = json.dumps({**wandb.model_dump(exclude_unset=True), "dir": RESULTS})


GENERATION_RULES = ("extract_problems", "generate_solutions", "generate_eval", "process_generate")


def snakemake_command(argv: list[str]):
    """The Snakemake command line the user ran (its targets and forcing flags), read with
    Snakemake's own parser: the Snakefile is read before Snakemake hands its DAG settings to
    the workflow. None when ``argv`` is not a Snakemake command line, or names neither a
    forcing flag nor a benchmark's file (then building Snakemake's parser is not worth its
    fraction of a second at every start).

    Example:
        >>> snakemake_command(["-n", "--cores", "2"]) is None
        True
    """
    if not any(_may_matter(arg) for arg in argv):
        return None
    import contextlib
    import io

    from snakemake.cli import get_argument_parser

    with contextlib.redirect_stderr(io.StringIO()):
        try:
            args, _ = get_argument_parser().parse_known_args(argv)
        except SystemExit:
            return None
    return args


_FORCING = ("--forceall", "--force", "--forcerun")


def _may_matter(arg: str) -> bool:
    """Whether a command-line word may force generation or name a benchmark's file."""
    if arg.startswith("--"):
        return arg.split("=")[0] in _FORCING
    if arg.startswith("-"):
        return any(flag in arg[1:] for flag in "FfR")  # -F, -f, -R, combined like -nF
    return _BENCH_TARGET.match(arg) is not None


def forces_generation(args) -> bool:
    """Whether Snakemake was asked to force jobs that may generate (``--forceall``,
    ``--force`` on targets, ``--forcerun`` naming a generation rule): then generation jobs
    reuse no earlier samples.

    Example:
        >>> forces_generation(snakemake_command(["-R", "grade"]))
        False
        >>> forces_generation(snakemake_command(["-R", "generate_eval", "--", "all"]))
        True
    """
    if args is None:
        return False
    forced = set(args.forcerun or ())
    return bool(args.forceall or args.force or forced & set(GENERATION_RULES))


def stage_model(cfg: WorkflowConfig, stage: str, name: str | None = None) -> str:
    """What the stage's ``--model`` is: a model directory, or an external endpoint's model name."""
    block = getattr(cfg, stage)
    name = name or block.server.model
    return name if is_external(block) else model_dir(cfg, name)


def stage_model_inputs(cfg: WorkflowConfig, stage: str, name: str | None = None) -> list[str]:
    """The model directory as a rule input (so a rebuilt model reruns the stage), if any."""
    return [] if is_external(getattr(cfg, stage)) else [stage_model(cfg, stage, name)]


def options(block: BaseModel, keys: list[str]) -> list[str]:
    """``--key value`` arguments for the given keys of a block that is not a stage's own
    (a model entry's repo, the evaluation's max_seq_len), for a rule's ``{params.x:q}``. Only
    the keys the config sets: one left out is the stage's own default, and a command line that
    named it would rerun the job when the default changes.

    Example:
        >>> options(ModelEntry(source="hf", repo="Qwen/Qwen2.5-7B"), ["repo", "revision"])
        ['--repo', 'Qwen/Qwen2.5-7B']
    """
    values = {key: getattr(block, key) for key in keys if key in block.model_fields_set}
    return [arg for key, value in values.items() if value is not None
            for arg in ("--" + key.replace("_", "-"), str(value))]  # fmt: skip


def extraction_options(grading: Grading) -> list[str]:
    """The ``grading`` settings that decide a math answer, as the flags of the stages that
    label solutions (``--extract-regex``, ``--regex-fallback``).

    Example:
        >>> extraction_options(Grading(extract_regex="Answer: (.+)", regex_fallback=True))
        ['--extract-regex', 'Answer: (.+)', '--regex-fallback']
    """
    flags = options(grading, ["extract_regex"])
    return flags + (["--regex-fallback"] if grading.regex_fallback else [])


def training_block(config: dict) -> dict:
    """What the training stage takes from the ``training`` block (the model, nodes, backend
    and evaluation switch are the rule's business).

    Example:
        >>> training_block({"training": {"model": "m", "method": "lora", "lora": {"r": 8}}})
        {'method': 'lora', 'lora': {'r': 8}}
    """
    from distillery.settings.training import TrainingSettings

    return stage_fields(config["training"], TrainingSettings)


def seeds(count: int) -> list[int]:
    """Seeds ``0..count-1``, as NeMo-Skills numbers ``output-rs{seed}``."""
    return list(range(count))


def comparison_entries(cfg: WorkflowConfig) -> list[tuple[str, str]]:
    """(run, metrics.json) of every run and benchmark, for the comparison table."""
    return [
        (run, eval_metrics(run, bench))
        for run in cfg.evaluation.runs
        for bench in cfg.evaluation.benchmarks
    ]


def eval_seeds(cfg: WorkflowConfig, bench: str) -> list[int]:
    """The seeds of a benchmark's evaluation: ``evaluation.benchmarks.<bench>`` samples, or, when
    that is left empty, the number its definition recommends (aime24: 8)."""
    count = cfg.evaluation.benchmarks[bench]
    if count is None:
        count = benchmark_definition(cfg, bench).seeds
    return seeds(count)


def eval_metrics_targets(cfg: WorkflowConfig) -> list[str]:
    """Every ``metrics.json`` the evaluation produces: one per run and benchmark."""
    return [path for _, path in comparison_entries(cfg)]


def sft_block(config: dict) -> dict:
    """What ``distillery.prepare_sft_data`` takes from the ``sft_data`` block (the prompt file
    is the rule's input)."""
    from distillery.settings.data import SftSelection

    return stage_fields(config["sft_data"], SftSelection)


def benchmark_definition(cfg: WorkflowConfig, bench: str):
    """The definition behind ``benchmarks.<bench>``."""
    from distillery.benchmarks import load_definition

    return load_definition(cfg.benchmark_source(bench))


def benchmark_block(config: dict, cfg: WorkflowConfig, bench: str) -> dict:
    """``benchmarks.<bench>`` as ``distillery.prepare_benchmark`` takes it: the config's own
    block (the job's command line is the text the user wrote), its ``source`` (the definition)
    filled in when left out."""
    return {"source": cfg.benchmark_source(bench), **config["benchmarks"][bench]}


def benchmark_grading(cfg: WorkflowConfig, bench: str) -> str:
    return cfg.benchmarks[bench].grading or benchmark_definition(cfg, bench).grading


def benchmark_prompt(cfg: WorkflowConfig, bench: str) -> str:
    """The evaluation prompt: the benchmark's own, its definition's, or the evaluation's."""
    return prompt_source(cfg, None, bench)[1]


def run_prompt(cfg: WorkflowConfig, run: str, bench: str) -> str:
    """A run's prompt file on one benchmark: the run's own, else the benchmark's
    (:func:`benchmark_prompt`)."""
    return prompt_source(cfg, run, bench)[1]


def prompt_source(cfg: WorkflowConfig, run: str | None, bench: str) -> tuple[str, str]:
    """(where it is set, prompt file) of a run's (or, with no run, any run's) prompt on a
    benchmark: the run's ``prompt``, the benchmark's, its definition's, or the evaluation's."""
    entry = run_entry(cfg, run) if run is not None else None
    if entry is not None and entry.prompt:
        return f"evaluation.runs.{run}.prompt", entry.prompt
    block = cfg.benchmarks[bench]
    if block.prompt:
        return f"benchmarks.{bench}.prompt", block.prompt
    definition = benchmark_definition(cfg, bench)
    if definition.prompt:
        return f"benchmark definition {definition.name}'s prompt", definition.prompt
    return "evaluation.prompt", cfg.evaluation.prompt


def run_entry(cfg: WorkflowConfig, run: str) -> Run | None:
    """``evaluation.runs.<run>`` when it overrides settings; None when it only names a model."""
    entry = cfg.evaluation.runs[run]
    return None if isinstance(entry, str) else entry


def run_model(cfg: WorkflowConfig, run: str) -> str:
    """The model name of an evaluation run (``runs.<run>`` is a name or ``{model: ...}``)."""
    entry = run_entry(cfg, run)
    return cfg.evaluation.runs[run] if entry is None else entry.model


def _sets(block: BaseModel | None, key: str) -> bool:
    """Whether the config sets ``key`` in a typed block (not its default)."""
    return block is not None and key in block.model_fields_set


def run_block(config: dict, cfg: WorkflowConfig, run: str) -> dict:
    """The evaluation's generation settings for one run, all its benchmarks: the run's own
    ``parse_reasoning``, ``system`` and ``inference`` override the evaluation's. The typed run
    says what it overrides; the values are the config's own text, as the job's ``--config-json``
    is (a sampling setting written ``1`` stays ``1``, not ``1.0``)."""
    block = generation_block(config["evaluation"])
    entry = run_entry(cfg, run)
    if entry is None:
        return block
    written = config["evaluation"]["runs"][run]
    for key in ("parse_reasoning", "system"):
        if getattr(entry, key) is not None:
            block[key] = written[key]
    if entry.inference is not None:
        inference = {**block.get("inference", {}), **written["inference"]}
        if inference:
            block["inference"] = inference
    return block


def bench_settings(cfg: WorkflowConfig, run: str, bench: str) -> dict:
    """What one benchmark changes in a run's settings: its definition's generation length,
    when neither the evaluation nor the run sets ``max_tokens``."""
    entry = run_entry(cfg, run)
    run_inference = entry.inference if entry is not None else None
    if _sets(cfg.evaluation.inference, "max_tokens") or _sets(run_inference, "max_tokens"):
        return {}
    default = benchmark_definition(cfg, bench).max_tokens
    return {"inference": {"max_tokens": default}} if default else {}


def eval_block(config: dict, cfg: WorkflowConfig, run: str, bench: str) -> dict:
    """The generation settings of one run on one benchmark (:func:`run_block` with
    :func:`bench_settings` on top)."""
    block = run_block(config, cfg, run)
    extra = bench_settings(cfg, run, bench).get("inference")
    if extra:
        block["inference"] = {**block.get("inference", {}), **extra}
    return block


EVAL_CHUNK = RESULTS + "/evals/{run}/generations/{bench}/output-rs{seed}_chunk_{chunk}.jsonl"
SOLUTION_CHUNK = RESULTS + "/sdg/solutions/output-rs{seed}_chunk_{chunk}.jsonl"
# What a generation job declares: a list of the files it finished, written last. The chunk files
# themselves are not declared, so Snakemake neither deletes nor touches those a rerun keeps: a
# file whose samples did not change keeps its modification time, and nothing after it reruns.
EVAL_DONE = RESULTS + "/evals/{run}/generations/.chunk_{chunk}.done"
SOLUTION_DONE = RESULTS + "/sdg/solutions/.chunk_{chunk}.done"


# set by the invocation the user started when every target is one benchmark's output of a run
# (a cluster job's own Snakemake reads it): the evaluation jobs generate those benchmarks only
TARGET_BENCHMARKS_ENV = "DISTILLERY_TARGET_BENCHMARKS"
_BENCH_TARGET = re.compile(
    rf"^(?:\./)?{RESULTS}/evals/[^/]+/(?:generations|eval-results|judged)/(?P<bench>[^/]+)/[^/]+$"
)


def targeted_benchmarks(targets) -> list[str] | None:
    """The benchmarks a set of Snakemake targets asks for, when every target is a file of one
    benchmark of an evaluation run; else None (a rule, a table, anything else).

    Example:
        >>> targeted_benchmarks(["results/evals/base/eval-results/aime24/metrics.json"])
        ['aime24']
        >>> targeted_benchmarks(["results/comparison.md"]) is None
        True
    """
    found = [_BENCH_TARGET.match(str(t)) for t in targets or ()]
    if not found or not all(found):
        return None
    return sorted({m["bench"] for m in found})


def generated_benchmarks(cfg: WorkflowConfig, targeted: str | None = None) -> list[str]:
    """The benchmarks an evaluation job generates: all, or those of ``targeted`` (comma
    separated, :data:`TARGET_BENCHMARKS_ENV`) that the evaluation has."""
    benches = list(cfg.evaluation.benchmarks)
    if not targeted:
        return benches
    wanted = set(targeted.split(","))
    return [b for b in benches if b in wanted] or benches


def eval_work(
    cfg: WorkflowConfig,
    run: str,
    chunk: int | str,
    data: list[str],
    prompts: list[str],
    benches: list[str] | None = None,
):
    """The work sets of one evaluation job (see ``distillery.generate --work``): per benchmark
    (of ``benches``: all by default) its test file (``data``) and prompt (``prompts``), in the
    order of the evaluation's benchmarks, its seeds and their chunk files, and what the
    benchmark changes in the run's settings."""
    work = []
    benches = list(cfg.evaluation.benchmarks) if benches is None else benches
    for bench, path, prompt in zip(benches, data, prompts, strict=True):
        bench_seeds = eval_seeds(cfg, bench)
        outputs = [
            EVAL_CHUNK.format(run=run, bench=bench, seed=seed, chunk=chunk) for seed in bench_seeds
        ]
        work.append({"input": path, "prompt": prompt, "seeds": bench_seeds, "outputs": outputs,
                     "settings": bench_settings(cfg, run, bench)})  # fmt: skip
    return work


def generated(chunks: list[tuple[str, str]], rule: str) -> list[str]:
    """The chunk files of ``chunks`` (each with the done file of the job that writes it), once
    those jobs ran; an error naming the way out when one of them is gone."""
    for chunk, done in chunks:
        if not os.path.exists(chunk):
            raise DistilleryError(
                f"{chunk} is missing, though rule {rule}'s job that writes it finished "
                f"({done}): delete that file to run the job again; it generates only what is "
                "missing"
            )
    return [chunk for chunk, _ in chunks]


def solution_work(
    solution_seeds: list[int], chunk: int | str, data: str, prompt: str
) -> list[dict]:
    """The one work set of a solution job: the extracted problems, once per seed."""
    outputs = [SOLUTION_CHUNK.format(seed=seed, chunk=chunk) for seed in solution_seeds]
    return [{"input": data, "prompt": prompt, "seeds": solution_seeds, "outputs": outputs}]


def serving(config: dict, cfg: WorkflowConfig) -> dict:
    """How ``serve_<run>`` serves a model: ``serving``, else the evaluation's own server when it
    is one the job starts, else the ``serving`` block's default. The block is the job's
    parameter, so it is the config's own text (the type filled in when left out)."""
    if cfg.serving is not None:
        return {"type": cfg.serving.type, **config["serving"]}
    server = cfg.evaluation.server
    if server.type in backends.SERVERS:
        keys = ("type", "gpus", "dtype", "python", "args", "env", "health_timeout")
        written = config["evaluation"]["server"]
        return {key: written[key] for key in keys if _sets(server, key)}
    return {"type": Serving().type}


def served_runs(cfg: WorkflowConfig) -> list[str]:
    """Evaluation runs whose model can be served (not those on an external endpoint)."""
    return [] if is_external(cfg.evaluation) else list(cfg.evaluation.runs)


def job_mem_mb(cpu_mb: int, gpus: int, per_gpu_mb: int) -> int:
    """Host memory of a job: what the CPU path needs, or, on GPUs, room for loading the weights
    that each GPU's process reads through host memory.

    Example:
        >>> job_mem_mb(3000, 0, 16000), job_mem_mb(3000, 8, 16000)
        (3000, 131000)
    """
    return cpu_mb if gpus <= 0 else cpu_mb + per_gpu_mb * gpus


def model_size_gib(cfg: WorkflowConfig, name: str, workdir: Path, seen: tuple = ()) -> float | None:
    """Weights of a model, bf16: its files on disk if they are there, else from the parameter
    count in its repository name ("Qwen2.5-14B" -> 28 GiB); None when neither tells."""
    if name == TRAINED:
        return model_size_gib(cfg, cfg.training.model, workdir, seen)
    model = cfg.models.get(name)
    if model is None or name in seen:
        return None
    directory = workdir / model_dir(cfg, name)
    if directory.is_dir():
        size = sum(p.stat().st_size for p in directory.glob("*.safetensors"))
        if size:
            return size / 1024**3
    if model.base is not None:
        return model_size_gib(cfg, model.base, workdir, (*seen, name))
    match = re.search(r"(\d+(?:\.\d+)?)[Bb](?![a-z])", model.repo or "")
    return float(match.group(1)) * 1e9 * 2 / 1024**3 if match else None


def merge_mem_mb(cfg: WorkflowConfig, name: str, floor_mb: int = 4000) -> int:
    """Host memory of a LoRA merge: the base model twice over (loaded, then saved), from its
    size on disk or the parameter count in its repository name."""
    size = model_size_gib(cfg, cfg.models[name].base, Path("."))
    return max(floor_mb, int((size or 0) * 2.5 * 1024))


# --- LLM processing steps (distillery.process) ----------------------------------------------

EXTRACTED_PROBLEMS = f"{RESULTS}/sdg/extracted-problems.jsonl"
PROCESSING = f"{RESULTS}/sdg/processing"
SOLUTION_JUDGE = f"{RESULTS}/sdg/judge"
SUMMARIES = f"{RESULTS}/sdg/summaries"
RUN_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"


# where an LLM step's requests and generations live: a problem step, the solution judge, the
# summaries, or an evaluation run's judge (each step's ``area`` in the registry)
_AREAS = {
    name: re.compile(re.escape(step.area).replace(re.escape("{run}"), RUN_NAME))
    for name, step in STEPS.items()
}
AREA_PATTERN = rf"{RESULTS}/(?:{'|'.join(area.pattern for area in _AREAS.values())})"


def problem_steps(cfg: WorkflowConfig) -> list[str]:
    """The problem-side LLM steps the config switches on, in the order they run."""
    return [step for step in PROBLEM_STEPS if STEPS[step].settings_of(cfg) is not None]


def step_problems(step: str) -> str:
    return f"{PROCESSING}/{step}/problems.jsonl"


def step_input(cfg: WorkflowConfig, step: str) -> str:
    """A problem step's input: the previous step's problems, or the extracted problems."""
    enabled = problem_steps(cfg)
    position = enabled.index(step)
    return step_problems(enabled[position - 1]) if position else EXTRACTED_PROBLEMS


def solution_problems(cfg: WorkflowConfig) -> str:
    """The problems the teacher solves: the last problem step's output, else the extracted
    problems."""
    enabled = problem_steps(cfg)
    return step_problems(enabled[-1]) if enabled else EXTRACTED_PROBLEMS


def area_processing_step(area: str):
    """The registry entry of the LLM step whose files live in ``area``."""
    relative = Path(area).relative_to(RESULTS).as_posix()
    for name, pattern in _AREAS.items():
        if pattern.fullmatch(relative):
            return STEPS[name]
    raise ValueError(f"{area}: no processing step keeps its files here")


def area_block(config: dict, area: str) -> dict:
    """The config block of the LLM step whose files live in ``area``, as the config writes it
    (the step's jobs receive it so)."""
    return area_processing_step(area).block_of(config)


def area_settings(cfg: WorkflowConfig, area: str) -> Step:
    """The typed block of the LLM step whose files live in ``area``."""
    return area_processing_step(area).settings_of(cfg)


def area_step(area: str) -> str:
    """The ``distillery.process`` step name of an area."""
    return area_processing_step(area).name


def step_prompts(block: dict, step: str) -> list[str]:
    """The prompt files a step reads (the classifier's one per class)."""
    return list(STEPS[step].settings.prompt_files(block).values())


def with_prompts(block: dict, step: str, resolve) -> dict:
    """The step's block with each prompt file resolved (``resolve``: config path -> file)."""
    settings = STEPS[step].settings
    named = {name: resolve(path) for name, path in settings.prompt_files(block).items()}
    return settings.with_prompt_files(block, named)


# the keys of a step's block each half of distillery.process reads (beside the server):
# select only what shapes the requests, apply only what shapes the outputs, so that changing
# one (a class's action) does not rerun the other (the classifiers' generation)
SELECT_KEYS = (
    "prompt", "prompts", "retrieval", "ngram", "top_k", "embedding_model", "reasoning_end",
    "samples",
)  # fmt: skip
# (retrieval and its encoder are checked together wherever the block is read)
APPLY_KEYS = (
    "actions", "parse", "reasoning_end", "samples", "keep_unrewritten", "retrieval",
    "embedding_model",
)  # fmt: skip


def step_generation(cfg: WorkflowConfig, area: str) -> dict:
    """What ``distillery.generate`` takes from a step's block, with the step's own defaults
    (a classifier's 16 tokens, greedy sampling) where the config leaves them out."""
    return generation_block(area_settings(cfg, area).model_dump(exclude_none=True))


def process_block(block: dict, keys: tuple[str, ...]) -> dict:
    """The part of a step's block one half of ``distillery.process`` reads."""
    return {k: v for k, v in block.items() if k == "server" or k in keys}


def eval_judged_benchmarks(cfg: WorkflowConfig) -> list[str]:
    """The evaluation benchmarks the evaluation judge grades: those it names, else those
    whose definition asks for a judge."""
    judge = cfg.evaluation.judge
    if judge is None:
        return []
    if judge.benchmarks is not None:
        return list(judge.benchmarks)
    return [b for b in cfg.evaluation.benchmarks if benchmark_definition(cfg, b).judge]


def eval_metrics(run: str, bench: str) -> str:
    return f"{RESULTS}/evals/{run}/eval-results/{bench}/metrics.json"


def eval_graded(run: str, bench: str, seed: int) -> str:
    return f"{RESULTS}/evals/{run}/eval-results/{bench}/output-rs{seed}.jsonl"


def eval_judged(run: str, bench: str, seed: int) -> str:
    return f"{RESULTS}/evals/{run}/judged/{bench}/output-rs{seed}.jsonl"


def eval_judge_files(cfg: WorkflowConfig, run: str, judged: bool) -> list[str]:
    """The graded (or judged) files of a run's judged benchmarks, in the judge's order."""
    path = eval_judged if judged else eval_graded
    return [
        path(run, bench, seed)
        for bench in eval_judged_benchmarks(cfg)
        for seed in eval_seeds(cfg, bench)
    ]


def eval_summary_files(cfg: WorkflowConfig, run: str, bench: str) -> list[str]:
    """The seed files ``summarize`` reads: judged ones for a judged benchmark."""
    path = eval_judged if bench in eval_judged_benchmarks(cfg) else eval_graded
    return [path(run, bench, seed) for seed in eval_seeds(cfg, bench)]


def area_family(cfg: WorkflowConfig, area: str) -> str:
    """The rule family (container, conda environment) of an LLM step's generation job."""
    return backends.get(area_settings(cfg, area).server.type).family


def solution_files(cfg: WorkflowConfig, seeds_: list[int]) -> list[str]:
    """The solution seed files after the solution-side steps that are on: rewritten summaries,
    then the judge's verdicts."""
    if cfg.solution_judge is not None:
        return [f"{RESULTS}/sdg/judged/output-rs{seed}.jsonl" for seed in seeds_]
    return judge_inputs(cfg, seeds_)


def judge_inputs(cfg: WorkflowConfig, seeds_: list[int]) -> list[str]:
    """What the solution judge reads: the rewritten solutions, else the merged ones."""
    if cfg.solution_summaries is not None:
        return [f"{SUMMARIES}/output-rs{seed}.jsonl" for seed in seeds_]
    return [f"{RESULTS}/sdg/solutions/output-rs{seed}.jsonl" for seed in seeds_]
