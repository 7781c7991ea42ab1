"""The benchmark comparison as a page: `benchmarks/compare.py`'s table, bar charts and cost.

`result` is the content of `benchmarks/results/compare_<dataset>.json`: `dataset`, and
`rows`, each with `row` (its name), `family` (`baseline` or `model`), `metrics` per slice
(`all`, `tail`, `cold`: `examples` and `hit@K` / `mrr@K` / `ndcg@K` as fractions),
`train_wall_s`, `train_examples_per_s`, `parameters`, `peak_rss_mb`, `epochs_run`,
`repeat_bonus` (the value the row scored with, chosen on validation or set) and
`hyperparameters` (any of the cost fields may be null or absent). A row that cannot run on the data
set carries `unavailable` (the reason) and no metrics: the table shows the reason and the
charts leave it out. The page shows metrics as percentages (P@20 is HIT@20, as in the SR-GNN
line of papers); baselines come first, then models, each in the order given.

Example:
    >>> result = {"dataset": "diginetica", "rows": [{"row": "V-SKNN", "family": "baseline",
    ...     "metrics": {"all": {"examples": 60858, "hit@20": 0.51, "mrr@20": 0.18, "ndcg@20": 0.26}},
    ...     "train_wall_s": 40}]}
    >>> write_comparison_report(result, "/tmp/compare")  # doctest: +SKIP
    '/tmp/compare/index.html'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from contract.model_api import TAIL_CLICKS
from reporting import plots
from reporting.formatting import MISSING, count, percent, seconds
from reporting.html import Page

SLICES = ("all", "tail", "cold")
# (metric key, the name papers use)
METRICS = (("hit@20", "P@20"), ("mrr@20", "MRR@20"), ("ndcg@20", "NDCG@20"))
# Accuracy against training time: the two metrics most papers report.
SCATTER_METRICS = METRICS[:2]


def _validate(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The rows, baselines first; a clear error for anything the page cannot show."""
    rows = result.get("rows") if isinstance(result, Mapping) else None
    if not isinstance(rows, list) or not rows:
        raise ValueError(
            "a comparison result needs a non-empty 'rows' list (benchmarks/results/compare_<dataset>.json)"
        )
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or "row" not in row:
            raise ValueError(f"row {i} needs 'row' (its name): {json.dumps(row)[:200]}")
        if row.get("unavailable"):
            continue
        if "all" not in (row.get("metrics") or {}):
            raise ValueError(
                f"row {i} ({row['row']}) needs 'metrics' with an 'all' slice, or 'unavailable': {json.dumps(row)[:200]}"
            )
        for slice_name, metrics in row["metrics"].items():
            for key, value in metrics.items():
                if key != "examples" and value is not None and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{row['row']}: {slice_name} {key} = {value} is not a fraction in [0, 1]")
    return sorted(rows, key=lambda r: r.get("family") != "baseline")


