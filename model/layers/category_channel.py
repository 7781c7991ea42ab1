"""A session's categories as a channel of their own (A2D-MTL's category-level representation).

M2TRec mixes an item's categories into its item vector. A2D-MTL (Sec. 3.3) also reads the
session's category sequence on its own: each category's embedding is fused, through a
learned gate, with a global one that a graph attention network computes over the category
transitions of all training sessions (which categories follow which), and a GRU reads the
fused embeddings with position and length embeddings. Its paper's ablation "w/o EXP"
(categories only inside item vectors) lost 7.4 points of P@20 on Diginetica.

- `CategoryGraphAttention`: GAT over the transition graph (Eq. 3-4), gated fusion (Eq. 5-6).
- `CategoryChannel`: the session's leaf categories -> one vector (Eq. 7).

Both project before they gather: a linear map of a concatenation is a sum of maps of its
parts, so each category, position and length goes through its share of a kernel once per
step of training (tables of ~1,000 rows), not once per edge (30,000 on Diginetica) or per
position of the batch (512 x 32). The results are those of the plain layers; a step of
A2D-MTL's channel costs a quarter of the FLOPs it did.

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

    It runs once per training step, over the whole graph. On Diginetica's (996 categories,
    30,370 edges), forward and backward took 18.3 ms on the 2-core AVX2 machine, against
    21.8 computed plainly (medians, interleaved): the sum over in-edges is a sparse product
    on TensorFlow, the softmax's shift carries no gradient, and the edge weight's term is a
    matmul, each with the same result.

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
        # score_hidden(concat(target, source, weight)), each end projected once per category.
        kernel = ops.cast(self.score_hidden.kernel, embeddings.dtype)
        width = self.width
        ends = ops.matmul(embeddings, ops.concatenate([kernel[:width], kernel[width : 2 * width]], axis=1))
        hidden = (
            ops.take(ends[:, :width], targets, axis=0)
            + ops.take(ends[:, width:], sources, axis=0)
            + ops.matmul(weights[:, None], kernel[2 * width :])  # TF's broadcast product: +0.7 ms
            + ops.cast(self.score_hidden.bias, embeddings.dtype)
        )
        logits = ops.squeeze(self.score(ops.leaky_relu(hidden, 0.2)), -1)
        # Softmax over each target's in-edges: subtract the target's largest score (a constant to
        # the softmax, so without gradient: TF's segment-max gradient cost 0.8 ms more).
        largest = ops.stop_gradient(ops.segment_max(logits, targets, num_segments=count))
        exp = ops.exp(logits - ops.take(largest, targets, axis=0))
        attention = exp / ops.take(ops.segment_sum(exp, targets, num_segments=count), targets, axis=0)
        attended = _sum_in_edges(attention, self.message(embeddings), sources, targets, count)
        beta = ops.sigmoid(self.gate(ops.concatenate([embeddings, attended], axis=-1)))
        return beta * embeddings + (1.0 - beta) * attended

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width}


def _sum_in_edges(weights: Any, values: Any, sources: Any, targets: Any, count: int) -> Any:
    """`[count, width]`: row t sums `weights[e] * values[sources[e]]` over the edges e into t.

    On TensorFlow, a sparse `[targets, sources]` matrix times `values`, whose gradients are
    sparse products too; with the gather, broadcast product and segment sum that other
    backends take, `CategoryGraphAttention` on Diginetica's graph cost about 2 ms more a step.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        edges = ops.cast(ops.stack([targets, sources], axis=1), "int64")
        matrix = tf.sparse.SparseTensor(edges, ops.cast(weights, "float32"), (count, count))
        return ops.cast(tf.sparse.sparse_dense_matmul(matrix, ops.cast(values, "float32")), values.dtype)
    return ops.segment_sum(ops.take(values, sources, axis=0) * weights[:, None], targets, num_segments=count)


