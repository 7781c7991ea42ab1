"""The comparison's baselines, row rules and table, on toy data (no real data set needed)."""

from __future__ import annotations

import dataclasses
import types
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from benchmarks.baselines import VSKNN, Pop
from benchmarks.compare import Budget, _without_rows, markdown_table, row_config, unavailable
from model import features
from model.config import ModelConfig
from model.metrics import popularity_ranks, target_rank
from reporting.comparison import Comparison, ComparisonRow

CLICKS = np.array([5, 0, 9, 0, 1], "int64")
CATALOG = types.SimpleNamespace(features={features.TRAIN_CLICKS: CLICKS})


def _scores(model, rows):
    return np.asarray(model({features.PREFIX_ROWS: np.array(rows, "int32")})[features.ITEM_LOGITS])


def test_popularity_breaks_every_tie():
    ranks = popularity_ranks(CLICKS)
    assert len(set(ranks.tolist())) == len(CLICKS) and ranks.argmax() == 2 and ranks.max() == 1.0
    scores = _scores(Pop(CATALOG), [[0, -1], [3, 4]])
    assert scores.shape == (2, 5) and (np.argsort(-scores[0])[:2] == [2, 0]).all()
    # The two unclicked items tie; broken as evaluate() does, neither gets the better rank for free.
    assert [int(target_rank(scores[:1], np.array([item]), ranks)[0]) for item in (1, 3)] == [4, 3]
    # It never reorders scores that differ, however little.
    close = np.float32(5.0) + np.array([[0, 1, 2]], "float32") * np.spacing(np.float32(5.0))
    assert [int(target_rank(close, np.array([item]), np.array([1.0, 0.5, 0.1]))[0]) for item in range(3)] == [2, 1, 0]


def test_vsknn_scores_items_of_similar_sessions():
    # Sessions, most recent first: {0, 1}, {2, 3}, {0, 4}.
    sessions = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [1, 0, 0, 0, 1]], "float32"))
    knn = VSKNN(sessions, k=1, sample_size=10)
    scores = _scores(knn, [[2, 0, -1], [0, -1, -1]])
    # Prefix [2, 0]: item 0 (the latest) weighs 1, item 2 weighs 0.5. Sessions {0, 1} and {0, 4}
    # are equally similar (1); the one neighbour is the more recent, {0, 1}.
    np.testing.assert_allclose(scores[0], [1, 1, 0, 0, 0])
    # Padding changes nothing.
    np.testing.assert_allclose(scores[1], _scores(knn, [[0]])[0])


def test_vsknn_samples_only_recent_sessions():
    sessions = sp.csr_matrix(np.array([[1, 0, 0, 0, 1], [1, 1, 0, 0, 0]], "float32"))
    recent_only = _scores(VSKNN(sessions, k=5, sample_size=1), [[0]])[0]
    assert recent_only[4] > recent_only[1]  # the older session {0, 1} is outside the sample


def test_rows_the_data_cannot_feed_are_not_run():
    assert unavailable("diginetica", "TRec_title") == "n/a: no titles in this data set"
    assert unavailable("diginetica", "M2TRec") is None and unavailable("beauty", "TRec_title") is None
    assert unavailable("diginetica", "V-SKNN") is None


def test_rows_train_with_their_presets_and_the_defaults():
    budget = Budget(epochs=3)
    assert row_config("beauty", "TRec_id", budget).category_loss_weight == 0.0
    assert row_config("beauty", "SASRec", budget).pooling == "last"
    m2trec = row_config("diginetica", "M2TRec", budget)
    defaults = ModelConfig()
    assert (m2trec.item_dim, m2trec.pooling, m2trec.softmax) == (defaults.item_dim, defaults.pooling, defaults.softmax)
    assert (m2trec.use_title, m2trec.epochs) == (False, 3)  # the data set's switch; the budget's epochs


def test_budget_table_and_child_command_line():
    assert Budget(epochs=2, train_examples=1000).train_steps(256) == 4
    assert Budget(epochs=2).train_steps(256) is None  # full passes
    assert _without_rows(["--dataset", "beauty", "--row", "Pop", "--row=V-SKNN", "--epochs", "1"]) == [
        "--dataset",
        "beauty",
        "--epochs",
        "1",
    ]
    metrics = {"examples": 10, "hit@10": 0.4, "mrr@10": 0.2, "hit@20": 0.5, "mrr@20": 0.25, "ndcg@20": 0.3}
    row = ComparisonRow(
        row="Pop",
        family="baseline",
        metrics={"all": metrics, "tail": metrics, "cold": {"examples": 0}},
        train_wall_s=6.0,
        peak_rss_mb=100,
    )
    na = ComparisonRow(row="TRec_title", family="model", unavailable="n/a: no titles in this data set")
    table = markdown_table(Comparison("diginetica", [na, row]))
    lines = table.splitlines()
    assert lines[2].startswith("| Pop | baseline | 50.00 | 25.00 | 30.00 | 40.00 | 20.00 |")
    assert "| TRec_title | model | n/a: no titles in this data set |" in lines[3]
    assert len({line.count("|") for line in lines[:4]}) == 1
    # The repeat bonus a row scored with is a column: "–" where the row has none recorded.
    assert lines[0].split(" | ")[13:15] == ["epochs", "repeat bonus"] and lines[2].split(" | ")[14] == "–"
    with_bonus = markdown_table(Comparison("diginetica", [replace(row, row="TRec_id", repeat_bonus=3.0)]))
    assert with_bonus.splitlines()[2].split(" | ")[14] == "3"
    # Each row's machine is named under the table, with what its rows took there (training and
    # test ranking): timings differ about 3x between machines.
    amd = {"model": "AMD EPYC", "vector": "avx2", "bfloat16_native": False}
    vsknn = replace(row, row="V-SKNN", cpu=amd, train_wall_s=60.0, eval_wall_s=30.0)
    on_two = markdown_table(Comparison("diginetica", [na, row, vsknn]))
    assert on_two.endswith("\n- Ran on: not recorded: Pop (0.1 min); AMD EPYC (avx2): V-SKNN (1.5 min).")
    # A neural row trained with settings its preset no longer has says which, under the table;
    # a field it predates counts as the behaviour the field kept selectable (BEFORE_FIELDS).
    settings = dataclasses.asdict(row_config("diginetica", "TRec_id", Budget(epochs=12)))
    del settings["lazy_adam"]
    earlier = replace(row, row="TRec_id", hyperparameters={**settings, "num_sampled": 2048})
    assert markdown_table(Comparison("diginetica", [earlier])).endswith(
        "- Trained with settings changed since (num_sampled: 2048, now 4096; lazy_adam: False, now True): TRec_id."
    )
    assert "changed since" not in markdown_table(
        Comparison("diginetica", [replace(earlier, hyperparameters={**settings, "lazy_adam": True})])
    )
    # A neural row from an earlier budget says so under the table.
    old = replace(row, row="SASRec", epochs_run=2, budget={"train_examples": 300000, "epochs": 2})
    table = markdown_table(Comparison("diginetica", [row, old], budget={"epochs": 3}))
    assert table.endswith(
        "- SASRec: an earlier run (300,000 training examples over 2 validations, with the settings "
        "of its time), not re-run at today's budget (at most 3 full epochs, early stopping) yet."
    )
