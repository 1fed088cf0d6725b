import logging

import pytest

from distillery.errors import DistilleryError
from distillery.generation.client import ClientConfig, OpenAIClient, request_body
from distillery.generation.types import Request, SamplingParams, parse_reasoning


def requests(n):
    return [Request(i, [{"role": "user", "content": f"question {i}"}]) for i in range(n)]


def run(url, n=20, **kw):
    config = ClientConfig(base_url=url, model="stub", backoff=0.01, **kw)
    client = OpenAIClient(config, render=lambda m: "PROMPT " + m[-1]["content"])
    return list(client.generate(requests(n), SamplingParams(seed=3, max_tokens=16)))


def test_every_request_answered_once(stub_server):
    url = stub_server("--tokens", "7")
    results = run(url, n=50, max_concurrency=8)
    assert sorted(r.index for r in results) == list(range(50))
    assert all(r.num_generated_tokens == 7 and r.finish_reason == "stop" for r in results)
    texts = {r.index: r.generation for r in results}
    assert len(set(texts.values())) == 50  # each answer belongs to its own question


def test_completions_endpoint(stub_server):
    url = stub_server()
    chat = {r.index: r.generation for r in run(url, n=3)}
    completions = {r.index: r.generation for r in run(url, n=3, endpoint="completions")}
    assert chat != completions  # the stub saw the rendered prompt, not the message


def test_retries_on_server_errors(stub_server, caplog):
    url = stub_server("--fail-every", "3", "--fail-status", "503")
    with caplog.at_level(logging.WARNING):
        results = run(url, n=12, max_concurrency=2)
    assert sorted(r.index for r in results) == list(range(12))
    assert "HTTP 503" in caplog.text


def test_client_errors_are_not_retried(stub_server):
    url = stub_server("--fail-every", "1", "--fail-status", "400")
    with pytest.raises(DistilleryError, match="answered 400"):
        run(url, n=3)


def test_dead_server_fails_after_retries(stub_server):
    url = stub_server("--die-after", "4")
    with pytest.raises(DistilleryError, match=r"failed 3 times .*rerun to continue"):
        run(url, n=30, max_concurrency=1, max_retries=2)


def test_request_body_fields():
    params = SamplingParams(temperature=0.6, top_p=0.95, top_k=20, min_p=0.05, max_tokens=9,
                            repetition_penalty=1.1, stop=("</s>",), seed=4)  # fmt: skip
    body = request_body(ClientConfig("u", "m"), params, [{"role": "user", "content": "x"}], None)
    assert body == {
        "model": "m", "max_tokens": 9, "temperature": 0.6, "top_p": 0.95, "seed": 4, "n": 1,
        "stop": ["</s>"], "top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1,
        "messages": [{"role": "user", "content": "x"}],
    }  # fmt: skip
    strict = request_body(ClientConfig("u", "m", openai_strict=True), params, None, "p")
    assert "top_k" not in strict and "min_p" not in strict and strict["prompt"] == "p"


def test_parse_reasoning_keeps_the_full_text():
    done = parse_reasoning({"generation": "let me think</think>\n\nThe answer is 4."})
    assert done["generation"] == "The answer is 4."
    assert done["_full_generation"].startswith("let me think")
    assert done["_generation_finished_thinking"] is True
    cut = parse_reasoning({"generation": "still thinking when tokens ran out"})
    assert (
        cut["generation"] == "" and cut["_full_generation"] == "still thinking when tokens ran out"
    )
    split = parse_reasoning({"generation": "4", "reasoning_content": "hmm"})
    assert split["generation"] == "4" and split["_full_generation"] == "hmm</think>4"
