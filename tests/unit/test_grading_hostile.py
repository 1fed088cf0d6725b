"""Answers a model can write that once crashed or stalled the grade job: each is a reproduction
kept as a regression test, and a fuzz test feeds a few thousand generated ones through the real
stage, which must finish within its time budget and write every row."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from distillery.grading.answers import fast_verdict, is_equivalent, normalize
from distillery.grading.numeric import evaluate, same_value
from distillery.jsonl import read_jsonl

from ..conftest import REPO, write_jsonl

PRODUCT_OF_POWERS = "\\cdot ".join(["9^{9999}"] * 300)


@pytest.mark.parametrize(
    "answer",
    [
        "9" * 4301,  # over Python's int-string limit
        "1" + "0" * 60_000,
        "0." + "0" * 5000 + "1",
        "(" * 200 + "1" + ")" * 200,
        "{" * 200 + "1" + "}" * 200,
        "\\frac{" * 200 + "1" + "}{2}" * 200,
        "-" * 2000 + "1",
        "+-" * 5000 + "3",
        PRODUCT_OF_POWERS,
        "\\cdot ".join(["9^{9999}"] * 1000),
        "9^{" * 300 + "9" + "}" * 300,
        "2^{-99999}",
        "(-1)^{99999999999}",
        "\\sqrt{" + "9" * 30 + "}",
    ],
)
def test_the_fast_path_never_raises_and_decides_or_defers(answer):
    began = time.perf_counter()
    for gold in ("16", "\\frac{1}{2}", answer):
        verdict = fast_verdict(gold, answer)
        assert verdict in (True, False, None)
        normalize(answer)
    # bounded: these took up to 104 s (and crashed) before the caps
    assert time.perf_counter() - began < 5


def test_huge_values_are_told_apart_exactly():
    assert fast_verdict("16", PRODUCT_OF_POWERS) is False
    assert fast_verdict("16", "9" * 4301) is False
    assert fast_verdict("16", "-" * 2000 + "16") is True  # an even number of signs
    assert fast_verdict("-16", "-" * 2001 + "16") is True
    assert evaluate("(-1)^{99999999999}") == -1
    # a huge value minus another could cancel: left undecided, never called different
    assert same_value("9^{99999}-9^{99999}", "0") is None
    # huge magnitude, tiny value: not huge
    assert same_value("\\frac{10^{20000}}{10^{20000}+1}", "1") is None


def test_math_verify_still_grades_ordinary_answers():
    assert is_equivalent("\\frac{1}{2}", "0.5")
    assert is_equivalent("2^{10}\\cdot 3", "3072")
    assert not is_equivalent("2^{10}\\cdot 3", "3071")


def hostile_answers(count: int, seed: int = 0) -> list[str]:
    """Generated answers of every hostile kind, sizes drawn at random."""
    rng = random.Random(seed)

    def latex() -> str:
        pieces = ["\\frac{a}{b}", "\\sqrt{x}", "x^{2}", "\\int_0^1", "\\sum_{k=1}^{n}",
                  "\\left(", "\\right)", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\alpha",
                  "+", "="]  # fmt: skip
        return " ".join(rng.choice(pieces) for _ in range(rng.randint(200, 3000)))

    makers = [
        lambda: "(" * (n := rng.randint(50, 3000)) + "1" + ")" * n,
        lambda: "{" * (n := rng.randint(50, 3000)) + "2" + "}" * n,
        lambda: "\\frac{" * (n := rng.randint(50, 500)) + "1" + "}{3}" * n,
        lambda: "".join(rng.choice("-+") for _ in range(rng.randint(100, 20_000))) + "7",
        lambda: str(rng.randint(1, 9)) * rng.randint(4000, 100_000),
        lambda: "0." + "0" * rng.randint(4000, 20_000) + "3",
        lambda: "\\cdot ".join(
            [f"{rng.randint(2, 99)}^{{{rng.randint(999, 99_999)}}}"] * rng.randint(2, 1500)
        ),  # fmt: skip
        lambda: f"{rng.randint(2, 9)}^{{" * (n := rng.randint(3, 400)) + "9" + "}" * n,
        latex,
        lambda: "{" * rng.randint(1, 5000) + "1",
        lambda: "\\frac{1}{" * rng.randint(1, 200),
        lambda: "".join(chr(rng.randint(0, 31)) for _ in range(rng.randint(1, 5000))) + "42",
        lambda: "+".join(
            f"\\frac{{{rng.randint(1, 10**6)}}}{{{rng.randint(2, 10**6)}}}"
            for _ in range(rng.randint(100, 2000))
        ),  # fmt: skip
        # within every size cap, but sympy works on them past any timeout: the workers' path
        # (a few distinct ones, as each costs a full timeout)
        lambda: rng.choice(
            ["(x+y+z)^{%d}", "x^{9^{9^{%d}}}", "\\sin(x)^{%d}+\\cos(x)^{%d}"]
        ).replace("%d", str(rng.choice([300, 500, 1000]))),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def test_fuzz_the_grade_stage_finishes_in_budget_and_writes_every_row(tmp_path):
    count, timeout, workers = 2000, 1, 2
    answers = hostile_answers(count)
    rows = [
        {"id": i, "generation": f"The answer is \\boxed{{{a}}}.", "expected_answer": "7"}
        for i, a in enumerate(answers)
    ]
    source, output = tmp_path / "in.jsonl", tmp_path / "graded.jsonl"
    write_jsonl(source, rows)
    command = [
        sys.executable, "-m", "distillery.grade", "--input", str(source), "--output", str(output),
        "--set", f"timeout={timeout}", "--workers", str(workers),
    ]  # fmt: skip
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - began
    assert result.returncode == 0, result.stderr[-3000:]
    assert elapsed < count * timeout / workers + 60
    graded = read_jsonl(output)
    assert [r["id"] for r in graded] == list(range(count))
    assert all(r["symbolic_correct"] in (True, False) for r in graded)
    timed_out = sum(bool(r.get("grading_timed_out")) for r in graded)
    assert f"{timed_out} timed out" in result.stderr
    assert "took longer than 1s" in result.stderr  # the workers' timeout was exercised
    assert not any(r["symbolic_correct"] for r in graded if r.get("grading_timed_out"))
