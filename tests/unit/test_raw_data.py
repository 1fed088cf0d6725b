"""AoPS and Llama-Nemotron raw data from local files, what the hub is asked for, and model
downloads with the network blocked."""

import pytest

from distillery import download_model, prepare_raw_data
from distillery.data.raw_sources import aops_record, remove_quotes
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.settings.base import parse
from distillery.settings.data import RawData

from ..conftest import write_jsonl


def test_quotes_are_removed_nested_too():
    text = "Agreed. [quote=bob]You said [quote]x = 2[/quote] earlier[/quote] So x = 3."
    assert remove_quotes(text) == "Agreed.  So x = 3."


def test_discussion_stops_at_the_token_budget():
    row = {"original_question": "Q?", "original_answers": ["one two", "three four five", "six"]}
    words = lambda text: len(text.split())  # noqa: E731
    record = aops_record(row, words, max_tokens=8, where="t")
    # "Post 1:\none two" = 4 words, "Post 2:\nthree four five" = 5 words: the second would pass 8
    assert record == {"forum_post": "Q?", "forum_discussions": "Post 1:\none two"}


def run(tmp_path, **kw):
    out = tmp_path / "raw.jsonl"
    block = {"source": "demo", **{k: v for k, v in kw.items() if k != "tokenizer"}}
    stage = {"tokenizer": kw["tokenizer"]} if "tokenizer" in kw else {}
    prepare_raw_data.main(
        prepare_raw_data.Config(output=str(out), raw=parse(RawData, block), **stage)
    )
    return read_jsonl(out)


def test_aops_from_a_local_file(tmp_path):
    path = write_jsonl(
        tmp_path / "aops.jsonl",
        [
            {
                "original_question": f"Find x_{i}.",
                "original_answers": [f"[quote]hi[/quote]x = {i}", "nice"],
            }
            for i in range(5)
        ],
    )
    rows = run(tmp_path, source="aops", path=str(path), num_posts=3)
    assert [r["id"] for r in rows] == ["aops-0", "aops-1", "aops-2"]
    assert rows[1] == {
        "id": "aops-1",
        "forum_post": "Find x_1.",
        "forum_discussions": "Post 1:\nx = 1\n\nPost 2:\nnice",
    }


def test_aops_local_file_missing_columns(tmp_path):
    path = write_jsonl(tmp_path / "aops.jsonl", [{"question": "q"}])
    with pytest.raises(
        DistilleryError, match=r"missing column\(s\) \['original_question', 'original_answers'\]"
    ):
        run(tmp_path, source="aops", path=str(path))


def test_nemotron_from_a_local_directory(tmp_path):
    for subset in ("math", "code"):
        write_jsonl(
            tmp_path / "nemotron" / f"{subset}.jsonl",
            [
                {
                    "input": [{"role": "user", "content": f"{subset} question {i}"}],
                    "output": f"<think>...</think>answer {i}",
                    "reasoning": "on" if i % 2 else "off",
                    "system_prompt": "detailed thinking on" if i % 2 else "detailed thinking off",
                }
                for i in range(4)
            ],
        )
    rows = run(
        tmp_path, source="nemotron", path=str(tmp_path / "nemotron"), subsets={"math": 3, "code": 2}
    )
    expected = [f"nemotron-math-{i}" for i in range(3)] + [f"nemotron-code-{i}" for i in range(2)]
    assert [r["id"] for r in rows] == expected
    assert rows[1]["problem"] == "math question 1" and rows[1]["reasoning"] == "on"
    assert rows[3]["category"] == "code"
    with pytest.raises(DistilleryError, match="unknown Nemotron subset 'poetry'"):
        run(tmp_path, source="nemotron", path=str(tmp_path / "nemotron"), subsets={"poetry": 1})


@pytest.fixture
def offline_hub(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(repo, name=None, **kwargs):
        calls.append({"repo": repo, "name": name, **kwargs})
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return calls


def test_hub_requests(tmp_path, offline_hub):
    with pytest.raises(DistilleryError, match="Without network access"):
        run(tmp_path, source="aops", num_posts=10)
    with pytest.raises(DistilleryError, match="Without network access"):
        run(tmp_path, source="nemotron", subsets={"science": 5})
    assert [(c["repo"], c["name"], c["split"], c["streaming"]) for c in offline_hub] == [
        ("DeepStudentLlama/AoPS-Instruct", "2024_not_decontaminated", "train", True),
        ("nvidia/Llama-Nemotron-Post-Training-Dataset", "SFT", "science", True),
    ]
    assert not (tmp_path / "raw.jsonl").exists()


def test_model_download(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(**kwargs):
        calls.append(kwargs)
        (kwargs["local_dir"]).mkdir(parents=True)
        (kwargs["local_dir"] / "config.json").write_text("{}")
        return str(kwargs["local_dir"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    out = tmp_path / "models" / "qwen"
    download_model.main(
        download_model.Config(repo="Qwen/Qwen2.5-14B-Instruct", revision="abc123", output=str(out))
    )
    assert (out / "config.json").is_file()
    assert calls[0]["repo_id"] == "Qwen/Qwen2.5-14B-Instruct"
    assert calls[0]["revision"] == "abc123" and calls[0]["token"] == "hf_x"


def test_model_download_offline(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(DistilleryError, match="use `source: path`"):
        download_model.main(download_model.Config(repo="a/b", output=str(tmp_path / "m")))
    assert not (tmp_path / "m").exists()


def test_aops_answers_as_a_string_is_an_error_not_one_post_per_character(tmp_path):
    rows = [
        {"original_question": "Find x.", "original_answers": ["x = 1"]},
        {"original_question": "Find y.", "original_answers": "y = 2"},
    ]
    path = write_jsonl(tmp_path / "aops.jsonl", rows)
    with pytest.raises(
        DistilleryError, match=r"aops\.jsonl:2: original_answers must be a list .* got str"
    ) as error:
        run(tmp_path, source="aops", path=str(path))
    assert "benchmark definition" not in str(error.value)


def test_aops_missing_column_message_speaks_of_raw_data(tmp_path):
    path = write_jsonl(tmp_path / "aops.jsonl", [{"question": "q"}])
    with pytest.raises(DistilleryError, match=r"aops\.jsonl:1: missing column") as error:
        run(tmp_path, source="aops", path=str(path))
    assert "benchmark definition" not in str(error.value)
    assert "docs/data.md" in str(error.value)


def test_aops_threads_without_a_question_are_dropped_and_counted(tmp_path, caplog):
    rows = [
        {"original_question": "Find x.", "original_answers": ["x = 1"]},
        {"original_question": "", "original_answers": ["spam"]},
        {"original_question": None, "original_answers": None},
    ]
    path = write_jsonl(tmp_path / "aops.jsonl", rows)
    with caplog.at_level("WARNING"):
        out = run(tmp_path, source="aops", path=str(path))
    assert [r["forum_post"] for r in out] == ["Find x."]
    assert "dropped 2 AoPS thread(s) without a question" in caplog.text
