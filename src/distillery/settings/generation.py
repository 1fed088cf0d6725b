"""The generation stages' blocks (problem_extraction, solutions, evaluation) and serving."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from distillery.generation import backends
from distillery.settings.base import Block, Dtype, conflict, missing_keys, nullable

PARSE_REASONING = (
    "keep only the text after the reasoning end tag in `generation` (the full text stays in "
    "`_full_generation`)"
)
CHUNKS = "each seed's problems are split into this many jobs"
_GENERATED_NEEDS = ["prompt", "server", "seeds"]  # of solutions with source generate


class Server(Block):
    """which backend serves the model for a generation stage"""

    type: Literal[tuple(backends.BACKENDS)] = Field(  # type: ignore[valid-type]
        description="; ".join(f"{b.name} = {b.help}" for b in backends.BACKENDS.values())
    )
    model: str | None = Field(
        None,
        description="a key of `models` (evaluation takes it from the run); for openai, the model "
        "name the endpoint serves",
    )
    batch_size: int = Field(8, ge=1, description="hf: prompts generated together in one batch")
    dtype: Dtype = Field(
        "auto",
        description="hf, and vllm/sglang on a CPU (gpus 0): number format; auto = bf16 where the "
        "hardware computes it natively (GPUs, CPUs with AVX512-BF16 or AMX), else fp32; on GPUs "
        "a server's own choice",
    )
    gpus: int = Field(
        0,
        ge=0,
        description="GPUs the generation job gets (the rule requests as many): hf puts the "
        "model on them, a server spreads over them (see tensor_parallel); 0 = the CPU",
    )
    tensor_parallel: int | None = Field(
        None,
        ge=1,
        json_schema_extra=nullable,
        description="vllm / vllm_engine / sglang / trtllm: GPUs of one server (engine); a job "
        "with more gpus starts gpus / tensor_parallel replicas and spreads requests over them "
        "(default: one over all gpus)",
    )
    engines_per_gpu: int = Field(
        1,
        ge=1,
        description="vllm_engine: engines that share each replica's GPUs, each in a process of "
        "its own with its own share of the memory (set in args, e.g. --gpu-memory-utilization); "
        "for a model so small that one engine's CPU side, not the GPU, is the limit",
    )
    args: list[str] = Field(
        [],
        description="extra command-line arguments for the server (vllm_engine: vLLM's engine "
        "arguments, as vllm serve takes them), e.g. [--max-model-len, '16384']",
    )
    env: dict[str, str] = Field(
        {},
        description="environment variables for the server, e.g. {VLLM_CPU_KVCACHE_SPACE: '2'}",
    )
    python: str = Field(
        "python",
        description="vllm / sglang: interpreter of the environment the server is installed in; "
        "vllm_engine: of the environment vLLM is installed in (where the job's own interpreter "
        "cannot import vLLM, the job runs itself again under this one)",
    )
    served_model_name: str | None = Field(
        None, description="model name in requests (default the model path)"
    )
    tokenizer: str | None = Field(
        None,
        description="tokenizer directory: for a TensorRT-LLM engine, or the completions endpoint "
        "with an external model",
    )
    health_timeout: float = Field(
        600.0, gt=0, description="seconds to wait for the server's /health before the job fails"
    )
    base_url: str | None = Field(
        None, description="openai: the endpoint's root, e.g. https://api.example.com"
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="openai: environment variable holding the API key (never the key itself)",
    )
    endpoint: Literal["chat", "completions"] = Field(
        "chat",
        description="chat = the server applies the chat template; completions = the job renders "
        "it with the tokenizer",
    )
    max_concurrency: int = Field(
        512,
        ge=1,
        description="requests in flight at once, per server replica (vllm_engine: handed to "
        "each engine ahead of what it runs)",
    )
    request_timeout: float = Field(3600.0, gt=0, description="seconds one request may take")
    max_retries: int = Field(
        5, ge=0, description="retries of a request that failed (connection error, 429, 5xx)"
    )

    @model_validator(mode="after")
    def _endpoint_needs_url(self) -> Server:
        if self.type == "openai":
            missing_keys(self, ["base_url"], "type openai needs it")
        return self

    @model_validator(mode="after")
    def _gpus_are_used(self) -> Server:
        backend = backends.get(self.type)
        if self.gpus > 0 and not backend.gpus:
            raise conflict("gpus", f"server type {self.type} uses no GPUs of the job: set gpus: 0")
        if self.tensor_parallel is not None:
            if not backend.parallel:
                raise conflict(
                    "tensor_parallel",
                    f"server type {self.type} does not split its GPUs into replicas: remove it",
                )
            if self.gpus % self.tensor_parallel:
                raise conflict(
                    "tensor_parallel",
                    f"gpus ({self.gpus}) must be a multiple of it ({self.tensor_parallel}): each "
                    "replica gets tensor_parallel GPUs",
                )
        if self.engines_per_gpu > 1 and (self.type != "vllm_engine" or self.gpus == 0):
            raise conflict(
                "engines_per_gpu",
                "engines share GPUs only with server type vllm_engine and gpus above 0: remove it",
            )
        return self


class Inference(Block):
    """sampling settings, with the OpenAI / vLLM meaning of each"""

    temperature: float = Field(0.0, ge=0, description="sampling temperature; 0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling probability mass")
    top_k: int = Field(-1, description="sample among the k most likely tokens; -1 = off")
    min_p: float = Field(
        0.0,
        ge=0,
        le=1,
        description="drop tokens below this share of the top token's probability; 0 = off",
    )
    max_tokens: int = Field(512, ge=1, description="most tokens generated per sample")
    repetition_penalty: float = Field(1.0, gt=0, description="repetition penalty; 1 = off")
    stop: list[str] = Field([], description="strings that end a generation")
    extra_body: dict[str, Any] | None = Field(
        None,
        description="fields added to every request as they are, for server-specific options, "
        "e.g. {chat_template_kwargs: {enable_thinking: true}}",
    )


class Generation(Block):
    """What ``distillery.generate`` takes from a stage's block."""

    server: Server = Server(type="hf")
    inference: Inference = Inference()
    parse_reasoning: bool = Field(False, description=PARSE_REASONING)
    reasoning_end: str = Field(
        "</think>", description="the tag that ends the reasoning, for parse_reasoning"
    )
    max_samples: int = Field(-1, description="only the first N input rows (quick runs); -1 = all")
    system: str | None = Field(
        None,
        json_schema_extra=nullable,
        description="system prompt of every request, replacing the prompt file's (literal text, "
        "e.g. 'detailed thinking on'); unset = the prompt file's",
    )
    context_overflow: Literal["reduce_generation", "skip", "fail"] = Field(
        "reduce_generation",
        description="a request whose prompt plus max_tokens exceeds the model's context (or "
        "that the server rejects otherwise for good): reduce_generation = retried once with "
        "max_tokens cut to what fits, else skipped; skip = written with finish_reason error "
        "and an empty generation (counted as unanswered); fail = the job stops",
    )


