from distillery import merge_chunks, prepare_benchmark, prepare_raw_data
from distillery.generation import reuse
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


def test_one_chunk_is_linked_not_copied(tmp_path):
    chunk = write_jsonl(tmp_path / "out_chunk_0.jsonl", [{"i": 0}, {"i": 1}])
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier merge\n")
    reuse.record(chunk, "its samples' fingerprint", 0, 2)
    merge_chunks.main(merge_chunks.Config(inputs=(str(chunk),), output=str(out)))
    assert out.stat().st_ino == chunk.stat().st_ino
    assert read_jsonl(out) == [{"i": 0}, {"i": 1}]
    assert reuse.reuse(out, "its samples' fingerprint", 0, 2)  # recorded as its chunk's merge
    # a chunk that merging would change (a blank line, no newline at the end) is merged
    chunk.write_bytes(b'{"i": 0}\n\n{"i": 1}')
    merge_chunks.main(merge_chunks.Config(inputs=(str(chunk),), output=str(out)))
    assert out.stat().st_ino != chunk.stat().st_ino
    assert out.read_bytes() == b'{"i": 0}\n{"i": 1}\n'
