"""Item vectors of a session -> one session vector (M2TRec Eq. 5).

Learned position embeddings count back from the most recent item, so position 0 always
means "the last click" whatever the session's length; Transformer blocks contextualize
the items; a pooling layer reduces them to one vector.

Example:
    >>> encoder = SessionEncoder(width=8, num_layers=1, num_heads=2, ff_dim=16, max_length=5)
    >>> items = keras.random.normal((2, 5, 8))
    >>> mask = keras.ops.convert_to_tensor([[True] * 5, [True, True, False, False, False]])
    >>> encoder(items, mask).shape
    (2, 8)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from model.layers.pooling import SessionPooling
from model.layers.transformer import TransformerBlock


@keras.saving.register_keras_serializable(package="session_recommender")
class SessionEncoder(keras.layers.Layer):
    def __init__(
        self,
        width: int,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_dim: int = 256,
        dropout: float = 0.1,
        max_length: int = 50,
        pooling: str = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = dict(width=width, num_layers=num_layers, num_heads=num_heads, ff_dim=ff_dim,
                           dropout=dropout, max_length=max_length, pooling=pooling)  # fmt: skip
        self.max_length = max_length
        self.positions = keras.layers.Embedding(max_length, width, name="positions")
        self.input_dropout = keras.layers.Dropout(dropout)
        self.blocks = [TransformerBlock(width, num_heads, ff_dim, dropout, name=f"block_{i}") for i in range(num_layers)]
        self.pooling = SessionPooling(pooling)

    def call(self, item_vectors: Any, mask: Any, training: bool = False) -> Any:
        """`item_vectors`: `[batch, length, width]`, left-aligned; `mask`: `[batch, length]`."""
        length = ops.shape(item_vectors)[1]
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True)
        from_last = ops.clip(lengths - 1 - ops.expand_dims(ops.arange(length, dtype="int32"), 0), 0, self.max_length - 1)
        weights = ops.expand_dims(ops.cast(mask, item_vectors.dtype), -1)
        x = self.input_dropout(item_vectors + self.positions(from_last), training=training) * weights
        for block in self.blocks:
            x = block(x, mask, training=training)
        return self.pooling(x, mask)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.config}
