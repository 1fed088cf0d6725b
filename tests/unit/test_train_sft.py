import json

import pytest

from distillery import train_sft
from distillery.errors import DistilleryError
from distillery.settings.workflow import WANDB_ENV
from distillery.training.tokenization import tokenize_records

from ..conftest import train_config, wandb_history, write_jsonl


def records(n):
    return [
        {
            "input": f"<|im_start|>user\nWhat is {i}+1?<|im_end|>\n<|im_start|>assistant\n",
            "output": f"{i}+1={i + 1}. \\boxed{{{i + 1}}}<|im_end|>\n",
        }
        for i in range(n)
    ]


def test_tokenize_masks_the_prompt(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = records(2) + [{"input": "x", "output": ""}, {"input": "long " * 500, "output": "y"}]
    examples, stats = tokenize_records(data, tokenizer, max_seq_length=64)
    assert (stats.kept, stats.dropped_empty, stats.dropped_too_long) == (2, 1, 1)
    example = examples[0]
    prompt_len = len(tokenizer(data[0]["input"], add_special_tokens=False).input_ids)
    assert example["completion_mask"] == [0] * prompt_len + [1] * (
        len(example["input_ids"]) - prompt_len
    )
    answer = tokenizer.decode(
        [t for t, m in zip(example["input_ids"], example["completion_mask"], strict=True) if m]
    )
    assert answer == data[0]["output"]


def config(tmp_path, model, **kw):
    values = {
        "data": str(tmp_path / "sft.jsonl"),
        "model": str(model),
        "output": str(tmp_path / "model"),
        "metrics": str(tmp_path / "metrics.json"),
        "adapter_output": str(tmp_path / "adapter"),
        "checkpoint_dir": str(tmp_path / "ckpt"),
        "max_steps": 2,
        "micro_batch_size": 2,
        "max_seq_length": 128,
        "save_steps": 1,
        "logging_steps": 1,
        **kw,
    }
    return train_config(**values)


def generate_greedy(model_dir, text="What is 2+1?"):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # on a GPU, training has swapped in Liger's Triton kernels for this process's model classes
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device)
    ids = tokenizer(text, return_tensors="pt").input_ids.to(device)
    return model.generate(
        ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )


@pytest.mark.parametrize("method", ["lora", "full"])
def test_training_produces_a_loadable_model(tmp_path, tiny_model_dir, method):
    write_jsonl(tmp_path / "sft.jsonl", records(8))
    train_sft.main(config(tmp_path, tiny_model_dir, method=method, learning_rate=1e-2))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["examples"] == 8
    assert len(metrics["loss_history"]) == 2
    assert (tmp_path / "model" / "config.json").is_file()
    assert not any(p.name.startswith("adapter") for p in (tmp_path / "model").iterdir())
    if method == "lora":
        assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert generate_greedy(tmp_path / "model").shape[1] > 0
    assert not (tmp_path / "ckpt").exists()  # removed once the model is saved


def qlora_runs() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


@pytest.mark.skipif(qlora_runs(), reason="a CUDA GPU and bitsandbytes are here: qlora trains")
def test_qlora_without_a_gpu_or_bitsandbytes_is_a_clear_error(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "sft.jsonl", records(4))
    with pytest.raises(DistilleryError, match="method qlora needs a CUDA GPU and bitsandbytes"):
        train_sft.main(config(tmp_path, tiny_model_dir, method="qlora"))
    assert not (tmp_path / "model").exists() and not (tmp_path / "adapter").exists()


