"""Stage: fill a prompt from each input row and generate a completion per row, for one or many
output files through one backend (one server per job).

Usage, one file (the generation settings are those of a stage's config block: a YAML file,
JSON, or dotted overrides)::

    python -m distillery.generate --input results/benchmarks/demo/test.jsonl \\
        --output out.jsonl --prompt prompts/math.yaml --model results/models/smollm2-135m \\
        --config-json '{"server": {"type": "hf"}}' --set inference.temperature=0.7 \\
        --set inference.max_tokens=256 --seed 1

Many files (every benchmark and seed of an evaluation run), ``--work`` instead of ``--input``,
``--output``, ``--prompt`` and ``--seed``: a JSON list of work sets, each an input file and
prompt with its seeds and their output files, and the settings that differ from the stage's
(its ``inference`` or ``parse_reasoning``; never the server, which all sets share)::

    --work '[{"input": "a/test.jsonl", "prompt": "prompts/math.yaml", "seeds": [0, 1],
              "outputs": ["a/rs0.jsonl", "a/rs1.jsonl"], "settings": {"inference": {...}}}]'

``--num-chunks``/``--chunk-id`` take one contiguous slice of each file's rows (each chunk job
writes its share of every file, possibly none). All requests share the server's in-flight
pool.

Each output row is the input row plus ``generation``, ``num_generated_tokens``,
``finish_reason`` and timing fields. Each output file is resumable on its own (its
``.partial``): rerun the same command after a crash or a kill and only the missing samples are
generated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import Field, model_validator

from distillery import cli
from distillery.chunks import chunk_bounds
from distillery.errors import DistilleryError
from distillery.generation import backends, reuse
from distillery.generation.client import ClientConfig, OpenAIClient
from distillery.generation.gpus import GpuMemory, gpu_lease, leased_gpu_ids
from distillery.generation.resume import PartialOutput, fingerprint
from distillery.generation.servers import ServerSpec, serve, server_dtype
from distillery.generation.types import Request, SamplingParams, parse_reasoning
from distillery.jsonl import atomic_output, iter_jsonl, write_jsonl
from distillery.progress import Progress
from distillery.prompts import MESSAGES_FIELD, PromptConfig, RenderedPrompt, load_prompt
from distillery.settings.base import Block, parse
from distillery.settings.generation import Generation, Server

logger = logging.getLogger(__name__)


class WorkSet(Block):
    """One input file and prompt, sampled once per seed into one output file each."""

    input: str
    prompt: str | None = Field(
        None, description="prompt config file; none: the rows carry their rendered _messages"
    )
    seeds: list[int] = Field(min_length=1)
    outputs: list[str] = Field(min_length=1)
    settings: dict = Field({}, description="the stage settings that differ for this set")

    @model_validator(mode="after")
    def _one_output_per_seed(self) -> WorkSet:
        if len(self.seeds) != len(self.outputs):
            raise ValueError(
                f"{len(self.seeds)} seeds but {len(self.outputs)} outputs: give one per seed"
            )
        return self


@dataclass(frozen=True)
class Config:
    """Generate one completion per input row, for one or many output files."""

    model: str = field(
        metadata={"help": "model directory (for openai: the model name the endpoint serves)"}
    )
    stage: Generation = field(
        metadata={
            "help": "the generation settings of a stage's config block: server, inference, "
            'parse_reasoning, max_samples (e.g. --config-json \'{"server": {"type": "hf"}}\')'
        }
    )
    input: str | None = field(
        default=None, metadata={"help": "input JSONL; each row fills the prompt's fields"}
    )
    output: str | None = field(
        default=None, metadata={"help": "output JSONL (written atomically at the end)"}
    )
    prompt: str | None = field(default=None, metadata={"help": "prompt config YAML"})
    seed: int = field(default=0, metadata={"help": "random seed of this sample set"})
    work: str | None = field(
        default=None,
        metadata={"help": "JSON list of work sets (instead of --input/--output/--prompt/--seed)"},
    )
    num_chunks: int = field(default=1, metadata={"help": "the work is cut into this many slices"})
    chunk_id: int = field(default=0, metadata={"help": "which slice this job generates"})
    threads: int = field(default=1, metadata={"help": "CPU threads for torch"})
    allow_empty_input: bool = field(
        default=False,
        metadata={"help": "an empty input file writes empty outputs without starting the model "
                  "(an LLM step with nothing to ask); otherwise it is an error"},
    )  # fmt: skip
    done: str | None = field(
        default=None,
        metadata={"help": "written last, listing the files this job finished: what the "
                  "workflow declares instead of those files, so that it neither deletes nor "
                  "touches the ones a rerun keeps"},
    )  # fmt: skip

    def __post_init__(self):
        if self.threads < 1:
            raise DistilleryError("--threads must be at least 1")
        if not 0 <= self.chunk_id < self.num_chunks:
            raise DistilleryError(f"--chunk-id must be in [0, {self.num_chunks})")
        single = [self.input, self.output, self.prompt]
        if self.work is None and None in single:
            raise DistilleryError("give --input, --output and --prompt, or --work")
        if self.work is not None and any(v is not None for v in single):
            raise DistilleryError("--work replaces --input, --output and --prompt: give one way")

    @property
    def server(self) -> Server:
        return self.stage.server

    def work_sets(self) -> list[WorkSet]:
        if self.work is None:
            return [WorkSet(input=self.input, prompt=self.prompt, seeds=[self.seed],
                            outputs=[self.output])]  # fmt: skip
        try:
            sets = json.loads(self.work)
        except json.JSONDecodeError as err:
            raise DistilleryError(f"--work is not JSON: {err}") from None
        if not isinstance(sets, list) or not sets:
            raise DistilleryError("--work must be a non-empty JSON list of work sets")
        return [parse(WorkSet, s, f"--work[{i}]") for i, s in enumerate(sets)]


@dataclass
class OutputFile:
    """One output file's share of this job: its input rows (numbered by line), prompt, seed
    and settings, and the resumable store of its finished samples."""

    input: str
    output: str
    prompt_path: str | None
    prompt: PromptConfig | RenderedPrompt
    seed: int
    stage: Generation
    numbered: list[tuple[int, dict]]
    partial: PartialOutput | None = None
    errors: int = 0
    # rows of this file that earlier chunks generate (where this share starts when merged)
    offset: int = 0
    whole: list[dict] = field(default_factory=list)  # every row of the file, all chunks'

    @property
    def rows(self) -> list[dict]:
        return [row for _, row in self.numbered]

    def sampling(self) -> SamplingParams:
        return SamplingParams.from_settings(self.stage.inference, self.seed)


def set_settings(config: Config, work: WorkSet, position: int) -> Generation:
    """The stage settings of one work set: the stage's, with the set's own on top."""
    if "server" in work.settings:
        raise DistilleryError(
            f"--work[{position}].settings.server: every set of a job shares the job's server; "
            "put sets with another server in another job"
        )
    if not work.settings:
        return config.stage
    data = cli.merge_blocks(config.stage.model_dump(exclude_defaults=True), work.settings)
    return parse(Generation, data, f"--work[{position}].settings")


def plan_files(config: Config) -> list[OutputFile]:
    """This chunk's share of every output file: each file's rows cut into ``num_chunks``
    contiguous slices. Cut file by file, not as one list, so that a file's shares stay where
    they were when files are added to the work (a benchmark, a seed): its chunk files are not
    written again."""
    files = []
    inputs: dict[str, list[tuple[int, dict]]] = {}  # each input read once
    for position, work in enumerate(config.work_sets()):
        stage = set_settings(config, work, position)
        if work.input not in inputs:
            inputs[work.input] = list(iter_jsonl(work.input, allow_empty=config.allow_empty_input))
        rows = inputs[work.input]
        if stage.max_samples > 0:
            rows = rows[: stage.max_samples]
        prompt = load_prompt(work.prompt) if work.prompt else RenderedPrompt()
        if stage.system is not None:
            prompt = prompt.with_system(stage.system)
        for seed, output in zip(work.seeds, work.outputs, strict=True):
            files.append(OutputFile(work.input, output, work.prompt, prompt, seed, stage, rows))
    outputs = [f.output for f in files]
    if len(set(outputs)) < len(outputs):
        raise DistilleryError("--work names an output file twice; give each sample set its own")
    for file in files:
        start, end = chunk_bounds(len(file.numbered), config.num_chunks, config.chunk_id)
        file.offset = start
        file.whole = file.rows
        file.numbered = file.numbered[start:end]
    for file in files:
        file.prompt.check_rows(file.rows, file.input, [n for n, _ in file.numbered])
    return files


# a request row may name its own sampling seed (a step that samples one prompt several times)
SEED_FIELD = "_seed"


def row_params(params: SamplingParams, row: dict) -> SamplingParams:
    """The file's sampling settings, with the row's own seed (``_seed``) where it has one."""
    if SEED_FIELD not in row:
        return params
    return replace(params, seed=int(row[SEED_FIELD]))


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


def replicas(server: Server) -> int:
    """Server replicas a job starts: its GPUs over each replica's tensor-parallel size, times
    the engines that share each replica's GPUs."""
    if server.gpus == 0 or not backends.get(server.type).parallel:
        return 1
    return server.gpus // (server.tensor_parallel or server.gpus) * server.engines_per_gpu


