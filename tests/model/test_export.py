"""The exported SavedModel: what TF Serving would load and answer."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import contract
from components.session_example_gen.sessionize import CatalogItem, catalog_example
from contract import model_api
from model import export, features
from model.catalog import catalog_from_examples
from model.inputs import item_table, prefix_rows
from model.layers.top_k import TOP_K_BLOCK, top_k_by_blocks
from tests.conftest import CANDIDATE_CATEGORIES, NEW_ITEM
from tests.conftest import pad as _pad


def _keras_top_k(model, catalog, sessions, k):
    rows, _ = prefix_rows(
        tf.ragged.constant(sessions), item_table(catalog.item_ids), model.model_config.max_prefix_length
    )
    logits = ops.convert_to_numpy(model({features.PREFIX_ROWS: rows.numpy()})[features.ITEM_LOGITS])
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return catalog.item_ids[order].tolist(), np.take_along_axis(logits, order, axis=1)


_RELOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops the graph uses, as TF Serving links them
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(item_ids=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({"ids": out["top_k_ids"].numpy().astype(str).tolist(), "scores": out["top_k_scores"].numpy().tolist()}))
"""


def test_reloaded_in_a_fresh_process_gives_the_keras_top_k(exported):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", _RELOAD, exported.export_dir, json.dumps(_pad(exported.sessions).tolist())],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    served = json.loads(result.stdout.strip().splitlines()[-1])
    ids, scores = _keras_top_k(exported.model, exported.catalog, exported.sessions, 20)
    np.testing.assert_allclose(served["scores"], scores, rtol=1e-4, atol=1e-4)
    # Items of identical vectors tie exactly; the served top-K and argsort may order those differently.
    for served_ids, keras_ids, row in zip(served["ids"], ids, scores):
        for j in np.flatnonzero(np.array(served_ids) != np.array(keras_ids)):
            assert np.isclose(row, row[j], rtol=0, atol=1e-5).sum() > 1, (j, served_ids, keras_ids)


def test_the_sessions_own_items_get_the_repeat_bonus_in_both_recommending_signatures(exported, ingested):
    """Served scores are the session-item score, plus the repeat bonus where the item is one of the session's own."""
    model, catalog, sessions = exported.model, exported.catalog, exported.sessions
    rows, _ = prefix_rows(
        tf.ragged.constant(sessions), item_table(catalog.item_ids), model.model_config.max_prefix_length
    )
    session = model({features.PREFIX_ROWS: rows.numpy()})[features.SESSION_VECTOR]
    plain = ops.convert_to_numpy(model.score(session, model.encode_items()))
    bonus = float(ops.convert_to_numpy(model.repeat_bonus.bonus))
    assert bonus == model.model_config.repeat_bonus > 0
    column = {item: j for j, item in enumerate(catalog.item_ids)}
    loaded = tf.saved_model.load(exported.export_dir)
    by_metadata = loaded.signatures[model_api.FROM_METADATA](
        **{k: tf.constant(v) for k, v in _metadata(ingested, sessions).items()}
    )
    own_items_served = 0
    for out in (_serve(loaded, sessions), by_metadata):
        for i, (ids, scores) in enumerate(
            zip(out[model_api.TOP_K_IDS].numpy().astype(str), out[model_api.TOP_K_SCORES].numpy())
        ):
            own = np.array([item in sessions[i][-model.model_config.max_prefix_length :] for item in ids])
            expected = plain[i, [column[item] for item in ids]] + bonus * own
            np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
            own_items_served += own.sum()
    assert own_items_served > 0


def _serve(module_or_dir, sessions):
    loaded = tf.saved_model.load(module_or_dir) if isinstance(module_or_dir, str) else module_or_dir
    return loaded.signatures["serving_default"](item_ids=tf.constant(_pad(sessions).astype(bytes)))


def test_outputs_unknown_ids_and_categories(exported):
    out = _serve(exported.export_dir, exported.sessions[:2])
    assert out[model_api.TOP_K_IDS].shape == (2, 20) and out[model_api.TOP_K_SCORES].dtype == tf.float32
    assert out[model_api.UNKNOWN_ITEMS].numpy().tolist() == [0, 0]
    for level in range(1, exported.catalog.category_levels + 1):
        names = out[model_api.top_categories(level)].numpy()
        assert names.shape == (2, exported.setup.model.top_categories)
        # A level-n category is a path of at most n levels (shallower items repeat their leaf).
        assert all(name == model_api.UNKNOWN_CATEGORY or name.count(b" > ") <= level - 1 for name in names.ravel())
    # Unknown ids are left out and counted; the recommendation is the one without them.
    with_unknown = _serve(exported.export_dir, [["no-such-item"] + exported.sessions[0]])
    assert with_unknown[model_api.UNKNOWN_ITEMS].numpy().tolist() == [1]
    assert with_unknown[model_api.TOP_K_IDS].numpy()[0].tolist() == out[model_api.TOP_K_IDS].numpy()[0].tolist()


