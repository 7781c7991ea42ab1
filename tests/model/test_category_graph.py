"""A2D-MTL's category graph: counted from the training sessions, attended along its edges only."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import contract
from model import export
from model.category_graph import category_transitions
from model.config import ModelConfig, TrainingSetup
from model.inputs import session_dataset
from model.layers import CategoryGraphAttention
from model.model import build_model
from tests.conftest import SMALL


def test_transitions_are_the_training_sessions_consecutive_leaf_categories(ingested, ingested_catalog):
    catalog = ingested_catalog.catalog
    leaves = catalog.features["category_l4"]
    data = session_dataset(ingested.split_files["train"], catalog.item_ids, 50, 256, shuffle=True)
    sources, targets, weights = category_transitions(data, leaves)

    row_of = {item: row for row, item in enumerate(catalog.item_ids.astype(str))}
    counts: collections.Counter = collections.Counter()
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(ingested.split_files["train"]), compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        prefix = [v.decode() for v in feature[contract.PREFIX_ITEM_IDS].bytes_list.value if v.decode() in row_of]
        target = feature[contract.TARGET_ITEM_ID].bytes_list.value[0].decode()
        if prefix and target in row_of:
            counts[(leaves[row_of[prefix[-1]]], leaves[row_of[target]])] += 1
    out = collections.Counter()
    for (source, _), count in counts.items():
        out[source] += count
    want = {pair: count / out[pair[0]] for pair, count in counts.items()}
    got = {(s, t): w for s, t, w in zip(sources.tolist(), targets.tolist(), weights.tolist())}
    assert got.keys() == want.keys()
    for pair, weight in want.items():
        assert got[pair] == pytest.approx(weight, rel=1e-6)


def test_graph_attention_reads_a_category_and_its_in_neighbours_only():
    layer = CategoryGraphAttention(width=4)
    edges = tuple(ops.convert_to_tensor(x) for x in ([1, 2, 0], [0, 0, 3], [0.5, 0.5, 1.0]))  # 1->0, 2->0, 0->3
    embeddings = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    before = ops.convert_to_numpy(layer(embeddings, edges))
    unrelated = embeddings.copy()
    unrelated[3] += 1.0  # category 3 points nowhere: category 0 does not read it
    neighbour = embeddings.copy()
    neighbour[1] += 1.0  # category 1 -> 0
    np.testing.assert_allclose(ops.convert_to_numpy(layer(unrelated, edges))[0], before[0], atol=1e-6)
    assert not np.allclose(ops.convert_to_numpy(layer(neighbour, edges))[0], before[0], atol=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(neighbour, edges))[4], before[4], atol=1e-6)  # alone


def test_the_category_graph_needs_the_channel():
    with pytest.raises(ValueError, match="category_channel"):
        ModelConfig.preset("M2TRec", category_graph=True)
    preset = ModelConfig.preset("A2D-MTL")
    assert preset.category_channel and preset.category_graph and preset.readout_weighting == "adaptive_entmax"
    assert not ModelConfig.preset("A2D-MTL_wo_EXP").category_channel
    assert ModelConfig.preset("A2D-MTL_wo_AdaSPA").readout_weighting == "entmax"


def test_a_graph_is_refused_where_it_cannot_serve(ingested_catalog):
    catalog = ingested_catalog.catalog
    edges = (np.array([0]), np.array([1]), np.array([1.0]))
    no_graph = ModelConfig.preset("M2TRec", **SMALL, category_channel=True)
    with pytest.raises(ValueError, match="has no category graph"):
        build_model(no_graph, catalog.vocab_sizes, catalog.category_levels, catalog.features).set_category_graph(*edges)
    config = ModelConfig.preset("M2TRec", **SMALL, category_channel=True, category_graph=True)
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    setup = TrainingSetup(config, ingested_catalog.config)
    with pytest.raises(ValueError, match="has a category graph, but the model holds none"):
        export.RecommenderModule(model, catalog, ingested_catalog.tft_output, setup)
