"""Stage: one table comparing evaluation runs (e.g. baseline vs trained) per benchmark.

Usage::

    python -m distillery.compare_runs --output results/comparison.md \\
        --inputs baseline=results/evals/baseline/eval-results/demo/metrics.json \\
                 trained=results/evals/trained/eval-results/demo/metrics.json

The first run named is the reference for the delta columns. Writes the markdown table and a CSV
with the same rows beside it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from distillery import cli
from distillery.errors import DistilleryError
from distillery.jsonl import write_text
from distillery.reports.tables import comparison_csv, comparison_markdown

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Compare metrics across runs."""

    inputs: tuple[str, ...] = field(
        metadata={"help": "RUN=metrics.json entries; a run may be named several times"}
    )
    output: str = field(metadata={"help": "markdown table; the CSV goes beside it"})

    def __post_init__(self):
        for entry in self.inputs:
            if "=" not in entry:
                raise DistilleryError(f"--inputs entry {entry!r} is not RUN=path/to/metrics.json")


def load_runs(entries: tuple[str, ...]) -> dict[str, dict[str, dict]]:
    runs: dict[str, dict[str, dict]] = {}
    for entry in entries:
        name, path = entry.split("=", 1)
        try:
            metrics = orjson.loads(Path(path).read_bytes())
        except FileNotFoundError:
            raise DistilleryError(f"{path}: metrics file does not exist") from None
        except orjson.JSONDecodeError as err:
            raise DistilleryError(f"{path}: not valid JSON ({err})") from None
        benchmarks = {k: v for k, v in metrics.items() if not k.startswith("_")}
        runs.setdefault(name, {}).update(benchmarks)
    return runs


def main(config: Config) -> None:
    runs = load_runs(config.inputs)
    output = Path(config.output)
    table = comparison_markdown(runs)
    write_text(output.with_suffix(".csv"), comparison_csv(runs))
    write_text(output, "# Evaluation runs compared\n\n" + table)
    logger.info("\n%s", table)


if __name__ == "__main__":
    cli.run(main, Config)
