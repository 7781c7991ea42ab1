"""entmax against exact closed forms (sparsemax, 1.5-entmax by sorting) and finite differences."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from model.layers.entmax import ALPHA_MAX, ALPHA_MIN, AdaptiveAlpha, entmax

RNG = np.random.default_rng(7)
# Hand-made rows: ties, one dominant item, all equal, masked padding (-1e9), a wide spread.
ROWS = np.array(
    [
        [1.0, 0.8, 0.1, -2.0, 0.8],
        [5.0, 0.0, 0.0, 0.0, 0.0],
        [0.3, 0.3, 0.3, 0.3, 0.3],
        [2.0, 1.5, -1e9, -1e9, -1e9],
        [-3.0, 4.0, 1.0, 3.5, 0.0],
    ],
    np.float32,
)


def sparsemax_reference(z: np.ndarray) -> np.ndarray:
    """Martins and Astudillo (2016): the support is the k largest with 1 + k z_(k) > their sum."""
    ordered = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    support = k[1 + k * ordered > np.cumsum(ordered)].max()
    tau = (np.cumsum(ordered)[support - 1] - 1) / support
    return np.maximum(z - tau, 0)


def entmax15_reference(z: np.ndarray) -> np.ndarray:
    """Peters et al. (2019), Algorithm 2: 1.5-entmax exactly, by sorting."""
    z = z.astype(np.float64) / 2
    ordered = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    mean = np.cumsum(ordered) / k
    mean_sq = np.cumsum(ordered**2) / k
    tau = mean - np.sqrt(np.maximum((1 - k * (mean_sq - mean**2)) / k, 0))
    support = (tau <= ordered).sum()
    return np.maximum(z - tau[support - 1], 0) ** 2


def bisect_reference(z: np.ndarray, alpha: float) -> np.ndarray:
    """float64 bisection with 200 steps, for finite differences in α."""
    z = (alpha - 1) * z.astype(np.float64)
    low, high = z.max() - 1, z.max() - len(z) ** (1 - alpha)
    for _ in range(200):
        middle = (low + high) / 2
        if (np.maximum(z - middle, 0) ** (1 / (alpha - 1))).sum() >= 1:
            low = middle
        else:
            high = middle
    p = np.maximum(z - low, 0) ** (1 / (alpha - 1))
    return p / p.sum()


@pytest.mark.parametrize(("alpha", "reference"), [(2.0, sparsemax_reference), (1.5, entmax15_reference)])
def test_entmax_matches_the_exact_closed_forms(alpha, reference):
    rows = np.concatenate([ROWS, RNG.normal(size=(20, 5)).astype(np.float32) * 3])
    got = ops.convert_to_numpy(entmax(ops.convert_to_tensor(rows), alpha))
    want = np.stack([reference(row) for row in rows])
    np.testing.assert_allclose(got, want, atol=2e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)
    assert (got[want == 0] == 0).all(), "exact zeros where the closed form has them"


def test_masked_padding_gets_exactly_zero_and_softmax_is_the_limit():
    got = ops.convert_to_numpy(entmax(ops.convert_to_tensor(ROWS[3:4]), 1.5))
    assert (got[0, 2:] == 0).all() and got[0, 0] > got[0, 1] > 0
    near_softmax = ops.convert_to_numpy(entmax(ops.convert_to_tensor(ROWS[:1]), ALPHA_MIN))
    np.testing.assert_allclose(near_softmax, ops.convert_to_numpy(ops.softmax(ROWS[:1])), atol=0.01)


def test_gradients_are_the_solutions_not_the_bisections():
    """d(w . p)/dz and d(w . p)/dα against central differences of the float64 reference."""
    z = np.array([1.0, 0.8, 0.1, -2.0, 0.6], np.float32)
    weights = np.array([0.3, -1.0, 2.0, 0.5, 1.5], np.float32)
    alpha = 1.4
    logits = tf.Variable(z[None])
    alpha_var = tf.Variable([[alpha]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(entmax(logits, alpha_var) * weights)
    by_logits, by_alpha = (g.numpy() for g in tape.gradient(loss, [logits, alpha_var]))

    def objective(z_, alpha_):
        return float(bisect_reference(z_, alpha_) @ weights)

    step = 1e-4
    numeric = [
        (objective(z + step * np.eye(5)[i], alpha) - objective(z - step * np.eye(5)[i], alpha)) / (2 * step)
        for i in range(5)
    ]
    np.testing.assert_allclose(by_logits[0], numeric, atol=2e-3)
    numeric_alpha = (objective(z, alpha + step) - objective(z, alpha - step)) / (2 * step)
    np.testing.assert_allclose(by_alpha[0, 0], numeric_alpha, rtol=1e-2, atol=2e-3)
    assert np.isfinite(by_logits).all() and np.isfinite(by_alpha).all()


def test_adaptive_alpha_starts_at_its_initial_value_and_stays_in_range():
    layer = AdaptiveAlpha(initial=1.5)
    alpha = ops.convert_to_numpy(layer(keras.random.normal((4, 8))))
    np.testing.assert_allclose(alpha, 1.5, atol=1e-6)
    layer.projection.kernel.assign(np.full((8, 1), 100.0, np.float32))
    extreme = ops.convert_to_numpy(layer(ops.convert_to_tensor(np.stack([np.ones(8), -np.ones(8)]), "float32")))
    assert ((extreme >= ALPHA_MIN) & (extreme <= ALPHA_MAX)).all()
    with pytest.raises(ValueError, match="initial alpha"):
        AdaptiveAlpha(initial=1.0)
