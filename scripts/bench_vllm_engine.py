"""Output tokens/s of the generation stage on vLLM, against vLLM's own offline engine, on a
model big enough to keep a GPU busy.

    python scripts/bench_vllm_engine.py --tokenizer <HF dir> [--shape qwen2.5-1.5b]
        [--prompts 1024] [--tokens 512] [--modes offline,vllm_engine,vllm] [--rounds 1] [--args ...]

The model is random-initialised from a real model's shape (Qwen2.5-1.5B's by default) with the
tokenizer of ``--tokenizer`` (e.g. the embedded SmolLM2's): throughput needs no trained weights,
only a fixed length, so every sample ignores EOS and generates exactly ``--tokens`` tokens.
Three ways to generate the same chat prompts, one after another on the same GPU:

- ``offline``: vLLM's ``LLM.generate`` on all prompts at once (the peer);
- ``vllm_engine``: ``distillery.generate`` with the in-process engine;
- ``vllm``: ``distillery.generate`` starting vLLM's OpenAI server and sending it requests.

The offline engine's core runs where ``VLLM_ENABLE_V1_MULTIPROCESSING`` says (vLLM's default: a
process of its own); ``vllm_engine`` keeps it in the job's process unless ``--env`` says otherwise.
Set the variable to 0 for the run to compare like with like. Each rate counts generation only
(from the first request to the last result; the stage's own ``throughput:`` line); start-up is
reported apart (engine ready; server start to first sample).

``--rounds N`` runs the modes N times, alternating (offline, vllm_engine, vllm, offline, ...), so
that a machine's drift falls on every mode alike; each mode's ratio is then its median rate over
the offline engine's median, with every round's own ratio beside it. ``--warmup N`` runs N rounds
of every mode first and leaves them out of the table (their numbers are on stderr): a machine's
first run of a mode pays once for what later runs find cached (vLLM's compiled graphs, kernels),
and that cost does not fall on every mode alike. Prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from distillery.generation.pythonpath import with_source  # noqa: E402

SHAPES = {
    # hidden, layers, heads, kv heads, intermediate (the models' own configs)
    "qwen2.5-1.5b": (1536, 28, 12, 2, 8960),
    "qwen2.5-0.5b": (896, 24, 14, 2, 4864),
}


def build_model(directory: Path, tokenizer_dir: str, shape: str) -> None:
    """A random-initialised model of ``shape`` with the given tokenizer, saved in bf16."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    hidden, layers, heads, kv_heads, intermediate = SHAPES[shape]
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=intermediate,
        max_position_embeddings=4096, tie_word_embeddings=True, torch_dtype="bfloat16",
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def offline(model: str, prompts: list[str], tokens: int, args: list[str]) -> dict:
    """vLLM's own offline engine on every prompt at once."""
    code = f"""
import json, sys, time
from transformers import AutoTokenizer
from vllm import LLM, SamplingParams
from vllm.engine.arg_utils import EngineArgs
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
began = time.time()
parser = EngineArgs.add_cli_args(FlexibleArgumentParser())
plain = vars(parser.parse_args(["--model", {model!r}]))
given = vars(parser.parse_args(["--model", {model!r}, *{args!r}]))
llm = LLM(model={model!r}, **{{k: v for k, v in given.items() if plain.get(k) != v}})
ready = time.time() - began
tokenizer = AutoTokenizer.from_pretrained({model!r})
prompts = json.load(open(sys.argv[1]))
# rendered and tokenized as the stage does (distillery.generation.hf.render_chat)
texts = [tokenizer.apply_chat_template([{{"role": "user", "content": p}}],
         add_generation_prompt=True, tokenize=False) for p in prompts]
ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
params = SamplingParams(temperature=0.7, top_p=0.95, max_tokens={tokens}, ignore_eos=True, seed=0)
began = time.time()
outputs = llm.generate([{{"prompt_token_ids": i}} for i in ids], params, use_tqdm=False)
seconds = time.time() - began
count = sum(len(o.outputs[0].token_ids) for o in outputs)
print("RESULT", json.dumps({{"ready": ready, "seconds": seconds, "tokens": count}}), flush=True)
"""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(prompts, handle)
    result = subprocess.run([sys.executable, "-c", code, handle.name], capture_output=True,
                            text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"offline run failed:\n{result.stderr[-4000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def stage(kind: str, model: str, data: Path, out: Path, tokens: int, args: list[str], env: dict,
          gpus: int = 1):  # fmt: skip
    """``distillery.generate`` with server type ``kind``; its throughput and start-up."""
    # the server runs under this interpreter, which has vLLM (the offline peer needs it too)
    server = {"type": kind, "gpus": gpus, "args": args, "env": env, "max_concurrency": 1024,
              "health_timeout": 900, "python": sys.executable}  # fmt: skip
    block = {
        "server": server,
        "inference": {"temperature": 0.7, "top_p": 0.95, "max_tokens": tokens,
                      "extra_body": {"ignore_eos": True}},
    }  # fmt: skip
    command = [sys.executable, "-m", "distillery.generate", "--input", str(data), "--output",
               str(out), "--prompt", str(data.with_suffix(".yaml")), "--model", model,
               "--threads", str(os.cpu_count()), "--config-json", json.dumps(block)]  # fmt: skip
    for stale in (out, Path(f"{out}.partial")):
        stale.unlink(missing_ok=True)
    began = time.time()
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env={**os.environ, "PYTHONPATH": with_source()})  # fmt: skip
    log = result.stderr
    out.with_suffix(".log").write_text(log)  # the job's log, kept beside its output
    if result.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{log[-4000:]}")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    first = min(r["generation_end_time"] for r in rows)
    match = re.search(r"throughput: (\d+) samples in ([\d.]+)s.*?([\d.]+) output tokens/s; "
                      r"peak GPU memory (.+)$", log, re.MULTILINE)  # fmt: skip
    return {
        "seconds": float(match.group(2)),
        "tokens": sum(r["num_generated_tokens"] for r in rows),
        "first_sample": first - began,
        "memory": match.group(4),
        "wall": time.time() - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, help="HF directory whose tokenizer to use")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-1.5b")
    parser.add_argument("--model", help="an existing model directory instead of building one")
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--modes", default="offline,vllm_engine,vllm")
    parser.add_argument("--args", default="--enforce-eager --max-model-len 2048",
                        help="vLLM engine arguments, the same for every mode")  # fmt: skip
    parser.add_argument("--server-args", default="",
                        help="more arguments for the vllm mode's server only")  # fmt: skip
    parser.add_argument("--env", default="{}", help="JSON environment for the stages' vLLM")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--gpus", type=int, default=1, help="0: vLLM's CPU build")
    parser.add_argument("--rounds", type=int, default=1, help="run the modes this many times, "
                        "alternating")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=0, help="rounds run first and left out")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        model = str(work / f"random-{args.shape}")
        if not (Path(model) / "config.json").is_file():
            build_model(Path(model), args.tokenizer, args.shape)
    prompts = [f"Write a long story about the number {i}." for i in range(args.prompts)]
    data = work / "prompts.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": p}) + "\n" for i, p in enumerate(prompts)))
    data.with_suffix(".yaml").write_text("user: '{text}'\n")
    engine_args = shlex.split(args.args)
    env = json.loads(args.env)
    modes = args.modes.split(",")
    results: dict[str, list[dict]] = {mode: [] for mode in modes}
    for label, counted, mode in schedule(modes, args.rounds, args.warmup):
        print(f"# {label}: {mode} ...", file=sys.stderr, flush=True)
        if mode == "offline":
            run = offline(model, prompts, args.tokens, engine_args)
        else:
            out = work / f"out-{mode}-{label.replace(' ', '')}.jsonl"
            extra = shlex.split(args.server_args) if mode == "vllm" else []
            run = stage(mode, model, data, out, args.tokens, engine_args + extra, env, args.gpus)
        if counted:
            results[mode].append(run)
        print(f"# {label}: {mode}: {json.dumps(run)}", file=sys.stderr, flush=True)
    what = f"{args.shape} (random weights)" if args.model is None else args.model
    print(f"\n{what}, {args.prompts} prompts x {args.tokens} tokens (ignore_eos), vLLM args: "
          f"{args.args}{'; server: ' + args.server_args if args.server_args else ''}; "
          f"{args.rounds} round(s) after {args.warmup} warm-up round(s), modes "
          "alternating\n")  # fmt: skip
    print(table(results))


