import json

import pytest

from distillery.errors import DistilleryError
from distillery.generation.resume import PartialOutput, fingerprint
from distillery.jsonl import read_jsonl


def test_finish_writes_rows_in_input_order(tmp_path):
    out = tmp_path / "out.jsonl"
    partial = PartialOutput(out, "k")
    for index in (2, 0, 1):
        partial.add(index, {"i": index})
    partial.finish(3)
    assert read_jsonl(out) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert not partial.path.exists()


def test_resume_keeps_finished_rows_and_ignores_repeats(tmp_path):
    out = tmp_path / "out.jsonl"
    first = PartialOutput(out, "k")
    first.add(0, {"i": 0})
    first.add(1, {"i": 1})
    first.close()
    second = PartialOutput(out, "k")
    assert 0 in second and 1 in second and 2 not in second
    second.add(1, {"i": "again"})
    second.add(2, {"i": 2})
    second.finish(3)
    assert read_jsonl(out) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_torn_last_line_is_dropped(tmp_path):
    out = tmp_path / "out.jsonl"
    partial = PartialOutput(out, "k")
    partial.add(0, {"i": 0})
    partial.close()
    with partial.path.open("ab") as handle:
        handle.write(b'{"_index": 1, "i"')
    resumed = PartialOutput(out, "k")
    assert list(resumed.rows) == [0]
    resumed.add(1, {"i": 1})
    resumed.finish(2)
    assert read_jsonl(out) == [{"i": 0}, {"i": 1}]


def test_other_fingerprint_starts_afresh(tmp_path):
    out = tmp_path / "out.jsonl"
    partial = PartialOutput(out, "old")
    partial.add(0, {"i": 0})
    partial.close()
    assert PartialOutput(out, "new").rows == {}
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_missing_rows_fail_finish(tmp_path):
    partial = PartialOutput(tmp_path / "out.jsonl", "k")
    partial.add(0, {})
    with pytest.raises(DistilleryError, match="1 samples are still missing"):
        partial.finish(2)
    assert not (tmp_path / "out.jsonl").exists()


def test_corrupt_middle_line(tmp_path):
    path = tmp_path / "out.jsonl.partial"
    path.write_text(json.dumps({"_fingerprint": "k"}) + "\nnot json\n" + '{"_index": 1}\n')
    with pytest.raises(DistilleryError, match=r"out\.jsonl\.partial:2: corrupt"):
        PartialOutput(tmp_path / "out.jsonl", "k")


def test_fingerprint_is_order_insensitive_for_keys_but_not_values():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
