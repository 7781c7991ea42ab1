from __future__ import annotations

import json
import os

import pytest

from components.session_example_gen import report as report_lib
from components.session_example_gen.report import build_report, read_report, render_markdown, write_report
from contract.ingest_report import SplitCounts

SPLITS = ("train", "eval", "test")


def _stats(**overrides):
    """100 click rows: 90 kept, 4 bad (2 unknown items, 2 unparsable timestamps), 6 filtered."""
    stats = {
        "clicks/rows": 100,
        "clicks/kept/train": 70,
        "clicks/kept/eval": 10,
        "clicks/kept/test": 10,
        "clicks/skipped/unknown_item": 2,
        "clicks/skipped/unparsable_timestamp": 2,
        "clicks/skipped/short_session": 5,
        "clicks/skipped/collapsed_repeat": 1,
        "catalog/rows": 10,
        "catalog/items": 9,
        "catalog/categories": 3,
        "catalog/skipped/catalog_duplicate_item": 1,
        "catalog/skipped/catalog_unparsable_price": 1,
        "sessions/train": 20,
        "sessions/eval": 3,
        "sessions/test": 3,
        "examples/train": 50,
        "examples/eval": 7,
        "examples/test": 7,
        "target_items/train": 8,
        "target_items/eval": 5,
        "target_items/test": 4,
    }
    stats.update(overrides)
    return {key: value for key, value in stats.items() if value is not None}


def test_build_report_bad_versus_filtered():
    report = build_report(_stats(), {}, SPLITS, max_bad_fraction=0.05)
    clicks = report.clicks
    assert clicks.rows == 100 and clicks.kept == 90
    assert clicks.bad == {"unknown_item": 2, "unparsable_timestamp": 2}
    assert clicks.filtered == {"collapsed_repeat": 1, "short_session": 5}
    assert clicks.bad_rows == 4
    assert clicks.bad_fraction == pytest.approx(0.04)
    catalog = report.catalog
    assert catalog.rows == 10 and catalog.items == 9 and catalog.categories == 3
    assert catalog.bad_rows == 2 and catalog.bad_fraction == pytest.approx(0.2)
    assert report.splits["train"] == SplitCounts(sessions=20, examples=50, clicks=70, target_items=8)
    assert list(report.splits) == list(SPLITS)
    [problem] = report.problems  # the catalog's 2 bad rows of 10 are over 5%
    assert problem.startswith("20.00% of catalog rows are bad, over the limit of 5.00%")


def test_build_report_passes_at_exactly_the_limit_and_fails_just_above():
    # 5 bad rows of 100 (filtered ones do not count): exactly 5%.
    at_limit = _stats(**{"clicks/kept/train": 69, "clicks/skipped/unknown_item": 3})
    report = build_report(at_limit, {}, SPLITS, max_bad_fraction=0.05)
    assert report.clicks.bad_fraction == 0.05
    assert not any("of clicks rows are bad" in p for p in report.problems)
    above = _stats(**{"clicks/kept/train": 68, "clicks/skipped/unknown_item": 4})
    report = build_report(above, {}, SPLITS, max_bad_fraction=0.05)
    assert report.passed is False
    [problem] = [p for p in report.problems if "of clicks rows are bad" in p]
    assert "6.00%" in problem and "5.00%" in problem and "unknown_item=4" in problem


def test_build_report_passes_when_everything_adds_up():
    report = build_report(_stats(), {}, SPLITS, max_bad_fraction=0.25)
    assert report.problems == () and report.passed is True


def test_build_report_catalog_limit():
    report = build_report(_stats(), {}, SPLITS, max_bad_fraction=0.1)
    assert report.passed is False
    assert any(p.startswith("20.00% of catalog rows are bad") for p in report.problems)


def test_build_report_flags_unaccounted_click_rows():
    report = build_report(_stats(**{"clicks/rows": 103}), {}, SPLITS, max_bad_fraction=0.5)
    assert report.passed is False
    assert any(p.startswith("3 click rows are neither kept nor counted") for p in report.problems)
    # Over-counting is a bug too.
    report = build_report(_stats(**{"clicks/rows": 99}), {}, SPLITS, max_bad_fraction=0.5)
    assert any(p.startswith("-1 click rows") for p in report.problems)


def test_build_report_flags_unaccounted_catalog_rows():
    # An unparsable price keeps the item, so it does not explain a missing item.
    report = build_report(_stats(**{"catalog/rows": 11}), {}, SPLITS, max_bad_fraction=0.5)
    assert any(p.startswith("1 catalog rows are unaccounted") for p in report.problems)


