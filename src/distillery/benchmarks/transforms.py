"""Per-benchmark row transforms, named in the definitions (``transform:``).

A transform takes a source row, its index and the preparation's :class:`Context`, and returns
the row to map (or, for a definition without ``fields``, the output row itself), or ``None`` to
drop the row (MMLU-Redux's questions its annotators found broken). Each declares the fields its
output rows provide, so prompts are checked against them before any job runs. Rows come out as
NeMo-Skills' ``prepare.py`` of the benchmark writes them (``docs/parity.md``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from distillery.grading.answers import last_boxed

LETTERS = "ABCDEFGHIJ"
MULTIPLE_CHOICE_FIELDS = ("id", "problem", "expected_answer", "options", "subset_for_metrics")
# NeMo-Skills shuffles the options of GPQA and SuperGPQA with Python's random seeded once per
# file, one shuffle per row in the source's order
SHUFFLE_SEED = 42
# the transforms whose source has an option order of its own (keep_option_order keeps it);
# GPQA's has none: its correct answer is a column of its own
OPTION_ORDER_TRANSFORMS = frozenset({"supergpqa"})


@dataclass
class Context:
    """What the transforms of one preparation share: the option shuffler (one random stream
    over the whole file, as NeMo-Skills shuffles) and the benchmark's settings."""

    keep_option_order: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(SHUFFLE_SEED))


TRANSFORMS: dict[str, Callable[[dict, int, Context], dict | None]] = {}
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
def gsm8k(row: dict, index: int, context: Context) -> dict:
    """The answer after ``####``, commas removed, integral floats as integers."""
    answer = row["answer"].split("####")[-1].strip().replace(",", "")
    if re.fullmatch(r"-?\d+\.0+", answer):
        answer = answer.split(".")[0]
    return {**row, "answer": answer, "reference_solution": row["answer"]}


@transform("answer")
def integral_answer(row: dict, index: int, context: Context) -> dict:
    """A float answer that is a whole number as an integer (AMC 2023 stores ``27.0``)."""
    answer = row["answer"]
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    return {**row, "answer": answer}


@transform("final_answer", "problem")
def olympiadbench(row: dict, index: int, context: Context) -> dict:
    """The first final answer without its ``$`` delimiters; the problem after its context, if
    it has one."""
    answers = row["final_answer"]
    answer = answers[0] if isinstance(answers, list) and answers else answers
    context = row.get("context")
    question = row["question"]
    problem = f"{context.strip()}\n\n{question}" if context else question
    return {**row, "final_answer": str(answer).strip().strip("$").strip(), "problem": problem}


@transform("answer", "reference_solution")
def boxed_solution(row: dict, index: int, context: Context) -> dict:
    """The answer is the last ``\\boxed{}`` of the reference solution (Minerva math)."""
    return {**row, "answer": last_boxed(row["solution"]), "reference_solution": row["solution"]}


def _with_options(question: str, options: list[str]) -> str:
    lines = [f"{LETTERS[i]}) {option}" for i, option in enumerate(options)]
    return question.strip("\n") + "\n\n" + "\n".join(lines)


def _multiple_choice(
    row_id: str, question: str, options: list[str], letter: str, subset: str | None
) -> dict:
    """A benchmark row for a lettered multiple-choice question, as NeMo-Skills'
    ``get_mcq_fields`` writes it: the question (newlines stripped), a blank line and the
    options as ``A) ...`` lines, also each option as ``A``, ``B``, ..."""
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


def _shuffled(
    options: list[str], correct: int, context: Context, keep: bool = False
) -> tuple[list[str], str]:
    """The options in NeMo-Skills' order (one shuffle of the file's stream), or as given with
    ``keep``, and the correct one's letter."""
    answer = options[correct]
    if not keep:
        options = list(options)
        context.rng.shuffle(options)
    return options, LETTERS[options.index(answer)]


def _gpqa_text(text: str | None) -> str:
    """An option as NeMo-Skills cleans GPQA's (and SuperGPQA's) cells."""
    if text is None:
        return " "
    return text.strip().replace(" [title]", ". ").replace("  ", " ")


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS[:4], "explanation")
def gpqa(row: dict, index: int, context: Context) -> dict:
    """The three incorrect answers then the correct one, cleaned, shuffled into options A-D;
    the answer is the correct option's letter; the subdomain is the subset."""
    options = [
        _gpqa_text(row["Incorrect Answer 1"]),
        _gpqa_text(row["Incorrect Answer 2"]),
        _gpqa_text(row["Incorrect Answer 3"]),
        _gpqa_text(row["Correct Answer"]),
    ]
    options, letter = _shuffled(options, 3, context)
    out = _multiple_choice(f"gpqa-{index}", row["Question"], options, letter, row.get("Subdomain"))
    return {**out, "explanation": _gpqa_text(row.get("Explanation"))}


