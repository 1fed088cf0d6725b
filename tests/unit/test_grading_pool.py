"""Worker processes with a hard timeout: a hung sympy call is killed, not waited on."""

import time

from distillery.grading.answers import is_equivalent
from distillery.grading.pool import grade_pairs

# sympy evaluates the tower eagerly and never returns (Math-Verify #65); the sine keeps the
# exact-arithmetic fast path from deciding it first.
HANGS = "\\sin(9^{9^{9^{9}}})"


def test_verdicts_match_single_calls_and_keep_order():
    pairs = [
        ("\\frac{1}{2}", "0.5"),
        ("x^2+2x+1", "(x+1)^2"),
        ("2", "\\sqrt{4}"),
        ("3", "\\sqrt{4}"),
        ("16", "016"),
        ("5", None),
        ("x^2+2x+1", "(x+1)^2"),
    ]
    verdicts = grade_pairs(pairs, workers=2, timeout=10)
    assert [v.correct for v in verdicts] == [is_equivalent(g, p) for g, p in pairs]
    assert [v.correct for v in verdicts] == [True, True, True, False, True, False, True]


def test_hung_answer_is_killed_within_the_timeout_and_counts_as_wrong(caplog):
    pairs = [("1", HANGS), ("2", "\\sqrt{4}"), ("\\pi", "\\frac{22}{7}"), ("y", "y")]
    began = time.monotonic()
    verdicts = grade_pairs(pairs, workers=1, timeout=2)
    elapsed = time.monotonic() - began
    assert verdicts[0].timed_out and not verdicts[0].correct
    assert verdicts[0].seconds <= 2 + 0.5
    # the replacement worker grades what comes after
    assert [v.correct for v in verdicts[1:]] == [True, False, True]
    assert elapsed < 2 + 5
    assert "counted as wrong because it took longer than 2s" in caplog.text


def test_identical_pairs_are_graded_once():
    pairs = [("1", HANGS)] * 5
    began = time.monotonic()
    verdicts = grade_pairs(pairs, workers=2, timeout=1)
    assert all(v.timed_out for v in verdicts)
    assert time.monotonic() - began < 1 + 3
