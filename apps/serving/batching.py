"""Dynamic batching: requests that arrive together go to the model as one call.

One thread makes every model call, so TensorFlow is never entered from many threads at once. It takes the
first waiting request, gathers the others that can join it (same model, signature and example shapes) until
the batch holds ``max_batch_size`` examples or ``max_wait`` seconds have passed, calls the signature once on
the stacked inputs, and hands each caller its own rows.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

Call = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class Request:
    call: Call
    inputs: dict[str, np.ndarray]
    batchable: bool  # every input and output has the examples on its first axis
    future: Future = field(default_factory=Future)

    @property
    def rows(self) -> int:
        return len(next(iter(self.inputs.values())))

    @property
    def key(self) -> tuple:
        """Requests with equal keys stack: the same function, and the same shape of one example per input."""
        if not self.batchable:
            return (id(self),)
        return (id(self.call), *((name, a.shape[1:], a.dtype.str) for name, a in sorted(self.inputs.items())))


@dataclass
class Stats:
    requests: int = 0
    calls: int = 0
    largest_batch: int = 0


class Batcher:
    """Runs model calls on its own thread; :meth:`submit` returns a Future of the caller's outputs."""

    def __init__(self, max_batch_size: int = 32, max_wait: float = 0.005):
        self.max_batch_size, self.max_wait = max_batch_size, max_wait
        self.stats = Stats()
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._waiting: collections.deque[Request] = collections.deque()  # taken from the queue, not yet run
        self._thread = threading.Thread(target=self._loop, name="model-calls", daemon=True)
        self._thread.start()

    def submit(self, call: Call, inputs: dict[str, np.ndarray], batchable: bool) -> Future:
        request = Request(call, inputs, batchable)
        self.stats.requests += 1  # only the event loop's thread submits
        self._queue.put(request)
        return request.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._waiting.popleft() if self._waiting else self._queue.get()
            if first is None:
                return
            batch = self._gather(first)
            self._run(batch)

    def _gather(self, first: Request) -> list[Request]:
        if not first.batchable:
            return [first]
        batch, rows = [first], first.rows
        later = collections.deque()
        for request in list(self._waiting):  # those set aside earlier, oldest first
            if request.key == first.key and rows + request.rows <= self.max_batch_size:
                batch.append(request)
                rows += request.rows
            else:
                later.append(request)
        self._waiting = later
        deadline = time.monotonic() + self.max_wait
        while rows < self.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                request = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if request is not None and request.key == first.key and rows + request.rows <= self.max_batch_size:
                batch.append(request)
                rows += request.rows
            else:
                self._waiting.append(request)  # another model or shape, or the stop: next round
                if request is None:
                    break
        return batch

    def _run(self, batch: list[Request]) -> None:
        self.stats.calls += 1
        if batch[0].batchable:
            self.stats.largest_batch = max(self.stats.largest_batch, sum(r.rows for r in batch))
        try:
            if len(batch) == 1:
                outputs = [batch[0].call(batch[0].inputs)]
            else:
                stacked = {name: np.concatenate([r.inputs[name] for r in batch]) for name in batch[0].inputs}
                joined = batch[0].call(stacked)
                bounds = np.cumsum([0] + [r.rows for r in batch])
                outputs = [{k: v[a:b] for k, v in joined.items()} for a, b in zip(bounds[:-1], bounds[1:])]
        except Exception as err:  # the model refused the batch: each caller hears it
            if len(batch) > 1:  # one bad request must not fail the others: run them one by one
                for request in batch:
                    self._run([request])
                return
            batch[0].future.set_exception(err)
            return
        for request, out in zip(batch, outputs):
            request.future.set_result(out)
