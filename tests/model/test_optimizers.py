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


@pytest.mark.parametrize("weight_decay", [None, 0.01])
def test_lazy_adam_takes_dense_gradients_as_adam_does(weight_decay):
    """Dense gradients go through TF's fused Adam kernel: Keras' Adam's update, step after step, in a graph too."""
    rng = np.random.default_rng(1)
    start = rng.normal(size=(5, 4)).astype("float32")
    gradients = [tf.constant(rng.normal(size=(5, 4)).astype("float32")) for _ in range(4)]
    lazy, adam = (
        optimizer(learning_rate=0.1, weight_decay=weight_decay) for optimizer in (LazyAdam, keras.optimizers.Adam)
    )
    # Within float32 rounding of steps of ~0.1 (the kernel orders its products its own way).
    np.testing.assert_allclose(_train(lazy, gradients, start), _train(adam, gradients, start), rtol=1e-5, atol=1e-5)

    table = keras.Variable(start)
    graph = LazyAdam(learning_rate=0.1)
    graph.build([table])
    apply = tf.function(lambda gradient: graph.apply([gradient], [table]))
    for gradient in gradients:
        apply(gradient)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(table),
        _train(keras.optimizers.Adam(learning_rate=0.1), gradients, start),
        rtol=1e-5,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)
