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
