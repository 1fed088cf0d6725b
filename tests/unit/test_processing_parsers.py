"""The LLM processing steps' parsers on real-looking model outputs, including the ones they
must refuse to read (counted as no verdict, never as a positive one)."""

import pytest

from distillery.processing.parsers import (
    parse_converted_problem,
    parse_extracted_answer,
    parse_judgement,
    parse_true_false,
    parse_yes_no,
)

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
def test_classifier_verdicts(text, verdict):
    assert parse_yes_no(text) is verdict


JUDGEMENTS = [
    ("Reasoning: 0.5 equals 1/2.\nJudgement: Yes", True),
    ("Reasoning: 7 is not 8.\nJudgement: No", False),
    ("Reasoning: the same set in another order.\n**Judgement:** yes", True),
    ("judgement: NO.", False),
    # a verdict discussed before the real one: the last marker counts
    ("I first wrote Judgement: Yes, but the signs differ.\nJudgement: No", False),
    # malformed: no marker, an empty verdict, a hedge
    ("The answers are equivalent.", None),
    ("Reasoning: equal.\nJudgement:", None),
    ("Reasoning: unclear.\nJudgement: Partially", None),
    ("Yes", None),
    (None, None),
]


@pytest.mark.parametrize("text,verdict", JUDGEMENTS)
def test_judge_verdicts(text, verdict):
    assert parse_judgement(text) is verdict


ANSWERS = [
    ("The third reply shows the sum is 2017.\nAnswer: 2017", ("2017", True)),
    ("Answer: $\\boxed{\\frac{3}{4}}$", ("\\frac{3}{4}", True)),
    ("**Answer:** x = 5.", ("x = 5", True)),
    ("Post 1 guesses 12, post 3 corrects it.\nAnswer: 12\n", ("12", True)),
    # nothing found: said so, in several ways
    ("The replies only give hints.\nAnswer not found", (None, True)),
    ("No answer was found in the discussion.", (None, True)),
    ("Answer: none", (None, True)),
    # thinking aloud about a post that found nothing, then the answer: the later one counts
    ("Post 1: no answer found there. Post 3 gets it.\nAnswer: 42", ("42", True)),
    ("Answer: 12? No - rereading, the thread never settles it.\nAnswer not found", (None, True)),
    # unreadable: no answer line at all
    ("The discussion is about a different problem.", (None, False)),
    ("", (None, False)),
]


@pytest.mark.parametrize("text,parsed", ANSWERS)
def test_extracted_answers(text, parsed):
    assert parse_extracted_answer(text) == parsed


@pytest.mark.parametrize(
    "text,verdict",
    [
        ("True", True),
        ("False", False),
        ("False. Problem 2 uses different numbers.", False),
        ("Both ask for the same count of subsets, so: True", True),
        ("They look alike.", None),
    ],
)
def test_contamination_verdicts(text, verdict):
    assert parse_true_false(text) is verdict


@pytest.mark.parametrize(
    "text,problem",
    [
        ("Find the smallest n with n! > 10^6.", "Find the smallest n with n! > 10^6."),
        (
            "**New problem:** Compute the remainder of 2^100 mod 7.",
            "Compute the remainder of 2^100 mod 7.",
        ),
        ("Problem: Find all x.", "Find all x."),
        ("Cannot be rewritten: the statement is purely existential.", None),
        ("   ", None),
    ],
)
def test_converted_problems(text, problem):
    assert parse_converted_problem(text) == problem
