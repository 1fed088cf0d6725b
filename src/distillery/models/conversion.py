"""Command lines of the checkpoint converters that run in other projects' containers.

TensorRT-LLM, NeMo and NeMo-RL cannot run on a machine without NVIDIA GPUs, so these are tested
as command lines against the projects' documented interfaces:
- TensorRT-LLM: ``examples/models/core/<family>/convert_checkpoint.py`` (or
  ``examples/quantization/quantize.py`` for FP8), then ``trtllm-build``;
- NeMo-RL: ``examples/converters/convert_dcp_to_hf.py`` / ``convert_megatron_to_hf.py``;
- NeMo: ``scripts/checkpoint_converters/convert_<family>_hf_to_nemo.py`` and ``..._nemo_to_hf.py``.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from distillery.errors import DistilleryError

logger = logging.getLogger(__name__)

# config.json model_type -> TensorRT-LLM example family
TRTLLM_FAMILIES = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "qwen",
    "qwen3": "qwen",
    "gemma": "gemma",
    "gemma2": "gemma",
    "phi3": "phi",
}
# config.json model_type -> NeMo converter name
NEMO_FAMILIES = {"llama": "llama", "mistral": "mistral_7b", "qwen2": "qwen2", "gemma": "gemma"}


def model_type(model_dir: str | Path) -> str:
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        raise DistilleryError(f"{model_dir}: not a Hugging Face model directory (no config.json)")
    return json.loads(config.read_text()).get("model_type", "unknown")


def _family(model_dir: str | Path, families: dict[str, str], tool: str) -> str:
    kind = model_type(model_dir)
    if kind not in families:
        raise DistilleryError(
            f"{model_dir}: {tool} conversion does not support model type {kind!r}; supported: "
            f"{', '.join(sorted(families))}"
        )
    return families[kind]


@dataclass(frozen=True)
class TrtllmEngine:
    """An engine build: ``trtllm-build`` limits and parallelism, optional FP8 quantisation."""

    model_dir: str
    output_dir: str
    gpus: int = 1
    dtype: str = "bfloat16"
    max_batch_size: int = 512
    max_input_len: int = 4096
    max_seq_len: int = 8192
    max_num_tokens: int = 8192
    quantization: str | None = None
    examples_dir: str = "/app/tensorrt_llm/examples"
    python: str = "python3"

    def checkpoint_command(self, checkpoint_dir: str) -> list[str]:
        """Converts (or, for FP8, quantises) the HF weights into a TensorRT-LLM checkpoint
        sharded for ``gpus``-way tensor parallelism."""
        if self.quantization == "fp8":
            script = f"{self.examples_dir}/quantization/quantize.py"
            return [
                self.python, script, "--model_dir", self.model_dir, "--output_dir", checkpoint_dir,
                "--dtype", self.dtype, "--qformat", "fp8", "--kv_cache_dtype", "fp8",
                "--tp_size", str(self.gpus),
            ]  # fmt: skip
        if self.quantization is not None:
            raise DistilleryError(f"quantization {self.quantization!r} is not supported; use fp8")
        family = _family(self.model_dir, TRTLLM_FAMILIES, "TensorRT-LLM")
        script = f"{self.examples_dir}/models/core/{family}/convert_checkpoint.py"
        return [
            self.python, script, "--model_dir", self.model_dir, "--output_dir", checkpoint_dir,
            "--dtype", self.dtype, "--tp_size", str(self.gpus),
        ]  # fmt: skip

    def build_command(self, checkpoint_dir: str) -> list[str]:
        return [
            "trtllm-build",
            "--checkpoint_dir", checkpoint_dir,
            "--output_dir", self.output_dir,
            "--gemm_plugin", "auto",
            "--max_batch_size", str(self.max_batch_size),
            "--max_input_len", str(self.max_input_len),
            "--max_seq_len", str(self.max_seq_len),
            "--max_num_tokens", str(self.max_num_tokens),
        ]  # fmt: skip


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "generation_config.json",
)


def nemo_rl_to_hf_command(
    backend: str, step_dir: str, output: str, nemo_rl_dir: str = "/opt/nemo-rl"
) -> list[str]:
    """NeMo-RL's converter of an SFT checkpoint (``<run>/step_N``) to a HF directory."""
    step = Path(step_dir)
    if backend == "fsdp":
        script, flag, weights = "convert_dcp_to_hf.py", "--dcp-ckpt-path", step / "policy/weights"
    elif backend == "megatron":
        script = "convert_megatron_to_hf.py"
        flag, weights = "--megatron-ckpt-path", step / "policy/weights/iter_0000000"
    else:
        raise DistilleryError(f"NeMo-RL backend must be fsdp or megatron, got {backend!r}")
    return [
        "uv", "run", f"{nemo_rl_dir}/examples/converters/{script}",
        f"--config={step / 'config.yaml'}", f"{flag}={weights}", f"--hf-ckpt-path={output}",
    ]  # fmt: skip


def hf_to_nemo_command(
    model_dir: str, output: str, precision: str = "bf16", nemo_dir: str = "/opt/NeMo"
) -> list[str]:
    family = _family(model_dir, NEMO_FAMILIES, "NeMo")
    script = f"{nemo_dir}/scripts/checkpoint_converters/convert_{family}_hf_to_nemo.py"
    return [
        "python3", script, "--input_name_or_path", model_dir, "--output_path", output,
        "--precision", precision,
    ]  # fmt: skip


def nemo_to_hf_command(
    nemo_file: str, hf_reference: str, output: str, nemo_dir: str = "/opt/NeMo"
) -> list[str]:
    """``hf_reference`` is the HF model the .nemo file came from (config and tokenizer)."""
    family = _family(hf_reference, NEMO_FAMILIES, "NeMo")
    script = f"{nemo_dir}/scripts/checkpoint_converters/convert_{family}_nemo_to_hf.py"
    return [
        "python3", script, "--input_name_or_path", nemo_file,
        "--output_path", f"{output}/pytorch_model.bin",
        "--hf_input_path", hf_reference, "--hf_output_path", output,
    ]  # fmt: skip


def run_tool(command: list[str], container: str) -> None:
    """Runs a converter; a missing executable or a failure becomes one clear error."""
    logger.info("running: %s", " ".join(command))
    scripts = [arg for arg in command[1:3] if arg.endswith(".py") and Path(arg).is_absolute()]
    for script in scripts:
        if not Path(script).is_file():
            raise DistilleryError(
                f"{script} not found: run this rule in the {container} container "
                f"(config key containers.{container}) or point the tool's directory option at "
                "its source tree"
            )
    try:
        subprocess.run(command, check=True)
    except FileNotFoundError:
        raise DistilleryError(
            f"{command[0]} not found: run this rule in the {container} container "
            f"(config key containers.{container}) or an environment that has it"
        ) from None
    except subprocess.CalledProcessError as err:
        raise DistilleryError(
            f"{' '.join(command[:2])} failed with status {err.returncode}; its output is above"
        ) from None


def copy_tokenizer(source: str | Path, destination: str | Path) -> list[str]:
    """Copies the tokenizer (and generation config) files of a model directory; returns their
    names."""
    copied = []
    for name in TOKENIZER_FILES:
        path = Path(source) / name
        if path.is_file():
            shutil.copy2(path, Path(destination) / name)
            copied.append(name)
    return copied
