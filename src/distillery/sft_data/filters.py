"""The selection steps of NeMo-Skills' SFT data preparation, in the order they run.

Each step takes one problem's solutions and returns those it keeps; the pipeline runs
:data:`STEPS` in order and the report counts each step's removals under its name. A filter's
settings are its own small config model, whose keys sit under ``sft_data.filters`` (the
``filters`` block is composed from them); adding a filter is adding one entry here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from distillery.errors import DistilleryError
from distillery.processing.parsers import judged_correct
from distillery.settings.base import Block
from distillery.sft_data.labels import is_unlabeled, passes_majority_filter

_BOXED = re.compile(r"\\boxed\{([^}]*)\}")


def has_multiple_boxed(text: str) -> bool:
    """More than one ``\\boxed{}`` (NeMo-Skills' ``drop_multi_boxed`` pattern).

    Example:
        >>> has_multiple_boxed(r"\\boxed{1} or \\boxed{2}")
        True
    """
    return len(_BOXED.findall(text)) > 1


def has_think_tags(text: str, tags: tuple[str, ...] | list[str]) -> bool:
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


def contains_any(text: str, patterns: list[str]) -> bool:
    """Any pattern occurs in ``text``, as a literal string (NeMo-Skills' ``DropIfRegexMatch``
    escapes its patterns before searching).

    Example:
        >>> contains_any("Let me run ```python", ["```python"]), contains_any("x = 2", ["$"])
        (True, False)
    """
    return any(pattern in text for pattern in patterns)


class Context:
    """What steps share across problems: the deduplication hashes, the student's token counter
    and the contamination check (both given by the stage)."""

    def __init__(self, count_tokens=None, contaminated: Callable[[str], bool] | None = None):
        self.seen: set[int] = set()
        self._count_tokens = count_tokens
        self.contaminated = contaminated or (lambda problem: False)

    def tokens(self, texts: list[str]) -> list[int]:
        if self._count_tokens is None:
            raise DistilleryError("length filters need the student's tokenizer")
        return self._count_tokens(texts)


Apply = Callable[[list[dict], Any, Context], list[dict]]


@dataclass(frozen=True)
class Step:
    """One selection step.

    Attributes:
        name: its row in the report; for a filter, also its switch under ``sft_data.filters``.
        apply: ``(one problem's rows, the sft_data settings, context) -> rows kept``.
        settings: a filter's keys under ``sft_data.filters`` (None: the step reads top-level
            keys of ``sft_data``, or has none).
        enabled: whether it runs for these settings (default: its switch is on).
        counted: False for a step that only edits rows (no report row).
    """

    name: str
    apply: Apply
    settings: type[Block] | None = None
    enabled: Callable[[Any], bool] | None = field(default=None)
    counted: bool = True

    def is_on(self, settings) -> bool:
        if self.enabled is not None:
            return self.enabled(settings)
        return bool(getattr(settings.filters, self.name))


def _each(keep: Callable[[dict, Any], bool]) -> Apply:
    """A step that judges each solution alone."""
    return lambda rows, settings, context: [r for r in rows if keep(r, settings)]


def _correct(row: dict, s) -> bool:
    if is_unlabeled(row):
        return s.add_unlabeled
    if s.use_judgement:
        if "judgement" not in row:  # not judged (NeMo-Skills skips these too)
            return False
        # as the judge step read it; no readable verdict is incorrect, as in NeMo-Skills
        correct = row.get("judge_correct")
        if correct is None:
            correct = judged_correct(row["judgement"])
        return s.add_correct if correct else s.add_incorrect
    return s.add_correct if row["symbolic_correct"] else s.add_incorrect


def _deduplicate(rows: list[dict], settings, context: Context) -> list[dict]:
    unique = []
    for row in rows:
        key = hash((row["problem"], row["generation"]))
        if key not in context.seen:
            context.seen.add(key)
            unique.append(row)
    return unique


def _trim(rows: list[dict], settings, context: Context) -> list[dict]:
    for row in rows:
        row["generation"] = trim_solution(row["generation"])
    return rows


def _problem_length(rows: list[dict], settings, context: Context) -> list[dict]:
    f = settings.filters
    (length,) = context.tokens([rows[0]["problem"]])
    return rows if f.min_problem_length <= length <= f.max_problem_length else []


def _solution_length(rows: list[dict], settings, context: Context) -> list[dict]:
    f = settings.filters
    lengths = context.tokens([r["generation"] for r in rows])
    low, high = f.min_solution_length, f.max_solution_length
    return [r for r, n in zip(rows, lengths, strict=True) if low <= n <= high]


class DropMultiBoxed(Block):
    drop_multi_boxed: bool = Field(
        False, description="drop solutions with more than one boxed answer"
    )


class RemoveContaminated(Block):
    remove_contaminated: bool = Field(
        False, description="drop problems that overlap a benchmark problem (see contamination)"
    )


class RemoveNoThinkTags(Block):
    remove_no_think_tags: bool = Field(False, description="drop solutions without the think_tags")
    think_tags: list[str] = Field(
        ["</think>"],
        description="tags remove_no_think_tags requires, e.g. [</think>] (QwQ: <think> is in the "
        "chat template) or [<think>, </think>]",
    )


class DropIfRegexMatch(Block):
    drop_if_regex_match: list[str] = Field(
        [],
        description="drop solutions that contain any of these strings (NeMo-Skills' "
        "DropIfRegexMatch: the patterns are matched literally), e.g. ['```python']",
    )


class TrimSolutions(Block):
    trim_solutions: bool = Field(
        False, description="cut what follows the line of the last boxed answer"
    )


class RemoveLenOutlierProblems(Block):
    remove_len_outlier_problems: bool = Field(
        False,
        description="drop problems outside [min_problem_length, max_problem_length] student tokens",
    )
    min_problem_length: int = Field(0, ge=0, description="in student tokens")
    max_problem_length: int = Field(1024, ge=1, description="in student tokens")


class RemoveLenOutlierSolutions(Block):
    remove_len_outlier_solutions: bool = Field(
        False,
        description="drop solutions outside [min_solution_length, max_solution_length] student "
        "tokens",
    )
    min_solution_length: int = Field(0, ge=0, description="in student tokens")
    max_solution_length: int = Field(2048, ge=1, description="in student tokens")


STEPS: tuple[Step, ...] = (
    # solutions none of whose rewritten summaries was valid (solution_summaries)
    Step(
        "no valid summary",
        _each(lambda r, s: not r.get("no_valid_summary")),
        enabled=lambda s: True,
    ),
    Step("correctness selection", _each(_correct), enabled=lambda s: True),
    Step("deduplicate (problem, generation)", _deduplicate, enabled=lambda s: s.deduplicate),
    Step(
        "drop_multi_boxed",
        _each(lambda r, s: not has_multiple_boxed(r["generation"])),
        DropMultiBoxed,
    ),
    Step(
        "remove_contaminated",
        lambda rows, s, context: [] if context.contaminated(rows[0]["problem"]) else rows,
        RemoveContaminated,
    ),
    Step(
        "remove_no_think_tags",
        _each(lambda r, s: has_think_tags(r["generation"], s.filters.think_tags)),
        RemoveNoThinkTags,
    ),
    Step(
        "drop_if_regex_match",
        _each(lambda r, s: not contains_any(r["generation"], s.filters.drop_if_regex_match)),
        DropIfRegexMatch,
    ),
    Step(
        "majority filter",
        _each(
            lambda r, s: passes_majority_filter(r, s.min_majority_votes, s.min_majority_percentage)
        ),
        enabled=lambda s: True,
    ),
    Step("trim_solutions", _trim, TrimSolutions, counted=False),
    Step("remove_len_outlier_problems", _problem_length, RemoveLenOutlierProblems),
    Step("remove_len_outlier_solutions", _solution_length, RemoveLenOutlierSolutions),
)
