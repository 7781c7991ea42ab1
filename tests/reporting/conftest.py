"""Hand-made report inputs: a run with a baseline that failed the gate, a first run, a comparison."""

from __future__ import annotations

import pytest

from contract.ingest_report import IngestReport
from reporting.comparison import Comparison
from reporting.run_report import (
    Evaluation,
    ExampleSession,
    GateFailure,
    Item,
    Push,
    RunData,
    SliceMetrics,
    SplitStatistics,
)

_METRICS = {
    "example_count": 5738.0,
    "hit@5": 0.062,
    "mrr@5": 0.029,
    "ndcg@5": 0.037,
    "hit@10": 0.101,
    "mrr@10": 0.034,
    "ndcg@10": 0.05,
    "hit@20": 0.162,
    "mrr@20": 0.038,
    "ndcg@20": 0.065,
    "category_l1_hit@1": 0.57,
    "category_l1_hit@3": 0.83,
    "category_l1_mrr@3": 0.69,
    "category_l2_hit@1": 0.45,
    "category_l2_hit@3": 0.61,
    "category_l2_mrr@3": 0.52,
}


def _scaled(metrics: dict[str, float], factor: float) -> dict[str, float]:
    return {k: v if k == "example_count" else v * factor for k, v in metrics.items()}


def _slice(name: str, factor: float, baseline_factor: float | None) -> SliceMetrics:
    metrics = _scaled(_METRICS, factor)
    if baseline_factor is None:
        return SliceMetrics(name, metrics)
    baseline = _scaled(_METRICS, baseline_factor)
    return SliceMetrics(name, metrics, baseline, {k: metrics[k] - baseline[k] for k in metrics if k != "example_count"})


INGEST = IngestReport.from_dict(
    {
        "passed": True,
        "problems": [],
        "max_bad_fraction": 0.05,
        "clicks": {
            "rows": 60000,
            "kept": 59000,
            "bad_rows": 600,
            "bad_fraction": 0.01,
            "bad": {"unknown_item": 500, "unparsable_timestamp": 100},
            "filtered": {"short_session": 400},
        },
        "catalog": {
            "rows": 2510,
            "items": 2500,
            "categories": 120,
            "bad_rows": 10,
            "bad_fraction": 0.004,
            "bad": {"catalog_duplicate_item": 10},
        },
        "splits": {
            name: {"sessions": n, "examples": 4 * n, "clicks": 5 * n, "target_items": n // 2}
            for name, n in (("train", 9000), ("eval", 1500), ("test", 1400))
        },
        "samples": {"unparsable_timestamp": ["s1,i1,<script>alert(1)</script>", "s2,i2,yesterday"]},
    }
)


def make_run(baseline: bool) -> RunData:
    """A run on hand-made numbers; with `baseline`, the candidate is worse and fails the change gate."""
    factor = 0.9 if baseline else None
    slices = [
        _slice("overall", 1.0, factor),
        _slice("tail_session=1", 1.3, factor),
        _slice("tail_session=0", 0.8, factor),
        _slice("session_length=10+", 1.1, factor),
        _slice("session_length=2", 0.9, factor),
    ]
    failures = (
        [
            GateFailure(
                "overall",
                "mrr@20",
                True,
                -0.0045,
                "change >= -0.0 (higher is better)",
                "Metric change is less than the threshold",
            )
        ]
        if baseline
        else []
    )
    statistics = {
        split: SplitStatistics(4 * n, 5.6, 49, n // 2, [1, 5.8, 10.6, 49], [3879.6, 1085.8, 360])
        for split, n in (("train", 9000), ("eval", 1500), ("test", 1400))
    }
    session = ExampleSession(
        session_id="s-42",
        prefix=[Item("100001", "Red <b>shoe</b>", "Shoes > Red"), Item("100002", "Blue shoe", "Shoes > Blue")],
        target=Item("100003", "Green shoe", "Shoes > Green"),
        recommendations=[
            (Item("100004", "Pink shoe", "Shoes > Pink"), 0.9),
            (Item("100003", "Green shoe", "Shoes > Green"), 0.8),
        ],
        top_categories={1: [("Shoes", 0.9), ("Bags", 0.05)]},
    )
    return RunData(
        pipeline_name="session-recommender",
        generated_at="2026-11-25 11:00 UTC",
        model_variant="M2TRec",
        model_uri="/runs/SessionTrainer/model/8/Format-Serving",
        ingest=INGEST,
        statistics=statistics,
        history={
            "loss": [15.4, 13.5, 12.9],
            "val_loss": [15.3, 12.4, 12.6],
            "hit@20": [0.13, 0.17, 0.19],
            "val_hit@20": [0.19, 0.21, 0.20],
            "wall_s": [8.8],
            "epochs_run": [3],
        },
        evaluation=Evaluation(
            "test",
            slices,
            blessed=not baseline,
            failures=failures,
            has_baseline=baseline,
            baseline_uri="/runs/SessionTrainer/model/2/Format-Serving" if baseline else "",
        ),
        push=Push(False) if baseline else Push(True, "1795604144", "/serving/session_recommender/1795604144"),
        sessions=[session],
    )


@pytest.fixture
def run_with_baseline() -> RunData:
    return make_run(baseline=True)


@pytest.fixture
def first_run() -> RunData:
    return make_run(baseline=False)


def _row(name: str, family: str, scale: float, wall: float | None, cold: bool) -> dict:
    def metrics(factor: float, examples: int) -> dict:
        values = {
            f"{kind}@{k}": min(1.0, factor * base * k / 20)
            for k in (5, 10, 20)
            for kind, base in (("hit", 0.5), ("mrr", 0.18), ("ndcg", 0.26))
        }
        return {"examples": examples, **values}

    return {
        "row": name,
        "family": family,
        "metrics": {
            "all": metrics(scale, 60858),
            "tail": metrics(0.8 * scale, 12000),
            "cold": metrics(0.3 * scale, 900) if cold else {"examples": 0},
        },
        "train_wall_s": wall,
        "train_examples_per_s": None if wall is None or family == "baseline" else 1037.0,
        "parameters": None if family == "baseline" else 2_910_000,
        "peak_rss_mb": 2600,
        "epochs_run": None if family == "baseline" else 6,
        "hyperparameters": {"item_dim": 64} if family == "model" else {"k": 100},
    }


UNAVAILABLE = {
    "row": "TRec_title",
    "family": "model",
    "unavailable": "n/a: no titles in this data set",
    "metrics": {},
    "train_wall_s": None,
    "train_examples_per_s": None,
    "parameters": None,
    "peak_rss_mb": None,
    "epochs_run": None,
    "hyperparameters": {},
}


def _comparison(cold: bool) -> Comparison:
    return Comparison.from_dict(
        {
            "dataset": "diginetica",
            "environment": {"cpus": 2},
            "rows": [
                UNAVAILABLE,
                _row("POP", "baseline", 0.1, None, cold),
                _row("V-SKNN", "baseline", 0.95, 40.0, cold),
                _row("TRec_id", "model", 0.98, 3600.0, cold),
                _row("M2TRec_hybrid", "model", 1.05, 5400.0, cold),
            ],
        }
    )


@pytest.fixture
def comparison_result() -> Comparison:
    """compare_<dataset>.json's shape: a row the data cannot feed, two baselines (one untimed) and two models."""
    return _comparison(cold=True)


@pytest.fixture
def comparison_without_cold() -> Comparison:
    """As above, but no test example is cold (the cold slice holds only "examples": 0)."""
    return _comparison(cold=False)
