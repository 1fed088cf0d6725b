"""Training throughput of the train_sft stage on a GPU, against a plain padded HF Trainer and a
raw PyTorch loop on the same packed batches.

Usage (one GPU; several: one process per GPU under torchrun, the stage modes only, each GPU's
own tokens/s)::

    python scripts/bench_training.py --shape 1.5b --modes stage,raw,padded --steps 20
    python scripts/bench_training.py --shape 1.5b --modes lora,qlora --steps 20
    torchrun --standalone --nproc-per-node 2 scripts/bench_training.py --modes stage [--fsdp]

Models are Qwen2.5-0.5B/1.5B-shaped, randomly initialised from a config (no download). Samples
are SFT-shaped: lengths log-normal between 200 and 4000 tokens, the first ~20% prompt (no loss).
Every mode sees the same samples and the same number of tokens per optimizer step, in bf16
compute with fp32 master weights, with fused AdamW.

- stage:  distillery.train_sft's own trainer (TRL SFTTrainer, padding-free BFD packing: no
          attention across samples), on a model directory saved to disk as the stage reads it;
          the model in bf16 with fp32 masters in the optimizer (the stage's default on a GPU);
- stage32: the same with fp32 weights under autocast (--param-dtype fp32);
- raw:    a plain PyTorch loop over the very batches the stage's data loader yields, with the
          stage's model and optimizer;
- padded: transformers.Trainer with samples padded to the longest in each micro-batch and a
          2-D attention mask, fp32 weights under autocast (what a plain HF fine-tuning script
          does);
- lora, qlora: the stage with method lora / qlora (bitsandbytes NF4), adapters on every linear;
- qlora32: qlora with the unquantized weights (embeddings, LM head, norms) in fp32, as peft's
          prepare_model_for_kbit_training leaves them (--param-dtype fp32).

MFU counts matmul FLOPs only: 6 x (linear-layer parameters + the LM head) per token, plus
causal attention 6 x layers x hidden x (sum of squared sample lengths / tokens), over the GPU's
dense bf16 peak (989 TFLOP/s for H100 and H200). Tokens are real (non-padding) tokens. Peak
memory is torch.cuda.max_memory_allocated of the timed steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

SHAPES = {
    # Qwen2.5 configs (hidden, intermediate, layers, heads, kv heads, tied embeddings)
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                 num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
}  # fmt: skip
VOCAB = 151_936
PEAK_BF16 = {"H100": 989e12, "H200": 989e12}


def make_samples(count: int, vocab: int, seed: int = 0, low=200, high=4000) -> list[dict]:
    rng = random.Random(seed)
    samples = []
    for _ in range(count):
        length = int(min(high, max(low, rng.lognormvariate(math.log(1200), 0.7))))
        prompt = max(1, length // 5)
        ids = [rng.randrange(10, vocab) for _ in range(length)]
        samples.append(
            {"input_ids": ids, "completion_mask": [0] * prompt + [1] * (length - prompt)}
        )
    return samples


def word_tokenizer(vocab: int):
    """A tokenizer with the model's vocabulary size (the data is already token ids)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    table = {f"t{i}": i for i in range(vocab)}
    table.update({"<pad>": 0, "<eos>": 1})
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(table, unk_token="<eos>")),
        pad_token="<pad>",
        eos_token="<eos>",
    )
    return tokenizer


def save_model(shape: str, directory: Path, vocab: int) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab, max_position_embeddings=32768, **SHAPES[shape])
    Qwen2ForCausalLM(config).save_pretrained(directory)
    word_tokenizer(vocab).save_pretrained(directory)


def matmul_flops_per_token(config, samples: list[dict]) -> float:
    d, layers = config.hidden_size, config.num_hidden_layers
    kv = d * config.num_key_value_heads // config.num_attention_heads
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * config.intermediate_size
    linear = layers * per_layer + config.vocab_size * d
    lengths = [len(s["input_ids"]) for s in samples]
    context = sum(n * n for n in lengths) / sum(lengths)
    return 6 * linear + 6 * layers * d * context


class StepTimer:
    """Wall time of each optimizer step and the real tokens it trained on (a forward hook)."""

    def __init__(self, model):
        import torch

        self.torch = torch
        self.tokens = 0
        self.steps: list[tuple[float, int]] = []
        self._start = None
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.tokens += int(mask.sum()) if mask is not None else int(ids.numel())

    def _sync(self):
        if self.torch.cuda.is_available():
            self.torch.cuda.synchronize()

    def begin(self):
        self._sync()
        self._start, self.tokens = time.perf_counter(), 0

    def end(self):
        self._sync()
        self.steps.append((time.perf_counter() - self._start, self.tokens))


