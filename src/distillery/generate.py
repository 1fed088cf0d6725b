"""Stage: fill a prompt from each input row and generate a completion per row.

Usage::

    python -m distillery.generate --input results/benchmarks/demo/test.jsonl \\
        --output out.jsonl --prompt prompts/math.yaml --model results/models/smollm2-135m \\
        --temperature 0.7 --top-p 0.95 --max-tokens 256 --seed 1

Each output row is the input row plus ``generation``, ``num_generated_tokens``,
``finish_reason`` and timing fields. The job is resumable: rerun the same command after a crash
or a kill and only the missing samples are generated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distillery import cli
from distillery.chunks import chunk_bounds
from distillery.errors import DistilleryError
from distillery.generation.resume import PartialOutput, fingerprint
from distillery.generation.types import Request, SamplingParams
from distillery.jsonl import iter_jsonl, write_jsonl
from distillery.progress import Progress
from distillery.prompts import load_prompt

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Generate one completion per input row."""

    input: str = field(metadata={"help": "input JSONL; each row fills the prompt's fields"})
    output: str = field(metadata={"help": "output JSONL (written atomically at the end)"})
    prompt: str = field(metadata={"help": "prompt config YAML"})
    model: str = field(metadata={"help": "model directory (Hugging Face format)"})
    backend: Literal["hf"] = field(default="hf", metadata={"help": "generation backend"})
    batch_size: int = field(default=8, metadata={"help": "hf backend: prompts per batch"})
    dtype: str = field(default="auto", metadata={"help": "hf backend: torch dtype"})
    threads: int = field(default=1, metadata={"help": "CPU threads for torch"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0 = greedy)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass"})
    top_k: int = field(default=-1, metadata={"help": "top-k sampling (-1 = off)"})
    min_p: float = field(default=0.0, metadata={"help": "min-p sampling (0 = off)"})
    max_tokens: int = field(default=512, metadata={"help": "most tokens to generate per sample"})
    repetition_penalty: float = field(default=1.0, metadata={"help": "repetition penalty"})
    stop: tuple[str, ...] = field(default=(), metadata={"help": "stop strings"})
    seed: int = field(default=0, metadata={"help": "random seed of this sample set"})
    num_chunks: int = field(default=1, metadata={"help": "the input is cut into this many slices"})
    chunk_id: int = field(default=0, metadata={"help": "which slice this job generates"})
    max_samples: int = field(default=-1, metadata={"help": "use only the first N rows (-1 = all)"})

    def __post_init__(self):
        if self.max_tokens < 1:
            raise DistilleryError("--max-tokens must be at least 1")
        if self.temperature < 0:
            raise DistilleryError("--temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise DistilleryError("--top-p must be in (0, 1]")
        if self.batch_size < 1 or self.threads < 1:
            raise DistilleryError("--batch-size and --threads must be at least 1")
        if not 0 <= self.chunk_id < self.num_chunks:
            raise DistilleryError(f"--chunk-id must be in [0, {self.num_chunks})")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise DistilleryError("--dtype must be one of auto, float32, bfloat16, float16")

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            max_tokens=self.max_tokens,
            repetition_penalty=self.repetition_penalty,
            stop=self.stop,
            seed=self.seed,
        )


def model_identity(model: str | Path) -> dict:
    """Path plus size and mtime of each file, so a retrained model is a different model."""
    model = Path(model)
    if not model.is_dir():
        raise DistilleryError(
            f"{model}: model directory does not exist; build it first or fix the model in the "
            "config"
        )
    files = sorted(p for p in model.iterdir() if p.is_file())
    return {
        "path": str(model.resolve()),
        "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files],
    }


def make_backend(config: Config):
    if config.backend == "hf":
        from distillery.generation.hf import HFBackend

        return HFBackend(config.model, batch_size=config.batch_size, dtype=config.dtype)
    raise DistilleryError(f"unknown backend {config.backend!r}")


def main(config: Config) -> None:
    numbered = list(iter_jsonl(config.input))
    if config.max_samples > 0:
        numbered = numbered[: config.max_samples]
    start, end = chunk_bounds(len(numbered), config.num_chunks, config.chunk_id)
    numbered = numbered[start:end]
    rows = [row for _, row in numbered]
    prompt = load_prompt(config.prompt)
    prompt.check_rows(rows, config.input, [number for number, _ in numbered])
    if not rows:
        logger.warning("chunk %d of %d is empty", config.chunk_id, config.num_chunks)
        write_jsonl(config.output, [])
        return
    key = fingerprint(
        rows,
        [prompt.messages(row) for row in rows[:1]],
        Path(config.prompt).read_text(),
        model_identity(config.model),
        config.backend,
        config.sampling().__dict__,
    )
    partial = PartialOutput(config.output, key)
    todo = [Request(i, prompt.messages(row)) for i, row in enumerate(rows) if i not in partial]
    logger.info(
        "rows %d-%d of %s: %d to generate, %d already done",
        start,
        end - 1,
        config.input,
        len(todo),
        len(rows) - len(todo),
    )
    if todo:
        backend = make_backend(config)
        progress = Progress(len(rows), "samples", done=len(rows) - len(todo))
        tokens = 0
        try:
            for count, result in enumerate(backend.generate(todo, config.sampling()), start=1):
                partial.add(result.index, {**rows[result.index], **result.fields()})
                tokens += result.num_generated_tokens
                if count % config.batch_size == 0:
                    partial.sync()
                progress.update()
        finally:
            partial.close()
            progress.close()
            backend.close()
        logger.info("generated %d tokens (%s)", tokens, progress.status())
    partial.finish(len(rows))
    logger.info("wrote %d rows to %s", len(rows), config.output)


if __name__ == "__main__":
    cli.run(main, Config)
