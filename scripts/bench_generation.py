"""Generation benchmark: our client and stage against vLLM's own tools, on one machine.

    python scripts/bench_generation.py --vllm-python .venv-vllm/bin/python \
        --model results/models/smollm2-135m [--prompts 256 --max-tokens 64 --concurrency 16]

Three measurements, printed as one table:
1. client ceiling: requests/s of our client against the stub server (no model; 200 tokens a
   response), concurrency 512;
2. client vs ``vllm bench serve``: the same vLLM server, the same prompts, fixed-length outputs
   (``ignore_eos``), greedy, the same concurrency; output tokens/s, median of ``--repeats``
   interleaved runs;
3. stage vs offline: our whole generate stage (starting and stopping ``vllm serve``) against
   vLLM's offline ``LLM.chat`` in a fresh process (engine start included), same prompts and
   settings; wall time and generation-phase tokens/s, median of interleaved runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from distillery.data.demo import make_problems  # noqa: E402
from distillery.generation.client import ClientConfig, OpenAIClient  # noqa: E402
from distillery.generation.servers import ManagedServer, ServerSpec, free_port, server_command  # noqa: E402
from distillery.generation.types import Request, SamplingParams  # noqa: E402
from distillery.models.dtypes import describe_cpu, resolve  # noqa: E402
from distillery.prompts import load_prompt  # noqa: E402

CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_NO_USAGE_STATS": "1",
}
# this CPU's native number format: bf16 where it has AVX512-BF16 or AMX, else fp32 (what the
# stage picks on a CPU, so all three sides run the same format)
DTYPE = resolve("auto", "cpu")
SERVER_ARGS = ["--dtype", DTYPE, "--enforce-eager", "--max-model-len", "2048"]

OFFLINE = """
import json, sys, time
from vllm import LLM, SamplingParams
def main():
    cfg = json.loads(sys.argv[1])
    began = time.time()
    llm = LLM(model=cfg["model"], dtype=cfg["dtype"], enforce_eager=True, max_model_len=2048,
              seed=0)
    ready = time.time()
    conversations = [json.loads(line)["messages"] for line in open(cfg["rows"])]
    params = SamplingParams(temperature=0.0, max_tokens=cfg["max_tokens"], ignore_eos=True)
    outputs = llm.chat(conversations, params, use_tqdm=False)
    ended = time.time()
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    result = {"init": ready - began, "generate": ended - ready, "tokens": tokens}
    print("RESULT " + json.dumps(result), flush=True)
if __name__ == "__main__":
    main()
"""

BENCH_SERVE = """
import importlib.metadata as metadata
import sys
# vllm-cpu's distribution is named vllm-cpu, but vLLM looks its own metadata up as "vllm".
_version, _metadata = metadata.version, metadata.metadata
metadata.version = lambda name: _version("vllm-cpu" if name == "vllm" else name)
metadata.metadata = lambda name: _metadata("vllm-cpu" if name == "vllm" else name)
from vllm.utils.argparse_utils import FlexibleArgumentParser
from vllm.benchmarks.serve import add_cli_args, main
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""


def build_inputs(scratch: Path, count: int) -> tuple[Path, Path, Path, list]:
    prompt = load_prompt(REPO / "prompts" / "math.yaml")
    problems = [p.problem for p in make_problems(count, seed=7, split="test")]
    rows = scratch / "rows.jsonl"  # for our stage
    rows.write_text("".join(json.dumps({"problem": p}) + "\n" for p in problems))
    chats = scratch / "chats.jsonl"  # for the offline run
    messages = [prompt.messages({"problem": p}) for p in problems]
    chats.write_text("".join(json.dumps({"messages": m}) + "\n" for m in messages))
    bench = scratch / "bench.jsonl"  # for vllm bench serve: the same user message
    bench.write_text("".join(json.dumps({"prompt": m[-1]["content"]}) + "\n" for m in messages))
    return rows, chats, bench, messages


def client_ceiling(requests: int) -> float:
    port = free_port()
    stub = [
        sys.executable,
        str(REPO / "scripts" / "stub_openai_server.py"),
        "--port",
        str(port),
        "--tokens",
        "200",
    ]
    with ManagedServer(stub, f"http://127.0.0.1:{port}", 30, model="stub"):
        client = OpenAIClient(ClientConfig(f"http://127.0.0.1:{port}", "stub", max_concurrency=512))
        params = SamplingParams(max_tokens=200)
        batch = [
            Request(i, [{"role": "user", "content": f"q{i}"}], params) for i in range(requests)
        ]
        began = time.perf_counter()
        count = sum(1 for _ in client.generate(batch))
        return count / (time.perf_counter() - began)


def our_client_throughput(url, model, messages, args) -> float:
    config = ClientConfig(
        url, model, max_concurrency=args.concurrency, extra_body={"ignore_eos": True}
    )
    params = SamplingParams(max_tokens=args.max_tokens)
    batch = [Request(i, m, params) for i, m in enumerate(messages)]
    began = time.perf_counter()
    tokens = sum(r.num_generated_tokens for r in OpenAIClient(config).generate(batch))
    return tokens / (time.perf_counter() - began)


