"""Stage: log one evaluation run to Weights & Biases: its metrics and a table of sampled
generations.

Usage::

    python -m distillery.log_wandb --run trained --set mode=offline --dir results \\
        --metrics results/evals/trained/eval-results/demo/metrics.json \\
        --samples results/evals/trained/eval-results/demo/output-rs0.jsonl \\
        --output results/evals/trained/wandb-run.json

Offline runs land under ``<dir>/wandb/`` and are uploaded later with ``wandb sync``.
"""

from __future__ import annotations

import logging
import os
import random
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


@dataclass(frozen=True)
class Config:
    """Log an evaluation run to W&B."""

    run: str = field(metadata={"help": "evaluation run name (the W&B run name)"})
    metrics: tuple[str, ...] = field(metadata={"help": "metrics.json files of the run"})
    output: str = field(metadata={"help": "JSON note of where the W&B run is"})
    wandb: Wandb = field(metadata={"help": "the wandb block (mode, project, group, num_samples)"})
    samples: tuple[str, ...] = field(
        default=(), metadata={"help": "graded files to sample generations from"}
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


def main(config: Config) -> None:
    import wandb

    metrics, origin = {}, {}
    for path in config.metrics:
        data = orjson.loads(Path(path).read_bytes())
        origin = data.get("_provenance", origin)
        metrics.update(data)
    if config.wandb.mode == "online" and not os.environ.get("WANDB_API_KEY"):
        raise DistilleryError(
            "wandb.mode is online but WANDB_API_KEY is not set; export it, or use mode offline "
            "and `wandb sync` later"
        )
    Path(config.dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=config.wandb.project,
        name=config.run,
        group=config.wandb.group,
        dir=config.dir,
        mode=config.wandb.mode,
        config={"provenance": origin},
        reinit="create_new",
    )
    run.log(flatten(metrics))
    table = wandb.Table(
        columns=list(TABLE_COLUMNS),
        data=sample_rows(config.samples, config.wandb.num_samples, config.seed),
    )
    run.log({"samples": table})
    run.finish()
    write_json(
        config.output,
        {
            "mode": config.wandb.mode,
            "project": config.wandb.project,
            "run_id": run.id,
            "run_dir": str(Path(run.dir).parent),
            "sync": f"wandb sync {Path(run.dir).parent}"
            if config.wandb.mode == "offline"
            else None,
        },
    )
    logger.info(
        "logged %d metrics and %d samples to W&B (%s)",
        len(flatten(metrics)),
        len(table.data),
        config.wandb.mode,
    )


if __name__ == "__main__":
    cli.run(main, Config)
