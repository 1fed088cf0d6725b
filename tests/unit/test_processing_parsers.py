"""The LLM processing steps' parsers on real-looking model outputs: each row gives what the
default (NeMo-Skills' reading, written from its recipe's code) and ``parse: lenient`` make of
it. An output neither can read is no verdict, never a positive one."""

import pytest

from distillery.processing.parsers import (
    judged_correct,
    parse_converted_problem,
    parse_extracted_answer,
    parse_judgement,
    parse_label,
    parse_true_false,
    parse_yes_no,
)

# (output, label, nemo-skills, lenient): NeMo-Skills' postprocess_classification puts a
# problem in the class when the output starts with the label, case and all
LABELS = [
    ("proof", "proof", True, True),
    ("not proof", "proof", False, False),
    ("proof\n\nThe problem asks to show that...", "proof", True, True),
    ("proofs are needed", "proof", True, True),
    ("Proof", "proof", None, True),
    ("**proof**", "proof", None, True),
    (" proof", "proof", None, True),
    ("This is not a proof.", "proof", None, False),
    ("It asks for a value, so: not mcq", "mcq", None, False),
    ("mcq", "mcq", True, True),
    ("yes", "binary", None, True),
    ("No", "invalid", None, False),
    ("invalid", "invalid", True, True),
    ("not invalid", "invalid", False, False),
    ("I am not sure.", "proof", None, None),
    ("", "proof", None, None),
]


@pytest.mark.parametrize("text,label,nemo,lenient", LABELS)
def test_classifier_labels(text, label, nemo, lenient):
    assert parse_label(text, label) is nemo
    assert parse_label(text, label, lenient=True) is lenient


YES_NO = [
    ("yes", True),
    ("No", False),
    ("**Yes**", True),
    ("Yes. The problem asks to show that the sum is divisible by 3.", True),
    ("no - it asks for the value of x", False),
    ("The problem says 'Prove that f is injective', which is a proof.\n\nAnswer: yes", True),
    ("Looking at the options listed... there are none.\nSo my answer is: No.", False),
    ("It could be read either way; the statement is ambiguous.", None),
    ("", None),
    ("Nope", None),
]


@pytest.mark.parametrize("text,verdict", YES_NO)
def test_yes_no(text, verdict):
    assert parse_yes_no(text) is verdict


# (judgement, nemo-skills, lenient): NeMo-Skills' is_correct_judgement takes the text after the
# last case-sensitive "Judgement:", stripped, and asks whether it starts with yes or no
JUDGEMENTS = [
    ("Reasoning: 0.5 equals 1/2.\nJudgement: Yes", True, True),
    ("Reasoning: 7 is not 8.\nJudgement: No", False, False),
    ("Judgement: yes", True, True),
    ("Judgement:Yes.", True, True),
    ("Judgement: NO, the signs differ", False, False),
    ("Judgement: Yesterday's answer", True, None),
    ("Judgement: Not the same", False, None),
    ("Judgement: Nope", False, None),
    ("Reasoning: the same set in another order.\n**Judgement:** Yes", None, True),
    ("Judgement: **Yes**", None, True),
    ("judgement: yes", None, True),
    ("JUDGEMENT: Yes", None, True),
    ("Judgment: Yes", None, None),
    # a verdict discussed before the real one: the last marker counts
    ("I first wrote Judgement: Yes, but the signs differ.\nJudgement: No", False, False),
    ("Judgement: No\nOn reflection... Judgement: Yes", True, True),
    # malformed: no marker, an empty verdict, a hedge
    ("The answers are equivalent.", None, None),
    ("Reasoning: equal.\nJudgement:", None, None),
    ("Reasoning: unclear.\nJudgement: Partially", None, None),
    ("Yes", None, None),
    (None, None, None),
]


@pytest.mark.parametrize("text,nemo,lenient", JUDGEMENTS)
def test_judge_verdicts(text, nemo, lenient):
    assert parse_judgement(text) is nemo
    assert parse_judgement(text, lenient=True) is lenient
    # no verdict counts as incorrect
    assert judged_correct(text) is (nemo is True)


