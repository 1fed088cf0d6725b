"""The conda environments (envs/*.yaml, used with --software-deployment-method conda) parse and
pin what they install."""

from pathlib import Path

import pytest
import yaml

ENVS = sorted((Path(__file__).resolve().parents[2] / "envs").glob("*.yaml"))


def test_there_is_an_environment_per_rule_family():
    from distillery.generation.backends import BACKENDS

    families = {"core", "train"} | {b.family for b in BACKENDS.values()}
    assert {p.stem for p in ENVS} == families == {
        "core", "train", "vllm", "vllm_engine", "sglang", "trtllm"
    }  # fmt: skip


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.stem)
def test_environment_pins_its_packages(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python=3.") for d in conda)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    packages = [entry for entry in pip if not entry.startswith("--")]
    assert packages
    for entry in packages:
        assert "==" in entry, f"{path.name}: {entry} is not pinned"


@pytest.mark.parametrize("name", ["vllm", "vllm_engine", "sglang", "trtllm"])
def test_generation_environments_carry_the_client(name):
    text = (ENVS[0].parent / f"{name}.yaml").read_text()
    for package in ("aiohttp==", "orjson==", "pyyaml=="):
        assert package in text


def test_vllm_environments_and_images_name_the_release_tested_here():
    from distillery.generation.backends import BACKENDS

    for name in ("vllm", "vllm_engine"):
        assert "vllm==0.26.0" in (ENVS[0].parent / f"{name}.yaml").read_text()
        assert BACKENDS[name].container == "docker://vllm/vllm-openai:v0.26.0"