def test_build_report_flags_an_empty_split():
    stats = _stats(**{"examples/eval": None, "sessions/eval": None})
    report = build_report(stats, {}, SPLITS, max_bad_fraction=0.5)
    assert report.problems == ("split 'eval' has no examples",)
    assert report.splits["eval"].examples == 0
    # A split the config names but the data never produced is flagged as well.
    report = build_report(_stats(), {}, ("train", "holdout"), max_bad_fraction=0.5)
    assert report.problems == ("split 'holdout' has no examples",)


def test_build_report_flags_zero_rows():
    report = build_report({}, {}, ("train",), max_bad_fraction=0.05)
    assert report.passed is False
    assert "the click log has no data rows" in report.problems
    assert report.clicks.bad_fraction == 0.0 and report.catalog.bad_fraction == 0.0


def test_build_report_samples_sorted_by_reason():
    samples = {"unknown_item": ("s1,x,1",), "duplicate_click": ["a", "b"]}
    report = build_report(_stats(), samples, SPLITS, max_bad_fraction=0.5)
    assert list(report.samples.items()) == [("duplicate_click", ("a", "b")), ("unknown_item", ("s1,x,1",))]


def _failing_report():
    samples = {
        "unknown_item": ["s1,x,1", "s2,y,2"],
        "catalog_unparsable_price": ['7,"Pan, big\nred",12 €'],
        "unparsable_timestamp": ["s3,a,`yesterday`"],
        "malformed_row": ["a,b,c\r\nd"],
    }
    stats = _stats(**{"clicks/skipped/malformed_row": 1, "clicks/rows": 101, "examples/test": None})
    return build_report(stats, samples, SPLITS, max_bad_fraction=0.01)


def test_render_markdown_verdict_reasons_and_samples():
    report = _failing_report()
    text = render_markdown(report)
    lines = text.splitlines()
    assert lines[0] == "# Ingest report"
    assert "**FAILED**" in lines
    assert "- split 'test' has no examples" in lines
    for reason, count in {
        **report.clicks.bad,
        **report.clicks.filtered,
        **report.catalog.bad,
    }.items():
        [row] = [line for line in lines if line.startswith(f"| {reason} |")]
        assert row.endswith(f"| {count:,} |")
    assert "| short_session | filtered | 5 |" in lines
    assert "| unknown_item | bad | 2 |" in lines
    assert "| train | 20 | 50 | 70 | 8 |" in lines
    # One line per reason, every sample on it, even with newlines or backquotes in a sample.
    for reason, rows in report.samples.items():
        [line] = [line for line in lines if line.startswith(f"- `{reason}`")]
        assert line.count("`") == 2 + 2 * len(rows)
    assert "- `unknown_item`: `s1,x,1`; `s2,y,2`" in lines
    assert '- `catalog_unparsable_price`: `7,"Pan, big\\nred",12 €`' in lines
    assert "- `unparsable_timestamp`: `s3,a,'yesterday'`" in lines
    assert "- `malformed_row`: `a,b,c\\r\\nd`" in lines


def test_render_markdown_passed():
    report = build_report(_stats(), {}, SPLITS, max_bad_fraction=0.25)
    text = render_markdown(report)
    assert "**PASSED**" in text.splitlines() and "FAILED" not in text
    assert "## Samples" not in text
    assert "Clicks: 100 rows read, 90 kept, 4 bad (4.000%; limit 25.00%), 6 filtered by design." in text


def test_write_and_read_report_round_trip(tmp_path):
    report = build_report(_stats(), {"unknown_item": ["r\n1"]}, ("test", "train", "eval"), max_bad_fraction=0.5)
    directory = os.path.join(tmp_path, "nested", "report")
    write_report(report, directory)
    assert sorted(os.listdir(directory)) == [report_lib.REPORT_JSON, report_lib.REPORT_MARKDOWN]
    restored = read_report(directory)
    assert restored == report
    assert list(restored.splits) == ["test", "train", "eval"]
    with open(os.path.join(directory, report_lib.REPORT_JSON)) as f:
        written = json.load(f)  # the derived counts are there for readers that are not Python
    assert written["passed"] is True and written["clicks"]["bad_rows"] == 4
    with open(os.path.join(directory, report_lib.REPORT_MARKDOWN)) as f:
        assert f.read() == render_markdown(report)