def trainer_callback(timer: StepTimer):
    from transformers import TrainerCallback

    class Callback(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            timer.begin()

        def on_step_end(self, args, state, control, **kwargs):
            timer.end()

    return Callback()


def stage_trainer(
    model_dir: Path, samples, method: str, args, workdir: Path, param_dtype: str = "auto"
):
    from distillery import train_sft
    from distillery.settings.base import parse
    from distillery.settings.training import TrainingSettings

    training = {
        "method": method,
        "max_steps": args.warmup + args.steps,
        "micro_batch_size": args.micro,
        "fsdp": args.fsdp,
        "gradient_accumulation_steps": args.accumulation,
        "compile": args.compile,
        "max_seq_length": args.pack_length,
        "save_steps": 10_000,
        "precision": "bf16",
        "param_dtype": param_dtype,
        "gradient_checkpointing": args.gradient_checkpointing,
        "attn_implementation": args.attn,
        "liger": args.liger,
        "lora": {"r": 16, "alpha": 32},
    }
    if args.logging_steps:
        training["logging_steps"] = args.logging_steps
    config = train_sft.Config(
        data=str(workdir / "unused.jsonl"),
        model=str(model_dir),
        output=str(workdir / f"out-{method}"),
        metrics=str(workdir / "metrics.json"),
        training=parse(TrainingSettings, training),
        adapter_output=str(workdir / f"adapter-{method}"),
        checkpoint_dir=str(workdir / f"ckpt-{method}"),
    )
    model, tokenizer = train_sft.load_model(config)
    return train_sft.build_trainer(config, model, tokenizer, samples, None), config


def profiler_callback(warmup: int, steps: int = 2):
    """torch.profiler over `steps` optimizer steps after the warm-up; prints the operators and
    kernels that took the most GPU time (its footer: the GPU time in all)."""
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule
    from transformers import TrainerCallback

    def report(prof):
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=25), flush=True)

    prof = profile(
        activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
        schedule=schedule(wait=max(0, warmup - 1), warmup=1, active=steps, repeat=1),
        on_trace_ready=report,
    )

    class Callback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            prof.start()

        def on_step_end(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            prof.step()

        def on_train_end(self, args, state, control, **kwargs):
            prof.stop()

    return Callback()


def run_stage(model_dir, samples, method, args, workdir, param_dtype="auto"):
    trainer, _ = stage_trainer(model_dir, samples, method, args, workdir, param_dtype)
    timer = StepTimer(trainer.model)
    trainer.add_callback(trainer_callback(timer))
    if args.profile:
        trainer.add_callback(profiler_callback(args.warmup))
    trainer.train()
    return timer.steps, trainer.model.config


def run_raw(model_dir, samples, args, workdir):
    """The stage's own packed batches through a bare loop: what the Trainer costs on top."""
    import torch

    from distillery.training.master_weights import master_optimizer

    trainer, _ = stage_trainer(model_dir, samples, "full", args, workdir)
    batches = []
    for batch in trainer.get_train_dataloader():
        batches.append(dict(batch))
        if len(batches) == (args.warmup + args.steps) * args.accumulation:
            break
    model = trainer.model
    optimizer = trainer.create_optimizer()  # the stage's own: fp32 masters for a bf16 model
    masters = master_optimizer(optimizer)
    del trainer
    if args.liger:
        # what the Trainer applies when training starts
        from liger_kernel.transformers import _apply_liger_kernel_to_instance

        _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=False)
    model.train()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    timer = StepTimer(model)
    for step in range(args.warmup + args.steps):
        timer.begin()
        for micro in batches[step * args.accumulation : (step + 1) * args.accumulation]:
            micro = {
                k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                for k, v in micro.items()
            }
            with torch.autocast(device, dtype=torch.bfloat16):
                loss = model(**micro).loss / args.accumulation
            loss.backward()
        if masters is not None:
            masters.clip_grad_norm_(1.0)
        else:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timer.end()
    return timer.steps, model.config


