"""Preflight: what a config needs against what this machine has, before a long run.

Usage::

    python -m distillery.doctor --configfile config/recipes/openmathreasoning.yaml
    snakemake --profile profiles/local doctor          # the same, for the workflow's config

Prints what it found, then one line per problem with its fix, and exits 1 if there is any, so
a run that would fail hours in (no GPU of the size a stage asks for, no vLLM, a full disk, a
gated dataset without ``HF_TOKEN``) fails in seconds instead. Estimates are deliberately rough
(weights from the parameter count in the repository name or the files on disk); they catch
a config that cannot fit, not one that barely fits.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.generation import backends
from distillery.planning import workflow as wf
from distillery.settings.base import parse
from distillery.settings.workflow import WorkflowConfig

GIB = 1024**3
GENERATION_STAGES = ("problem_extraction", "solutions", "evaluation")
# Hub repositories whose files need an accepted licence (and so HF_TOKEN).
GATED_PREFIXES = ("meta-llama/", "google/gemma", "mistralai/", "Idavidrein/gpqa")
# The big packages every job imports; without their bytecode each job compiles them again.
BYTECODE_PACKAGES = ("torch", "transformers", "vllm")
# Bytes per parameter of training state per method: bf16 weights, grads and fp32 Adam moments
# and master weights for full; frozen bf16 (lora) or 4-bit (qlora) weights otherwise.
TRAIN_BYTES_PER_PARAM = {"full": 16.0, "lora": 2.0, "qlora": 0.6}


@dataclass
class Machine:
    """What this machine has."""

    gpu_memory_gib: list[float]
    ram_gib: float
    disk_free_gib: float
    modules: dict[str, bool] = field(default_factory=dict)
    executables: dict[str, bool] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    uncompiled: dict[str, str] = field(default_factory=dict)
    """packages with no bytecode that this interpreter will not write either: name -> why"""

    @classmethod
    def probe(cls, workdir: str | Path = ".") -> Machine:
        probes = [b.probe for b in backends.BACKENDS.values() if b.probe]
        modules = {p.module for p in probes if p.module} | {
            "tensorrt_llm", "trl", "peft", "bitsandbytes", "flash_attn"
        }  # fmt: skip
        executables = {p.executable for p in probes if p.executable} | {
            "trtllm-serve", "trtllm-build", "apptainer", "sbatch"
        }  # fmt: skip
        return cls(
            gpu_memory_gib=gpu_memory_gib(),
            ram_gib=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB,
            disk_free_gib=shutil.disk_usage(_existing_parent(Path(workdir))).free / GIB,
            modules={name: importlib.util.find_spec(name) is not None for name in sorted(modules)},
            executables={name: shutil.which(name) is not None for name in sorted(executables)},
            env={k: v for k, v in os.environ.items() if k in ("HF_TOKEN", "HF_HUB_OFFLINE")},
            uncompiled=uncompiled_packages(BYTECODE_PACKAGES),
        )


def uncompiled_packages(names, dont_write: bool | None = None) -> dict[str, str]:
    """The packages among ``names`` whose modules every process compiles from source: no
    ``.pyc`` beside their sources (installers such as uv leave it out unless asked) and none
    written at import either, because ``PYTHONDONTWRITEBYTECODE`` (``-B``) is set or the
    install is read-only. Judged by each package's ``__init__``; name -> the reason."""
    if dont_write is None:
        dont_write = sys.dont_write_bytecode
    found = {}
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        cached = Path(importlib.util.cache_from_source(spec.origin))
        if cached.exists():
            continue
        if dont_write:
            found[name] = "PYTHONDONTWRITEBYTECODE is set"
        elif not os.access(parent := _existing_parent(cached), os.W_OK):
            found[name] = f"{parent} is read-only"
    return found


def _existing_parent(path: Path) -> Path:
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return path


