"""LoRA merge: the merged model generates what the adapter-applied model generates, and an
adapter of another model is refused before any weight is merged."""

from __future__ import annotations

import json

import pytest

from distillery import merge_lora
from distillery.errors import DistilleryError

from ..conftest import convert_embedded_model

PROMPTS = [
    "What is 7 times 8?",
    "Name a prime number larger than 20.",
    "Solve for x: 2x + 3 = 11.",
    "What is the square root of 144?",
    "A train travels 60 km in 1.5 hours. What is its speed?",
    "How many sides does a hexagon have?",
    "What is 15% of 200?",
    "Simplify 12/18.",
]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """float32, so the merged and the adapter-applied model compute alike."""
    return convert_embedded_model(tmp_path_factory.mktemp("smollm2") / "model", "float32")


def make_adapter(model_dir, out, seed=0):
    """A LoRA adapter with random (not zero) B matrices, so it changes what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "down_proj"],
        init_lora_weights=False,
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    peft_model.save_pretrained(out)
    return out


def greedy(model, tokenizer, prompts, new_tokens=16):
    import torch

    tokenizer.padding_side = "left"
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in prompts
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=new_tokens, do_sample=False)
    return out[:, batch["input_ids"].shape[1] :].tolist()


def test_merged_model_generates_the_same_tokens_as_the_adapter(smollm2, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    adapter = make_adapter(smollm2, tmp_path / "adapter")
    merged_dir = tmp_path / "merged"
    merge_lora.main(
        merge_lora.Config(base=str(smollm2), adapter=str(adapter), output=str(merged_dir))
    )
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    base = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    base_tokens = greedy(base, tokenizer, PROMPTS)
    applied = PeftModel.from_pretrained(base, adapter).eval()
    applied_tokens = greedy(applied, tokenizer, PROMPTS)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    merged_tokens = greedy(merged, tokenizer, PROMPTS)

    assert merged_tokens == applied_tokens
    # the adapter does change the model, so the equality above is not trivially true
    assert applied_tokens != base_tokens
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_adapter_of_another_model_is_refused_before_merging(tiny_model_dir, smollm2, tmp_path):
    adapter = make_adapter(tiny_model_dir, tmp_path / "tiny-adapter")
    output = tmp_path / "merged"
    with pytest.raises(DistilleryError, match=r"does not fit this base model") as err:
        merge_lora.main(
            merge_lora.Config(base=str(smollm2), adapter=str(adapter), output=str(output))
        )
    assert "expects 32x" in str(err.value)  # names the shapes that differ
    assert not output.exists()


def test_adapter_for_modules_the_base_lacks_is_refused(tiny_model_dir, tmp_path):
    adapter = make_adapter(tiny_model_dir, tmp_path / "adapter")
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    # same shapes, but the keys of a model with another module layout
    from safetensors.torch import load_file, save_file

    weights = load_file(adapter / "adapter_model.safetensors")
    renamed = {k.replace("self_attn", "attention"): v for k, v in weights.items()}
    save_file(renamed, adapter / "adapter_model.safetensors")
    config_path.write_text(json.dumps(config))
    with pytest.raises(DistilleryError, match=r"not in the base model"):
        merge_lora.merge(str(tiny_model_dir), str(adapter))


def test_a_directory_without_an_adapter_is_named(tiny_model_dir, tmp_path):
    with pytest.raises(DistilleryError, match=r"no adapter_config.json"):
        merge_lora.merge(str(tiny_model_dir), str(tmp_path))
