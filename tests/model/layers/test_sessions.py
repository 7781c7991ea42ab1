"""The helpers over padded sessions: positions from the last click, means and norms that ignore padding."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from model.layers.sessions import dense_on_rows, gather_last, masked_mean, steps_from_last, unit_rows

MASK = np.array([[True, True, True, True], [True, True, False, False], [False, False, False, False]])


def test_steps_count_back_from_the_last_item_and_share_the_last_learned_one():
    steps = ops.convert_to_numpy(steps_from_last(MASK, max_length=3))
    assert steps.tolist() == [[2, 2, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


def test_padding_changes_neither_the_mean_nor_the_last_item():
    x = np.arange(24, dtype=np.float32).reshape(3, 4, 2)
    padded = np.where(MASK[..., None], x, 1e6).astype(np.float32)
    mean = ops.convert_to_numpy(masked_mean(padded, MASK))
    np.testing.assert_allclose(mean[:2], [x[0].mean(0), x[1, :2].mean(0)])
    assert mean[2].tolist() == [0.0, 0.0]  # an empty session
    last = ops.convert_to_numpy(gather_last(padded, MASK))[:, 0]
    assert last[:2].tolist() == [x[0, 3].tolist(), x[1, 1].tolist()]


def test_unit_rows_have_norm_one_and_zero_rows_stay_zero():
    rows = ops.convert_to_numpy(unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)


def test_a_dense_on_rows_is_the_dense_whatever_the_rank():
    dense = keras.layers.Dense(3)
    for shape in ((5, 4), (2, 5, 4), (2, 1, 4)):
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        np.testing.assert_allclose(
            ops.convert_to_numpy(dense_on_rows(dense, x)), ops.convert_to_numpy(dense(x)), atol=1e-6
        )
