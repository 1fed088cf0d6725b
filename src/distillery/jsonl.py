"""JSONL reading and writing with errors that name the file and line, and atomic writes.

Every declared output of the workflow is written to a temporary file beside it and renamed into
place, so a failed or killed job never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from distillery.errors import DistilleryError


def iter_jsonl(path: str | Path, *, allow_empty: bool = False) -> Iterator[tuple[int, dict]]:
    """Yields ``(line_number, row)`` for each non-blank line of a JSONL file.

    Args:
        path: the file to read.
        allow_empty: if False, a missing file or a file without rows is an error.

    Raises:
        DistilleryError: the file is missing or empty, a line is not a JSON object, or the file
            is not valid UTF-8; the message gives ``file:line``.

    Example:
        >>> rows = [row for _, row in iter_jsonl("results/data/raw-posts.jsonl")]  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise DistilleryError(
            f"{path}: input file does not exist; build it first (name it as a snakemake target) "
            "or fix the path in the config"
        )
    seen = False
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as err:
                kind = "is not valid UTF-8" if _bad_utf8(raw) else f"is not valid JSON ({err})"
                raise DistilleryError(f"{path}:{number}: line {kind}; fix or remove it") from None
            if not isinstance(row, dict):
                raise DistilleryError(
                    f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}"
                )
            seen = True
            yield number, row
    if not seen and not allow_empty:
        raise DistilleryError(
            f"{path}: input file is empty; the step that wrote it produced no rows "
            "(check its log), or point the config at a file with data"
        )


def read_jsonl(path: str | Path, *, allow_empty: bool = False) -> list[dict]:
    """Reads a whole JSONL file into a list of rows (see :func:`iter_jsonl`)."""
    return [row for _, row in iter_jsonl(path, allow_empty=allow_empty)]


def _bad_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def dumps(row: Any) -> bytes:
    """One JSONL line (with newline) for ``row``; non-JSON types such as numpy scalars are
    rejected by orjson rather than silently stringified."""
    return orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Opens a temporary file beside ``path`` and renames it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; an output is as readable as any file the user creates
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets as it reads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    """Writes ``rows`` atomically; returns how many were written."""
    count = 0
    with atomic_output(path) as handle:
        for row in rows:
            handle.write(dumps(row))
            count += 1
    return count


def write_json(path: str | Path, obj: Any) -> None:
    """Writes an indented JSON document atomically."""
    with atomic_output(path) as handle:
        handle.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
        handle.write(b"\n")


def write_text(path: str | Path, text: str) -> None:
    """Writes a text file atomically."""
    with atomic_output(path, "w") as handle:
        handle.write(text)
