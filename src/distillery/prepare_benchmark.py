"""Stage: write a benchmark's test set as ``test.jsonl`` (``id``, ``problem``,
``expected_answer``; ``options`` and ``A``..``D`` for multiple choice).

Usage::

    python -m distillery.prepare_benchmark --benchmark aime24 --output test.jsonl
    python -m distillery.prepare_benchmark --benchmark gsm8k --path gsm8k-test.parquet --output ...
    python -m distillery.prepare_benchmark --benchmark demo --size 20 --output test.jsonl

The data comes from the hub as the benchmark's definition says (``HF_TOKEN`` from the
environment for gated ones), or from ``--path``: a local JSONL, CSV or parquet file with the
same columns as the hub's, or already in the output contract.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

from distillery import cli
from distillery.benchmarks import Definition, load_definition
from distillery.benchmarks.transforms import TRANSFORMS
from distillery.errors import DistilleryError
from distillery.jsonl import write_jsonl
from distillery.sources import iter_hub_rows, iter_local_rows

logger = logging.getLogger(__name__)

CONTRACT = ("problem", "expected_answer")


@dataclass(frozen=True)
class Config:
    """Prepare a benchmark."""

    benchmark: str = field(metadata={"help": "benchmark definition (aime24, gsm8k, demo, ...)"})
    output: str = field(metadata={"help": "test.jsonl"})
    path: str | None = field(
        default=None, metadata={"help": "local JSONL/CSV/parquet file instead of the hub"}
    )
    max_samples: int = field(default=-1, metadata={"help": "only the first N rows (-1 = all)"})
    size: int = field(default=20, metadata={"help": "demo: number of problems"})
    seed: int = field(default=1, metadata={"help": "demo: generator seed"})

    def __post_init__(self):
        if self.size < 1:
            raise DistilleryError("--size must be at least 1")


def source_rows(definition: Definition, path: str | None):
    if path is not None:
        return iter_local_rows(path)
    if definition.source is None:
        raise DistilleryError(f"{definition.name} has no hub source; give --path")
    source = definition.source
    return itertools.chain.from_iterable(
        iter_hub_rows(source.repo, config, source.split, source.revision, source.gated)
        for config in source.configs
    )


def convert(row: dict, index: int, definition: Definition, where: str) -> dict:
    """One source row in the output contract."""
    if all(key in row for key in CONTRACT):  # already converted (e.g. a NeMo-Skills test.jsonl)
        out = dict(row)
    else:
        if definition.transform:
            try:
                row = TRANSFORMS[definition.transform](row, index)
            except KeyError as err:
                raise DistilleryError(
                    f"{where}: row {index + 1} has no column {err}; it has {sorted(row)}"
                ) from None
        out = {key: row[column] for key, column in definition.fields.items() if column in row}
        missing = [c for k, c in definition.fields.items() if c not in row and k != "id"]
        if missing:
            raise DistilleryError(
                f"{where}: missing column(s) {missing} (row {index + 1} has {sorted(row)}); "
                "fix the file or map its columns"
            )
        if not definition.fields:
            out = row
    out.setdefault("id", f"{definition.name}-{index}")
    out["id"] = str(out["id"])
    out["expected_answer"] = str(out["expected_answer"]).strip()
    return out


def main(config: Config) -> None:
    definition = load_definition(config.benchmark)
    if definition.source is None and config.path is None:
        from distillery.demo_data import make_benchmark

        rows = make_benchmark(config.size, config.seed)
    else:
        where = config.path or definition.source.repo
        rows = []
        for index, row in enumerate(source_rows(definition, config.path)):
            if index == config.max_samples:
                break
            rows.append(convert(row, index, definition, where))
        if not rows:
            raise DistilleryError(f"{where}: no rows")
    write_jsonl(config.output, rows)
    logger.info(
        "wrote %d %s problems (definition v%d) to %s",
        len(rows),
        definition.name,
        definition.version,
        config.output,
    )


if __name__ == "__main__":
    cli.run(main, Config)
