"""The evaluation block: which models are evaluated on which benchmarks, each run's overrides,
and its judge (a processing step's settings: this module builds on both)."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag

from distillery.settings.base import Block, Name, nullable
from distillery.settings.generation import CHUNKS, Generation, Inference, Server
from distillery.settings.processing import EvaluationJudge


class Run(Block):
    """an evaluation run that overrides the evaluation's settings"""

    model: Name = Field(description="a key of `models`, or `trained`")
    parse_reasoning: bool | None = Field(
        None, description="this run's parse_reasoning (e.g. only the reasoning model's)"
    )
    prompt: str | None = Field(
        None,
        description="this run's prompt config file for all its benchmarks (default: each "
        "benchmark's prompt, else evaluation.prompt)",
    )
    system: str | None = Field(
        None,
        description="this run's system prompt (literal text), replacing the prompt file's: "
        "e.g. 'detailed thinking on' and 'detailed thinking off' for two runs of a dual-mode "
        "model",
    )
    inference: Inference | None = None


def _run_kind(entry: Any) -> str:
    return "(run)" if isinstance(entry, dict) else "(name)"


# a run is a model name, or a mapping with the model and what it overrides
RunEntry = Annotated[
    Union[Annotated[Name, Tag("(name)")], Annotated[Run, Tag("(run)")]],  # noqa: UP007
    Discriminator(_run_kind),
]


class Evaluation(Generation):
    """which models are evaluated on which benchmarks"""

    server: Server

    prompt: str = Field(description="prompt config file (fields come from the benchmark rows)")
    benchmarks: dict[Name, Annotated[int | None, Field(ge=1, json_schema_extra=nullable)]] = Field(
        min_length=1,
        description="benchmark name (a key of `benchmarks`, a benchmark definition, or a group "
        "of them: math-suite, mcq-suite): number of sampled seeds (NeMo-Skills' aime24:8); left "
        "empty, the number its definition (or group) recommends",
    )
    chunks: int = Field(1, ge=1, description=CHUNKS)
    max_seq_len: int | None = Field(
        None,
        ge=1,
        json_schema_extra=nullable,
        description="generations longer than this many tokens count as wrong and unanswered in "
        "the metrics",
    )
    judge: EvaluationJudge | None = None
    runs: dict[Name, RunEntry] = Field(
        min_length=1,
        description="run name: model (a key of `models`, or `trained`), or {model, "
        "parse_reasoning, prompt, system, inference} to override the evaluation's settings for "
        "that run; the first run is the reference for deltas",
    )
