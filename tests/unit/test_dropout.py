"""The cheap CPU dropout: its keep rate, its gradient, its attention path and how it installs into a model."""

import pytest
import torch
from torch import nn

from graft.modalities.text.model import TextClassifier
from graft.train import dropout as gd


def tiny_classifier() -> TextClassifier:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, attn_implementation="sdpa")
    return TextClassifier(BertModel(config, add_pooling_layer=False), num_labels=3, dropout=0.1)


def batch():
    ids = torch.randint(1, 100, (4, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # padding on two rows: the attention mask is exercised
    mask[3, 3:] = 0
    return ids, mask


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_mask_keeps_one_minus_p_in_every_lane(p):
    torch.manual_seed(0)
    mask = gd.keep_mask((1000, 4000), p)
    assert mask.dtype == torch.bool and mask.shape == (1000, 4000)
    lanes = mask.view(-1, 4).float().mean(0)  # each 16-bit lane of the 64-bit draws on its own
    assert torch.allclose(lanes, torch.full((4,), 1 - p), atol=0.002)


def test_neighbouring_draws_are_independent():
    torch.manual_seed(0)
    m = gd.keep_mask((4_000_000,), 0.5).float()
    # P(both kept) of neighbours, and of elements four apart (same lane of consecutive draws): 0.25 when independent
    assert abs((m[:-1] * m[1:]).mean().item() - 0.25) < 0.002
    assert abs((m[:-4] * m[4:]).mean().item() - 0.25) < 0.002


def test_masks_follow_the_torch_seed():
    torch.manual_seed(7)
    a = gd.keep_mask((64, 64), 0.1)
    torch.manual_seed(7)
    b = gd.keep_mask((64, 64), 0.1)
    c = gd.keep_mask((64, 64), 0.1)
    assert torch.equal(a, b) and not torch.equal(b, c)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("p", [0.1, 0.5, 1e-6, 1 - 1e-6])
def test_a_float_mask_is_the_bool_mask_as_ones_and_zeros(dtype, p):
    torch.manual_seed(11)
    kept = gd.keep_mask((96, 50), p)
    torch.manual_seed(11)
    ones = gd.keep_mask((96, 50), p, dtype)
    assert ones.dtype == dtype and torch.equal(ones, kept.to(dtype))
    if p < 1e-4:  # a threshold of 0: every lane kept
        assert bool(kept.all())
    if p > 1 - 1e-4:  # a threshold of 2^15, which an int16 lane cannot reach: none kept
        assert not bool(kept.any())


def test_drop_gives_the_bits_of_multiplying_by_the_bool_mask():
    x = torch.randn(16, 24, dtype=torch.bfloat16)
    x[0, :3] = torch.tensor([float("nan"), -0.0, -1.5])
    torch.manual_seed(2)
    kept = gd.keep_mask(x.shape, 0.3)
    torch.manual_seed(2)
    y = gd.drop(x, 0.3)
    assert torch.equal(y.view(torch.int16), x.mul(kept).mul_(1 / 0.7).view(torch.int16))  # NaN and -0.0 too


def test_drop_scales_the_kept_values_and_their_gradient():
    x = torch.randn(256, 256).abs().add(0.1).requires_grad_()
    torch.manual_seed(3)
    y = gd.drop(x, 0.25)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)
    assert 0.73 < kept.float().mean() < 0.77
    assert gd.drop(x, 0.25, training=False) is x and gd.drop(x, 0.0) is x


def test_bf16_stays_bf16():
    x = torch.randn(8, 16, dtype=torch.bfloat16, requires_grad=True)
    y = gd.drop(x, 0.1)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and x.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("boolean", [True, False])
def test_attention_with_dropout_is_sdpa_with_the_mask(monkeypatch, boolean):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 5, 8) for _ in range(3))
    pad = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    pad[1, :, :, 3:] = False
    mask = pad if boolean else torch.zeros(pad.shape).masked_fill(~pad, torch.finfo(torch.float32).min)
    module = nn.Module().train()
    reference, _ = sdpa_attention_forward(module, q, k, v, mask, dropout=0.0, scaling=0.3)
    monkeypatch.setattr(gd, "keep_mask", lambda shape, p, dtype=torch.bool: torch.ones(shape, dtype=dtype))
    out, _ = gd.attention(module, q, k, v, mask, dropout=0.2, scaling=0.3)
    assert out.shape == reference.shape == (2, 5, 4, 8)
    assert torch.allclose(out * 0.8, reference, atol=1e-5)  # every weight kept, so only the 1 / (1 - p) scale


@pytest.mark.parametrize("training", [True, False])
def test_attention_gradients_are_sdpa_gradients(monkeypatch, training):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, 6, 8, requires_grad=True) for _ in range(3))
    pad = torch.ones(2, 1, 6, 6, dtype=torch.bool)
    pad[0, :, :, 4:] = False
    module = nn.Module().train(training)
    grad = torch.randn(2, 6, 3, 8)
    reference, _ = sdpa_attention_forward(module, q, k, v, pad, dropout=0.0, scaling=0.4)
    expected = torch.autograd.grad(reference, (q, k, v), grad)
    monkeypatch.setattr(gd, "keep_mask", lambda shape, p, dtype=torch.bool: torch.ones(shape, dtype=dtype))
    out, _ = gd.attention(module, q, k, v, pad, dropout=0.25 if training else 0.0, scaling=0.4)
    scale = 0.75 if training else 1.0  # every weight kept: only the 1 / (1 - p) scale differs
    got = torch.autograd.grad(out * scale, (q, k, v), grad)
    assert torch.allclose(out * scale, reference, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, expected))  # the softmax runs in fp32


def test_install_swaps_every_dropout_and_keeps_eval_outputs():
    net = tiny_classifier().eval()
    ids, mask = batch()
    before = net(ids, mask)
    gd.install(net)
    assert not any(type(m) is nn.Dropout for m in net.modules())
    assert sum(type(m) is gd.Dropout for m in net.modules()) == 8  # embeddings, 3 per layer, the head
    assert net.encoder.config._attn_implementation == gd.ATTENTION
    assert torch.allclose(net.eval()(ids, mask), before, atol=1e-5)  # SDPA's fused kernel before: same to rounding
    torch.manual_seed(5)
    a = net.train()(ids, mask)
    torch.manual_seed(5)
    b = net(ids, mask)
    assert torch.equal(a, b) and not torch.allclose(a, before)  # training: dropped, and reproducible per seed


def test_causal_attention_is_left_to_sdpa(monkeypatch):
    def fail(shape, p, dtype=torch.bool):
        raise AssertionError("the cheap path must not run for a causal (decoder) attention")

    monkeypatch.setattr(gd, "keep_mask", fail)
    module = nn.Module().train()
    module.is_causal = True
    q = torch.randn(1, 2, 4, 8)
    out, _ = gd.attention(module, q, q, q, None, dropout=0.1)
    assert out.shape == (1, 4, 2, 8)