# (output, nemo-skills, lenient): NeMo-Skills' postprocess_answer_extraction reads after the
# first "Output:", gives up on "Answer not found" anywhere, then takes the text between the
# first "Answer:" and the next, a box in it unwrapped
ANSWERS = [
    ("The third reply shows the sum is 2017.\nAnswer: 2017", ("2017", True), ("2017", True)),
    ("Answer: \\boxed{\\frac{3}{4}}", ("\\frac{3}{4}", True), ("\\frac{3}{4}", True)),
    ("Answer: $\\boxed{\\frac{3}{4}}$", ("\\frac{3}{4}", True), ("\\frac{3}{4}", True)),
    ("**Answer:** x = 5.", ("** x = 5.", True), ("x = 5", True)),
    ("answer: 7", (None, False), ("7", True)),
    ("Answer: 12\nThe replies agree.", ("12\nThe replies agree.", True), ("12", True)),
    # two Answer: lines: NeMo-Skills takes the first, lenient the last
    ("Answer: 3\nAnswer: 4", ("3", True), ("4", True)),
    ("Output: post 2 has it.\nAnswer: 9\nOutput: Answer: 10", ("9", True), ("9", True)),
    # nothing found: "Answer not found" anywhere wins over any answer
    ("The replies only give hints.\nAnswer not found", (None, True), (None, True)),
    ("Answer: 42\n(Answer not found in post 1)", (None, True), (None, True)),
    ("No answer was found in the discussion.", (None, False), (None, True)),
    ("Answer: none", ("none", True), (None, True)),
    ("Post 1: no answer found there. Post 3 gets it.\nAnswer: 42", ("42", True), ("42", True)),
    ("Answer: \\boxed{5", (None, True), ("\\boxed{5", True)),
    ("Answer:", (None, True), (None, False)),
    # unreadable: no answer line at all
    ("The discussion is about a different problem.", (None, False), (None, False)),
    ("", (None, False), (None, False)),
]


@pytest.mark.parametrize("text,nemo,lenient", ANSWERS)
def test_extracted_answers(text, nemo, lenient):
    assert parse_extracted_answer(text) == nemo
    assert parse_extracted_answer(text, lenient=True) == lenient


# (output, nemo-skills, lenient): NeMo-Skills' check_contamination counts a pair as the same
# problem when the stripped output is exactly "True"
VERDICTS = [
    ("True", True, True),
    ("  True\n", True, True),
    ("False", False, False),
    ("True.", None, True),
    ("**True**", None, True),
    ("true", None, True),
    ("False. Problem 2 uses different numbers.", None, False),
    ("Both ask for the same count of subsets, so: True", None, True),
    ("They look alike.", None, None),
]


@pytest.mark.parametrize("text,nemo,lenient", VERDICTS)
def test_contamination_verdicts(text, nemo, lenient):
    assert parse_true_false(text) is nemo
    assert parse_true_false(text, lenient=True) is lenient


# (output, nemo-skills, lenient): NeMo-Skills' postprocess_proof_conversion takes the whole
# output as the new problem
CONVERTED = [
    (
        "Find the smallest n with n! > 10^6.",
        "Find the smallest n with n! > 10^6.",
        "Find the smallest n with n! > 10^6.",
    ),
    (
        "**New problem:** Compute the remainder of 2^100 mod 7.",
        "**New problem:** Compute the remainder of 2^100 mod 7.",
        "Compute the remainder of 2^100 mod 7.",
    ),
    ("Problem: Find all x.", "Problem: Find all x.", "Find all x."),
    ("Cannot be rewritten: it is existential.", "Cannot be rewritten: it is existential.", None),
    ("   ", None, None),
    (None, None, None),
]


@pytest.mark.parametrize("text,nemo,lenient", CONVERTED)
def test_converted_problems(text, nemo, lenient):
    assert parse_converted_problem(text) == nemo
    assert parse_converted_problem(text, lenient=True) == lenient
