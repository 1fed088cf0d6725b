"""What every LLM processing step is made of, and the registry's entry for one.

A step has two halves around one generation job: ``select`` turns the step's input files into
request rows (``_ref``, the row and part it belongs to, and ``_messages``, the rendered prompt;
a row without ``_messages`` is a verdict decided without the model), and ``apply`` puts the
parsed answers back on the input rows, keeping, dropping or changing them. An answer that does
not parse is counted, logged with its row, and treated as no verdict: it never makes a problem
contaminated, a class apply, or a solution correct.

A step is one module of ``distillery.processing.steps`` defining ``STEP`` (or ``STEPS``): its
settings (a :class:`~distillery.settings.steps.Step`), where its config block and its files
live, and its two halves. The workflow plans its rules, the config check reads its prompts and
``distillery.process`` runs it from that entry alone.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from distillery.errors import DistilleryError
from distillery.prompts import MESSAGES_FIELD, PromptConfig
from distillery.settings.steps import Step

logger = logging.getLogger(__name__)

REF = "_ref"
# set on a solution none of whose rewritten summaries is valid: not SFT data
NO_VALID_SUMMARY = "no_valid_summary"


@dataclass
class Outcome:
    """The rows a step keeps and drops, and its counts (for its report). ``files``: the rows
    of each output file, where a step writes one per input (default: ``kept``, into the one
    output); ``verdicts``: a step's per-pair verdicts; ``report``: markdown after its counts."""

    kept: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    files: list[list[dict]] | None = None
    verdicts: list[dict] | None = None
    report: str = ""

    def unparsed(self, where: str, text: str | None) -> None:
        self.counts["unparsed"] += 1
        logger.warning("%s: cannot read the model's answer (%.120r); no verdict", where, text)


@dataclass(frozen=True)
class StepFiles:
    """What ``distillery.process`` hands a step: its input files, the output files a select
    may write (judge_solutions' labelled files), and the options some steps take."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    benchmarks: tuple[str, ...] = ()
    extraction: object = None  # grading.answers.ExtractionConfig
    fill_majority: bool = True

    def per_input(self, step: str) -> None:
        if len(self.outputs) != len(self.inputs):
            raise DistilleryError(f"{step}: give one --outputs file per input")


@dataclass(frozen=True)
class Answers:
    """The generations of a step's requests (by ``_ref``) and its prefilled verdicts."""

    generated: list[dict]
    prefilled: list[dict]

    @functools.cached_property
    def by_ref(self) -> dict[str, dict]:
        return {g[REF]: g for g in self.generated}


@dataclass(frozen=True)
class ProcessingStep:
    """One LLM processing step.

    ``block``: where its config block is (``("problem_processing", name)`` for a problem step);
    ``area``: where its requests and generations live under ``results/`` (``{run}``: an
    evaluation run); ``position``: a problem step's place in the order problem steps run
    (``None``: not a problem step; its rules are its own).
    """

    name: str
    settings: type[Step]
    select: Callable[[StepFiles, Step], list[dict]]
    apply: Callable[[StepFiles, Step, Answers], Outcome]
    position: int | None = None
    block: tuple[str, ...] = ()
    area: str = ""

    def __post_init__(self):
        if self.position is not None:
            object.__setattr__(self, "block", self.block or ("problem_processing", self.name))
            object.__setattr__(self, "area", self.area or f"sdg/processing/{self.name}")
        if not self.block or not self.area:
            raise ValueError(f"processing step {self.name}: give its block and area")

    @property
    def config_key(self) -> str:
        return ".".join(self.block)

    def block_of(self, config: dict) -> dict | None:
        """Its block in a (raw) config, or ``None`` when the config switches it off."""
        node = config
        for key in self.block:
            node = (node or {}).get(key)
        return node

    def settings_of(self, cfg) -> Step | None:
        """Its typed block in a validated config (a ``WorkflowConfig``), or ``None`` when the
        config switches it off."""
        node = cfg
        for key in self.block:
            node = None if node is None else getattr(node, key)
        return node


def request(ref: str, prompt: PromptConfig, row: dict, where: str, **extra) -> dict:
    """A request row; ``where`` names the input row (``file:line``) in the error for a field
    the prompt uses and the row lacks."""
    missing = sorted(f for f in prompt.fields() if row.get(f) is None)
    if missing:
        raise DistilleryError(
            f"{prompt.source} uses {', '.join('{' + m + '}' for m in missing)}, but {where} has "
            f"no value for it (fields: {', '.join(sorted(row))}); fix the prompt or the step's "
            "input"
        )
    return {REF: ref, MESSAGES_FIELD: prompt.messages(row), **extra}


def lenient(block: Step) -> bool:
    return getattr(block, "parse", "nemo-skills") == "lenient"
