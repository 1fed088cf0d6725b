"""extract_answer: the final answer of each problem that has none, read from its forum
discussion (``expected_answer``, ``expected_answer_source: forum``)."""

from __future__ import annotations

from pydantic import Field

from distillery.jsonl import read_jsonl
from distillery.processing.base import (
    Answers,
    Outcome,
    ProcessingStep,
    StepFiles,
    lenient,
    request,
)
from distillery.processing.parsers import parse_extracted_answer
from distillery.prompts import load_prompt
from distillery.settings.steps import ParsedStep


class AnswerExtraction(ParsedStep):
    """find the final answer of each problem in its forum discussion (expected_answer, with
    expected_answer_source: forum)"""

    prompt: str = Field("prompts/extract-answer.yaml", description="prompt config file")


def needs_answer(row: dict) -> bool:
    return not row.get("convert_proof") and not row.get("expected_answer")


def select(files: StepFiles, block: AnswerExtraction) -> list[dict]:
    where = files.inputs[0]
    prompt = load_prompt(block.prompt)
    return [
        request(str(index), prompt, row, f"{where}:{index + 1}")
        for index, row in enumerate(read_jsonl(where, allow_empty=True))
        if needs_answer(row) and row.get("forum_discussions")
    ]


def apply(files: StepFiles, block: AnswerExtraction, answers: Answers) -> Outcome:
    """``expected_answer`` from the discussion where the row had none
    (``expected_answer_source: forum``); rows are kept either way."""
    where = files.inputs[0]
    generations = answers.by_ref
    out = Outcome()
    for index, row in enumerate(read_jsonl(where, allow_empty=True)):
        row = dict(row)
        generation = generations.get(str(index))
        if generation is None:
            if row.get("expected_answer"):
                row.setdefault("expected_answer_source", "raw_data")
            out.kept.append(row)
            continue
        text = generation.get("generation")
        row["answer_extraction_gen"] = text
        answer, readable = parse_extracted_answer(text, lenient(block))
        if not readable:
            out.unparsed(f"{where}:{index + 1}", text)
        elif answer is None:
            out.counts["not_found"] += 1
        else:
            row["expected_answer"] = answer
            row["expected_answer_source"] = "forum"
            out.counts["found"] += 1
        out.kept.append(row)
    return out


STEP = ProcessingStep("extract_answer", AnswerExtraction, select, apply, position=20)
