"""The generate stage on its server path: a stand-in for vLLM (the stub server behind a fake
interpreter) started, used and stopped by the stage itself, killed and resumed."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from distillery import generate
from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl
from distillery.settings.base import parse
from distillery.settings.generation import Generation

from ..conftest import REPO, write_jsonl


def problems(n):
    return [
        {"id": i, "problem": f"What is {i} plus 1?", "expected_answer": str(i + 1)}
        for i in range(n)
    ]


def stage_args(tmp_path, model, python, seed=0, **server):
    """The command line of a stage on the vLLM path: its block as JSON, then overrides."""
    block = {
        "server": {
            "type": "vllm",
            "python": str(python),
            "health_timeout": 60,
            "max_concurrency": 4,
            "max_retries": 2,
        }
    }
    args = {
        "--input": str(tmp_path / "in.jsonl"),
        "--output": str(tmp_path / "out.jsonl"),
        "--prompt": str(REPO / "prompts" / "math.yaml"),
        "--model": str(model),
        "--seed": str(seed),
        "--config-json": json.dumps(block),
    }
    overrides = [
        item for key, value in server.items() for item in ("--set", f"server.{key}={value}")
    ]
    return [item for pair in args.items() for item in pair] + overrides


def run_stage(args, env_flags="", check=True, **popen):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "STUB_FLAGS": env_flags}
    return subprocess.run(
        [sys.executable, "-m", "distillery.generate", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


def test_stage_serves_generates_and_stops(tmp_path, tiny_model_dir, fake_vllm):
    write_jsonl(tmp_path / "in.jsonl", problems(30))
    result = run_stage(stage_args(tmp_path, tiny_model_dir, fake_vllm, seed=2), "--tokens 9")
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == list(range(30))
    assert all(
        r["num_generated_tokens"] == 9 and r["generation"].startswith("stub answer") for r in rows
    )
    assert "starting server:" in result.stderr and "server stopped" in result.stderr
    assert "--tensor-parallel-size 1" in result.stderr


def test_server_that_fails_to_start(tmp_path, tiny_model_dir, fake_vllm):
    write_jsonl(tmp_path / "in.jsonl", problems(3))
    result = run_stage(
        stage_args(tmp_path, tiny_model_dir, fake_vllm), "--exit-at-start 1", check=False
    )
    assert result.returncode == 1
    assert "stub: failing at start" in result.stderr  # the server's own output is in the log
    assert "exited with status 1 before it was ready" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_server_dying_mid_run_keeps_finished_samples(tmp_path, tiny_model_dir, fake_vllm):
    write_jsonl(tmp_path / "in.jsonl", problems(40))
    args = stage_args(tmp_path, tiny_model_dir, fake_vllm, max_concurrency=1)
    result = run_stage(args, "--die-after 15", check=False)
    assert result.returncode == 1
    assert "rerun to continue" in result.stderr
    partial = tmp_path / "out.jsonl.partial"
    assert partial.read_text().count("\n") == 1 + 15
    run_stage(args)  # a healthy server now: only the rest is generated
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == list(range(40))


def test_external_openai_endpoint(tmp_path, stub_server, monkeypatch):
    url = stub_server()
    write_jsonl(tmp_path / "in.jsonl", problems(5))
    monkeypatch.setenv("MY_KEY", "secret")
    config = generate.Config(
        input=str(tmp_path / "in.jsonl"),
        output=str(tmp_path / "out.jsonl"),
        prompt=str(REPO / "prompts" / "math.yaml"),
        model="stub",
        stage=parse(
            Generation, {"server": {"type": "openai", "base_url": url, "api_key_env": "MY_KEY"}}
        ),
    )
    generate.main(config)
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 5


def test_openai_backend_needs_a_url():
    with pytest.raises(DistilleryError, match="'server.base_url' is missing"):
        parse(Generation, {"server": {"type": "openai"}})


def test_kill_9_at_20_random_points_loses_and_duplicates_nothing(
    tmp_path, tiny_model_dir, fake_vllm
):
    rows = problems(120)
    write_jsonl(tmp_path / "in.jsonl", rows)
    args = stage_args(tmp_path, tiny_model_dir, fake_vllm, max_concurrency=2)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "STUB_FLAGS": "--delay 0.03"}
    partial, out = tmp_path / "out.jsonl.partial", tmp_path / "out.jsonl"
    rng = random.Random(0)
    for _ in range(20):
        if out.exists():
            break
        job = subprocess.Popen(
            [sys.executable, "-m", "distillery.generate", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        before = partial.read_text().count("\n") if partial.exists() else 0
        # kill at a random moment once this run has made some progress
        target = before + rng.randint(1, 8)
        deadline = time.time() + 60
        while time.time() < deadline and job.poll() is None:
            if partial.exists() and partial.read_text().count("\n") >= target:
                break
            time.sleep(0.01)
        time.sleep(rng.random() * 0.05)
        job.send_signal(signal.SIGKILL)
        job.wait()
    run_stage(args, "--delay 0.0")
    result = read_jsonl(out)
    assert [r["id"] for r in result] == list(range(120))
    # each answer is the one for its own question: nothing was shifted or duplicated
    fresh = tmp_path / "fresh.jsonl"
    fresh_args = [str(fresh) if a == str(out) else a for a in args]
    run_stage(fresh_args)
    assert [r["generation"] for r in read_jsonl(fresh)] == [r["generation"] for r in result]
