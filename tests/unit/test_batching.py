"""Dynamic batching's policy and the text modality's split of a batch into ONNX calls, without a model."""

import asyncio
import itertools
import time

import numpy as np
import pytest

from graft.modalities.text import calls
from graft.serve.batching import Batcher


def _cost(parts: list[np.ndarray], lengths: np.ndarray, call_tokens: float) -> float:
    return sum(call_tokens + len(p) * lengths[p].max() for p in parts)


def _cheapest(lengths: np.ndarray, call_tokens: float) -> float:
    """Every split of the sorted rows into contiguous calls, tried one by one."""
    order, n, best = np.argsort(lengths, kind="stable"), len(lengths), float("inf")
    for mask in itertools.product([0, 1], repeat=n - 1):
        cuts = [0, *[i + 1 for i, m in enumerate(mask) if m], n]
        best = min(best, _cost([order[a:b] for a, b in itertools.pairwise(cuts)], lengths, call_tokens))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_the_split_covers_every_row_once_and_is_the_cheapest(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 64, size=int(rng.integers(1, 10)))
    call_tokens = float(rng.choice([0, 10, 40, 400]))
    parts = calls.groups(lengths, call_tokens)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(lengths)))
    assert _cost(parts, lengths, call_tokens) == pytest.approx(_cheapest(lengths, call_tokens))


def test_equal_lengths_are_one_call_and_the_inputs_are_trimmed_to_each_calls_longest():
    assert len(calls.groups(np.full(32, 20), 40)) == 1
    mask = np.array([[1] * 5 + [0] * 55, [1] * 60, [1] * 6 + [0] * 54])
    feeds = {"input_ids": np.arange(180).reshape(3, 60), "attention_mask": mask}
    parts = calls.split(feeds, call_tokens=10)  # 1 call of 3 x 60 costs 190, 2 calls (5, 6 | 60) cost 92
    assert [(p.tolist(), f["input_ids"].shape) for p, f in parts] == [([0, 2], (2, 6)), ([1], (1, 60))]
    assert (parts[0][1]["input_ids"] == feeds["input_ids"][[0, 2], :6]).all()


def _submit_all(batcher: Batcher, sizes: list[int], arriving: int = 0) -> tuple[list[list[int]], float]:
    """Submit one request per size at once (with `arriving` more announced and never sent); the calls made."""
    seen = []

    def run(items: list) -> np.ndarray:
        seen.append(list(items))
        return np.array(items, dtype=np.float32)[:, None]

    async def go():
        started = time.perf_counter()
        holds = [batcher.arriving() for _ in range(arriving)]
        for h in holds:
            h.__enter__()
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, lambda: [h.__exit__(None, None, None) for h in holds])
        rows = await asyncio.gather(*(batcher.submit(run, list(range(s))) for s in sizes))
        assert [r.ravel().tolist() for r in rows] == [list(range(s)) for s in sizes]
        return time.perf_counter() - started

    seconds = asyncio.run(go())
    batcher.close()
    return seen, seconds


def test_a_lone_request_does_not_wait_for_the_delay():
    seen, seconds = _submit_all(Batcher(max_batch=32, max_delay_ms=5000), [1])
    assert seen == [[0]] and seconds < 2.5  # the delay is 5 s: nothing else was on its way


def test_queued_requests_share_a_call_up_to_max_batch_and_never_split():
    seen, _ = _submit_all(Batcher(max_batch=4, max_delay_ms=0), [1, 1, 2, 5, 1])
    assert [len(c) for c in seen] == [4, 5, 1]  # 1+1+2 fill a call; 5 runs alone; the last opens the next


def test_an_open_batch_waits_for_requests_being_read_until_they_stop_arriving():
    seen, seconds = _submit_all(Batcher(max_batch=32, max_delay_ms=5000), [1, 1], arriving=1)
    assert len(seen) == 1 and 0.25 < seconds < 2.5  # waited for the announced request (0.3 s), not the full delay
