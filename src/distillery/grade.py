"""Stage: grade a generation file, adding ``predicted_answer`` and ``symbolic_correct``.

Usage::

    python -m distillery.grade --input generations.jsonl --output graded.jsonl --mode math
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from distillery import cli
from distillery.errors import DistilleryError
from distillery.grading import (
    DEFAULT_EXTRACT_REGEX,
    ExtractionConfig,
    extract_answer,
    extract_letter,
    is_equivalent,
)
from distillery.jsonl import iter_jsonl, write_jsonl
from distillery.progress import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Grade generations against ``expected_answer``."""

    input: str = field(metadata={"help": "generations (JSONL with generation, expected_answer)"})
    output: str = field(metadata={"help": "graded JSONL"})
    mode: Literal["math", "multichoice"] = field(
        default="math", metadata={"help": "math: symbolic equivalence; multichoice: letters"}
    )
    extract_from_boxed: bool = field(default=True, metadata={"help": "use the last \\boxed{}"})
    extract_regex: str = field(
        default=DEFAULT_EXTRACT_REGEX, metadata={"help": "fallback answer regex"}
    )
    regex_fallback: bool = field(
        default=True, metadata={"help": "try the regex when there is no \\boxed{}"}
    )
    timeout: int = field(default=10, metadata={"help": "seconds math-verify may spend per answer"})

    def __post_init__(self):
        if self.timeout < 1:
            raise DistilleryError("--timeout must be at least 1 second")

    def extraction(self) -> ExtractionConfig:
        return ExtractionConfig(self.extract_from_boxed, self.extract_regex, self.regex_fallback)


def grade_row(row: dict, config: Config) -> dict:
    """The row with ``predicted_answer`` and ``symbolic_correct`` set."""
    if config.mode == "multichoice":
        predicted = extract_letter(row["generation"], config.extraction())
        gold = str(row["expected_answer"]).strip()
        correct = predicted is not None and predicted == gold
    else:
        predicted = extract_answer(row["generation"], config.extraction())
        correct = is_equivalent(row["expected_answer"], predicted, config.timeout)
    return {**row, "predicted_answer": predicted, "symbolic_correct": correct}


def main(config: Config) -> None:
    numbered = list(iter_jsonl(config.input))
    for number, row in numbered:
        for key in ("generation", "expected_answer"):
            if key not in row:
                raise DistilleryError(
                    f"{config.input}:{number}: row has no '{key}' field; grading needs both "
                    "'generation' and 'expected_answer'"
                )
    progress = Progress(len(numbered), "graded")
    graded = []
    for _, row in numbered:
        graded.append(grade_row(row, config))
        progress.update()
    progress.close()
    write_jsonl(config.output, graded)
    correct = sum(r["symbolic_correct"] for r in graded)
    no_answer = sum(r["predicted_answer"] is None for r in graded)
    logger.info(
        "%s: %d/%d correct, %d without an answer", config.output, correct, len(graded), no_answer
    )


if __name__ == "__main__":
    cli.run(main, Config)
