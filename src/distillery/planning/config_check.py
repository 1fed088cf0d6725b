"""Validation of the workflow config: JSON Schema first (generated from
:mod:`distillery.settings`), then the settings models' own checks, then the cross-references.

Every problem is reported as one line naming the config key and what is allowed, e.g.::

    config key 'solutions.inference.temperture' is not allowed; allowed keys of
    'solutions.inference': max_tokens, min_p, repetition_penalty, seed, stop, temperature, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from distillery.errors import DistilleryError
from distillery.nemo_skills_prompts import is_nemo_skills, prompt_name
from distillery.settings.model_entries import TRAINED

if TYPE_CHECKING:
    from distillery.settings.workflow import WorkflowConfig


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error) -> str:
    where = _key(error.absolute_path)
    validator, schema = error.validator, error.schema
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(f"'{_key([*error.absolute_path, e])}'" for e in extra)
        return f"config key {keys} is not allowed; allowed keys of '{where}': {', '.join(allowed)}"
    if validator == "required":
        return f"config key '{where}' is missing: {error.message}"
    if validator == "type":
        return (
            f"config key '{where}' must be of type {error.validator_value}, got {error.instance!r}"
        )
    if validator == "enum":
        options = ", ".join(repr(v) for v in error.validator_value)
        return f"config key '{where}' must be one of {options}, got {error.instance!r}"
    return f"config key '{where}': {error.message}"


def validate_schema(config: dict, schema_path: str | Path) -> None:
    """Raises :class:`DistilleryError` listing every schema violation, one per line."""
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise DistilleryError(f"invalid config (checked against {schema_path}):\n{lines}")


def check_references(
    config: dict,
    cfg: WorkflowConfig,
    workdir: str | Path = ".",
    workflow_dir: str | Path | None = None,
) -> None:
    """Checks what the schema cannot: named models exist, prompt files exist (in the working
    directory or, for files shipped with the workflow, in ``workflow_dir``). Reads the typed
    config ``cfg``; the raw ``config`` only where the planner's helpers take it."""
    workdir = Path(workdir)
    search = [workdir] + ([Path(workflow_dir)] if workflow_dir else [])
    problems = []
    models = cfg.models
    known = ", ".join(sorted(models))

    def model_ref(key: str, name: str, allow_trained: bool = False) -> None:
        if name in models or (allow_trained and name == TRAINED):
            return
        extra = f" or '{TRAINED}' (the trained model)" if allow_trained else ""
        problems.append(f"config key '{key}' names model '{name}'; known models: {known}{extra}")

    generated = cfg.solutions.source == "generate"
    if generated and cfg.problem_extraction is None:
        problems.append("config key 'problem_extraction' is missing (solutions are generated)")
    if not generated and cfg.raw_data.source != "nemotron":
        problems.append(
            "config key 'solutions.source' is raw_data, but only raw_data.source nemotron "
            "carries solutions"
        )
    stages = ("problem_extraction", "solutions", "evaluation") if generated else ("evaluation",)
    for stage in stages:
        block = getattr(cfg, stage)
        if block is None or block.server is None:
            continue
        if block.server.type == "openai":  # its base_url is checked with the settings
            continue
        if stage == "evaluation":
            for run, entry in cfg.evaluation.runs.items():
                name = entry if isinstance(entry, str) else entry.model
                model_ref(f"evaluation.runs.{run}", name, allow_trained=True)
        elif block.server.model is None:
            problems.append(f"config key '{stage}.server.model' is missing")
        else:
            model_ref(f"{stage}.server.model", block.server.model)
    model_ref("training.model", cfg.training.model)
    if cfg.raw_data.tokenizer is not None:
        model_ref("raw_data.tokenizer", cfg.raw_data.tokenizer)
    for stage in ("problem_extraction", "solutions", "sft_data", "evaluation"):
        prompt = getattr(getattr(cfg, stage), "prompt", None)
        if prompt is not None:
            problems += prompt_problems(f"{stage}.prompt", prompt, search)
    for name, model in models.items():
        if model.base is not None:
            if model.base == name:
                problems.append(f"config key 'models.{name}.base' names the model itself")
            else:
                model_ref(f"models.{name}.base", model.base, allow_trained=True)
        adapter = model.adapter
        if (
            model.source == "lora"
            and Path(adapter) != Path("results/train/adapter")
            and not (workdir / adapter).is_dir()
        ):
            problems.append(
                f"config key 'models.{name}.adapter': directory {adapter} does not exist; point "
                "it at a LoRA adapter (or results/train/adapter, written by LoRA training)"
            )
        if model.source == "nemo" and not (workdir / model.path).exists():
            problems.append(
                f"config key 'models.{name}.path': checkpoint {model.path} does not exist"
            )
        if model.source == "path" and not (workdir / model.path).is_dir():
            problems.append(
                f"config key 'models.{name}.path': directory {model.path} does not exist; "
                "point it at a Hugging Face model directory"
            )
    from distillery.benchmarks import known_benchmarks

    known = known_benchmarks()
    for bench, block in cfg.benchmarks.items():
        source = cfg.benchmark_source(bench)
        if source not in known:
            problems.append(
                f"config key 'benchmarks.{bench}': no benchmark definition {source!r}; known: "
                f"{', '.join(known)} (set `source:` to one of them)"
            )
        if block.path is not None and not (workdir / block.path).is_file():
            problems.append(
                f"config key 'benchmarks.{bench}.path': file {block.path} does not exist"
            )
        if block.prompt is not None:
            problems += prompt_problems(f"benchmarks.{bench}.prompt", block.prompt, search)
    problems += processing_problems(config, cfg, search, model_ref)
    if not problems:
        problems += prompt_field_problems(cfg, search, workdir)
    if problems:
        raise DistilleryError("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))


def processing_problems(
    config: dict, cfg: WorkflowConfig, search: list[Path], model_ref
) -> list[str]:
    """The LLM processing steps: their models and prompt files exist; a judge has expected
    answers to compare with; use_judgement has a judge."""
    from distillery.planning import workflow as wf
    from distillery.processing.steps import STEPS

    problems = []
    for step in STEPS.values():
        settings = step.settings_of(cfg)
        if settings is None:
            continue
        key = step.config_key
        server = settings.server
        # an endpoint (openai) names no local model; its base_url is checked with the settings
        if server.type != "openai":
            if server.model is not None:
                model_ref(f"{key}.server.model", server.model)
            else:
                problems.append(
                    f"config key '{key}.server.model' is missing: the model of this step"
                )
        for prompt in wf.step_prompts(step.block_of(config), step.name):
            problems += prompt_problems(key, prompt, search)
        encoder = getattr(settings, "embedding_model", None)  # the contamination check's
        if encoder is not None and encoder not in cfg.models and not Path(encoder).is_dir():
            problems.append(
                f"config key '{key}.embedding_model': {encoder!r} is neither a key of `models` nor "
                "a directory; add the encoder under `models` (source: hf) or fix the path"
            )
    if cfg.sft_data.use_judgement and cfg.solution_judge is None:
        problems.append(
            "config key 'sft_data.use_judgement' needs the solution_judge block (the verdicts it "
            "selects by)"
        )
    if cfg.solution_judge is not None:
        answers = (
            cfg.sft_data.fill_majority
            or "extract_answer" in wf.problem_steps(cfg)
            or cfg.raw_data.source == "demo"
        )
        if not answers:
            problems.append(
                "config key 'solution_judge': the judge compares each answer with the expected "
                "one, but nothing provides expected answers; set sft_data.fill_majority: true or "
                "add problem_processing.extract_answer"
            )
    judge = cfg.evaluation.judge
    if judge is not None:
        # benchmark rows always carry expected_answer (prepare_benchmark refuses rows without)
        evaluated = cfg.evaluation.benchmarks
        for bench in judge.benchmarks or []:
            if bench not in evaluated:
                problems.append(
                    f"config key 'evaluation.judge.benchmarks' names {bench!r}, which is not "
                    f"evaluated; evaluated: {', '.join(evaluated)}"
                )
        if not wf.eval_judged_benchmarks(cfg):
            problems.append(
                "config key 'evaluation.judge': no benchmark to judge; list them in "
                "evaluation.judge.benchmarks (only omni-math asks for a judge by itself)"
            )
    return problems


def resolve_benchmarks(config: dict) -> None:
    """Expands benchmark groups in ``evaluation.benchmarks`` (in place: the workflow is planned
    from the result) and gives a benchmark named only there the block ``{}`` (its definition
    as is). A name that is neither under ``benchmarks``, a definition nor a group is an error
    listing what is known."""
    # raw: the config is typed after its benchmark names are resolved here
    from distillery.benchmarks import expand, groups, known_benchmarks

    evaluation = config["evaluation"]
    defined = config.setdefault("benchmarks", {})
    unknown = [
        name
        for name in evaluation["benchmarks"]
        if name not in defined and name not in known_benchmarks() and name not in groups()
    ]
    if unknown:
        lines = [
            f"config key 'evaluation.benchmarks.{name}' names no benchmark; known benchmarks: "
            f"{', '.join(known_benchmarks())}; groups: {', '.join(sorted(groups()))}"
            + (f"; defined under 'benchmarks': {', '.join(sorted(defined))}" if defined else "")
            for name in unknown
        ]
        raise DistilleryError("invalid config:\n" + "\n".join(f"  - {line}" for line in lines))
    # a group expands unless the config defines a benchmark of that name itself
    evaluation["benchmarks"] = expand(evaluation["benchmarks"], keep=set(defined))
    for name in evaluation["benchmarks"]:
        defined.setdefault(name, {})
    # the contamination checks name benchmarks too: groups expand, definitions get a block
    lists = [
        ("sft_data.contamination.benchmarks", config["sft_data"].get("contamination") or {}),
        (
            "problem_processing.check_contamination.benchmarks",
            (config.get("problem_processing") or {}).get("check_contamination") or {},
        ),
    ]
    for key, block in lists:
        names = block.get("benchmarks")
        if names is None and key.startswith("problem_processing") and block:
            from distillery.settings.processing import DECONTAMINATION_BENCHMARKS

            names = list(DECONTAMINATION_BENCHMARKS)  # the step's default: NeMo-Skills' list
        if names is None:
            continue
        resolved = []
        for name in names:
            if name in defined or name in known_benchmarks():
                resolved.append(name)
            elif name in groups():
                resolved += list(groups()[name])
            else:
                raise DistilleryError(
                    f"invalid config:\n  - config key '{key}' names {name!r}, no benchmark; "
                    f"known benchmarks: {', '.join(known_benchmarks())}; groups: "
                    f"{', '.join(sorted(groups()))}"
                )
        block["benchmarks"] = list(dict.fromkeys(resolved))
        for name in block["benchmarks"]:
            defined.setdefault(name, {})


def benchmark_fields(cfg: WorkflowConfig, bench: str, workdir: Path) -> set[str]:
    """The fields a benchmark's rows provide: its definition's, or, for a local file already in
    the output contract, the file's own columns too."""
    from distillery.benchmarks import load_definition
    from distillery.data.sources import iter_located_rows

    fields = set(load_definition(cfg.benchmark_source(bench)).row_fields())
    path = cfg.benchmarks[bench].path
    if path is not None and (workdir / path).is_file():
        try:
            _, first = next(iter(iter_located_rows(workdir / path)), (None, {}))
        except DistilleryError:
            return fields  # prepare_benchmark reports it, naming the line
        if {"problem", "expected_answer"} <= set(first):
            fields |= set(first)
    return fields


def prompt_problems(key: str, prompt: str, search: list[Path]) -> list[str]:
    """What is wrong with a prompt named in the config: a file that does not exist, or a
    ``nemo-skills:`` name that cannot be one (such prompts are fetched by the workflow)."""
    if is_nemo_skills(prompt):
        try:
            prompt_name(prompt)
        except DistilleryError as err:
            return [f"config key '{key}': {err}"]
        return []
    if any((base / prompt).is_file() for base in search):
        return []
    return [f"config key '{key}': file {prompt} does not exist"]


def prompt_field_problems(cfg: WorkflowConfig, search: list[Path], workdir: Path) -> list[str]:
    """Each evaluation prompt (per run and benchmark) that uses a ``{field}`` the benchmark's
    rows do not provide: found here, before any job runs, not by the generation job."""
    from distillery.planning import workflow as wf
    from distillery.prompts import load_prompt

    problems = []
    for bench in cfg.evaluation.benchmarks:
        fields = None
        for run in cfg.evaluation.runs:
            key, prompt = wf.prompt_source(cfg, run, bench)
            if is_nemo_skills(prompt):
                wrong = prompt_problems(key, prompt, search)
                problems += wrong
                fetched = workdir / wf.resource_path(prompt, workdir)
                if wrong or not fetched.is_file():
                    continue  # not fetched yet: the generation job checks the fields
                prompt, found = str(fetched), fetched
            else:
                found = next((base / prompt for base in search if (base / prompt).is_file()), None)
            if found is None:
                problems.append(f"config key '{key}': file {prompt} does not exist")
                continue
            try:
                used = load_prompt(found).fields()
            except DistilleryError as err:
                problems.append(f"config key '{key}': {err}")
                continue
            fields = benchmark_fields(cfg, bench, workdir) if fields is None else fields
            missing = sorted(used - fields)
            if missing:
                problems.append(
                    f"config key '{key}': {prompt} uses "
                    + ", ".join(f"{{{m}}}" for m in missing)
                    + f", which the rows of benchmark {bench} do not provide (they have: "
                    f"{', '.join(sorted(fields))}); fix the prompt or choose another"
                )
    return list(dict.fromkeys(problems))


def validate_config(
    config: dict,
    schema_path: str | Path,
    workdir: str | Path = ".",
    workflow_dir: str | Path | None = None,
) -> WorkflowConfig:
    """Checks the config and resolves its benchmark names in place (:func:`resolve_benchmarks`);
    returns the typed config the rules read their settings from (defaults filled in by the
    settings models)."""
    validate_schema(config, schema_path)
    resolve_benchmarks(config)
    typed = check_settings(config)
    check_references(config, typed, workdir, workflow_dir)
    return typed


def check_settings(config: dict) -> WorkflowConfig:
    """What the schema cannot say about one block: settings that exclude each other (the
    models' own checks, the ones each stage makes again when run by hand)."""
    from distillery.settings import WorkflowConfig, parse

    return parse(WorkflowConfig, config)
