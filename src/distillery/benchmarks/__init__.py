"""Benchmark definitions: small versioned YAML files (source, field mapping, grading, prompt,
defaults), in the spirit of lm-evaluation-harness tasks. See ``definitions/``; ``groups.yaml``
names sets of them (NeMo-Skills' benchmark groups)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import yaml

from distillery.errors import DistilleryError


@dataclass(frozen=True)
class Source:
    """Where a benchmark's data lives: a hub dataset (``repo``, ``split``, ``configs``,
    ``revision``) or one file at a ``url`` (pinned to a commit where the host allows)."""

    repo: str | None = None
    split: str | None = None
    configs: tuple[str | None, ...] = (None,)
    revision: str | None = None
    gated: bool = False
    url: str | None = None

    def __post_init__(self):
        if (self.repo is None) == (self.url is None):
            raise ValueError("a source has either `repo` (with `split`) or `url`")
        if self.repo is not None and self.split is None:
            raise ValueError(f"source {self.repo} needs a `split`")

    @property
    def name(self) -> str:
        return self.repo or self.url


@dataclass(frozen=True)
class Definition:
    """One benchmark.

    Attributes:
        name, version, description: what it is; bump ``version`` when the output changes.
        source: where the data lives on the hub (``None`` for generated benchmarks).
        fields: output field -> source column (``id``, ``problem``, ``expected_answer``).
        transform: name of a function in :mod:`distillery.benchmarks.transforms` applied to
            each source row before the field mapping (answer parsing, option shuffling).
        grading: a grading mode (:data:`distillery.grading.modes.MODES`).
        judge: its answers need an LLM judge as well (NeMo-Skills judges them); until a judge
            stage grades them, ``symbolic_correct`` undercounts and the log says so.
        prompt: prompt config for evaluation (``None``: the evaluation's default prompt).
        seeds, max_tokens: defaults NeMo-Skills uses for it.
        allow_empty_answers: its source has rows with an empty answer that NeMo-Skills keeps
            (they count as wrong); elsewhere such a row is an error.
        metrics: its metric type (:data:`distillery.reports.metrics.METRICS`).
    """

    name: str
    version: int
    description: str
    grading: str
    fields: dict = field(default_factory=dict, hash=False)
    source: Source | None = None
    transform: str | None = None
    judge: bool = False
    prompt: str | None = None
    seeds: int = 1
    max_tokens: int | None = None
    allow_empty_answers: bool = False
    metrics: str = "math"

    def row_fields(self) -> frozenset[str]:
        """The fields of this benchmark's rows (what a prompt may use)."""
        from distillery.benchmarks.transforms import TRANSFORM_FIELDS

        if self.source is None:  # generated (demo)
            return frozenset({"id", "problem", "expected_answer"})
        base = {"id", "problem", "expected_answer"}
        if self.fields:
            return frozenset(base | set(self.fields))
        return frozenset(base | TRANSFORM_FIELDS.get(self.transform, frozenset()))


def known_benchmarks() -> list[str]:
    folder = resources.files(__package__) / "definitions"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@functools.cache
def load_definition(name: str) -> Definition:
    """The definition of benchmark ``name``."""
    path = resources.files(__package__) / "definitions" / f"{name}.yaml"
    if not path.is_file():
        raise DistilleryError(unknown_message(name))
    data = yaml.safe_load(path.read_text())
    source = data.pop("source", None)
    if source is not None:
        configs = source.pop("configs", None) or [source.pop("config", None)]
        source = Source(configs=tuple(configs), **source)
    from distillery.grading.modes import MODES

    if data.get("grading") not in MODES:
        raise DistilleryError(
            f"{path}: grading {data.get('grading')!r} is not a grading mode ({', '.join(MODES)})"
        )
    from distillery.reports.metrics import METRICS

    if data.get("metrics", "math") not in METRICS:
        raise DistilleryError(
            f"{path}: metrics {data['metrics']!r} is not a metric type ({', '.join(METRICS)})"
        )
    return Definition(name=name, source=source, **data)


@functools.cache
def groups() -> dict[str, dict[str, int | None]]:
    """Benchmark groups: name -> {benchmark: seeds (None: the definition's)}."""
    data = yaml.safe_load((resources.files(__package__) / "groups.yaml").read_text())
    return {name: dict(group["benchmarks"]) for name, group in data.items()}


def unknown_message(name: str) -> str:
    return (
        f"unknown benchmark {name!r}; known benchmarks: {', '.join(known_benchmarks())}; "
        f"groups: {', '.join(sorted(groups()))}"
    )


def expand(
    benchmarks: dict[str, int | None], keep: set[str] = frozenset()
) -> dict[str, int | None]:
    """``evaluation.benchmarks`` with each group replaced by its members, in order: a number
    given to a group sets every member's seeds, else each keeps the group's (or its
    definition's). A benchmark named both alone and in a group keeps its own entry; names in
    ``keep`` (benchmarks the config defines under those names) are not expanded.

    Example:
        >>> expand({"mcq-suite": None, "gpqa-diamond": 8})["gpqa-diamond"]
        8
        >>> list(expand({"mcq-suite": 2}).values())
        [2, 2, 2, 2]
    """
    out: dict[str, int | None] = {}
    for name, count in benchmarks.items():
        if name in groups() and name not in keep:
            for member, seeds in groups()[name].items():
                if member not in benchmarks:
                    out[member] = count if count is not None else seeds
        else:
            out[name] = count
    return out