def gpu_memory_gib() -> list[float]:
    """Memory of each visible NVIDIA GPU (empty without a driver)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [int(line) / 1024 for line in out.split() if line.strip().isdigit()]


def _stage_needs(config: dict, cfg: WorkflowConfig) -> list[tuple[str, int, str | None]]:
    """(config key, GPUs, model name) of every GPU-using step."""
    needs = []
    for stage in GENERATION_STAGES:
        block = config.get(stage)
        if not block or wf.is_external(getattr(cfg, stage)):
            continue
        gpus = int(block.get("server", {}).get("gpus", 0))
        if stage == "evaluation":
            for run in block["runs"]:
                needs.append((f"evaluation.runs.{run}", gpus, wf.run_model(cfg, run)))
        else:
            needs.append((f"{stage}.server", gpus, block["server"].get("model")))
    training = config["training"]
    needs.append(("training", int(training.get("gpus", 0)), training["model"]))
    for name, model in config["models"].items():
        if model["source"] in ("trtllm", "nemo"):
            needs.append((f"models.{name}", int(model.get("gpus", 1)), name))
    return needs


def check_gpus(config: dict, cfg: WorkflowConfig, machine: Machine, workdir: Path) -> list[str]:
    problems = []
    available = len(machine.gpu_memory_gib)
    smallest = min(machine.gpu_memory_gib, default=0.0)
    for key, gpus, name in _stage_needs(config, cfg):
        if gpus > available:
            problems.append(
                f"{key} asks for {gpus} GPU(s), this machine has {available}: run it where "
                "there are (profiles/slurm), or lower its gpus"
            )
            continue
        if gpus == 0 or name is None:
            continue
        size = wf.model_size_gib(cfg, name, workdir)
        if size is None:
            continue
        if key == "training":
            method = config["training"].get("method", "full")
            size *= TRAIN_BYTES_PER_PARAM[method] / 2
        per_gpu = size / gpus
        if per_gpu > 0.9 * smallest:
            problems.append(
                f"{key}: {name} needs about {per_gpu:.0f} GiB per GPU over {gpus} GPU(s), the "
                f"GPUs here have {smallest:.0f} GiB: use more GPUs"
                + (", LoRA/QLoRA" if key == "training" else "")
                + " or a smaller model"
            )
    return problems


def check_disk_and_ram(
    config: dict, cfg: WorkflowConfig, machine: Machine, workdir: Path
) -> list[str]:
    problems = []
    to_write = 0.0
    for name, model in config["models"].items():
        directory = workdir / wf.model_dir(cfg, name)
        if model["source"] != "path" and not directory.is_dir():
            to_write += wf.model_size_gib(cfg, name, workdir) or 0.0
    trained = workdir / wf.TRAINED_MODEL_DIR
    if not trained.is_dir():
        # the trained model, and a checkpoint with optimizer state beside it
        to_write += 3 * (wf.model_size_gib(cfg, config["training"]["model"], workdir) or 0.0)
    if to_write > machine.disk_free_gib:
        problems.append(
            f"disk: the models to download, convert and train take about {to_write:.0f} GiB, "
            f"{machine.disk_free_gib:.0f} GiB are free under {workdir}: free some space or run "
            "from a bigger file system"
        )
    # models loaded whole in host memory: the student, and what conversions start from
    loaded = {config["training"]["model"]} | {
        model["base"] for model in config["models"].values() if "base" in model
    }
    largest = max((wf.model_size_gib(cfg, name, workdir) or 0.0 for name in loaded), default=0.0)
    if largest > machine.ram_gib:
        problems.append(
            f"RAM: a model that training or a conversion loads is about {largest:.0f} GiB, this "
            f"machine has {machine.ram_gib:.0f} GiB: run those jobs on a bigger node"
        )
    return problems


def _server_types(config: dict) -> set[str]:
    kinds = {
        config[stage]["server"]["type"]
        for stage in GENERATION_STAGES
        if stage in config and "server" in config[stage]
    }
    return kinds


def check_backends(config: dict, cfg: WorkflowConfig, machine: Machine) -> list[str]:
    problems = []
    containers = config.get("containers", {})
    if containers and not machine.executables.get("apptainer"):
        problems.append(
            "containers are configured but apptainer is not installed: install it, or drop "
            "`containers` and use the conda environments (envs/)"
        )

    def need_module(module: str, family: str, why: str, fix: str) -> None:
        if family in containers or machine.modules.get(module):
            return
        problems.append(f"{why} needs {module}, which is not importable here: {fix}")

    servers = _server_types(config)
    for stage in GENERATION_STAGES:
        server = config.get(stage, {}).get("server", {})
        if server.get("type") in backends.SERVERS and server.get("python"):
            python = server["python"]
            if not Path(python).exists() and shutil.which(python) is None:
                problems.append(
                    f"{stage}.server.python: {python} does not exist: build the server's "
                    "environment (make vllm-env for vLLM on CPU) or fix the path"
                )
    python_elsewhere = any(
        config.get(s, {}).get("server", {}).get("python") for s in GENERATION_STAGES
    )
    for name in sorted(servers):
        backend = backends.get(name)
        probe = backend.probe
        if probe is None or backend.family in containers:
            continue
        if probe.module and not python_elsewhere:
            need_module(probe.module, backend.family, f"server type {name}", probe.install)
        if probe.executable and not machine.executables.get(probe.executable):
            problems.append(
                f"server type {name} needs {probe.executable}, which is not on PATH: "
                f"{probe.install}"
            )
    uses_trtllm = wf.models_from(cfg, "trtllm")
    if uses_trtllm and "trtllm" not in containers and not machine.executables.get("trtllm-serve"):
        problems.append(
            "TensorRT-LLM (a trtllm model) needs trtllm-serve and "
            "trtllm-build, which are not on PATH: set containers.trtllm to NVIDIA's "
            "TensorRT-LLM image, or install tensorrt_llm"
        )
    method = config["training"].get("method", "full")
    need_module("trl", "train", "training", "pip install -e . (trl is a dependency)")
    need_module("peft", "train", f"training method {method}", "pip install -e .")
    if method == "qlora":
        need_module("bitsandbytes", "train", "training method qlora", "pip install bitsandbytes")
    wants_flash = any(
        "flash_attention_2" in " ".join(config.get(s, {}).get("server", {}).get("args", []))
        for s in GENERATION_STAGES
    )
    if wants_flash:
        need_module("flash_attn", "train", "flash_attention_2", "pip install flash-attn")
    return problems


def check_hub_access(config: dict, cfg: WorkflowConfig, machine: Machine) -> list[str]:
    if machine.env.get("HF_TOKEN"):
        return []
    problems = []
    for name, model in config["models"].items():
        repo = model.get("repo", "")
        if model["source"] == "hf" and (model.get("gated") or repo.startswith(GATED_PREFIXES)):
            problems.append(
                f"models.{name}: {repo} is gated on the hub and HF_TOKEN is not set: accept its "
                "terms on the hub and export HF_TOKEN"
            )
    for bench in config["evaluation"]["benchmarks"]:
        block = config["benchmarks"].get(bench, {})
        if block.get("path"):
            continue
        source = wf.benchmark_definition(cfg, bench).source
        if source is not None and source.gated:
            problems.append(
                f"benchmarks.{bench}: {source.repo} is gated on the hub and HF_TOKEN is "
                "not set: accept its terms and export HF_TOKEN, or give a local copy as "
                f"benchmarks.{bench}.path"
            )
    if machine.env.get("HF_HUB_OFFLINE") == "1":
        for name, model in config["models"].items():
            if model["source"] == "hf" and not Path(wf.model_dir(cfg, name)).is_dir():
                problems.append(
                    f"models.{name}: HF_HUB_OFFLINE=1 but it is not downloaded yet: unset "
                    "HF_HUB_OFFLINE, or make it `source: path` on a local copy"
                )
    return problems


def bytecode_notes(machine: Machine) -> list[str]:
    """Not a problem (the run works), but every job's start pays for it: on one H200 host the
    GPU demo's generation jobs were ready in 24-30 s instead of 17-18 s."""
    if not machine.uncompiled:
        return []
    names = ", ".join(sorted(machine.uncompiled))
    why = "; ".join(sorted(set(machine.uncompiled.values())))
    return [
        f"{names}: installed without bytecode, and none is written at import ({why}): every "
        "job compiles them from source again, seconds of each job's start; compile them once "
        "with `python -m compileall -q -j 0 <site-packages>` (uv: install with "
        "--compile-bytecode)"
    ]


