"""Stage: convert checkpoints between Hugging Face and NeMo / NeMo-RL, with those projects' own
converters (run it in the NeMo container).

Usage::

    # a NeMo-RL SFT checkpoint (or a .nemo file) back to a HF model directory
    python -m distillery.convert_nemo --direction to-hf --format nemo-rl-fsdp \\
        --checkpoint results/nemo-rl/step_1000 --reference results/models/qwen2.5-14b \\
        --output results/models/qwen2.5-14b-sft
    # a HF model to a .nemo file
    python -m distillery.convert_nemo --direction to-nemo --checkpoint results/models/qwen2.5-14b \\
        --output results/nemo/qwen2.5-14b.nemo

The output appears only when the converter succeeded; for HF outputs the tokenizer of the
reference model is copied beside the weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distillery import cli
from distillery.errors import DistilleryError
from distillery.models.conversion import (
    copy_tokenizer,
    hf_to_nemo_command,
    model_type,
    nemo_rl_to_hf_command,
    nemo_to_hf_command,
    run_tool,
)
from distillery.models.files import staged_output

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Convert between Hugging Face and NeMo checkpoints."""

    direction: Literal["to-hf", "to-nemo"] = field(metadata={"help": "which way to convert"})
    checkpoint: str = field(metadata={"help": "the checkpoint to convert"})
    output: str = field(metadata={"help": "the converted checkpoint"})
    format: Literal["nemo", "nemo-rl-fsdp", "nemo-rl-megatron"] = field(
        default="nemo", metadata={"help": "to-hf: .nemo file, or NeMo-RL step_N directory"}
    )
    reference: str | None = field(
        default=None, metadata={"help": "to-hf: HF model of the same architecture"}
    )
    precision: str = field(default="bf16", metadata={"help": "to-nemo: weights precision"})
    nemo_dir: str = field(default="/opt/NeMo", metadata={"help": "NeMo's source tree"})
    nemo_rl_dir: str = field(default="/opt/nemo-rl", metadata={"help": "NeMo-RL's source tree"})


def commands(config: Config, staging: Path) -> list[list[str]]:
    if config.direction == "to-nemo":
        return [
            hf_to_nemo_command(config.checkpoint, str(staging), config.precision, config.nemo_dir)
        ]
    if config.reference is None:
        raise DistilleryError("--reference (the HF model of the same architecture) is needed")
    model_type(config.reference)
    if config.format == "nemo":
        return [
            nemo_to_hf_command(config.checkpoint, config.reference, str(staging), config.nemo_dir)
        ]
    backend = config.format.removeprefix("nemo-rl-")
    return [nemo_rl_to_hf_command(backend, config.checkpoint, str(staging), config.nemo_rl_dir)]


def main(config: Config) -> None:
    if not Path(config.checkpoint).exists():
        raise DistilleryError(f"{config.checkpoint}: no such checkpoint")
    with staged_output(config.output) as staging:
        if config.direction == "to-hf":
            staging.mkdir(parents=True)
        for command in commands(config, staging):
            run_tool(command, "nemo")
        if config.direction == "to-hf":
            copy_tokenizer(config.reference, staging)
    logger.info("converted %s to %s", config.checkpoint, config.output)


if __name__ == "__main__":
    cli.run(main, Config)
