"""Dropout for CPU training: the same masks as torch's, drawn about 3x cheaper.

On CPU, torch draws every dropout mask element with its own Bernoulli sample from the Mersenne Twister: 1.9 ms
for one 32 x 36 x 384 activation here, 18% of a MiniLM training step (20 dropouts a step, attention included).
`keep_mask` takes 64-bit draws from the same generator instead and splits each into four 15-bit lanes, kept when
the lane is at least round(p * 2^15): a keep probability exact to 1/32768 (p = 0.1 becomes 0.100006). Seeding,
determinism and the RNG state in checkpoints work as before, because the draws come from torch's default
generator. The mask comes in the dtype of the activation it multiplies (ones and zeros), which keeps the products
on torch's fast same-dtype path. `install` swaps a model's `nn.Dropout` modules and, for a transformers encoder,
its attention (whose dropout happens inside scaled-dot-product attention) for these; on CUDA torch's own run. In
eval mode nothing is dropped, and an encoder's attention on CPU runs the same two bf16 products (`attention`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ATTENTION = "graft_cpu_dropout"  # the name it is registered under in transformers' AttentionInterface
LANE_MASK, LANE_SPAN = 0x7FFF, 1 << 15  # int64 random_() spans [0, 2^63): 15 uniform bits in each 16-bit lane


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """A mask of `shape`: True (1 in a float `dtype`) with probability 1 - p, to 1/32768, from torch's generator.

    Ask for the dtype of the tensor it will multiply: a bool mask times a bf16 activation takes torch's mixed-dtype
    path, about 7x slower than the same product with a bf16 mask of ones and zeros (0.39 against 0.05 ms for
    32 x 38 x 384 here), and the results are the same bits.
    """
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_()
    lanes = words.view(torch.int16)[:n].view(shape) & LANE_MASK
    threshold = round(p * LANE_SPAN)
    if threshold == 0 or threshold >= LANE_SPAN:  # every lane kept, or none (2^15 does not fit an int16)
        return torch.full(shape, threshold == 0, dtype=dtype)
    if dtype == torch.bool:
        return lanes >= threshold
    # lane - (threshold - 1) is >= 1 exactly when the lane is kept; clamped to [0, 1] it is the mask (no overflow:
    # lanes are below 2^15 and threshold >= 1). Cheaper than comparing, which writes bools converted again after.
    return lanes.sub_(threshold - 1).clamp_(0, 1).to(dtype)


class _MaskedScale(torch.autograd.Function):
    """x * mask / (1 - p), with the same mask applied to the gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x.mul(mask).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad.mul(mask).mul_(ctx.scale), None, None


def drop(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: the cheap masks on CPU, torch's dropout elsewhere."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return nn.functional.dropout(x, p, True)
    return _MaskedScale.apply(x, keep_mask(x.shape, p, x.dtype), 1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """nn.Dropout with the cheap CPU masks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drop with probability p in training mode; identity in eval mode."""
        return drop(x, self.p, self.training)


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
              **kwargs) -> tuple[torch.Tensor, None]:
    """Encoder attention on CPU: softmax(q k^T * scaling + mask) in fp32, dropped when training, times v.

    Decoders (causal) and other devices keep transformers' SDPA.

    torch's SDPA has no fused CPU kernel with dropout, so training would run its math path, which upcasts bf16 to
    fp32 for both products. Without dropout its fused (flash) CPU kernel is slower than these two bf16 products for
    short texts: 5.5 ms against about 1 ms a layer for 64 tweets of ~40 tokens, so validation passes run this too.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    causal = kwargs.get("is_causal") or getattr(module, "is_causal", False)  # encoders only: decoders keep SDPA
    if causal or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    dropout = dropout if module.training else 0.0
    if key.shape[1] != query.shape[1]:  # grouped-query attention: repeat the key/value heads
        groups = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    # contiguous heads: matmul then folds batch and heads into a view instead of copying the transposed keys
    scores = torch.matmul(query.contiguous(), key.contiguous().transpose(-2, -1))
    bias = attention_mask
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        bias = torch.zeros(attention_mask.shape).masked_fill_(~attention_mask, torch.finfo(torch.float32).min)
    keep = keep_mask(scores.shape, dropout, torch.float32) if dropout > 0.0 else None
    probs = _Probabilities.apply(scores, bias, scaling or query.shape[-1] ** -0.5, keep, 1.0 / (1.0 - dropout))
    return torch.matmul(probs.to(value.dtype), value.contiguous()).transpose(1, 2).contiguous(), None


class _Probabilities(torch.autograd.Function):
    """Attention probabilities: softmax(scores * scaling + bias) in fp32, times keep / (1 - p) (no `keep`: no dropout).

    One autograd node, working in place, for what autograd would record as five (cast, scale, mask, softmax,
    dropout), each writing a new fp32 tensor of batch x heads x length x length in both passes. `bias` is 0 where
    attention is allowed and the most negative fp32 where not: those probabilities are exactly 0, and so are their
    gradients, as with masked_fill.
    """

    @staticmethod
    def forward(ctx, scores, bias, scaling, keep, keep_scale):
        s = scores.to(torch.float32, copy=True).mul_(scaling)
        if bias is not None:
            s.add_(bias)
        probs = s.softmax(-1)
        ctx.save_for_backward(probs, keep)
        ctx.scaling, ctx.keep_scale, ctx.dtype = scaling, keep_scale, scores.dtype
        return probs if keep is None else probs.mul(keep).mul_(keep_scale)

    @staticmethod
    def backward(ctx, grad):
        probs, keep = ctx.saved_tensors
        g = grad if keep is None else grad.mul(keep).mul_(ctx.keep_scale)
        return (torch._softmax_backward_data(g, probs, -1, torch.float32).mul_(ctx.scaling).to(ctx.dtype),
                None, None, None, None)


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def install(model: nn.Module) -> nn.Module:
    """Swap `model`'s dropouts (and a transformers encoder's SDPA attention) for the cheap CPU ones, in place.

    Saved models do not change: the weights are the same tensors, and a saved config does not name the attention.
    """
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p, child.inplace))
    encoder = getattr(model, "encoder", None)
    config = getattr(encoder, "config", None)
    if config is not None and getattr(config, "_attn_implementation", None) == "sdpa":
        _register()
        encoder.set_attn_implementation(ATTENTION)
    return model

