"""Data-parallel training under `torchrun`: DistributedDataParallel over gloo (CPU) or nccl (GPU).

torchrun starts one process per worker and tells each its place through the environment (RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE): that protocol is read here and nowhere else. Every process builds the same batches
from the same seed and takes its share of each one (rank r of n takes examples r, r+n, ...), so the global batch,
the number of optimizer steps and the schedule are those of a single process; DDP averages the gradients. Only
rank 0 writes checkpoints, the model and the metrics. Without torchrun this is one process and changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from graft.core.hardware import Hardware


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel workers."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes."""
        return self.rank == 0


def world() -> World:
    """The world torchrun set up for this process (one process without torchrun)."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))


def setup(hw: Hardware) -> tuple[World, Hardware]:
    """Join the process group (gloo on CPU, nccl on CUDA) and place this worker: its GPU, or its share of cores."""
    w = world()
    if w.size == 1:
        return w, hw
    import torch
    import torch.distributed as dist

    if hw.device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        hw = replace(hw, device=torch.device("cuda", local))
    else:  # workers on one machine share its cores
        threads = max(1, hw.threads // int(os.environ.get("LOCAL_WORLD_SIZE", w.size)))
        torch.set_num_threads(threads)
        hw = replace(hw, threads=threads)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if hw.device.type == "cuda" else "gloo")
    return w, hw


def wrap(model, hw: Hardware, w: World):
    """The module the training step calls: DDP around `model` with several workers, `model` itself with one."""
    if w.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[hw.device.index] if hw.device.type == "cuda" else None)


def shard(idx: list[int], w: World) -> list[int]:
    """This worker's share of one batch."""
    return idx[w.rank::w.size] if w.size > 1 else idx


def finish(w: World) -> None:
    """Wait until every worker (rank 0 writing the model included) is done, then leave the group."""
    if w.size > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
