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

On CPU, depthwise convolutions (one filter per channel: MobileNet, EfficientNet, ConvNeXt) run their forward pass in
bf16, but oneDNN's bf16 gradient kernels for them are fast only in some places on CPUs without AMX: the input
gradient at stride 1, the weight gradient of 3x3 filters (`bf16_gradients`). Elsewhere the gradient is computed in
fp32 from fp32 casts. For EfficientNet-Lite1 (batch 32, 128 px) the weight gradient of a 3x3 stride-2 layer on
32 x 96 x 65 x 65 took 1.6 ms in bf16 and 14 ms in fp32, its input gradient 39 ms in bf16 and 5 ms in fp32; a
5x5 stride-1 layer's input gradient 0.8 ms in bf16 and 1.2 in fp32, its weight gradient 20 ms in bf16 and 10 in
fp32. 3x3 stride-1 layers (both fast in bf16) stay in the bf16 copy; the others are shared in fp32, so a weight
gradient lands in the master's fp32 gradient either way.
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


def bf16_gradients(module: nn.Module) -> tuple[bool, bool]:
    """(input gradient, weight gradient): which of a depthwise convolution's gradients oneDNN's bf16 kernels do fast.

    The input gradient at stride 1 (32 x 240 x 16 x 16, 5x5: 0.8 ms, 1.2 in fp32; at stride 2 bf16 is 5-30x slower
    and fp32 is used); the weight gradient for 3x3 filters (32 x 96 x 65 x 65 at stride 2: 2.3 ms, 9.8 in fp32). For
    larger filters oneDNN's bf16 weight gradient is 2-3x slower than its fp32 one, and `depthwise_weight_grad` is
    faster than both. Measured on AVX512-BF16 without AMX, each kernel alone, casts included.
    """
    return tuple(module.stride) == (1, 1), tuple(module.kernel_size) == (3, 3)


def mixed_backward(module: nn.Module) -> bool:
    """A depthwise convolution with a gradient that oneDNN's bf16 kernels do slowly (shared with the master, fp32)."""
    return depthwise(module) and not all(bf16_gradients(module))


def depthwise_weight_grad(grad: torch.Tensor, x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                          padding: tuple[int, int], dilation: tuple[int, int]) -> torch.Tensor:
    """The weight gradient (C x 1 x kh x kw, fp32) of a depthwise conv2d, computed as another depthwise convolution.

    dW[c, i, j] = sum over n, h, w of grad[n, c, h, w] * x_padded[n, c, stride*h + dilation*i, ...]: for each
    (image, channel) pair, the padded input correlated with that pair's output gradient as a filter (dilated by the
    stride, stepped by the dilation). So one depthwise convolution over N*C channels gives every pair's k x k sum,
    and a sum over the images (in fp32) gives the gradient. In bf16 it is 1.4-2x faster than oneDNN's fp32
    weight-gradient kernel for 5x5 filters (32 x 240 x 16 x 16: 5.2 against 9.9 ms) and 3-4x faster than its bf16
    one; the products accumulate in fp32 inside oneDNN, like those of every other bf16 gradient in the copy.
    """
    ph, pw = padding
    xp = torch.nn.functional.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    n, c, hp, wp = xp.shape
    ho, wo = grad.shape[2:]
    planes = xp.permute(2, 3, 0, 1).reshape(1, hp, wp, n * c).permute(0, 3, 1, 2)  # one channel per (image, channel)
    filters = grad.contiguous().view(n * c, 1, ho, wo)
    out = torch.nn.functional.conv2d(planes, filters.to(planes.dtype), None, dilation, 0, stride, n * c)
    kh, kw = kernel
    return out.view(n, c, *out.shape[2:])[:, :, :kh, :kw].sum(0, dtype=torch.float32).unsqueeze(1)


class _MixedBackward(torch.autograd.Function):
    """A depthwise conv2d: bf16 forward pass, each gradient from the kernel that `low` names.

    The input gradient from oneDNN in bf16 or in fp32 (`low[0]`), the weight gradient from oneDNN's bf16 kernel or
    from `depthwise_weight_grad` (`low[1]`), the bias gradient in fp32.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, low):
        ctx.dtype, x = x.dtype, x.to(LOW)
        w = weight.to(LOW, memory_format=torch.channels_last)
        ctx.save_for_backward(x, weight, w)
        ctx.conv, ctx.low, ctx.has_bias = (_pair(stride), _pair(padding), _pair(dilation), False, [0, 0], groups), \
            low, bias is not None
        return torch.nn.functional.conv2d(x, w, None if bias is None else bias.to(LOW), stride, padding, dilation,
                                          groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight, w = ctx.saved_tensors
        (input_low, weight_low), conv = ctx.low, ctx.conv
        want_x, want_w, want_b = ctx.needs_input_grad[:3]
        gx = gw = None
        if want_x and input_low:
            gx = torch.ops.aten.convolution_backward(grad, x, w, None, *conv, [True, False, False])[0]
        elif want_x:  # the input's values are not read for its own gradient, only its shape and layout
            wide = dict(dtype=torch.float32, memory_format=torch.channels_last)
            gx = torch.ops.aten.convolution_backward(grad.to(**wide), torch.empty(x.shape, **wide), weight.to(**wide),
                                                     None, *conv, [True, False, False])[0]
        if want_w and weight_low:
            gw = torch.ops.aten.convolution_backward(grad, x, w, None, *conv, [False, True, False])[1]
        elif want_w:
            stride, padding, dilation = conv[:3]
            gw = depthwise_weight_grad(grad, x, tuple(weight.shape[2:]), stride, padding, dilation)
        gx = None if gx is None else gx.to(ctx.dtype)
        gw = None if gw is None else gw.to(torch.float32, memory_format=torch.contiguous_format)
        gb = grad.sum((0, 2, 3), dtype=torch.float32) if ctx.has_bias and want_b else None
        return gx, gw, gb, None, None, None, None, None


class _DepthwiseMixedBackward(TorchFunctionMode):
    """Routes the depthwise conv2d calls made inside it through _MixedBackward with the module's gradient dtypes."""

    def __init__(self, low: tuple[bool, bool]):
        super().__init__()
        self.low = low

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.conv2d or func is torch.conv2d:
            call = dict(zip(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), args), **kwargs)
            x, w, groups = call["input"], call["weight"], call.get("groups", 1)
            if groups > 1 and groups == x.shape[1] and not isinstance(call.get("padding", 0), str):
                return _MixedBackward.apply(x, w, call.get("bias"), call.get("stride", 1), call.get("padding", 0),
                                            call.get("dilation", 1), groups, self.low)
        return func(*args, **kwargs)


def _forward_mixed_backward(forward, low, *args, **kwargs):
    with _DepthwiseMixedBackward(low):
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
            mixed = cpu and mixed_backward(module)
            if isinstance(module, SHARED) or mixed:  # the model's own tensors: gradients land on the master
                module._parameters.update({k: own[name]._parameters[k] for k in module._parameters})
                module._buffers.update({k: own[name]._buffers[k] for k in module._buffers})
                if isinstance(module, nn.Embedding):
                    module.register_forward_hook(_to_bf16)
                if mixed:
                    module.forward = functools.partial(_forward_mixed_backward, module.forward,
                                                       bf16_gradients(module))
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
