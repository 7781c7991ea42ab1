"""MicroBatcher on its own: a fake signature records who called it with how many sessions."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from contract.model_api import ITEM_IDS
from serving.batching import MicroBatcher


class _RecordingSignature:
    def __init__(self, first_call_s: float = 0.0) -> None:
        self.calls: list[tuple[str, int]] = []
        self._first_call_s = first_call_s

    def call(self, inputs):
        item_ids = inputs[ITEM_IDS]
        self.calls.append((threading.current_thread().name, len(item_ids)))
        if len(self.calls) == 1:
            time.sleep(self._first_call_s)  # keeps the model busy while others arrive
        if any(b"refused" in row for row in item_ids.tolist()):
            raise ValueError("the model refuses this session")
        return {"echo": item_ids[:, :1].copy()}


def _session(name: str, length: int = 1) -> np.ndarray:
    return np.array([[name.encode()] * length], dtype=object)


def _run(coroutine_function, batcher: MicroBatcher):
    try:
        return asyncio.run(coroutine_function())
    finally:
        batcher.stop()


def test_a_lone_request_runs_at_once_on_the_model_thread():
    batcher, signature = MicroBatcher(), _RecordingSignature()

    async def ask():
        return (await batcher.run(signature, _session("a")))["echo"].tolist()

    assert _run(ask, batcher) == [[b"a"]]
    assert len(signature.calls) == 1 and signature.calls[0][0].startswith("model")


def test_requests_arriving_while_the_model_is_busy_share_one_call():
    batcher, signature = MicroBatcher(max_size=32), _RecordingSignature(first_call_s=0.3)

    async def ask_all():
        # Two together: they share the first call.
        first = asyncio.gather(*(batcher.run(signature, _session(name)) for name in ("first", "second")))
        await asyncio.sleep(0.1)  # the first call now holds the model
        # Sessions of different lengths are padded to the longest in the shared call.
        others = [batcher.run(signature, _session(f"s{i}", length=1 + i % 3)) for i in range(8)]
        return [*await first, *await asyncio.gather(*others)]

    answers = _run(ask_all, batcher)
    assert [size for _, size in signature.calls] == [2, 8]
    assert all(thread.startswith("model") for thread, _ in signature.calls)
    expected = ["first", "second"] + [f"s{i}" for i in range(8)]
    assert [answer["echo"].tolist() for answer in answers] == [[[name.encode()]] for name in expected]


def test_a_refused_session_fails_alone_and_batches_keep_to_max_size():
    batcher, signature = MicroBatcher(max_size=4), _RecordingSignature(first_call_s=0.2)

    async def ask_all():
        first = asyncio.gather(*(batcher.run(signature, _session(name)) for name in ("first", "second")))
        await asyncio.sleep(0.05)
        names = ["a", "refused", "b", "c", "d", "e"]
        return [
            *await first,
            *await asyncio.gather(*(batcher.run(signature, _session(n)) for n in names), return_exceptions=True),
        ]

    answers = _run(ask_all, batcher)
    assert isinstance(answers[3], ValueError)
    served = [answers[i]["echo"].tolist() for i in (0, 1, 2, 4, 5, 6, 7)]
    assert served == [[[n.encode()]] for n in ["first", "second", "a", "b", "c", "d", "e"]]
    # A batch of 4 fails, so its 4 run alone; then the 2 left share a call.
    assert [size for _, size in signature.calls] == [2, 4, 1, 1, 1, 1, 2]


@pytest.mark.parametrize("timeout_ms", [0.0, 50.0])
def test_an_idle_model_waits_timeout_ms_for_company(timeout_ms):
    batcher, signature = MicroBatcher(timeout_ms=timeout_ms), _RecordingSignature()

    async def ask_two_apart():
        first = asyncio.ensure_future(batcher.run(signature, _session("a")))
        await asyncio.sleep(0.01)
        return await asyncio.gather(first, batcher.run(signature, _session("b")))

    _run(ask_two_apart, batcher)
    assert [size for _, size in signature.calls] == ([1, 1] if timeout_ms == 0 else [2])
