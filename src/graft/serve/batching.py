"""Dynamic batching: concurrent requests share one ONNX Runtime call.

The first request to arrive opens a batch. The batch closes as soon as it holds `max_batch` inputs (a request larger
than that runs alone, never split), `max_delay_ms` after its first request arrived, or when no other request is on
its way: the server counts the requests whose bodies it is reading (`arriving`), and a batch never waits for a
request nobody has sent. So a lone request runs at once (no delay at concurrency 1), and requests that queued while
the model ran the last batch have waited long enough: a busy server starts the next call at once instead of idling
for the delay after every call. One worker thread runs the batches, so ONNX Runtime keeps every core for one call
instead of several calls fighting over them; while it runs, the next batch fills. A failed call fails the requests
in its batch, and only those.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class Batcher:
    """Merge concurrent `submit(items)` calls into calls of `run(all_items) -> one row per item`."""

    def __init__(self, max_batch: int, max_delay_ms: float,
                 on_batch: Callable[[int], None] | None = None):
        self.max_batch, self.delay = max_batch, max_delay_ms / 1000.0
        self.on_batch = on_batch or (lambda size: None)
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="graft-infer")
        self._arriving, self._waiting = 0, False

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Around reading a request that will be submitted: an open batch may wait for it (up to the delay)."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1
            if self._arriving == 0 and self._waiting:  # wake the open batch: nothing more is on its way
                self._queue.put_nowait(None)

    async def submit(self, run: Callable[[list], np.ndarray], items: list) -> np.ndarray:
        """The rows of `run` for `items`, computed in a batch with whatever else is queued for the same `run`."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._loop())
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((run, items, done, asyncio.get_running_loop().time()))
        return await done

    async def _loop(self) -> None:
        loop, queue = asyncio.get_running_loop(), self._queue
        held = None  # a request that did not fit the last batch (or belongs to another model) opens the next
        while True:
            first = held or await queue.get()
            if first is None:  # a wake-up for a batch that has since closed
                continue
            held, batch = None, [first]
            size, deadline = len(first[1]), first[3] + self.delay
            while size < self.max_batch:
                try:
                    self._waiting = loop.time() < deadline and self._arriving > 0
                    nxt = await asyncio.wait_for(queue.get(), deadline - loop.time()) if self._waiting \
                        else queue.get_nowait()
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                finally:
                    self._waiting = False
                if nxt is None:
                    continue
                if nxt[0] != first[0] or size + len(nxt[1]) > self.max_batch:
                    held = nxt
                    break
                batch.append(nxt)
                size += len(nxt[1])
            await self._run(loop, batch, size)

    async def _run(self, loop, batch: list, size: int) -> None:
        run = batch[0][0]
        items = [x for _, part, _, _ in batch for x in part]
        try:
            rows = await loop.run_in_executor(self._pool, run, items)
        except Exception as exc:  # the model failed on this batch: its requests get the error, the server goes on
            for _, _, done, _ in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        self.on_batch(size)
        at = 0
        for _, part, done, _ in batch:
            if not done.done():
                done.set_result(rows[at:at + len(part)])
            at += len(part)

    def close(self) -> None:
        """Stop the worker (the event loop is shutting down)."""
        if self._worker is not None:
            self._worker.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
