"""Preflight: each missing thing is one line that says what to do; a machine that has
everything passes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from distillery import doctor
from distillery.doctor import Machine, diagnose
from distillery.planning import workflow as wf
from distillery.settings.base import parse
from distillery.settings.workflow import WorkflowConfig

REPO = Path(__file__).resolve().parents[2]
DEFAULT = yaml.safe_load((REPO / "config/config.yaml").read_text())
OMR = yaml.safe_load((REPO / "config/recipes/openmathreasoning.yaml").read_text())
EVERYTHING = dict.fromkeys(("vllm", "sglang", "tensorrt_llm", "trl", "peft", "bitsandbytes"), True)


def machine(gpus=(), ram=64.0, disk=1000.0, modules=None, executables=None, env=None):
    return Machine(
        gpu_memory_gib=list(gpus),
        ram_gib=ram,
        disk_free_gib=disk,
        modules=EVERYTHING if modules is None else modules,
        executables={"trtllm-serve": True} if executables is None else executables,
        env={"HF_TOKEN": "x"} if env is None else env,
    )


def test_the_default_runs_on_a_laptop(tmp_path):
    assert diagnose(DEFAULT, machine(ram=8, disk=20), tmp_path) == []


def test_the_8_gpu_recipe_on_a_gpu_node_passes(tmp_path):
    assert diagnose(OMR, machine(gpus=[80] * 8, ram=1000), tmp_path) == []


def test_the_8_gpu_recipe_without_gpus_names_every_stage(tmp_path):
    problems = diagnose(OMR, machine(ram=1000), tmp_path)
    gpu_lines = [p for p in problems if "GPU(s), this machine has 0" in p]
    assert {p.split(" asks")[0] for p in gpu_lines} == {
        "problem_extraction.server",
        "solutions.server",
        "evaluation.runs.baseline",
        "evaluation.runs.trained",
        "training",
        "models.qwq-32b-trtllm",  # the engine build
    }
    assert all("profiles/slurm" in p for p in gpu_lines)


def test_gpus_too_small_for_the_model(tmp_path):
    config = copy.deepcopy(OMR)
    config["solutions"]["server"]["gpus"] = 1  # QwQ-32B in bf16 on one 24 GiB GPU
    problems = diagnose(config, machine(gpus=[24] * 8, ram=1000), tmp_path)
    assert any(
        p.startswith("solutions.server: qwq-32b-trtllm needs about 60 GiB per GPU")
        for p in problems
    )
    # full training of the 14B student needs ~16 bytes a parameter: 8 x 24 GiB is not enough
    assert any(p.startswith("training: ") and "LoRA/QLoRA" in p for p in problems)


def test_missing_backends_and_their_fixes(tmp_path):
    config = copy.deepcopy(OMR)
    config["training"].update(method="qlora", fsdp=False)  # FSDP cannot shard 4-bit weights
    problems = diagnose(
        config, machine(gpus=[80] * 8, ram=1000, modules={}, executables={}), tmp_path
    )
    text = "\n".join(problems)
    assert "server type vllm needs vllm" in text
    assert "trtllm-serve and trtllm-build, which are not on PATH: set containers.trtllm" in text
    assert "training method qlora needs bitsandbytes" in text
    assert "training needs trl" in text


def test_a_container_provides_the_backend(tmp_path):
    config = copy.deepcopy(OMR)
    config["containers"] = {"trtllm": "docker://nvcr.io/nvidia/tensorrt-llm/release:1.0.0"}
    problems = diagnose(
        config,
        machine(gpus=[80] * 8, ram=1000, executables={"apptainer": True}),
        tmp_path,
    )
    assert problems == []
    problems = diagnose(config, machine(gpus=[80] * 8, ram=1000, executables={}), tmp_path)
    assert any("apptainer is not installed" in p for p in problems)


def test_gated_assets_need_hf_token(tmp_path):
    config = copy.deepcopy(OMR)
    config["models"]["llama"] = {"source": "hf", "repo": "meta-llama/Llama-3.1-8B-Instruct"}
    config["benchmarks"]["gpqa"] = {"source": "gpqa-diamond"}
    config["evaluation"]["benchmarks"]["gpqa"] = 1
    problems = diagnose(config, machine(gpus=[80] * 8, ram=1000, env={}), tmp_path)
    assert any(
        p.startswith("models.llama: meta-llama/Llama-3.1-8B-Instruct is gated") for p in problems
    )
    assert any(p.startswith("benchmarks.gpqa: Idavidrein/gpqa is gated") for p in problems)


def test_disk_and_ram(tmp_path):
    problems = diagnose(OMR, machine(gpus=[80] * 8, ram=16, disk=50), tmp_path)
    assert any(p.startswith("disk: the models to download") for p in problems)
    assert any(p.startswith("RAM: a model that training or a conversion loads") for p in problems)


def test_cli_prints_problems_and_exits_1(capsys, tmp_path):
    status = doctor.main(
        [
            "--configfile",
            str(REPO / "config/recipes/openmathreasoning.yaml"),
            "--workdir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    if not doctor.gpu_memory_gib():  # this machine has no GPU
        assert status == 1
        assert "PROBLEM: training asks for 8 GPU(s)" in out
    assert out.splitlines()[0].startswith("GPUs: ")


def test_cli_reports_a_bad_config_file(capsys, tmp_path):
    assert doctor.main(["--configfile", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml: no such config file" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["12B", "0.5B", "1.5b"])
def test_size_from_the_repository_name(name, tmp_path):
    models = {"m": {"source": "hf", "repo": f"org/Model-{name}-Instruct"}}
    cfg = parse(WorkflowConfig, {**copy.deepcopy(DEFAULT), "models": models})
    size = wf.model_size_gib(cfg, "m", tmp_path)
    assert size == pytest.approx(float(name[:-1]) * 2e9 / 1024**3)


def test_broken_yaml_names_file_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  a: {source: gguf\nraw_data:\n  source: demo\n")
    assert doctor.main(["--configfile", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:3:9: not valid YAML" in out


def _package(root: Path, name: str, compiled: bool) -> None:
    import py_compile

    source = root / name / "__init__.py"
    source.parent.mkdir(parents=True)
    source.write_text("VALUE = 1\n")
    if compiled:
        py_compile.compile(str(source))


def test_packages_compiled_from_source_by_every_job(tmp_path, monkeypatch):
    """A package without bytecode is noted where the interpreter will not write it; one with
    bytecode, or one the interpreter compiles once and keeps, is not."""
    _package(tmp_path, "bare_pkg", compiled=False)
    _package(tmp_path, "compiled_pkg", compiled=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("bare_pkg", "compiled_pkg", "no_such_pkg")
    found = doctor.uncompiled_packages(names, dont_write=True)
    assert found == {"bare_pkg": "PYTHONDONTWRITEBYTECODE is set"}
    assert doctor.uncompiled_packages(names, dont_write=False) == {}
    notes = doctor.bytecode_notes(Machine([], 8, 20, uncompiled=found))
    assert len(notes) == 1 and notes[0].startswith("bare_pkg: installed without bytecode")
    assert "compileall" in notes[0]
    assert doctor.bytecode_notes(machine()) == []


def test_a_read_only_install_is_noted(tmp_path, monkeypatch):
    _package(tmp_path, "readonly_pkg", compiled=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(doctor.os, "access", lambda path, mode: False)  # root writes anywhere
    found = doctor.uncompiled_packages(("readonly_pkg",), dont_write=False)
    assert found == {"readonly_pkg": f"{tmp_path / 'readonly_pkg'} is read-only"}


def test_the_report_notes_without_failing(tmp_path, monkeypatch, capsys):
    bare = machine(ram=8, disk=20)
    bare.uncompiled = {"torch": "PYTHONDONTWRITEBYTECODE is set"}
    monkeypatch.setattr(doctor.Machine, "probe", classmethod(lambda cls, workdir=".": bare))
    assert doctor.report(DEFAULT, tmp_path) == 0
    out = capsys.readouterr().out
    assert "NOTE: torch: installed without bytecode" in out and "ready: nothing missing" in out
