"""MicroBatcher on its own: a fake signature records who called it with how many sessions."""

from __future__ import annotations

import threading
import time

import numpy as np

from model.export import ITEM_IDS
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
        return {"echo": item_ids[:, :1].copy()}


def _session(name: str) -> np.ndarray:
    return np.array([[name.encode()]], dtype=object)


def test_a_lone_request_runs_at_once_on_its_own_thread():
    batcher, signature = MicroBatcher(), _RecordingSignature()
    try:
        assert batcher.run(signature, _session("a"))["echo"].tolist() == [[b"a"]]
    finally:
        batcher.stop()
    assert signature.calls == [(threading.current_thread().name, 1)]


def test_requests_arriving_while_the_model_is_busy_share_one_call():
    batcher, signature = MicroBatcher(max_size=32), _RecordingSignature(first_call_s=0.3)
    answers = {}

    def ask(name: str) -> None:
        answers[name] = batcher.run(signature, _session(name))["echo"].tolist()

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    time.sleep(0.1)  # the first request now holds the model
    others = [threading.Thread(target=ask, args=(f"s{i}",)) for i in range(8)]
    [t.start() for t in others]
    [t.join() for t in [first, *others]]
    batcher.stop()
    assert [size for _, size in signature.calls] == [1, 8]
    assert signature.calls[1][0] == "micro-batcher"
    assert all(answers[name] == [[name.encode()]] for name in answers) and len(answers) == 9
