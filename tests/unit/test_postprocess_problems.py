import pytest

from distillery import postprocess_problems as pp
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl

from ..conftest import write_jsonl


@pytest.mark.parametrize(
    "text,problems",
    [
        ("Problem 1: What is 2+2?", ["What is 2+2?"]),
        ("Problem 1: A.\n\nProblem 2: B.", ["A.", "B."]),
        ("Problem 1:   \n\nProblem 2: B.", ["B."]),
        ("No problems identified.", None),
        ("Step 1: The answer is 60.", []),
        ("Problem 2: Sara has 20 stickers.", ["Sara has 20 stickers."]),
    ],
)
def test_split_problems(text, problems):
    assert pp.split_problems(text) == problems


def test_rows_keep_fields_and_record_drops(tmp_path):
    write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "id": 1,
                "forum_post": "p",
                "expected_answer": "3",
                "generation": "Problem 1: A\nProblem 2: B",
                "num_generated_tokens": 9,
            },
            {"id": 2, "forum_post": "q", "generation": "No problems identified."},
            {"id": 3, "forum_post": "r", "generation": "babble"},
        ],
    )
    pp.main(
        pp.Config(
            str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), str(tmp_path / "drop.jsonl")
        )
    )
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [(r["id"], r["problem"], r["extracted_problem_idx"]) for r in rows] == [
        (1, "A", 0),
        (1, "B", 1),
    ]
    assert rows[0]["problem_extraction_gen"] == "Problem 1: A\nProblem 2: B"
    assert "generation" not in rows[0] and "num_generated_tokens" not in rows[0]
    assert rows[0]["expected_answer"] == "3"
    dropped = read_jsonl(tmp_path / "drop.jsonl")
    assert [d["drop_reason"] for d in dropped] == [
        "no problems identified",
        "no 'Problem N:' block",
    ]


def test_nothing_extracted_is_an_error(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"generation": "No problems identified."}])
    with pytest.raises(DistilleryError, match="no problems could be extracted"):
        pp.main(pp.Config(str(tmp_path / "in.jsonl"), str(tmp_path / "o"), str(tmp_path / "d")))
    assert not (tmp_path / "o").exists()


def test_missing_generation_field(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"forum_post": "x"}])
    with pytest.raises(DistilleryError, match=r"in\.jsonl:1: row has no 'generation'"):
        pp.main(pp.Config(str(tmp_path / "in.jsonl"), str(tmp_path / "o"), str(tmp_path / "d")))
