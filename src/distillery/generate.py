"""Stage: fill a prompt from each input row and generate a completion per row.

Usage (the generation settings are those of a stage's config block: a YAML file, JSON, or
dotted overrides)::

    python -m distillery.generate --input results/benchmarks/demo/test.jsonl \\
        --output out.jsonl --prompt prompts/math.yaml --model results/models/smollm2-135m \\
        --config-json '{"server": {"type": "hf"}}' --set inference.temperature=0.7 \\
        --set inference.max_tokens=256 --seed 1

Each output row is the input row plus ``generation``, ``num_generated_tokens``,
``finish_reason`` and timing fields. The job is resumable: rerun the same command after a crash
or a kill and only the missing samples are generated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.chunks import chunk_bounds
from distillery.errors import DistilleryError
from distillery.generation.client import ClientConfig, OpenAIClient
from distillery.generation.gpus import gpu_lease
from distillery.generation.resume import PartialOutput, fingerprint
from distillery.generation.servers import ServerSpec, serve
from distillery.generation.types import Request, SamplingParams, parse_reasoning
from distillery.jsonl import iter_jsonl, write_jsonl
from distillery.progress import Progress
from distillery.prompts import load_prompt
from distillery.settings.generation import Generation, Server

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Generate one completion per input row."""

    input: str = field(metadata={"help": "input JSONL; each row fills the prompt's fields"})
    output: str = field(metadata={"help": "output JSONL (written atomically at the end)"})
    prompt: str = field(metadata={"help": "prompt config YAML"})
    model: str = field(
        metadata={"help": "model directory (for openai: the model name the endpoint serves)"}
    )
    stage: Generation = field(
        metadata={
            "help": "the generation settings of a stage's config block: server, inference, "
            'parse_reasoning, max_samples (e.g. --config-json \'{"server": {"type": "hf"}}\')'
        }
    )
    seed: int = field(default=0, metadata={"help": "random seed of this sample set"})
    num_chunks: int = field(default=1, metadata={"help": "the input is cut into this many slices"})
    chunk_id: int = field(default=0, metadata={"help": "which slice this job generates"})
    threads: int = field(default=1, metadata={"help": "CPU threads for torch"})

    def __post_init__(self):
        if self.threads < 1:
            raise DistilleryError("--threads must be at least 1")
        if not 0 <= self.chunk_id < self.num_chunks:
            raise DistilleryError(f"--chunk-id must be in [0, {self.num_chunks})")

    @property
    def server(self) -> Server:
        return self.stage.server

    def sampling(self) -> SamplingParams:
        return SamplingParams.from_settings(self.stage.inference, self.seed)


def model_identity(config: Config) -> dict:
    """Path plus size and mtime of each file, so a retrained model is a different model; for
    an external endpoint, its URL and model name."""
    if config.server.type == "openai":
        return {"base_url": config.server.base_url, "model": config.model}
    model = Path(config.model)
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


@contextlib.contextmanager
def open_backend(config: Config) -> Iterator:
    """The backend for ``config``; a server backend's server lives as long as the block."""
    server = config.server
    if server.type == "hf":
        from distillery.generation.hf import HFBackend

        backend = HFBackend(config.model, batch_size=server.batch_size, dtype=server.dtype)
        try:
            yield backend
        finally:
            backend.close()
        return
    render, count_tokens = _tokenizer_functions(config)
    if server.type == "openai":
        api_key = os.environ.get(server.api_key_env)
        yield OpenAIClient(_client_config(config, server.base_url, api_key), render, count_tokens)
        return
    spec = ServerSpec.from_settings(server, config.model)
    with gpu_lease(server.gpus) as gpu_env, serve(spec, server.health_timeout, gpu_env) as url:
        yield OpenAIClient(_client_config(config, url, None, spec.name), render, count_tokens)


def _client_config(config: Config, base_url: str, api_key: str | None, name: str | None = None):
    server = config.server
    return ClientConfig(
        base_url=base_url,
        model=name or server.served_model_name or config.model,
        endpoint=server.endpoint,
        api_key=api_key,
        max_concurrency=server.max_concurrency,
        request_timeout=server.request_timeout,
        max_retries=server.max_retries,
        openai_strict=server.type == "openai",
        extra_body=config.stage.inference.extra_body,
    )


def _tokenizer_functions(config: Config):
    """Prompt rendering (completions endpoint) and a token counter for servers that report no
    usage; ``(None, None)`` when no tokenizer is available and none is needed."""
    source = config.server.tokenizer or (config.model if Path(config.model).is_dir() else None)
    if source is None:
        if config.server.endpoint == "completions":
            raise DistilleryError("--endpoint completions needs --tokenizer for an external model")
        return None, None
    from transformers import AutoTokenizer

    from distillery.generation.hf import render_chat

    tokenizer = AutoTokenizer.from_pretrained(source)
    return (
        lambda messages: render_chat(tokenizer, messages),
        lambda text: len(tokenizer(text, add_special_tokens=False).input_ids),
    )


def _extra_body_text(body: dict | None) -> str | None:
    """The extra body as the fingerprint of a partial output has always recorded it."""
    return None if body is None else json.dumps(body, sort_keys=True)


def main(config: Config) -> None:
    numbered = list(iter_jsonl(config.input))
    if config.stage.max_samples > 0:
        numbered = numbered[: config.stage.max_samples]
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
        model_identity(config),
        config.server.type,
        config.sampling().__dict__,
        [
            config.server.endpoint,
            config.stage.parse_reasoning,
            config.stage.reasoning_end,
            _extra_body_text(config.stage.inference.extra_body),
        ],
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
        progress = Progress(len(rows), "samples", done=len(rows) - len(todo))
        tokens = errors = 0
        try:
            with open_backend(config) as backend:
                for count, result in enumerate(backend.generate(todo, config.sampling()), 1):
                    fields = result.fields()
                    if config.stage.parse_reasoning:
                        fields = parse_reasoning(fields, config.stage.reasoning_end)
                    partial.add(result.index, {**rows[result.index], **fields})
                    tokens += result.num_generated_tokens
                    if result.finish_reason == "error":
                        errors += 1
                        line = numbered[result.index][0]
                        logger.warning("%s:%d: not generated: %s", config.input, line, result.error)
                    if count % config.server.batch_size == 0:
                        partial.sync()
                    progress.update()
        finally:
            partial.close()
            progress.close()
        logger.info("generated %d tokens (%s)", tokens, progress.status())
        if errors:
            logger.warning(
                "%d sample(s) could not be generated: written with finish_reason 'error' and an "
                "empty generation (they count as unanswered)",
                errors,
            )
    partial.finish(len(rows))
    logger.info("wrote %d rows to %s", len(rows), config.output)


if __name__ == "__main__":
    cli.run(main, Config)
