"""Stage: join the chunk files of one seed, in chunk order, into one output file."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
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


def _as_is(path: str) -> tuple[int, str] | None:
    """(rows, SHA-256) of ``path`` when merging it alone would write it unchanged (no blank
    line, a newline at the end), else None."""
    rows, digest = 0, hashlib.sha256()
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip() or not line.endswith(b"\n"):
                return None
            digest.update(line)
            rows += 1
    return rows, digest.hexdigest()


def _link(chunk: str, output: str) -> bool:
    """Makes ``output`` a second name of ``chunk``: the generation job keeps its chunk files,
    so one chunk is not copied. False where the file system has no hard links."""
    tmp = f"{output}.link.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.link(chunk, tmp)
    except OSError:
        return False
    os.replace(tmp, output)
    return True


def main(config: Config) -> None:
    if len(config.inputs) == 1:
        (chunk,) = config.inputs
        found = _as_is(chunk)
        if found and _link(chunk, config.output):
            reuse.record_merged([chunk], config.output, found[1])
            logger.info("%d rows of %s linked as %s", found[0], chunk, config.output)
            return
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
