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
from distillery.grading.answers import ExtractionConfig
from distillery.grading.modes import MODES, NAMES, describe
from distillery.jsonl import iter_jsonl, write_jsonl
from distillery.settings.workflow import Grading

logger = logging.getLogger(__name__)

# set on a graded row whose verdict ran out of time, memory or size budget (it counts as wrong)
TIMED_OUT = "grading_timed_out"


@dataclass(frozen=True)
class Config:
    """Grade generations against ``expected_answer``."""

    input: str = field(metadata={"help": "generations (JSONL with generation, expected_answer)"})
    output: str = field(metadata={"help": "graded JSONL"})
    grading: Grading = field(
        metadata={"help": "the grading block (extract_regex, timeout, ...), e.g. --set timeout=5"}
    )
    mode: Literal[NAMES] = field(  # type: ignore[valid-type]
        default="math", metadata={"help": describe()}
    )
    workers: int = field(default=1, metadata={"help": "processes for symbolic equivalence"})

    def __post_init__(self):
        if self.workers < 1:
            raise DistilleryError("--workers must be at least 1")

    def extraction(self) -> ExtractionConfig:
        g = self.grading
        fallback = g.regex_fallback or MODES[self.mode].relaxed
        return ExtractionConfig(g.extract_from_boxed, g.extract_regex, fallback)


def grade_rows(rows: list[dict], config: Config) -> tuple[list[dict], int]:
    """The rows with ``predicted_answer`` and ``symbolic_correct``; also how many timed out.

    A verdict that could not be reached within the time, memory or size budget is "not
    equivalent", and its row also carries ``grading_timed_out: true``.
    """
    mode = MODES[config.mode]
    predicted, correct, timeouts = mode.decide(
        rows, config.extraction(), config.grading, config.workers
    )
    graded = []
    for row, answer, right, timed_out in zip(rows, predicted, correct, timeouts, strict=True):
        out = {**row, "predicted_answer": answer, "symbolic_correct": right}
        if timed_out:
            out[TIMED_OUT] = True
        graded.append(out)
    return graded, sum(timeouts)


def main(config: Config) -> None:
    numbered = list(iter_jsonl(config.input))
    for number, row in numbered:
        for key in ("generation", "expected_answer"):
            if key not in row:
                raise DistilleryError(
                    f"{config.input}:{number}: row has no '{key}' field; grading needs both "
                    "'generation' and 'expected_answer'"
                )
    graded, timed_out = grade_rows([row for _, row in numbered], config)
    write_jsonl(config.output, graded)
    correct = sum(r["symbolic_correct"] for r in graded)
    no_answer = sum(r["predicted_answer"] is None for r in graded)
    logger.info(
        "%s: %d/%d correct, %d without an answer, %d timed out",
        config.output,
        correct,
        len(graded),
        no_answer,
        timed_out,
    )


if __name__ == "__main__":
    cli.run(main, Config)