def schedule(modes: list[str], rounds: int, warmup: int):
    """(label, counted in the table, mode) for every run, in order: the warm-up rounds, then the
    rounds, each running the modes in turn.

    Example:
        >>> for run in schedule(["offline", "vllm"], 1, 1):
        ...     print(run)
        ('warm-up 1', False, 'offline')
        ('warm-up 1', False, 'vllm')
        ('round 1', True, 'offline')
        ('round 1', True, 'vllm')
    """
    for n in range(1 - warmup, rounds + 1):
        label = f"round {n}" if n > 0 else f"warm-up {n + warmup}"
        for mode in modes:
            yield label, n > 0, mode


def rate(run: dict) -> float:
    return run["tokens"] / run["seconds"]


def table(results: dict[str, list[dict]]) -> str:
    """One row per mode: the median rate over its rounds, against the offline engine's median,
    and each round's own ratio (against that round's offline run).

    Example:
        >>> runs = {"offline": [{"tokens": 100, "seconds": 1.0, "ready": 9.0}],
        ...         "vllm": [{"tokens": 90, "seconds": 1.0, "first_sample": 30.0}]}
        >>> print(table(runs).splitlines()[-1])
        | vllm | 90 | 0.90x | 0.90x | first sample 30s after the job started |  |
    """
    lines = [
        "| mode | output tokens/s (median) | vs offline | each round | start-up | "
        "peak GPU memory |",
        "|---|---:|---:|---|---|---|",
    ]
    base = results.get("offline")
    for mode, runs in results.items():
        median = statistics.median(rate(r) for r in runs)
        ratio = each = ""
        if base:
            ratio = f"{median / statistics.median(rate(r) for r in base):.2f}x"
            each = ", ".join(f"{rate(r) / rate(b):.2f}x" for r, b in zip(runs, base, strict=False))
        starts = ", ".join(
            f"{r['ready']:.0f}" if mode == "offline" else f"{r['first_sample']:.0f}" for r in runs
        )
        start = (f"engine ready in {starts}s" if mode == "offline"
                 else f"first sample {starts}s after the job started")  # fmt: skip
        lines.append(f"| {mode} | {median:,.0f} | {ratio} | {each} | {start} | "
                     f"{runs[-1].get('memory', '')} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
