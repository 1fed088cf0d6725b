"""Helpers the Snakemake rules use to turn config into paths and command-line flags.

Kept here, not in ``common.smk``, so they are unit-tested.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from distillery.config_check import TRAINED
from distillery.generation import backends

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

    Example:
        >>> resource_path("prompts/math.yaml", "/nonexistent")
        'prompts/math.yaml'
    """
    if Path(path).is_absolute() or Path(path).exists():
        return path
    shipped = Path(workflow_dir) / path
    return str(shipped) if shipped.exists() else path


def model_dir(config: dict, name: str) -> str:
    """The HF model directory of a model named in config (``trained`` = the SFT output)."""
    if name == TRAINED:
        return TRAINED_MODEL_DIR
    model = config["models"][name]
    if model["source"] == "path":
        return model["path"]
    return f"{RESULTS}/models/{name}"


def models_from(config: dict, source: str) -> list[str]:
    """Names of the models with this ``source`` (each source has its own building rule)."""
    return [n for n, m in config["models"].items() if m["source"] == source]


def converted_models(config: dict) -> list[str]:
    """Names of the models built by ``gguf_to_hf``."""
    return models_from(config, "gguf")


def downloaded_models(config: dict) -> list[str]:
    """Names of the models fetched by ``download_model``."""
    return models_from(config, "hf")


def base_model_dir(config: dict, name: str) -> str:
    """The directory of the model a converted model (lora, trtllm, nemo) is built from."""
    return model_dir(config, config["models"][name]["base"])


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


def engine_args(model: dict) -> str:
    """Flags of ``distillery.convert_trtllm`` for a ``source: trtllm`` model.

    Example:
        >>> engine_args({"gpus": 8, "engine": {"max_seq_len": 10000, "quantization": "fp8"}})
        '--gpus 8 --max-seq-len 10000 --quantization fp8'
    """
    block = {"gpus": model.get("gpus"), **model.get("engine", {})}
    return option_args(
        block,
        ["gpus", "dtype", "max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens",
         "quantization"],
    )  # fmt: skip


# The public image of each rule family, used with --software-deployment-method apptainer unless
# `containers.<family>` names another. They carry the frameworks (CUDA, torch, the servers), not
# distillery's own light dependencies: docs/cluster.md says how to extend them.
DEFAULT_CONTAINERS = {
    "core": "docker://pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime",
    "train": "docker://pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime",
    **{b.family: b.container for b in backends.BACKENDS.values() if b.container},
    "nemo": "docker://nvcr.io/nvidia/nemo:25.07",
    "nemo_rl": "docker://nvcr.io/nvidia/nemo-rl:v0.7.0",
}


def container(config: dict, family: str) -> str | None:
    """The image of a rule family (``containers.<family>``), or None: the job's own environment.

    Example:
        >>> container({"containers": {"vllm": "docker://vllm/vllm-openai:v0.11.0"}}, "vllm")
        'docker://vllm/vllm-openai:v0.11.0'
    """
    return config.get("containers", {}).get(family, DEFAULT_CONTAINERS.get(family))


def server_family(config: dict, stage: str) -> str:
    """The container family of a generation stage: its server type (hf runs in-process)."""
    return backends.get(config[stage].get("server", {}).get("type", "hf")).family


def name_pattern(names: list[str]) -> str:
    """A wildcard constraint matching exactly ``names`` (nothing if empty)."""
    import re

    return "|".join(map(re.escape, names)) or "(?!)"


def solutions_generated(config: dict) -> bool:
    return config["solutions"].get("source", "generate") == "generate"


def raw_data_args(config: dict) -> str:
    """Flags of ``distillery.prepare_raw_data`` (output and tokenizer aside)."""
    block = config["raw_data"]
    args = option_args(
        block,
        ["source", "path", "num_posts", "seed", "unlabeled_share", "chatter_share", "max_tokens"],
    )
    if block.get("subsets"):
        entries = [f"{name}={cap}" for name, cap in block["subsets"].items()]
        args = f"{args} {shlex.join(['--subsets', *entries])}"
    return args


def gguf_file(model: dict) -> str:
    """The GGUF file of a ``source: gguf`` model: a path, or a file in an installed package."""
    if "path" in model:
        return model["path"]
    from distillery.models import find_packaged_file

    return str(find_packaged_file(model["package"], model["file"]))


