"""The layers alone: shapes, masking, and that padding never changes a session's output."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from model import features
from model.layers import (
    CategoryHeads,
    HierarchicalFusion,
    ItemEncoder,
    RepeatBonus,
    SessionEncoder,
    SessionPooling,
    TransformerBlock,
    session_items,
)


def _mask(lengths: list[int], width: int) -> np.ndarray:
    return np.arange(width)[None, :] < np.array(lengths)[:, None]


def _padded(x: np.ndarray, extra: int) -> np.ndarray:
    noise = np.random.default_rng(1).normal(size=(x.shape[0], extra, x.shape[2])).astype("float32")
    return np.concatenate([x, noise * 100], axis=1)  # junk in the padding must not leak


# Keras warned that each block and pooling "destroys the mask" it never needed: they take the mask as an argument.
@pytest.mark.filterwarnings("error:.*does not support masking:UserWarning")
@pytest.mark.parametrize("mode", ["mean", "last", "attention", "core"])
def test_session_encoder_ignores_padding(mode):
    keras.utils.set_random_seed(0)
    encoder = SessionEncoder(width=8, num_layers=2, num_heads=2, ff_dim=16, dropout=0.0, max_length=12, pooling=mode)
    items = np.random.default_rng(0).normal(size=(3, 5, 8)).astype("float32")
    lengths = [5, 2, 1]
    short = encoder(items, _mask(lengths, 5))
    long = encoder(_padded(items, 4), _mask(lengths, 9))
    np.testing.assert_allclose(ops.convert_to_numpy(short), ops.convert_to_numpy(long), atol=1e-5)


@pytest.mark.filterwarnings("error:.*does not support masking:UserWarning")
@pytest.mark.parametrize(
    "kind, causal, mode", [("gru", False, "last"), ("gru", False, "mean"), ("transformer", True, "last")]
)
def test_gru_and_causal_encoders_ignore_padding(kind, causal, mode):
    keras.utils.set_random_seed(0)
    encoder = SessionEncoder(
        width=8,
        num_layers=2,
        num_heads=2,
        ff_dim=16,
        dropout=0.0,
        max_length=12,
        pooling=mode,
        kind=kind,
        causal=causal,
    )
    items = np.random.default_rng(0).normal(size=(3, 5, 8)).astype("float32")
    lengths = [5, 2, 1]
    short = encoder(items, _mask(lengths, 5))
    long = encoder(_padded(items, 4), _mask(lengths, 9))
    np.testing.assert_allclose(ops.convert_to_numpy(short), ops.convert_to_numpy(long), atol=1e-5)


def test_causal_block_positions_do_not_see_later_items():
    block = TransformerBlock(width=8, num_heads=2, ff_dim=16, dropout=0.0, causal=True)
    x = np.random.default_rng(0).normal(size=(1, 4, 8)).astype("float32")
    changed = x.copy()
    changed[:, 3] += 10.0  # only the last item differs
    a, b = (ops.convert_to_numpy(block(v, _mask([4], 4))) for v in (x, changed))
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-5)
    assert not np.allclose(a[:, 3], b[:, 3])
    # Without `causal`, every position sees the last item.
    plain = TransformerBlock(width=8, num_heads=2, ff_dim=16, dropout=0.0)
    assert not np.allclose(
        ops.convert_to_numpy(plain(x, _mask([4], 4)))[:, 0], ops.convert_to_numpy(plain(changed, _mask([4], 4)))[:, 0]
    )


def test_session_encoder_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="kind"):
        SessionEncoder(width=8, kind="lstm")
    with pytest.raises(ValueError, match="causal"):
        SessionEncoder(width=8, kind="gru", causal=True)


def test_positions_count_back_from_the_last_item():
    # The same 2 items give the same vector whether the window is 2 or 6 wide.
    encoder = SessionEncoder(width=4, num_layers=1, num_heads=1, ff_dim=8, dropout=0.0, max_length=6, pooling="last")
    items = np.ones((1, 6, 4), "float32")
    a = encoder(items[:, :2], _mask([2], 2))
    b = encoder(items, _mask([2], 6))
    np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-5)


def test_pooling_modes():
    x = np.array([[[1.0], [3.0], [100.0]]], "float32")
    mask = _mask([2], 3)
    assert ops.convert_to_numpy(SessionPooling("mean")(x, mask)).tolist() == [[2.0]]
    # `last` and `core` get the last item's row alone (the encoder computes only that row).
    assert ops.convert_to_numpy(SessionPooling("last")(x[:, 1:2], mask)).tolist() == [[3.0]]
    assert SessionPooling("attention")(x, mask).shape == (1, 1)
    # `core` is a convex combination of the real input items: padding (100) never enters it.
    core = ops.convert_to_numpy(SessionPooling("core")(x[:, 1:2], mask, items=x))
    assert core.shape == (1, 1) and 1.0 <= core[0, 0] <= 3.0
    with pytest.raises(ValueError, match="pooling mode"):
        SessionPooling("max")


@pytest.mark.parametrize("causal", [False, True])
def test_last_only_block_gives_the_full_blocks_last_row(causal):
    keras.utils.set_random_seed(0)
    block = TransformerBlock(width=8, num_heads=2, ff_dim=16, dropout=0.0, causal=causal)
    x = np.random.default_rng(0).normal(size=(3, 6, 8)).astype("float32")
    lengths = [6, 3, 1]
    full = ops.convert_to_numpy(block(_padded(x, 2), _mask(lengths, 8)))
    last = ops.convert_to_numpy(block(_padded(x, 2), _mask(lengths, 8), last_only=True))
    assert last.shape == (3, 1, 8)
    np.testing.assert_allclose(last[:, 0], full[np.arange(3), np.array(lengths) - 1], atol=1e-5)


def test_core_readout_is_in_the_items_space():
    """With every item the same vector, CORE's weighted sum is that vector, whatever the weights."""
    keras.utils.set_random_seed(0)
    encoder = SessionEncoder(width=8, num_layers=1, num_heads=2, ff_dim=16, dropout=0.0, max_length=12, pooling="core")
    item = np.random.default_rng(0).normal(size=(1, 1, 8)).astype("float32")
    session = ops.convert_to_numpy(encoder(np.repeat(item, 5, axis=1), _mask([4], 5)))
    np.testing.assert_allclose(session, item[:, 0], atol=1e-5)