@contextlib.contextmanager
def open_backend(config: Config) -> Iterator:
    """The backend for ``config``, holding the job's GPUs; a server backend's servers live as
    long as the block."""
    server = config.server
    if server.type == "hf":
        from distillery.generation.hf import HFBackend

        with gpu_lease(server.gpus) as gpu_env:
            # in-process: the GPUs must be chosen before torch first touches CUDA
            os.environ.update(gpu_env)
            backend = HFBackend(
                config.model,
                batch_size=server.batch_size,
                dtype=server.dtype,
                gpus=server.gpus,
                context_overflow=config.stage.context_overflow,
            )
            try:
                yield backend
            finally:
                backend.close()
        return
    if server.type == "vllm_engine":
        from distillery.generation.vllm_engine import VLLMEngineBackend

        count = replicas(server)
        with gpu_lease(server.gpus) as gpu_env:
            os.environ.update(gpu_env)  # before vLLM first touches CUDA
            backend = VLLMEngineBackend(
                config.model,
                tensor_parallel=max(1, server.tensor_parallel or server.gpus),
                replica_gpus=_replica_gpus(gpu_env, server.gpus, count, server.engines_per_gpu),
                dtype=server_dtype(server.type, server.gpus, server.dtype),
                args=server.args,
                env=server.env,
                window=server.max_concurrency,
                context_overflow=config.stage.context_overflow,
                extra_body=config.stage.inference.extra_body,
                tokenizer=server.tokenizer,
            )
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
    count = replicas(server)
    with gpu_lease(server.gpus) as gpu_env:
        groups = _replica_gpus(gpu_env, server.gpus, count)
        with serve(spec, server.health_timeout, gpu_env, groups) as urls:
            if count > 1:
                logger.info("%d server replicas of %d GPU(s) each", count, spec.gpus)
            config_ = _client_config(config, tuple(urls), None, spec.name)
            yield OpenAIClient(config_, render, count_tokens)


