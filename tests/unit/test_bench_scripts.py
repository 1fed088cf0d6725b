"""The benchmark scripts' own examples (their tables' formats): pytest collects doctests from
``src/distillery`` only, so the scripts' are run here."""

import doctest
import importlib.util

import pytest

from ..conftest import REPO

WITH_EXAMPLES = sorted(p for p in (REPO / "scripts").glob("*.py") if ">>> " in p.read_text())


def test_scripts_with_examples_are_found():
    assert {p.name for p in WITH_EXAMPLES} >= {"bench_vllm_engine.py", "bench_engine_stats.py"}


@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=lambda p: p.name)
def test_script_examples(path):
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = doctest.testmod(module, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