def generation_block(stage: dict) -> dict:
    """What ``distillery.generate`` takes from a stage's block: its generation settings (the
    stage's prompt, seeds, chunks and runs are the rule's business).

    Example:
        >>> generation_block({"prompt": "p.yaml", "seeds": 4, "server": {"type": "hf"}})
        {'server': {'type': 'hf'}}
    """
    from distillery.settings.generation import Generation

    return {key: value for key, value in stage.items() if key in Generation.model_fields}


def block_json(block: dict) -> str:
    """A config block as the one JSON argument a rule hands its stage (keys sorted, so the
    same settings are the same parameter and a changed one reruns the job)."""
    return json.dumps(block, sort_keys=True)


def is_external(stage: dict) -> bool:
    """The stage talks to an existing endpoint; its model is a name, not a directory."""
    return stage.get("server", {}).get("type") == "openai"


def stage_model(config: dict, stage: str, name: str | None = None) -> str:
    """What the stage's ``--model`` is: a model directory, or an external endpoint's model name."""
    block = config[stage]
    name = name or block["server"]["model"]
    return name if is_external(block) else model_dir(config, name)


def stage_model_inputs(config: dict, stage: str, name: str | None = None) -> list[str]:
    """The model directory as a rule input (so a rebuilt model reruns the stage), if any."""
    return [] if is_external(config[stage]) else [stage_model(config, stage, name)]


def stage_gpus(config: dict, stage: str) -> int:
    return int(config[stage].get("server", {}).get("gpus", 0))


def option_args(block: dict, keys: list[str]) -> str:
    """``--key value`` flags (``--flag``/``--no-flag`` for booleans) for the given keys.

    Example:
        >>> option_args({"add_correct": True, "min_majority_votes": 2}, ["add_correct",
        ...             "min_majority_votes", "absent"])
        '--add-correct --min-majority-votes 2'
    """
    args = []
    for key in keys:
        if key not in block or block[key] is None:
            continue
        flag = "--" + key.replace("_", "-")
        value = block[key]
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            args += [flag, *map(str, value)]
        else:
            args += [flag, str(value)]
    return shlex.join(args)


