"""Per-solution filters of NeMo-Skills' SFT data preparation."""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\boxed\{([^}]*)\}")


def has_multiple_boxed(text: str) -> bool:
    """More than one ``\\boxed{}`` (NeMo-Skills' ``drop_multi_boxed`` pattern).

    Example:
        >>> has_multiple_boxed(r"\\boxed{1} or \\boxed{2}")
        True
    """
    return len(_BOXED.findall(text)) > 1


def has_think_tags(text: str, tags: tuple[str, ...]) -> bool:
    """Every required reasoning tag is present (``remove_no_think_tags``). QwQ-style models put
    ``<think>`` in the chat template, so often only ``</think>`` is required."""
    return all(tag in text for tag in tags)


def trim_solution(text: str) -> str:
    """Cuts what follows the line of the last ``\\boxed`` (``trim_solutions``): a model that keeps
    talking after its final answer teaches the student to do so too.

    Example:
        >>> trim_solution("so \\\\boxed{4}.\\nAnyway, other thoughts")
        'so \\\\boxed{4}.'
    """
    position = text.rfind("\\boxed")
    if position < 0:
        return text
    end = text.find("\n", position)
    return text if end < 0 else text[:end]


def answer_part(text: str, end_tag: str = "</think>") -> str | None:
    """What follows the reasoning (for "thinking off" training records), or ``None``."""
    if end_tag not in text:
        return None
    answer = text.rsplit(end_tag, 1)[1].strip()
    return answer or None
