"""GGUF -> Hugging Face for Llama-architecture files with a byte-level BPE vocabulary, without
torch or transformers: the weights are dequantised a tensor at a time and streamed into
``model.safetensors``, the tokenizer is built with ``tokenizers``.

The directory it writes loads in transformers, vLLM and the trainer as the one transformers'
own GGUF loading saves: the same tensors bit for bit, the same config once loaded, the same
tokenizer (``tests/unit/test_gguf_llama.py`` compares them on the packaged SmolLM2 file). It
takes about a sixth of the time (SmolLM2-135M on 2 cores: 2.1 s against 12.8 s,
``scripts/bench_gguf_to_hf.py``), most of it dequantising, and holds one tensor in memory, not
the model.

Files it does not cover (other architectures, SentencePiece vocabularies, tensors it has no
name for, rope scaling) are named by :func:`unsupported` and converted by transformers.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from distillery.models.gguf_file import GGUFFile, TensorInfo

ARCHITECTURE = "llama"
# GGUF token types that transformers' conversion adds as special tokens
_CONTROL, _USER_DEFINED = 3, 4
# a tokenizer's "no limit", as transformers writes it
_NO_LENGTH_LIMIT = int(1e30)
_LAYER_TENSORS = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_MODEL_TENSORS = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_REQUIRED = (
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.merges",
    *(
        f"{ARCHITECTURE}.{name}"
        for name in ("attention.head_count", "embedding_length", "feed_forward_length",
                     "block_count", "context_length", "attention.layer_norm_rms_epsilon")
    ),
)  # fmt: skip
_SAFETENSORS_DTYPES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}


def unsupported(gguf: GGUFFile) -> str | None:
    """Why this file is not converted here, or None when it is."""
    architecture = gguf.get("general.architecture")
    if architecture != ARCHITECTURE:
        return f"architecture {architecture!r}"
    if "mistral" in str(gguf.get("general.name", "")).lower():
        return "a Mistral model (transformers reads it as mistral, not llama)"
    if gguf.get("tokenizer.ggml.model") != "gpt2":
        return f"tokenizer {gguf.get('tokenizer.ggml.model')!r} (not byte-level BPE)"
    if any(key.startswith(f"{ARCHITECTURE}.rope.scaling.") for key in gguf.metadata):
        return "rope scaling"
    missing = [key for key in _REQUIRED if key not in gguf.metadata]
    if missing:
        return f"no {', '.join(missing)} in its metadata"
    for tensor in gguf.tensors:
        if hf_name(tensor.name) is None:
            return f"tensor {tensor.name}"
    return None


def hf_name(name: str) -> str | None:
    """The transformers parameter of a GGUF tensor (None for one without).

    Example:
        >>> hf_name("blk.3.ffn_down.weight"), hf_name("output.weight"), hf_name("rope_freqs")
        ('model.layers.3.mlp.down_proj.weight', 'lm_head.weight', None)
    """
    if name in _MODEL_TENSORS:
        return _MODEL_TENSORS[name]
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[1].isdigit() and parts[3] == "weight":
        module = _LAYER_TENSORS.get(parts[2])
        if module is not None:
            return f"model.layers.{parts[1]}.{module}.weight"
    return None


def model_config(gguf: GGUFFile, dtype: str) -> dict:
    """``config.json`` of the model."""
    key = lambda name: f"{ARCHITECTURE}.{name}"  # noqa: E731
    heads = int(gguf.metadata[key("attention.head_count")])
    hidden = int(gguf.metadata[key("embedding_length")])
    tokens = gguf.metadata["tokenizer.ggml.tokens"]
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": ARCHITECTURE,
        "hidden_size": hidden,
        "intermediate_size": int(gguf.metadata[key("feed_forward_length")]),
        "num_hidden_layers": int(gguf.metadata[key("block_count")]),
        "num_attention_heads": heads,
        "num_key_value_heads": int(gguf.get(key("attention.head_count_kv"), heads)),
        "head_dim": int(gguf.get(key("attention.key_length"), hidden // heads)),
        "max_position_embeddings": int(gguf.metadata[key("context_length")]),
        "rms_norm_eps": float(gguf.metadata[key("attention.layer_norm_rms_epsilon")]),
        "rope_parameters": {
            "rope_theta": float(gguf.get(key("rope.freq_base"), 10000.0)),
            "rope_type": "default",
        },
        "vocab_size": int(gguf.get(key("vocab_size"), len(tokens))),
        "tie_word_embeddings": all(t.name != "output.weight" for t in gguf.tensors),
        "dtype": dtype,
    }
    config.update(_special_ids(gguf))
    return config


def _special_ids(gguf: GGUFFile) -> dict:
    names = {"bos": "bos_token_id", "eos": "eos_token_id", "padding": "pad_token_id",
             "unknown": "unk_token_id"}  # fmt: skip
    return {
        field: int(gguf.metadata[f"tokenizer.ggml.{kind}_token_id"])
        for kind, field in names.items()
        if f"tokenizer.ggml.{kind}_token_id" in gguf.metadata
    }


def build_tokenizer(gguf: GGUFFile):
    """The ``tokenizers`` tokenizer: byte-level BPE over the file's vocabulary and merges, its
    control and user-defined tokens added as special tokens, BOS/EOS added to each text only
    where the file says so."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    tokens = gguf.metadata["tokenizer.ggml.tokens"]
    merges = [tuple(merge.split(" ", 1)) for merge in gguf.metadata["tokenizer.ggml.merges"]]
    tokenizer = Tokenizer(
        models.BPE(
            vocab={token: index for index, token in enumerate(tokens)},
            merges=merges,
            dropout=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    add_prefix = bool(gguf.get("tokenizer.ggml.add_space_prefix", False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix)
    tokenizer.decoder = decoders.ByteLevel()
    ids = _special_ids(gguf)
    bos, eos = (
        (tokens[ids[field]], ids[field])
        if gguf.get(f"tokenizer.ggml.add_{end}_token", False) and field in ids
        else None
        for end, field in (("bos", "bos_token_id"), ("eos", "eos_token_id"))
    )

    def sequence(name: str, type_id: int) -> list[str]:
        return (
            [f"{end[0]}:{type_id}" for end in (bos,) if end]
            + [f"${name}:{type_id}"]
            + [f"{end[0]}:{type_id}" for end in (eos,) if end]
        )

    tokenizer.post_processor = processors.TemplateProcessing(
        single=sequence("A", 0),
        pair=sequence("A", 0) + sequence("B", 1),
        special_tokens=list(dict.fromkeys(end for end in (bos, eos) if end)),
    )
    types = gguf.get("tokenizer.ggml.token_type")
    if types is not None:
        specials = [tokens[i] for i in np.flatnonzero(np.isin(types, (_CONTROL, _USER_DEFINED)))]
        tokenizer.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in specials]
        )
    return tokenizer


def tokenizer_config(gguf: GGUFFile) -> dict:
    tokens = gguf.metadata["tokenizer.ggml.tokens"]
    names = {"bos_token_id": "bos_token", "eos_token_id": "eos_token",
             "pad_token_id": "pad_token", "unk_token_id": "unk_token"}  # fmt: skip
    config = {names[field]: tokens[index] for field, index in _special_ids(gguf).items()}
    return {
        **config,
        "model_max_length": _NO_LENGTH_LIMIT,
        "tokenizer_class": "TokenizersBackend",
    }


def convert(gguf: GGUFFile, destination: str | Path, dtype: str) -> int:
    """Writes the model directory (``destination`` must not exist); returns the number of
    parameters."""
    destination = Path(destination)
    destination.mkdir(parents=True)
    config = model_config(gguf, dtype)
    _write_json(destination / "config.json", config)
    ends = ("bos_token_id", "eos_token_id", "pad_token_id")
    generation = {key: config[key] for key in ends if key in config}
    _write_json(destination / "generation_config.json", {"_from_model_config": True, **generation})
    build_tokenizer(gguf).save(str(destination / "tokenizer.json"))
    _write_json(destination / "tokenizer_config.json", tokenizer_config(gguf))
    template = gguf.get("tokenizer.chat_template")
    if template:
        (destination / "chat_template.jinja").write_text(template)
    heads = config["num_attention_heads"], config["num_key_value_heads"]
    return write_safetensors(
        destination / "model.safetensors",
        ((hf_name(t.name), t) for t in gguf.tensors),
        lambda tensor: weights(gguf, tensor, heads),
        dtype,
    )


def weights(gguf: GGUFFile, tensor: TensorInfo, heads: tuple[int, int]) -> np.ndarray:
    """A tensor dequantised to float32 in transformers' layout: llama.cpp stores the query and
    key projections with each head's rotary halves interleaved, which is undone here."""
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import dequantize

    values = dequantize(gguf.raw(tensor), GGMLQuantizationType(tensor.ggml_type))
    values = values.reshape(tensor.rows_shape)
    kind = tensor.name.split(".")[2] if tensor.name.startswith("blk.") else ""
    if kind in ("attn_q", "attn_k"):
        values = deinterleave_rotary(values, heads[0] if kind == "attn_q" else heads[1])
    return values


def deinterleave_rotary(projection: np.ndarray, heads: int) -> np.ndarray:
    """Each head's output rows from llama.cpp's order (pairs of rotary halves interleaved:
    h0 a0, h0 b0, h0 a1, h0 b1, ...) back to transformers' (the first half, then the second).

    Example:
        >>> deinterleave_rotary(np.arange(8).reshape(8, 1), heads=2).ravel().tolist()
        [0, 2, 1, 3, 4, 6, 5, 7]
    """
    rows = projection.shape[0]
    halves = projection.reshape(heads, rows // heads // 2, 2, *projection.shape[1:])
    return halves.swapaxes(1, 2).reshape(projection.shape)


def to_dtype(values: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values in the bytes of ``dtype``; bf16 rounds to nearest even, as torch does.

    Example:
        >>> to_dtype(np.array([1.0, 1.00390625, -2.5], np.float32), "bfloat16").tolist()
        [16256, 16256, 49184]
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    if dtype == "float32":
        return values
    if dtype == "float16":
        return values.astype(np.float16)
    bits = values.view(np.uint32)
    rounded = ((bits + (0x7FFF + ((bits >> 16) & 1))) >> 16).astype(np.uint16)
    return np.where(np.isnan(values), np.uint16(0x7FC0), rounded)


def write_safetensors(path: Path, tensors: Iterator, load, dtype: str) -> int:
    """Streams ``(name, tensor)`` pairs into one safetensors file, loading each with ``load``
    when its turn comes; returns the number of values written."""
    items = list(tensors)
    size = np.dtype(np.float32).itemsize if dtype == "float32" else 2
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, tensor in items:
        count = int(np.prod(tensor.shape, dtype=np.int64))
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[dtype],
            "shape": list(tensor.rows_shape),
            "data_offsets": [offset, offset + count * size],
        }
        offset += count * size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    written = 0
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for _name, tensor in items:
            values = to_dtype(load(tensor), dtype)
            handle.write(values.tobytes())
            written += values.size
    return written


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