def inventory(machine: Machine) -> list[str]:
    gpus = ", ".join(f"{memory:.0f} GiB" for memory in machine.gpu_memory_gib) or "none"
    have = [name for name, ok in {**machine.modules, **machine.executables}.items() if ok]
    return [
        f"GPUs: {len(machine.gpu_memory_gib)} ({gpus})",
        f"RAM: {machine.ram_gib:.0f} GiB; free disk: {machine.disk_free_gib:.0f} GiB",
        f"installed: {', '.join(have) or 'none of the checked backends'}",
        f"HF_TOKEN: {'set' if machine.env.get('HF_TOKEN') else 'not set'}",
    ]


def diagnose(config: dict, machine: Machine, workdir: str | Path = ".") -> list[str]:
    """Every problem of running ``config`` on ``machine``, one line each with its fix."""
    workdir = Path(workdir)
    cfg = parse(WorkflowConfig, config)
    return [
        *check_gpus(config, cfg, machine, workdir),
        *check_disk_and_ram(config, cfg, machine, workdir),
        *check_backends(config, cfg, machine),
        *check_hub_access(config, cfg, machine),
    ]


def report(config: dict, workdir: str | Path = ".", log: str | Path | None = None) -> int:
    """Prints the inventory and the problems (and writes them to ``log``); returns the exit
    status, 1 when there are any."""
    machine = Machine.probe(workdir)
    problems = diagnose(config, machine, workdir)
    lines = [
        *inventory(machine),
        *(f"NOTE: {note}" for note in bytecode_notes(machine)),
        *(f"PROBLEM: {problem}" for problem in problems),
        f"{len(problems)} problem(s) found" if problems else "ready: nothing missing",
    ]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(text)
    return 1 if problems else 0