def _replica_gpus(gpu_env: dict, gpus: int, count: int, per_group: int = 1) -> list[str] | None:
    """The ``CUDA_VISIBLE_DEVICES`` of each replica (None: one server on whatever the job has):
    the job's GPUs in ``count / per_group`` groups, each given to ``per_group`` replicas.

    Example:
        >>> _replica_gpus({"CUDA_VISIBLE_DEVICES": "4,5"}, 2, 4, per_group=2)
        ['4', '4', '5', '5']
    """
    if count <= 1:
        return None
    ids = leased_gpu_ids(gpu_env, gpus)
    groups = count // per_group
    size = len(ids) // groups
    return [
        ",".join(ids[i * size : (i + 1) * size]) for i in range(groups) for _ in range(per_group)
    ]


def _client_config(config: Config, base_url, api_key: str | None, name: str | None = None):
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
        context_overflow=config.stage.context_overflow,
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


def file_key(config: Config, file: OutputFile, model: dict, rows: list[dict] | None = None) -> str:
    """The fingerprint of everything that determines one file's samples (of ``rows``: this
    job's share by default)."""
    rows = file.rows if rows is None else rows
    return fingerprint(
        rows,
        [file.prompt.messages(row) for row in rows[:1]],
        Path(file.prompt_path).read_text() if file.prompt_path else "",
        model,
        config.server.type,
        file.sampling().__dict__,
        [
            config.server.endpoint,
            file.stage.parse_reasoning,
            file.stage.reasoning_end,
            _extra_body_text(file.stage.inference.extra_body),
        ],
    )