def bench_serve_throughput(url, model, bench_file, scratch, args) -> float:
    result = scratch / "bench-result.json"
    command = [
        args.vllm_python, "-c", BENCH_SERVE,
        "--backend", "openai-chat", "--base-url", url, "--endpoint", "/v1/chat/completions",
        "--model", model, "--dataset-name", "custom", "--dataset-path", str(bench_file),
        "--num-prompts", str(args.prompts), "--custom-output-len", str(args.max_tokens),
        "--ignore-eos", "--temperature", "0", "--max-concurrency", str(args.concurrency),
        "--disable-shuffle", "--save-result", "--result-dir", str(scratch),
        "--result-filename", result.name,
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **CPU_ENV})
    if run.returncode != 0:
        raise RuntimeError(f"vllm bench serve failed:\n{run.stderr[-3000:]}")
    return json.loads(result.read_text())["output_throughput"]


def stage_run(rows: Path, scratch: Path, args) -> dict:
    out = scratch / f"stage-{time.time_ns()}.jsonl"
    command = [
        sys.executable, "-m", "distillery.generate", "--input", str(rows), "--output", str(out),
        "--prompt", str(REPO / "prompts" / "math.yaml"), "--model", args.model,
        "--backend", "vllm", "--server-python", args.vllm_python,
        f"--server-args={' '.join(SERVER_ARGS)}",
        "--server-env", *(f"{k}={v}" for k, v in CPU_ENV.items()),
        "--max-tokens", str(args.max_tokens), "--temperature", "0",
        "--extra-body", '{"ignore_eos": true}', "--max-concurrency", str(args.stage_concurrency),
    ]  # fmt: skip
    began = time.perf_counter()
    log = subprocess.run(command, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")}).stderr  # fmt: skip
    wall = time.perf_counter() - began
    ready = re.search(r"server ready after (\d+)s", log)
    tokens = sum(json.loads(line)["num_generated_tokens"] for line in out.read_text().splitlines())
    rows_ = [json.loads(line) for line in out.read_text().splitlines()]
    generate = max(r["generation_end_time"] for r in rows_) - min(
        r["generation_start_time"] for r in rows_
    )
    return {
        "wall": wall,
        "generate": generate,
        "tokens": tokens,
        "ready": int(ready.group(1)) if ready else None,
    }


def offline_run(chats: Path, args) -> dict:
    config = json.dumps(
        {"model": args.model, "rows": str(chats), "max_tokens": args.max_tokens, "dtype": DTYPE}
    )
    began = time.perf_counter()
    command = [args.vllm_python, "-c", OFFLINE, config]
    env = {**os.environ, **CPU_ENV}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    wall = time.perf_counter() - began
    result = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    return {"wall": wall, **result}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--model", default=str(REPO / "results" / "models" / "smollm2-135m"))
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stage-concurrency", type=int, default=512, help="the stage's default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stub-requests", type=int, default=5000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["ceiling", "client", "stage"])
    args = parser.parse_args()

    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        rows, chats, bench_file, messages = build_inputs(scratch, args.prompts)
        if "ceiling" not in args.skip:
            rate = client_ceiling(args.stub_requests)
            lines.append(
                f"| client ceiling (stub server, concurrency 512) | {rate:.0f} req/s | "
                f"{rate / 60:.1f}× the ~60 req/s one H100 needs for an 8B model |"
            )
        if "client" not in args.skip:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            spec = ServerSpec("vllm", args.model, python=args.vllm_python, args=tuple(SERVER_ARGS))
            ours, theirs = [], []
            with ManagedServer(server_command(spec, port), url, 600, env=CPU_ENV, model=spec.name):
                our_client_throughput(url, spec.name, messages[:16], args)  # warm-up
                for _ in range(args.repeats):
                    ours.append(our_client_throughput(url, spec.name, messages, args))
                    theirs.append(bench_serve_throughput(url, spec.name, bench_file, scratch, args))
            o, t = statistics.median(ours), statistics.median(theirs)
            lines.append(
                f"| client vs `vllm bench serve` (concurrency {args.concurrency}) | "
                f"{o:.1f} vs {t:.1f} output tok/s | {o / t:.3f}× |"
            )
        if "stage" not in args.skip:
            stages, offline = [], []
            for _ in range(args.repeats):
                stages.append(stage_run(rows, scratch, args))
                offline.append(offline_run(chats, args))
            sw = statistics.median(s["wall"] for s in stages)
            ow = statistics.median(o["wall"] for o in offline)
            sg = statistics.median(s["tokens"] / s["generate"] for s in stages)
            og = statistics.median(o["tokens"] / o["generate"] for o in offline)
            ready = statistics.median(s["ready"] for s in stages if s["ready"] is not None)
            init = statistics.median(o["init"] for o in offline)
            lines.append(
                f"| stage vs offline `LLM.chat`, wall incl. start | {sw:.0f} s vs {ow:.0f} s | "
                f"{ow / sw:.3f}× (server ready after {ready:.0f} s; offline engine {init:.0f} s) |"
            )
            lines.append(
                f"| stage vs offline, generation phase | {sg:.1f} vs {og:.1f} output tok/s | "
                f"{sg / og:.3f}× |"
            )
    print(
        f"{args.prompts} prompts, {args.max_tokens} tokens each (ignore_eos), greedy, "
        f"median of {args.repeats}; {describe_cpu()}, vLLM in {DTYPE}\n"
    )
    print("| measurement | ours vs peer | ratio |\n|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