class ProblemExtraction(Generation):
    """the extractor model turns each forum post into problems"""

    server: Server

    prompt: str = Field(description="prompt config file (fields come from the raw posts)")
    max_samples: int = Field(-1, description="only the first N posts (quick runs); -1 = all")


class Solutions(Generation):
    """the teacher model writes solutions to the extracted problems"""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"source": {"const": "raw_data"}}, "required": ["source"]},
            "else": {"required": _GENERATED_NEEDS},
        }
    )

    source: Literal["generate", "raw_data"] = Field(
        "generate",
        description="generate = the teacher writes them (default); raw_data = the raw data "
        "already has them (problem, generation), as with nemotron",
    )
    # with source raw_data there is nothing to generate, so no server
    server: Server | None = None  # type: ignore[assignment]
    prompt: str | None = Field(
        None, description="prompt config file (fields come from the extracted problems)"
    )
    seeds: int = Field(
        1,
        ge=1,
        description="solutions per problem, one sampling seed each (files output-rs{seed}.jsonl)",
    )
    chunks: int = Field(1, ge=1, description=CHUNKS)
    max_samples: int = Field(-1, description="only the first N problems (quick runs); -1 = all")

    @model_validator(mode="after")
    def _generated_needs(self) -> Solutions:
        if self.source == "generate":
            missing_keys(self, _GENERATED_NEEDS, "solutions are generated")
        return self


class Serving(Block):
    """how `serve_<run>` serves a run's model (default: the evaluation's server when it is
    vllm, sglang or trtllm, else vLLM)"""

    type: Literal[backends.SERVERS] = Field(  # type: ignore[valid-type]
        "vllm", description="server to run"
    )
    gpus: int = Field(0, ge=0, description="GPUs (tensor-parallel size); 0 = CPU builds")
    dtype: Dtype = Field(
        "auto",
        description="vllm / sglang --dtype; auto = on a CPU bf16 where it is native, else fp32; "
        "on GPUs the server's own choice",
    )
    python: str = Field(
        "python",
        description="vllm / sglang: interpreter of the environment the server is installed in",
    )
    args: list[str] = Field([], description="extra server arguments")
    env: dict[str, str] = Field({}, description="environment variables for the server")
    host: str = Field(
        "127.0.0.1",
        description="address to listen on (0.0.0.0 to be reached from other machines)",
    )
    port: int = Field(0, ge=0, description="port; 0 = a free one")
    health_timeout: float = Field(
        1800.0, gt=0, description="seconds to wait for the server to become healthy"
    )
