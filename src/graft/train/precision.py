"""bf16 training with fp32 master weights: the step runs a bf16 copy of the model, the optimizer updates fp32.

Under autocast the weights and the residual stream stay fp32 and every matmul's inputs are cast to bf16 on each
use; the element-wise work (layer norm, GELU, dropout, residual adds) then moves twice the bytes it would in bf16.
`Compute` holds a bf16 copy of the model for the forward and backward passes, in the memory layout convolutions
run fastest in on CPU (channels-last); the model itself keeps its fp32 weights — the master copy: what the
optimizer updates and what checkpoints, the best epoch and the saved model hold — so nothing outside the step
changes. After each backward the bf16 gradients are added into the master's fp32 gradients; after each optimizer
step the updated master weights are cast back into the copy. The step runs under autocast as before: it casts
what enters the copy (pixels, a target batch's features) to bf16, and leaves bf16 operands alone.

Two kinds of layer stay fp32 and are shared with the model, not copied: batch norm (torch runs it on bf16 inputs with
fp32 statistics, and its running statistics must stay the model's) and embedding tables (a step reads and updates
a few hundred of MiniLM's 30,522 rows, while casting the whole 47 MB table and its gradient both ways cost ~12 ms a
step; the looked-up rows are cast to bf16 instead).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["Compute"]

SHARED = (nn.modules.batchnorm._BatchNorm, nn.Embedding)  # kept fp32 and shared with the model, not copied


def _to_bf16(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
    """A shared fp32 embedding's rows, cast for the bf16 layers after it."""
    return output.to(torch.bfloat16)


class Compute:
    """A bf16 copy of `model` (convolution weights channels-last) for the training step; fp32 master weights stay.

    `net` is what the step calls; `to_master()` after each backward, `from_master()` after each optimizer step
    (and `from_master(everything=True)` after the master's weights were loaded from a checkpoint).
    """

    def __init__(self, model: nn.Module):
        self.net = copy.deepcopy(model)
        own = dict(model.named_modules())
        for name, module in self.net.named_modules():
            if isinstance(module, SHARED):  # the model's own tensors: gradients land on the master directly
                module._parameters.update({k: own[name]._parameters[k] for k in module._parameters})
                module._buffers.update({k: own[name]._buffers[k] for k in module._buffers})
                if isinstance(module, nn.Embedding):
                    module.register_forward_hook(_to_bf16)
        shared = {id(t) for t in model.parameters()} | {id(t) for t in model.buffers()}
        with torch.no_grad():
            for module in self.net.modules():
                for store in (module._parameters, module._buffers):
                    for key, t in store.items():
                        if t is not None and id(t) not in shared and t.is_floating_point():
                            layout = torch.channels_last if t.dim() == 4 else torch.contiguous_format
                            low = t.data.to(torch.bfloat16, memory_format=layout)
                            if isinstance(t, nn.Parameter):
                                t.data = low
                            else:
                                store[key] = low
        master = dict(model.named_parameters())
        self.pairs = [(p, master[n]) for n, p in self.net.named_parameters() if id(p) not in shared]
        self.trainable = [(p, m) for p, m in self.pairs if m.requires_grad]

    def to_master(self) -> None:
        """Add the copy's bf16 gradients into the master's fp32 gradients (accumulating), and clear the copy's."""
        for p, m in self.trainable:
            if p.grad is None:
                continue
            if m.grad is None:
                m.grad = torch.empty_like(m).copy_(p.grad)  # fp32, in the master's layout
            else:
                m.grad.add_(p.grad)
            p.grad = None

    @torch.no_grad()
    def from_master(self, everything: bool = False) -> None:
        """Cast the master weights into the copy: the trainable ones, or `everything` (after loading weights)."""
        pairs = self.pairs if everything else self.trainable
        if pairs:
            torch._foreach_copy_([p for p, _ in pairs], [m for _, m in pairs])