@keras.saving.register_keras_serializable(package="session_recommender")
class ProjectedGRUCell(keras.layers.Layer):
    """Keras's GRU cell (`reset_after=True`, sigmoid gates, tanh) for inputs already through its input kernel.

    The recurrence then does only its own `[batch, units] x [units, 3 units]` matmul per
    step; the caller computes the input side however is cheapest (`CategoryChannel` from
    projected tables). Run it with `keras.layers.RNN`, which handles masks.

    Args:
        units: the state's width.

    Call arguments:
        inputs: `[batch, 3 units]`, the input's projection (its bias included): update gate,
            reset gate, candidate, in Keras's order.
        states: `[h]`, `[batch, units]`.

    Returns:
        `(h, [h])`, the new state.

    Example:
        >>> gru = keras.layers.RNN(ProjectedGRUCell(4))
        >>> tuple(gru(keras.random.normal((2, 3, 12))).shape)
        (2, 4)
    """

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def build(self, input_shape: Any) -> None:
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units), initializer="orthogonal", name="recurrent_kernel"
        )
        self.recurrent_bias = self.add_weight(shape=(3 * self.units,), initializer="zeros", name="recurrent_bias")

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        state = states[0] if isinstance(states, (list, tuple)) else states
        x_update, x_reset, x_candidate = ops.split(inputs, 3, axis=-1)
        recurrent = ops.matmul(state, self.recurrent_kernel) + self.recurrent_bias
        h_update, h_reset, h_candidate = ops.split(recurrent, 3, axis=-1)
        update = ops.sigmoid(x_update + h_update)
        candidate = ops.tanh(x_candidate + ops.sigmoid(x_reset + h_reset) * h_candidate)
        state = update * state + (1.0 - update) * candidate
        return state, [state]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="session_recommender")
class CategoryChannel(keras.layers.Layer):
    """A session's leaf categories -> one vector (A2D-MTL Eq. 7): a GRU over concat(category, position, length).

    The GRU's input kernel is applied to the three tables, not to the batch's steps
    (`ProjectedGRUCell`); `embedding_table` returns the categories' part, so a server
    computes it once.

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
        self.reader = keras.layers.RNN(ProjectedGRUCell(width, name="gru_cell"), name="gru")

    def build(
        self, categories_shape: Any, mask_shape: Any = None, edges_shape: Any = None, table_shape: Any = None
    ) -> None:
        self.embeddings.build((None,))
        self.positions.build((None,))
        self.lengths.build((None,))
        if self.attention is not None:
            self.attention.build((self.categories, self.width))
        # The GRU's input kernel and bias, rows in the order category, position, length.
        self.input_kernel = self.add_weight(
            shape=(3 * self.width, 3 * self.width), initializer="glorot_uniform", name="gru_input_kernel"
        )
        self.input_bias = self.add_weight(shape=(3 * self.width,), initializer="zeros", name="gru_input_bias")
        self.reader.build((None, None, 3 * self.width))

    def embedding_table(self, edges: Any | None = None) -> Any:
        """`[categories, 3 x width]`: the embeddings, fused with the graph's (with `graph`), through
        the category rows of the GRU's input kernel."""
        if not self.built:  # a model reads the table before it first calls the layer
            self.build((None, None))
        table = self.embeddings.embeddings
        if self.attention is not None:
            if edges is None:
                raise ValueError("a category channel with graph=True needs the transition graph's edges")
            table = self.attention(table, edges)
        return ops.matmul(table, ops.cast(self.input_kernel[: self.width], table.dtype))

    def call(self, categories: Any, mask: Any, edges: Any | None = None, table: Any | None = None) -> Any:
        table = self.embedding_table(edges) if table is None else table
        dtype, width = self.compute_dtype, self.width
        kernel = ops.cast(self.input_kernel, dtype)
        positions = ops.matmul(ops.cast(self.positions.embeddings, dtype), kernel[width : 2 * width])
        lengths = ops.matmul(ops.cast(self.lengths.embeddings, dtype), kernel[2 * width :]) + ops.cast(
            self.input_bias, dtype
        )
        length = ops.minimum(ops.sum(ops.cast(mask, "int32"), axis=1), self.max_length)
        projected = (
            ops.take(ops.cast(table, dtype), ops.maximum(categories, 0), axis=0)
            + ops.take(positions, steps_from_last(mask, self.max_length), axis=0)
            + ops.expand_dims(ops.take(lengths, length, axis=0), 1)
        )
        return self.reader(projected, mask=mask)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "categories": self.categories,
            "width": self.width,
            "max_length": self.max_length,
            "graph": self.graph,
        }
