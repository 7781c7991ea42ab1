"""Neighbour sessions (A2D-MTL) come from training sessions only, never from the batch or the session itself."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import contract
from contract import model_api
from model import export, features
from model.config import ModelConfig, TrainingSetup
from model.inputs import session_keys
from model.layers import NeighbourSessions
from model.model import build_model
from model.neighbours import NeighbourIndex, build_neighbour_index
from tests.conftest import SMALL
from tests.conftest import pad as _pad


def _training_sessions(train_files: str) -> dict[str, tuple[int, list[str]]]:
    """Session id -> (last click time, whole session) from the training examples, the slow obvious way."""
    sessions: dict[str, tuple[int, int, list[str]]] = {}
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(train_files), compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        session = feature[contract.SESSION_ID].bytes_list.value[0].decode()
        length = feature[contract.PREFIX_LENGTH].int64_list.value[0]
        items = [v.decode() for v in feature[contract.PREFIX_ITEM_IDS].bytes_list.value]
        items.append(feature[contract.TARGET_ITEM_ID].bytes_list.value[0].decode())
        if session not in sessions or length > sessions[session][0]:
            sessions[session] = (length, feature[contract.TARGET_TIMESTAMP].int64_list.value[0], items)
    return {session: (time, items) for session, (_, time, items) in sessions.items()}


def test_the_index_holds_the_most_recent_whole_training_sessions(ingested):
    train_files = ingested.split_files["train"]
    index = build_neighbour_index(train_files, size=40, max_length=50)
    by_key = {
        int(session_keys(tf.constant([session])).numpy()[0]): entry
        for session, entry in _training_sessions(train_files).items()
    }
    assert index.sessions == 40 and len(set(index.keys.tolist())) == 40
    starts = np.concatenate([[0], np.cumsum(index.lengths)])
    for i, key in enumerate(index.keys.tolist()):
        assert index.item_ids[starts[i] : starts[i + 1]].tolist() == by_key[key][1]
    indexed_times = [by_key[key][0] for key in index.keys.tolist()]
    others = [time for key, (time, _) in by_key.items() if key not in set(index.keys.tolist())]
    assert min(indexed_times) >= max(others)


def test_index_rows_drop_items_the_catalog_lacks_and_sessions_left_empty():
    index = NeighbourIndex.from_sessions([["a", "x"], ["y"], ["b", "a"]], np.array([5, 6, 7]))
    rows, segments, keys = index.rows(lambda ids: np.array([{"a": 0, "b": 1}.get(i, -1) for i in ids]))
    assert rows.tolist() == [0, 1, 0] and segments.tolist() == [0, 1, 1] and keys.tolist() == [5, 7]


def test_excluded_sessions_are_never_read():
    layer = NeighbourSessions(neighbours=2)
    index = np.eye(4, 8, dtype=np.float32) + 0.01
    prefix = np.tile(index[:1], (1, 3, 1))[:, :, :]  # the session of index row 0, three times
    mask = np.ones((1, 3), bool)
    alone = ops.convert_to_numpy(layer(prefix, mask, index))
    keys = np.array([10, 11, 12, 13], np.int64)
    excluded = ops.convert_to_numpy(layer(prefix, mask, index, keys, np.array([10], np.int64)))
    stranger = ops.convert_to_numpy(layer(prefix, mask, index, keys, np.array([99], np.int64)))
    np.testing.assert_allclose(stranger, alone, atol=1e-6)
    without_row = ops.convert_to_numpy(layer(prefix, mask, index[1:]))
    np.testing.assert_allclose(excluded, without_row, atol=1e-6)
    assert not np.allclose(alone, excluded)


def test_a_training_example_does_not_read_its_own_session(ingested_catalog):
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec", **SMALL, neighbour_sessions=20, neighbours=3, repeat_bonus=0.0)
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    ids = catalog.item_ids.astype(str)
    sessions = [[ids[i], ids[i + 1], ids[i + 2]] for i in range(0, 60, 3)]
    model.set_neighbour_index(NeighbourIndex.from_sessions(sessions, np.arange(20)), catalog.item_ids)
    rows = np.full((1, config.max_prefix_length), -1, np.int32)
    rows[0, :3] = [0, 1, 2]  # index session 0 itself
    own = {features.PREFIX_ROWS: rows, features.SESSION_KEY: np.array([0], np.int64)}
    stranger = {features.PREFIX_ROWS: rows, features.SESSION_KEY: np.array([99], np.int64)}
    reads_own = ops.convert_to_numpy(model(stranger)[features.SESSION_VECTOR])
    excluded = ops.convert_to_numpy(model(own)[features.SESSION_VECTOR])
    model.set_neighbour_index(NeighbourIndex.from_sessions(sessions[1:], np.arange(1, 20)), catalog.item_ids)
    without = ops.convert_to_numpy(model(stranger)[features.SESSION_VECTOR])
    np.testing.assert_allclose(excluded, without, atol=1e-5)
    assert not np.allclose(reads_own, excluded, atol=1e-4)


def test_neighbour_knobs_are_validated():
    with pytest.raises(ValueError, match="more than"):
        ModelConfig.preset("M2TRec", neighbour_sessions=5, neighbours=5)
    with pytest.raises(ValueError, match="neighbour_refresh_steps >= 1"):
        ModelConfig.preset("M2TRec", neighbour_sessions=20, neighbour_refresh_steps=0)
    model_config = ModelConfig.preset("M2TRec")
    assert model_config.neighbour_sessions == 0


def test_recommendations_do_not_depend_on_the_batch(exported):
    """The leak the issue names: a session scored alone, in a batch, and in a shuffled batch gets the same answer."""
    assert exported.setup.model.neighbour_sessions > 0, "the shared export reads neighbour sessions"
    loaded = tf.saved_model.load(exported.export_dir)
    serve = loaded.signatures[model_api.SERVING_DEFAULT]

    def answer(sessions):
        out = serve(**{model_api.ITEM_IDS: tf.constant(_pad(sessions))})
        return out[model_api.TOP_K_IDS].numpy(), out[model_api.TOP_K_SCORES].numpy()

    sessions = exported.sessions
    batched_ids, batched_scores = answer(sessions)
    order = np.random.default_rng(0).permutation(len(sessions))
    shuffled_ids, shuffled_scores = answer([sessions[i] for i in order])
    for i, session in enumerate(sessions):
        alone_ids, alone_scores = answer([session])
        position = int(np.flatnonzero(order == i)[0])
        assert alone_ids[0].tolist() == batched_ids[i].tolist() == shuffled_ids[position].tolist()
        np.testing.assert_allclose(alone_scores[0], batched_scores[i], atol=1e-5)
        np.testing.assert_allclose(alone_scores[0], shuffled_scores[position], atol=1e-5)


def _model(ingested_catalog, **options):
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec", **SMALL, **options)
    return config, build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)


def test_an_index_is_refused_where_it_cannot_serve(ingested_catalog):
    catalog = ingested_catalog.catalog
    ids = catalog.item_ids.astype(str)
    _, plain = _model(ingested_catalog)
    with pytest.raises(ValueError, match="reads no neighbour sessions"):
        plain.set_neighbour_index(NeighbourIndex.from_sessions([[ids[0]]], np.arange(1)), catalog.item_ids)
    _, model = _model(ingested_catalog, neighbour_sessions=20, neighbours=3)
    known = [[ids[i]] for i in range(3)]
    unknown = [["not-in-the-catalog"]] * 5  # dropped: they leave 3 sessions, not more than 3 neighbours
    with pytest.raises(ValueError, match="3 sessions with items in this catalog; it needs more than neighbours=3"):
        model.set_neighbour_index(NeighbourIndex.from_sessions(known + unknown, np.arange(8)), catalog.item_ids)
    too_many = [[ids[i]] for i in range(21)]  # the bank holds neighbour_sessions=20
    with pytest.raises(ValueError, match="21 sessions, more than neighbour_sessions=20"):
        model.set_neighbour_index(NeighbourIndex.from_sessions(too_many, np.arange(21)), catalog.item_ids)
    model.set_neighbour_index(NeighbourIndex.from_sessions([*known, [ids[3]]], np.arange(4)), catalog.item_ids)
    with pytest.raises(ValueError, match="needs the catalog's item_ids"):
        model.set_catalog(catalog.features)  # the index's sessions are found again by id


def test_an_export_of_a_model_without_its_index_is_refused(ingested_catalog):
    config, model = _model(ingested_catalog, neighbour_sessions=20, neighbours=3)
    setup = TrainingSetup(config, ingested_catalog.config)
    with pytest.raises(ValueError, match="reads neighbour sessions, but the model holds no index"):
        export.RecommenderModule(model, ingested_catalog.catalog, ingested_catalog.tft_output, setup)


def test_the_gradient_reaches_only_the_chosen_sessions_and_matches_a_plain_top_k():
    """The search runs without gradient; the chosen similarities, recomputed, must give the plain layer's gradient."""
    rng = np.random.default_rng(0)
    prefix = tf.constant(rng.normal(size=(3, 4, 8)), tf.float32)
    mask = tf.constant([[True] * 4, [True, False, False, False], [True, True, False, False]])
    index = tf.Variable(rng.normal(size=(12, 8)).astype(np.float32))
    keys = np.arange(12, dtype=np.int64)
    own = np.array([0, 5, 99], np.int64)
    layer = NeighbourSessions(neighbours=3)

    def plain(prefix, index):  # Eq. 16-19 written out, with the full similarity on the tape
        session = tf.math.l2_normalize(tf.reduce_sum(prefix * tf.cast(mask[..., None], tf.float32), 1), -1)
        similarity = tf.matmul(session, tf.math.l2_normalize(index, -1), transpose_b=True)
        similarity = tf.where(own[:, None] == keys[None, :], -2.0, similarity)
        top, chosen = tf.math.top_k(similarity, 3)
        return tf.reduce_sum(tf.gather(index, chosen) * tf.nn.softmax(top)[..., None], 1)

    gradients = []
    for run in (lambda p, i: layer(p, mask, i, keys, own), plain):
        with tf.GradientTape() as tape:
            tape.watch(prefix)
            out = run(prefix, index)
            loss = tf.reduce_sum(out * tf.range(8, dtype=tf.float32))
        gradients.append([out, *tape.gradient(loss, [prefix, index])])
    for ours, theirs in zip(*gradients):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_the_index_means_are_each_sessions_mean_item_vector_with_its_gradient(ingested_catalog):
    """The sparse product of the item shares (repeated clicks included) is the gather and mean it replaces."""
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec", **SMALL, neighbour_sessions=20, neighbours=3)
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    ids = catalog.item_ids.astype(str)
    sessions = [[ids[i], ids[i + 1], ids[i], ids[(7 * i) % 40]] for i in range(20)]  # repeats in every session
    model.set_neighbour_index(NeighbourIndex.from_sessions(sessions, np.arange(20)), catalog.item_ids)
    row_of = {item: row for row, item in enumerate(ids)}
    rows, segments, _ = model.neighbour_index.rows(lambda items: np.array([row_of[str(i)] for i in items]))
    vectors = tf.Variable(np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32))
    weights = tf.constant(np.random.default_rng(1).normal(size=(20, 8)), tf.float32)
    results = []
    for means in (
        lambda: model.neighbour_index_vectors(vectors),
        lambda: tf.math.segment_mean(tf.gather(vectors, rows), segments),
    ):
        with tf.GradientTape() as tape:
            out = means()
            loss = tf.reduce_sum(out * weights)
        results.append((out.numpy(), tf.convert_to_tensor(tape.gradient(loss, vectors)).numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_training_reads_the_bank_refreshed_every_n_steps_and_no_gradient_through_it(ingested_catalog):
    """Training's neighbours come from the bank: exact right after a refresh, stale until the next,
    refreshed every `neighbour_refresh_steps` steps; the index passes no gradient to the item encoder."""
    catalog = ingested_catalog.catalog
    config, model = _model(
        ingested_catalog, use_item_id=True, neighbour_sessions=25, neighbours=3, neighbour_refresh_steps=3, dropout=0.0
    )
    ids = catalog.item_ids.astype(str)
    sessions = [[ids[i], ids[i + 1], ids[(7 * i) % 40]] for i in range(20)]
    model.set_neighbour_index(NeighbourIndex.from_sessions(sessions, np.arange(20)), catalog.item_ids)
    rows = np.full((2, config.max_prefix_length), -1, np.int32)
    rows[:, :2] = [[40, 41], [42, 43]]  # items of no indexed session
    inputs = {features.PREFIX_ROWS: rows, features.SESSION_KEY: np.array([98, 99], np.int64)}

    def session(training):
        return ops.convert_to_numpy(model(inputs, training=training)[features.SESSION_VECTOR])

    np.testing.assert_allclose(session(True), session(False), atol=1e-5)  # step 0 refreshes
    embeddings = model.item_encoder.attribute_embeddings[features.ITEM_ID_INDEX].embeddings
    embeddings.assign(embeddings + 0.5 * np.random.default_rng(0).normal(size=embeddings.shape))
    assert not np.allclose(session(True), session(False), atol=1e-4)  # step 1 reads the stale bank
    session(True)  # step 2
    np.testing.assert_allclose(session(True), session(False), atol=1e-5)  # step 3 refreshes
    np.testing.assert_allclose(
        ops.convert_to_numpy(model.neighbour_bank)[:20],
        ops.convert_to_numpy(model.neighbour_index_vectors()),
        atol=1e-5,
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(inputs, training=True)[features.SESSION_VECTOR])
    gradient = tf.convert_to_tensor(tape.gradient(loss, embeddings.value)).numpy()
    touched = np.flatnonzero(np.abs(gradient).sum(axis=1))
    assert set(touched) == set(catalog.features[features.ITEM_ID_INDEX][[40, 41, 42, 43]].tolist())
