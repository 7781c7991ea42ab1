"""The run page from hand-made run data: verdicts, comparison, sessions, and what is missing."""

from __future__ import annotations

import dataclasses

from reporting.run_report import RunData, write_run_report


def _page(run: RunData, tmp_path) -> str:
    return open(write_run_report(run, str(tmp_path))).read()


def test_a_failed_gate_shows_the_comparison_and_each_failed_threshold(run_with_baseline, tmp_path):
    text = _page(run_with_baseline, tmp_path)
    assert "The model is NOT BLESSED" in text and "failed: mrr@20 change" in text
    assert "Baseline: /runs/SessionTrainer/model/2/Format-Serving" in text
    # Candidate, baseline and change of HIT@20 on the overall slice (0.162 vs 0.9 * 0.162).
    assert '<td>HIT@20</td><td class="num">16.20%</td><td class="num">14.58%</td><td class="num">+1.62 pp</td>' in text
    assert "<td>change vs the last blessed model</td>" in text and "change &gt;= -0.0 (higher is better)" in text
    assert "Not pushed: the serving directory keeps the last blessed model." in text


def test_a_first_run_says_there_is_no_baseline_and_shows_the_push(first_run, tmp_path):
    text = _page(first_run, tmp_path)
    assert "The model is BLESSED" in text and "pushed as version 1795604144" in text
    assert "No baseline: no model has been blessed before this one" in text
    assert "Pushed version 1795604144 to /serving/session_recommender/1795604144." in text
    assert "candidate-vs-baseline.png" not in text


def test_slices_levels_and_epochs(first_run, tmp_path):
    text = _page(first_run, tmp_path)
    # overall first, then slices in natural order (2 before 10+).
    assert (
        text.index("<td>overall</td>")
        < text.index("<td>session_length=2</td>")
        < text.index("<td>session_length=10+</td>")
    )
    assert '<td>L1</td><td class="num">57.00%</td><td class="num">83.00%</td><td class="num">69.00%</td>' in text
    assert "best epoch 2 by val_hit@20" in text
    assert '<tr class="highlight"><td class="num">2</td>' in text  # the best epoch's row


def test_sessions_show_titles_and_mark_the_true_next_item(first_run, tmp_path):
    text = _page(first_run, tmp_path)
    assert "Red &lt;b&gt;shoe&lt;/b&gt;" in text  # titles are escaped
    assert '<tr class="highlight"><td class="num">2</td><td class="num">100003</td><td>Green shoe</td>' in text
    assert "True next item: 100003 (Green shoe, Shoes &gt; Green), ranked 2." in text
    assert "Top categories L1: Shoes (0.90), Bags (0.05)" in text


def test_a_run_with_nothing_but_a_name_still_gets_a_page(tmp_path):
    text = _page(RunData(pipeline_name="bare", sessions_note="No example sessions: no model."), tmp_path)
    for line in (
        "No ingest report in this run.",
        "No example statistics in this run.",
        "No training history",
        "No evaluation in this run.",
        "No example sessions: no model.",
    ):
        assert line in text


def test_no_pusher_is_said_so(first_run, tmp_path):
    assert "This pipeline has no Pusher." in _page(dataclasses.replace(first_run, push=None), tmp_path)


def test_the_chosen_repeat_bonus_is_shown_with_each_value_tried(first_run, tmp_path):
    bonus = {"chosen": 3.0, "eval": {"0.0": {"hit": 56.53, "mrr": 19.62}, "3.0": {"hit": 57.17, "mrr": 19.85}}}
    text = _page(dataclasses.replace(first_run, repeat_bonus=bonus), tmp_path)
    assert "Repeat bonus: 3 (added to the logits of the session&#x27;s own items)" in text
    assert '<tr class="highlight"><td class="num">3</td><td class="num">57.17%</td><td class="num">19.85%</td>' in text
    assert "Repeat bonus:" not in _page(first_run, tmp_path)  # a bonus set by the config: nothing chosen to show
