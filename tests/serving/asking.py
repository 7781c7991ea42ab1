"""Clients that keep asking a server while its versions change: what a swap test watches."""

from __future__ import annotations

import threading
import time

from serving.client import RecommenderClient, ServingError


class AskingClients:
    """One thread per session, each asking `target` to recommend for it, one request after another.

    A swap is correct when no request fails and each client sees the old version, then only
    the new one: `versions[n]` holds the version that answered each of client n's requests,
    in order, and `failures` every error any client got.

    Args:
        target: the server's `host:port`.
        model_name: the model to ask for.
        sessions: one session (item ids) per client.
        pause_s: the wait between a client's requests, which leaves the loading or training
            work beside them some of the CI machine's two cores.
        timeout_s: each request's deadline.
    """

    def __init__(
        self, target: str, model_name: str, sessions: list[list[str]], pause_s: float, timeout_s: float = 30
    ) -> None:
        self.versions: list[list[int]] = [[] for _ in sessions]
        self.failures: list[ServingError] = []
        self._done = threading.Event()
        self._threads = [
            threading.Thread(target=self._ask, args=(target, model_name, session, seen, pause_s, timeout_s))
            for session, seen in zip(sessions, self.versions)
        ]
        for thread in self._threads:
            thread.start()

    def _ask(
        self, target: str, model_name: str, session: list[str], seen: list[int], pause_s: float, timeout_s: float
    ) -> None:
        with RecommenderClient(target, model_name=model_name, timeout_s=timeout_s) as client:
            while not self._done.is_set():
                try:
                    seen.append(client.recommend(session)[0].model_version)
                except ServingError as error:
                    self.failures.append(error)
                time.sleep(pause_s)

    def stop(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join()
