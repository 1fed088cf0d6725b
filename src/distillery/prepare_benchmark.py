"""Stage: write a benchmark's test set as ``test.jsonl`` (``id``, ``problem``,
``expected_answer``; ``options`` and ``A``..``D`` for multiple choice).

Usage::

    python -m distillery.prepare_benchmark --set source=aime24 --output test.jsonl
    python -m distillery.prepare_benchmark --set source=gsm8k --set path=gsm8k-test.parquet \\
        --output test.jsonl
    python -m distillery.prepare_benchmark --set source=demo --set size=20 --output test.jsonl

The data comes from where the benchmark's definition says: the hub (``HF_TOKEN`` from the
environment for gated ones) or a file at a pinned URL; or from ``path``: a local JSONL, CSV or
parquet file with the same columns as the source's, or already in the output contract.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

from distillery import cli
from distillery.benchmarks import Definition, load_definition
from distillery.benchmarks.transforms import OPTION_ORDER_TRANSFORMS, TRANSFORMS, Context
from distillery.data.sources import (
    iter_hub_rows,
    iter_located_rows,
    iter_url_rows,
    locate_hub_rows,
)
from distillery.errors import DistilleryError
from distillery.jsonl import write_jsonl
from distillery.settings.data import Benchmark

logger = logging.getLogger(__name__)

CONTRACT = ("problem", "expected_answer")
# mapped fields a source row may lack (ids are then numbered)
OPTIONAL_FIELDS = ("id", "subset_for_metrics", "reference_solution")


@dataclass(frozen=True)
class Config:
    """Prepare a benchmark."""

    output: str = field(metadata={"help": "test.jsonl"})
    benchmark: Benchmark = field(
        metadata={
            "help": "the benchmark's block (source: its definition; path, size, seed, "
            "max_samples), e.g. --set source=aime24"
        }
    )

    def __post_init__(self):
        if self.benchmark.source is None:
            raise DistilleryError(
                "the benchmark block needs `source`, its definition (e.g. --set source=aime24)"
            )


def source_rows(definition: Definition, path: str | None):
    """``(where, row)`` of the benchmark's source: the local file, else the hub or the URL. Rows
    of a hub dataset with several configs (one per subject) carry their config as ``_config``."""
    if path is not None:
        return iter_located_rows(path)
    if definition.source is None:
        raise DistilleryError(f"{definition.name} has no source to download; give --path")
    source = definition.source
    if source.url is not None:
        return iter_url_rows(source.url)
    several = len(source.configs) > 1
    return itertools.chain.from_iterable(
        locate_hub_rows(
            source.repo + (f" ({config})" if config else ""),
            (
                {**row, "_config": config} if several else row
                for row in iter_hub_rows(
                    source.repo, config, source.split, source.revision, source.gated
                )
            ),
        )
        for config in source.configs
    )


def convert(
    row: dict,
    index: int,
    definition: Definition,
    where: str,
    context: Context | None = None,
    allow_empty: bool = False,
) -> dict | None:
    """One source row in the output contract, checked: a problem as text, an answer that is not
    null (nor empty, unless ``allow_empty``); ``None`` for a row the definition drops.
    ``where`` names the row (``file:line``) in errors."""
    if all(key in row for key in CONTRACT):  # already converted (e.g. a NeMo-Skills test.jsonl)
        out = {key: value for key, value in row.items() if key != "_config"}
    else:
        if definition.transform:
            try:
                row = TRANSFORMS[definition.transform](row, index, context or Context())
            except KeyError as err:
                raise DistilleryError(
                    f"{where}: missing column {err} (the row has {sorted(row)}); {definition.name} "
                    "needs its source's columns: fix the file"
                ) from None
            except (ValueError, TypeError, IndexError, AttributeError) as err:
                raise DistilleryError(
                    f"{where}: {definition.name} cannot read the row: {err}"
                ) from None
            if row is None:
                return None
        out = {key: row[column] for key, column in definition.fields.items() if column in row}
        if not definition.fields:
            out = dict(row)
        columns = definition.fields or {key: key for key in CONTRACT}
        missing = [c for k, c in columns.items() if c not in row and k not in OPTIONAL_FIELDS]
        if missing:
            raise DistilleryError(
                f"{where}: missing column(s) {missing} (the row has {sorted(row)}); fix the file "
                "or map its columns"
            )
    problem, answer = out["problem"], out["expected_answer"]
    if not isinstance(problem, str) or not problem.strip():
        raise DistilleryError(f"{where}: 'problem' must be non-empty text, got {problem!r}")
    empty = answer is not None and not isinstance(answer, dict | list) and not str(answer).strip()
    if answer is None or isinstance(answer, dict | list) or (empty and not allow_empty):
        raise DistilleryError(
            f"{where}: 'expected_answer' is {answer!r}; every benchmark row needs an answer "
            "(fix the row or remove it)"
        )
    out.setdefault("id", f"{definition.name}-{index}")
    out["id"] = str(out["id"])
    out["expected_answer"] = str(answer).strip()
    return out


def read_rows(
    definition: Definition, path: str | None, max_samples: int, benchmark: Benchmark | None = None
) -> list[dict]:
    """The benchmark's rows, converted and checked; ids must be unique. Rows with an empty
    answer are kept, with a warning naming them, where the definition allows them (NeMo-Skills
    keeps them, and they count as wrong), unless ``drop_empty_answers``."""
    benchmark = benchmark or Benchmark()
    context = Context(keep_option_order=benchmark.keep_option_order)
    rows: list[dict] = []
    first_seen: dict[str, str] = {}
    empty: list[str] = []
    dropped = 0
    for index, (where, row) in enumerate(source_rows(definition, path)):
        if len(rows) == max_samples:
            break
        out = convert(row, index, definition, where, context, definition.allow_empty_answers)
        if out is None:
            dropped += 1
            continue
        if out["id"] in first_seen:
            raise DistilleryError(
                f"{where}: id {out['id']!r} repeats {first_seen[out['id']]}; benchmark ids must "
                "be unique (metrics join the seeds' rows by id)"
            )
        first_seen[out["id"]] = where
        if not out["expected_answer"]:
            empty.append(where)
            if benchmark.drop_empty_answers:
                continue
        rows.append(out)
    if dropped:
        logger.info("dropped %d rows the definition excludes (%s)", dropped, definition.transform)
    if empty:
        fate = (
            "dropped (drop_empty_answers)"
            if benchmark.drop_empty_answers
            else "kept as NeMo-Skills keeps them; they count as wrong"
        )
        logger.warning(
            "%d row(s) with an empty expected answer, %s: %s", len(empty), fate, ", ".join(empty)
        )
    return rows


def main(config: Config) -> None:
    definition = load_definition(config.benchmark.source)
    if config.benchmark.keep_option_order and definition.transform not in OPTION_ORDER_TRANSFORMS:
        raise DistilleryError(
            f"keep_option_order: {definition.name}'s source has no option order of its own to "
            f"keep (it applies to {', '.join(sorted(OPTION_ORDER_TRANSFORMS))}); remove it"
        )
    if definition.source is None and config.benchmark.path is None:
        from distillery.data.demo import make_benchmark

        rows = make_benchmark(config.benchmark.size, config.benchmark.seed)
    else:
        rows = read_rows(
            definition, config.benchmark.path, config.benchmark.max_samples, config.benchmark
        )
        if not rows:
            raise DistilleryError(f"{config.benchmark.path or definition.source.name}: no rows")
    write_jsonl(config.output, rows)
    if definition.judge:
        logger.warning(
            "%s's answers need an LLM judge as well (free text, sets, conditions): set "
            "evaluation.judge (judge_correct), or its symbolic_correct undercounts",
            definition.name,
        )
    logger.info(
        "wrote %d %s problems (definition v%d) to %s",
        len(rows),
        definition.name,
        definition.version,
        config.output,
    )


if __name__ == "__main__":
    cli.run(main, Config)
