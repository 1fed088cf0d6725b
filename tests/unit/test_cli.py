from dataclasses import dataclass, field
from typing import Literal

import pytest

from distillery import cli
from distillery.errors import DistilleryError


@dataclass(frozen=True)
class Example:
    """An example stage."""

    input: str = field(metadata={"help": "input file"})
    count: int = field(default=3, metadata={"help": "how many"})
    ratio: float = field(default=0.5, metadata={"help": "a ratio"})
    flag: bool = field(default=True, metadata={"help": "a switch"})
    names: tuple[str, ...] = field(default=(), metadata={"help": "several"})
    mode: Literal["a", "b"] = field(default="a", metadata={"help": "choice"})
    limit: int | None = field(default=None, metadata={"help": "optional"})

    def __post_init__(self):
        if self.count < 0:
            raise DistilleryError("--count must be >= 0")


def test_parse_all_field_kinds():
    config = cli.parse_config(
        Example,
        ["--input", "x", "--count", "5", "--no-flag", "--names", "p", "q", "--mode", "b"]
        + ["--limit", "none"],
    )
    assert config == Example("x", 5, 0.5, False, ("p", "q"), "b", None)


def test_defaults_and_required():
    assert cli.parse_config(Example, ["--input", "x"]).count == 3
    with pytest.raises(SystemExit):
        cli.parse_config(Example, [])


def test_validation_error_becomes_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_config(Example, ["--input", "x", "--count", "-1"])
    assert exit_info.value.code == 2
    assert "--count must be >= 0" in capsys.readouterr().err


def test_run_turns_errors_into_exit_status_1(capsys):
    def main(config):
        raise DistilleryError(f"{config.input}: something the user must fix")

    with pytest.raises(SystemExit) as exit_info:
        cli.run(main, Example, ["--input", "data.jsonl"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "ERROR" in err and "data.jsonl: something the user must fix" in err
    assert "Traceback" not in err


def test_pin_threads_sets_env(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cli.pin_threads(3)
    import os

    assert os.environ["OMP_NUM_THREADS"] == "3"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(28, "No space left on device", "out/x.jsonl"), "out/x.jsonl: the disk is full"),
        (OSError(30, "Read-only file system", "out/y"), "out/y: the file system is read-only"),
        (PermissionError(13, "Permission denied", "out"), "out: permission denied"),
    ],
)  # fmt: skip
def test_machine_errors_are_one_line_naming_the_path(capsys, error, expected):
    def main(config):
        raise error

    with pytest.raises(SystemExit) as exit_info:
        cli.run(main, Example, ["--input", "data.jsonl"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "ERROR" in line]) == 1


def test_a_full_disk_for_real_is_one_line(tmp_path, capsys):
    # /dev/full answers every write with ENOSPC
    def main(config):
        with open("/dev/full", "w") as handle:
            handle.write("x" * 10_000)
            handle.flush()

    with pytest.raises(SystemExit):
        cli.run(main, Example, ["--input", "data.jsonl"])
    err = capsys.readouterr().err
    assert "the disk is full" in err and "Traceback" not in err


def test_corrupt_model_config_is_one_line(tmp_path):
    import subprocess
    import sys

    from ..conftest import REPO, write_jsonl

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama", ')
    write_jsonl(tmp_path / "in.jsonl", [{"problem": "1+1?"}])
    command = [
        sys.executable, "-m", "distillery.generate", "--input", str(tmp_path / "in.jsonl"),
        "--output", str(tmp_path / "out.jsonl"), "--prompt", str(REPO / "prompts/math.yaml"),
        "--model", str(model),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(error) == 1 and "config.json" in error[0]
    assert not (tmp_path / "out.jsonl").exists()