def load_config(configfiles: list[str], workflow_dir: Path) -> dict:
    """The config a ``snakemake --configfile ...`` run would see, validated."""
    import yaml

    from distillery.planning.config_check import validate_config

    config: dict = {}
    for path in configfiles or [str(workflow_dir / "config/config.yaml")]:
        if not Path(path).is_file():
            raise DistilleryError(f"{path}: no such config file")
        try:
            _merge(config, yaml.safe_load(Path(path).read_text()) or {})
        except yaml.YAMLError as err:
            raise DistilleryError(yaml_error_message(path, err)) from None
    validate_config(
        config, workflow_dir / "workflow/schemas/config.schema.yaml", workflow_dir=workflow_dir
    )
    return config


def yaml_error_message(path: str, err) -> str:
    """``file:line:column: problem`` for a YAML file that does not parse (Snakemake's own
    message names neither line nor column)."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{where}: not valid YAML ({problem}); fix that line or the one before it"


def _merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="*", default=[], help="config files, in order")
    parser.add_argument("--workdir", default=".", help="where the workflow runs")
    args = parser.parse_args(argv)
    workflow_dir = Path(__file__).resolve().parents[2]
    try:
        config = load_config(args.configfile, workflow_dir)
    except DistilleryError as err:
        sys.stdout.write(f"PROBLEM: {err}\n")
        return 1
    return report(config, args.workdir)


if __name__ == "__main__":
    sys.exit(main())
