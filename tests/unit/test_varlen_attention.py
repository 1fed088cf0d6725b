"""PyTorch's FlashAttention varlen kernel as a transformers attention implementation: the same
outputs and gradients as attending to each packed sample on its own (CUDA only)."""

import pytest

from distillery import train_sft
from distillery.errors import DistilleryError
from distillery.training import varlen_attention

from ..conftest import train_config

cuda_only = pytest.mark.skipif(
    not varlen_attention.available(), reason="needs torch.nn.attention.varlen and an sm80+ GPU"
)
LENGTHS = [7, 300, 1, 129, 600]


def test_boundaries_from_position_ids():
    import torch

    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    cu, longest = varlen_attention.boundaries(positions, 1, 9)
    assert cu.tolist() == [0, 3, 5, 9] and longest == 4
    # unpadded rows without position ids: one sample a row
    cu, longest = varlen_attention.boundaries(None, 2, 4)
    assert cu.tolist() == [0, 4, 8] and longest == 4


def test_explicit_choice_without_the_kernel_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(varlen_attention, "available", lambda: False)
    config = train_config(
        data="x",
        model="m",
        output=str(tmp_path),
        metrics="m.json",
        method="full",
        attn_implementation="torch_varlen",
    )
    with pytest.raises(DistilleryError, match="torch_varlen needs PyTorch"):
        train_sft.attention_implementation(config)


@cuda_only
def test_matches_per_sample_attention_forward_and_backward():
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    heads, kv_heads, dim, total = 8, 2, 64, sum(LENGTHS)
    options = dict(device="cuda", dtype=torch.bfloat16, requires_grad=True)
    q = torch.randn(1, heads, total, dim, **options)
    k = torch.randn(1, kv_heads, total, dim, **options)
    v = torch.randn(1, kv_heads, total, dim, **options)
    cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], device="cuda")
    out, _ = varlen_attention.varlen_attention_forward(
        None, q, k, v, None, scaling=dim**-0.5, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
        max_length_q=max(LENGTHS), max_length_k=max(LENGTHS),
    )  # fmt: skip
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    got = [out.detach(), q.grad, k.grad, v.grad]

    for t in (q, k, v):
        t.grad = None
    pieces = []
    for start, end in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True):
        piece = F.scaled_dot_product_attention(
            q[:, :, start:end],
            k[:, :, start:end].repeat_interleave(heads // kv_heads, dim=1),
            v[:, :, start:end].repeat_interleave(heads // kv_heads, dim=1),
            is_causal=True,
        )
        pieces.append(piece.transpose(1, 2))
    expected = torch.cat(pieces, dim=1)
    (expected * grad).sum().backward()
    for a, b in zip(got, [expected.detach(), q.grad, k.grad, v.grad], strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=3e-2, rtol=3e-2)


@cuda_only
@pytest.mark.parametrize("with_cu_seq_lens", [True, False])
def test_packed_row_gives_each_sample_its_own_logits(with_cu_seq_lens):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).to("cuda", torch.bfloat16).eval()
    ids = torch.randint(0, 512, (1, sum(LENGTHS)), device="cuda")
    positions = torch.cat([torch.arange(n) for n in LENGTHS]).unsqueeze(0).cuda()
    extra = {}
    if with_cu_seq_lens:
        cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], dtype=torch.int32)
        extra = dict(cu_seq_lens_q=cu.cuda(), cu_seq_lens_k=cu.cuda(),
                     max_length_q=max(LENGTHS), max_length_k=max(LENGTHS))  # fmt: skip
    with torch.no_grad():
        model.set_attn_implementation(varlen_attention.register())
        packed = model(input_ids=ids, position_ids=positions, **extra).logits[0]
        model.set_attn_implementation("sdpa")
        start = 0
        for n in LENGTHS:
            alone = model(input_ids=ids[:, start : start + n]).logits[0]
            torch.testing.assert_close(packed[start : start + n], alone, atol=5e-2, rtol=5e-2)
            start += n


def test_explicit_choice_needs_packing(tmp_path, monkeypatch):
    monkeypatch.setattr(varlen_attention, "available", lambda: True)
    config = train_config(
        data="x", model="m", output=str(tmp_path), metrics="m.json", method="full",
        attn_implementation="torch_varlen", packing=False,
    )  # fmt: skip
    with pytest.raises(DistilleryError, match="needs training.packing"):
        train_sft.attention_implementation(config)


@cuda_only
def test_fp32_inputs_without_autocast_give_an_fp32_output():
    """fp32 training (precision: fp32) feeds fp32 projections: the output must be fp32 too."""
    import torch

    q = torch.randn(1, 4, 16, 64, device="cuda")
    cu = torch.tensor([0, 6, 16], device="cuda")
    out, _ = varlen_attention.varlen_attention_forward(
        None, q, q[:, :2], q[:, :2], None, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
        max_length_q=10, max_length_k=10,
    )  # fmt: skip
    assert out.dtype == torch.float32 and out.shape == (1, 16, 4, 64)
