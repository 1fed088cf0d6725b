import json

import pytest

from distillery import prepare_sft_data
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.prompts import load_prompt
from distillery.sft_data import (
    NO_VALID_ANSWER,
    Report,
    Selection,
    deduplicate,
    fill_majority_answers,
    format_example,
    label,
    select,
)

from ..conftest import REPO, write_jsonl


def row(problem, answer, expected=None, generation=None):
    return {
        "problem": problem,
        "expected_answer": expected,
        "predicted_answer": answer,
        "generation": generation or f"... \\boxed{{{answer}}}",
    }


def test_fill_majority_only_where_no_answer_is_known():
    known = [row("p1", "3", expected="4"), row("p1", "3", expected="4")]
    unknown = [row("p2", "7"), row("p2", "7"), row("p2", "8"), row("p2", None)]
    nothing = [row("p3", None), row("p3", None)]
    assert fill_majority_answers([known, unknown, nothing]) == 2
    assert known[0]["expected_answer"] == "4" and "majority_votes" not in known[0]
    assert {r["expected_answer"] for r in unknown} == {"7"}
    assert unknown[0]["majority_votes"] == 2 and unknown[0]["total_votes"] == 4
    assert nothing[0]["expected_answer"] == NO_VALID_ANSWER


def test_label_uses_equivalence():
    r = row("p", "016", expected="16")
    label(r)
    assert r["symbolic_correct"]
    r = row("p", "1", expected=NO_VALID_ANSWER)
    label(r)
    assert not r["symbolic_correct"]


def test_select_and_majority_filter():
    rows = [
        {**row("a", "1", "1"), "symbolic_correct": True},
        {**row("b", "2", "1"), "symbolic_correct": False},
        {**row("c", None, NO_VALID_ANSWER), "symbolic_correct": False},
        {**row("d", "5", "5"), "symbolic_correct": True, "majority_votes": 1, "total_votes": 4},
    ]
    report = Report()
    kept = select(rows, Selection(min_majority_votes=2), report)
    assert [r["problem"] for r in kept] == ["a"]
    assert report.steps == [("correctness selection", 2, 2), ("majority filter", 1, 1)]
    everything = select(rows, Selection(add_incorrect=True, add_unlabeled=True), Report())
    assert len(everything) == 4


def test_deduplicate():
    rows = [row("a", "1"), row("a", "1"), row("a", "2"), row("b", "1")]
    assert len(deduplicate(rows)) == 3


def test_format_example_with_real_chat_template(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    prompt = load_prompt(REPO / "prompts" / "math.yaml")

    def render(messages, add_generation_prompt):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    record = format_example(row("What is 1+1?", "2", "2", "1 + 1 = 2. \\boxed{2}"), prompt, render)
    assert record["input"].endswith("<|im_start|>assistant\n")
    assert "What is 1+1?" in record["input"] and "\\boxed{}" in record["input"]
    assert record["output"].startswith("1 + 1 = 2. \\boxed{2}<|im_end|>")
    assert record["messages"][-1] == {"role": "assistant", "content": "1 + 1 = 2. \\boxed{2}"}
    assert render(record["messages"], False) == record["input"] + record["output"]


def solutions(tmp_path, seeds):
    paths = []
    for seed, answers in enumerate(seeds):
        rows = [
            {"problem": f"p{i}", "expected_answer": expected, "generation": f"so \\boxed{{{a}}}"}
            for i, (a, expected) in enumerate(answers)
        ]
        paths.append(str(write_jsonl(tmp_path / f"output-rs{seed}.jsonl", rows)))
    return tuple(paths)


def stage_config(tmp_path, inputs, tokenizer_dir, **kw):
    return prepare_sft_data.Config(
        inputs=inputs,
        output=str(tmp_path / "sft.jsonl"),
        report=str(tmp_path / "report.json"),
        prompt=str(REPO / "prompts" / "math.yaml"),
        tokenizer=str(tokenizer_dir),
        **kw,
    )


def test_stage_end_to_end(tmp_path, tokenizer_dir):
    # p0 known answer 4; p1 unknown, majority 7 (2 of 3); p2 unknown, no agreement
    inputs = solutions(
        tmp_path,
        [
            [("4", "4"), ("7", None), ("1", None)],
            [("5", "4"), ("7", None), ("2", None)],
            [("4", "4"), ("8", None), ("3", None)],
        ],
    )
    prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir, min_majority_votes=2))
    rows = read_jsonl(tmp_path / "sft.jsonl")
    # p0: two correct but identical -> 1 after dedup; p1: two "7" identical -> 1; p2: majority of 1
    assert sorted((r["problem"], r["expected_answer"]) for r in rows) == [("p0", "4"), ("p1", "7")]
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["step"] for s in report["steps"]] == [
        "rows missing generation or problem",
        "correctness selection",
        "majority filter",
        "deduplicate (problem, generation)",
    ]
    assert report["problems_labelled_by_majority"] == 2
    assert (tmp_path / "report.md").read_text().startswith("# SFT data report")


def test_rows_missing_fields_are_counted(tmp_path, tokenizer_dir):
    path = write_jsonl(
        tmp_path / "output-rs0.jsonl",
        [{"problem": "p", "expected_answer": "1", "generation": "\\boxed{1}"}, {"problem": "q"}],
    )
    prepare_sft_data.main(stage_config(tmp_path, (str(path),), tokenizer_dir))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows_missing_generation_or_problem"] == 1
    assert len(read_jsonl(tmp_path / "sft.jsonl")) == 1


def test_nothing_to_train_on(tmp_path, tokenizer_dir):
    inputs = solutions(tmp_path, [[("1", "2")]])
    with pytest.raises(DistilleryError, match="nothing to train on") as err:
        prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir))
    assert "| correctness selection | 1 | 0 |" in str(err.value)
    assert not (tmp_path / "sft.jsonl").exists()


def test_seed_files_must_align(tmp_path, tokenizer_dir):
    inputs = solutions(tmp_path, [[("1", "1"), ("2", "2")], [("1", "1")]])
    with pytest.raises(DistilleryError, match="different line counts"):
        prepare_sft_data.main(stage_config(tmp_path, inputs, tokenizer_dir))
