"""The benchmark comparison as a page: `benchmarks/compare.py`'s table, bar charts and cost.

A comparison (`benchmarks/results/compare_<dataset>.json`) is typed here, where both its
writer (`benchmarks/compare.py`) and this page can import it: a `Comparison` of
`ComparisonRow`s. Each row carries its test metrics per slice (`all`, `tail`, `cold`:
`examples` and `hit@K` / `mrr@K` / `ndcg@K` as fractions) and what it cost; any cost field
may be missing. A row that cannot run on the data set carries `unavailable` (the reason)
and no metrics: the table shows the reason and the charts leave it out. The page shows
metrics as percentages (P@20 is HIT@20, as in the SR-GNN line of papers); baselines come
first, then models, each in the order given.

Example:
    >>> result = Comparison.from_dict({"dataset": "diginetica", "rows": [{"row": "V-SKNN", "family": "baseline",
    ...     "metrics": {"all": {"examples": 60858, "hit@20": 0.51, "mrr@20": 0.18, "ndcg@20": 0.26}},
    ...     "train_wall_s": 40}]})
    >>> result.rows[0].metric("all", "hit@20"), result.rows[0].measured
    (0.51, True)
    >>> write_comparison_report(result, "/tmp/compare")  # doctest: +SKIP
    '/tmp/compare/index.html'
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from contract.config import check_fields
from contract.model_api import TAIL_CLICKS
from reporting import plots
from reporting.formatting import MISSING, count, percent, seconds
from reporting.html import Page

SLICES = ("all", "tail", "cold")
# (metric key, the name papers use)
METRICS = (("hit@20", "P@20"), ("mrr@20", "MRR@20"), ("ndcg@20", "NDCG@20"))
# Accuracy against training time: the two metrics most papers report.
SCATTER_METRICS = METRICS[:2]
BASELINE, MODEL = "baseline", "model"


@dataclasses.dataclass(frozen=True)
class ComparisonRow:
    """One row of a comparison: a baseline or a model, its test metrics per slice, and what it cost.

    Args:
        row: the row's name (a preset, a baseline).
        family: `BASELINE` or `MODEL`.
        metrics: test metrics per slice, as fractions, with each slice's `examples`.
        unavailable: why the row cannot run on this data set; such a row has no metrics.
        best_validation: the validation metrics of the epoch early stopping kept, in percent
            (with the repeat bonus the model scores with).
        repeat_bonus: the bonus the row scored with (chosen on validation, or set).
        command: the command line that produced the row.
        budget: the training budget the row ran under (`benchmarks/compare.py`'s `Budget`).
        cpu: the CPU the row ran on (`model` and widest `vector` extension): a table's rows
            may come from different machines, whose timings differ about 3x.
        note: a line printed under the table.
    """

    row: str
    family: str = MODEL
    metrics: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    unavailable: str | None = None
    train_wall_s: float | None = None
    train_examples_per_s: float | None = None
    parameters: int | None = None
    peak_rss_mb: float | None = None
    epochs_run: int | None = None
    examples_seen: int | None = None
    best_validation: Mapping[str, float] = dataclasses.field(default_factory=dict)
    precision: str | None = None
    repeat_bonus: float | None = None
    hyperparameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    eval_wall_s: float | None = None
    command: str | None = None
    budget: Mapping[str, Any] | None = None
    cpu: Mapping[str, Any] | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.unavailable:
            return
        if "all" not in self.metrics:
            raise ValueError(f"row {self.row} needs 'metrics' with an 'all' slice, or 'unavailable'")
        for slice_name, metrics in self.metrics.items():
            for key, value in metrics.items():
                if key != "examples" and value is not None and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{self.row}: {slice_name} {key} = {value} is not a fraction in [0, 1]")

    @property
    def measured(self) -> bool:
        """Whether the row has metrics (it is not `unavailable`)."""
        return not self.unavailable

    def metric(self, slice_name: str, key: str) -> float | None:
        return self.metrics.get(slice_name, {}).get(key)

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComparisonRow:
        """The row from JSON; an unknown key is an error (a renamed field must not read as missing)."""
        if not isinstance(data, Mapping) or "row" not in data:
            raise ValueError(f"a comparison row needs 'row' (its name): {json.dumps(data)[:200]}")
        check_fields(cls, data)
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Every row of one data set's comparison, the budget the table runs at, and where it ran."""

    dataset: str
    rows: Sequence[ComparisonRow]
    budget: Mapping[str, Any] | None = None
    environment: Mapping[str, Any] | None = None  # benchmarks.common.environment() of the last write

    def to_dict(self) -> dict[str, Any]:
        result = {"dataset": self.dataset, "budget": self.budget, "rows": [row.to_dict() for row in self.rows]}
        return {key: value for key, value in result.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        rows = data.get("rows") if isinstance(data, Mapping) else None
        if not isinstance(rows, list) or not rows:
            raise ValueError(
                "a comparison result needs a non-empty 'rows' list (benchmarks/results/compare_<dataset>.json)"
            )
        check_fields(cls, data)
        return cls(**{**data, "rows": [ComparisonRow.from_dict(row) for row in rows]})


def machines(rows: Sequence[ComparisonRow]) -> str | None:
    """The CPU each row ran on, as `model (vector): rows (N min); ...`; None if every row is unavailable.

    A table's rows may come from different machines, whose training times differ about 3x,
    so what a whole table costs is summed per machine: N is its rows' minutes of training
    and of ranking the test split (a row without a recorded time adds none).
    """
    by_cpu: dict[str, list[ComparisonRow]] = {}
    for r in rows:
        if not r.unavailable:
            name = f"{r.cpu['model']} ({r.cpu['vector']})" if r.cpu else "not recorded"
            by_cpu.setdefault(name, []).append(r)
    parts = []
    for cpu, ran in by_cpu.items():
        minutes = sum((r.train_wall_s or 0) + (r.eval_wall_s or 0) for r in ran) / 60
        parts.append(f"{cpu}: {', '.join(r.row for r in ran)} ({minutes:.1f} min)")
    return "; ".join(parts) or None


def _measured(rows: Sequence[ComparisonRow]) -> list[ComparisonRow]:
    return [r for r in rows if r.measured]


def _slice_sizes(rows: Sequence[ComparisonRow]) -> dict[str, int]:
    """Test examples per slice (the largest any row reports: rows are evaluated on the same test set)."""
    return {s: max([int(r.metric(s, "examples") or 0) for r in _measured(rows)] or [0]) for s in SLICES}


def _table(page: Page, rows: Sequence[ComparisonRow], slices: Sequence[str]) -> None:
    header = ["row", "family"] + [f"{name} {s}" for _, name in METRICS for s in slices]
    header += ["train wall", "train ex/s", "parameters", "peak RSS", "epochs", "repeat bonus"]
    cells = []
    for row in rows:
        if row.unavailable:
            cells.append([row.row, row.family, row.unavailable] + [""] * (len(header) - 3))
            continue
        cost = [
            seconds(row.train_wall_s),
            count(row.train_examples_per_s),
            count(row.parameters),
            f"{count(row.peak_rss_mb)} MB" if row.peak_rss_mb is not None else MISSING,
            count(row.epochs_run),
            f"{row.repeat_bonus:g}" if row.repeat_bonus is not None else MISSING,
        ]
        cells.append([row.row, row.family] + [percent(row.metric(s, key)) for key, _ in METRICS for s in slices] + cost)
    best = max(r.metric("all", "hit@20") or 0.0 for r in _measured(rows))
    classes = ["highlight" if best > 0 and r.metric("all", "hit@20") == best else "" for r in rows]
    page.table(header, cells, row_classes=classes)
    page.paragraph(f"Highlighted: the best P@20 over all test examples. {MISSING}: not measured or not applicable.")


def _charts(page: Page, rows: Sequence[ComparisonRow], slices: Sequence[str]) -> None:
    for key, name in METRICS:
        series = {r.row: [r.metric(s, key) for s in slices] for r in _measured(rows)}
        page.figure(
            plots.grouped_bar_chart(list(slices), series, title=f"{name} by slice", percent=True),
            f"bars-{name.lower().replace('@', '-at-')}",
            caption=f"{name} per slice and row",
        )


def _scatter(page: Page, rows: Sequence[ComparisonRow]) -> None:
    timed = [r for r in _measured(rows) if r.train_wall_s is not None]
    if not timed:
        page.paragraph("No row reports its training time: no accuracy-vs-time chart.", kind="note")
        return
    points = {
        name: [(r.row, float(r.train_wall_s or 0), value) for r in timed if (value := r.metric("all", key)) is not None]
        for key, name in SCATTER_METRICS
    }
    walls = [float(r.train_wall_s or 0) for r in timed]
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


def _settings(page: Page, rows: Sequence[ComparisonRow]) -> None:
    """Each row's hyperparameters, and the command that produced it where the result records one."""
    commands = any(r.command for r in rows)
    cells = [
        [r.row, ", ".join(f"{k}={v}" for k, v in sorted(r.hyperparameters.items())) or MISSING]
        + ([r.command or MISSING] if commands else [])
        for r in rows
    ]
    page.table(["row", "hyperparameters"] + (["command"] if commands else []), cells)


def write_comparison_report(result: Comparison, out_dir: str) -> str:
    """Writes the comparison page (`index.html` and its PNGs) into `out_dir`; returns the page's path."""
    rows = sorted(result.rows, key=lambda r: r.family != BASELINE)
    if not _measured(rows):
        raise ValueError("no row of the comparison has metrics: every row is 'unavailable'")
    page = Page(
        f"Model comparison: {result.dataset}", subtitle=f"{len(rows)} rows; metrics on the test split, as percentages"
    )
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
    details = {**(result.budget or {}), **(result.environment or {})}
    ran_on = machines(result.rows)
    if ran_on:
        details["ran on"] = ran_on
    if details:
        page.bullets([f"{k}: {v}" for k, v in details.items() if v is not None])
    notes = [f"{r.row}: {r.note}" for r in result.rows if r.note]
    if notes:
        page.bullets(notes)
    _settings(page, rows)
    return page.write(out_dir)
