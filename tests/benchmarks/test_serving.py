"""The serving benchmark's memory sampling: it sees a peak that is gone by the time the block ends."""

import os
import time

import numpy as np

from benchmarks.common import rss_mb
from benchmarks.serving import _PeakRss


def test_the_peak_rss_catches_memory_held_only_inside_the_block() -> None:
    before = rss_mb(os.getpid())
    with _PeakRss(os.getpid(), every_s=0.01) as rss:
        held = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, touched
        time.sleep(0.1)  # samples taken while it is held
        del held
    assert rss.peak_mb >= before + 60
    assert rss_mb(os.getpid()) < rss.peak_mb - 30
