import keras
import numpy as np
import pytest
import tensorflow as tf

from model.optimizers import LazyAdam


def _train(optimizer, gradients, start):
    table = keras.Variable(start)
    optimizer.build([table])
    for gradient in gradients:
        optimizer.apply([gradient], [table])
    return keras.ops.convert_to_numpy(table)


def test_lazy_adam_equals_adam_on_the_rows_it_touches_and_leaves_the_others():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 3)).astype("float32")
    # Rows 0-3 every step, each row twice in the first (a sampled negative drawn twice);
    # rows 4 and 5 never.
    steps = [np.array([0, 1, 2, 3, 0, 1, 2, 3]), np.array([3, 2, 1, 0]), np.array([1, 0, 3, 2])]
    values = [rng.normal(size=(len(rows), 3)).astype("float32") for rows in steps]
    sparse = [tf.IndexedSlices(v, tf.constant(r), tf.constant([6, 3])) for v, r in zip(values, steps)]
    dense = [tf.convert_to_tensor(s) for s in sparse]  # duplicate rows summed, as tf does

    lazy = _train(LazyAdam(learning_rate=0.01), sparse, start)
    adam = _train(keras.optimizers.Adam(learning_rate=0.01), dense, start)

    np.testing.assert_allclose(lazy[:4], adam[:4], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lazy[4:], start[4:])


def test_lazy_adam_takes_dense_gradients_as_adam_does():
    start = np.ones((2, 2), "float32")
    gradient = tf.constant([[0.5, -1.0], [2.0, 0.0]])
    np.testing.assert_allclose(
        _train(LazyAdam(learning_rate=0.1), [gradient], start),
        _train(keras.optimizers.Adam(learning_rate=0.1), [gradient], start),
    )
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)
