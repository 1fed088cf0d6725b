"""Attention over padding-free packed batches with PyTorch's own FlashAttention varlen kernel.

TRL's padding-free collator flattens a micro-batch into one row and passes the sample boundaries
as ``cu_seq_lens_q``/``cu_seq_lens_k``. transformers uses them only through the flash-attn
package; without it a packed batch needs a per-sample mask (flex attention, or a dense SDPA
mask). ``torch.nn.attention.varlen.varlen_attn`` (PyTorch >= 2.10, CUDA) is the same
FlashAttention-2 kernel shipped inside PyTorch, so registering it as an attention
implementation gives packed training flash-attn's speed with no extra package.
"""

from __future__ import annotations

import functools
import inspect

NAME = "torch_varlen"


@functools.cache
def available() -> bool:
    """PyTorch has the varlen kernel and a CUDA GPU that runs it (FlashAttention-2: sm80+)."""
    import torch

    try:
        from torch.nn.attention import varlen  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


@functools.cache
def _kernel():
    from torch.nn.attention.varlen import varlen_attn

    params = inspect.signature(varlen_attn).parameters
    # PyTorch 2.10/2.11 take is_causal; later releases express causality as a window
    causal = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}
    return varlen_attn, causal, "enable_gqa" in params


def boundaries(position_ids, batch: int, tokens: int):
    """Sample boundaries of a flattened batch as transformers derives them for flash-attn (a
    sample starts wherever the position id restarts), as cumulative lengths and the longest
    sample; without position ids each row is one sample."""
    import torch
    from transformers.modeling_flash_attention_utils import prepare_fa_kwargs_from_position_ids

    if position_ids is None:
        position_ids = torch.arange(tokens)
    (cu, _), (longest, _) = prepare_fa_kwargs_from_position_ids(position_ids.expand(batch, -1))
    return cu, int(longest)


def varlen_attention_forward(
    module,
    query,
    key,
    value,
    attention_mask,
    scaling: float | None = None,
    dropout: float = 0.0,
    cu_seq_lens_q=None,
    cu_seq_lens_k=None,
    max_length_q: int | None = None,
    max_length_k: int | None = None,
    **kwargs,
):
    """transformers' attention interface: query/key/value are (batch, heads, tokens, head_dim);
    returns (batch, tokens, heads, head_dim) and no weights."""
    import torch

    if dropout:
        raise ValueError(f"{NAME} attention has no dropout; set the model's attention_dropout to 0")
    batch, heads, tokens, head_dim = query.shape
    if cu_seq_lens_q is None:
        if attention_mask is not None or key.shape[2] != tokens:
            raise ValueError(
                f"{NAME} attention is for training on unpadded or padding-free batches; load "
                "the model with attn_implementation='sdpa' for padded batches or generation"
            )
        cu_seq_lens_q, max_length_q = boundaries(kwargs.get("position_ids"), batch, tokens)
    if cu_seq_lens_k is None:
        cu_seq_lens_k, max_length_k = cu_seq_lens_q, max_length_q
    # the kernel computes in bf16/fp16 only: fp32 inputs (fp32 training without autocast) are
    # attended in bf16 and the output returned in fp32, as the next projection expects
    dtype = query.dtype
    if dtype == torch.float32:
        dtype = (
            torch.get_autocast_dtype("cuda")
            if torch.is_autocast_enabled("cuda")
            else torch.bfloat16
        )
    # (batch, heads, tokens, dim) -> (batch * tokens, heads, dim)
    q, k, v = (
        t.transpose(1, 2).reshape(batch * t.shape[2], t.shape[1], head_dim).to(dtype)
        for t in (query, key, value)
    )
    kernel, causal, gqa = _kernel()
    extra = dict(causal)
    if k.shape[1] != heads:
        if gqa:
            extra["enable_gqa"] = True
        else:
            k = k.repeat_interleave(heads // k.shape[1], dim=1)
            v = v.repeat_interleave(heads // v.shape[1], dim=1)
    out = kernel(
        q,
        k,
        v,
        cu_seq_lens_q.to(torch.int32),
        cu_seq_lens_k.to(torch.int32),
        int(max_length_q),
        int(max_length_k),
        scale=scaling,
        **extra,
    )
    return out.view(batch, tokens, heads, head_dim).to(query.dtype), None


def register() -> str:
    """Make ``attn_implementation=NAME`` loadable; returns NAME."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

    AttentionInterface.register(NAME, varlen_attention_forward)
    # the same mask contract as flash-attn: None for unpadded batches, else the 2-D mask
    AttentionMaskInterface.register(NAME, flash_attention_mask)
    return NAME