def _measured(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows with metrics (not `unavailable`)."""
    return [r for r in rows if not r.get("unavailable")]


def _metric(row: Mapping[str, Any], slice_name: str, key: str) -> float | None:
    return row["metrics"].get(slice_name, {}).get(key)


def _slice_sizes(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Test examples per slice (the largest any row reports: rows are evaluated on the same test set)."""
    return {s: max([int(r["metrics"].get(s, {}).get("examples") or 0) for r in _measured(rows)] or [0]) for s in SLICES}


def _table(page: Page, rows: Sequence[Mapping[str, Any]], slices: Sequence[str]) -> None:
    header = ["row", "family"] + [f"{name} {s}" for _, name in METRICS for s in slices]
    header += ["train wall", "train ex/s", "parameters", "peak RSS", "epochs", "repeat bonus"]
    cells = []
    for row in rows:
        if row.get("unavailable"):
            cells.append([row["row"], row.get("family", ""), row["unavailable"]] + [""] * (len(header) - 3))
            continue
        cost = [
            seconds(row.get("train_wall_s")),
            count(row.get("train_examples_per_s")),
            count(row.get("parameters")),
            f"{count(row['peak_rss_mb'])} MB" if row.get("peak_rss_mb") is not None else MISSING,
            count(row.get("epochs_run")),
            f"{row['repeat_bonus']:g}" if row.get("repeat_bonus") is not None else MISSING,
        ]
        cells.append(
            [row["row"], row.get("family", "")]
            + [percent(_metric(row, s, key)) for key, _ in METRICS for s in slices]
            + cost
        )
    best = max(_metric(r, "all", "hit@20") or 0.0 for r in _measured(rows))
    classes = ["highlight" if best > 0 and _metric(r, "all", "hit@20") == best else "" for r in rows]
    page.table(header, cells, row_classes=classes)
    page.paragraph(f"Highlighted: the best P@20 over all test examples. {MISSING}: not measured or not applicable.")


def _charts(page: Page, rows: Sequence[Mapping[str, Any]], slices: Sequence[str]) -> None:
    for key, name in METRICS:
        series = {r["row"]: [_metric(r, s, key) for s in slices] for r in _measured(rows)}
        page.figure(
            plots.grouped_bar_chart(list(slices), series, title=f"{name} by slice", percent=True),
            f"bars-{name.lower().replace('@', '-at-')}",
            caption=f"{name} per slice and row",
        )


def _scatter(page: Page, rows: Sequence[Mapping[str, Any]]) -> None:
    timed = [r for r in _measured(rows) if r.get("train_wall_s") is not None]
    if not timed:
        page.paragraph("No row reports its training time: no accuracy-vs-time chart.", kind="note")
        return
    points = {
        name: [
            (r["row"], float(r["train_wall_s"]), _metric(r, "all", key))
            for r in timed
            if _metric(r, "all", key) is not None
        ]
        for key, name in SCATTER_METRICS
    }
    walls = [float(r["train_wall_s"]) for r in timed]
    log_x = min(walls) > 0 and max(walls) / min(walls) > 30
    page.figure(
        plots.labeled_scatter(
            points,
            "Accuracy vs training time (all test examples)",
            "training wall time (s)" + (", log scale" if log_x else ""),
            "metric",
            log_x=log_x,
            percent=True,
        ),
        "accuracy-vs-time",
        caption="P@20 and MRR@20 against training wall time",
    )


def _settings(page: Page, rows: Sequence[Mapping[str, Any]]) -> None:
    """Each row's hyperparameters, and the command that produced it where the result records one."""
    commands = any(r.get("command") for r in rows)
    cells = [
        [r["row"], ", ".join(f"{k}={v}" for k, v in sorted((r.get("hyperparameters") or {}).items())) or MISSING]
        + ([r.get("command") or MISSING] if commands else [])
        for r in rows
    ]
    page.table(["row", "hyperparameters"] + (["command"] if commands else []), cells)


def write_comparison_report(result: Mapping[str, Any], out_dir: str) -> str:
    """Writes the comparison page (`index.html` and its PNGs) into `out_dir`; returns the page's path."""
    rows = _validate(result)
    if not _measured(rows):
        raise ValueError("no row of the comparison has metrics: every row is 'unavailable'")
    dataset = result.get("dataset", "unknown data set")
    page = Page(f"Model comparison: {dataset}", subtitle=f"{len(rows)} rows; metrics on the test split, as percentages")
    sizes = _slice_sizes(rows)
    slices = [s for s in SLICES if sizes[s] > 0]
    page.section("Results")
    page.paragraph(
        "Test examples per slice: " + ", ".join(f"{s} {count(sizes[s])}" for s in SLICES) + ". "
        f"tail: sessions with an item of fewer than {TAIL_CLICKS} training clicks; cold: targets never clicked in "
        "training."
    )
    for empty in (s for s in SLICES if sizes[s] == 0):
        page.paragraph(f"The {empty} slice has no test examples here: its columns and bars are left out.", kind="note")
    _table(page, rows, slices)
    page.section("Metrics per slice")
    _charts(page, rows, slices)
    page.section("Accuracy vs training time")
    _scatter(page, rows)
    page.section("Settings")
    details = [
        f"{k}: {v}" for k, v in result.items() if k not in ("dataset", "rows") and not isinstance(v, (dict, list))
    ]
    if details:
        page.bullets(details)
    _settings(page, rows)
    return page.write(out_dir)
