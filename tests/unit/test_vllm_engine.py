"""The in-process vLLM backend's own logic: what reaches the engine, the window, results as
they finish, and the data-parallel replicas. The engine here is a stand-in with vLLM's
``add_request``/``step`` interface: several GPUs cannot run here (the real engine, on vLLM's CPU
build, is in tests/integration/test_vllm_cpu.py)."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from distillery.errors import DistilleryError
from distillery.generation.processes import child_pids, process_table
from distillery.generation.types import Request, SamplingParams
from distillery.generation.vllm_engine import VLLMEngineBackend, engine_argv

from ..conftest import REPO

pytest.importorskip("transformers")


class StandInEngine:
    """Finishes each request on its second step with text naming its prompt and seed; the
    window is 64 tokens. Records what it was given."""

    added: list = []

    def __init__(self, argv, env):
        self.argv, self.env = argv, env
        self.model_config = SimpleNamespace(max_model_len=64)
        self.running: dict[str, list] = {}

    def add_request(self, request_id, prompt, params):
        StandInEngine.added.append((request_id, len(prompt["prompt_token_ids"]), params))
        self.running[request_id] = [prompt["prompt_token_ids"], params, 0]

    def step(self):
        outputs = []
        for request_id, state in list(self.running.items()):
            state[2] += 1
            if state[2] < 2:
                continue
            ids, params, _ = self.running.pop(request_id)
            tokens = list(range(min(params.max_tokens, 5)))
            completion = SimpleNamespace(
                text=f"seen {len(ids)} tokens, seed {params.seed}",
                token_ids=tokens,
                finish_reason="length" if params.max_tokens <= 5 else "stop",
            )
            outputs.append(SimpleNamespace(request_id=request_id, finished=True,
                                           outputs=[completion]))  # fmt: skip
        return outputs


def stand_in(argv, env):
    return StandInEngine(argv, env)


def sampling(params, max_tokens, extra):
    return SimpleNamespace(seed=params.seed, max_tokens=max_tokens, extra=extra)


def requests(count, max_tokens=16, words=1):
    return [
        Request(i, [{"role": "user", "content": "word " * words + f"q{i}"}],
                SamplingParams(max_tokens=max_tokens, seed=i % 3))
        for i in range(count)
    ]  # fmt: skip


@pytest.fixture
def backend_for(tokenizer_dir):
    made = []

    def build(**kw):
        StandInEngine.added = []
        backend = VLLMEngineBackend(
            str(tokenizer_dir), engine_factory=stand_in, sampling=sampling, **kw
        )
        made.append(backend)
        return backend

    yield build
    for backend in made:
        backend.close()


def test_engine_arguments_are_vllms_own_with_the_configs_last():
    argv = engine_argv("/m", 1, "float32", ["--dtype", "bfloat16", "--enforce-eager"])
    assert argv == ["--model", "/m", "--tensor-parallel-size", "1", "--dtype", "float32",
                    "--dtype", "bfloat16", "--enforce-eager"]  # fmt: skip


def test_every_request_is_answered_once_and_the_window_holds(backend_for):
    backend = backend_for(window=8)
    results = list(backend.generate(requests(30)))
    assert sorted(r.index for r in results) == list(range(30))
    assert all(r.finish_reason == "stop" and r.num_generated_tokens == 5 for r in results)
    assert {r.index: r.generation.endswith(f"seed {r.index % 3}") for r in results} == {
        i: True for i in range(30)
    }


def test_prompts_over_the_window_are_found_before_submission(backend_for):
    backend = backend_for(window=8, context_overflow="reduce_generation")
    long = requests(1, max_tokens=40, words=30)[0]
    huge = Request(1, [{"role": "user", "content": "word " * 80}], SamplingParams(max_tokens=8))
    results = {r.index: r for r in backend.generate([long, huge])}
    # the long prompt generates what fits; the one that fills the window is an error sample
    sent = {request_id: (length, params.max_tokens) for request_id, length, params in
            StandInEngine.added}  # fmt: skip
    assert set(sent) == {"0"} and sum(sent["0"]) == 64
    assert results[1].finish_reason == "error" and "does not fit" in results[1].error
    with pytest.raises(DistilleryError, match="context_overflow"):
        list(backend_for(context_overflow="fail").generate([long]))


def test_a_batch_is_tokenized_as_each_prompt_alone(backend_for):
    """The prompts are tokenized together: no padding, no truncation, the same ids."""
    from distillery.generation.hf import render_chat

    backend = backend_for(window=8)
    batch = requests(5, words=3) + requests(1, words=12)
    prepared = backend.prepare(batch)
    alone = [
        backend.tokenizer(render_chat(backend.tokenizer, r.messages), add_special_tokens=False)
        .input_ids for r in batch
    ]  # fmt: skip
    assert [p.token_ids for p in prepared] == alone
    assert len({len(ids) for ids in alone}) > 1  # prompts of different lengths
    assert backend.prepare([]) == []


def test_replicas_share_the_requests(backend_for):
    backend = backend_for(replica_gpus=["0", "1"], window=4)
    began = time.time()
    results = list(backend.generate(requests(40)))
    assert sorted(r.index for r in results) == list(range(40))
    assert time.time() - began < 60


def stand_in_with_a_core(argv, env):
    """A stand-in that, as vLLM with multiprocessing on, starts its core as a child process of
    the replica (which a daemonic process may not)."""
    import multiprocessing

    core = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    core.start()
    engine = StandInEngine(argv, env)
    engine.engine_core = SimpleNamespace(shutdown=core.terminate)  # as vLLM's client stops it
    return engine


def test_a_replica_may_start_an_engine_core_of_its_own(tokenizer_dir):
    backend = VLLMEngineBackend(
        str(tokenizer_dir), replica_gpus=["0", "0"], window=4,
        engine_factory=stand_in_with_a_core, sampling=sampling,
    )  # fmt: skip
    try:
        results = list(backend.generate(requests(12)))
    finally:
        backend.close()
    assert sorted(r.index for r in results) == list(range(12))
    assert not any(w.is_alive() for w in backend.workers)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed and not yet reaped, does not)."""
    return process_table().get(pid, (0, "Z"))[1] != "Z"