@pytest.mark.skipif(not qlora_runs(), reason="qlora needs a CUDA GPU and bitsandbytes")
def test_qlora_trains_adapters_on_a_4bit_base_and_outputs_a_merged_model(tmp_path, tiny_model_dir):
    import bitsandbytes as bnb
    import torch
    from safetensors.torch import load_file

    base = train_sft.load_quantized(str(tiny_model_dir), torch.bfloat16)
    assert isinstance(base.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    # the weights left unquantized stay in bf16 (peft's kbit preparation would upcast them)
    assert base.get_input_embeddings().weight.dtype == torch.bfloat16
    assert base.model.norm.weight.dtype == torch.bfloat16
    assert not any(p.requires_grad for p in base.parameters())
    del base

    write_jsonl(tmp_path / "sft.jsonl", records(8))
    train_sft.main(config(tmp_path, tiny_model_dir, method="qlora", learning_rate=5e-2))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["method"] == "qlora" and metrics["steps"] == 2
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    merged = load_file(tmp_path / "model" / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert merged[key].dtype == torch.bfloat16  # merged into the bf16 base, not the 4-bit one
    before = load_file(tiny_model_dir / "model.safetensors")[key]
    assert not torch.equal(before.to(torch.bfloat16), merged[key])
    assert generate_greedy(tmp_path / "model").shape[1] > 0


def test_lora_merge_changes_weights(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    write_jsonl(tmp_path / "sft.jsonl", records(8))
    train_sft.main(config(tmp_path, tiny_model_dir, learning_rate=5e-2))
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(tmp_path / "model" / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(before[key], after[key])


def preempted(monkeypatch, cfg, micro_batch: int) -> None:
    """train_sft.main interrupted (KeyboardInterrupt) on its `micro_batch`-th training step."""
    from trl import SFTTrainer

    real_step = SFTTrainer.training_step
    calls = {"n": 0}

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == micro_batch:
            raise KeyboardInterrupt("preempted")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(SFTTrainer, "training_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train_sft.main(cfg)
    monkeypatch.setattr(SFTTrainer, "training_step", real_step)


def test_resume_after_interruption(tmp_path, tiny_model_dir, monkeypatch):
    write_jsonl(tmp_path / "sft.jsonl", records(8))
    cfg = config(tmp_path, tiny_model_dir, max_steps=4)
    preempted(monkeypatch, cfg, 3)
    assert train_sft.last_checkpoint(tmp_path / "ckpt").endswith("checkpoint-2")
    assert not (tmp_path / "model").exists()
    train_sft.main(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["resumed_from"].endswith("checkpoint-2")
    assert metrics["steps"] == 4
    assert [h["step"] for h in metrics["loss_history"]] == [1, 2, 3, 4]


def test_checkpoints_of_another_run_are_not_resumed(tmp_path, tiny_model_dir):
    stale = tmp_path / "ckpt" / "checkpoint-7"
    stale.mkdir(parents=True)
    (stale / "trainer_state.json").write_text("{}")
    write_jsonl(tmp_path / "sft.jsonl", records(4))
    train_sft.main(config(tmp_path, tiny_model_dir))
    assert json.loads((tmp_path / "metrics.json").read_text())["resumed_from"] is None


def test_sequence_length_beyond_model_positions(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "sft.jsonl", records(2))
    with pytest.raises(DistilleryError, match="exceeds the model's 1024 positions"):
        train_sft.main(config(tmp_path, tiny_model_dir, max_seq_length=4096))


def test_no_example_fits(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "sft.jsonl", records(2))
    with pytest.raises(DistilleryError, match="no example fits in 8 tokens"):
        train_sft.main(config(tmp_path, tiny_model_dir, max_seq_length=8))


def test_missing_base_model(tmp_path):
    write_jsonl(tmp_path / "sft.jsonl", records(2))
    with pytest.raises(DistilleryError, match="not a Hugging Face model directory"):
        train_sft.main(config(tmp_path, tmp_path / "nope"))


def test_packed_samples_do_not_attend_to_each_other(tmp_path, tiny_model_dir):
    """The packed batch gives every token the logits it has when its sample runs alone."""
    import torch

    cfg = config(tmp_path, tiny_model_dir, max_seq_length=256, micro_batch_size=1)
    model, tokenizer = train_sft.load_model(cfg)
    examples, _ = tokenize_records(records(5), tokenizer, cfg.training.max_seq_length)
    trainer = train_sft.build_trainer(cfg, model, tokenizer, examples, [])
    batch = next(iter(trainer.get_train_dataloader()))
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1  # padding-free
    positions = batch["position_ids"][0].tolist()
    starts = [i for i, p in enumerate(positions) if p == 0]
    assert len(starts) >= 3  # several samples in one row
    model.eval()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        for start, end in zip(starts, starts[1:] + [len(positions)], strict=True):
            alone = model(input_ids=batch["input_ids"][:, start:end]).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-4, rtol=1e-4)


def test_gpus_asked_for_but_none_visible(tmp_path, tiny_model_dir, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    write_jsonl(tmp_path / "sft.jsonl", records(2))
    with pytest.raises(DistilleryError, match=r"asks for 2 GPU\(s\) but none is visible"):
        train_sft.main(config(tmp_path, tiny_model_dir, gpus=2))


def test_eval_loss_and_keep_best(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "sft.jsonl", records(8))
    write_jsonl(tmp_path / "val.jsonl", records(3))
    cfg = config(
        tmp_path, tiny_model_dir, max_steps=3, validation=str(tmp_path / "val.jsonl"),
        keep_best=True, method="full", learning_rate=1e-2,
    )  # fmt: skip
    train_sft.main(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [h["step"] for h in metrics["eval_history"]] == [1, 2, 3]
    best = min(metrics["eval_history"], key=lambda h: h["eval_loss"])["step"]
    assert metrics["best_checkpoint"].endswith(f"checkpoint-{best}")


def test_keep_best_needs_validation(tmp_path, tiny_model_dir):
    with pytest.raises(DistilleryError, match="keep_best needs --validation"):
        config(tmp_path, tiny_model_dir, keep_best=True)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_average_of_the_last_checkpoints(tmp_path, tiny_model_dir, method, monkeypatch):
    """The output is the mean of the final weights and the two checkpoints before them."""
    import torch
    from safetensors.torch import load_file

    captured = {}
    real = train_sft.average_checkpoints

    def spy(model, directory, count):
        name = "model.layers.0.self_attn.q_proj" + (
            ".lora_B.default.weight" if method == "lora" else ".weight"
        )
        key = next(k for k in model.state_dict() if k.endswith(name))
        captured["final"] = model.state_dict()[key].detach().clone()
        files = sorted(directory.glob("checkpoint-*/*model.safetensors"))
        captured["saved"] = {f.parent.name: load_file(f) for f in files}
        used = real(model, directory, count)
        captured["averaged"] = model.state_dict()[key].detach().clone()
        captured["key"] = key
        return used

    monkeypatch.setattr(train_sft, "average_checkpoints", spy)
    write_jsonl(tmp_path / "sft.jsonl", records(8))
    cfg = config(
        tmp_path, tiny_model_dir, method=method, max_steps=4, save_steps=1, average_last=3,
        learning_rate=5e-2,
    )  # fmt: skip
    train_sft.main(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    used = [p.rsplit("/", 1)[1] for p in metrics["averaged_checkpoints"]]
    assert used == ["checkpoint-3", "checkpoint-2"]
    saved_key = captured["key"].replace(".default", "")
    earlier = [captured["saved"][name][saved_key] for name in used]
    final, averaged = captured["final"].cpu(), captured["averaged"].cpu()
    expected = (final.float() + earlier[0].float() + earlier[1].float()) / 3
    torch.testing.assert_close(averaged, expected.to(averaged.dtype))
    assert not torch.equal(averaged, final)


def test_an_empty_validation_split_means_no_eval(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "sft.jsonl", records(4))
    (tmp_path / "val.jsonl").write_text("")
    train_sft.main(config(tmp_path, tiny_model_dir, validation=str(tmp_path / "val.jsonl")))
    assert json.loads((tmp_path / "metrics.json").read_text())["eval_history"] == []


@pytest.mark.parametrize("method", ["full", "lora"])
def test_stage_trainer_logs_what_trl_logs(tmp_path, tiny_model_dir, method):
    """Same losses, gradients and logged metrics as TRL's SFTTrainer, with the metrics read
    from the GPU once per logged step instead of on every micro-batch."""
    import torch
    from trl import SFTTrainer

    from distillery.training.trainer import trainer_class

    histories = []
    for cls in (SFTTrainer, trainer_class()):
        cfg = config(
            tmp_path,
            tiny_model_dir,
            method=method,
            max_steps=3,
            micro_batch_size=1,
            checkpoint_dir=str(tmp_path / f"{cls.__name__}-ckpt"),
            # TRL's trainer clips param.grad, which the fp32-master optimizer of a bf16 model
            # (auto on a GPU) empties: compare both on fp32 weights
            param_dtype="fp32",
        )
        torch.manual_seed(0)
        model, tokenizer = train_sft.load_model(cfg)
        examples, _ = tokenize_records(records(12), tokenizer, cfg.training.max_seq_length)
        trainer = train_sft.build_trainer(cfg, model, tokenizer, examples, [])
        trainer.__class__ = cls  # the stage's trainer against TRL's, on one set-up
        trainer.train()
        histories.append([e for e in trainer.state.log_history if "loss" in e])
    trl_logs, ours = histories
    assert len(trl_logs) == len(ours) == 3
    for theirs, mine in zip(trl_logs, ours, strict=True):
        for key in ("loss", "grad_norm", "entropy", "mean_token_accuracy", "num_tokens"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4), key


def test_training_curves_go_to_the_pipelines_wandb_group(tmp_path, tiny_model_dir, monkeypatch):
    for name in ("WANDB_PROJECT", "WANDB_MODE", "WANDB_DIR", "WANDB_RUN_GROUP"):
        monkeypatch.delenv(name, raising=False)
    results = tmp_path / "results"
    block = {"mode": "offline", "project": "curves", "dir": str(results)}
    monkeypatch.setenv(WANDB_ENV, json.dumps(block))
    write_jsonl(tmp_path / "sft.jsonl", records(8))
    write_jsonl(tmp_path / "val.jsonl", records(3))
    cfg = config(tmp_path, tiny_model_dir, max_steps=3, validation=str(tmp_path / "val.jsonl"))
    train_sft.main(cfg)
    (run_dir,) = (results / "wandb").glob("offline-run-*")
    group, history = wandb_history(run_dir)
    assert group == (results / "wandb" / "group").read_text().strip()
    keys = {key for row in history for key in row}
    assert {"train/loss", "train/learning_rate", "eval/loss"} <= keys
    assert "train/train_tokens_per_second" in keys
    speeds = [
        float(r["train/train_tokens_per_second"])
        for r in history
        if "train/train_tokens_per_second" in r
    ]
    assert speeds and all(s > 0 for s in speeds)


def test_no_wandb_block_no_reporting(monkeypatch):
    monkeypatch.delenv(WANDB_ENV, raising=False)
    assert train_sft.wandb_report_to() == "none"
    monkeypatch.setenv(WANDB_ENV, json.dumps({"mode": "disabled"}))
    assert train_sft.wandb_report_to() == "none"
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv(WANDB_ENV, json.dumps({"mode": "online"}))
    with pytest.raises(DistilleryError, match="WANDB_API_KEY is not set"):
        train_sft.wandb_report_to()
