"""Benchmark definitions: small versioned YAML files (source, field mapping, grading, prompt,
defaults), in the spirit of lm-evaluation-harness tasks. See ``definitions/``."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import yaml

from distillery.errors import DistilleryError


@dataclass(frozen=True)
class Source:
    repo: str
    split: str
    configs: tuple[str | None, ...] = (None,)
    revision: str | None = None
    gated: bool = False


@dataclass(frozen=True)
class Definition:
    """One benchmark.

    Attributes:
        name, version, description: what it is; bump ``version`` when the output changes.
        source: where the data lives on the hub (``None`` for generated benchmarks).
        fields: output field -> source column (``id``, ``problem``, ``expected_answer``).
        transform: name of a function in :mod:`distillery.benchmarks.transforms` applied to
            each source row before the field mapping (answer parsing, option shuffling).
        grading: ``math`` or ``multichoice``.
        prompt: prompt config for evaluation (``None``: the evaluation's default prompt).
        seeds, max_tokens: defaults NeMo-Skills uses for it.
    """

    name: str
    version: int
    description: str
    grading: str
    fields: dict = field(default_factory=dict, hash=False)
    source: Source | None = None
    transform: str | None = None
    prompt: str | None = None
    seeds: int = 1
    max_tokens: int | None = None


def known_benchmarks() -> list[str]:
    folder = resources.files(__package__) / "definitions"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@functools.cache
def load_definition(name: str) -> Definition:
    """The definition of benchmark ``name``."""
    path = resources.files(__package__) / "definitions" / f"{name}.yaml"
    if not path.is_file():
        raise DistilleryError(f"unknown benchmark {name!r}; known: {', '.join(known_benchmarks())}")
    data = yaml.safe_load(path.read_text())
    source = data.pop("source", None)
    if source is not None:
        configs = source.pop("configs", None) or [source.pop("config", None)]
        source = Source(configs=tuple(configs), **source)
    return Definition(name=name, source=source, **data)
