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

On CPU, depthwise convolutions (one filter per channel: MobileNet, EfficientNet, ConvNeXt) are shared in fp32 too,
and run their forward pass in bf16 but their backward pass in fp32: oneDNN has no fast bf16 kernel for their
gradients on CPUs without AMX, except at 3x3 and stride 1, which stay in the bf16 copy (`fp32_backward`).
EfficientNet-Lite1's depthwise gradients, batch 32 at 128 px, took 327 ms a step in bf16 and 100 ms in fp32 (plus
8 ms of casts), while their forward pass is faster in bf16 (8 ms against 18 ms).
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn
from torch.nn.modules.utils import _pair
from torch.overrides import TorchFunctionMode

__all__ = ["Compute"]

SHARED = (nn.modules.batchnorm._BatchNorm, nn.Embedding)  # kept fp32 and shared with the model, not copied
LOW = torch.bfloat16


def _to_bf16(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
    """A shared fp32 embedding's rows, cast for the bf16 layers after it."""
    return output.to(LOW)


def depthwise(module: nn.Module) -> bool:
    """A 2-D convolution with one group per input channel."""
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def fp32_backward(module: nn.Module) -> bool:
    """A depthwise convolution whose gradients oneDNN computes faster in fp32 than in bf16 on CPU.

    All but 3x3 at stride 1, where its bf16 kernels are the faster ones (32 x 144 x 32 x 32: 2.4 ms against 4.8 ms
    in fp32, and no casts).
    """
    return depthwise(module) and not (tuple(module.kernel_size) == (3, 3) and tuple(module.stride) == (1, 1))


class _Fp32Backward(torch.autograd.Function):
    """conv2d with a bf16 forward pass and an fp32 backward pass (input, weight and bias gradients)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.save_for_backward(x, weight)
        ctx.conv = (_pair(stride), _pair(padding), _pair(dilation), groups, bias is not None)
        low = weight.to(LOW, memory_format=torch.channels_last)
        return torch.nn.functional.conv2d(x.to(LOW), low, None if bias is None else bias.to(LOW), stride, padding,
                                          dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups, has_bias = ctx.conv
        wide = dict(dtype=torch.float32, memory_format=torch.channels_last)
        gx, gw, gb = torch.ops.aten.convolution_backward(
            grad.to(**wide), x.to(**wide), weight.to(**wide), [weight.shape[0]] if has_bias else None, stride,
            padding, dilation, False, [0, 0], groups, [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias])
        return (None if gx is None else gx.to(x.dtype), None if gw is None else gw.contiguous(), gb,
                None, None, None, None)


class _DepthwiseInFp32Backward(TorchFunctionMode):
    """Routes depthwise conv2d calls made inside it through _Fp32Backward."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.conv2d or func is torch.conv2d:
            call = dict(zip(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), args), **kwargs)
            x, w, groups = call["input"], call["weight"], call.get("groups", 1)
            if groups > 1 and groups == x.shape[1] and not isinstance(call.get("padding", 0), str):
                return _Fp32Backward.apply(x, w, call.get("bias"), call.get("stride", 1), call.get("padding", 0),
                                           call.get("dilation", 1), groups)
        return func(*args, **kwargs)


def _forward_fp32_backward(forward, *args, **kwargs):
    with _DepthwiseInFp32Backward():
        return forward(*args, **kwargs)


class Compute:
    """A bf16 copy of `model` (convolution weights channels-last) for the training step; fp32 master weights stay.

    `net` is what the step calls; `to_master()` after each backward, `from_master()` after each optimizer step
    (and `from_master(everything=True)` after the master's weights were loaded from a checkpoint).
    """

    def __init__(self, model: nn.Module):
        self.net = copy.deepcopy(model)
        own = dict(model.named_modules())
        cpu = all(p.device.type == "cpu" for p in model.parameters())
        for name, module in self.net.named_modules():
            slow_bf16 = cpu and fp32_backward(module)
            if isinstance(module, SHARED) or slow_bf16:  # the model's own tensors: gradients land on the master
                module._parameters.update({k: own[name]._parameters[k] for k in module._parameters})
                module._buffers.update({k: own[name]._buffers[k] for k in module._buffers})
                if isinstance(module, nn.Embedding):
                    module.register_forward_hook(_to_bf16)
                if slow_bf16:
                    module.forward = functools.partial(_forward_fp32_backward, module.forward)
        shared = {id(t) for t in model.parameters()} | {id(t) for t in model.buffers()}
        with torch.no_grad():
            for module in self.net.modules():
                for store in (module._parameters, module._buffers):
                    for key, t in store.items():
                        if t is not None and id(t) not in shared and t.is_floating_point():
                            layout = torch.channels_last if t.dim() == 4 else torch.contiguous_format
                            low = t.data.to(LOW, memory_format=layout)
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
