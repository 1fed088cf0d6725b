"""Stage: join the chunk files of one seed, in chunk order, into one output file."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from distillery import cli
from distillery.errors import DistilleryError
from distillery.generation import reuse
from distillery.jsonl import atomic_output

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Concatenate chunk files."""

    inputs: tuple[str, ...] = field(metadata={"help": "chunk files, in chunk order"})
    output: str = field(metadata={"help": "merged JSONL"})

    def __post_init__(self):
        if not self.inputs:
            raise DistilleryError("--inputs needs at least one chunk file")


def main(config: Config) -> None:
    rows = 0
    digest = hashlib.sha256()  # of what is written, for the reuse record
    with atomic_output(config.output) as out:
        for path in config.inputs:
            with open(path, "rb") as handle:
                for line in handle:
                    if line.strip():
                        line = line if line.endswith(b"\n") else line + b"\n"
                        out.write(line)
                        digest.update(line)
                        rows += 1
    if rows == 0:
        logger.warning("all %d chunks are empty", len(config.inputs))
    # a later job that needs these samples again copies them from here
    reuse.record_merged(list(config.inputs), config.output, digest.hexdigest())
    logger.info("merged %d chunks, %d rows, into %s", len(config.inputs), rows, config.output)


if __name__ == "__main__":
    cli.run(main, Config)
