"""Contextual item encodings of a session -> one session vector.

`mean` is M2TRec's average pooling (Eq. 5); `last` takes the most recent item; `attention`
is SR-GNN/NARM-style: the last item queries all items, and the weighted sum is fused
with the last item, which keeps both the session's gist and its current intent.

Example:
    >>> pool = SessionPooling("mean")
    >>> x = keras.ops.convert_to_tensor([[[1.0], [3.0], [100.0]]])
    >>> pool(x, keras.ops.convert_to_tensor([[True, True, False]]))
    ... # doctest: +SKIP
    [[2.0]]
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

MODES = ("mean", "last", "attention")


@keras.saving.register_keras_serializable(package="session_recommender")
class SessionPooling(keras.layers.Layer):
    def __init__(self, mode: str = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"pooling mode must be one of {MODES}, got {mode!r}")
        self.mode = mode

    def build(self, x_shape: Any, mask_shape: Any = None) -> None:
        if self.mode == "attention":
            width = x_shape[-1]
            self.key_projection = keras.layers.Dense(width, use_bias=False)
            self.query_projection = keras.layers.Dense(width)
            self.score = keras.layers.Dense(1, use_bias=False)
            self.fusion = keras.layers.Dense(width)
            self.key_projection.build(x_shape)
            self.query_projection.build((x_shape[0], width))
            self.score.build((x_shape[0], x_shape[1], width))
            self.fusion.build((x_shape[0], 2 * width))

    def call(self, x: Any, mask: Any) -> Any:
        """`x`: `[batch, length, width]`, items left-aligned; `mask`: `[batch, length]`."""
        weights = ops.cast(mask, x.dtype)
        lengths = ops.sum(weights, axis=1)
        if self.mode == "mean":
            return ops.sum(x * ops.expand_dims(weights, -1), axis=1) / ops.maximum(ops.expand_dims(lengths, -1), 1.0)
        last_index = ops.maximum(ops.cast(lengths, "int32") - 1, 0)
        last = ops.squeeze(ops.take_along_axis(x, ops.reshape(last_index, (-1, 1, 1)), axis=1), axis=1)
        if self.mode == "last":
            return last
        hidden = ops.sigmoid(self.key_projection(x) + ops.expand_dims(self.query_projection(last), 1))
        logits = ops.squeeze(self.score(hidden), -1)
        logits = ops.where(mask, logits, ops.full_like(logits, -1e9))
        attention = ops.softmax(logits, axis=-1)
        summary = ops.sum(x * ops.expand_dims(attention, -1), axis=1)
        return self.fusion(ops.concatenate([summary, last], axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}
