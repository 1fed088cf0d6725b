"""The grading modes a benchmark names (``grading: math`` or ``multichoice``), one entry each:
how its answers are read and decided. The settings, the definitions and ``distillery.grade``
take their names from here; adding a mode is adding an entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from distillery.grading.answers import ExtractionConfig, extract_answer, extract_letter


@dataclass(frozen=True)
class Mode:
    """One way of grading.

    Attributes:
        name: what a benchmark's ``grading`` says.
        help: one line for the schema and ``--help``.
        relaxed: it reads the box, then the regex, whatever ``grading.regex_fallback`` says
            (NeMo-Skills' multichoice evaluator).
        decide: ``(rows, extraction, grading, workers) -> (answers, correct, timed out)``.
    """

    name: str
    help: str
    relaxed: bool
    decide: Callable


def _math(rows, extraction: ExtractionConfig, grading, workers: int):
    from distillery.grading.pool import grade_pairs

    answers = [extract_answer(r["generation"], extraction) for r in rows]
    pairs = [(r["expected_answer"], a) for r, a in zip(rows, answers, strict=True)]
    verdicts = grade_pairs(pairs, workers, grading.timeout)
    return answers, [v.correct for v in verdicts], [v.timed_out for v in verdicts]


def _multichoice(rows, extraction: ExtractionConfig, grading, workers: int):
    method = grading.letter_extraction
    letters = [extract_letter(r["generation"], extraction, method) for r in rows]
    correct = [
        letter is not None and letter == str(r["expected_answer"]).strip()
        for letter, r in zip(letters, rows, strict=True)
    ]
    return letters, correct, [False] * len(rows)


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("math", "symbolic equivalence of the boxed answer", False, _math),
        Mode("multichoice", "option letters (A, B, ...)", True, _multichoice),
    )
}
NAMES = tuple(MODES)


def describe() -> str:
    """The modes for a description: ``math = ...; multichoice = ...``.

    Example:
        >>> describe().split(";")[0]
        'math = symbolic equivalence of the boxed answer'
    """
    return "; ".join(f"{m.name} = {m.help}" for m in MODES.values())
