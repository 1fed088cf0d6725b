"""Stage: build a TensorRT-LLM engine from a Hugging Face model (run it in the TensorRT-LLM
container, on as many GPUs as the tensor-parallel size).

Usage::

    python -m distillery.convert_trtllm --model results/models/qwq-32b \\
        --output results/models/qwq-32b-trtllm --gpus 8 --set max_seq_len=10000 \\
        [--set quantization=fp8]

The engine directory gets the tokenizer copied beside the engine, so ``trtllm-serve`` serves it
on its own (the generation stage passes ``--backend tensorrt`` for an engine directory). Current
TensorRT-LLM also serves the HF checkpoint directly (its PyTorch backend); docs/conversion.md says
when an engine is worth building.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.models.conversion import TrtllmEngine, copy_tokenizer, model_type, run_tool
from distillery.models.files import staged_output
from distillery.settings.model_entries import Engine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Build a TensorRT-LLM engine."""

    model: str = field(metadata={"help": "Hugging Face model directory"})
    output: str = field(metadata={"help": "engine directory"})
    engine: Engine = field(
        metadata={"help": "the model entry's `engine` block, e.g. --set max_seq_len=10000"}
    )
    gpus: int = field(default=1, metadata={"help": "tensor-parallel size"})
    examples_dir: str = field(
        default="/app/tensorrt_llm/examples", metadata={"help": "TensorRT-LLM's examples"}
    )


def main(config: Config) -> None:
    model_type(config.model)  # a clear error before anything runs when it is not a model
    output = Path(config.output)
    checkpoint = output.with_name(f".{output.name}.checkpoint")
    with staged_output(output) as staging:
        engine = TrtllmEngine(
            config.model,
            str(staging),
            max(1, config.gpus),
            config.engine.dtype,
            config.engine.max_batch_size,
            config.engine.max_input_len,
            config.engine.max_seq_len,
            config.engine.max_num_tokens,
            config.engine.quantization,
            config.examples_dir,
        )
        shutil.rmtree(checkpoint, ignore_errors=True)
        try:
            run_tool(engine.checkpoint_command(str(checkpoint)), "trtllm")
            run_tool(engine.build_command(str(checkpoint)), "trtllm")
        finally:
            shutil.rmtree(checkpoint, ignore_errors=True)
        copy_tokenizer(config.model, staging)
    logger.info("engine for %s in %s", config.model, output)


if __name__ == "__main__":
    cli.run(main, Config)
