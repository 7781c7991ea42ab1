"""The written-out sampled cross-entropy against TF's fused kernel over concatenated logits."""

import numpy as np
import pytest
import tensorflow as tf

from model.losses import MASKED_LOGIT, sampled_softmax_cross_entropy


def fused_reference(positive, negative, accidental, label_smoothing):
    """The loss as the model computed it before: concatenate, mask with where, TF's sparse softmax CE."""
    logits = tf.concat([positive[:, None], tf.where(accidental, MASKED_LOGIT, negative)], axis=1)
    target = tf.zeros(tf.shape(positive)[:1], tf.int32)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits)
    if label_smoothing:
        valid = tf.concat([tf.ones_like(positive[:, None]), 1.0 - tf.cast(accidental, tf.float32)], axis=1)
        mean = tf.reduce_sum(logits * valid, -1) / tf.reduce_sum(valid, -1)
        loss = (1 - label_smoothing) * loss + label_smoothing * (tf.reduce_logsumexp(logits, -1) - mean)
    return loss


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_value_and_gradient_equal_the_fused_kernels(label_smoothing):
    rng = np.random.default_rng(0)
    # Cosine logits over a temperature of 0.05 reach +-20; one row's target also wins by far.
    positive = tf.Variable(rng.uniform(-20, 20, 64).astype("float32"))
    negative = tf.Variable(rng.uniform(-20, 20, (64, 300)).astype("float32"))
    positive[0].assign(60.0)
    accidental = tf.constant(rng.random((64, 300)) < 0.02)
    results = []
    for loss_fn in (sampled_softmax_cross_entropy, fused_reference):
        with tf.GradientTape() as tape:
            loss = loss_fn(positive, negative, accidental, label_smoothing)
            total = tf.reduce_sum(loss * tf.linspace(0.5, 1.5, 64))  # unequal row weights
        results.append([loss.numpy(), *(g.numpy() for g in tape.gradient(total, [positive, negative]))])
    for written, fused in zip(*results):
        np.testing.assert_allclose(written, fused, rtol=1e-5, atol=1e-6)
    assert np.all(results[0][2][accidental.numpy()] == 0)  # a masked column gets no gradient