def main(config: Config) -> None:
    if (
        config.server.type == "vllm_engine"
        and Path(sys.argv[0]).resolve() == Path(__file__).resolve()
    ):
        from distillery.generation.vllm_engine import run_where_vllm_is

        run_where_vllm_is(config.server.python, "distillery.generate")
    files = plan_files(config)
    model = model_identity(config)
    requests: list[Request] = []
    # request index (its place in this job's work list) -> (file, row in the file's share)
    owners: dict[int, tuple[OutputFile, int]] = {}
    offset = 0
    reused = 0
    whole_keys = {}
    for file in files:
        offset += len(file.numbered)
        whole_keys[file.output] = file_key(config, file, model, file.whole)
        if not file.numbered:
            write_jsonl(file.output, [])
            with contextlib.suppress(FileNotFoundError):
                Path(file.output + ".partial").unlink()
            reuse.record(file.output, whole_keys[file.output], file.offset, 0)
            continue
        if reuse.reuse(file.output, whole_keys[file.output], file.offset, len(file.numbered)):
            reused += len(file.numbered)
            with contextlib.suppress(FileNotFoundError):  # a killed earlier try's, now moot
                Path(file.output + ".partial").unlink()
            continue
        file.partial = PartialOutput(file.output, file_key(config, file, model))
        params = file.sampling()
        todo = [i for i in range(len(file.numbered)) if i not in file.partial]
        start = offset - len(file.numbered)
        for i in todo:
            row = file.numbered[i][1]
            requests.append(Request(start + i, file.prompt.messages(row), row_params(params, row)))
            owners[start + i] = (file, i)
        lines = file.numbered[0][0], file.numbered[-1][0]
        logger.info(
            "%s lines %d-%d, seed %d -> %s: %d to generate, %d already done",
            file.input,
            *lines,
            file.seed,
            file.output,
            len(todo),
            len(file.numbered) - len(todo),
        )
    active = [f for f in files if f.partial is not None]
    total = sum(len(f.numbered) for f in active)
    if reused:
        logger.info(
            "%d of %d file(s) (%d samples) were generated by an earlier run with the same "
            "inputs and settings: not generated again",
            len(files) - len(active) - sum(not f.numbered for f in files), len(files), reused,
        )  # fmt: skip
    summary = None
    if requests:
        summary = _generate(config, requests, owners, total)
    for file in active:
        file.partial.finish(len(file.numbered))
        reuse.record(file.output, whole_keys[file.output], file.offset, len(file.numbered))
    errors = sum(f.errors for f in files)
    if errors:
        logger.warning(
            "%d sample(s) could not be generated: written with finish_reason 'error' and an "
            "empty generation (they count as unanswered): %s",
            errors,
            ", ".join(f"{f.output}: {f.errors}" for f in files if f.errors),
        )
    logger.info("wrote %d rows to %d file(s)", total, len(files))
    if summary:
        logger.info("%s", summary)
    if config.done:
        with atomic_output(config.done) as out:
            out.write(json.dumps({"outputs": [f.output for f in files]}, indent=1).encode() + b"\n")


def _generate(config: Config, requests: list[Request], owners: dict, total: int) -> str:
    """Generates every request through one backend, each result stored in its file at once;
    returns the job's throughput line (samples/s and output tokens/s from the backend's first
    request to its last result, and the GPU memory the job held at most)."""
    progress = Progress(total, "samples", done=total - len(requests))
    tokens = 0
    dirty: dict[int, OutputFile] = {}  # files written to since their last sync
    memory = GpuMemory() if config.server.gpus > 0 else None
    began = ended = None
    try:
        with open_backend(config) as backend:
            began = time.monotonic()
            for count, result in enumerate(backend.generate(requests), 1):
                file, row = owners[result.index]
                fields = result.fields()
                if file.stage.parse_reasoning:
                    fields = parse_reasoning(fields, file.stage.reasoning_end)
                source = file.numbered[row][1]
                if MESSAGES_FIELD in source:  # the request, not part of the output row
                    source = {k: v for k, v in source.items() if k != MESSAGES_FIELD}
                file.partial.add(row, {**source, **fields})
                dirty[id(file)] = file
                tokens += result.num_generated_tokens
                if result.finish_reason == "error":
                    file.errors += 1
                    line = file.numbered[row][0]
                    logger.warning("%s:%d: not generated: %s", file.input, line, result.error)
                if count % config.server.batch_size == 0:
                    for done in dirty.values():
                        done.partial.sync()
                    dirty.clear()
                progress.update()
            ended = time.monotonic()
    finally:
        for file in {id(f): f for f, _ in owners.values()}.values():
            file.partial.close()
        progress.close()
        if memory is not None:
            memory.stop()
    logger.info("generated %d tokens (%s)", tokens, progress.status())
    seconds = max(ended - began, 1e-9)
    peak = (
        "n/a" if memory is None or memory.peak_mib is None else f"{memory.peak_mib / 1024:.1f} GiB"
    )
    return (
        f"throughput: {len(requests)} samples in {seconds:.1f}s, {len(requests) / seconds:.2f} "
        f"samples/s, {tokens / seconds:.0f} output tokens/s; peak GPU memory {peak}"
    )


if __name__ == "__main__":
    cli.run(main, Config)
    cli.exit_now()