@pytest.mark.parametrize("session", [[""], ["no-such-item"]])
def test_a_session_without_known_items_is_answered_on_its_own_row(exported, session):
    # Not an error that would fail the sessions batched with it: known_items 0, no recommendations.
    known = exported.sessions[0]
    out = _serve(exported.export_dir, [known, session])
    alone = _serve(exported.export_dir, [known])
    assert out[model_api.KNOWN_ITEMS].numpy()[1] == 0 and out[model_api.KNOWN_ITEMS].numpy()[0] > 0
    assert (
        out[model_api.TOP_K_IDS].numpy()[1].tolist() == [b""] * 20 and not out[model_api.TOP_K_SCORES].numpy()[1].any()
    )
    assert out[model_api.TOP_K_IDS].numpy()[0].tolist() == alone[model_api.TOP_K_IDS].numpy()[0].tolist()
    np.testing.assert_allclose(
        out[model_api.TOP_K_SCORES].numpy()[0], alone[model_api.TOP_K_SCORES].numpy()[0], rtol=1e-5
    )
    assert out[model_api.top_categories(1)].numpy()[1].tolist() == [b""] * exported.setup.model.top_categories


def test_an_item_added_after_training_can_be_recommended(exported, ingested, tmp_path):
    # A new item in a known category, with a title of known words; no clicks, no trained id.
    template = exported.catalog.item_ids[0]
    raw = next(
        e
        for e in ingested.catalog_examples
        if e.features.feature[contract.ITEM_ID].bytes_list.value[0].decode() == template
    )
    title = raw.features.feature[contract.TITLE].bytes_list.value[0].decode()
    levels = tuple(v.decode() for v in raw.features.feature[contract.CATEGORY_PATH].bytes_list.value)
    new_item = catalog_example(
        CatalogItem(NEW_ITEM, ((contract.BRAND, ""), (contract.TITLE, title)), levels, 10.0, True)
    )
    examples = [*ingested.catalog_examples, new_item]
    catalog = catalog_from_examples(
        [e.SerializeToString() for e in examples], exported.tft_output, exported.setup.preprocessing
    )
    setup = dataclasses.replace(exported.setup, model=dataclasses.replace(exported.setup.model, top_k=len(catalog)))
    module = export.export_serving_model(exported.model, catalog, exported.tft_output, setup, str(tmp_path / "1"))
    out = _serve(str(tmp_path / "1"), exported.sessions[:3])
    ids = out[model_api.TOP_K_IDS].numpy().astype(str)
    scores = out[model_api.TOP_K_SCORES].numpy()
    assert (ids == NEW_ITEM).sum(axis=1).tolist() == [1, 1, 1]
    assert np.isfinite(scores[ids == NEW_ITEM]).all()
    # Its vector comes from its metadata: the same as the template item's, bar the price.
    vectors = module.item_vectors.numpy()
    rows = catalog.row_of([NEW_ITEM, template])
    assert np.isfinite(vectors[rows[0]]).all() and np.linalg.norm(vectors[rows[0]]) > 0
    exported.model.set_catalog(exported.catalog.features, exported.catalog.item_ids)  # leave the shared model as it was


def _metadata(ingested, sessions):
    by_id = {e.features.feature[contract.ITEM_ID].bytes_list.value[0].decode(): e for e in ingested.catalog_examples}

    def field(item, name):
        values = by_id[item].features.feature[name]
        return values.bytes_list.value[0].decode() if values.bytes_list.value else ""

    padded = _pad(sessions)
    titles = [[field(i, contract.TITLE) if i else "" for i in row] for row in padded]
    brands = [[field(i, contract.BRAND) if i else "" for i in row] for row in padded]
    paths = [
        [
            contract.join_category_path(
                [v.decode() for v in by_id[i].features.feature[contract.CATEGORY_PATH].bytes_list.value]
            )
            if i
            else ""
            for i in row
        ]
        for row in padded
    ]
    prices = [
        [
            by_id[i].features.feature[contract.PRICE].float_list.value[0]
            if i and by_id[i].features.feature[contract.PRICE].float_list.value
            else -1.0
            for i in row
        ]
        for row in padded
    ]
    return dict(
        item_ids=padded.astype(bytes),
        titles=np.array(titles, dtype=bytes),
        category_paths=np.array(paths, dtype=bytes),
        brands=np.array(brands, dtype=bytes),
        prices=np.array(prices, dtype=np.float32),
    )


