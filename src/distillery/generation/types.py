"""Plain data passed between the generate stage and its backends."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from distillery.settings.generation import Inference

_DEFAULT = Inference()


@dataclass(frozen=True)
class SamplingParams:
    """What a backend samples with: a stage's ``inference`` settings (declared, with their
    defaults, in :class:`~distillery.settings.generation.Inference`) and the job's seed."""

    temperature: float = _DEFAULT.temperature
    top_p: float = _DEFAULT.top_p
    top_k: int = _DEFAULT.top_k
    min_p: float = _DEFAULT.min_p
    max_tokens: int = _DEFAULT.max_tokens
    repetition_penalty: float = _DEFAULT.repetition_penalty
    stop: tuple[str, ...] = tuple(_DEFAULT.stop)
    seed: int = 0

    @classmethod
    def from_settings(cls, inference: Inference, seed: int) -> SamplingParams:
        shared = {f.name for f in fields(cls)} - {"stop", "seed"}
        values = {name: getattr(inference, name) for name in shared}
        return cls(**values, stop=tuple(inference.stop), seed=seed)


@dataclass(frozen=True)
class Request:
    """One prompt to complete with its sampling settings (requests of one job may differ: each
    output file has its own seed, each benchmark its own length); ``index`` is its position in
    the job's combined work list."""

    index: int
    messages: list[dict] = field(hash=False)
    params: SamplingParams = SamplingParams()


@dataclass(frozen=True)
class Result:
    """One finished generation, in NeMo-Skills' output field names. A request that could not
    be served has ``finish_reason`` ``error``, an empty generation and the reason in ``error``."""

    index: int
    generation: str
    num_generated_tokens: int
    finish_reason: str
    generation_start_time: float
    generation_end_time: float
    reasoning_content: str | None = None
    error: str | None = None

    def fields(self) -> dict:
        extra = (
            {} if self.reasoning_content is None else {"reasoning_content": self.reasoning_content}
        )
        if self.error is not None:
            extra["error"] = self.error
        return {
            **extra,
            "generation": self.generation,
            "num_generated_tokens": self.num_generated_tokens,
            "finish_reason": self.finish_reason,
            "generation_start_time": self.generation_start_time,
            "generation_end_time": self.generation_end_time,
            "generation_time": round(self.generation_end_time - self.generation_start_time, 3),
        }


def parse_reasoning(fields: dict, end: str = "</think>") -> dict:
    """Splits a reasoning model's output: ``generation`` keeps what follows the last ``end`` tag,
    ``_full_generation`` keeps everything, ``_generation_finished_thinking`` says whether the tag
    was there. Without the tag (thinking cut off by the token limit) the answer is empty, as in
    NeMo-Skills, but the full text is not lost. A server that already split the reasoning off
    (``reasoning_content``) has its parts joined into ``_full_generation``.

    Example:
        >>> parse_reasoning({"generation": "hmm</think> 42"})["generation"]
        '42'
    """
    text = fields["generation"]
    reasoning = fields.get("reasoning_content")
    if reasoning is not None:
        return {
            **fields,
            "_full_generation": f"{reasoning}{end}{text}",
            "_generation_finished_thinking": True,
        }
    finished = end in text
    return {
        **fields,
        "generation": text.rsplit(end, 1)[1].lstrip() if finished else "",
        "_full_generation": text,
        "_generation_finished_thinking": finished,
    }
