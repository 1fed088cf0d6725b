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

from ..conftest import REPO, lines_in, write_jsonl


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
    if check:
        result = subprocess.run([sys.executable, "-m", "distillery.generate", *args], env=env,
                                capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        return result
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
        before = lines_in(partial)
        # kill at a random moment once this run has made some progress
        target = before + rng.randint(1, 8)
        deadline = time.time() + 60
        while time.time() < deadline and job.poll() is None:
            if lines_in(partial) >= target:
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


def work_args(tmp_path, model, python, seeds=(0, 1, 2), **server):
    """A multi-file job: two inputs (a benchmark of 7 rows, one of 5), each sampled with every
    seed, the second with its own generation length."""
    args = stage_args(tmp_path, model, python, **server)
    single = {"--input", "--output", "--prompt", "--seed"}
    args = [a for i, a in enumerate(args) if a not in single and args[i - 1] not in single]
    prompt = str(REPO / "prompts" / "math.yaml")
    work = []
    for name, size, settings in (("a", 7, {}), ("b", 5, {"inference": {"max_tokens": 3}})):
        write_jsonl(tmp_path / f"{name}.jsonl", problems(size))
        outputs = [str(tmp_path / f"{name}-rs{s}.jsonl") for s in seeds]
        work.append({"input": str(tmp_path / f"{name}.jsonl"), "prompt": prompt,
                     "seeds": list(seeds), "outputs": outputs, "settings": settings})  # fmt: skip
    return [*args, "--work", json.dumps(work)]


def test_one_server_writes_every_file_of_a_job(tmp_path, tiny_model_dir, fake_vllm):
    result = run_stage(work_args(tmp_path, tiny_model_dir, fake_vllm), "--tokens 9")
    assert result.stderr.count("starting server:") == 1
    for name, size, tokens in (("a", 7, 9), ("b", 5, 3)):
        texts = []
        for seed in (0, 1, 2):
            rows = read_jsonl(tmp_path / f"{name}-rs{seed}.jsonl")
            assert [r["id"] for r in rows] == list(range(size))
            assert all(r["num_generated_tokens"] == tokens for r in rows)  # the set's own length
            texts.append([r["generation"] for r in rows])
        assert texts[0] != texts[1]  # each file its own seed
    assert not list(tmp_path.glob("*.partial"))


def test_chunks_slice_each_file(tmp_path, tiny_model_dir, fake_vllm):
    """(7 + 5) rows x 3 seeds in 4 chunks: each file's rows are cut on their own (a: 2, 2, 2, 1;
    b: 2, 1, 1, 1); the chunks' files join into the whole."""
    whole = work_args(tmp_path, tiny_model_dir, fake_vllm)
    run_stage(whole)

    def samples(text):  # (id, generation) of each line, timings aside
        return [(r["id"], r["generation"]) for r in map(json.loads, text.splitlines())]

    expected = {p.name: samples(p.read_text()) for p in tmp_path.glob("?-rs?.jsonl")}
    joined = dict.fromkeys(expected, "")
    for chunk in range(4):
        for path in tmp_path.glob("?-rs?.jsonl"):
            path.unlink()
        run_stage([*whole, "--num-chunks", "4", "--chunk-id", str(chunk)])
        sizes = {p.name: p.read_text().count("\n") for p in tmp_path.glob("?-rs?.jsonl")}
        a, b = [2, 2, 2, 1][chunk], [2, 1, 1, 1][chunk]
        assert sizes == {f"{name}-rs{seed}.jsonl": rows for name, rows in (("a", a), ("b", b))
                         for seed in range(3)}  # fmt: skip
        for name in joined:
            joined[name] += (tmp_path / name).read_text()
    assert {name: samples(text) for name, text in joined.items()} == expected


def test_a_set_cannot_change_the_server(tmp_path, tiny_model_dir, fake_vllm):
    args = work_args(tmp_path, tiny_model_dir, fake_vllm)
    work = json.loads(args[-1])
    work[1]["settings"] = {"server": {"type": "hf"}}
    result = run_stage([*args[:-1], json.dumps(work)], check=False)
    assert result.returncode == 1
    assert "--work[1].settings.server: every set of a job shares the job's server" in result.stderr


def test_kill_9_of_a_multi_file_job_loses_and_duplicates_nothing(
    tmp_path, tiny_model_dir, fake_vllm
):
    args = work_args(tmp_path, tiny_model_dir, fake_vllm, max_concurrency=2)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "STUB_FLAGS": "--delay 0.03"}
    rng = random.Random(1)

    def finished() -> int:
        files = [*tmp_path.glob("*.partial"), *tmp_path.glob("?-rs?.jsonl")]
        return sum(lines_in(p) for p in files)

    for _ in range(12):
        if len(list(tmp_path.glob("?-rs?.jsonl"))) == 6:
            break
        job = subprocess.Popen([sys.executable, "-m", "distillery.generate", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        target = finished() + rng.randint(1, 6)
        deadline = time.time() + 60
        while time.time() < deadline and job.poll() is None and finished() < target:
            time.sleep(0.01)
        time.sleep(rng.random() * 0.05)
        job.send_signal(signal.SIGKILL)
        job.wait()
    run_stage(args, "--delay 0.0")
    resumed = {p.name: read_jsonl(p) for p in tmp_path.glob("?-rs?.jsonl")}
    for path in tmp_path.glob("?-rs?.jsonl"):
        path.unlink()
    run_stage(args)  # uninterrupted, from nothing
    for name, rows in resumed.items():
        fresh = read_jsonl(tmp_path / name)
        assert [r["id"] for r in rows] == [r["id"] for r in fresh]
        assert [r["generation"] for r in rows] == [r["generation"] for r in fresh]


def test_a_request_over_the_context_is_an_error_sample_not_a_dead_job(
    tmp_path, tiny_model_dir, fake_vllm
):
    """The server rejects prompts plus max_tokens over 60 words with vLLM's 400 (a row's prompt
    is 21 words): the job retries each with the room left, writes what never fits as an error
    row and goes on."""
    rows = problems(6)
    rows[2]["problem"] = "What is " + "1 plus " * 12 + "1?"  # fits once max_tokens is cut
    rows[4]["problem"] = "What is " + "1 plus " * 40 + "1?"  # never fits
    write_jsonl(tmp_path / "in.jsonl", rows)
    args = [*stage_args(tmp_path, tiny_model_dir, fake_vllm), "--set", "inference.max_tokens=20"]
    result = run_stage(args, "--context 60 --tokens 100")
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == list(range(6))
    assert out[4]["finish_reason"] == "error" and out[4]["generation"] == ""
    assert "maximum context length is 60" in out[4]["error"]
    assert out[2]["finish_reason"] == "stop" and 0 < out[2]["num_generated_tokens"] < 20
    assert all(out[i]["num_generated_tokens"] == 20 for i in (0, 1, 3, 5))
    assert "1 sample(s) could not be generated" in result.stderr
    assert "in.jsonl:5: not generated" in result.stderr
    # fail: the same request stops the job, naming the key that decides it
    failed = run_stage([*args, "--set", "context_overflow=fail", "--output",
                        str(tmp_path / "strict.jsonl")], "--context 60", check=False)  # fmt: skip
    assert failed.returncode == 1 and "context_overflow" in failed.stderr


def test_gpus_over_tensor_parallel_start_replicas(tmp_path, tiny_model_dir, fake_vllm, monkeypatch):
    """4 GPUs (as Slurm hands them over) and 2 per server: two replicas share the requests."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    write_jsonl(tmp_path / "in.jsonl", problems(30))
    args = stage_args(tmp_path, tiny_model_dir, fake_vllm, gpus=4, tensor_parallel=2)
    result = run_stage(args, "--delay 0.02")
    assert result.stderr.count("starting server:") == 2
    assert "2 server replicas of 2 GPU(s) each" in result.stderr
    assert result.stderr.count("--tensor-parallel-size 2") == 2
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == list(range(30))
