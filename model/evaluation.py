"""TFMA metrics and the eval config that gates a push.

The model returns its top-K ids (and top categories per level), never a catalog-wide
score vector, so the metrics here are computed from the top-K and the label, with the
same rank arithmetic as training and the benchmarks (`model.metrics`):

- `NextItemRanking`: HIT@K (= Recall@K with one target), MRR@K, NDCG@K, K in {5, 10, 20};
- `CategoryRanking`: HIT@K and MRR@K of the target's category at one level.

Slices come from `transform_features` (tail sessions, cold-start targets, session
length); gates are absolute thresholds and "no worse than the last blessed model".

Example:
    >>> config = eval_config(EvaluationConfig(), category_levels=2)  # doctest: +SKIP
    >>> Evaluator(..., eval_config=config)                               # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
import tensorflow_text  # noqa: F401  (the model's tokenizer ops, for TFMA's model loading)
from tensorflow_model_analysis.metrics import metric_types, metric_util

import contract
from contract import model_api
from contract.model_api import rank_metric
from model.config import EvaluationConfig
from model.metrics import rank_in_top_k, ranking_sums


class _RankCombiner(beam.CombineFn):
    """Mean of one rank metric (HIT/MRR/NDCG@K) over examples, from top-K lists and labels."""

    def __init__(self, key: metric_types.MetricKey, kind: str, k: int, predictions_key: str, label_feature: str | None):
        self._key, self._metric, self._k = key, rank_metric(kind, k), k
        self._predictions_key, self._label_feature = predictions_key, label_feature

    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]  # sum, count

    def _label(self, element: metric_types.StandardMetricInputs) -> np.ndarray:
        if self._label_feature is None:
            return np.asarray(element.get_labels(self._key.model_name)).reshape(-1)
        return np.asarray(element.get_combined_features(self._key.model_name)[self._label_feature]).reshape(-1)

    def add_input(self, accumulator: list[float], element: metric_types.StandardMetricInputs) -> list[float]:
        top_k = np.asarray(element.get_predictions(self._key.model_name)[self._predictions_key])
        label = self._label(element)
        ranks = rank_in_top_k(top_k.reshape(len(label), -1), label)
        accumulator[0] += ranking_sums(ranks, (self._k,))[self._metric]
        accumulator[1] += len(label)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list[float]]) -> list[float]:
        merged = [0.0, 0.0]
        for total, count in accumulators:
            merged[0] += total
            merged[1] += count
        return merged

    def extract_output(self, accumulator: list[float]) -> dict[metric_types.MetricKey, float]:
        return {self._key: accumulator[0] / max(accumulator[1], 1.0)}


def _rank_computations(
    name: str,
    kind: str,
    k: int,
    predictions_key: str,
    label_feature: str | None,
    eval_config=None,
    model_name: str = "",
    output_name: str = "",
    sub_key=None,
    aggregation_type=None,
    class_weights=None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    del eval_config, aggregation_type, class_weights
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, sub_key=sub_key, example_weighted=example_weighted
    )
    # The category label is a transformed feature; the item label is the model spec's label.
    include: dict[str, Any] | None = (
        {tfma.constants.TRANSFORMED_FEATURES_KEY: {}, tfma.constants.FEATURES_KEY: {}} if label_feature else None
    )
    return [
        metric_types.MetricComputation(
            keys=[key],
            preprocessors=[metric_types.StandardMetricInputsPreprocessor(include_filter=include)],
            combiner=_RankCombiner(key, kind, k, predictions_key, label_feature),
        )
    ]


class NextItemRanking(metric_types.Metric):
    """One of HIT@K (= Recall@K with one target), MRR@K or NDCG@K of the next item.

    One value per metric, so that TFMA can attach a threshold to it by name.
    """

    def __init__(self, kind: str = "hit", k: int = 20, name: str = ""):
        super().__init__(
            metric_util.merge_per_key_computations(_rank_computations),
            name=name or rank_metric(kind, k),
            kind=kind,
            k=k,
            predictions_key=model_api.TOP_K_IDS,
            label_feature=None,
        )


class CategoryRanking(metric_types.Metric):
    """HIT@K or MRR@K of the next item's category at `level` (K up to the top categories served)."""

    def __init__(self, level: int = 1, kind: str = "hit", k: int = 1, name: str = ""):
        super().__init__(
            metric_util.merge_per_key_computations(_rank_computations),
            name=name or f"category_l{level}_{rank_metric(kind, k)}",
            kind=kind,
            k=k,
            predictions_key=model_api.top_categories(level),
            label_feature=model_api.target_category(level),
        )


metric_types.register_metric(NextItemRanking)
metric_types.register_metric(CategoryRanking)


def _metric_config(
    cls: type, thresholds: Sequence[tfma.PerSliceMetricThreshold] = (), **kwargs: Any
) -> tfma.MetricConfig:
    return tfma.MetricConfig(
        class_name=cls.__name__, module=__name__, config=json.dumps(kwargs), per_slice_thresholds=list(thresholds)
    )


def eval_config(config: EvaluationConfig, category_levels: int, top_categories: int = 3) -> tfma.EvalConfig:
    """Metrics, slices and gates. Gates apply to the overall slice only."""
    overall = [tfma.SlicingSpec()]

    def gate(floor: float) -> list[tfma.PerSliceMetricThreshold]:
        return [
            tfma.PerSliceMetricThreshold(
                slicing_specs=overall,
                threshold=tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(lower_bound={"value": floor}),
                    # A first model has no baseline and is judged on the floor alone.
                    change_threshold=tfma.GenericChangeThreshold(
                        direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -config.max_regression}
                    ),
                ),
            )
        ]

    floors = {("hit", 20): config.min_hit_at_20, ("mrr", 20): config.min_mrr_at_20}
    item_metrics = [
        _metric_config(NextItemRanking, gate(floors[kind, k]) if (kind, k) in floors else (), kind=kind, k=k)
        for k in config.ks
        for kind in ("hit", "mrr", "ndcg")
    ]
    category_metrics = [
        _metric_config(CategoryRanking, level=level, kind=kind, k=k)
        for level in range(1, category_levels + 1)
        for k in (1, 3)
        if k <= top_categories
        for kind in ("hit", "mrr")
        if not (kind == "mrr" and k == 1)  # MRR@1 is HIT@1
    ]
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=model_api.SERVE_EXAMPLES,
                label_key=contract.TARGET_ITEM_ID,
                preprocessing_function_names=[model_api.TRANSFORM_FEATURES],
            )
        ],
        slicing_specs=[
            tfma.SlicingSpec(),
            tfma.SlicingSpec(feature_keys=[model_api.TAIL_SESSION]),
            tfma.SlicingSpec(feature_keys=[model_api.COLD_START_TARGET]),
            tfma.SlicingSpec(feature_keys=[model_api.SESSION_LENGTH]),
        ],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[tfma.MetricConfig(class_name="ExampleCount"), *item_metrics, *category_metrics],
            )
        ],
    )
