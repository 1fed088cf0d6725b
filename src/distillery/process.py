"""Stage: the two halves of an LLM processing step around its generation job.

``select`` writes the step's requests (rows with ``_ref`` and the rendered ``_messages``, for
``distillery.generate --work`` without a prompt) and the verdicts it can decide without a model;
``apply`` reads the generations back and writes the step's output. Steps:

==================  ==========================================  ================================
step                input                                       output of apply
==================  ==========================================  ================================
classify            problems                                    problems (+ problem_class), dropped
extract_answer      problems                                    problems (+ expected_answer)
convert_proofs      problems                                    problems (proofs rewritten)
check_contamination problems, --benchmarks NAME=test.jsonl      problems, dropped, --verdicts
rewrite_summaries   solution seed files                         seed files, summaries rewritten
judge_solutions     solution seed files (labelled by select)    judged seed files (+ judgement)
judge_eval          graded evaluation files                     judged files (+ judgement)
==================  ==========================================  ================================

Usage::

    python -m distillery.process --action select --step classify --inputs problems.jsonl \\
        --requests requests.jsonl --prefilled prefilled.jsonl --config-json '{...}'
    python -m distillery.generate --work '[{"input": "requests.jsonl", "seeds": [0],
        "outputs": ["generations.jsonl"]}]' --model ... --config-json '{...}'
    python -m distillery.process --action apply --step classify --inputs problems.jsonl \\
        --generations generations.jsonl --prefilled prefilled.jsonl --outputs kept.jsonl \\
        --dropped dropped.jsonl --report report.json --config-json '{...}'

The step's block is the one in the config (``problem_processing.<step>``, ``solution_judge``,
``evaluation.judge``); its prompts are read by ``select``. Each step is an entry of the registry
``distillery.processing.steps``; this module only reads and writes its files.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distillery import cli
from distillery.errors import DistilleryError
from distillery.grading.answers import regex_extraction
from distillery.jsonl import read_jsonl, write_json, write_jsonl, write_text
from distillery.processing.base import Answers, StepFiles
from distillery.processing.steps import STEPS
from distillery.prompts import MESSAGES_FIELD
from distillery.settings.base import parse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Select the requests of an LLM processing step, or apply its generations."""

    action: Literal["select", "apply"] = field(
        metadata={"help": "select or apply", "positional": True}
    )
    step: Literal[tuple(STEPS)] = field(metadata={"help": "the step"})  # type: ignore[valid-type]
    inputs: tuple[str, ...] = field(metadata={"help": "the step's input file(s)"})
    config_json: str = field(metadata={"help": "the step's config block as JSON"})
    requests: str | None = field(default=None, metadata={"help": "select: requests to generate"})
    prefilled: str | None = field(
        default=None, metadata={"help": "verdicts decided without a model (select writes it)"}
    )
    generations: str | None = field(default=None, metadata={"help": "apply: the generations"})
    outputs: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "apply: output file(s), one per input; judge_solutions' "
            "select: the labelled seed files"
        },  # fmt: skip
    )
    dropped: str | None = field(default=None, metadata={"help": "apply: rows the step dropped"})
    report: str | None = field(default=None, metadata={"help": "apply: counts (JSON, + .md)"})
    verdicts: str | None = field(
        default=None, metadata={"help": "check_contamination apply: every pair's verdict"}
    )
    benchmarks: tuple[str, ...] = field(
        default=(), metadata={"help": "check_contamination: NAME=test.jsonl to check against"}
    )
    fill_majority: bool = field(
        default=True, metadata={"help": "judge_solutions: majority answer where none is known"}
    )
    extract_regex: str | None = field(
        default=None, metadata={"help": "grading.extract_regex: answer regex when there is no box"}
    )
    regex_fallback: bool = field(
        default=False, metadata={"help": "grading.regex_fallback: the regex when there is no box"}
    )

    def __post_init__(self):
        if self.action == "select" and not (self.requests and self.prefilled):
            raise DistilleryError("select needs --requests and --prefilled")
        if self.action == "apply" and not (self.generations and self.prefilled and self.outputs):
            raise DistilleryError("apply needs --generations, --prefilled and --outputs")
        if STEPS[self.step].position is not None and len(self.inputs) != 1:
            raise DistilleryError(f"{self.step} takes one --inputs file (the problems)")

    def block(self):
        try:
            data = json.loads(self.config_json)
        except json.JSONDecodeError as err:
            raise DistilleryError(f"--config-json is not JSON: {err}") from None
        return parse(STEPS[self.step].settings, data, self.step)

    def files(self) -> StepFiles:
        return StepFiles(
            inputs=self.inputs,
            outputs=self.outputs,
            benchmarks=self.benchmarks,
            extraction=regex_extraction(self.extract_regex, self.regex_fallback),
            fill_majority=self.fill_majority,
        )


def select(config: Config) -> None:
    requests = STEPS[config.step].select(config.files(), config.block())
    prefilled = [r for r in requests if MESSAGES_FIELD not in r]
    to_model = [r for r in requests if MESSAGES_FIELD in r]
    write_jsonl(config.requests, to_model)
    write_jsonl(config.prefilled, prefilled)
    logger.info(
        "%s: %d requests for the model, %d decided without it", config.step, len(to_model),
        len(prefilled),
    )  # fmt: skip


def apply(config: Config) -> None:
    answers = Answers(
        read_jsonl(config.generations, allow_empty=True),
        read_jsonl(config.prefilled, allow_empty=True),
    )
    out = STEPS[config.step].apply(config.files(), config.block(), answers)
    files = out.files if out.files is not None else [out.kept]
    if len(files) != len(config.outputs):
        raise DistilleryError(
            f"{config.step} apply writes {len(files)} file(s); give as many --outputs"
        )
    for path, rows in zip(config.outputs, files, strict=True):
        write_jsonl(path, rows)
    if config.dropped is not None:
        write_jsonl(config.dropped, out.dropped)
    if config.verdicts is not None:
        write_jsonl(config.verdicts, out.verdicts or [])
    counts = {"rows": len(out.kept) + len(out.dropped), "kept": len(out.kept),
              "dropped": len(out.dropped), **dict(sorted(out.counts.items()))}  # fmt: skip
    if config.report is not None:
        write_json(config.report, {"step": config.step, **counts})
        lines = [f"| {key} | {value} |" for key, value in counts.items()]
        text = f"### {config.step}\n\n| count | value |\n|---|---:|\n" + "\n".join(lines) + "\n"
        if out.report:
            text += "\n" + out.report
        write_text(Path(config.report).with_suffix(".md"), text)
    logger.info("%s: %s", config.step, ", ".join(f"{k} {v}" for k, v in counts.items()))


def main(config: Config) -> None:
    select(config) if config.action == "select" else apply(config)


if __name__ == "__main__":
    cli.run(main, Config)
