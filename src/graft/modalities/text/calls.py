"""How one served batch of texts is split into ONNX Runtime calls: by length, so padding costs little.

A batch of texts runs padded to its longest text, and every padded token costs as much as a real one. One call per
text pays ONNX Runtime's fixed cost per call instead, and loses the larger matrix products of a batch. `groups`
sorts the texts by length and cuts them into contiguous runs that minimise the modelled cost
`calls x call_tokens + sum over calls of rows x longest`, exactly (dynamic programming over the sorted lengths).
"""

from __future__ import annotations

import numpy as np

# ONNX Runtime's fixed cost of one call, in tokens of work. Measured for MiniLM-L3 on 2 cores (docs/serving.md): a
# token costs ~0.08 ms whether batched or not, a call ~0.5 ms more; batches of 32 test tweets ran fastest with
# 20-60 here (1.4x the padded batch), slower at 5 (too many calls) and 400 (padding again)
CALL_TOKENS = 40


def groups(lengths: np.ndarray, call_tokens: float = CALL_TOKENS) -> list[np.ndarray]:
    """Row positions, one array per call: each call's rows are of similar length; the cheapest split of all."""
    order = np.argsort(lengths, kind="stable")
    n = len(order)
    if n <= 1:
        return [order]
    sorted_len = lengths[order].astype(np.float64)
    best = np.zeros(n + 1)  # best[j]: the cheapest cost of the first j sorted rows
    cut = np.zeros(n + 1, dtype=np.int64)  # the first row of the last call in that split
    starts = np.arange(n)
    for j in range(1, n + 1):  # the last call holds sorted rows i..j-1, padded to sorted_len[j-1]
        cost = best[:j] + call_tokens + (j - starts[:j]) * sorted_len[j - 1]
        cut[j] = int(cost.argmin())
        best[j] = cost[cut[j]]
    out, j = [], n
    while j > 0:
        out.append(order[cut[j]:j])
        j = cut[j]
    return out[::-1]


def split(feeds: dict[str, np.ndarray], call_tokens: float = CALL_TOKENS) -> list[tuple[np.ndarray, dict]]:
    """A right-padded text batch's ONNX inputs as [(row positions, inputs trimmed to those rows' longest)]."""
    lengths = feeds["attention_mask"].sum(1)
    parts = []
    for rows in groups(lengths, call_tokens):
        width = max(int(lengths[rows].max()), 1)
        parts.append((rows, {k: np.ascontiguousarray(v[rows, :width]) for k, v in feeds.items()}))
    return parts
