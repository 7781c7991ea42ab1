"""The rank behind every metric: ties are broken by popularity, in training as in evaluation."""

from __future__ import annotations

import numpy as np
from keras import ops

from model.metrics import popularity_ranks, target_rank

CLICKS = np.array([5, 0, 9, 0, 1], "int64")


def _ranks(scores, target, tie_break=None):
    scores = scores if isinstance(scores, np.ndarray) else np.asarray(scores, "float32")
    return ops.convert_to_numpy(target_rank(scores, np.asarray(target), tie_break)).tolist()


def test_ties_favour_the_target_only_without_a_tie_break():
    scores = [[1.0, 1.0, 1.0, 1.0, 1.0]]  # a model that scores every item alike
    assert [_ranks(scores, [item])[0] for item in range(5)] == [0] * 5
    ranks = popularity_ranks(CLICKS)
    # Popularity order: 2 (9 clicks), 0 (5), 4 (1), then the unclicked 3 and 1 (later row first).
    assert [_ranks(scores, [item], ranks)[0] for item in (2, 0, 4, 3, 1)] == [0, 1, 2, 3, 4]


def test_the_tie_break_never_reorders_different_scores():
    ranks = popularity_ranks(CLICKS)
    scores = [[0.5, 2.0, 0.1, 3.0, 0.2]]
    assert _ranks(scores, [1], ranks) == _ranks(scores, [1]) == [1]
    assert _ranks(scores, [2], ranks) == [4]
