"""The bf16 compute copy with fp32 master weights, and embedding gradients without the full-table zeroing."""

import copy

import pytest
import torch
from torch import nn

from graft.train import optim
from graft.train.embedding_grads import RowGrads
from graft.train.precision import Compute, bf16_gradients, depthwise_weight_grad, mixed_backward


class Tiny(nn.Module):
    """An embedding table, a convolution with batch norm and a linear head: every kind Compute treats apart."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(2000, 16)
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.lin = nn.Linear(20, 3)

    def forward(self, ids, pixels):
        words = self.emb(ids).mean(1)
        maps = self.bn(self.conv(pixels)).mean((2, 3))
        return self.lin(torch.cat([words, maps.to(words.dtype)], 1))


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2000, (8, 5), generator=gen), torch.randn(8, 1, 6, 6, generator=gen)


def loss_of(net, ids, pixels):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(ids, pixels)
    return nn.functional.cross_entropy(out.float(), torch.arange(8) % 3)


def test_the_copy_is_bf16_channels_last_and_shares_embeddings_and_batch_norm():
    torch.manual_seed(0)
    model = Tiny()
    net = Compute(model).net
    assert net.emb.weight is model.emb.weight and net.bn.running_mean is model.bn.running_mean
    assert net.bn.weight is model.bn.weight
    assert net.lin.weight.dtype == torch.bfloat16 and net.conv.weight.dtype == torch.bfloat16
    assert net.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.lin.weight.dtype == torch.float32 and model.conv.weight.is_contiguous()
    assert torch.equal(net.lin.weight, model.lin.weight.to(torch.bfloat16))


def test_gradients_go_to_the_fp32_master_and_updates_come_back_to_the_copy():
    torch.manual_seed(0)
    model = Tiny()
    reference = copy.deepcopy(model)
    compute = Compute(model)
    compute.net.train()
    ids, pixels = batch()
    loss_of(compute.net, ids, pixels).backward()
    compute.to_master()
    loss_of(reference, ids, pixels).backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.allclose(p.grad, q.grad, rtol=0.1, atol=2e-3), name  # bf16 activations: close, not equal
    assert all(p.grad is None for p, _ in compute.trainable)
    assert not torch.equal(model.bn.running_mean, torch.zeros(4))  # the copy's forward updated the model's stats
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    compute.from_master()
    for p, m in compute.pairs:
        assert torch.equal(p, m.to(torch.bfloat16))


def test_gradients_accumulate_in_fp32_over_several_backwards():
    torch.manual_seed(0)
    model = Tiny()
    compute = Compute(model)
    for seed in (0, 1):
        loss_of(compute.net, *batch(seed)).backward()
        compute.to_master()
    once = copy.deepcopy(model.lin.weight.grad)
    model.zero_grad(set_to_none=True)
    loss_of(compute.net, *batch(0)).backward()
    compute.to_master()
    first = model.lin.weight.grad.clone()
    model.zero_grad(set_to_none=True)
    loss_of(compute.net, *batch(1)).backward()
    compute.to_master()
    assert torch.allclose(once, first + model.lin.weight.grad)


def test_weights_loaded_into_the_master_reach_the_copy():
    torch.manual_seed(0)
    model = Tiny()
    compute = Compute(model)
    other = Tiny()
    model.load_state_dict(other.state_dict())
    compute.from_master(everything=True)
    assert torch.equal(compute.net.conv.weight, other.conv.weight.to(torch.bfloat16))
    assert torch.equal(compute.net.emb.weight, other.emb.weight)


def embedding_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(5000, 8), nn.Flatten(), nn.Linear(40, 2))


def run(model, rows: RowGrads | None, steps=3):
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1, fused=True)
    grads = []
    for step in range(steps):
        ids = torch.randint(0, 5000, (16, 5), generator=torch.Generator().manual_seed(step))
        ids[:, 0] = 7  # a repeated token: its row sums many contributions
        nn.functional.cross_entropy(model(ids), torch.arange(16) % 2).backward()
        if rows:
            rows.densify()
        grads.append(model[0].weight.grad.clone())
        if rows:  # the loop's way: clipped inside the fused step, the table's norm over its written rows
            optim.step(opt, list(model.parameters()), 1.0, rows.touched())
        else:
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1.0, foreach=True)
            opt.step()
        opt.zero_grad(set_to_none=True)
        if rows:
            rows.clear()
    return grads


def test_row_gradients_match_the_dense_gradient_and_the_buffer_is_zero_between_steps():
    dense_model, sparse_model = embedding_model(), embedding_model()
    rows = RowGrads(sparse_model)
    assert rows.tables == [sparse_model[0]]
    dense, sparse = run(dense_model, None), run(sparse_model, rows)
    for d, s in zip(dense, sparse):
        assert torch.allclose(d, s, atol=1e-7)
    for a, b in zip(dense_model.parameters(), sparse_model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)  # every row moved alike: weight decay and moments included
    (buf,) = rows.buffers.values()
    assert torch.count_nonzero(buf) == 0 and rows.written == []


def test_small_or_frozen_tables_are_left_dense():
    model = nn.Sequential(nn.Embedding(100, 4), nn.Embedding(5000, 4))
    model[1].weight.requires_grad_(False)
    assert RowGrads(model).tables == []
    assert not model[0].sparse and not model[1].sparse


@pytest.mark.parametrize("kernel,stride,low", [(5, 1, (True, False)), (3, 2, (False, True)), (5, 2, (False, False))])
def test_depthwise_convolutions_stay_fp32_with_each_gradient_in_its_faster_dtype(kernel, stride, low):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, kernel, stride=stride, padding=kernel // 2, groups=4)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), conv, nn.Conv2d(4, 4, 3, padding=1, groups=4))
    assert bf16_gradients(conv) == low and mixed_backward(conv) and not mixed_backward(model[2])
    compute = Compute(model)
    assert compute.net[1].weight is conv.weight and conv.weight.dtype == torch.float32
    assert compute.net[0].weight.dtype == torch.bfloat16  # an ordinary convolution is copied in bf16
    assert compute.net[2].weight.dtype == torch.bfloat16  # so is a 3x3 stride-1 depthwise one: bf16 is faster there
    compute.net = compute.net[:2]
    seen = {}
    compute.net[1].register_forward_hook(lambda m, args, out: seen.update(x=args[0], out=out))
    pixels = torch.randn(2, 3, 9, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = compute.net(pixels)
    assert out.dtype == torch.bfloat16 and seen["out"].grad_fn.name() == "_MixedBackwardBackward"
    seen["x"].retain_grad()
    grad = torch.randn_like(out)
    out.backward(grad)
    conv_args = ([stride] * 2, [kernel // 2] * 2, [1, 1], False, [0, 0], 4)
    expected = {}
    for dtype in (torch.float32, torch.bfloat16):
        cast = dict(dtype=dtype, memory_format=torch.channels_last)
        expected[dtype] = torch.ops.aten.convolution_backward(grad.to(**cast), seen["x"].to(**cast),
                                                              conv.weight.to(**cast), [4], *conv_args, [True] * 3)
    gx = expected[torch.bfloat16 if low[0] else torch.float32][0]
    gw = expected[torch.bfloat16][1] if low[1] else \
        depthwise_weight_grad(grad, seen["x"], (kernel, kernel), (stride, stride), (kernel // 2,) * 2, (1, 1))
    assert torch.equal(seen["x"].grad, gx.to(torch.bfloat16))
    assert conv.weight.grad.dtype == torch.float32 and torch.equal(conv.weight.grad, gw.float())  # into the master
    assert torch.allclose(conv.weight.grad, expected[torch.float32][1], rtol=0.02, atol=0.02)
    assert torch.allclose(conv.bias.grad, expected[torch.float32][2], atol=1e-5)
    with torch.no_grad():  # the forward pass: bf16 weights on the bf16 input
        low_out = nn.functional.conv2d(seen["x"], conv.weight.to(torch.bfloat16), conv.bias.to(torch.bfloat16),
                                       stride=stride, padding=kernel // 2, groups=4)
    assert torch.equal(out, low_out)


@pytest.mark.parametrize("kernel,stride,padding,dilation,size", [
    ((5, 5), (1, 1), (2, 2), (1, 1), (9, 9)), ((5, 5), (2, 2), (0, 0), (1, 1), (11, 11)),
    ((3, 3), (2, 2), (1, 1), (1, 1), (8, 8)), ((3, 5), (2, 1), (1, 2), (2, 1), (10, 7)),
    ((3, 3), (2, 2), (0, 0), (1, 1), (10, 10)),  # the last row and column reach no output: no gradient there
])
def test_the_depthwise_weight_gradient_as_a_convolution_matches_torchs(kernel, stride, padding, dilation, size):
    torch.manual_seed(0)
    x = torch.randn(3, 4, *size, requires_grad=True)
    weight = torch.randn(4, 1, *kernel, requires_grad=True)
    out = nn.functional.conv2d(x, weight, None, stride, padding, dilation, 4)
    grad = torch.randn_like(out)
    out.backward(grad)
    mine = depthwise_weight_grad(grad, x.detach(), kernel, stride, padding, dilation)
    assert mine.shape == weight.shape and mine.dtype == torch.float32
    assert torch.allclose(mine, weight.grad, atol=1e-5)
    low = depthwise_weight_grad(grad.bfloat16(), x.detach().bfloat16(), kernel, stride, padding, dilation)
    assert torch.allclose(low, weight.grad, rtol=0.02, atol=0.05)  # bf16 products, fp32 sums


def test_symmetric_same_padding_moves_into_the_convolution_with_the_same_outputs():
    from efficientnet_lite_pytorch import EfficientNet

    from graft.modalities.image.model import pad_in_convolutions

    torch.manual_seed(0)
    stock = EfficientNet.from_name("efficientnet-lite0", image_size=64).eval()
    folded = pad_in_convolutions(copy.deepcopy(stock))
    pads = [m for m in folded.modules() if isinstance(getattr(m, "static_padding", None), nn.ZeroPad2d)]
    assert pads and all(tuple(m.stride) == (2, 2) for m in pads)  # only the asymmetric (stride-2) ones keep a pad layer
    assert sum(isinstance(getattr(m, "static_padding", None), nn.ZeroPad2d) for m in stock.modules()) > len(pads)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(stock(x), folded(x))
    assert stock.state_dict().keys() == folded.state_dict().keys()
