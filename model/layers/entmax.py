"""α-entmax: a softmax whose small weights can be exactly zero (A2D-MTL's sparse attention).

entmax_α(z) is the distribution p that maximizes p·z plus the Tsallis α-entropy of p
(Peters et al., ACL 2019): softmax at α = 1, sparsemax at α = 2, and in between

    p_i = [(α - 1) z_i - τ]_+ ^ (1 / (α - 1)),   τ such that the p_i sum to one.

An attention normalized by it gives noisy clicks (an accidental item in a session) weight
zero instead of a small share. τ has no closed form for a general α, so it is found by
bisection, with plain ops that every backend and the official TF Serving binary run.

Gradients are the exact ones of the solution, with respect to z and to α (Correia et al.,
EMNLP 2019, "Adaptively Sparse Transformers"), not those of the unrolled bisection, which
would be wrong (its comparisons have no gradient): the output is the bisection's value plus
terms that are zero in value and carry those Jacobians. So α can be learned per session.

Example:
    >>> logits = keras.ops.convert_to_tensor([[1.0, 0.8, 0.1, -2.0]])
    >>> [round(float(p), 3) for p in keras.ops.convert_to_numpy(entmax(logits, 2.0))[0]]  # sparsemax
    [0.6, 0.4, 0.0, 0.0]
    >>> [round(float(p), 3) for p in keras.ops.convert_to_numpy(entmax(logits, 1.5))[0]]
    [0.529, 0.394, 0.077, 0.0]
    >>> [round(float(p), 3) for p in keras.ops.convert_to_numpy(keras.ops.softmax(logits))[0]]
    [0.44, 0.36, 0.179, 0.022]
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

# Near α = 1 the gradient with respect to α divides by (α - 1)^2; a learned α stays above this.
ALPHA_MIN = 1.01
ALPHA_MAX = 2.0
# τ's first bracket is at most 1 wide: 30 halvings leave it under 1e-9, below float32's
# resolution of the logits.
BISECTION_STEPS = 30


def entmax(logits: Any, alpha: Any, steps: int = BISECTION_STEPS) -> Any:
    """α-entmax over the last axis of `logits`.

    Args:
        logits: `[..., n]`, finite (mask with a large negative number, not -inf).
        alpha: a float in (1, 2], or a tensor broadcastable to `[..., 1]` (one α per row).
        steps: bisection steps for the threshold τ.

    Returns:
        `[..., n]` probabilities in the dtype of `logits`, summing to one over the last axis.
    """
    dtype = logits.dtype
    z = ops.cast(logits, "float32")
    alpha = ops.cast(ops.convert_to_tensor(alpha), "float32")
    p = _bisect(ops.stop_gradient(z), ops.stop_gradient(alpha), steps)
    # Zero-valued terms whose gradients are entmax's Jacobians (Correia et al. 2019, Prop. 1 and 2).
    a = ops.stop_gradient(alpha)
    g = ops.where(p > 0, ops.power(ops.maximum(p, 1e-30), 2.0 - a), 0.0)  # p^(2 - α) on the support
    skewed = g / ops.sum(g, axis=-1, keepdims=True)
    dz = z - ops.stop_gradient(z)
    by_logits = g * dz - skewed * ops.sum(g * dz, axis=-1, keepdims=True)
    p_log_p = ops.where(p > 0, p * ops.log(ops.maximum(p, 1e-30)), 0.0)
    entropy_term = p_log_p - skewed * ops.sum(p_log_p, axis=-1, keepdims=True)
    dp_dalpha = (p - skewed) / ops.square(a - 1.0) - entropy_term / (a - 1.0)
    by_alpha = ops.stop_gradient(dp_dalpha) * (alpha - ops.stop_gradient(alpha))
    return ops.cast(p + by_logits + by_alpha, dtype)


def _bisect(z: Any, alpha: Any, steps: int) -> Any:
    """entmax's value: τ by bisection, then p normalized (the last bracket keeps every support item)."""
    z = (alpha - 1.0) * z
    exponent = 1.0 / (alpha - 1.0)
    n = ops.cast(ops.shape(z)[-1], "float32")
    top = ops.max(z, axis=-1, keepdims=True)
    # At τ = top - 1 the largest item alone has p = 1 (the sum is >= 1); at the upper end no
    # item has more than 1/n (the sum is <= 1).
    bounds = (top - 1.0, top - ops.power(1.0 / n, alpha - 1.0))

    def halve(_: Any, bounds: tuple[Any, Any]) -> tuple[Any, Any]:
        low, high = bounds
        middle = (low + high) / 2.0
        over = ops.sum(ops.power(ops.relu(z - middle), exponent), axis=-1, keepdims=True) >= 1.0
        return ops.where(over, middle, low), ops.where(over, high, middle)

    low, _ = ops.fori_loop(0, steps, halve, bounds)
    p = ops.power(ops.relu(z - low), exponent)
    return p / ops.sum(p, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="session_recommender")
class AdaptiveAlpha(keras.layers.Layer):
    """A context vector -> the α of its entmax, in (ALPHA_MIN, ALPHA_MAX) (A2D-MTL's AdaSPA).

    A session whose clicks wander gets a sparser attention (α near 2) than one that stays
    on a theme, as the model learns. It starts at `initial` for every context.

    Args:
        initial: α before training, in (ALPHA_MIN, ALPHA_MAX).

    Call arguments:
        context: `[batch, width]`.

    Returns:
        `[batch, 1]`.

    Example:
        >>> layer = AdaptiveAlpha(initial=1.5)
        >>> alpha = keras.ops.convert_to_numpy(layer(keras.random.normal((2, 4))))
        >>> alpha.shape, bool(((alpha > 1.0) & (alpha < 2.0)).all())
        ((2, 1), True)
    """

    def __init__(self, initial: float = 1.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not ALPHA_MIN < initial < ALPHA_MAX:
            raise ValueError(f"the initial alpha must be in ({ALPHA_MIN}, {ALPHA_MAX}), got {initial}")
        self.initial = initial
        share = (initial - ALPHA_MIN) / (ALPHA_MAX - ALPHA_MIN)
        self.projection = keras.layers.Dense(
            1,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(math.log(share / (1.0 - share))),
            name="alpha",
        )

    def build(self, context_shape: Any) -> None:
        self.projection.build(context_shape)

    def call(self, context: Any) -> Any:
        share = ops.sigmoid(ops.cast(self.projection(context), "float32"))
        return ALPHA_MIN + (ALPHA_MAX - ALPHA_MIN) * share

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "initial": self.initial}
