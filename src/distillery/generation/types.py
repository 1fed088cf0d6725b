"""Plain data passed between the generate stage and its backends."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from distillery.errors import DistilleryError
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


CONTEXT_OVERFLOW = ("reduce_generation", "skip", "fail")


def fit_to_context(
    index: int, prompt_tokens: int, max_tokens: int, context: int, policy: str
) -> tuple[int, str | None]:
    """The ``max_tokens`` a request is sent with, so that prompt and generation fit the
    model's ``context``, or, for one that cannot be sent, ``(0, why)``; ``policy`` is the
    stage's ``context_overflow``: ``reduce_generation`` generates what fits, ``skip`` makes an
    error sample of any overflow, ``fail`` stops the job. A prompt that alone fills the context
    is an error sample under either of the first two.

    Example:
        >>> fit_to_context(0, 100, 50, 2048, "fail")
        (50, None)
        >>> fit_to_context(0, 2000, 100, 2048, "reduce_generation")
        (48, None)
        >>> fit_to_context(0, 2048, 100, 2048, "reduce_generation")[0]
        0
    """
    if prompt_tokens + max_tokens <= context:
        return max_tokens, None
    fills = prompt_tokens >= context
    wanted = f"prompt of {prompt_tokens} tokens" + (
        "" if fills else f" plus {max_tokens} to generate"
    )
    why = (
        f"{wanted} does not fit the model's context of {context} tokens; shorten the input or use "
        "a model with a longer context"
    )
    if policy == "fail":
        raise DistilleryError(
            f"sample {index}: {why}; set the stage's context_overflow to reduce_generation or "
            "skip to go on without it"
        )
    if fills or policy == "skip":
        return 0, why
    return context - prompt_tokens, None


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
