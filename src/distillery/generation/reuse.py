"""Finished samples reused across runs: a generation job skips every output file whose samples
an earlier run already generated with the same inputs and settings.

When a job finishes its share of a file it records, beside it (``.<name>.done``), the
fingerprint of the whole file's samples (:func:`distillery.generate.file_key` over all its input
rows: rows, prompt, model, sampling), where its share starts, how many rows it has, and the
SHA-256 of its bytes; merging the chunk files of a file whose records agree records the merged
file the same way (:func:`record_merged`). A later job whose share of a file has that
fingerprint does not generate it again:

- its chunk file is still there, as recorded: it is left as it is, not even written again (the
  workflow keeps chunk files, and a merge whose chunk files kept their times does not run);
- it is gone (a results directory from a version that deleted chunk files, or ``chunks``
  changed), but the merged file (``X_chunk_N.jsonl`` -> ``X.jsonl``) is there, as recorded:
  this share's rows are copied from it, with no request sent, wherever the chunks now cut it.

Anything else (another fingerprint, other bytes, no record) generates the file as before. So
adding a benchmark, raising the seeds or changing one benchmark's prompt sends only the
requests of the new or changed files. ``DISTILLERY_REGENERATE=1`` (set by the workflow when
Snakemake is asked to force jobs) generates everything again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from distillery.jsonl import atomic_output

logger = logging.getLogger(__name__)

REGENERATE_ENV = "DISTILLERY_REGENERATE"
_CHUNK = re.compile(r"^(?P<stem>.+)_chunk_\d+\.jsonl$")


def record_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.done")


def merged_path(output: str | Path) -> Path | None:
    """The file the workflow merges a chunk file into, or None for a file that is no chunk.

    Example:
        >>> str(merged_path("gen/aime24/output-rs3_chunk_0.jsonl"))
        'gen/aime24/output-rs3.jsonl'
    """
    output = Path(output)
    match = _CHUNK.match(output.name)
    return output.with_name(match["stem"] + ".jsonl") if match else None


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def record(output: str | Path, key: str, offset: int, rows: int, sha256: str | None = None) -> None:
    """Notes that ``output`` holds rows ``[offset, offset + rows)`` of the samples of
    fingerprint ``key`` (``sha256``: of its bytes, when the writer has it; else read)."""
    sha256 = sha256 or _sha256(Path(output))
    entry = {"key": key, "offset": offset, "rows": rows, "sha256": sha256}
    with atomic_output(record_path(output)) as out:
        out.write(json.dumps(entry).encode() + b"\n")


def record_merged(inputs: list[str | Path], output: str | Path, sha256: str) -> bool:
    """Records the merged ``output`` (``sha256`` of its bytes) as the whole file of its
    chunks' fingerprint when every chunk was recorded with it and their rows follow each other
    from the first; otherwise drops any earlier record of ``output``. True when recorded."""
    entries = [_recorded(Path(path)) for path in inputs]
    start = 0
    for entry in entries:
        if not entry or entry.get("key") != entries[0].get("key") or entry["offset"] != start:
            record_path(output).unlink(missing_ok=True)
            return False
        start += entry["rows"]
    record(output, entries[0]["key"], 0, start, sha256)
    return True


def _recorded(output: Path) -> dict | None:
    try:
        entry = json.loads(record_path(output).read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and {"key", "offset", "rows"} <= entry.keys() else None


def _share(data: bytes, offset: int, rows: int) -> list[bytes] | None:
    """Lines ``[offset, offset + rows)`` of ``data`` (blank lines skipped, as merging skips
    them), or None when it has fewer."""
    lines = [line for line in data.splitlines(keepends=True) if line.strip()]
    found = [line if line.endswith(b"\n") else line + b"\n" for line in lines[offset:]][:rows]
    return found if len(found) == rows else None


def reuse(output: str | Path, key: str, offset: int, rows: int) -> bool:
    """True when ``output`` (rows ``[offset, offset + rows)`` of the samples of fingerprint
    ``key``) needs no generating: it is there as recorded, or its rows are in the recorded
    merged file and have been copied from it."""
    if os.environ.get(REGENERATE_ENV):
        return False
    output = Path(output)
    mine = _recorded(output)
    if mine and (mine["key"], mine["offset"], mine["rows"]) == (key, offset, rows):
        if _sha256(output) == mine.get("sha256"):
            return True
    merged = merged_path(output)
    whole = None if merged is None else _recorded(merged)
    if not whole or whole["key"] != key or whole["offset"] != 0 or offset + rows > whole["rows"]:
        return False
    try:
        data = merged.read_bytes()  # read once: checked, then this share cut from it
    except OSError:
        return False
    if hashlib.sha256(data).hexdigest() != whole.get("sha256"):
        return False
    lines = _share(data, offset, rows)
    if lines is None:
        return False
    with atomic_output(output) as out:
        out.writelines(lines)
    record(output, key, offset, rows, hashlib.sha256(b"".join(lines)).hexdigest())
    logger.info("%s: %d samples reused from %s", output, rows, merged)
    return True
