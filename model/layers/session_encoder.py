"""Item vectors of a session -> one session vector (M2TRec Eq. 5, and two baselines).

`kind="transformer"` (M2TRec): learned position embeddings count back from the most
recent item, so position 0 always means "the last click" whatever the session's length;
Transformer blocks contextualize the items. `causal=True` lets each position see only
earlier items, which with `pooling="last"` is SASRec. `kind="gru"` is GRU4Rec: stacked GRUs
read the session in order, so they need no positions, and `pooling="last"` takes the
final state. A pooling layer reduces the contextual items to one vector; when it reads
only the last item (`last`, `core`), the last block computes only that item's row.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from model.config import SESSION_ENCODERS as KINDS
from model.layers.pooling import SessionPooling
from model.layers.sessions import gather_last, steps_from_last
from model.layers.transformer import TransformerBlock


@keras.saving.register_keras_serializable(package="session_recommender")
class SessionEncoder(keras.layers.Layer):
    """A session's item vectors -> one session vector: positions, Transformer blocks (or GRUs), pooling.

    Args:
        width: the item vectors' width, and the session vector's.
        num_layers: Transformer blocks (or stacked GRUs).
        num_heads, ff_dim: each block's attention heads and feed-forward width.
        dropout: on the input item vectors and inside the blocks, in training.
        max_length: positions learned; items further back share the last one.
        pooling: `mean`, `last`, `attention` or `core` (layers.pooling).
        weighting, alpha: the readout's attention weights (layers.SessionPooling).
        kind: `transformer` (M2TRec, SASRec) or `gru` (GRU4Rec).
        causal: causal attention (SASRec); `kind="transformer"` only.

    Call arguments:
        item_vectors: `[batch, length, width]`, sessions left-aligned (oldest first).
        mask: `[batch, length]` bool, True at real items.

    Returns:
        `[batch, width]`.

    Example:
        >>> encoder = SessionEncoder(width=8, num_layers=1, num_heads=2, ff_dim=16, max_length=5)
        >>> items = keras.random.normal((2, 5, 8))
        >>> mask = keras.ops.convert_to_tensor([[True] * 5, [True, True, False, False, False]])
        >>> tuple(encoder(items, mask).shape)
        (2, 8)
        >>> tuple(SessionEncoder(width=8, kind="gru", pooling="last")(items, mask).shape)
        (2, 8)
    """

    def __init__(
        self,
        width: int,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_dim: int = 256,
        dropout: float = 0.1,
        max_length: int = 50,
        pooling: str = "mean",
        kind: str = "transformer",
        causal: bool = False,
        weighting: str = "softmax",
        alpha: float = 1.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"session encoder kind must be one of {KINDS}, got {kind!r}")
        if causal and kind != "transformer":
            raise ValueError("causal attention needs kind='transformer' (a GRU is causal already)")
        self.config = dict(
            width=width,
            num_layers=num_layers,
            num_heads=num_heads,
            ff_dim=ff_dim,
            dropout=dropout,
            max_length=max_length,
            pooling=pooling,
            kind=kind,
            causal=causal,
            weighting=weighting,
            alpha=alpha,
        )
        self.max_length = max_length
        self.input_dropout = keras.layers.Dropout(dropout)
        if kind == "transformer":
            self.positions = keras.layers.Embedding(max_length, width, name="positions")
            self.blocks = [
                TransformerBlock(width, num_heads, ff_dim, dropout, causal=causal, name=f"block_{i}")
                for i in range(num_layers)
            ]
        else:
            self.positions = None
            self.blocks = [keras.layers.GRU(width, return_sequences=True, name=f"gru_{i}") for i in range(num_layers)]
        self.pooling = SessionPooling(pooling, weighting, alpha)

    def call(self, item_vectors: Any, mask: Any, training: bool = False) -> Any:
        """`item_vectors`: `[batch, length, width]`, left-aligned; `mask`: `[batch, length]`."""
        positions = None
        if self.positions is not None:
            positions = self.positions(steps_from_last(mask, self.max_length))
        x = item_vectors if positions is None else item_vectors + positions
        x = self.input_dropout(x, training=training) * ops.expand_dims(ops.cast(mask, item_vectors.dtype), -1)
        last_only = self.pooling.last_only
        for index, block in enumerate(self.blocks):
            if self.positions is not None:
                x = block(x, mask=mask, training=training, last_only=last_only and index == len(self.blocks) - 1)
            else:
                x = block(x, mask=mask, training=training)
        if last_only and (self.positions is None or not self.blocks):
            x = gather_last(x, mask)
        return self.pooling(x, mask, items=item_vectors, positions=positions)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.config}
