"""classify: one classifier per class asks whether each extracted problem is a proof, a
multiple-choice or yes/no question, or invalid; the class's action keeps, drops or routes it to
proof conversion (NeMo-Skills' four classifiers, asked in its order)."""

from __future__ import annotations

from typing import ClassVar, Literal

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
from distillery.processing.parsers import parse_label
from distillery.prompts import load_prompt
from distillery.settings.generation import Inference
from distillery.settings.steps import ParsedStep

CLASSES = ("proof", "multiple_choice", "binary", "invalid")
# the label each class's classifier answers with (or "not <label>"): NeMo-Skills' modes
CLASS_LABELS = {
    "proof": "proof",
    "multiple_choice": "mcq",
    "binary": "binary",
    "invalid": "invalid",
}


class Classification(ParsedStep):
    """classify each extracted problem with one classifier per class, and drop or route it by
    class (NeMo-Skills' four classifiers: the answer starts with the class's label, proof, mcq,
    binary or invalid, or with "not <label>")"""

    PROMPT_FIELD: ClassVar[str] = "prompts"

    prompts: dict[Literal[CLASSES], str] = Field(  # type: ignore[valid-type]
        {c: f"prompts/classify-{CLASS_LABELS[c]}.yaml" for c in CLASSES},
        description="prompt config file of each class's classifier (answers with the label or "
        "'not <label>'); a class left out is not asked about",
    )
    actions: dict[Literal[CLASSES], Literal["keep", "drop", "convert"]] = Field(  # type: ignore[valid-type]
        {"proof": "convert", "multiple_choice": "drop", "binary": "drop", "invalid": "drop"},
        description="what happens to a problem of each class: keep, drop, or convert (proofs: "
        "rewritten by convert_proofs); a problem in several classes takes the first in the "
        "order proof, multiple_choice, binary, invalid",
    )
    inference: Inference = Inference(temperature=0.0, max_tokens=16)


def select(files: StepFiles, block: Classification) -> list[dict]:
    rows = read_jsonl(files.inputs[0], allow_empty=True)
    prompts = {name: load_prompt(path) for name, path in block.prompts.items()}
    return [
        request(f"{index}:{name}", prompt, row, f"{files.inputs[0]}:{index + 1}")
        for index, row in enumerate(rows)
        for name, prompt in prompts.items()
    ]


def apply(files: StepFiles, block: Classification, answers: Answers) -> Outcome:
    """``problem_class``: the first class (in NeMo-Skills' order, which asks each classifier
    only about the problems the ones before it did not claim) whose classifier answered with
    its label, else ``regular``; then the class's action (keep, drop, convert)."""
    where = files.inputs[0]
    generations = answers.by_ref
    out = Outcome()
    for index, row in enumerate(read_jsonl(where, allow_empty=True)):
        row = dict(row)
        found = None
        for name in CLASSES:
            generation = generations.get(f"{index}:{name}")
            if generation is None:
                continue
            text = generation.get("generation")
            row[f"classify_{name}_gen"] = text
            verdict = parse_label(text, CLASS_LABELS[name], lenient(block))
            if verdict is None:
                out.unparsed(f"{where}:{index + 1} ({name})", text)
            elif verdict and found is None:
                found = name
        row["problem_class"] = found or "regular"
        out.counts[row["problem_class"]] += 1
        action = block.actions.get(found, "keep") if found else "keep"
        if action == "drop":
            out.dropped.append(row)
            continue
        if action == "convert":
            row["convert_proof"] = True
        out.kept.append(row)
    return out


STEP = ProcessingStep("classify", Classification, select, apply, position=10)
