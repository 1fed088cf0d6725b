"""Resumable output: finished samples are appended to ``<output>.partial`` as they complete.

The first line of the partial file is a fingerprint of everything that determines the samples
(input rows, prompt, model, sampling settings). A rerun with the same fingerprint skips the
samples already there; a different fingerprint means the job's inputs changed, so the stale
partial file is discarded. A kill can leave a torn last line, which is dropped on reopening. At
the end the rows are written in input order to a temporary file and renamed onto the output.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import orjson

from distillery.errors import DistilleryError
from distillery.jsonl import dumps, write_jsonl

logger = logging.getLogger(__name__)

INDEX_KEY = "_index"


def fingerprint(*parts: object) -> str:
    """A stable hash of JSON-serialisable parts."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(orjson.dumps(part, option=orjson.OPT_SORT_KEYS))
        digest.update(b"\0")
    return digest.hexdigest()


class PartialOutput:
    """Append-only store of finished rows keyed by input index.

    Args:
        output: the final output path; the partial file is ``<output>.partial``.
        key: the job's fingerprint (see :func:`fingerprint`).
    """

    def __init__(self, output: str | Path, key: str):
        self.output = Path(output)
        self.path = self.output.with_name(self.output.name + ".partial")
        self.key = key
        self.rows: dict[int, dict] = {}
        self._handle = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) < len(raw):
            logger.warning("%s: dropping a torn last line left by a killed run", self.path)
        lines = complete.splitlines()
        try:
            header = orjson.loads(lines[0]) if lines else {}
        except orjson.JSONDecodeError:
            header = {}
        if header.get("_fingerprint") != self.key:
            logger.warning(
                "%s: written for different inputs or settings; starting this job afresh",
                self.path,
            )
            self.path.unlink()
            return
        for number, line in enumerate(lines[1:], start=2):
            try:
                row = orjson.loads(line)
                index = row.pop(INDEX_KEY)
            except (orjson.JSONDecodeError, KeyError, AttributeError):
                raise DistilleryError(
                    f"{self.path}:{number}: corrupt resume file; delete it to regenerate this job"
                ) from None
            self.rows.setdefault(index, row)
        if len(complete) < len(raw):
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        logger.info("%s: resuming with %d finished samples", self.path, len(self.rows))

    def __contains__(self, index: int) -> bool:
        return index in self.rows

    def add(self, index: int, row: dict) -> None:
        """Records one finished row and flushes it to disk."""
        if index in self.rows:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            self._handle = self.path.open("ab")
            if fresh:
                self._handle.write(dumps({"_fingerprint": self.key}))
        self._handle.write(dumps({INDEX_KEY: index, **row}))
        self._handle.flush()
        self.rows[index] = row

    def sync(self) -> None:
        """Forces appended rows to stable storage (call once per batch, not per row)."""
        if self._handle is not None:
            os.fsync(self._handle.fileno())

    def finish(self, expected: int) -> None:
        """Writes the output in index order and removes the partial file."""
        self.close()
        missing = expected - len(self.rows)
        if missing:
            raise DistilleryError(f"{self.output}: {missing} samples are still missing")
        write_jsonl(self.output, (self.rows[i] for i in sorted(self.rows)))
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def close(self) -> None:
        if self._handle is not None:
            self.sync()
            self._handle.close()
            self._handle = None
