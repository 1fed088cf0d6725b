"""Benchmark preparation from local files (never the network) and what the hub is asked for."""

import csv
import json

import pytest

from distillery import prepare_benchmark
from distillery.benchmarks import known_benchmarks, load_definition
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.settings.data import Benchmark

from ..conftest import write_jsonl


def prepare(tmp_path, benchmark, path=None, **kw):
    out = tmp_path / f"{benchmark}.jsonl"
    prepare_benchmark.main(
        prepare_benchmark.Config(
            output=str(out),
            benchmark=Benchmark(source=benchmark, **({"path": str(path)} if path else {}), **kw),
        )
    )
    return read_jsonl(out)


def test_every_definition_loads():
    names = known_benchmarks()
    assert {
        "aime24",
        "aime25",
        "math-500",
        "gsm8k",
        "gpqa-diamond",
        "gpqa-main",
        "mmlu",
        "demo",
    } <= set(names)
    for name in names:
        definition = load_definition(name)
        assert definition.grading in ("math", "multichoice")
        assert definition.metrics == "math"
        assert definition.version >= 1


def test_a_definition_naming_no_metric_type_is_refused(tmp_path, monkeypatch):
    import distillery.benchmarks as benchmarks

    (tmp_path / "definitions").mkdir()
    text = "version: 1\ndescription: d\ngrading: math\nmetrics: arena\n"
    (tmp_path / "definitions" / "odd.yaml").write_text(text)
    monkeypatch.setattr(benchmarks.resources, "files", lambda package: tmp_path)
    benchmarks.load_definition.cache_clear()
    try:
        with pytest.raises(DistilleryError, match=r"odd.yaml: metrics 'arena' is not a metric"):
            benchmarks.load_definition("odd")
    finally:
        benchmarks.load_definition.cache_clear()


def test_unknown_benchmark_lists_the_known_ones(tmp_path):
    with pytest.raises(
        DistilleryError,
        match=r"unknown benchmark 'aime99'; known benchmarks: aime24, .*; groups: math-suite",
    ):
        prepare(tmp_path, "aime99")


def test_aime24_from_a_copy_of_nemo_skills_file(tmp_path):
    path = write_jsonl(
        tmp_path / "aime.jsonl",
        [
            {"id": "aime24-0", "problem": "Find x.", "expected_answer": "016", "url": "u"},
            {"id": "aime24-1", "problem": "Find y.", "expected_answer": 7},
        ],
    )
    rows = prepare(tmp_path, "aime24", path)
    assert rows == [
        {"id": "aime24-0", "problem": "Find x.", "expected_answer": "016", "url": "u"},
        {"id": "aime24-1", "problem": "Find y.", "expected_answer": "7"},
    ]


def test_gsm8k_from_csv_parses_the_answer(tmp_path):
    path = tmp_path / "gsm8k.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer"])
        writer.writerow(["How many?", "3 + 4 = <<3+4=7>>7\n#### 1,234"])
        writer.writerow(["And now?", "#### 5.0"])
    rows = prepare(tmp_path, "gsm8k", path)
    assert [(r["id"], r["problem"], r["expected_answer"]) for r in rows] == [
        ("gsm8k-0", "How many?", "1234"),
        ("gsm8k-1", "And now?", "5"),
    ]


def test_gpqa_from_parquet_shuffles_options_reproducibly(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        [
            {
                "Question": f"Which particle {i}?",
                "Correct Answer": "muon",
                "Incorrect Answer 1": "pion",
                "Incorrect Answer 2": "kaon",
                "Incorrect Answer 3": "tau",
                "Subdomain": "Physics",
                "Explanation": None,
            }
            for i in range(8)
        ]
    )
    pq.write_table(table, tmp_path / "gpqa.parquet")
    rows = prepare(tmp_path, "gpqa-diamond", tmp_path / "gpqa.parquet")
    again = prepare(tmp_path, "gpqa-diamond", tmp_path / "gpqa.parquet")
    assert rows == again
    for row in rows:
        assert row[row["expected_answer"]] == "muon"
        assert f"{row['expected_answer']}) muon" in row["problem"]
        assert sorted(row["options"]) == ["kaon", "muon", "pion", "tau"]
        assert row["subset_for_metrics"] == "Physics"
    assert len({r["expected_answer"] for r in rows}) > 1  # the correct option moves around


