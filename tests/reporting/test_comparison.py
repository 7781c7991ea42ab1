"""The comparison page from a synthetic compare_<dataset>.json."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from reporting.comparison import Comparison, machines, write_comparison_report


def test_table_shows_every_row_as_percentages_with_cost(comparison_result, tmp_path):
    text = Path(write_comparison_report(comparison_result, str(tmp_path))).read_text()
    for row in comparison_result.rows:
        assert f"<td>{row.row}</td>" in text
    m2trec = comparison_result.rows[4]
    assert f">{100 * m2trec.metrics['all']['hit@20']:.2f}%<" in text  # P@20 as a percentage
    assert ">5,400 s<" in text and ">2,910,000<" in text and ">2,600 MB<" in text
    assert '<tr class="highlight"><td>M2TRec_hybrid</td>' in text  # the best P@20
    assert "cpus: 2" in text and "item_dim=64" in text
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".png")) == [
        "accuracy-vs-time.png",
        "bars-mrr-at-20.png",
        "bars-ndcg-at-20.png",
        "bars-p-at-20.png",
    ]


def test_a_row_the_data_cannot_feed_shows_its_reason_and_stays_out_of_the_charts(comparison_result, tmp_path):
    text = Path(write_comparison_report(comparison_result, str(tmp_path))).read_text()
    assert "<td>TRec_title</td><td>model</td><td>n/a: no titles in this data set</td>" in text
    # Baselines first, then models, each in the given order.
    assert (
        text.index("<td>POP</td>")
        < text.index("<td>V-SKNN</td>")
        < text.index("<td>TRec_title</td>")
        < text.index("<td>TRec_id</td>")
    )


def test_the_page_names_each_rows_machine_and_prints_row_notes(comparison_result, tmp_path):
    amd = {"model": "AMD EPYC", "vector": "avx2", "bfloat16_native": False}
    rows = [
        dataclasses.replace(r, cpu=amd, note="stalled elsewhere") if r.row == "TRec_id" else r
        for r in comparison_result.rows
    ]
    # With the minutes each machine's rows took: V-SKNN's 40 s and M2TRec_hybrid's 90 min; TRec_id's hour.
    ran_on = "not recorded: POP, V-SKNN, M2TRec_hybrid (90.7 min); AMD EPYC (avx2): TRec_id (60.0 min)"
    assert machines(rows) == ran_on
    text = Path(write_comparison_report(dataclasses.replace(comparison_result, rows=rows), str(tmp_path))).read_text()
    assert f"ran on: {ran_on}" in text
    assert "TRec_id: stalled elsewhere" in text
    assert machines(rows[:1]) is None  # the unavailable row alone: no machine to name


def test_a_slice_without_examples_is_left_out_with_a_note(comparison_without_cold, tmp_path):
    text = Path(write_comparison_report(comparison_without_cold, str(tmp_path))).read_text()
    assert "The cold slice has no test examples here" in text
    assert "P@20 cold" not in text and "P@20 tail" in text


def test_no_timed_row_gives_a_line_instead_of_the_scatter(comparison_result, tmp_path):
    untimed = dataclasses.replace(
        comparison_result, rows=[dataclasses.replace(r, train_wall_s=None) for r in comparison_result.rows]
    )
    text = Path(write_comparison_report(untimed, str(tmp_path))).read_text()
    assert "No row reports its training time" in text
    assert not os.path.exists(tmp_path / "accuracy-vs-time.png")


@pytest.mark.parametrize(
    "result, message",
    [
        ({"dataset": "d"}, "non-empty 'rows' list"),
        ({"dataset": "d", "rows": [{"metrics": {}}]}, "a comparison row needs 'row'"),
        (
            {"dataset": "d", "rows": [{"row": "x", "metrics": {}}]},
            "row x needs 'metrics' with an 'all' slice, or 'unavailable'",
        ),
        ({"dataset": "d", "rows": [{"row": "x", "unavailable": "n/a"}]}, "every row is 'unavailable'"),
        (
            {"dataset": "d", "rows": [{"row": "x", "metrics": {"all": {"examples": 3, "hit@20": 53.9}}}]},
            r"x: all hit@20 = 53.9 is not a fraction",
        ),
        (
            {"dataset": "d", "rows": [{"row": "x", "best_val_hit@20": 50.1, "unavailable": "n/a"}]},
            r"unknown ComparisonRow field 'best_val_hit@20'",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(result, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        write_comparison_report(Comparison.from_dict(result), str(tmp_path))


def test_a_row_round_trips_through_json(comparison_result):
    restored = Comparison.from_dict(json.loads(json.dumps(comparison_result.to_dict())))
    assert restored.rows == comparison_result.rows and restored.dataset == "diginetica"
