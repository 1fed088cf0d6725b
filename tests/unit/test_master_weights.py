import json

import pytest
import torch

from distillery import train_sft
from distillery.errors import DistilleryError
from distillery.training.master_weights import MasterWeightAdamW, master_optimizer

from ..conftest import write_jsonl
from .test_train_sft import config, preempted, records

SHAPES = [(8, 16), (16,), (3, 5)]


def bf16_values(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator).bfloat16()


def backward(params, seed):
    """A backward pass whose weight gradients are known bf16 values."""
    directions = [bf16_values(p.shape, seed + i) for i, p in enumerate(params)]
    loss = sum((p * d.to(p.dtype)).sum() for p, d in zip(params, directions, strict=True))
    loss.backward()
    return directions


def pair(**kwargs):
    """A bf16 model's parameters under MasterWeightAdamW, and fp32 twins under AdamW."""
    initial = [bf16_values(s, 100 + i) for i, s in enumerate(SHAPES)]
    ours = [torch.nn.Parameter(v.clone()) for v in initial]
    ref = [torch.nn.Parameter(v.float()) for v in initial]

    def groups(ps):
        return [
            {"params": ps[:2], "weight_decay": 0.1},
            {"params": ps[2:], "weight_decay": 0.0},
        ]

    return (
        ours,
        MasterWeightAdamW(groups(ours), lr=1e-2, **kwargs),
        ref,
        torch.optim.AdamW(groups(ref), lr=1e-2, **kwargs),
    )


def train_step(params, optimizer, seed, micro=3, clip=None):
    for m in range(micro):
        backward(params, seed * 10 + m)
    norm = None
    if clip is not None:
        if isinstance(optimizer, MasterWeightAdamW):
            norm = optimizer.clip_grad_norm_(clip)
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()
    optimizer.zero_grad()
    return norm


def test_updates_are_fp32_adamw_on_fp32_gradient_sums():
    ours, optimizer, ref, reference = pair()
    for step in range(4):
        train_step(ours, optimizer, step)
        train_step(ref, reference, step)
        for master, param, twin in zip(optimizer.masters, ours, ref, strict=True):
            assert param.dtype == torch.bfloat16 and param.grad is None
            assert torch.equal(master, twin.detach())
            assert torch.equal(param.detach(), twin.detach().bfloat16())
    # the updates are smaller than bf16 can resolve on these weights: a bf16-only optimizer
    # would have lost some of them
    bf16_only = [torch.nn.Parameter(p.detach().clone()) for p in pair()[0]]
    plain = torch.optim.AdamW(bf16_only, lr=1e-2)
    for step in range(4):
        train_step(bf16_only, plain, step)
    assert any(
        not torch.equal(a.detach(), b.detach()) for a, b in zip(bf16_only, ours, strict=True)
    )


def test_clipping_uses_the_fp32_sums():
    ours, optimizer, ref, reference = pair()
    for step in range(3):
        norm = train_step(ours, optimizer, step, clip=1.0)
        expected = train_step(ref, reference, step, clip=1.0)
        assert norm.item() == pytest.approx(expected.item(), rel=1e-6)
        assert norm.item() > 1.0  # the clip acted
        for master, twin in zip(optimizer.masters, ref, strict=True):
            assert torch.allclose(master, twin.detach(), rtol=0, atol=1e-6)


def test_resume_continues_from_the_masters_not_the_rounded_weights(tmp_path):
    ours, optimizer, _, _ = pair()
    for step in range(2):
        train_step(ours, optimizer, step)
    torch.save(optimizer.state_dict(), tmp_path / "optimizer.pt")
    weights = [p.detach().clone() for p in ours]  # what a checkpoint's model file holds
    for step in range(2, 4):
        train_step(ours, optimizer, step)

    resumed_params, resumed, _, _ = pair()
    with torch.no_grad():
        for param, value in zip(resumed_params, weights, strict=True):
            param.copy_(value)
    resumed.load_state_dict(torch.load(tmp_path / "optimizer.pt"))
    for step in range(2, 4):
        train_step(resumed_params, resumed, step)
    for a, b in zip(resumed.masters, optimizer.masters, strict=True):
        assert torch.equal(a, b)


