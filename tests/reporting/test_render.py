"""Both report pages in headless Chromium: every plot decodes, tables and sections are there."""

from __future__ import annotations

import os

from reporting.comparison import write_comparison_report
from reporting.run_report import write_run_report
from tests.reporting.chromium import assert_renders


def _pngs(directory: str) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".png"))


def test_run_report_renders_with_every_plot(run_with_baseline, tmp_path):
    path = write_run_report(run_with_baseline, str(tmp_path))
    page = assert_renders(
        path,
        _pngs(str(tmp_path)),
        min_tables=8,
        headings=[
            "Data",
            "Training",
            "Evaluation (test split)",
            "Comparison with the last blessed model",
            "Gate and push",
            "Example sessions",
        ],
    )
    assert {image["src"] for image in page.images} == {
        "skipped-rows.png",
        "prefix-length.png",
        "training-loss.png",
        "training-metrics.png",
        "metrics-per-slice.png",
        "metrics-per-category-level.png",
        "candidate-vs-baseline.png",
    }
    # A bad-row sample that looks like markup is shown as text, not run.
    assert "<script>alert(1)</script>" in page.text


def test_comparison_report_renders_with_every_plot(comparison_result, tmp_path):
    path = write_comparison_report(comparison_result, str(tmp_path))
    page = assert_renders(
        path, _pngs(str(tmp_path)), min_tables=2, headings=["Results", "Metrics per slice", "Accuracy vs training time"]
    )
    assert len(page.images) == 4  # P@20, MRR@20, NDCG@20 bars and the accuracy-vs-time scatter
