"""A run's artifacts -> the run report's plain data (`reporting.run_report`).

Each reader takes artifact URIs (or artifacts, for their properties) and returns the data
class the page lays out. All reads go through TF's gfile, TFDV or TFMA, so URIs on object
stores work as local paths do.

Example:
    >>> evaluation = read_evaluation(evaluator_uri, blessed=True, split="test")  # doctest: +SKIP
    >>> [s.name for s in evaluation.slices][:2]                                  # doctest: +SKIP
    ['overall', 'cold_start_target=0']
"""

from __future__ import annotations

import json
import os
from typing import Any

from reporting.run_report import Evaluation, GateFailure, Push, SliceMetrics, SplitStatistics

DIFF_SUFFIX = "_diff"


def read_json(path: str, missing_ok: bool = False) -> Any:
    """The JSON file at `path`; None where it is absent and `missing_ok` (a file only some runs write)."""
    import tensorflow as tf

    if missing_ok and not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def read_statistics(uri: str, split_names: list[str]) -> dict[str, SplitStatistics]:
    """Examples, prefix length (mean, max, histogram) and distinct targets per split, from TFDV's stats."""
    import tensorflow_data_validation as tfdv

    import contract

    statistics = {}
    for split in split_names:
        dataset = tfdv.load_stats_binary(os.path.join(uri, f"Split-{split}", "FeatureStats.pb")).datasets[0]
        features = {tuple(f.path.step): f for f in dataset.features}
        prefix = features.get((contract.PREFIX_LENGTH,))
        target = features.get((contract.TARGET_ITEM_ID,))
        edges, counts = [], []
        if prefix is not None and prefix.num_stats.histograms:
            buckets = prefix.num_stats.histograms[0].buckets  # the standard (equal-width) histogram
            edges = [b.low_value for b in buckets] + [buckets[-1].high_value] if buckets else []
            counts = [b.sample_count for b in buckets]
        statistics[split] = SplitStatistics(
            examples=dataset.num_examples,
            mean_prefix_length=prefix.num_stats.mean if prefix is not None else float("nan"),
            max_prefix_length=prefix.num_stats.max if prefix is not None else float("nan"),
            distinct_targets=target.string_stats.unique if target is not None else None,
            prefix_length_edges=edges,
            prefix_length_counts=counts,
        )
    return statistics


def _slice_name(slice_key: tuple) -> str:
    """TFMA's `(("tail_session", 1),)` -> "tail_session=1"; `()` -> "overall"."""
    parts = [f"{column}={value.decode() if isinstance(value, bytes) else value}" for column, value in slice_key]
    return ", ".join(parts) or "overall"


def _slice_proto_name(slice_key: Any) -> str:
    """A validation result's SliceKey proto -> the same name as `_slice_name`."""
    values = []
    for key in slice_key.single_slice_keys:
        value = getattr(key, key.WhichOneof("kind")) if key.WhichOneof("kind") else ""
        values.append((key.column, value))
    return _slice_name(tuple(values))


def _values(metrics_by_output: dict) -> dict[str, float]:
    """`{output: {sub_key: {metric: {"doubleValue": v}}}}` -> `{metric: v}` for the default output."""
    return {
        name: value["doubleValue"]
        for name, value in metrics_by_output.get("", {}).get("", {}).items()
        if "doubleValue" in value
    }


def _describe_threshold(threshold: Any) -> str:
    """A MetricThreshold proto as a short condition, e.g. "value >= 0.05" or "change >= -0 (higher is better)"."""
    import tensorflow_model_analysis as tfma

    if threshold.HasField("value_threshold"):
        bound = threshold.value_threshold
        parts = [
            f"value >= {bound.lower_bound.value:g}" if bound.HasField("lower_bound") else "",
            f"value <= {bound.upper_bound.value:g}" if bound.HasField("upper_bound") else "",
        ]
        return " and ".join(p for p in parts if p)
    change = threshold.change_threshold
    higher = change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    kind = "absolute" if change.HasField("absolute") else "relative"
    limit = (change.absolute if kind == "absolute" else change.relative).value
    return f"{kind} change {'>=' if higher else '<='} {limit:g} ({'higher' if higher else 'lower'} is better)"


def read_evaluation(uri: str, blessed: bool, split: str, baseline_uri: str = "") -> Evaluation:
    """TFMA's metrics per slice (candidate, baseline, change), and every threshold that failed."""
    import tensorflow_model_analysis as tfma

    candidate = tfma.load_eval_result(uri)
    specs = list(candidate.config.model_specs) if candidate.config else []
    baseline_name = next((spec.name for spec in specs if spec.is_baseline), None)
    candidate_name = next((spec.name for spec in specs if not spec.is_baseline), None)
    if candidate_name:
        candidate = tfma.load_eval_result(uri, model_name=candidate_name)
    baseline = {}
    if baseline_name:
        baseline = {key: _values(m) for key, m in tfma.load_eval_result(uri, model_name=baseline_name).slicing_metrics}
    slices = []
    for slice_key, metrics_by_output in candidate.slicing_metrics:
        values = _values(metrics_by_output)
        metrics = {k: v for k, v in values.items() if not k.endswith(DIFF_SUFFIX)}
        changes = {k[: -len(DIFF_SUFFIX)]: v for k, v in values.items() if k.endswith(DIFF_SUFFIX)}
        slices.append(SliceMetrics(_slice_name(slice_key), metrics, baseline.get(slice_key), changes))
    validation = tfma.load_validation_result(uri)
    failures = [
        GateFailure(
            _slice_proto_name(per_slice.slice_key),
            failure.metric_key.name,
            failure.metric_key.is_diff,
            failure.metric_value.double_value.value,
            _describe_threshold(failure.metric_threshold),
            failure.message.strip(),
        )
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    ]
    return Evaluation(split, slices, blessed, failures, has_baseline=bool(baseline_name), baseline_uri=baseline_uri)


def read_push(pushed_model: Any) -> Push:
    """The Pusher's verdict, from its PushedModel artifact's properties."""
    if not pushed_model.get_int_custom_property("pushed"):
        return Push(False)
    return Push(
        True,
        pushed_model.get_string_custom_property("pushed_version"),
        pushed_model.get_string_custom_property("pushed_destination"),
    )


def is_blessed(blessing: Any) -> bool:
    """The Evaluator's verdict, from its ModelBlessing artifact's properties."""
    return blessing.get_int_custom_property("blessed") == 1
