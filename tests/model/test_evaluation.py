"""The TFMA metrics: hand-made cases, and TFMA against NumPy up to the order of tied items."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types

import contract
from contract import model_api
from model.config import EvaluationConfig
from model.evaluation import CategoryRanking, NextItemRanking, eval_config
from model.metrics import ranking_metrics


def _combine(metrics: list[metric_types.Metric], elements: list[dict]) -> dict[str, float]:
    result = {}
    for metric in metrics:
        (computation,) = metric.computations()
        combiner = computation.combiner
        accumulator = combiner.create_accumulator()
        for element in elements:
            accumulator = combiner.add_input(accumulator, metric_types.StandardMetricInputs(element))
        result.update({key.name: value for key, value in combiner.extract_output(accumulator).items()})
    return result


def _element(label: bytes, top_k: list[bytes], **transformed) -> dict:
    return {
        tfma.constants.LABELS_KEY: np.array([label]),
        tfma.constants.PREDICTIONS_KEY: {
            model_api.TOP_K_IDS: np.array(top_k),
            **{model_api.top_categories(1): np.array(transformed.pop("top_categories", [b"?"]))},
        },
        tfma.constants.TRANSFORMED_FEATURES_KEY: {k: np.array([v]) for k, v in transformed.items()},
    }


def test_next_item_ranking_on_hand_made_cases():
    elements = [
        _element(b"a", [b"a", b"b", b"c"]),  # rank 0
        _element(b"c", [b"a", b"b", b"c"]),  # rank 2
        _element(b"z", [b"a", b"b", b"c"]),  # not in the top 3
    ]
    metrics = _combine([NextItemRanking(kind, k) for kind in ("hit", "mrr", "ndcg") for k in (1, 3)], elements)
    assert metrics["hit@1"] == pytest.approx(1 / 3)
    assert metrics["hit@3"] == pytest.approx(2 / 3)
    assert metrics["mrr@3"] == pytest.approx((1 + 1 / 3) / 3)
    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / np.log2(4)) / 3)


def test_category_ranking_reads_the_label_from_transformed_features():
    elements = [
        _element(b"a", [b"a"], top_categories=[b"Home > Kitchen", b"Home"], **{model_api.target_category(1): b"Home"}),
        _element(b"a", [b"a"], top_categories=[b"Garden", b"Home"], **{model_api.target_category(1): b"Toys"}),
    ]
    metrics = _combine(
        [CategoryRanking(1, "hit", 1), CategoryRanking(1, "hit", 2), CategoryRanking(1, "mrr", 2)], elements
    )
    assert metrics["category_l1_hit@1"] == 0.0
    assert metrics["category_l1_hit@2"] == pytest.approx(0.5)
    assert metrics["category_l1_mrr@2"] == pytest.approx(0.25)


def _overall(result: tfma.EvalResult) -> dict[str, float]:
    for slice_key, metrics in result.slicing_metrics:
        if slice_key == ():
            return {name: value["doubleValue"] for name, value in metrics[""][""].items() if "doubleValue" in value}
    raise AssertionError("no overall slice")


def _rank_bounds(
    top_k_ids: np.ndarray, targets: np.ndarray, scoring_vectors: np.ndarray, item_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each target's best and worst rank when items with equal scoring vectors may come in any order.

    Items whose metadata match get equal vectors, so their scores tie up to rounding, and the
    rounding depends on the batch the item was scored in (TFMA batches as it likes). Ranks
    are K where the target is absent, as `rank_in_top_k` gives them.
    """
    column = {item: j for j, item in enumerate(item_ids)}
    vectors = scoring_vectors[:, : len(item_ids)]
    k = top_k_ids.shape[1]
    best, worst = [], []
    for top, target in zip(top_k_ids, targets):
        j = column.get(target)
        twins = set() if j is None else set(item_ids[np.abs(vectors - vectors[:, j : j + 1]).max(0) <= 1e-6])
        positions = [p for p, item in enumerate(top) if item == target or item in twins]
        best.append(min(positions, default=k))
        # A twin left out of the top K may take the target's place in another batch.
        worst.append(max(positions) if len(positions) == max(len(twins), 1) else k)
    return np.array(best), np.array(worst)


def test_tfma_matches_numpy_up_to_the_order_of_tied_items(exported, ingested, tmp_path):
    records = [
        r.numpy()
        for r in tf.data.TFRecordDataset(tf.io.gfile.glob(ingested.split_files["test"]), compression_type="GZIP").take(
            400
        )
    ]
    data = str(tmp_path / "test.tfrecord")
    with tf.io.TFRecordWriter(data) as writer:
        for record in records:
            writer.write(record)
    config = eval_config(EvaluationConfig(), category_levels=exported.catalog.category_levels)
    for metric in config.metrics_specs[0].metrics:  # no baseline here; the gates have their own test
        metric.ClearField("per_slice_thresholds")
    result = tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(eval_saved_model_path=exported.export_dir, eval_config=config),
        eval_config=config,
        data_location=data,
        output_path=str(tmp_path / "tfma"),
    )
    tfma_metrics = _overall(result)

    loaded = tf.saved_model.load(exported.export_dir)
    transformed = loaded.signatures[model_api.TRANSFORM_FEATURES](examples=tf.constant(records))
    served = loaded.signatures[model_api.SERVING_DEFAULT](item_ids=transformed[model_api.ITEM_IDS])
    best, worst = _rank_bounds(
        served[model_api.TOP_K_IDS].numpy(),
        transformed[contract.TARGET_ITEM_ID].numpy(),
        loaded.scoring_vectors.numpy(),
        loaded.item_ids.numpy(),
    )
    assert (best == worst).mean() > 0.9  # ties decide only a few ranks: the bounds below are tight
    upper, lower = ranking_metrics(best), ranking_metrics(worst)
    assert tfma_metrics["example_count"] == len(records)
    for name in ("hit@20", "mrr@20", "ndcg@20", "hit@5", "mrr@10"):
        assert lower[name] - 1e-6 <= tfma_metrics[name] <= upper[name] + 1e-6, name
    # Every slice the Evaluator reports exists.
    sliced = {tuple(k for k, _ in key) for key, _ in result.slicing_metrics}
    assert {(), (model_api.TAIL_SESSION,), (model_api.COLD_START_TARGET,), (model_api.SESSION_LENGTH,)} <= sliced
    assert os.path.exists(tmp_path / "tfma")
