"""Stage: turn solution samples into SFT data for the student, with a per-step report.

Usage::

    python -m distillery.prepare_sft_data --inputs results/sdg/solutions/output-rs*.jsonl \\
        --output results/sft/sft-data.jsonl --report results/sft/report.json \\
        --prompt prompts/math.yaml --tokenizer results/models/smollm2-135m
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.errors import DistilleryError
from distillery.grading import DEFAULT_EXTRACT_REGEX, ExtractionConfig
from distillery.jsonl import iter_jsonl, write_json, write_jsonl, write_text
from distillery.prompts import load_prompt
from distillery.sft_data import (
    Report,
    Selection,
    add_predicted_answer,
    deduplicate,
    fill_majority_answers,
    format_example,
    label,
    select,
    shuffle,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Build SFT data from solution samples."""

    inputs: tuple[str, ...] = field(metadata={"help": "solution files, one per seed"})
    output: str = field(metadata={"help": "SFT data JSONL"})
    report: str = field(metadata={"help": "report JSON (a markdown copy goes beside it)"})
    prompt: str = field(metadata={"help": "the student's prompt config"})
    tokenizer: str = field(metadata={"help": "student model directory (its chat template)"})
    add_correct: bool = field(default=True, metadata={"help": "keep correct solutions"})
    add_incorrect: bool = field(default=False, metadata={"help": "keep incorrect solutions"})
    add_unlabeled: bool = field(
        default=False, metadata={"help": "keep solutions of problems without any answer"}
    )
    fill_majority: bool = field(
        default=True, metadata={"help": "label problems without an answer by majority vote"}
    )
    min_majority_votes: int = field(default=0, metadata={"help": "majority filter: least votes"})
    min_majority_percentage: float = field(
        default=0.0, metadata={"help": "majority filter: least share of votes"}
    )
    deduplicate: bool = field(default=True, metadata={"help": "drop repeated (problem, solution)"})
    extract_regex: str = field(
        default=DEFAULT_EXTRACT_REGEX, metadata={"help": "answer regex when there is no box"}
    )
    seed: int = field(default=42, metadata={"help": "shuffle seed"})


def read_seed_rows(paths: tuple[str, ...], report: Report) -> list[list[dict]]:
    """Rows per problem across seed files; rows lacking fields are counted and skipped."""
    per_file = []
    missing = 0
    for path in sorted(paths):
        rows = []
        for _, row in iter_jsonl(path):
            if not row.get("generation") or not row.get("problem"):
                missing += 1
                row = None
            rows.append(row)
        per_file.append(rows)
    lengths = {len(rows) for rows in per_file}
    if len(lengths) > 1:
        raise DistilleryError(
            f"solution files have different line counts ({sorted(lengths)}); each seed must "
            "cover the same problems in the same order"
        )
    total = sum(len(rows) for rows in per_file)
    report.notes["rows_missing_generation_or_problem"] = missing
    per_problem = [[r for r in rows if r is not None] for rows in zip(*per_file, strict=True)]
    report.record("rows missing generation or problem", total, total - missing)
    return [rows for rows in per_problem if rows]


def main(config: Config) -> None:
    from transformers import AutoTokenizer

    report = Report()
    extraction = ExtractionConfig(extract_regex=config.extract_regex)
    per_problem = read_seed_rows(config.inputs, report)
    rows = [row for group in per_problem for row in group]
    for row in rows:
        add_predicted_answer(row, extraction)
    if config.fill_majority:
        report.notes["problems_labelled_by_majority"] = fill_majority_answers(per_problem)
    for row in rows:
        label(row)
    report.notes["problems"] = len(per_problem)
    report.notes["correct_solutions"] = sum(r["symbolic_correct"] for r in rows)
    selection = Selection(
        config.add_correct,
        config.add_incorrect,
        config.add_unlabeled,
        config.min_majority_votes,
        config.min_majority_percentage,
    )
    rows = select(rows, selection, report)
    if config.deduplicate:
        before = len(rows)
        rows = deduplicate(rows)
        report.record("deduplicate (problem, generation)", before, len(rows))
    if not rows:
        raise DistilleryError(
            "nothing to train on: every solution was filtered out.\n"
            + report.markdown()
            + "Generate more solutions (seeds, problems), use a stronger teacher, or relax the "
            "selection (add_incorrect, add_unlabeled, min_majority_votes)."
        )
    prompt = load_prompt(config.prompt)
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer)

    def render(messages: list[dict], add_generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    try:
        records = [format_example(row, prompt, render) for row in shuffle(rows, config.seed)]
    except ValueError as err:
        raise DistilleryError(f"{config.tokenizer}: {err}") from None
    report.notes["written"] = len(records)
    write_json(config.report, report.as_dict())
    write_text(Path(config.report).with_suffix(".md"), report.markdown())
    write_jsonl(config.output, records)
    logger.info("\n%s", report.markdown())


if __name__ == "__main__":
    cli.run(main, Config)
