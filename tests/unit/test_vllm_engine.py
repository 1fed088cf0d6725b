"""The in-process vLLM backend's own logic: what reaches the engine, the window, results as
they finish, and the data-parallel replicas. The engine here is a stand-in with vLLM's
``add_request``/``step`` interface: several GPUs cannot run here (the real engine, on vLLM's CPU
build, is in tests/integration/test_vllm_cpu.py)."""

import time
from types import SimpleNamespace

import pytest

from distillery.errors import DistilleryError
from distillery.generation.types import Request, SamplingParams
from distillery.generation.vllm_engine import VLLMEngineBackend, engine_argv

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


def test_replicas_share_the_requests(backend_for):
    backend = backend_for(replica_gpus=["0", "1"], window=4)
    began = time.time()
    results = list(backend.generate(requests(40)))
    assert sorted(r.index for r in results) == list(range(40))
    assert time.time() - began < 60
