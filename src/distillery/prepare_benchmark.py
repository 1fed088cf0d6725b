"""Stage: write a benchmark's test set as ``test.jsonl`` (``id``, ``problem``, ``expected_answer``).

Usage::

    python -m distillery.prepare_benchmark --benchmark demo --size 20 --output test.jsonl
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from distillery import cli
from distillery.errors import DistilleryError
from distillery.jsonl import write_jsonl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Prepare a benchmark."""

    benchmark: Literal["demo"] = field(
        metadata={"help": "demo: generated problems held out from the demo forum posts"}
    )
    output: str = field(metadata={"help": "test.jsonl"})
    size: int = field(default=20, metadata={"help": "demo: number of problems"})
    seed: int = field(default=1, metadata={"help": "demo: generator seed"})

    def __post_init__(self):
        if self.size < 1:
            raise DistilleryError("--size must be at least 1")


def main(config: Config) -> None:
    from distillery.demo_data import make_benchmark

    rows = make_benchmark(config.size, config.seed)
    write_jsonl(config.output, rows)
    logger.info("wrote %d %s problems to %s", len(rows), config.benchmark, config.output)


if __name__ == "__main__":
    cli.run(main, Config)