# MMLU's subjects and the subcategory NeMo-Skills reports each under (MMLU's own grouping)
MMLU_SUBCATEGORIES = {
    "abstract_algebra": "math", "anatomy": "health", "astronomy": "physics",
    "business_ethics": "business", "clinical_knowledge": "health", "college_biology": "biology",
    "college_chemistry": "chemistry", "college_computer_science": "computer science",
    "college_mathematics": "math", "college_medicine": "health", "college_physics": "physics",
    "computer_security": "computer science", "conceptual_physics": "physics",
    "econometrics": "economics", "electrical_engineering": "engineering",
    "elementary_mathematics": "math", "formal_logic": "philosophy", "global_facts": "other",
    "high_school_biology": "biology", "high_school_chemistry": "chemistry",
    "high_school_computer_science": "computer science",
    "high_school_european_history": "history", "high_school_geography": "geography",
    "high_school_government_and_politics": "politics",
    "high_school_macroeconomics": "economics", "high_school_mathematics": "math",
    "high_school_microeconomics": "economics", "high_school_physics": "physics",
    "high_school_psychology": "psychology", "high_school_statistics": "math",
    "high_school_us_history": "history", "high_school_world_history": "history",
    "human_aging": "health", "human_sexuality": "culture", "international_law": "law",
    "jurisprudence": "law", "logical_fallacies": "philosophy", "machine_learning":
    "computer science", "management": "business", "marketing": "business",
    "medical_genetics": "health", "miscellaneous": "other", "moral_disputes": "philosophy",
    "moral_scenarios": "philosophy", "nutrition": "health", "philosophy": "philosophy",
    "prehistory": "history", "professional_accounting": "other", "professional_law": "law",
    "professional_medicine": "health", "professional_psychology": "psychology",
    "public_relations": "politics", "security_studies": "politics", "sociology": "culture",
    "us_foreign_policy": "politics", "virology": "health", "world_religions": "philosophy",
}  # fmt: skip


def _subject_row(out: dict, subject: str | None) -> dict:
    """A subject's row: reported under its subcategory, the subject kept as ``subtopic``."""
    return {
        **out,
        "subset_for_metrics": MMLU_SUBCATEGORIES.get(subject, subject),
        "subtopic": subject,
    }


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS[:4], "subtopic")
def mmlu(row: dict, index: int, context: Context) -> dict:
    """``choices`` and an answer index become options A-D and a letter; the subject's
    subcategory is the subset."""
    choices = [str(c) for c in row["choices"]]
    answer = row["answer"]
    letter = LETTERS[int(answer)] if str(answer).isdigit() else str(answer).strip()
    out = _multiple_choice(f"mmlu-{index}", row["question"], choices, letter, None)
    return _subject_row(out, row.get("subject"))


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS[:4], "subtopic")
def mmlu_redux(row: dict, index: int, context: Context) -> dict | None:
    """MMLU-Redux 2.0: questions the annotators found fine keep their answer; those with a wrong
    ground truth get the annotated correct letter (NeMo-Skills writes the literal string
    ``correct_answer`` there, so they always count as wrong: docs/parity.md); the rest
    (unclear question or options, no or several correct options, expert-only) are dropped. The
    subject is the row's ``subject`` or the hub config it came from; its subcategory is the
    subset."""
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
    out = _multiple_choice(f"mmlu-redux-{index}", row["question"], choices, letter, None)
    return _subject_row(out, subject)


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS)
def mmlu_pro(row: dict, index: int, context: Context) -> dict:
    """Up to ten options A-J, as written; the answer is a letter; the category (spaces as
    underscores) is the metrics subset."""
    options = [str(o) for o in row["options"]]
    category = str(row.get("category") or "").replace(" ", "_") or None
    return _multiple_choice(
        f"mmlu-pro-{row.get('question_id', index)}",
        row["question"],
        options,
        str(row["answer"]).strip(),
        category,
    )


@transform(*MULTIPLE_CHOICE_FIELDS, *LETTERS)
def supergpqa(row: dict, index: int, context: Context) -> dict:
    """Up to ten options, cleaned and shuffled (NeMo-Skills' order; the dataset's with
    ``keep_option_order``); options must be distinct and the letter must name the answer's
    text; the discipline is the subset."""
    options = [_gpqa_text(None if o is None else str(o)) for o in row["options"]]
    if len(set(options)) != len(options):
        raise ValueError(f"its options are not distinct: {options}")
    letter = str(row["answer_letter"]).strip()
    if letter not in LETTERS[: len(options)]:
        raise ValueError(f"answer_letter {letter!r} names no option")
    if _gpqa_text(str(row["answer"])) != options[LETTERS.index(letter)]:
        raise ValueError(f"answer_letter {letter} does not name the answer {row['answer']!r}")
    options, letter = _shuffled(
        options, LETTERS.index(letter), context, keep=context.keep_option_order
    )
    return _multiple_choice(
        str(row.get("uuid") or f"supergpqa-{index}"),
        row["question"],
        options,
        letter,
        row.get("discipline"),
    )
