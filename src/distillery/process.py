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
``evaluation.judge``); its prompts are read by ``select``.
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
from distillery.processing import steps
from distillery.prompts import load_prompt
from distillery.settings.base import parse
from distillery.settings.processing import (
    PROBLEM_STEPS,
    STEP_MODELS,
    AnswerJudge,
    ContaminationCheck,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Select the requests of an LLM processing step, or apply its generations."""

    action: Literal["select", "apply"] = field(
        metadata={"help": "select or apply", "positional": True}
    )
    step: Literal[tuple(STEP_MODELS)] = field(metadata={"help": "the step"})  # type: ignore[valid-type]
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
        if self.step in PROBLEM_STEPS and len(self.inputs) != 1:
            raise DistilleryError(f"{self.step} takes one --inputs file (the problems)")

    def block(self):
        try:
            data = json.loads(self.config_json)
        except json.JSONDecodeError as err:
            raise DistilleryError(f"--config-json is not JSON: {err}") from None
        return parse(STEP_MODELS[self.step], data, self.step)


def select(config: Config) -> None:
    block = config.block()
    if config.step in PROBLEM_STEPS:
        rows = read_jsonl(config.inputs[0], allow_empty=True)
        if config.step == "classify":
            prompts = {name: load_prompt(path) for name, path in block.prompts.items()}
            requests = list(steps.classify_requests(rows, prompts, config.inputs[0]))
        elif config.step == "extract_answer":
            requests = list(
                steps.answer_requests(rows, load_prompt(block.prompt), config.inputs[0])
            )
        elif config.step == "convert_proofs":
            requests = list(steps.proof_requests(rows, load_prompt(block.prompt), config.inputs[0]))
        else:
            requests = _contamination_requests(config, block, rows)
    elif config.step == "rewrite_summaries":
        seeds = [read_jsonl(path, allow_empty=True) for path in config.inputs]
        prompt = load_prompt(block.prompt)
        where = list(config.inputs)
        requests = list(
            steps.summary_requests(seeds, prompt, block.reasoning_end, block.samples, where)
        )
    elif config.step == "judge_solutions":
        requests = _label_and_judge(config, block)
    else:
        requests = _judge_eval_requests(config, block)
    prefilled = [r for r in requests if steps.MESSAGES_FIELD not in r]
    to_model = [r for r in requests if steps.MESSAGES_FIELD in r]
    write_jsonl(config.requests, to_model)
    write_jsonl(config.prefilled, prefilled)
    logger.info(
        "%s: %d requests for the model, %d decided without it", config.step, len(to_model),
        len(prefilled),
    )  # fmt: skip


def _contamination_requests(config: Config, block: ContaminationCheck, rows) -> list[dict]:
    from distillery.prepare_sft_data import load_benchmarks
    from distillery.sft_data.contamination import NearestIndex, nearest_by_embedding

    references = load_benchmarks(config.benchmarks)
    problems = [row["problem"] for row in rows]
    if block.retrieval == "embedding":
        candidates = nearest_by_embedding(problems, references, block.embedding_model, block.top_k)
    else:
        index = NearestIndex(references, block.ngram)
        candidates = [[r for r, _ in index.nearest(p, block.top_k)] for p in problems]
        if block.embedding_model:
            nearest = nearest_by_embedding(problems, references, block.embedding_model, 1)
            for found, extra in zip(candidates, nearest, strict=True):
                found += [r for r in extra if r not in found]
    prompt = load_prompt(block.prompt)
    return list(steps.contamination_requests(rows, references, prompt, candidates))


def _label_and_judge(config: Config, block: AnswerJudge) -> list[dict]:
    """Labels the solutions as the SFT data stage does (predicted answer; the majority answer
    where none is known; symbolic correctness) into the labelled seed files, and asks for a
    verdict on each labelled solution."""
    from distillery.sft_data.labels import is_unlabeled
    from distillery.sft_data.pipeline import Labelling, label_rows

    if len(config.outputs) != len(config.inputs):
        raise DistilleryError("judge_solutions select: give one --outputs file per seed file")
    extraction = regex_extraction(config.extract_regex, config.regex_fallback)
    labelling = Labelling(extraction, config.fill_majority)
    seeds = [read_jsonl(path, allow_empty=True) for path in config.inputs]
    if len({len(rows) for rows in seeds}) > 1:
        raise DistilleryError(
            f"{', '.join(config.inputs)}: solution files have different row counts; each seed "
            "must cover the same problems in the same order"
        )
    prompt = load_prompt(block.prompt)
    requests = []
    for line, group in enumerate(zip(*seeds, strict=True)):
        answered = [row for row in group if row.get("generation") and row.get("problem")]
        label_rows(answered, labelling)
        # a solution with no valid summary is not SFT data: it votes, but is not judged
        labelled = {
            id(row)
            for row in answered
            if not is_unlabeled(row) and not row.get(steps.NO_VALID_SUMMARY)
        }
        for seed, row in enumerate(group):
            if id(row) in labelled:
                where = f"{config.inputs[seed]}:{line + 1}"
                requests.append(steps.judge_request(f"{seed}:{line}", row, prompt, where))
    for path, rows in zip(config.outputs, seeds, strict=True):
        write_jsonl(path, rows)
    return requests


def _judge_eval_requests(config: Config, block: AnswerJudge) -> list[dict]:
    prompt = load_prompt(block.prompt)
    requests = []
    for position, path in enumerate(config.inputs):
        for line, row in enumerate(read_jsonl(path, allow_empty=True)):
            if "predicted_answer" not in row:
                raise DistilleryError(f"{path}:{line + 1}: no 'predicted_answer'; grade it first")
            where = f"{path}:{line + 1}"
            requests.append(steps.judge_request(f"{position}:{line}", row, prompt, where))
    return requests


def apply(config: Config) -> None:
    answered = read_jsonl(config.generations, allow_empty=True)
    generations = steps.by_ref(answered)
    prefilled = read_jsonl(config.prefilled, allow_empty=True)
    where = config.inputs[0]
    verdicts = None
    if config.step in PROBLEM_STEPS:
        rows = read_jsonl(config.inputs[0], allow_empty=True)
        lenient = config.block().parse == "lenient"
        if config.step == "classify":
            actions = config.block().actions
            out = steps.classify_apply(rows, generations, actions, where, lenient)
        elif config.step == "extract_answer":
            out = steps.answer_apply(rows, generations, where, lenient)
        elif config.step == "convert_proofs":
            out = steps.proof_apply(rows, generations, where, lenient)
        else:
            requests = answered + prefilled
            requests.sort(key=lambda r: tuple(int(p) for p in r[steps.REF].split(":")))
            out, verdicts = steps.contamination_apply(rows, requests, generations, where, lenient)
        write_jsonl(config.outputs[0], out.kept)
    elif config.step == "rewrite_summaries":
        out = _apply_summaries(config, generations)
    else:
        out = _apply_judgements(config, generations, prefilled)
    if config.dropped is not None:
        write_jsonl(config.dropped, out.dropped)
    if config.verdicts is not None:
        write_jsonl(config.verdicts, verdicts or [])
    counts = {"rows": len(out.kept) + len(out.dropped), "kept": len(out.kept),
              "dropped": len(out.dropped), **dict(sorted(out.counts.items()))}  # fmt: skip
    if config.report is not None:
        write_json(config.report, {"step": config.step, **counts})
        lines = [f"| {key} | {value} |" for key, value in counts.items()]
        text = f"### {config.step}\n\n| count | value |\n|---|---:|\n" + "\n".join(lines) + "\n"
        if config.step == "judge_eval":
            text += "\n" + agreement_table(out.counts)
        write_text(Path(config.report).with_suffix(".md"), text)
    logger.info("%s: %s", config.step, ", ".join(f"{k} {v}" for k, v in counts.items()))


def _apply_summaries(config: Config, generations: dict) -> steps.Outcome:
    if len(config.outputs) != len(config.inputs):
        raise DistilleryError("rewrite_summaries apply: give one --outputs file per seed file")
    seeds = [read_jsonl(path, allow_empty=True) for path in config.inputs]
    block = config.block()
    extraction = regex_extraction(config.extract_regex, config.regex_fallback)
    out = steps.summary_apply(
        seeds, generations, block.reasoning_end, block.samples, extraction,
        block.keep_unrewritten, list(config.inputs),
    )  # fmt: skip
    for path, rows in zip(config.outputs, seeds, strict=True):
        write_jsonl(path, rows)
    return out


def _apply_judgements(config: Config, generations: dict, prefilled: list[dict]) -> steps.Outcome:
    """Puts each verdict on its row (``judgement``); rows that were not judged (no expected
    answer) get none. For evaluation files, the report adds the agreement of judge and
    symbolic grading."""
    if len(config.outputs) != len(config.inputs):
        raise DistilleryError(f"{config.step} apply: give one --outputs file per input")
    decided = steps.by_ref(prefilled)
    lenient = config.block().parse == "lenient"
    out = steps.Outcome()
    for position, (path, output) in enumerate(zip(config.inputs, config.outputs, strict=True)):
        rows = read_jsonl(path, allow_empty=True)
        for line, row in enumerate(rows):
            ref = f"{position}:{line}"
            item = decided.get(ref) or generations.get(ref)
            if item is None:
                continue
            text = item.get("judgement") if ref in decided else item.get("generation")
            row["judgement"] = text
            verdict = steps.count_judgement(out, text, f"{path}:{line + 1}", lenient)
            # the verdict as this step's parse read it (no verdict: incorrect, as NeMo-Skills
            # counts it); summaries and the SFT data take it from here
            row["judge_correct"] = verdict is True
            if "symbolic_correct" in row and config.step == "judge_eval":
                key = f"judge_{_word(verdict)}_symbolic_{_word(row['symbolic_correct'])}"
                out.counts[key] += 1
        write_jsonl(output, rows)
        out.kept.extend(rows)
    return out


def agreement_table(counts) -> str:
    """The judge's verdicts against symbolic grading, as a confusion table (markdown)."""
    rows = [("judge: correct", "yes"), ("judge: wrong", "no"), ("judge: no verdict", "none")]
    lines = ["| | symbolic: correct | symbolic: wrong |", "|---|---:|---:|"]
    for label, judge in rows:
        cells = [counts.get(f"judge_{judge}_symbolic_{s}", 0) for s in ("yes", "no")]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    agree = counts.get("judge_yes_symbolic_yes", 0) + counts.get("judge_no_symbolic_no", 0)
    decided = sum(
        counts.get(f"judge_{j}_symbolic_{s}", 0) for j in ("yes", "no") for s in ("yes", "no")
    )
    share = f"{100.0 * agree / decided:.1f}%" if decided else "n/a"
    return (
        "\n".join(lines)
        + f"\n\nAgreement where the judge gave a verdict: {share} ({agree} of {decided}).\n"
    )


def _word(verdict: bool | None) -> str:
    return "none" if verdict is None else ("yes" if verdict else "no")


def main(config: Config) -> None:
    select(config) if config.action == "select" else apply(config)


if __name__ == "__main__":
    cli.run(main, Config)
