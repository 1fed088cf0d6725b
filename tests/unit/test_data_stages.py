from distillery import merge_chunks, prepare_benchmark, prepare_raw_data
from distillery.jsonl import read_jsonl
from distillery.settings.data import Benchmark, RawData

from ..conftest import write_jsonl


def test_prepare_raw_data(tmp_path):
    out = tmp_path / "raw.jsonl"
    raw = RawData(source="demo", num_posts=7, seed=2)
    prepare_raw_data.main(prepare_raw_data.Config(output=str(out), raw=raw))
    rows = read_jsonl(out)
    assert len(rows) == 7
    assert all({"forum_post", "forum_discussions"} <= set(r) for r in rows)


def test_prepare_benchmark(tmp_path):
    out = tmp_path / "test.jsonl"
    demo = Benchmark(source="demo", size=5)
    prepare_benchmark.main(prepare_benchmark.Config(output=str(out), benchmark=demo))
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [f"demo-{i}" for i in range(5)]
    assert all(r["problem"] and r["expected_answer"] for r in rows)


def test_merge_chunks_in_order_with_empty_chunk(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"i": 0}, {"i": 1}])
    b = tmp_path / "b.jsonl"
    b.write_text("")
    c = write_jsonl(tmp_path / "c.jsonl", [{"i": 2}])
    out = tmp_path / "out.jsonl"
    merge_chunks.main(merge_chunks.Config(inputs=(str(a), str(b), str(c)), output=str(out)))
    assert read_jsonl(out) == [{"i": 0}, {"i": 1}, {"i": 2}]
