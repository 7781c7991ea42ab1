"""The category channel projects before it gathers; its answers are the plain layers' (A2D-MTL Eq. 3-7)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from model.layers.category_channel import CategoryChannel, ProjectedGRUCell

WIDTH = 4
RNG = np.random.default_rng(0)
EDGES = tuple(ops.convert_to_tensor(x) for x in ([1, 2, 0, 3], [0, 0, 3, 1], [0.5, 0.5, 1.0, 1.0]))
CATEGORIES = np.array([[1, 2, 3, 0], [4, 0, 0, 0], [2, 2, 1, 0]])
MASK = np.array([[True, True, True, False], [True, False, False, False], [True, True, True, True]])


def _keras_gru(kernel: np.ndarray, bias: np.ndarray, recurrent_kernel: np.ndarray) -> keras.layers.GRU:
    """Keras's own GRU (reset_after) with these weights: the reference."""
    gru = keras.layers.GRU(WIDTH)
    gru.build((None, None, kernel.shape[0]))
    gru.set_weights([kernel, recurrent_kernel, bias])
    return gru


def test_the_projected_cell_is_keras_gru_on_the_projected_input():
    inputs = RNG.normal(size=(3, 4, 6)).astype(np.float32)
    kernel = RNG.normal(size=(6, 3 * WIDTH)).astype(np.float32)
    bias = RNG.normal(size=(2, 3 * WIDTH)).astype(np.float32)
    projected_gru = keras.layers.RNN(ProjectedGRUCell(WIDTH))
    projected_gru.build((None, None, 3 * WIDTH))
    recurrent_kernel = ops.convert_to_numpy(projected_gru.cell.recurrent_kernel)
    projected_gru.cell.recurrent_bias.assign(bias[1])
    ours = projected_gru(inputs @ kernel + bias[0], mask=MASK)
    theirs = _keras_gru(kernel, bias, recurrent_kernel)(inputs, mask=MASK)
    np.testing.assert_allclose(ops.convert_to_numpy(ours), ops.convert_to_numpy(theirs), atol=1e-5)


def _plain_graph_attention(layer, embeddings: np.ndarray) -> np.ndarray:
    """Eq. 3-6 written out: a score per edge (and self-loop) from concat(target, source, weight)."""
    sources, targets, weights = (ops.convert_to_numpy(x) for x in EDGES)
    count = len(embeddings)
    sources, targets = np.r_[sources, np.arange(count)], np.r_[targets, np.arange(count)]
    weights = np.r_[weights, np.zeros(count)].astype(np.float32)
    pair = np.concatenate([embeddings[targets], embeddings[sources], weights[:, None]], axis=1)
    logits = ops.convert_to_numpy(layer.score(ops.leaky_relu(layer.score_hidden(pair), 0.2)))[:, 0]
    message = ops.convert_to_numpy(layer.message(embeddings))
    attended = np.zeros_like(embeddings)
    for target in range(count):
        into = targets == target
        attention = np.exp(logits[into] - logits[into].max())
        attended[target] = (attention[:, None] / attention.sum() * message[sources[into]]).sum(0)
    beta = ops.convert_to_numpy(ops.sigmoid(layer.gate(np.concatenate([embeddings, attended], axis=1))))
    return beta * embeddings + (1 - beta) * attended


def test_the_channel_is_a_gru_over_the_concatenation_of_fused_category_position_and_length():
    channel = CategoryChannel(categories=5, width=WIDTH, max_length=4, graph=True)
    channel.build((None, None))
    embeddings = ops.convert_to_numpy(channel.embeddings.embeddings)
    fused = _plain_graph_attention(channel.attention, embeddings)
    np.testing.assert_allclose(ops.convert_to_numpy(channel.attention(embeddings, EDGES)), fused, atol=1e-5)

    steps = ops.convert_to_numpy(ops.sum(MASK, axis=1, keepdims=True)) - 1 - np.arange(4)  # from the last item
    positions = ops.convert_to_numpy(channel.positions.embeddings)[np.clip(steps, 0, 3)]
    lengths = ops.convert_to_numpy(channel.lengths.embeddings)[MASK.sum(1)]
    sequence = np.concatenate([fused[CATEGORIES], positions, np.repeat(lengths[:, None], 4, axis=1)], axis=-1)
    cell = channel.reader.cell
    bias = np.stack([ops.convert_to_numpy(channel.input_bias), ops.convert_to_numpy(cell.recurrent_bias)])
    gru = _keras_gru(ops.convert_to_numpy(channel.input_kernel), bias, ops.convert_to_numpy(cell.recurrent_kernel))
    want = ops.convert_to_numpy(gru(sequence, mask=MASK))
    np.testing.assert_allclose(ops.convert_to_numpy(channel(CATEGORIES, MASK, EDGES)), want, atol=1e-5)
    table = channel.embedding_table(EDGES)  # what a server computes once
    np.testing.assert_allclose(ops.convert_to_numpy(channel(CATEGORIES, MASK, table=table)), want, atol=1e-5)


def _segment_graph_attention(layer, embeddings, edges):
    """Eq. 3-6 in differentiable ops, the plain way: a gather per edge end, a segment softmax, a segment sum."""
    sources, targets, weights = edges
    count = int(embeddings.shape[0])
    sources = ops.concatenate([sources, ops.arange(count, dtype=sources.dtype)])
    targets = ops.concatenate([targets, ops.arange(count, dtype=targets.dtype)])
    weights = ops.concatenate([ops.cast(weights, "float32"), ops.zeros((count,))])
    pair = ops.concatenate([ops.take(embeddings, targets, axis=0), ops.take(embeddings, sources, axis=0)], axis=1)
    pair = ops.concatenate([pair, weights[:, None]], axis=1)
    logits = layer.score(ops.leaky_relu(layer.score_hidden(pair), 0.2))[:, 0]
    exp = ops.exp(logits - ops.take(ops.segment_max(logits, targets, num_segments=count), targets, axis=0))
    attention = exp / ops.take(ops.segment_sum(exp, targets, num_segments=count), targets, axis=0)
    messages = ops.take(layer.message(embeddings), sources, axis=0) * attention[:, None]
    attended = ops.segment_sum(messages, targets, num_segments=count)
    beta = ops.sigmoid(layer.gate(ops.concatenate([embeddings, attended], axis=1)))
    return beta * embeddings + (1 - beta) * attended


def test_the_graph_attention_trains_as_the_plain_one():
    """Same gradients for the embeddings and every weight: its shortcuts (a sparse product, no gradient
    through the softmax's shift) change how they are computed, not what."""
    import tensorflow as tf

    layer = CategoryChannel(categories=5, width=WIDTH, graph=True).attention
    layer.build((5, WIDTH))
    embeddings = tf.Variable(RNG.normal(size=(5, WIDTH)).astype(np.float32))
    gradients = []
    for attend in (layer, lambda e, edges: _segment_graph_attention(layer, e, edges)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(attend(embeddings, EDGES)))
        gradients.append(tape.gradient(loss, [embeddings, *layer.trainable_weights]))
    assert len(gradients[0]) == 1 + len(layer.trainable_weights) == 7
    for ours, plain in zip(*gradients):
        np.testing.assert_allclose(ops.convert_to_numpy(ours), ops.convert_to_numpy(plain), atol=1e-5)