# an engine whose core runs in a process of its own, as vLLM's does with multiprocessing on
CORE_ENGINE = """
import subprocess, sys, time
from types import SimpleNamespace
from distillery.generation.vllm_engine import VLLMEngineBackend

def factory(argv, env):
    core = subprocess.Popen(["sleep", "300"])
    return SimpleNamespace(model_config=SimpleNamespace(max_model_len=64), core=core)

backend = VLLMEngineBackend(sys.argv[1], engine_factory=factory)
print(backend.engine.core.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the guard reads /proc (Linux)")
def test_an_engine_core_of_its_own_dies_with_a_killed_job(tmp_path, tokenizer_dir):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(CORE_ENGINE))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    job = subprocess.Popen([sys.executable, str(script), str(tokenizer_dir)], env=env,
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    core = int(job.stdout.readline())
    assert alive(core)
    job.kill()
    job.wait()
    deadline = time.time() + 10
    while alive(core) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(core), "the engine's core process outlived its killed job"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the guard reads /proc (Linux)")
def test_a_closed_backend_releases_its_guard_first(tokenizer_dir):
    """close() stops the watcher before the engine, which vLLM's own shutdown then stops."""
    cores = []

    def factory(argv, env):
        cores.append(subprocess.Popen(["sleep", "300"]))
        return SimpleNamespace(model_config=SimpleNamespace(max_model_len=64))

    backend = VLLMEngineBackend(str(tokenizer_dir), engine_factory=factory)
    watcher = backend.guard.watcher
    assert backend.guard.pids == [cores[0].pid] and watcher.poll() is None
    assert cores[0].pid in child_pids()
    backend.close()
    assert watcher.poll() is not None and backend.guard.watcher is None
    assert alive(cores[0].pid)  # the watcher did not act: stopping the engine is close()'s
    cores[0].kill()
    cores[0].wait()
