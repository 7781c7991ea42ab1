"""`top_k_by_blocks` is a plain top-k: same values, same indices, ties and masked scores included."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from model.layers.top_k import top_k_by_blocks


@pytest.mark.parametrize(
    "columns, k, block, decimals",
    [(43_097, 20, 128, 6), (1_000, 20, 128, 1), (300, 5, 16, 0), (7, 20, 128, 6), (128, 3, 128, 1), (999, 11, 5, 0)],
)
def test_top_k_by_blocks_is_a_plain_top_k(columns, k, block, decimals):
    # Few decimals: many scores tie, across blocks and within them.
    scores = np.round(np.random.default_rng(columns).normal(size=(4, columns)), decimals).astype(np.float32)
    scores[1, ::2] = np.finfo(np.float32).min  # masked scores stay below every real one
    values, indices = top_k_by_blocks(ops.convert_to_tensor(scores), k, block=block)
    expected = tf.math.top_k(scores, k=min(k, columns))
    np.testing.assert_array_equal(ops.convert_to_numpy(values), expected.values.numpy())
    np.testing.assert_array_equal(ops.convert_to_numpy(indices), expected.indices.numpy())


def test_padding_beyond_the_last_block_is_refused():
    with pytest.raises(ValueError, match="last block"):
        top_k_by_blocks(ops.zeros((2, 256)), 3, block=128, columns=100)