def test_transformer_block_shape_and_mask():
    block = TransformerBlock(width=8, num_heads=2, ff_dim=16, dropout=0.0)
    x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    out = block(x, _mask([4, 2], 4))
    assert out.shape == (2, 4, 8)
    # Real positions of the short session do not see its padding.
    out_padded = block(np.concatenate([x[1:, :2], _padded(x[1:, :2], 2)[:, 2:]], axis=1), _mask([2], 4))
    np.testing.assert_allclose(ops.convert_to_numpy(out)[1, :2], ops.convert_to_numpy(out_padded)[0, :2], atol=1e-5)


VOCAB = {
    features.ITEM_ID_INDEX: 6,
    features.TITLE_TOKENS: 9,
    features.BRAND: 4,
    features.PRICE_BUCKET: 5,
    features.category_level(1): 3,
    features.category_level(2): 5,
}


def _items(titles: list[list[int]]) -> dict[str, np.ndarray]:
    n = len(titles)
    return {
        features.ITEM_ID_INDEX: np.arange(n, dtype="int32"),
        features.TITLE_TOKENS: np.array(titles, "int32"),
        features.BRAND: np.zeros(n, "int32"),
        features.PRICE_BUCKET: np.zeros(n, "int32"),
        features.category_level(1): np.zeros(n, "int32"),
        features.category_level(2): np.zeros(n, "int32"),
    }


