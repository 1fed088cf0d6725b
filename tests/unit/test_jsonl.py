import pytest

from distillery.errors import DistilleryError
from distillery.jsonl import atomic_output, iter_jsonl, read_jsonl, write_jsonl


def test_round_trip_skips_blank_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    write_jsonl(path, [{"a": 1}, {"b": "ü"}])
    path.write_text(path.read_text() + "\n\n")
    assert read_jsonl(path) == [{"a": 1}, {"b": "ü"}]
    assert [n for n, _ in iter_jsonl(path)] == [1, 2]


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DistilleryError, match=r"nope\.jsonl: input file does not exist"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_empty_file_is_an_error_unless_allowed(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(DistilleryError, match="empty.jsonl: input file is empty"):
        read_jsonl(path)
    assert read_jsonl(path, allow_empty=True) == []


def test_bad_line_reports_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DistilleryError, match=r"bad\.jsonl:2: line is not valid JSON"):
        read_jsonl(path)


def test_non_object_line(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(DistilleryError, match=r"list\.jsonl:1: expected a JSON object"):
        read_jsonl(path)


def test_invalid_utf8_is_reported_as_such(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DistilleryError, match=r"latin\.jsonl:2: line is not valid UTF-8"):
        read_jsonl(path)


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), atomic_output(path) as handle:
        handle.write(b"half")
        raise RuntimeError("killed")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"old": True}])
    with pytest.raises(RuntimeError), atomic_output(path) as handle:
        handle.write(b'{"new": true}\n')
        raise RuntimeError("killed")
    assert read_jsonl(path) == [{"old": True}]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_honour_the_umask(tmp_path, umask, mode):
    import os

    previous = os.umask(umask)
    try:
        write_jsonl(tmp_path / "out.jsonl", [{"a": 1}])
    finally:
        os.umask(previous)
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == mode
