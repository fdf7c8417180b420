import pytest
import torch
from torch import nn

from graft.core import hardware
from graft.core.config import TrainConfig
from graft.core.errors import GraftError
from graft.train import loop, optim


class Tiny(nn.Module):
    """The shape optim expects of a Classifier: an encoder with encoder.layer blocks and a head."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.embeddings = nn.Linear(4, 4)
        self.encoder.encoder = nn.Module()
        self.encoder.encoder.layer = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.head = nn.Linear(4, 2)


def lr_of(opt, param):
    return next(g["lr"] for g in opt.param_groups if any(p is param for p in g["params"]))


def test_layer_wise_decay_gives_each_depth_its_rate():
    m = Tiny()
    opt = optim.optimizer(m, TrainConfig(learning_rate=1.0, layer_lr_decay=0.5, head_learning_rate=2.0))
    assert lr_of(opt, m.head.weight) == 2.0
    assert [lr_of(opt, b.weight) for b in m.encoder.encoder.layer] == [0.125, 0.25, 0.5]
    assert lr_of(opt, m.encoder.embeddings.weight) == 0.0625


def test_weight_decay_skips_biases_and_the_optimizer_kinds():
    m = Tiny()
    opt = optim.optimizer(m, TrainConfig(weight_decay=0.1))
    assert isinstance(opt, torch.optim.AdamW)
    assert next(g["weight_decay"] for g in opt.param_groups if any(p is m.head.bias for p in g["params"])) == 0
    assert next(g["weight_decay"] for g in opt.param_groups if any(p is m.head.weight for p in g["params"])) == 0.1
    sgd = optim.optimizer(m, TrainConfig(optimizer="sgd", momentum=0.8))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.8
    assert type(optim.optimizer(m, TrainConfig(optimizer="adam"))) is torch.optim.Adam


def test_partial_freezes_all_but_the_top_blocks_and_checks_the_count():
    m = Tiny()
    optim.freeze(m, TrainConfig(mode="partial", unfreeze_top=1))
    assert [b.weight.requires_grad for b in m.encoder.encoder.layer] == [False, False, True]
    assert not m.encoder.embeddings.weight.requires_grad and m.head.weight.requires_grad
    with pytest.raises(GraftError, match="unfreeze_top=4 exceeds the backbone's 3 blocks"):
        optim.freeze(Tiny(), TrainConfig(mode="partial", unfreeze_top=4))


@pytest.mark.parametrize("size", [0.01, 10.0])
def test_clipping_inside_the_fused_step_matches_clip_then_step(size):
    torch.manual_seed(0)
    ours, theirs = [[nn.Parameter(torch.randn(300, 8)), nn.Parameter(torch.randn(8))] for _ in range(2)]
    for a, b in zip(ours, theirs):
        b.data.copy_(a.data)
    rows = torch.tensor([3, 40, 299])
    grad = torch.zeros(300, 8).index_copy_(0, rows, torch.randn(3, 8) * size)
    for params in (ours, theirs):
        params[0].grad, params[1].grad = grad.clone(), torch.full((8,), size)
    norm = torch.linalg.vector_norm(torch.cat([grad.flatten(), torch.full((8,), size)]))
    scale = optim.clip_scale(ours, 1.0, {id(ours[0].grad): rows})
    assert scale.item() == (1.0 if size < 1 else pytest.approx((norm.item() + 1e-6) / 1.0, rel=1e-6))
    opt_ours = torch.optim.AdamW(ours, lr=0.1, weight_decay=0.01, fused=True)
    opt_theirs = torch.optim.AdamW(theirs, lr=0.1, weight_decay=0.01, fused=True)
    optim.step(opt_ours, ours, 1.0, {id(ours[0].grad): rows})
    torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=True)
    opt_theirs.step()
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-6) and not torch.equal(a, torch.zeros_like(a))
    assert not hasattr(opt_ours, "grad_scale")  # the factor does not outlive the step


def test_the_clipping_factor_of_row_gradients_alone():
    table = nn.Parameter(torch.zeros(50, 4))
    rows = torch.tensor([1, 7])
    table.grad = torch.zeros(50, 4).index_fill_(0, rows, 3.0)  # norm sqrt(2 * 4 * 9) = 8.49
    assert optim.clip_scale([table], 1.0, {id(table.grad): rows}).item() == pytest.approx(72 ** 0.5, rel=1e-6)


@pytest.mark.parametrize("schedule, expected", [
    ("linear", [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]),
    ("cosine", [0.5, 1.0, 1.0, 0.8536, 0.5, 0.1464]),
    ("constant", [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
])
def test_warmup_then_decay(schedule, expected):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = optim.scheduler(opt, TrainConfig(schedule=schedule, warmup_ratio=0.34), total=6)  # 2 warmup steps
    got = []
    for _ in range(6):
        got.append(round(opt.param_groups[0]["lr"], 4))
        opt.step()
        sched.step()
    assert got == expected


def test_balanced_class_weights_and_label_smoothing():
    import numpy as np

    fn = optim.loss_fn(TrainConfig(class_weights="balanced", label_smoothing=0.1), np.array([0, 0, 0, 1]), 2)
    assert fn.weight.tolist() == pytest.approx([4 / 6, 2.0]) and fn.label_smoothing == 0.1


def test_bucketed_batches_cover_every_example_once_with_similar_lengths():
    lengths = [(i * 37) % 64 + 1 for i in range(500)]
    batches = loop.bucketed(lengths, 32, torch.Generator().manual_seed(0))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(500))
    spread = max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread <= 8  # one chunk of 50 batches: sorted, so a batch spans few lengths
    again = loop.bucketed(lengths, 32, torch.Generator().manual_seed(0))
    assert again == batches


def test_native_bf16_is_read_from_the_cpu_flags():
    assert hardware.cpu_has_native_bf16("flags : fpu avx512f avx512_bf16 sse")
    assert hardware.cpu_has_native_bf16("flags : amx_bf16 amx_tile")
    assert not hardware.cpu_has_native_bf16("flags : fpu avx2 avx512f")


def test_explicit_settings_win_and_a_missing_gpu_is_a_clear_error():
    hw = hardware.resolve(TrainConfig(precision="fp32", device="cpu", threads=1))
    assert (hw.device.type, hw.precision, hw.threads, torch.get_num_threads()) == ("cpu", "fp32", 1, 1)
    torch.set_num_threads(hardware.available_cores())
    if not torch.cuda.is_available():
        with pytest.raises(GraftError, match="no CUDA device"):
            hardware.resolve(TrainConfig(device="cuda"))


MMAPPED_AFTER_ALLOC = """
import ctypes, sys
import torch
from graft.core import hardware

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Mallinfo2
applied = hardware.keep_freed_memory() if sys.argv[1] == "keep" else None
before = libc.mallinfo2().hblkhd
block = torch.zeros(64 << 18)  # 64 MB of float32
print(applied, libc.mallinfo2().hblkhd - before >= 64 << 20)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "confstr") or "glibc" not in
                    __import__("os").confstr("CS_GNU_LIBC_VERSION").lower(), reason="glibc's malloc only")
