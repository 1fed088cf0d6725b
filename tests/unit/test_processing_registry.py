"""The registry of LLM processing steps: every step is found from its module, and a new step is
its module plus its prompt file (here a toy one, written into the registry's package path)."""

import json
import re
import textwrap

import pytest

from distillery import process
from distillery.jsonl import read_jsonl
from distillery.planning import workflow as wf
from distillery.processing import steps as registry
from distillery.settings.processing import PROBLEM_STEPS, STEP_MODELS, ProblemProcessing

from ..conftest import REPO, write_jsonl

SHOUT = '''
"""shout: a toy problem step that writes each problem in capitals."""

from pydantic import Field

from distillery.jsonl import read_jsonl
from distillery.processing.base import Outcome, ProcessingStep, request
from distillery.prompts import load_prompt
from distillery.settings.steps import ParsedStep


class Shout(ParsedStep):
    """write each problem in capitals"""

    prompt: str = Field("prompts/shout.yaml", description="prompt config file")


def select(files, block):
    prompt = load_prompt(block.prompt)
    rows = read_jsonl(files.inputs[0])
    return [request(str(i), prompt, row, f"row {i}") for i, row in enumerate(rows)]


def apply(files, block, answers):
    out = Outcome()
    for i, row in enumerate(read_jsonl(files.inputs[0])):
        out.kept.append({**row, "problem": answers.by_ref[str(i)]["generation"]})
    out.counts["shouted"] = len(out.kept)
    return out


STEP = ProcessingStep("shout", Shout, select, apply, position=25)
'''


def test_every_step_is_registered_with_its_settings_area_and_prompts():
    assert PROBLEM_STEPS == ("classify", "extract_answer", "convert_proofs", "check_contamination")
    assert (
        set(STEP_MODELS)
        == set(registry.STEPS)
        == {*PROBLEM_STEPS, "rewrite_summaries", "judge_solutions", "judge_eval"}
    )
    assert list(ProblemProcessing.model_fields) == list(PROBLEM_STEPS)
    for name, step in registry.STEPS.items():
        area = f"{wf.RESULTS}/{step.area.replace('{run}', 'base')}"
        assert re.fullmatch(wf.AREA_PATTERN, area), name
        assert wf.area_step(area) == name
        for prompt in step.settings.prompt_files({}).values():
            assert (REPO / prompt).is_file(), (name, prompt)


def test_a_block_is_found_where_the_config_keeps_it():
    config = {
        "problem_processing": {"classify": {"server": {}}},
        "solution_judge": {"prompt": "j.yaml"},
        "evaluation": {"judge": None},
    }
    assert registry.STEPS["classify"].block_of(config) == {"server": {}}
    assert registry.STEPS["judge_solutions"].block_of(config) == {"prompt": "j.yaml"}
    assert registry.STEPS["judge_eval"].block_of(config) is None
    assert registry.STEPS["extract_answer"].block_of({}) is None


def test_prompt_files_fill_defaults_and_resolve():
    classify = registry.STEPS["classify"].settings
    assert classify.prompt_files({"prompts": {"proof": "p.yaml"}}) == {"proof": "p.yaml"}
    assert len(classify.prompt_files({})) == 4
    resolved = wf.with_prompts({"prompts": {"proof": "p.yaml"}}, "classify", str.upper)
    assert resolved == {"prompts": {"proof": "P.YAML"}}
    assert wf.with_prompts({}, "extract_answer", str.upper) == {
        "prompt": "PROMPTS/EXTRACT-ANSWER.YAML"
    }


@pytest.fixture
def shout(tmp_path, monkeypatch):
    """The registry with the toy step's module beside the real ones."""
    package = tmp_path / "more_steps"
    package.mkdir()
    (package / "shout.py").write_text(textwrap.dedent(SHOUT))
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "shout.yaml").write_text("user: |-\n  Shout: {problem}\n")
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(package)])
    found = registry._discover()
    monkeypatch.setattr(process, "STEPS", found)
    monkeypatch.chdir(tmp_path)
    return found


def test_a_new_step_is_its_module_and_its_prompt(shout, tmp_path):
    problem_steps = [name for name, step in shout.items() if step.position is not None]
    assert problem_steps == [
        "classify",
        "extract_answer",
        "shout",
        "convert_proofs",
        "check_contamination",
    ]
    write_jsonl(tmp_path / "in.jsonl", [{"problem": "find x"}, {"problem": "find y"}])
    files = {name: tmp_path / f"{name}.jsonl" for name in ("req", "pre", "gen", "out")}
    config = json.dumps({"server": {"type": "hf", "model": "m"}})
    process.main(
        process.Config(action="select", step="shout", inputs=(str(tmp_path / "in.jsonl"),),
                       config_json=config, requests=str(files["req"]),
                       prefilled=str(files["pre"]))
    )  # fmt: skip
    requests = read_jsonl(files["req"])
    assert requests[0]["_messages"][-1]["content"] == "Shout: find x"
    write_jsonl(files["gen"], [{"_ref": r["_ref"], "generation": "FIND X?"} for r in requests])
    process.main(
        process.Config(action="apply", step="shout", inputs=(str(tmp_path / "in.jsonl"),),
                       config_json=config, generations=str(files["gen"]),
                       prefilled=str(files["pre"]), outputs=(str(files["out"]),),
                       report=str(tmp_path / "report.json"))
    )  # fmt: skip
    assert [row["problem"] for row in read_jsonl(files["out"])] == ["FIND X?", "FIND X?"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == {"step": "shout", "rows": 2, "kept": 2, "dropped": 0, "shouted": 2}


def test_a_step_defined_twice_is_refused(shout, tmp_path):
    copy = SHOUT.replace('ProcessingStep("shout"', 'ProcessingStep("classify"')
    (tmp_path / "more_steps" / "loud.py").write_text(textwrap.dedent(copy))
    with pytest.raises(ValueError, match="defined twice: classify"):
        registry._discover()
