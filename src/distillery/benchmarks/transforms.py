"""Per-benchmark row transforms, named in the definitions (``transform:``).

A transform takes a source row and its index and returns the row to map (or, for a definition
without ``fields``, the output row itself), or ``None`` to drop the row (MMLU-Redux's questions
its annotators found broken). Each declares the fields its output rows provide, so prompts are
checked against them before any job runs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from distillery.grading.answers import last_boxed

LETTERS = "ABCDEFGHIJ"
MULTIPLE_CHOICE_FIELDS = ("id", "problem", "expected_answer", "options", "subset_for_metrics")

TRANSFORMS: dict[str, Callable[[dict, int], dict | None]] = {}
# fields the output rows of each transform carry (besides the definition's ``fields`` keys)
TRANSFORM_FIELDS: dict[str, frozenset[str]] = {}


def transform(*fields: str):
    """Registers a transform under its function name, with the fields its rows provide."""

    def register(function):
        TRANSFORMS[function.__name__] = function
        TRANSFORM_FIELDS[function.__name__] = frozenset(fields)
        return function

    return register


@transform("answer", "reference_solution")
def gsm8k(row: dict, index: int) -> dict:
    """The answer after ``####``, commas removed, integral floats as integers."""
    answer = row["answer"].split("####")[-1].strip().replace(",", "")
    if re.fullmatch(r"-?\d+\.0+", answer):
        answer = answer.split(".")[0]
    return {**row, "answer": answer, "reference_solution": row["answer"]}


@transform("answer")
def integral_answer(row: dict, index: int) -> dict:
    """A float answer that is a whole number as an integer (AMC 2023 stores ``27.0``)."""
    answer = row["answer"]
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    return {**row, "answer": answer}


@transform("final_answer", "problem")
def olympiadbench(row: dict, index: int) -> dict:
    """The first final answer without its ``$`` delimiters; the problem after its context, if
    it has one."""
    answers = row["final_answer"]
    answer = answers[0] if isinstance(answers, list) and answers else answers
    context = row.get("context")
    question = row["question"]
    problem = f"{context.strip()}\n\n{question}" if context else question
    return {**row, "final_answer": str(answer).strip().strip("$").strip(), "problem": problem}


@transform("answer", "reference_solution")
def boxed_solution(row: dict, index: int) -> dict:
    """The answer is the last ``\\boxed{}`` of the reference solution (Minerva math)."""
    return {**row, "answer": last_boxed(row["solution"]), "reference_solution": row["solution"]}


def _with_options(question: str, options: list[str]) -> str:
    lines = [f"{LETTERS[i]}) {option}" for i, option in enumerate(options)]
    return question.strip() + "\n\n" + "\n".join(lines)


def _multiple_choice(
    row_id: str, question: str, options: list[str], letter: str, subset: str | None
) -> dict:
    """A benchmark row for a lettered multiple-choice question (options also as ``A``, ``B``,
    ...)."""
    if len(options) > len(LETTERS):
        raise ValueError(f"{len(options)} options; at most {len(LETTERS)} are supported")
    return {
        "id": row_id,
        "problem": _with_options(question, options),
        "expected_answer": letter,
        "options": options,
        "subset_for_metrics": subset,
        **{LETTERS[i]: option for i, option in enumerate(options)},
    }


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS[:4])
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


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS[:4])
def mmlu(row: dict, index: int) -> dict:
    """``choices`` and an answer index become options A-D and a letter."""
    choices = [str(c) for c in row["choices"]]
    answer = row["answer"]
    letter = LETTERS[int(answer)] if str(answer).isdigit() else str(answer).strip()
    return _multiple_choice(f"mmlu-{index}", row["question"], choices, letter, row.get("subject"))


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS[:4])
def mmlu_redux(row: dict, index: int) -> dict | None:
    """MMLU-Redux 2.0: questions the annotators found fine keep their answer; those with a wrong
    ground truth get the annotated correct letter; the rest (unclear question or options, no or
    several correct options, expert-only) are dropped. The subject is the row's ``subject`` or
    the hub config it came from."""
    error, letter = row["error_type"], None
    if error == "ok":
        answer = row["answer"]
        letter = LETTERS[int(answer)] if str(answer).isdigit() else str(answer).strip()
    elif error == "wrong_groundtruth":
        annotated = str(row.get("correct_answer") or "").strip()
        if annotated.isdigit() and int(annotated) < 4:
            annotated = LETTERS[int(annotated)]
        letter = annotated if annotated in ("A", "B", "C", "D") else None
    if letter is None:
        return None
    subject = row.get("subject") or row.get("_config")
    choices = [str(c) for c in row["choices"]]
    return _multiple_choice(f"mmlu-redux-{index}", row["question"], choices, letter, subject)


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS)
def mmlu_pro(row: dict, index: int) -> dict:
    """Up to ten options A-J; the answer is a letter; the category is the metrics subset."""
    options = [str(o).strip() for o in row["options"]]
    category = str(row.get("category") or "").replace(" ", "_") or None
    return _multiple_choice(
        f"mmlu-pro-{row.get('question_id', index)}",
        row["question"],
        options,
        str(row["answer"]).strip(),
        category,
    )


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS)
def supergpqa(row: dict, index: int) -> dict:
    """Up to ten options in the dataset's order (not reshuffled: the file is the same
    everywhere); the letter must name the answer's text; the discipline is the subset."""
    options = [" ".join(str(o).split()) for o in row["options"]]
    letter = str(row["answer_letter"]).strip()
    if " ".join(str(row["answer"]).split()) != options[LETTERS.index(letter)]:
        raise ValueError(f"answer_letter {letter} does not name the answer {row['answer']!r}")
    return _multiple_choice(
        str(row.get("uuid") or f"supergpqa-{index}"),
        row["question"],
        options,
        letter,
        row.get("discipline"),
    )
