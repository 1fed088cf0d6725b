"""The import path a child interpreter needs to run this package from its source tree (a job
re-run under ``server.python``, the bench scripts' stages)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SOURCE = str(Path(__file__).resolve().parents[2])


def with_source(environ: Mapping[str, str] = os.environ) -> str:
    """``PYTHONPATH`` with this package's source first, then what ``environ`` already holds (a
    vLLM installed outside the interpreter's site, say): for another interpreter, which may not
    have the package installed.

    Example:
        >>> with_source({}) == SOURCE
        True
        >>> with_source({"PYTHONPATH": "/opt/vllm"}) == SOURCE + os.pathsep + "/opt/vllm"
        True
    """
    return os.pathsep.join(p for p in (SOURCE, environ.get("PYTHONPATH")) if p)