def test_recommend_from_metadata_matches_serving_by_id(exported, ingested):
    loaded = tf.saved_model.load(exported.export_dir)
    by_id = loaded.signatures["serving_default"](item_ids=tf.constant(_pad(exported.sessions).astype(bytes)))
    inputs = _metadata(ingested, exported.sessions)
    by_metadata = loaded.signatures[model_api.FROM_METADATA](**{k: tf.constant(v) for k, v in inputs.items()})
    # M2TRec is id-free: the same metadata gives the same item vectors, so the same answer.
    assert by_metadata[model_api.TOP_K_IDS].numpy().tolist() == by_id[model_api.TOP_K_IDS].numpy().tolist()
    # Items never seen (no id at all) still get recommendations.
    anonymous = {**inputs, "item_ids": np.full_like(inputs["item_ids"], b"")}
    out = loaded.signatures[model_api.FROM_METADATA](**{k: tf.constant(v) for k, v in anonymous.items()})
    assert np.isfinite(out[model_api.TOP_K_SCORES].numpy()).all()


def test_transform_features_feeds_serving_default_and_gives_slices(exported, ingested):
    loaded = tf.saved_model.load(exported.export_dir)
    records = [
        r.numpy()
        for r in tf.data.TFRecordDataset(tf.io.gfile.glob(ingested.split_files["test"]), compression_type="GZIP").take(
            200
        )
    ]
    transformed = loaded.signatures[model_api.TRANSFORM_FEATURES](examples=tf.constant(records))
    levels = range(1, exported.catalog.category_levels + 1)
    assert set(transformed) == {
        model_api.ITEM_IDS,
        contract.TARGET_ITEM_ID,
        model_api.TARGET_TRAIN_CLICKS,
        model_api.TAIL_SESSION,
        model_api.COLD_START_TARGET,
        model_api.SESSION_LENGTH,
        *(model_api.target_category(k) for k in levels),
    }
    direct = _serve(exported.export_dir, exported.sessions)
    via = loaded.signatures["serving_default"](item_ids=transformed[model_api.ITEM_IDS][:6])
    assert via[model_api.TOP_K_IDS].numpy().tolist() == direct[model_api.TOP_K_IDS].numpy().tolist()

    # Slices agree with the catalog's training clicks, computed here in NumPy.
    catalog = exported.catalog
    clicks = catalog.features[features.TRAIN_CLICKS]
    examples = [tf.train.Example.FromString(r) for r in records]
    targets = [e.features.feature[contract.TARGET_ITEM_ID].bytes_list.value[0].decode() for e in examples]
    prefixes = [[v.decode() for v in e.features.feature[contract.PREFIX_ITEM_IDS].bytes_list.value] for e in examples]
    target_clicks = clicks[catalog.row_of(targets)]
    tail = [min([target_clicks[i], *clicks[catalog.row_of(p)]]) < model_api.TAIL_CLICKS for i, p in enumerate(prefixes)]
    assert transformed[model_api.TARGET_TRAIN_CLICKS].numpy().tolist() == target_clicks.tolist()
    assert transformed[model_api.TAIL_SESSION].numpy().astype(bool).tolist() == tail
    assert transformed[model_api.COLD_START_TARGET].numpy().tolist() == (target_clicks == 0).astype(int).tolist()
    assert set(transformed[model_api.SESSION_LENGTH].numpy()) <= set(model_api.SESSION_LENGTH_BUCKETS[1])
    lengths = {len(p): b for p, b in zip(prefixes, transformed[model_api.SESSION_LENGTH].numpy())}
    assert lengths.get(1, b"1") == b"1" and lengths.get(3, b"3-4") == b"3-4" and lengths.get(12, b"10+") == b"10+"
    leaf = transformed[model_api.target_category(exported.catalog.category_levels)].numpy()
    assert all(name.count(b" > ") >= 2 for name in leaf)  # leaves of the 3-4 level tree


