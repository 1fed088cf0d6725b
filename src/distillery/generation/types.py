"""Plain data passed between the generate stage and its backends."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings, with the OpenAI/vLLM meaning of each (0 temperature = greedy)."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    max_tokens: int = 512
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class Request:
    """One prompt to complete; ``index`` is its position in the job's input."""

    index: int
    messages: list[dict] = field(hash=False)


@dataclass(frozen=True)
class Result:
    """One finished generation, in NeMo-Skills' output field names."""

    index: int
    generation: str
    num_generated_tokens: int
    finish_reason: str
    generation_start_time: float
    generation_end_time: float

    def fields(self) -> dict:
        return {
            "generation": self.generation,
            "num_generated_tokens": self.num_generated_tokens,
            "finish_reason": self.finish_reason,
            "generation_start_time": self.generation_start_time,
            "generation_end_time": self.generation_end_time,
            "generation_time": round(self.generation_end_time - self.generation_start_time, 3),
        }
