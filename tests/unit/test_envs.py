"""The conda environments (envs/*.yaml, used with --software-deployment-method conda) parse and
pin what they install."""

from pathlib import Path

import pytest
import yaml

ENVS = sorted((Path(__file__).resolve().parents[2] / "envs").glob("*.yaml"))


def test_there_is_an_environment_per_rule_family():
    assert {p.stem for p in ENVS} == {"core", "train", "vllm", "sglang", "trtllm"}


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


@pytest.mark.parametrize("name", ["vllm", "sglang", "trtllm"])
def test_generation_environments_carry_the_client(name):
    text = (ENVS[0].parent / f"{name}.yaml").read_text()
    for package in ("aiohttp==", "orjson==", "pyyaml=="):
        assert package in text
