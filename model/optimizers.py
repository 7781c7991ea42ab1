"""Adam that updates only the embedding rows a step's gradient touches (LazyAdam).

A training step reads a few thousand of the catalog's item rows (the batch's items and the
sampled negatives), so the gradient of an embedding table is row-sparse (`tf.IndexedSlices`).
Keras' Adam densifies it and rewrites the whole table and both its moments at every step:
on Diginetica that is 43,097 x 64 ids, three passes of 11 MB each, for ~5,000 rows that
changed. Here those rows alone are read, updated and written back; untouched rows keep their
moments, as in TF Addons' LazyAdam and PyTorch's SparseAdam (the usual choice for
recommenders' embeddings). Dense gradients (every other weight) take Adam's own update, on
TensorFlow in its fused kernel (`ResourceApplyAdam`), one op per weight where Keras' Adam
runs about fifteen; on the JAX backend, whose gradients are always dense, Keras' Adam.

Example:
    >>> import numpy as np
    >>> table = keras.Variable(np.ones((4, 2), "float32"))
    >>> optimizer = LazyAdam(learning_rate=0.1)
    >>> optimizer.build([table])
    >>> import tensorflow as tf
    >>> gradient = tf.IndexedSlices(tf.ones((2, 2)), tf.constant([1, 1]), tf.constant([4, 2]))
    >>> optimizer.apply([gradient], [table])
    >>> rows = keras.ops.convert_to_numpy(table)[:, 0]
    >>> (rows < 1).tolist(), round(float(rows[1]), 4)  # row 1 (seen twice) moved by Adam's first step, once
    ([False, True, False, False], 0.9)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="session_recommender")
class LazyAdam(keras.optimizers.Adam):
    """Adam (with Keras' decoupled weight decay where set) whose row-sparse gradients update only their rows.

    Args: those of `keras.optimizers.Adam`; `amsgrad` is not supported.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("amsgrad"):
            raise ValueError("LazyAdam does not support amsgrad")
        super().__init__(*args, **kwargs)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        if not isinstance(gradient, tf.IndexedSlices):
            # Adam's own update in TF's fused kernel: one op per weight instead of about fifteen.
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=beta_1**step,
                beta2_power=beta_2**step,
                lr=ops.cast(learning_rate, dtype),
                beta1=beta_1,
                beta2=beta_2,
                epsilon=ops.cast(self.epsilon, dtype),
                grad=ops.cast(gradient, dtype),
            )
            return None
        alpha = ops.cast(learning_rate, dtype) * ops.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        # A row sampled several times in the step gets the sum of its gradients, once.
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(ops.cast(gradient.values, dtype), position, tf.shape(rows)[0])
        m_rows = ops.take(m, rows, axis=0) * beta_1 + values * (1 - beta_1)
        v_rows = ops.take(v, rows, axis=0) * beta_2 + ops.square(values) * (1 - beta_2)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(alpha * m_rows / (ops.sqrt(v_rows) + self.epsilon), rows))
