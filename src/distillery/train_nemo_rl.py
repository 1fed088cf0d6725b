"""Stage: supervised fine-tuning with NeMo-RL (``training.backend: nemo_rl``), in its container.

Usage::

    python -m distillery.train_nemo_rl --data results/sft/sft-data.jsonl \\
        --validation results/sft/sft-validation.jsonl --model results/models/qwen2.5-14b \\
        --output results/train/model --metrics results/train/train-metrics.json \\
        --config-json '{"method": "full", "gpus": 8}'

Runs NeMo-RL's ``examples/run_sft.py`` on the SFT records' ``messages`` (its OpenAI-format
dataset) with the training settings as Hydra-style overrides of its ``examples/configs/sft.yaml``,
then converts the last checkpoint (DTensor/FSDP) to a HF directory with NeMo-RL's converter and
copies the tokenizer beside it. NeMo-RL needs NVIDIA GPUs: this is tested as command lines.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.errors import DistilleryError
from distillery.models.conversion import copy_tokenizer, nemo_rl_to_hf_command, run_tool
from distillery.models.files import staged_output
from distillery.settings.training import TrainingSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Fine-tune with NeMo-RL."""

    data: str = field(metadata={"help": "SFT data JSONL (with `messages`)"})
    model: str = field(metadata={"help": "base model directory"})
    output: str = field(metadata={"help": "trained model directory (HF)"})
    metrics: str = field(metadata={"help": "training metrics JSON"})
    training: TrainingSettings = field(
        metadata={"help": "the training block, e.g. --set method=full --set gpus=8"}
    )
    validation: str | None = field(default=None, metadata={"help": "validation records"})
    checkpoint_dir: str = field(default="results/train/nemo-rl", metadata={"help": "checkpoints"})
    nemo_rl_dir: str = field(default="/opt/nemo-rl", metadata={"help": "NeMo-RL's source tree"})

    def __post_init__(self):
        if self.training.method == "qlora":
            raise DistilleryError("method qlora runs with backend trl only; use full or lora")

    @property
    def global_batch_size(self) -> int:
        """Sequences per optimizer step: the TRL path's micro-batch x accumulation x GPUs."""
        t = self.training
        return t.micro_batch_size * t.gradient_accumulation_steps * max(1, t.gpus)


def sft_command(config: Config) -> list[str]:
    """``uv run examples/run_sft.py`` with the settings as overrides of its SFT config."""
    steps = (
        config.training.max_steps if config.training.max_steps > 0 else 10**9
    )  # epochs bound the run then
    overrides = {
        "policy.model_name": config.model,
        "policy.tokenizer.name": config.model,
        "policy.tokenizer.chat_template": "default",  # the model's own template
        "policy.train_global_batch_size": config.global_batch_size,
        "policy.train_micro_batch_size": config.training.micro_batch_size,
        "policy.max_total_sequence_length": config.training.max_seq_length,
        "policy.precision": "bfloat16",
        "policy.sequence_packing.enabled": True,
        "policy.dtensor_cfg.activation_checkpointing": config.training.gradient_checkpointing,
        "policy.optimizer.kwargs.lr": config.training.learning_rate,
        "policy.optimizer.kwargs.weight_decay": config.training.weight_decay,
        "sft.max_num_epochs": max(1, round(config.training.epochs)),
        "sft.max_num_steps": steps,
        "sft.seed": config.training.seed,
        "sft.val_period": config.training.save_steps if config.validation else 0,
        "sft.val_at_start": False,
        "checkpointing.enabled": True,
        "checkpointing.checkpoint_dir": config.checkpoint_dir,
        "checkpointing.save_period": config.training.save_steps,
        "checkpointing.metric_name": "val:val_loss" if config.validation else None,
        "data.train.dataset_name": "openai_format",
        "data.train.data_path": config.data,
        "data.train.chat_key": "messages",
        "cluster.gpus_per_node": config.training.gpus,
        "cluster.num_nodes": 1,
        "logger.wandb_enabled": False,
        "logger.tensorboard_enabled": False,
    }
    if config.validation:
        overrides.update(
            {
                "data.validation.dataset_name": "openai_format",
                "data.validation.data_path": config.validation,
                "data.validation.chat_key": "messages",
            }
        )
    else:
        overrides["data.validation"] = None
    if config.training.method == "lora":
        overrides.update(
            {
                "policy.dtensor_cfg.lora_cfg.enabled": True,
                "policy.dtensor_cfg.lora_cfg.dim": config.training.lora.r,
                # an int where it is one: NeMo-RL's own configs write `alpha: 32`
                "policy.dtensor_cfg.lora_cfg.alpha": _number(config.training.lora.alpha),
            }
        )
    return [
        "uv", "run", f"{config.nemo_rl_dir}/examples/run_sft.py",
        "--config", f"{config.nemo_rl_dir}/examples/configs/sft.yaml",
        *(f"{key}={_value(value)}" for key, value in overrides.items()),
    ]  # fmt: skip


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def last_step(directory: str | Path) -> Path:
    steps = [
        (int(p.name.split("_")[1]), p)
        for p in Path(directory).glob("step_*")
        if p.name.split("_")[1].isdigit()
    ]
    if not steps:
        raise DistilleryError(f"{directory}: NeMo-RL wrote no step_N checkpoint; see its log above")
    return max(steps)[1]


def main(config: Config) -> None:
    if not (Path(config.model) / "config.json").is_file():
        raise DistilleryError(f"{config.model}: not a Hugging Face model directory")
    run_tool(sft_command(config), "nemo_rl")
    step = last_step(config.checkpoint_dir)
    with staged_output(config.output) as staging:
        run_tool(
            nemo_rl_to_hf_command("fsdp", str(step), str(staging), config.nemo_rl_dir), "nemo_rl"
        )
        copy_tokenizer(config.model, staging)
    Path(config.metrics).write_text(
        json.dumps(
            {"backend": "nemo_rl", "method": config.training.method, "checkpoint": str(step)},
            indent=2,
        )
    )
    logger.info("trained with NeMo-RL: %s -> %s", step, config.output)


if __name__ == "__main__":
    cli.run(main, Config)
