"""Stage: log one piece of the pipeline to Weights & Biases: an evaluation run (its metrics and
a table of sampled graded generations) or the SDG stages (a table of sampled generations per
stage, with their counts).

Usage::

    python -m distillery.log_wandb --run trained --set mode=offline --dir results \\
        --metrics results/evals/trained/eval-results/demo/metrics.json \\
        --samples results/evals/trained/eval-results/demo/output-rs0.jsonl \\
        --output results/evals/trained/wandb-run.json
    python -m distillery.log_wandb --run sdg --set mode=offline --dir results \\
        --generations problem_extraction=results/sdg/problems/output.jsonl \\
        solutions=results/sdg/solutions/output-rs0.jsonl --output results/sdg/wandb-run.json

Offline runs land under ``<dir>/wandb/`` and are uploaded later with ``wandb sync``. Every
piece of one pipeline (one results directory) joins one W&B group: ``wandb.group``, else a
name made once per results directory (:func:`pipeline_group`), which training uses too.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from distillery import cli
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl, write_json
from distillery.settings.workflow import Wandb

logger = logging.getLogger(__name__)

TABLE_COLUMNS = (
    "benchmark",
    "problem",
    "generation",
    "expected_answer",
    "predicted_answer",
    "symbolic_correct",
)


GENERATION_COLUMNS = ("file", "input", "generation", "finish_reason", "num_generated_tokens")
# the field of an SDG stage's rows that its prompt was filled from
INPUT_FIELDS = ("problem", "forum_post", "question")


@dataclass(frozen=True)
class Config:
    """Log an evaluation run or the SDG stages to W&B."""

    run: str = field(metadata={"help": "W&B run name: the evaluation run, or sdg"})
    output: str = field(metadata={"help": "JSON note of where the W&B run is"})
    wandb: Wandb = field(metadata={"help": "the wandb block (mode, project, group, num_samples)"})
    metrics: tuple[str, ...] = field(default=(), metadata={"help": "metrics.json files of the run"})
    samples: tuple[str, ...] = field(
        default=(), metadata={"help": "graded files to sample generations from"}
    )
    generations: tuple[str, ...] = field(
        default=(),
        metadata={"help": "STAGE=FILE generation outputs of SDG stages: a sample table each"},
    )
    dir: str = field(default="results", metadata={"help": "where W&B writes its files"})
    seed: int = field(default=0, metadata={"help": "sampling seed for the table"})

    def __post_init__(self):
        if self.wandb.mode == "disabled":
            raise DistilleryError("wandb.mode is disabled: set mode offline or online to log")


def flatten(metrics: dict) -> dict[str, float]:
    """``{"<bench>/<mode>/<metric>": value}`` for every number, as NeMo-Skills logs them."""
    flat = {}
    for bench, modes in metrics.items():
        if bench.startswith("_"):
            continue
        for mode, values in modes.items():
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    flat[f"{bench}/{mode}/{key}"] = value
    return flat


def sample_rows(paths: tuple[str, ...], count: int, seed: int) -> list[list]:
    rows = []
    for path in paths:
        benchmark = Path(path).parent.name
        rows += [{**row, "benchmark": benchmark} for row in read_jsonl(path)]
    chosen = random.Random(seed).sample(rows, min(count, len(rows)))
    return [[str(row.get(column, "")) for column in TABLE_COLUMNS] for row in chosen]


def check_mode(settings: Wandb) -> None:
    if settings.mode == "online" and not os.environ.get("WANDB_API_KEY"):
        raise DistilleryError(
            "wandb.mode is online but WANDB_API_KEY is not set; export it, or use mode offline "
            "and `wandb sync` later"
        )


def pipeline_group(settings: Wandb, directory: str | Path) -> str:
    """The W&B group of every piece of one pipeline: ``wandb.group``, else a name made by the
    first job that asks and kept in ``<directory>/wandb/group`` for the others (jobs on other
    nodes read the same file on the shared file system)."""
    if settings.group:
        return settings.group
    path = Path(directory) / "wandb" / "group"
    path.parent.mkdir(parents=True, exist_ok=True)
    name = f"{settings.project}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"
    try:
        with open(path, "x") as handle:  # exclusive: the first job's name wins
            handle.write(name + "\n")
    except FileExistsError:
        for _ in range(50):  # the winner may not have written it yet
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.1)
        raise DistilleryError(f"{path} is empty; delete it and rerun") from None
    return name


def generation_rows(entries: tuple[str, ...], count: int, seed: int) -> dict[str, dict]:
    """Per SDG stage (``STAGE=FILE`` entries, several files per stage allowed): a sample of its
    generations as table rows, and its counts."""
    by_stage: dict[str, list[tuple[str, dict]]] = {}
    for entry in entries:
        stage, sep, path = entry.partition("=")
        if not sep or not stage or not path:
            raise DistilleryError(f"--generations {entry!r}: give STAGE=FILE")
        rows = read_jsonl(path, allow_empty=True)
        by_stage.setdefault(stage, []).extend((Path(path).name, r) for r in rows)
    out = {}
    for stage, rows in by_stage.items():
        if not rows:
            out[stage] = {"table": [], "stats": {f"{stage}/samples": 0}}
            continue
        chosen = random.Random(seed).sample(rows, min(count, len(rows)))
        table = []
        for name, row in chosen:
            source = next((row[f] for f in INPUT_FIELDS if row.get(f) is not None), "")
            table.append(
                [name, str(source), str(row.get("generation", "")), str(row.get("finish_reason")),
                 int(row.get("num_generated_tokens") or 0)]
            )  # fmt: skip
        tokens = [int(r.get("num_generated_tokens") or 0) for _, r in rows]
        finished = Counter(str(r.get("finish_reason")) for _, r in rows)
        stats = {f"{stage}/samples": len(rows),
                 f"{stage}/mean_generated_tokens": sum(tokens) / max(len(tokens), 1)}  # fmt: skip
        stats.update({f"{stage}/finish_{k}": 100.0 * v / len(rows) for k, v in finished.items()})
        out[stage] = {"table": table, "stats": stats}
    return out


def main(config: Config) -> None:
    import wandb

    if not (config.metrics or config.samples or config.generations):
        raise DistilleryError("nothing to log: give --metrics/--samples or --generations")
    metrics, origin = {}, {}
    for path in config.metrics:
        data = orjson.loads(Path(path).read_bytes())
        origin = data.get("_provenance", origin)
        metrics.update(data)
    check_mode(config.wandb)
    Path(config.dir).mkdir(parents=True, exist_ok=True)
    group = pipeline_group(config.wandb, config.dir)
    run = wandb.init(
        project=config.wandb.project,
        name=config.run,
        group=group,
        dir=config.dir,
        mode=config.wandb.mode,
        config={"provenance": origin},
        reinit="create_new",
    )
    logged = 0
    if metrics:
        run.log(flatten(metrics))
    if config.samples:
        table = wandb.Table(
            columns=list(TABLE_COLUMNS),
            data=sample_rows(config.samples, config.wandb.num_samples, config.seed),
        )
        run.log({"samples": table})
        logged += len(table.data)
    stages = generation_rows(config.generations, config.wandb.num_samples, config.seed)
    for stage, found in stages.items():
        table = wandb.Table(columns=list(GENERATION_COLUMNS), data=found["table"])
        run.log({f"{stage}_samples": table, **found["stats"]})
        logged += len(found["table"])
    run.finish()
    write_json(
        config.output,
        {
            "mode": config.wandb.mode,
            "project": config.wandb.project,
            "group": group,
            "run_id": run.id,
            "run_dir": str(Path(run.dir).parent),
            "sync": f"wandb sync {Path(run.dir).parent}"
            if config.wandb.mode == "offline"
            else None,
        },
    )
    logger.info(
        "logged %d metrics and %d samples to W&B (%s, group %s)",
        len(flatten(metrics)),
        logged,
        config.wandb.mode,
        group,
    )


if __name__ == "__main__":
    cli.run(main, Config)