def _all_logits(exported, sessions):
    rows, _ = prefix_rows(
        tf.ragged.constant(sessions), item_table(exported.catalog.item_ids), exported.setup.model.max_prefix_length
    )
    return ops.convert_to_numpy(exported.model({features.PREFIX_ROWS: rows.numpy()})[features.ITEM_LOGITS])


def test_the_candidate_signature_scores_only_the_items_of_the_top_leaf_categories(exported):
    loaded = tf.saved_model.load(exported.export_dir)
    sessions = exported.sessions
    item_ids = tf.constant(_pad(sessions).astype(bytes))
    out = loaded.signatures[model_api.IN_TOP_CATEGORIES](item_ids=item_ids)
    full = loaded.signatures[model_api.SERVING_DEFAULT](item_ids=item_ids)
    assert out[model_api.TOP_K_IDS].shape == (len(sessions), 20)
    levels = exported.catalog.category_levels
    assert exported.setup.model.top_categories == CANDIDATE_CATEGORIES  # so top_categories_l{leaf} names them
    np.testing.assert_array_equal(out[model_api.top_categories(levels)], full[model_api.top_categories(levels)])
    leaf_names = np.asarray(
        loaded.category_names[-1].numpy()[exported.catalog.features[features.category_level(levels)]]
    )
    row_of = {item: row for row, item in enumerate(exported.catalog.item_ids.astype(str))}
    logits = _all_logits(exported, sessions)
    for i, (ids, scores) in enumerate(zip(out[model_api.TOP_K_IDS].numpy(), out[model_api.TOP_K_SCORES].numpy())):
        top_leaves = set(out[model_api.top_categories(levels)].numpy()[i])
        candidates = [row for row, name in enumerate(leaf_names) if name in top_leaves]
        # The exact top-K of the full scores, restricted to the candidates.
        expected = sorted(candidates, key=lambda row: -logits[i, row])[:20]
        served = [row_of[item.decode()] for item in ids if item]
        assert len(served) == min(20, len(candidates))
        np.testing.assert_allclose(scores[: len(served)], logits[i, served], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(scores[: len(served)], logits[i, expected], rtol=1e-5, atol=1e-5)
        # Fewer candidates than K: the list ends in empty slots.
        assert ids[len(served) :].tolist() == [b""] * (20 - len(served)) and not scores[len(served) :].any()


def test_candidates_of_every_category_are_serving_default(exported):
    every = exported.model.vocab_sizes[features.category_level(exported.catalog.category_levels)]
    module = export.RecommenderModule(exported.model, exported.catalog, exported.tft_output, exported.setup)
    item_ids = tf.constant(_pad(exported.sessions).astype(bytes))
    out = module.recommend_ids(item_ids, candidate_categories=every)
    full = module.serve(item_ids)
    np.testing.assert_allclose(out[model_api.TOP_K_SCORES], full[model_api.TOP_K_SCORES], rtol=1e-5, atol=1e-5)
    assert (out[model_api.TOP_K_IDS].numpy() == full[model_api.TOP_K_IDS].numpy()).mean() > 0.95  # up to near-ties


def test_graph_holds_only_tf_and_tensorflow_text_ops(exported):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(exported.export_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    graph = saved.meta_graphs[0].graph_def
    ops_used = {node.op for node in graph.node} | {n.op for fn in graph.library.function for n in fn.node_def}
    assert not ops_used & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    import tensorflow_text  # noqa: F401  (registers its ops: the only ones allowed beyond TF's)
    from tensorflow.python.framework import op_def_registry

    assert not [op for op in ops_used if op_def_registry.get(op) is None]
    assert any("Tokenize" in op for op in ops_used)  # the Transform graph's tokenizer is inside


@pytest.mark.parametrize("items", [43_097, 128, 7])
def test_the_exports_padding_is_never_among_the_top_k(items):
    scores = np.random.default_rng(items).normal(size=(3, items)).astype(np.float32) - 10  # all below the padding's 0
    padded = export.pad_items(scores, axis=1)
    assert padded.shape[1] % TOP_K_BLOCK == 0
    values, indices = top_k_by_blocks(tf.constant(padded), 20, columns=items)
    expected = tf.math.top_k(scores, k=min(20, items))
    np.testing.assert_array_equal(values.numpy(), expected.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected.indices.numpy())
