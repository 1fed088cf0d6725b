"""The registry of LLM processing steps: every module of this package defines ``STEP`` (or
``STEPS``), a :class:`~distillery.processing.base.ProcessingStep`. A new step is its module
here and its prompt file; the config's settings, the workflow's rules, the config check and
``distillery.process`` find it from here."""

from __future__ import annotations

import importlib
import pkgutil

from distillery.processing.base import ProcessingStep


def _discover() -> dict[str, ProcessingStep]:
    found: list[ProcessingStep] = []
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        found += getattr(loaded, "STEPS", None) or [loaded.STEP]
    names = [step.name for step in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"processing steps defined twice: {', '.join(duplicates)}")
    # problem steps first, in the order they run
    found.sort(key=lambda s: (s.position is None, s.position or 0, s.name))
    return {step.name: step for step in found}


STEPS: dict[str, ProcessingStep] = _discover()
# the problem-side steps (problem_processing.<step>), in the order they run
PROBLEM_STEPS: tuple[str, ...] = tuple(n for n, s in STEPS.items() if s.position is not None)
