"""Micro-batching for `serving_default`: concurrent requests share one model call.

A call's fixed cost (TF's dispatch of some 230 ops, a pass over the catalog's item
vectors, the top-K) dominates a single session's, so 16 sessions scored at once cost far
less than 16 calls. Batches form by themselves, without a timer: one call runs at a
time; a request that finds the model idle starts a call at once, and requests that
arrive while it is busy wait, then all of them (up to `max_size` sessions) run as the
next call, every session padded to the longest with "" (the model drops padding, so no
answer changes). `timeout_ms` > 0 makes an idle model also wait that long for company,
which trades latency for bigger batches.

The batcher lives on the server's asyncio loop: requests wait as coroutines, not as
blocked threads. Calls run on a model thread, so the loop parses and answers other
requests while TensorFlow computes (it releases the GIL). Running a lone request's call
on the loop itself saved two thread hops but, under load, stalled the loop: p99 latency at 16
clients went from ~35 to ~60 ms, so every call takes the model thread.

A session with no item the model knows does not fail the call: the model answers it on
its own row (`known_items` 0) and the server refuses only the request that sent it. If a
batched call fails all the same (an error of the model's), each request of the batch runs
alone, so a bad request never fails its neighbours.

Usage (in a coroutine on the server's loop):

    batcher = MicroBatcher(max_size=32)
    outputs = await batcher.run(signature, item_ids)  # item_ids: object array [batch, length]
    batcher.stop()  # after the last request
"""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from contract.model_api import ITEM_IDS
from serving.signatures import Signature

Outputs = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class _Pending:
    signature: Signature  # one per loaded version: requests on different versions never share a call
    item_ids: np.ndarray
    answer: asyncio.Future


class MicroBatcher:
    def __init__(self, max_size: int = 32, timeout_ms: float = 0.0) -> None:
        self.max_size = max_size
        self.timeout_s = timeout_ms / 1000
        self._pending: list[_Pending] = []
        self._model_busy = False  # a call runs, or is about to start
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def run(self, signature: Signature, item_ids: np.ndarray) -> Outputs:
        """The outputs for `item_ids` alone; raises what the model raised for them."""
        loop = asyncio.get_running_loop()
        pending = _Pending(signature, item_ids, loop.create_future())
        self._pending.append(pending)
        if not self._model_busy:
            self._model_busy = True
            if self.timeout_s:
                loop.call_later(self.timeout_s, self._next_call)
            else:  # after the loop's other ready callbacks: requests that came in together join
                loop.call_soon(self._next_call)
        return await pending.answer

    def stop(self) -> None:
        """Ends the model thread once its call is done; call it after the last request."""
        self._model_thread.shutdown(wait=True)

    def _next_call(self) -> None:
        """Starts a model call with the requests waiting (on the loop's thread)."""
        self._pending = [pending for pending in self._pending if not pending.answer.done()]  # cancelled meanwhile
        if not self._pending:
            self._model_busy = False
            return
        first, *others = self._pending
        batch, rest, rows = [first], [], len(first.item_ids)
        for pending in others:
            if pending.signature is first.signature and rows + len(pending.item_ids) <= self.max_size:
                batch.append(pending)
                rows += len(pending.item_ids)
            else:
                rest.append(pending)
        self._pending = rest
        sessions = [pending.item_ids for pending in batch]
        call = asyncio.get_running_loop().run_in_executor(self._model_thread, _call, first.signature, sessions)
        call.add_done_callback(lambda done: self._answer(batch, _results(done, len(batch))))

    def _answer(self, batch: list[_Pending], results: list[Outputs | BaseException]) -> None:
        for pending, result in zip(batch, results):
            if pending.answer.done():  # the client gave up (cancelled or past its deadline)
                continue
            if isinstance(result, BaseException):
                pending.answer.set_exception(result)
            else:
                pending.answer.set_result(result)
        self._next_call()


def _results(call: asyncio.Future, size: int) -> list[Outputs | BaseException]:
    try:
        return call.result()
    except BaseException as error:  # the call never ran (the model thread was shut down)
        return [error] * size


def _call(signature: Signature, sessions: list[np.ndarray]) -> list[Outputs | Exception]:
    """Each request's outputs (or error), from one call when the model accepts them all (model thread)."""
    if len(sessions) > 1:
        width = max(item_ids.shape[1] for item_ids in sessions)
        starts = np.cumsum([0] + [len(item_ids) for item_ids in sessions])
        item_ids = np.full((starts[-1], width), b"", dtype=object)
        for start, session in zip(starts, sessions):
            item_ids[start : start + len(session), : session.shape[1]] = session
        try:
            outputs = signature.call({ITEM_IDS: item_ids})
        except Exception:  # some request in the batch is refused: find which, by running each alone
            pass
        else:
            return [
                {name: value[start:stop] for name, value in outputs.items()}
                for start, stop in zip(starts[:-1], starts[1:])
            ]
    return [_call_alone(signature, item_ids) for item_ids in sessions]


def _call_alone(signature: Signature, item_ids: np.ndarray) -> Outputs | Exception:
    try:
        return signature.call({ITEM_IDS: item_ids})
    except Exception as error:  # handed to the request's coroutine, which answers with it
        return error
