"""A session's categories as a channel of their own (A2D-MTL's category-level representation).

M2TRec mixes an item's categories into its item vector. A2D-MTL (Sec. 3.3) also reads the
session's category sequence on its own: each category's embedding is fused, through a
learned gate, with a global one that a graph attention network computes over the category
transitions of all training sessions (which categories follow which), and a GRU reads the
fused embeddings with position and length embeddings. Its paper's ablation "w/o EXP"
(categories only inside item vectors) lost 7.4 points of P@20 on Diginetica.

- `CategoryGraphAttention`: GAT over the transition graph (Eq. 3-4), gated fusion (Eq. 5-6).
- `CategoryChannel`: the session's leaf categories -> one vector (Eq. 7).

Example:
    >>> channel = CategoryChannel(categories=5, width=8, max_length=4, graph=True)
    >>> edges = [keras.ops.convert_to_tensor(x) for x in ([0, 1, 1], [1, 2, 0], [1.0, 0.5, 0.5])]
    >>> categories = keras.ops.convert_to_tensor([[1, 2, 0, 0], [3, 0, 0, 0]])
    >>> mask = keras.ops.convert_to_tensor([[True, True, False, False], [True, False, False, False]])
    >>> tuple(channel(categories, mask, edges).shape)
    (2, 8)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from model.layers.sessions import steps_from_last


@keras.saving.register_keras_serializable(package="session_recommender")
class CategoryGraphAttention(keras.layers.Layer):
    """Category embeddings -> the same, fused with their neighbourhood in the transition graph.

    One attention head over each category's in-edges and itself (Eq. 3-4: the score of an
    edge reads both ends and its weight), then a sigmoid gate per category between its own
    embedding and the attended one (Eq. 5-6), so a category the graph knows little about
    keeps its own.

    Args:
        width: the embeddings' width.

    Call arguments:
        embeddings: `[categories, width]`.
        edges: `(sources, targets, weights)`, `[edges]` each: transitions source -> target,
            weights normalized per source (Eq. 2). Self-loops are added.

    Returns:
        `[categories, width]`.
    """

    def __init__(self, width: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.width = width
        self.message = keras.layers.Dense(width, use_bias=False, name="message")
        self.score_hidden = keras.layers.Dense(width, name="score_hidden")
        self.score = keras.layers.Dense(1, use_bias=False, name="score")
        self.gate = keras.layers.Dense(1, name="gate")

    def build(self, embeddings_shape: Any, edges_shape: Any = None) -> None:
        self.message.build((None, self.width))
        self.score_hidden.build((None, 2 * self.width + 1))
        self.score.build((None, self.width))
        self.gate.build((None, 2 * self.width))

    def call(self, embeddings: Any, edges: tuple[Any, Any, Any]) -> Any:
        sources, targets, weights = edges
        count = ops.shape(embeddings)[0]
        loops = ops.arange(count, dtype=sources.dtype)
        sources = ops.concatenate([sources, loops])
        targets = ops.concatenate([targets, loops])
        weights = ops.concatenate([ops.cast(weights, embeddings.dtype), ops.zeros((count,), embeddings.dtype)])
        pair = ops.concatenate(
            [ops.take(embeddings, targets, axis=0), ops.take(embeddings, sources, axis=0), weights[:, None]], axis=-1
        )
        logits = ops.squeeze(self.score(ops.leaky_relu(self.score_hidden(pair), 0.2)), -1)
        # Softmax over each target's in-edges: subtract the target's largest score, then normalize.
        largest = ops.segment_max(logits, targets, num_segments=count)
        exp = ops.exp(logits - ops.take(largest, targets, axis=0))
        attention = exp / ops.take(ops.segment_sum(exp, targets, num_segments=count), targets, axis=0)
        messages = ops.take(self.message(embeddings), sources, axis=0) * attention[:, None]
        attended = ops.segment_sum(messages, targets, num_segments=count)
        beta = ops.sigmoid(self.gate(ops.concatenate([embeddings, attended], axis=-1)))
        return beta * embeddings + (1.0 - beta) * attended

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width}


@keras.saving.register_keras_serializable(package="session_recommender")
class CategoryChannel(keras.layers.Layer):
    """A session's leaf categories -> one vector (A2D-MTL Eq. 7).

    Args:
        categories: leaf categories (OOV included): rows of the embedding table.
        width: the embeddings' and the output's width.
        max_length: positions and lengths learned; longer sessions share the last.
        graph: fuse each embedding with its neighbourhood in the transition graph
            (`CategoryGraphAttention`); the edges are then an argument of `call`.

    Call arguments:
        categories: `[batch, length]` int, sessions left-aligned.
        mask: `[batch, length]` bool, True at real items.
        edges: the transition graph (see `CategoryGraphAttention`), with `graph`.
        table: a precomputed `embedding_table(edges)` (serving), instead of `edges`.

    Returns:
        `[batch, width]`.
    """

    def __init__(self, categories: int, width: int, max_length: int = 50, graph: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.categories, self.width, self.max_length, self.graph = categories, width, max_length, graph
        self.embeddings = keras.layers.Embedding(categories, width, name="embeddings")
        self.positions = keras.layers.Embedding(max_length, width, name="positions")
        self.lengths = keras.layers.Embedding(max_length + 1, width, name="lengths")
        self.attention = CategoryGraphAttention(width, name="graph_attention") if graph else None
        self.reader = keras.layers.GRU(width, name="gru")

    def build(
        self, categories_shape: Any, mask_shape: Any = None, edges_shape: Any = None, table_shape: Any = None
    ) -> None:
        self.embeddings.build((None,))
        self.positions.build((None,))
        self.lengths.build((None,))
        if self.attention is not None:
            self.attention.build((self.categories, self.width))
        self.reader.build((None, None, 3 * self.width))

    def embedding_table(self, edges: Any | None = None) -> Any:
        """`[categories, width]`: the embeddings, fused with the graph's (with `graph`)."""
        if not self.built:  # a model reads the table before it first calls the layer
            self.build((None, None))
        table = self.embeddings.embeddings
        if self.attention is None:
            return table
        if edges is None:
            raise ValueError("a category channel with graph=True needs the transition graph's edges")
        return self.attention(table, edges)

    def call(self, categories: Any, mask: Any, edges: Any | None = None, table: Any | None = None) -> Any:
        table = self.embedding_table(edges) if table is None else table
        items = ops.take(table, ops.maximum(categories, 0), axis=0)
        positions = self.positions(steps_from_last(mask, self.max_length))
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True)
        session_length = ops.broadcast_to(self.lengths(ops.minimum(lengths, self.max_length)), ops.shape(items))
        sequence = ops.concatenate([items, ops.cast(positions, items.dtype), session_length], axis=-1)
        return self.reader(sequence, mask=mask)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "categories": self.categories,
            "width": self.width,
            "max_length": self.max_length,
            "graph": self.graph,
        }