def run_padded(model_dir, samples, args, workdir):
    """A plain HF Trainer: micro-batches padded to their longest sample, 2-D attention mask."""
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="sdpa"
    )
    cuda = torch.cuda.is_available()
    # two samples per micro-batch (more runs out of memory on the padded, vocabulary-wide
    # logits at 1.5B), and as many micro-batches as give the stage's tokens per step
    micro = 2
    mean = sum(len(s["input_ids"]) for s in samples) / len(samples)
    accumulation = max(1, round(args.accumulation * args.pack_length / (micro * mean)))

    def collate(rows):
        longest = max(len(r["input_ids"]) for r in rows)
        ids = torch.zeros(len(rows), longest, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            mask[i, :n] = 1
            completion = torch.tensor(r["completion_mask"], dtype=torch.bool)
            labels[i, :n] = torch.where(completion, ids[i, :n], -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    training = TrainingArguments(
        output_dir=str(workdir / "padded"),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        max_steps=args.warmup + args.steps,
        learning_rate=1e-5,
        bf16=True,
        use_cpu=not cuda,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        save_strategy="no",
        report_to="none",
        logging_steps=1000,
        remove_unused_columns=False,
        gradient_checkpointing=args.gradient_checkpointing,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=training,
        train_dataset=samples * 4,  # enough rows for the steps at this micro-batch size
        data_collator=collate,
    )
    timer = StepTimer(model)
    trainer.add_callback(trainer_callback(timer))
    trainer.train()
    return timer.steps, model.config


def summarise(mode, steps, config, samples, args) -> dict:
    import torch

    timed = steps[args.warmup :]
    seconds = sum(t for t, _ in timed)
    tokens = sum(n for _, n in timed)
    per_second = tokens / seconds
    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), 989e12)
    flops = matmul_flops_per_token(config, samples)
    return {
        "mode": mode,
        "shape": args.shape,
        "device": name,
        "tokens_per_s": round(per_second),
        "mfu": round(per_second * flops / peak, 4),
        "step_s": round(seconds / len(timed), 4),
        "tokens_per_step": round(tokens / len(timed)),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if cuda else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="1.5b")
    parser.add_argument("--modes", default="stage,raw,padded")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--pack-length", type=int, default=8192, help="tokens per micro-batch")
    parser.add_argument("--accumulation", type=int, default=2, help="micro-batches per step")
    parser.add_argument("--attn", default="auto", help="attention implementation of the stage")
    parser.add_argument(
        "--liger", action=argparse.BooleanOptionalAction, default=True, help="Liger kernels"
    )
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--micro", type=int, default=1, help="packed rows per micro-batch")
    parser.add_argument(
        "--logging-steps", type=int, default=0, help="stage's logging interval (0: its default)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile (stage)")
    parser.add_argument("--profile", action="store_true", help="profile two stage steps")
    parser.add_argument("--repeat", type=int, default=1, help="run the modes this many times")
    parser.add_argument("--json", help="append one JSON line per mode run here")
    parser.add_argument("--fsdp", action="store_true", help="stage: FSDP2 (several processes)")
    args = parser.parse_args()
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    first = int(os.environ.get("RANK", "0")) == 0
    modes = args.modes.split(",")
    if processes > 1 and not set(modes) <= {"stage", "stage32", "lora"}:
        raise SystemExit("several processes run the stage modes only (stage, stage32, lora)")

    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    vocab = VOCAB if args.shape != "tiny" else 4096
    # each process trains on its own share of the packs
    samples = make_samples(
        (args.warmup + args.steps)
        * args.accumulation
        * args.micro
        * args.pack_length
        // 1000
        * processes
        + 64,
        vocab,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model_dir = workdir / "model"
        save_model(args.shape, model_dir, vocab)
        # modes interleaved, repeated: the GPU's first minute and its neighbours' load fall
        # on every mode alike
        for repeat in range(args.repeat):
            for mode in modes:
                row = run_mode(mode, model_dir, samples, args, workdir)
                row.update(repeat=repeat, processes=processes, fsdp=args.fsdp)
                rows.append(row)
                if not first:
                    continue
                print(json.dumps(row), flush=True)
                if args.json:
                    with open(args.json, "a") as handle:
                        handle.write(json.dumps(row) + "\n")
    if first:
        print_table(rows)


def run_mode(mode, model_dir, samples, args, workdir) -> dict:
    import gc

    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if mode in ("stage", "stage32", "lora", "qlora", "qlora32"):
        method = "full" if mode.startswith("stage") else mode.removesuffix("32")
        param_dtype = "fp32" if mode.endswith("32") else "auto"
        steps, config = run_stage(model_dir, samples, method, args, workdir, param_dtype)
    elif mode == "raw":
        steps, config = run_raw(model_dir, samples, args, workdir)
    elif mode == "padded":
        steps, config = run_padded(model_dir, samples, args, workdir)
    else:
        raise SystemExit(f"unknown mode {mode}")
    row = summarise(mode, steps, config, samples, args)
    row.update(
        attn=args.attn,
        liger=args.liger,
        ckpt=args.gradient_checkpointing,
        micro=args.micro,
        compile=args.compile,
        logging_steps=args.logging_steps,
    )
    gc.collect()
    return row


def print_table(rows: list[dict]) -> None:
    """Median over the repeats of each mode, and each mode against the stage."""
    import statistics

    modes = list(dict.fromkeys(r["mode"] for r in rows))
    median = {
        m: statistics.median(r["tokens_per_s"] for r in rows if r["mode"] == m) for m in modes
    }
    print(f"\n{'mode':<8} {'runs':>4} {'tokens/s':>10} {'MFU':>6} {'stage / mode':>12} {'GiB':>6}")
    for m in modes:
        mine = [r for r in rows if r["mode"] == m]
        mfu = statistics.median(r["mfu"] for r in mine)
        ratio = median.get("stage", float("nan")) / median[m]
        peak = max((r["peak_gib"] or 0) for r in mine)
        print(f"{m:<8} {len(mine):>4} {median[m]:>10,.0f} {mfu:>6.1%} {ratio:>12.2f} {peak:>6.1f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
