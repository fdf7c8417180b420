"""Batches for the training loop: shuffled, with examples of similar length grouped (group_by_length)."""

from __future__ import annotations

import torch

__all__ = ["bucketed"]


def bucketed(lengths: list[int], batch_size: int, gen: torch.Generator, megabatch: int = 50) -> list[list[int]]:
    """Shuffled batches of similar-length examples: shuffle, sort within chunks of 50 batches, shuffle batches."""
    order = torch.randperm(len(lengths), generator=gen).tolist()
    out = []
    for i in range(0, len(order), batch_size * megabatch):
        chunk = sorted(order[i:i + batch_size * megabatch], key=lengths.__getitem__)
        out += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]
