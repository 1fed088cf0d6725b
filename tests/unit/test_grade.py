import pytest

from distillery import grade
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.settings.workflow import Grading

from ..conftest import write_jsonl


def run(tmp_path, rows, grading=None, **kw):
    write_jsonl(tmp_path / "in.jsonl", rows)
    grade.main(
        grade.Config(
            input=str(tmp_path / "in.jsonl"),
            output=str(tmp_path / "out.jsonl"),
            grading=Grading(**(grading or {})),
            **kw,
        )
    )
    return read_jsonl(tmp_path / "out.jsonl")


def test_grades_math(tmp_path):
    rows = run(
        tmp_path,
        [
            {"generation": "so \\boxed{016}", "expected_answer": "16"},
            {"generation": "The final answer is 7", "expected_answer": "8"},
            {"generation": "", "expected_answer": "1"},
        ],
    )
    # the box alone by default, as NeMo-Skills' math evaluator reads it
    assert [(r["predicted_answer"], r["symbolic_correct"]) for r in rows] == [
        ("016", True),
        (None, False),
        (None, False),
    ]


def test_regex_fallback_reads_unboxed_answers(tmp_path):
    rows = run(
        tmp_path,
        [{"generation": "The final answer is 7", "expected_answer": "7"}],
        grading={"regex_fallback": True},
    )
    assert (rows[0]["predicted_answer"], rows[0]["symbolic_correct"]) == ("7", True)


def test_multichoice_letters_follow_letter_extraction(tmp_path):
    rows = [{"generation": "So the answer is (C).", "expected_answer": "C"}]
    strict = run(tmp_path, rows, mode="multichoice")
    lenient = run(tmp_path, rows, {"letter_extraction": "lenient"}, mode="multichoice")
    assert (strict[0]["predicted_answer"], lenient[0]["predicted_answer"]) == (None, "C")


def test_grades_multichoice(tmp_path):
    rows = run(
        tmp_path,
        [
            {"generation": "\\boxed{B}", "expected_answer": "B"},
            {"generation": "Answer: A", "expected_answer": "C"},
        ],
        mode="multichoice",
    )
    assert [r["symbolic_correct"] for r in rows] == [True, False]


def test_missing_expected_answer_names_line(tmp_path):
    with pytest.raises(DistilleryError, match=r"in\.jsonl:2: row has no 'expected_answer'"):
        run(tmp_path, [{"generation": "1", "expected_answer": "1"}, {"generation": "2"}])
    assert not (tmp_path / "out.jsonl").exists()