def training_args(training: dict) -> str:
    """Flags of ``distillery.train_sft`` for the ``training`` config block."""
    lora = {f"lora_{k}": v for k, v in training.get("lora", {}).items() if k != "use_rslora"}
    if "use_rslora" in training.get("lora", {}):
        lora["use_rslora"] = training["lora"]["use_rslora"]
    keys = [
        "method",
        "learning_rate",
        "lr_scheduler",
        "warmup_ratio",
        "weight_decay",
        "epochs",
        "max_steps",
        "micro_batch_size",
        "gradient_accumulation_steps",
        "max_seq_length",
        "save_steps",
        "logging_steps",
        "precision",
        "param_dtype",
        "gradient_checkpointing",
        "packing",
        "attn_implementation",
        "liger",
        "keep_best",
        "average_last",
        "compile",
        "gpus",
        "fsdp",
        "seed",
    ]
    lora_keys = ["lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "use_rslora"]
    return " ".join(a for a in (option_args(training, keys), option_args(lora, lora_keys)) if a)


def seeds(count: int) -> list[int]:
    """Seeds ``0..count-1``, as NeMo-Skills numbers ``output-rs{seed}``."""
    return list(range(count))


def comparison_entries(config: dict) -> list[tuple[str, str]]:
    """(run, metrics.json) of every run and benchmark, for the comparison table."""
    return [
        (run, f"{RESULTS}/evals/{run}/eval-results/{bench}/metrics.json")
        for run in config["evaluation"]["runs"]
        for bench in config["evaluation"]["benchmarks"]
    ]


def eval_seeds(config: dict, bench: str) -> list[int]:
    """The seeds of a benchmark's evaluation: ``evaluation.benchmarks.<bench>`` samples, or, when
    that is left empty, the number its definition recommends (aime24: 8)."""
    count = config["evaluation"]["benchmarks"][bench]
    if count is None:
        count = benchmark_definition(config, bench).seeds
    return seeds(count)


def eval_metrics_targets(config: dict) -> list[str]:
    """Every ``metrics.json`` the evaluation produces: one per run and benchmark."""
    return [path for _, path in comparison_entries(config)]


def contamination_benchmarks(config: dict) -> list[str]:
    """Benchmarks the SFT data is checked against (empty when the filter is off)."""
    block = config["sft_data"]
    if not block.get("filters", {}).get("remove_contaminated"):
        return []
    names = block.get("contamination", {}).get("benchmarks")
    return list(names if names is not None else config["evaluation"]["benchmarks"])


def sft_block(config: dict) -> dict:
    """What ``distillery.prepare_sft_data`` takes from the ``sft_data`` block (the prompt file
    is the rule's input)."""
    return {k: v for k, v in config["sft_data"].items() if k != "prompt"}


def benchmark_definition(config: dict, bench: str):
    """The definition behind ``benchmarks.<bench>`` (its ``source``, default its own name)."""
    from distillery.benchmarks import load_definition

    return load_definition(config["benchmarks"][bench].get("source", bench))


def benchmark_args(config: dict, bench: str) -> str:
    """Flags of ``distillery.prepare_benchmark`` (output aside)."""
    block = config["benchmarks"][bench]
    args = ["--benchmark", block.get("source", bench)]
    return " ".join([shlex.join(args), option_args(block, ["path", "size", "seed", "max_samples"])])


def benchmark_grading(config: dict, bench: str) -> str:
    block = config["benchmarks"][bench]
    return block.get("grading") or benchmark_definition(config, bench).grading


def benchmark_prompt(config: dict, bench: str) -> str:
    """The evaluation prompt: the benchmark's own, its definition's, or the evaluation's."""
    block = config["benchmarks"][bench]
    return (
        block.get("prompt")
        or benchmark_definition(config, bench).prompt
        or config["evaluation"]["prompt"]
    )


def run_model(config: dict, run: str) -> str:
    """The model name of an evaluation run (``runs.<run>`` is a name or ``{model: ...}``)."""
    entry = config["evaluation"]["runs"][run]
    return entry if isinstance(entry, str) else entry["model"]


def eval_block(config: dict, run: str, bench: str) -> dict:
    """The evaluation's generation settings for one run and benchmark: the run's own
    ``parse_reasoning`` and ``inference`` override the evaluation's, and the benchmark's
    default generation length applies when neither sets ``max_tokens``."""
    entry = config["evaluation"]["runs"][run]
    overrides = {} if isinstance(entry, str) else entry
    block = generation_block(config["evaluation"])
    if "parse_reasoning" in overrides:
        block["parse_reasoning"] = overrides["parse_reasoning"]
    inference = {**block.get("inference", {}), **overrides.get("inference", {})}
    if "max_tokens" not in inference:
        default = benchmark_definition(config, bench).max_tokens
        if default:
            inference["max_tokens"] = default
    if inference:
        block["inference"] = inference
    return block


def train_scale(config: dict) -> tuple[int, int]:
    """GPUs per node and nodes of the training stage."""
    training = config["training"]
    return int(training.get("gpus", 0)), int(training.get("nodes", 1))


def train_launcher(config: dict) -> str:
    """How the training stage is started: plain Python on one device, else
    ``distillery.launch`` (torchrun, one process per GPU; srun and torchrun per node on several
    nodes).

    Example:
        >>> train_launcher({"training": {"gpus": 8}})
        'python -m distillery.launch --gpus 8 --nodes 1 --'
        >>> train_launcher({"training": {"gpus": 1}})
        'python -m'
    """
    gpus, nodes = train_scale(config)
    if (gpus <= 1 and nodes <= 1) or config["training"].get("backend", "trl") == "nemo_rl":
        # NeMo-RL starts its own workers (Ray) on the node's GPUs
        return "python -m"
    return f"python -m distillery.launch --gpus {gpus} --nodes {nodes} --"


def train_resources(config: dict) -> dict:
    """Slurm resources of the training job besides memory: ``gpu`` on one node; on several,
    one task per node with the GPUs per node as a GRES, and the job's shell run as is in the
    batch script (the plugin's ``mpi`` path) so that ``distillery.launch`` can srun across the
    nodes.

    Example:
        >>> train_resources({"training": {"gpus": 8}})
        {'gpu': 8}
        >>> train_resources({"training": {"gpus": 8, "nodes": 2}})
        {'nodes': 2, 'tasks': 2, 'mpi': 'srun', 'gres': 'gpu:8'}
    """
    gpus, nodes = train_scale(config)
    if nodes <= 1:
        return {"gpu": gpus}
    resources = {"nodes": nodes, "tasks": nodes, "mpi": "srun"}
    if gpus:
        resources["gres"] = f"gpu:{gpus}"
    return resources


def serving(config: dict) -> dict:
    """How ``serve_<run>`` serves a model: ``serving``, else the evaluation's own server when it
    is one the job starts, else vLLM."""
    if "serving" in config:
        return {"type": "vllm", **config["serving"]}
    server = config["evaluation"].get("server", {})
    if server.get("type") in backends.SERVERS:
        keys = ("type", "gpus", "dtype", "python", "args", "env", "health_timeout")
        return {key: server[key] for key in keys if key in server}
    return {"type": "vllm"}


def serve_args(config: dict) -> str:
    """Flags of ``distillery.serve`` (the model aside).

    Example:
        >>> serve_args({"serving": {"gpus": 2, "args": ["--max-model-len", "16384"]}})
        "--backend vllm --gpus 2 '--server-args=--max-model-len 16384'"
    """
    block = serving(config)
    args = shlex.split(
        option_args({"backend": block["type"], **block}, ["backend", "gpus", "dtype", "python",
                                                           "host", "port", "health_timeout"])
    )  # fmt: skip
    args = [a if a != "--python" else "--server-python" for a in args]
    if block.get("args"):
        args.append(f"--server-args={shlex.join(block['args'])}")
    if block.get("env"):
        args += ["--server-env", *(f"{k}={v}" for k, v in block["env"].items())]
    return shlex.join(args)


def served_runs(config: dict) -> list[str]:
    """Evaluation runs whose model can be served (not those on an external endpoint)."""
    return [] if is_external(config["evaluation"]) else list(config["evaluation"]["runs"])


def job_mem_mb(cpu_mb: int, gpus: int, per_gpu_mb: int) -> int:
    """Host memory of a job: what the CPU path needs, or, on GPUs, room for loading the weights
    that each GPU's process reads through host memory.

    Example:
        >>> job_mem_mb(3000, 0, 16000), job_mem_mb(3000, 8, 16000)
        (3000, 131000)
    """
    return cpu_mb if gpus <= 0 else cpu_mb + per_gpu_mb * gpus


def merge_mem_mb(config: dict, name: str, floor_mb: int = 4000) -> int:
    """Host memory of a LoRA merge: the base model twice over (loaded, then saved), from its
    size on disk or the parameter count in its repository name."""
    from distillery.doctor import model_size_gib

    size = model_size_gib(config, config["models"][name]["base"], Path("."))
    return max(floor_mb, int((size or 0) * 2.5 * 1024))


def train_module(config: dict) -> str:
    """The training stage's module for ``training.backend``."""
    if config["training"].get("backend", "trl") == "nemo_rl":
        return "distillery.train_nemo_rl"
    return "distillery.train_sft"


def train_family(config: dict) -> str:
    return "nemo_rl" if config["training"].get("backend", "trl") == "nemo_rl" else "train"


def nemo_rl_args(training: dict) -> str:
    """Flags of ``distillery.train_nemo_rl``: its global batch is the TRL path's micro-batch x
    accumulation x GPUs.

    Example:
        >>> nemo_rl_args({"method": "full", "gpus": 8, "micro_batch_size": 1,
        ...               "gradient_accumulation_steps": 4, "learning_rate": 1e-5})
        '--method full --learning-rate 1e-05 --micro-batch-size 1 --gpus 8 --global-batch-size 32'
    """
    gpus = max(1, int(training.get("gpus", 1)))
    micro = int(training.get("micro_batch_size", 1))
    block = {
        **training,
        "global_batch_size": micro * gpus * training.get("gradient_accumulation_steps", 1),
    }
    lora = {f"lora_{k}": v for k, v in training.get("lora", {}).items() if k in ("r", "alpha")}
    keys = ["method", "learning_rate", "weight_decay", "epochs", "max_steps", "micro_batch_size",
            "max_seq_length", "save_steps", "gradient_checkpointing", "seed", "gpus",
            "global_batch_size"]  # fmt: skip
    return " ".join(a for a in (option_args(block, keys), option_args(lora, list(lora))) if a)


def training_options(config: dict) -> str:
    """The training stage's flags besides its inputs, outputs and threads (a plain string, so
    Snakemake sees a changed setting and reruns training)."""
    training = config["training"]
    if training.get("backend", "trl") == "nemo_rl":
        return f"{nemo_rl_args(training)} --checkpoint-dir {RESULTS}/train/nemo-rl"
    return (
        f"--adapter-output {TRAINED_ADAPTER_DIR} --checkpoint-dir {RESULTS}/train/checkpoints "
        f"{training_args(training)}"
    )
