import logging

import pytest

from distillery.errors import DistilleryError
from distillery.generation.client import ClientConfig, OpenAIClient, request_body
from distillery.generation.types import Request, SamplingParams, parse_reasoning


def requests(n, max_tokens=16, words=1):
    params = SamplingParams(seed=3, max_tokens=max_tokens)
    return [
        Request(i, [{"role": "user", "content": f"question {i}" + " word" * words}], params)
        for i in range(n)
    ]


def run(url, n=20, max_tokens=16, words=1, **kw):
    config = ClientConfig(base_url=url, model="stub", backoff=0.01, **kw)
    client = OpenAIClient(config, render=lambda m: "PROMPT " + m[-1]["content"])
    return list(client.generate(requests(n, max_tokens, words)))


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


def test_client_errors_are_error_samples_not_retried(stub_server):
    url = stub_server("--fail-every", "1", "--fail-status", "400")
    results = run(url, n=3)
    assert sorted(r.index for r in results) == [0, 1, 2]
    assert all(r.finish_reason == "error" and r.generation == "" for r in results)
    assert all("answered 400" in r.error and "stub failure" in r.error for r in results)
    with pytest.raises(DistilleryError, match="answered 400.*context_overflow"):
        run(url, n=3, context_overflow="fail")


def test_context_overflow_retried_with_the_room_left(stub_server):
    """The stub rejects prompt (in words) + max_tokens over 40 with vLLM's message."""
    url = stub_server("--context", "40", "--tokens", "100")
    fits, reduced, too_long = (run(url, n=1, max_tokens=30, words=w)[0] for w in (1, 20, 45))
    assert fits.finish_reason == "stop" and fits.num_generated_tokens == 30
    # 2 + 20 words leave 18 tokens: the retry asks for exactly that and is served
    assert reduced.finish_reason == "stop" and reduced.num_generated_tokens == 18
    assert too_long.finish_reason == "error"
    assert "maximum context length is 40" in too_long.error
    skipped = run(url, n=1, max_tokens=30, words=20, context_overflow="skip")[0]
    assert skipped.finish_reason == "error" and "in the completion" in skipped.error


# vLLM 0.26's two rejections, verbatim (../shared notes on vLLM on the GPU)
VLLM_026_MAX_TOKENS = (
    "max_tokens=5000 cannot be greater than max_model_len=max_total_tokens=2048. Please request "
    "fewer output tokens. (parameter=max_tokens, value=5000)"
)
VLLM_026_PROMPT = (
    "This model's maximum context length is 2048 tokens. However, you requested 100 output "
    "tokens and your prompt contains at least 1949 input tokens, for a total of at least 2049 "
    "tokens. Please reduce the length of the input prompt or the number of requested output "
    "tokens. (parameter=input_tokens, value=1949)"
)


def test_vllm_026_rejections_give_the_room_left():
    from distillery.generation.client import room_for_generation

    assert room_for_generation(VLLM_026_PROMPT) == 99
    assert room_for_generation(VLLM_026_MAX_TOKENS) == 2048  # no prompt length stated
    assert room_for_generation(VLLM_026_MAX_TOKENS, prompt_tokens=48) == 2000


def test_max_tokens_over_the_window_is_retried_with_the_room_left(stub_server):
    """vLLM 0.26 first refuses max_tokens over the window, then prompt plus output."""
    url = stub_server("--context", "40", "--tokens", "100", "--messages", "0.26")
    # no tokenizer here: the whole window, then the room the second rejection states
    (result,) = run(url, n=1, max_tokens=50, words=20)
    assert result.finish_reason == "stop" and result.num_generated_tokens == 18
    # with a token count of the rendered prompt (23 words), one retry
    config = ClientConfig(base_url=url, model="stub", backoff=0.01)
    client = OpenAIClient(config, render=lambda m: "PROMPT " + m[-1]["content"],
                          count_tokens=lambda text: len(text.split()))  # fmt: skip
    (result,) = client.generate(requests(1, max_tokens=50, words=20))
    assert result.finish_reason == "stop" and result.num_generated_tokens == 17
    # a prompt that fills the window is still an error sample
    (result,) = run(url, n=1, max_tokens=50, words=45)
    assert result.finish_reason == "error" and "prompt contains at least" in result.error


def test_requests_spread_over_replicas(stub_server):
    urls = (stub_server("--model", "stub", "--delay", "0.05"), stub_server("--delay", "0.05"))
    config = ClientConfig(base_url=urls, model="stub", max_concurrency=4)
    client = OpenAIClient(config)
    results = list(client.generate(requests(40)))
    assert sorted(r.index for r in results) == list(range(40))
    assert sum(client.sent.values()) == 40 and min(client.sent.values()) >= 10


def test_room_for_generation_reads_each_servers_message():
    from distillery.generation.client import room_for_generation

    old_vllm = ("This model's maximum context length is 10000 tokens. However, you requested "
                "10300 tokens (2108 in the messages, 8192 in the completion).")  # fmt: skip
    new_vllm = ("'max_tokens' or 'max_completion_tokens' is too large: 8192. This model's "
                "maximum context length is 10000 tokens and your request has 2108 input tokens "
                "(8192 > 10000 - 2108).")  # fmt: skip
    prompt_only = "Input length (12000) exceeds model's maximum context length (10000)."
    assert room_for_generation(old_vllm) == room_for_generation(new_vllm) == 7892
    assert room_for_generation(prompt_only) == -2000
    assert room_for_generation("Invalid value for top_p") is None


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
