"""The serving benchmark's memory sampling, and the environment its servers run in."""

import os
import time

import numpy as np
import pytest

from benchmarks import serving
from benchmarks.common import rss_mb
from benchmarks.serving import _PeakRss
from model.cpu_allocator import ALLOCATOR_ENV, cpu_allocator


def test_the_peak_rss_catches_memory_held_only_inside_the_block() -> None:
    before = rss_mb(os.getpid())
    with _PeakRss(os.getpid(), every_s=0.01) as rss:
        held = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, touched
        time.sleep(0.1)  # samples taken while it is held
        del held
    assert rss.peak_mb >= before + 60
    assert rss_mb(os.getpid()) < rss.peak_mb - 30


@pytest.mark.parametrize("caller", [None, "true", "false"])
def test_servers_run_with_the_callers_allocator_not_the_benchmarks(monkeypatch, caller) -> None:
    """`import benchmarks` pools this process's CPU memory; a server gets what `serving.cli serve` would."""
    monkeypatch.setenv(ALLOCATOR_ENV, "true")  # as benchmarks/__init__.py leaves it
    monkeypatch.setattr(serving, "CALLER_ALLOCATOR", caller)
    env = serving.server_environment()
    assert env[ALLOCATOR_ENV] == (caller or "false")
    assert cpu_allocator(env) == ("bfc" if caller == "true" else "malloc")