def test_a_state_with_other_parameters_is_refused():
    _, optimizer, _, _ = pair()
    state = optimizer.state_dict()
    state["master_weights"] = state["master_weights"][:1]
    with pytest.raises(ValueError, match="1 master weights"):
        optimizer.load_state_dict(state)


def test_stage_trains_bf16_weights_with_fp32_masters(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "sft.jsonl", records(12))
    cfg = config(
        tmp_path, tiny_model_dir, method="full", precision="bf16", param_dtype="bf16", max_steps=3,
        gradient_accumulation_steps=2, learning_rate=1e-3,
    )  # fmt: skip
    model, tokenizer = train_sft.load_model(cfg)
    assert model.dtype == torch.bfloat16
    from distillery.training.tokenization import tokenize_records

    examples, _ = tokenize_records(records(12), tokenizer, cfg.training.max_seq_length)
    trainer = train_sft.build_trainer(cfg, model, tokenizer, examples, [])
    trainer.train()
    masters = master_optimizer(trainer.optimizer)
    assert masters is not None and masters.masters[0].dtype == torch.float32
    logs = [e for e in trainer.state.log_history if "loss" in e]
    assert len(logs) == 3 and all(e["grad_norm"] > 0 for e in logs)
    for master, param in zip(masters.masters, masters.model_params, strict=True):
        assert torch.equal(param.detach(), master.bfloat16())


def test_stage_resumes_bf16_training_exactly(tmp_path, tiny_model_dir, monkeypatch):
    from safetensors.torch import load_file

    write_jsonl(tmp_path / "sft.jsonl", records(16))
    settings = dict(
        method="full", precision="bf16", param_dtype="bf16", max_steps=4, learning_rate=1e-3
    )

    def run_config(name):
        return config(
            tmp_path, tiny_model_dir, output=str(tmp_path / name),
            checkpoint_dir=str(tmp_path / f"{name}-ckpt"), **settings,
        )  # fmt: skip

    train_sft.main(run_config("straight"))
    preempted(monkeypatch, run_config("resumed"), 4)
    train_sft.main(run_config("resumed"))
    assert json.loads((tmp_path / "metrics.json").read_text())["resumed_from"]
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert value.dtype == torch.bfloat16
        assert torch.equal(value, resumed[key]), key


def test_bf16_weights_need_bf16_compute(tmp_path, tiny_model_dir):
    with pytest.raises(DistilleryError, match="param_dtype.: bf16 needs precision bf16"):
        config(tmp_path, tiny_model_dir, precision="fp32", param_dtype="bf16")


def test_auto_keeps_fp32_weights_on_cpu(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, _ = train_sft.load_model(config(tmp_path, tiny_model_dir, precision="bf16"))
    assert model.dtype == torch.float32


def test_the_model_outlives_its_optimizer():
    import gc
    import weakref

    params, optimizer, _, _ = pair()
    gone = weakref.ref(optimizer)
    del optimizer
    gc.collect()
    assert gone() is None  # its fp32 copies went with it
    backward(params, 0)
    assert all(p.grad is not None for p in params)  # gradients stay on the model again


def test_bf16_full_training_is_one_process(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    bf16 = config(tmp_path, tiny_model_dir, method="full", precision="bf16", param_dtype="bf16")
    with pytest.raises(DistilleryError, match="trains in one process"):
        train_sft.param_dtype(bf16)
    # LoRA's trainable adapters stay fp32: a bf16 base is fine across processes
    lora = config(tmp_path, tiny_model_dir, method="lora", precision="bf16", param_dtype="bf16")
    assert train_sft.param_dtype(lora) == torch.bfloat16
