"""Prediction heads besides the item scorer: next category per level, HierSRec's fusion, the repeat bonus.

M2TRec trains one next-category head per level of the taxonomy as auxiliary tasks (Eq. 6);
HierSRec feeds the predicted category distributions back into the session vector before
the item is scored, so the item head knows which categories the session is heading to.
`RepeatBonus` raises the items the session already holds (a click back to one of them
is RepeatNet's repeat mode); `session_items` marks their columns.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="session_recommender")
class CategoryHeads(keras.layers.Layer):
    """Session vector -> next-category logits, one tensor per taxonomy level (root first).

    The auxiliary tasks of M2TRec (Eq. 6): predicting the next item's categories shapes the
    session vector, and HierSRec feeds their output back in (HierarchicalFusion).

    Args:
        level_sizes: the number of categories at each level, root first (OOV included).

    Call arguments:
        session: `[batch, width]`.

    Returns:
        A list of `[batch, level_sizes[i]]` logits.

    Example:
        >>> heads = CategoryHeads([4, 9])
        >>> [tuple(logits.shape) for logits in heads(keras.random.normal((2, 8)))]
        [(2, 4), (2, 9)]
    """

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
    concatenated with the session vector and projected back to `width`, so the item head
    knows which categories the session is heading to (HierSRec).

    Args:
        width: the session vector's width (input and output).

    Call arguments:
        session: `[batch, width]`.
        category_logits: CategoryHeads' output, a list of `[batch, categories]`.

    Returns:
        `[batch, width]`.

    Example:
        >>> heads, session = CategoryHeads([4, 9]), keras.random.normal((2, 8))
        >>> tuple(HierarchicalFusion(width=8)(session, heads(session)).shape)
        (2, 8)
    """

    def __init__(self, width: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.width = width
        self.output_projection = keras.layers.Dense(width, name="fused")

    def build(self, session_shape: Any, category_logits_shape: Any = None) -> None:
        self.level_projections = [
            keras.layers.Dense(self.width, use_bias=False, name=f"level_{i + 1}")
            for i in range(len(category_logits_shape))
        ]
        for projection, shape in zip(self.level_projections, category_logits_shape):
            projection.build(shape)
        self.output_projection.build((session_shape[0], self.width * (1 + len(category_logits_shape))))

    def call(self, session: Any, category_logits: list[Any]) -> Any:
        projected = [p(ops.softmax(logits, axis=-1)) for p, logits in zip(self.level_projections, category_logits)]
        return self.output_projection(ops.concatenate([session, *projected], axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width}


@keras.saving.register_keras_serializable(package="session_recommender")
class RepeatBonus(keras.layers.Layer):
    """Item logits `[batch, items]` + a bonus (a scalar) at the columns of the session's own items.

    One Diginetica test target in five is an item of its own session (one in eleven is the
    last click). Training the bonus with the model made the session vector worse at new
    items (validation HIT@20 of new targets 42.2 -> 40.3) and gained nothing overall, while
    the same model trained without it gains a point of HIT@20 from a bonus added afterwards
    (51.4 -> 52.5). So the bonus is a non-trainable weight: fixed by the config, or chosen
    on validation after training (SessionRecommender.choose_repeat_bonus), and exported with the
    model.

    It computes in float32 whatever the dtype policy: the logits it adds to are float32
    (`SessionRecommender.score`), and a mixed policy would cast them to bfloat16.

    Args:
        bonus: the starting value, in logits.

    Call arguments:
        logits: `[batch, items]` item logits.
        rows: `[batch, length]` catalog rows of the session's items, < 0 at padding.

    Returns:
        `[batch, items]`, float32.

    Example:
        >>> ops.convert_to_numpy(RepeatBonus(2.0)(ops.zeros((1, 4)), ops.array([[2, 0, -1]]))).tolist()
        [[2.0, 0.0, 2.0, 0.0]]
    """

    def __init__(self, bonus: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "dtype": "float32"})
        if bonus < 0:
            raise ValueError(f"bonus must be >= 0, got {bonus}")
        self.initial = float(bonus)
        self.bonus = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial),
            trainable=False,
            dtype="float32",
            name="bonus",
        )

    def call(self, logits: Any, rows: Any) -> Any:
        return logits + self.bonus * session_items(rows, ops.shape(logits)[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bonus": self.initial}


def session_items(rows: Any, num_items: Any) -> Any:
    """Catalog rows `[batch, length]` (padding < 0) -> float32 `[batch, num_items]`: 1 at each row's items, else 0.

    Example:
        >>> ops.convert_to_numpy(session_items(ops.array([[2, 0, 2, -1]]), 4)).tolist()
        [[1.0, 0.0, 1.0, 0.0]]
    """
    batch = ops.shape(rows)[0]
    rows = ops.cast(rows, "int32")
    batch_index = ops.broadcast_to(ops.expand_dims(ops.arange(batch, dtype="int32"), 1), ops.shape(rows))
    indices = ops.reshape(ops.stack([batch_index, ops.maximum(rows, 0)], axis=-1), (-1, 2))
    counts = ops.scatter(indices, ops.reshape(ops.cast(rows >= 0, "float32"), (-1,)), (batch, num_items))
    return ops.minimum(counts, 1.0)  # a repeated click is counted once
