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

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distillery import cli, dtypes
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
    backend: Literal["hf", "vllm", "trtllm", "sglang", "openai"] = field(
        default="hf",
        metadata={
            "help": "hf: in-process transformers; vllm/trtllm/sglang: start that server; "
            "openai: an existing endpoint (--base-url)"
        },
    )
    batch_size: int = field(default=8, metadata={"help": "hf backend: prompts per batch"})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "hf, and vllm/sglang on a CPU: number format (auto: bf16 where the hardware "
            "computes it natively, else fp32; on GPUs a server's own choice)"
        },
    )
    gpus: int = field(default=0, metadata={"help": "GPUs for the server (tensor parallel size)"})
    server_args: str = field(default="", metadata={"help": "extra server arguments, one string"})
    server_env: tuple[str, ...] = field(
        default=(), metadata={"help": "KEY=VALUE environment for the server"}
    )
    server_python: str = field(
        default="python", metadata={"help": "interpreter that runs vllm / sglang"}
    )
    served_model_name: str | None = field(
        default=None, metadata={"help": "model name in requests (default: the model path)"}
    )
    health_timeout: float = field(
        default=600.0, metadata={"help": "seconds to wait for the server to become healthy"}
    )
    base_url: str | None = field(default=None, metadata={"help": "openai: the endpoint's root"})
    api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "openai: environment variable with the key"}
    )
    endpoint: Literal["chat", "completions"] = field(
        default="chat",
        metadata={"help": "chat: the server applies the chat template; completions: we do"},
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "tokenizer for the completions endpoint (default: model)"}
    )
    max_concurrency: int = field(default=512, metadata={"help": "requests in flight"})
    request_timeout: float = field(default=3600.0, metadata={"help": "seconds per request"})
    max_retries: int = field(default=5, metadata={"help": "retries of a failed request"})
    extra_body: str | None = field(
        default=None, metadata={"help": "JSON object merged into every request's body"}
    )
    parse_reasoning: bool = field(
        default=False, metadata={"help": "keep only the text after the reasoning end tag"}
    )
    reasoning_end: str = field(default="</think>", metadata={"help": "reasoning end tag"})
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
        if self.dtype not in dtypes.NAMES:
            raise DistilleryError(f"--dtype must be one of {', '.join(dtypes.NAMES)}")
        if self.backend == "openai" and not self.base_url:
            raise DistilleryError("--backend openai needs --base-url")
        if self.max_concurrency < 1 or self.max_retries < 0 or self.gpus < 0:
            raise DistilleryError("--max-concurrency >= 1, --max-retries >= 0, --gpus >= 0")
        for entry in self.server_env:
            if "=" not in entry:
                raise DistilleryError(f"--server-env entry {entry!r} is not KEY=VALUE")
        if self.extra_body is not None:
            try:
                body = json.loads(self.extra_body)
            except json.JSONDecodeError as err:
                raise DistilleryError(f"--extra-body is not JSON: {err}") from None
            if not isinstance(body, dict):
                raise DistilleryError("--extra-body must be a JSON object")

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


def model_identity(config: Config) -> dict:
    """Path plus size and mtime of each file, so a retrained model is a different model; for
    an external endpoint, its URL and model name."""
    if config.backend == "openai":
        return {"base_url": config.base_url, "model": config.model}
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
    if config.backend == "hf":
        from distillery.generation.hf import HFBackend

        backend = HFBackend(config.model, batch_size=config.batch_size, dtype=config.dtype)
        try:
            yield backend
        finally:
            backend.close()
        return
    render, count_tokens = _tokenizer_functions(config)
    if config.backend == "openai":
        api_key = os.environ.get(config.api_key_env)
        yield OpenAIClient(_client_config(config, config.base_url, api_key), render, count_tokens)
        return
    spec = ServerSpec.from_flags(
        config.backend,
        config.model,
        config.gpus,
        config.server_args,
        config.server_python,
        config.server_env,
        config.served_model_name,
        config.tokenizer,
        config.dtype,
    )
    with gpu_lease(config.gpus) as gpu_env, serve(spec, config.health_timeout, gpu_env) as url:
        yield OpenAIClient(_client_config(config, url, None, spec.name), render, count_tokens)


def _client_config(config: Config, base_url: str, api_key: str | None, name: str | None = None):
    return ClientConfig(
        base_url=base_url,
        model=name or config.served_model_name or config.model,
        endpoint=config.endpoint,
        api_key=api_key,
        max_concurrency=config.max_concurrency,
        request_timeout=config.request_timeout,
        max_retries=config.max_retries,
        openai_strict=config.backend == "openai",
        extra_body=json.loads(config.extra_body) if config.extra_body else None,
    )


def _tokenizer_functions(config: Config):
    """Prompt rendering (completions endpoint) and a token counter for servers that report no
    usage; ``(None, None)`` when no tokenizer is available and none is needed."""
    source = config.tokenizer or (config.model if Path(config.model).is_dir() else None)
    if source is None:
        if config.endpoint == "completions":
            raise DistilleryError("--endpoint completions needs --tokenizer for an external model")
        return None, None
    from transformers import AutoTokenizer

    from distillery.generation.hf import render_chat

    tokenizer = AutoTokenizer.from_pretrained(source)
    return (
        lambda messages: render_chat(tokenizer, messages),
        lambda text: len(tokenizer(text, add_special_tokens=False).input_ids),
    )


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
        model_identity(config),
        config.backend,
        config.sampling().__dict__,
        [config.endpoint, config.parse_reasoning, config.reasoning_end, config.extra_body],
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
                    if config.parse_reasoning:
                        fields = parse_reasoning(fields, config.reasoning_end)
                    partial.add(result.index, {**rows[result.index], **fields})
                    tokens += result.num_generated_tokens
                    if result.finish_reason == "error":
                        errors += 1
                        line = numbered[result.index][0]
                        logger.warning("%s:%d: not generated: %s", config.input, line, result.error)
                    if count % config.batch_size == 0:
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
