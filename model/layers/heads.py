"""Prediction heads besides the item scorer: next category per level, and HierSRec's fusion.

M2TRec trains one next-category head per level of the taxonomy as auxiliary tasks (Eq. 6);
HierSRec feeds the predicted category distributions back into the session vector before
the item is scored, so the item head knows which categories the session is heading to.

Example:
    >>> heads = CategoryHeads([4, 9])
    >>> [logits.shape for logits in heads(keras.random.normal((2, 8)))]
    [(2, 4), (2, 9)]
    >>> HierarchicalFusion(width=8)(keras.random.normal((2, 8)), heads(keras.random.normal((2, 8)))).shape
    (2, 8)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="session_recommender")
class CategoryHeads(keras.layers.Layer):
    """Session vector -> next-category logits, one tensor per level (root first)."""

    def __init__(self, level_sizes: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.level_sizes = list(level_sizes)
        self.heads = [keras.layers.Dense(size, name=f"level_{i + 1}") for i, size in enumerate(level_sizes)]

    def call(self, session: Any) -> list[Any]:
        return [head(session) for head in self.heads]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "level_sizes": self.level_sizes}


@keras.saving.register_keras_serializable(package="session_recommender")
class HierarchicalFusion(keras.layers.Layer):
    """Session vector + category logits -> session vector aware of the likely categories.

    Each level's probabilities are projected (a probability-weighted category embedding),
    concatenated with the session vector and projected back to `width`.
    """

    def __init__(self, width: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.width = width
        self.output_projection = keras.layers.Dense(width, name="fused")

    def build(self, session_shape: Any, category_logits_shape: Any = None) -> None:
        self.level_projections = [
            keras.layers.Dense(self.width, use_bias=False, name=f"level_{i + 1}") for i in range(len(category_logits_shape))
        ]
        for projection, shape in zip(self.level_projections, category_logits_shape):
            projection.build(shape)
        self.output_projection.build((session_shape[0], self.width * (1 + len(category_logits_shape))))

    def call(self, session: Any, category_logits: list[Any]) -> Any:
        projected = [p(ops.softmax(logits, axis=-1)) for p, logits in zip(self.level_projections, category_logits)]
        return self.output_projection(ops.concatenate([session, *projected], axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width}
