"""Per-benchmark row transforms, named in the definitions (``transform:``)."""

from __future__ import annotations

import random
import re

LETTERS = "ABCDEFGHIJ"


def gsm8k(row: dict, index: int) -> dict:
    """The answer after ``####``, commas removed, integral floats as integers."""
    answer = row["answer"].split("####")[-1].strip().replace(",", "")
    if re.fullmatch(r"-?\d+\.0+", answer):
        answer = answer.split(".")[0]
    return {**row, "answer": answer, "reference_solution": row["answer"]}


def _with_options(question: str, options: list[str]) -> str:
    lines = [f"{LETTERS[i]}) {option}" for i, option in enumerate(options)]
    return question.strip() + "\n\n" + "\n".join(lines)


def gpqa(row: dict, index: int) -> dict:
    """Correct and incorrect answers shuffled into options A-D (seeded per question, so the
    file is the same on every machine); the answer is the correct option's letter."""
    options = [
        row["Correct Answer"],
        row["Incorrect Answer 1"],
        row["Incorrect Answer 2"],
        row["Incorrect Answer 3"],
    ]
    options = [o.strip() for o in options]
    order = list(range(4))
    random.Random(f"gpqa-{index}-{row['Question'][:64]}").shuffle(order)
    shuffled = [options[i] for i in order]
    letter = LETTERS[order.index(0)]
    return _multiple_choice(
        f"gpqa-{index}", row["Question"], shuffled, letter, row.get("Subdomain")
    )


def mmlu(row: dict, index: int) -> dict:
    """``choices`` and an answer index become options A-D and a letter."""
    choices = [str(c) for c in row["choices"]]
    answer = row["answer"]
    letter = LETTERS[int(answer)] if str(answer).isdigit() else str(answer).strip()
    return _multiple_choice(f"mmlu-{index}", row["question"], choices, letter, row.get("subject"))


def _multiple_choice(
    row_id: str, question: str, options: list[str], letter: str, subset: str | None
) -> dict:
    """A benchmark row for a lettered multiple-choice question (options also as ``A``-``D``)."""
    return {
        "id": row_id,
        "problem": _with_options(question, options),
        "expected_answer": letter,
        "options": options,
        "subset_for_metrics": subset,
        **{LETTERS[i]: option for i, option in enumerate(options)},
    }


TRANSFORMS = {"gsm8k": gsm8k, "gpqa": gpqa, "mmlu": mmlu}