def test_large_tensors_come_from_the_heap_once_freed_memory_is_kept():
    import subprocess
    import sys

    def mapped(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", MMAPPED_AFTER_ALLOC, mode], capture_output=True, text=True,
                              check=True).stdout.split()

    assert mapped("default") == ["None", "True"]  # glibc's default: a 64 MB block is a fresh mapping
    assert mapped("keep") == ["True", "False"]  # kept: it comes from the heap, where freed blocks are reused


def test_the_best_epoch_is_the_higher_macro_f1_and_on_a_tie_the_lower_loss():
    best = {"val_macro_f1": 0.916, "val_loss": 0.2857}
    assert loop.improves({"val_macro_f1": 0.916, "val_loss": 0.2654}, best)
    assert not loop.improves({"val_macro_f1": 0.916, "val_loss": 0.2857}, best)  # an exact tie keeps the earlier
    assert not loop.improves({"val_macro_f1": 0.912, "val_loss": 0.1}, best)
    assert loop.improves({"val_macro_f1": 0.920, "val_loss": 0.9}, best)
    assert loop.improves({"val_macro_f1": 0.5, "val_loss": 9.9}, None)
    assert loop.improves({"val_macro_f1": 0.916, "val_loss": 0.3}, {"val_macro_f1": 0.916})  # saved without a loss
