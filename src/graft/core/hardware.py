"""Where and how tensors run: device, precision and CPU threads, resolved once from `train` settings.

`auto` means: CUDA when present (never required); bf16 autocast where the hardware computes bf16 natively
(AVX512-BF16 or AMX on CPU, a bf16-capable GPU), fp32 otherwise; as many CPU threads as cores this process may use.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from graft.core.config import TrainConfig
from graft.core.errors import GraftError

if TYPE_CHECKING:  # torch is imported where tensors are touched: graft.serve.predict uses this module without it
    import torch


@dataclass(frozen=True)
class Hardware:
    """The resolved device, autocast precision and thread count."""

    device: torch.device
    precision: str  # "bf16" or "fp32"
    threads: int

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the device, or nothing."""
        import torch

        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU flags list AVX512-BF16 or AMX-BF16 (Linux /proc/cpuinfo; elsewhere False)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    flags = set(cpuinfo.split())
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


KEEP_BLOCKS_BELOW = 256 << 20  # malloc serves blocks below this from its heap, not from fresh mmap'd pages
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep large freed blocks for reuse instead of unmapping them; True where applied.

    Above its mmap threshold (at most 32 MB by default) glibc maps every allocation afresh and unmaps it on free,
    so the next one page-faults in every 4 KB page again. Training reallocates the same big tensors each step (the
    word-embedding gradient is 47 MB): zero-filling it took 12-14 ms in fresh pages and 1-2 ms in reused memory,
    and a MiniLM epoch 7.2 s without this and 6.4 s with it (medians of 3 fresh processes). Raising the thresholds keeps
    such blocks in the heap (docs/training.md). Other C libraries: nothing to do, False.
    """
    libc = ctypes.CDLL(None)  # the symbols this process already has loaded, the C library's among them
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP_BLOCKS_BELOW)) and \
        bool(libc.mallopt(M_TRIM_THRESHOLD, 4 * KEEP_BLOCKS_BELOW))


def resolve(cfg: TrainConfig) -> Hardware:
    """Resolve `device`, `precision` and `threads`; apply the thread count to torch and keep freed memory."""
    import torch

    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
            raise GraftError("train.device is cuda, but no CUDA device is available (use auto or cpu)")
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and cuda) else "cpu")
    if cfg.precision != "auto":
        precision = cfg.precision
    elif device.type == "cuda":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    else:
        precision = "bf16" if cpu_has_native_bf16() else "fp32"
    threads = cfg.threads or available_cores()
    torch.set_num_threads(threads)
    keep_freed_memory()
    return Hardware(device, precision, threads)
