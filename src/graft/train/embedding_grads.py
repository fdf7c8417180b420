"""Embedding-table gradients without zeroing the whole table every step.

A dense embedding backward allocates a zero gradient as large as the table and adds the looked-up rows into it:
for MiniLM's 30,522 x 384 word embeddings that is a 47 MB fill, 10 ms of a ~340 ms CPU training step, to update the
few hundred rows a batch of tweets uses. Here the embedding runs with `sparse=True` (its backward returns just the
looked-up rows), and before the optimizer step the rows are added into a gradient buffer that is kept for the whole
run and is all zeros between steps: after the step only the rows that were written are zeroed again. The optimizer,
gradient clipping and checkpoints see an ordinary dense gradient, so AdamW's update (weight decay and moments of
every row included) is the same; only the order in which duplicate tokens' gradients are summed can differ.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RowGrads"]

MIN_ROWS = 1024  # smaller tables (positions, token types) are cheaper to zero than to track


class RowGrads:
    """Sparse backward for the big trainable embedding tables of `net`, densified into buffers kept across steps.

    Call `densify()` after the last backward before an optimizer step and `clear()` after the step. `net` is the
    module the step runs; its tables' weights may be shared with another module (the fp32 master model).
    """

    def __init__(self, net: nn.Module):
        self.tables = [m for m in net.modules() if isinstance(m, nn.Embedding) and m.weight.requires_grad
                       and m.num_embeddings >= MIN_ROWS]
        for m in self.tables:
            m.sparse = True
        self.buffers: dict[int, torch.Tensor] = {}
        self.written: list[tuple[torch.Tensor, torch.Tensor]] = []

    def densify(self) -> None:
        """Replace each table's sparse gradient with the kept dense buffer holding the same rows."""
        for m in self.tables:
            grad = m.weight.grad
            if grad is None or not grad.is_sparse:
                continue
            grad = grad.coalesce()
            rows = grad.indices()[0]
            buf = self.buffers.get(id(m.weight))
            if buf is None:
                buf = self.buffers[id(m.weight)] = torch.zeros_like(m.weight)
            buf.index_add_(0, rows, grad.values().to(buf.dtype))
            m.weight.grad = buf
            self.written.append((buf, rows))

    def touched(self) -> dict[int, torch.Tensor]:
        """{id(buffer): the rows written into it since the last clear}: all its other rows are zero.

        One entry per buffer: `densify` writes a table's buffer once per step (after it the gradient is dense).
        """
        return {id(buf): rows for buf, rows in self.written}

    def clear(self) -> None:
        """Zero the rows written since the last clear (the buffers are all zeros again)."""
        for buf, rows in self.written:
            buf.index_fill_(0, rows, 0.0)
        self.written = []
