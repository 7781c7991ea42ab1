"""One Transformer encoder block: self-attention and a feed-forward net, each Add & Norm.

The block of M2TRec's Figure 1 (post-norm, as in Vaswani et al.). Padding positions
are masked out as keys, so a session's output does not depend on how much it is padded.
With `causal=True` each position also sees only itself and earlier items (SASRec), so a
position's output is what the model knows at that click.

`last_only=True` computes the output of the session's last item alone: its query attends
to every item (keys and values stay over all positions), and the feed-forward net runs
on that one row. A readout that keeps only the last position (`last`, `core` pooling)
gets the same vector as from the full block, for a fraction of the work: attention and
feed-forward over `length` queries were most of a block's cost.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from model.layers.sessions import dense_on_rows, gather_last


@keras.saving.register_keras_serializable(package="session_recommender")
class TransformerBlock(keras.layers.Layer):
    """Self-attention then a feed-forward net, each with dropout, a residual and a layer norm (post-norm).

    Padding is masked out as keys, so an output row does not depend on how much its session
    is padded; the padding mask is an argument of `call`, not a Keras mask it passes on.

    Args:
        width: the item vectors' width (input and output).
        num_heads: attention heads; `width` must divide by it.
        ff_dim: the feed-forward net's hidden width.
        dropout: on the attention weights and on each sub-layer's output, in training.
        causal: each position attends only to itself and earlier items (SASRec).

    Call arguments:
        x: `[batch, length, width]` item vectors, sessions left-aligned.
        mask: `[batch, length]` bool, True at real items.
        last_only: compute only each session's last item's row.

    Returns:
        `[batch, length, width]`, or `[batch, 1, width]` with `last_only`.

    Example:
        >>> block = TransformerBlock(width=8, num_heads=2, ff_dim=16)
        >>> x = keras.random.normal((2, 5, 8))
        >>> mask = keras.ops.convert_to_tensor([[True] * 5, [True, True, False, False, False]])
        >>> tuple(block(x, mask).shape)
        (2, 5, 8)
        >>> tuple(block(x, mask, last_only=True).shape)
        (2, 1, 8)
    """

    def __init__(
        self, width: int, num_heads: int, ff_dim: int, dropout: float = 0.1, causal: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        # It takes the padding mask as an argument; one Keras attached to `x` is consumed, not passed on.
        self.supports_masking = True
        self.width, self.num_heads, self.ff_dim, self.dropout_rate = width, num_heads, ff_dim, dropout
        self.causal = causal
        self.attention = keras.layers.MultiHeadAttention(num_heads, width // num_heads, dropout=dropout)
        self.attention_dropout = keras.layers.Dropout(dropout)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6)
        self.ff_in = keras.layers.Dense(ff_dim, activation="relu")
        self.ff_out = keras.layers.Dense(width)
        self.ff_dropout = keras.layers.Dropout(dropout)
        self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-6)

    def call(self, x: Any, mask: Any, training: bool = False, last_only: bool = False) -> Any:
        """`x`: `[batch, length, width]`; `mask`: `[batch, length]`, True for real items.

        Returns `[batch, length, width]`, or `[batch, 1, width]` (the last item's row) with `last_only`.
        """
        # Every query may attend to every real item of its session (keys), never to padding;
        # with `causal`, only to items at or before its own position (for the last item: all).
        query = gather_last(x, mask) if last_only else x
        attention_mask = ops.broadcast_to(
            ops.expand_dims(mask, 1), (ops.shape(x)[0], ops.shape(query)[1], ops.shape(x)[1])
        )
        if self.causal and not last_only:
            steps = ops.arange(ops.shape(x)[1])
            attention_mask = ops.logical_and(attention_mask, ops.expand_dims(steps[:, None] >= steps[None, :], 0))
        attended = self.attention(query, x, attention_mask=attention_mask, training=training)
        query = self.attention_norm(query + self.attention_dropout(attended, training=training))
        hidden = dense_on_rows(self.ff_out, dense_on_rows(self.ff_in, query))
        return self.ff_norm(query + self.ff_dropout(hidden, training=training))

    def compute_mask(self, *args: Any, **kwargs: Any) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "width": self.width,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout_rate,
            "causal": self.causal,
        }
