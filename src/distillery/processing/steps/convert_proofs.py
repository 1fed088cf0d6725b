"""convert_proofs: each problem classified as a proof rewritten into a problem with one
checkable answer."""

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
from distillery.processing.parsers import parse_converted_problem
from distillery.prompts import load_prompt
from distillery.settings.steps import ParsedStep


class ProofConversion(ParsedStep):
    """rewrite the problems classified as proofs into problems with one checkable answer"""

    prompt: str = Field("prompts/convert-proof.yaml", description="prompt config file")


def select(files: StepFiles, block: ProofConversion) -> list[dict]:
    where = files.inputs[0]
    prompt = load_prompt(block.prompt)
    return [
        request(str(index), prompt, row, f"{where}:{index + 1}")
        for index, row in enumerate(read_jsonl(where, allow_empty=True))
        if row.get("convert_proof")
    ]


def apply(files: StepFiles, block: ProofConversion, answers: Answers) -> Outcome:
    """A proof becomes its rewritten problem (``original_problem`` keeps the proof; no
    expected answer); a proof the model did not rewrite (an empty output) is dropped."""
    where = files.inputs[0]
    generations = answers.by_ref
    out = Outcome()
    for index, row in enumerate(read_jsonl(where, allow_empty=True)):
        row = {k: v for k, v in row.items() if k != "convert_proof"}
        generation = generations.get(str(index))
        if generation is None:
            out.kept.append(row)
            continue
        text = generation.get("generation")
        problem = parse_converted_problem(text, lenient(block))
        if problem is None:
            out.unparsed(f"{where}:{index + 1}", text)
            out.dropped.append(row)
            continue
        row.update(
            original_problem=row["problem"],
            problem=problem,
            expected_answer=None,
            converted_from_proof=True,
            proof_conversion_gen=text,
        )
        out.counts["converted"] += 1
        out.kept.append(row)
    return out


STEP = ProcessingStep("convert_proofs", ProofConversion, select, apply, position=30)
