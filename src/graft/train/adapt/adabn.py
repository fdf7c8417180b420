"""AdaBN (Li et al. 2016): after training, re-estimate every batch-norm layer's statistics on the target inputs.

Nothing else changes: no weight, no bias, no affine parameter; only each layer's running mean and variance, now
the cumulative average over the target pool in eval-free forward passes (momentum None), as the paper does.
"""

from __future__ import annotations

import torch
from torch import nn

from graft.core.errors import GraftError
from graft.train.adapt.base import Context, Method

BATCH = 64


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's batch-norm layers."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reestimate(model, encoded, device: torch.device, batch: int = BATCH) -> int:
    """Replace the batch-norm running statistics by the target inputs' (fp32, all layers); return the layer count."""
    layers = batch_norms(model)
    if not layers:
        raise GraftError("train.adapt=adabn: the backbone has no batch-norm layer to re-estimate")
    model.eval()
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all target batches
        m.train()
    for start in range(0, len(encoded), batch):
        model.features(**encoded.batch(list(range(start, min(start + batch, len(encoded)))), device))
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.eval()
    return len(layers)


class AdaBN(Method):
    """Batch-norm statistics of the target domain."""

    name = "adabn"

    def __init__(self, cfg):
        self.cfg = cfg

    def after(self, ctx: Context, retrain) -> dict:
        """Re-estimate on the whole target pool."""
        encoded = ctx.modality.encode(ctx.processor, ctx.target)
        layers = reestimate(ctx.model, encoded, ctx.hw.device)
        return {"batch_norm_layers": layers, "target_inputs": len(ctx.target)}