def test_item_encoder_title_is_a_mean_over_real_tokens():
    encoder = ItemEncoder(
        VOCAB, 2, use_item_id=False, use_categories=False, use_brand=False, use_price=False, output_dim=4
    )
    # Padding (0) does not count: [3, 0, 0] and [3, 3, 0] have the same mean embedding.
    out = ops.convert_to_numpy(encoder(_items([[3, 0, 0], [3, 3, 0], [4, 0, 0]])))
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    assert not np.allclose(out[0], out[2])
    assert encoder.input_features == [features.TITLE_TOKENS]


def test_item_encoder_inputs_follow_the_flags():
    hybrid = ItemEncoder(VOCAB, 2, use_item_id=True, output_dim=4)
    assert set(hybrid.input_features) == set(VOCAB)
    id_only = ItemEncoder(
        VOCAB,
        2,
        use_item_id=True,
        use_title=False,
        use_categories=False,
        use_brand=False,
        use_price=False,
        output_dim=4,
    )
    assert id_only.input_features == [features.ITEM_ID_INDEX]
    assert id_only(_items([[1], [2]])).shape == (2, 4)
    with pytest.raises(ValueError, match="at least one input"):
        ItemEncoder(VOCAB, 2, use_title=False, use_categories=False, use_brand=False, use_price=False)


def test_item_encoder_weight_files_hold_every_embedding(tmp_path):
    """Keras' `.weights.h5` (the Trainer's checkpoints) must carry the attribute embeddings too."""
    items = _items([[3, 1, 0], [4, 0, 0]])
    inputs = {name: keras.Input(value.shape[1:], dtype="int32", name=name) for name, value in items.items()}

    def model():
        return keras.Model(inputs, ItemEncoder(VOCAB, 2, use_item_id=True, output_dim=4)(inputs))

    trained, fresh = model(), model()
    trained.save_weights(tmp_path / "item_encoder.weights.h5")
    fresh.load_weights(tmp_path / "item_encoder.weights.h5")
    np.testing.assert_array_equal(fresh.predict(items, verbose=0), trained.predict(items, verbose=0))


def test_heads_and_fusion():
    session = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    logits = CategoryHeads([3, 5])(session)
    assert [tuple(level.shape) for level in logits] == [(2, 3), (2, 5)]
    fused = HierarchicalFusion(width=8)(session, logits)
    assert fused.shape == (2, 8)


def test_repeat_bonus_raises_each_own_item_once_and_skips_padding():
    rows = np.array([[3, 1, 3, -1], [-1, -1, -1, -1]], dtype="int32")  # a repeated click; an empty row
    logits = np.arange(10, dtype="float32").reshape(2, 5)
    expected = logits + 1.5 * np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], dtype="float32")
    layer = RepeatBonus(1.5)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(logits, rows)), expected)
    assert not layer.trainable_weights  # chosen on validation or set, never trained
    # As the export traces it: batch, length and catalog size unknown.
    traced = tf.function(
        lambda lo, r: layer(lo, r),
        input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None, None], tf.int32)],
    )
    np.testing.assert_allclose(traced(logits, rows).numpy(), expected)
    assert ops.convert_to_numpy(session_items(rows[:, :0], 5)).sum() == 0  # no items at all
    # Under a mixed policy it still adds in float32, to the float32 logits the model scores.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = RepeatBonus(1.5)
    finally:
        keras.config.set_dtype_policy(previous)
    np.testing.assert_allclose(ops.convert_to_numpy(mixed(logits, rows)), expected)
    with pytest.raises(ValueError, match="bonus"):
        RepeatBonus(-1.0)


def test_layers_round_trip_through_config():
    for layer in (
        SessionEncoder(width=8, num_heads=2, ff_dim=16),
        SessionEncoder(width=8, kind="gru"),
        ItemEncoder(VOCAB, 2),
        CategoryHeads([3, 4]),
        HierarchicalFusion(8),
        SessionPooling("attention"),
        TransformerBlock(8, 2, 16, causal=True),
        RepeatBonus(2.0),
    ):
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
