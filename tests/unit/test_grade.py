import pytest

from distillery import grade
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.settings.workflow import Grading

from ..conftest import write_jsonl


def run(tmp_path, rows, **kw):
    write_jsonl(tmp_path / "in.jsonl", rows)
    grade.main(
        grade.Config(
            input=str(tmp_path / "in.jsonl"),
            output=str(tmp_path / "out.jsonl"),
            grading=Grading(),
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
    assert [(r["predicted_answer"], r["symbolic_correct"]) for r in rows] == [
        ("016", True),
        ("7", False),
        (None, False),
    ]


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