def test_mmlu_letters(tmp_path):
    path = write_jsonl(
        tmp_path / "mmlu.jsonl",
        [{"question": "2+2?", "subject": "math", "choices": ["3", "4", "5", "6"], "answer": 1}],
    )
    (row,) = prepare(tmp_path, "mmlu", path)
    assert row["expected_answer"] == "B" and row["B"] == "4" and row["subset_for_metrics"] == "math"
    assert "A) 3\nB) 4\nC) 5\nD) 6" in row["problem"]


def test_file_already_in_the_contract(tmp_path):
    path = write_jsonl(
        tmp_path / "ns.jsonl", [{"id": "aime25-0", "problem": "p", "expected_answer": "70"}]
    )
    assert prepare(tmp_path, "aime25", path)[0]["expected_answer"] == "70"


def test_missing_columns_are_named(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "solution": "s"}])
    with pytest.raises(DistilleryError, match=r"missing column\(s\) \['problem', 'answer'\]"):
        prepare(tmp_path, "math-500", path)
    with pytest.raises(DistilleryError, match=r"bad\.jsonl:1: missing column 'Incorrect Answer 1'"):
        prepare(tmp_path, "gpqa-main", path)


def test_max_samples(tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl", [{"problem": f"p{i}", "expected_answer": str(i)} for i in range(10)]
    )
    assert len(prepare(tmp_path, "aime24", path, max_samples=3)) == 3


class HubCall(Exception):
    pass


@pytest.fixture
def offline_hub(monkeypatch):
    """Records what datasets.load_dataset is asked for, then fails as an offline machine does."""
    import datasets

    calls = []

    def fake_load_dataset(repo, name=None, **kwargs):
        calls.append({"repo": repo, "name": name, **kwargs})
        raise ConnectionError("Couldn't reach 'huggingface.co' (offline)")

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return calls


def test_hub_is_asked_for_the_right_dataset(tmp_path, offline_hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(
        DistilleryError, match="Without network access, download the file elsewhere and set `path:`"
    ):
        prepare(tmp_path, "gsm8k")
    assert offline_hub == [
        {
            "repo": "openai/gsm8k",
            "name": "main",
            "split": "test",
            "revision": None,
            "token": None,
            "streaming": True,
        }
    ]


def test_multi_config_benchmark_and_token(tmp_path, offline_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    with pytest.raises(DistilleryError):
        prepare(tmp_path, "mmlu-redux")
    assert offline_hub[0]["repo"] == "edinburgh-dawg/mmlu-redux-2.0"
    assert offline_hub[0]["name"] == "abstract_algebra" and offline_hub[0]["token"] == "hf_secret"


def test_gated_dataset_without_token(tmp_path, offline_hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(DistilleryError, match="gated: accept its terms .* export HF_TOKEN"):
        prepare(tmp_path, "gpqa-diamond")
    assert offline_hub == []  # refused before asking the hub


def test_demo_benchmark(tmp_path):
    rows = prepare(tmp_path, "demo", size=4)
    assert [r["id"] for r in rows] == ["demo-0", "demo-1", "demo-2", "demo-3"]
    json.dumps(rows)


def test_null_answer_is_an_error_naming_file_and_line(tmp_path):
    rows = [
        {"id": "a", "problem": "p", "expected_answer": "1"},
        {"id": "b", "problem": "q", "expected_answer": None},
    ]
    path = write_jsonl(tmp_path / "ns.jsonl", rows)
    with pytest.raises(DistilleryError, match=r"ns\.jsonl:2: 'expected_answer' is None"):
        prepare(tmp_path, "aime25", path)
    assert not (tmp_path / "aime25.jsonl").exists()


def test_local_demo_file_without_an_answer_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [{"problem": "What is 1+1?"}])
    with pytest.raises(
        DistilleryError, match=r"mine\.jsonl:1: missing column\(s\) \['expected_answer'\]"
    ):
        prepare(tmp_path, "demo", path)


def test_duplicate_ids_are_an_error_naming_both_rows(tmp_path):
    rows = [{"id": "x", "problem": f"p{i}", "expected_answer": str(i)} for i in range(3)]
    path = write_jsonl(tmp_path / "dup.jsonl", rows)
    with pytest.raises(DistilleryError, match=r"dup\.jsonl:2: id 'x' repeats .*dup\.jsonl:1"):
        prepare(tmp_path, "aime25", path)


def test_csv_errors_name_the_line(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text('question,answer\n"What is 2+2?","#### 4"\n"",#### 5\n')
    with pytest.raises(DistilleryError, match=r"g\.csv:3: 'problem' must be non-empty text"):
        prepare(tmp_path, "gsm8k", path)
