"""Micro-batching for `serving_default`: concurrent requests share one model call.

A call's fixed cost (Python and TF dispatch, a pass over the catalog's item vectors, the
top-K) dominates a single session's, so 16 sessions scored at once cost far less than 16
calls. Batches form by themselves, without a timer: a request that finds the model idle
runs at once on its own thread (a lone client pays nothing); requests that arrive while
the model is busy queue up, and when it frees, one worker thread runs all of them (up to
`max_size` sessions) as one call, every session padded to the longest with "" (the model
drops padding, so no answer changes). `timeout_ms` > 0 makes the worker also wait that
long for more company, which trades latency for bigger batches.

If the batched call fails (one session the model refuses fails the whole call), each
request of the batch runs alone, so a bad request never fails its neighbours.

Usage:

    batcher = MicroBatcher(max_size=32)
    outputs = batcher.run(signature, item_ids)  # item_ids: object array [batch, length]
    batcher.stop()
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import Future
from typing import Optional

import numpy as np

from model.export import ITEM_IDS
from serving.signatures import Signature

_STOP = object()


@dataclasses.dataclass(frozen=True)
class _Pending:
    signature: Signature  # one per loaded version: requests on different versions never share a call
    item_ids: np.ndarray
    answer: Future


class MicroBatcher:
    def __init__(self, max_size: int = 32, timeout_ms: float = 0.0) -> None:
        self.max_size = max_size
        self.timeout_s = timeout_ms / 1000
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._model_busy = threading.Lock()  # held by whoever runs the model
        self._worker = threading.Thread(target=self._loop, name="micro-batcher", daemon=True)
        self._worker.start()

    def run(self, signature: Signature, item_ids: np.ndarray) -> dict[str, np.ndarray]:
        """The outputs for `item_ids` alone; raises what the model raised for them."""
        if self._queue.empty() and self._model_busy.acquire(blocking=False):
            try:  # the model is idle: no one to batch with, and no hop to the worker
                return signature.call({ITEM_IDS: item_ids})
            finally:
                self._model_busy.release()
        pending = _Pending(signature, item_ids, Future())
        self._queue.put(pending)
        return pending.answer.result()

    def stop(self) -> None:
        """Answers what is queued, then ends the worker."""
        self._queue.put(_STOP)
        self._worker.join()

    def _loop(self) -> None:
        carried: Optional[object] = None  # the request that did not fit the previous batch
        while True:
            first = carried if carried is not None else self._queue.get()
            carried = None
            if first is _STOP:
                return
            batch, rows = [first], len(first.item_ids)
            self._model_busy.acquire()  # requests queue while a lone request runs inline
            deadline = time.monotonic() + self.timeout_s
            while rows < self.max_size:
                try:
                    wait_s = deadline - time.monotonic()
                    item = self._queue.get(timeout=wait_s) if wait_s > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP or item.signature is not first.signature or rows + len(item.item_ids) > self.max_size:
                    carried = item
                    break
                batch.append(item)
                rows += len(item.item_ids)
            try:
                self._run(batch, rows)
            finally:
                self._model_busy.release()

    def _run(self, batch: list[_Pending], rows: int) -> None:
        signature = batch[0].signature
        if len(batch) == 1:
            self._run_alone(batch[0])
            return
        width = max(pending.item_ids.shape[1] for pending in batch)
        item_ids = np.full((rows, width), b"", dtype=object)
        starts = []
        start = 0
        for pending in batch:
            item_ids[start : start + len(pending.item_ids), : pending.item_ids.shape[1]] = pending.item_ids
            starts.append(start)
            start += len(pending.item_ids)
        try:
            outputs = signature.call({ITEM_IDS: item_ids})
        except Exception:  # some request in the batch is refused: find which, by running each alone
            for pending in batch:
                self._run_alone(pending)
            return
        for pending, start in zip(batch, starts):
            stop = start + len(pending.item_ids)
            pending.answer.set_result({name: value[start:stop] for name, value in outputs.items()})

    @staticmethod
    def _run_alone(pending: _Pending) -> None:
        try:
            pending.answer.set_result(pending.signature.call({ITEM_IDS: pending.item_ids}))
        except Exception as error:  # handed to the request's thread, which answers with it
            pending.answer.set_exception(error)
