"""Dynamic batching: texts from many requests share one forward pass; answers go back to their caller.

One model worker thread owns the model. Request handlers (on the event loop) `submit` their texts
and await a future; the worker takes the oldest waiting text plus every other waiting text with
the same parameters, up to `max_batch_size`, waiting at most `max_wait_ms` after the oldest one
arrived for the batch to fill. Under load the queue fills while the model is busy, so batches are
full and nobody waits on the timer; with one caller the timer is the only added latency.

Inside a batch the task's own prediction code sorts by length (inference/ordered.py). A request
may span several batches; its future resolves when its last text is done. An exception in the
model fails the requests in that batch only (each gets it as `BatchFailed`); the worker goes on.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("tunelab.serve")

RunBatch = Callable[[list[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]


class QueueFull(Exception):
    """More texts are waiting than `max_queue` allows; the caller should retry after `retry_after` s."""

    def __init__(self, retry_after: int):
        super().__init__(f"queue full, retry after {retry_after} s")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The server is draining: no new work is accepted."""


class BatchFailed(Exception):
    """The model raised on a batch holding (some of) this request's texts."""


@dataclass
class _Request:
    future: concurrent.futures.Future[list[dict[str, Any]]]
    results: list[Any]
    remaining: int


@dataclass
class _Item:
    row: dict[str, Any]
    index: int
    request: _Request
    key: Hashable
    params: dict[str, Any]
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """Observer hooks (metrics): called from the worker thread after every batch."""

    on_batch: Callable[[int, float, bool], None] = lambda size, seconds, ok: None


class Batcher:
    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        stats: BatchStats | None = None,
    ):
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._stats = stats or BatchStats()
        self._pending: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._batch_seconds = 0.0  # running average, for Retry-After
        self._thread = threading.Thread(target=self._loop, name="tunelab-model-worker", daemon=True)

    # ------------------------------------------------------------------ caller side
    def start(self) -> None:
        self._thread.start()

    @property
    def depth(self) -> int:
        """Texts waiting for the model (not counting the batch running now)."""
        return len(self._pending)

    def submit(
        self, rows: Sequence[dict[str, Any]], params: dict[str, Any], key: Hashable = ()
    ) -> concurrent.futures.Future[list[dict[str, Any]]]:
        """Queue one request's rows; the future gets their results in input order."""
        future: concurrent.futures.Future[list[dict[str, Any]]] = concurrent.futures.Future()
        request = _Request(future, [None] * len(rows), len(rows))
        with self._cond:
            if self._closed:
                raise ShuttingDown()
            if len(self._pending) + len(rows) > self.max_queue:
                raise QueueFull(self.retry_after())
            now = time.monotonic()
            for i, row in enumerate(rows):
                self._pending.append(_Item(row, i, request, key, params, now))
            self._cond.notify()
        return future

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained by one request's worth (at least 1)."""
        batches = math.ceil(max(1, len(self._pending)) / self.max_batch_size)
        return max(1, math.ceil(batches * self._batch_seconds))

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, finish everything already queued, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ------------------------------------------------------------------ worker side
    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self._run(batch)

    def _take(self) -> list[_Item] | None:
        """The next batch (blocks); None once closed and drained."""
        with self._cond:
            while not self._pending:
                if self._closed:
                    return None
                self._cond.wait()
            deadline = self._pending[0].arrived + self.max_wait_s
            # Wait for the batch to fill, but never past the oldest text's deadline; a closing
            # server does not wait at all (it drains what it has).
            while len(self._pending) < self.max_batch_size and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            key = self._pending[0].key
            batch: list[_Item] = []
            keep: deque[_Item] = deque()
            for item in self._pending:
                if item.request.future.cancelled():  # the caller went away: skip its texts
                    continue
                if item.key == key and len(batch) < self.max_batch_size:
                    batch.append(item)
                else:
                    keep.append(item)
            self._pending = keep
            return batch

    def _run(self, batch: list[_Item]) -> None:
        if not batch:
            return
        start = time.perf_counter()
        try:
            results = self._run_batch([item.row for item in batch], batch[0].params)
            if len(results) != len(batch):
                raise RuntimeError(f"model returned {len(results)} results for {len(batch)} texts")
        except Exception as exc:  # the model failed: this batch's requests get the error, the server goes on
            log.exception("the model failed on a batch of %d texts", len(batch))
            self._finish(start, len(batch), ok=False)
            for item in batch:
                _settle(item.request.future, error=BatchFailed(f"{type(exc).__name__}: {exc}"))
            return
        self._finish(start, len(batch), ok=True)
        for item, result in zip(batch, results):
            req = item.request
            req.results[item.index] = result
            req.remaining -= 1
            if req.remaining == 0:
                _settle(req.future, result=req.results)

    def _finish(self, start: float, size: int, ok: bool) -> None:
        seconds = time.perf_counter() - start
        self._batch_seconds = seconds if not self._batch_seconds else 0.8 * self._batch_seconds + 0.2 * seconds
        self._stats.on_batch(size, seconds, ok)


def _settle(future: concurrent.futures.Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    """Resolve a future unless its caller already gave up (cancelled between our check and now)."""
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass
