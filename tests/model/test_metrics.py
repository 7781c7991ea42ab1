"""The rank behind every metric: ties are broken by popularity, in training as in evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from model.layers import session_items
from model.metrics import bonus_ranks, popularity_ranks, target_rank

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


@pytest.mark.parametrize("with_tie_break", [True, False])
def test_bonus_ranks_equal_ranking_each_bonus_s_scores(with_tie_break):
    rng = np.random.default_rng(7)
    batch, items, length = 64, 40, 6
    # Scores on a coarse grid, so many items tie with the target and with each other, with and without a bonus.
    logits = rng.integers(0, 8, (batch, items)).astype("float32") / 2
    rows = rng.integers(-1, items, (batch, length))
    rows[:, 1] = rows[:, 0]  # a repeated click is one own item
    target = np.where(rng.random(batch) < 0.5, np.maximum(rows[:, 0], 0), rng.integers(0, items, batch))
    tie_break = popularity_ranks(rng.integers(0, 50, items)) if with_tie_break else None
    bonuses = (0.0, 0.5, 1.0, 2.5, 8.0)
    expected = [
        _ranks(
            ops.convert_to_numpy(ops.convert_to_tensor(logits) + bonus * session_items(rows, items)), target, tie_break
        )
        for bonus in bonuses
    ]
    assert bonus_ranks(logits, rows, target, bonuses, tie_break).tolist() == expected
    assert len({tuple(r) for r in expected}) == len(bonuses)  # the bonuses do move ranks
