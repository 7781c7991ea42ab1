"""One pipeline run as a page: data, training, evaluation, the gate, the push and example sessions.

The RunReport component (`components/run_report/`) loads the run's artifacts into the
plain data classes here; this module only lays them out, so it can be tested on small
hand-made inputs without TFX, TFMA or a model. Anything missing (no baseline on a first
run, no Pusher, no sessions) gets a line saying so rather than an error.

Example:
    >>> run = RunData(pipeline_name="session-recommender", history={"loss": [3.1, 2.4], "val_hit@20": [.1, .2]})
    >>> write_run_report(run, "/tmp/report")  # doctest: +SKIP
    '/tmp/report/index.html'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from contract.ingest_report import IngestReport
from contract.model_api import TAIL_CLICKS, TRACKED_METRIC
from reporting import plots
from reporting.formatting import MISSING, change_points, count, decimal, percent, seconds
from reporting.html import Page

OVERALL = "overall"
EXAMPLE_COUNT = "example_count"
# The next-item metrics in the per-slice table and chart.
SLICE_METRICS = ("hit@5", "hit@10", "hit@20", "mrr@20", "ndcg@20")
CHARTED_SLICE_METRICS = ("hit@20", "mrr@20", "ndcg@20")
# The most recent clicks of an example session shown (the model sees up to max_prefix_length).
SHOWN_CLICKS = 10
_ITEM_METRIC = re.compile(r"^(hit|mrr|ndcg)@(\d+)$")
_CATEGORY_METRIC = re.compile(r"^category_l(\d+)_((?:hit|mrr)@\d+)$")
_KIND_ORDER = {"hit": 0, "mrr": 1, "ndcg": 2}


@dataclasses.dataclass(frozen=True)
class SplitStatistics:
    """What StatisticsGen found in one split of session examples."""

    examples: int
    mean_prefix_length: float = float("nan")
    max_prefix_length: float = float("nan")
    distinct_targets: int | None = None
    # TFDV's histogram of prefix_length: bucket edges (one more than counts) and counts.
    prefix_length_edges: Sequence[float] = ()
    prefix_length_counts: Sequence[float] = ()


@dataclasses.dataclass(frozen=True)
class SliceMetrics:
    """TFMA's metrics on one slice: the candidate's, the baseline's, and TFMA's `*_diff` changes."""

    name: str  # "overall" or "feature=value"
    metrics: Mapping[str, float]
    baseline: Mapping[str, float] | None = None
    changes: Mapping[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class GateFailure:
    slice_name: str
    metric: str
    against_baseline: bool  # a change threshold (vs the last blessed model), not an absolute floor
    value: float
    threshold: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Evaluation:
    split: str
    slices: Sequence[SliceMetrics]
    blessed: bool
    failures: Sequence[GateFailure] = ()
    has_baseline: bool = False
    baseline_uri: str = ""


@dataclasses.dataclass(frozen=True)
class Push:
    pushed: bool
    version: str = ""
    destination: str = ""


@dataclasses.dataclass(frozen=True)
class Item:
    item_id: str
    title: str = ""
    category: str = ""


@dataclasses.dataclass(frozen=True)
class ExampleSession:
    """A test session's prefix, its true next item and what the model recommends for it."""

    session_id: str
    prefix: Sequence[Item]
    target: Item
    recommendations: Sequence[tuple[Item, float]]
    top_categories: Mapping[int, Sequence[tuple[str, float]]] = dataclasses.field(default_factory=dict)
    unknown_items: int = 0


@dataclasses.dataclass(frozen=True)
class RunData:
    """Everything the page shows; None (or empty) where the run did not produce it."""

    pipeline_name: str
    generated_at: str = ""
    model_variant: str = ""
    model_uri: str = ""
    ingest: IngestReport | None = None
    statistics: Mapping[str, SplitStatistics] | None = None
    history: Mapping[str, Sequence[float]] | None = None  # the Trainer's history.json
    tracked_metric: str = TRACKED_METRIC  # what early stopping watched: picks the best epoch
    # The Trainer's repeat_bonus.json, where it chose the bonus: {"chosen": value, "eval": {value: {"hit", "mrr"}}}.
    repeat_bonus: Mapping[str, Any] | None = None
    evaluation: Evaluation | None = None
    push: Push | None = None  # None: the pipeline has no Pusher
    sessions: Sequence[ExampleSession] = ()
    sessions_note: str = ""  # why there are no example sessions, if there are none


def _natural(name: str) -> list[Any]:
    """Sort key: "session_length=10+" after "session_length=5-9"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _metric_order(name: str) -> tuple[int, int]:
    kind, k = _ITEM_METRIC.match(name).groups()
    return int(k), _KIND_ORDER[kind]


def _item_metrics(metrics: Mapping[str, float]) -> list[str]:
    return sorted((m for m in metrics if _ITEM_METRIC.match(m)), key=_metric_order)


def _category_metrics(metrics: Mapping[str, float]) -> dict[int, dict[str, float]]:
    """`category_l2_hit@3` -> {2: {"hit@3": ...}}."""
    levels: dict[int, dict[str, float]] = {}
    for name, value in metrics.items():
        match = _CATEGORY_METRIC.match(name)
        if match:
            levels.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return dict(sorted(levels.items()))


def _overall(evaluation: Evaluation) -> SliceMetrics | None:
    return next((s for s in evaluation.slices if s.name == OVERALL), None)


# --- Sections ---------------------------------------------------------------------------------


def _headline(page: Page, run: RunData) -> None:
    evaluation, push = run.evaluation, run.push
    if evaluation is None:
        page.paragraph("No evaluation in this run: the model was not gated.", kind="note")
        return
    overall = _overall(evaluation)
    scores = ""
    if overall is not None:
        scores = ", ".join(
            f"{m.upper()} {percent(overall.metrics[m])}" for m in ("hit@20", "mrr@20") if m in overall.metrics
        )
        scores = f" ({evaluation.split} split: {scores})" if scores else ""
    if evaluation.blessed:
        pushed = f"; pushed as version {push.version}" if push is not None and push.pushed else ""
        page.paragraph(f"The model is BLESSED{scores}{pushed}.", kind="good")
    else:
        failed = ", ".join(f"{f.metric}{' change' if f.against_baseline else ''}" for f in evaluation.failures)
        page.paragraph(
            f"The model is NOT BLESSED{scores}; failed: {failed or 'see the gate below'}. Not pushed.", kind="bad"
        )


def _data_section(page: Page, run: RunData) -> None:
    page.section("Data")
    ingest = run.ingest
    if ingest is None:
        page.paragraph("No ingest report in this run.", kind="note")
    else:
        if ingest.passed:
            page.paragraph("Ingest PASSED: every row read is kept in a split or counted as skipped.", kind="good")
        else:
            page.paragraph("Ingest FAILED: " + "; ".join(ingest.problems), kind="bad")
        page.table(
            ["split", "sessions", "examples", "clicks", "distinct targets"],
            [
                [name, count(s.sessions), count(s.examples), count(s.clicks), count(s.target_items)]
                for name, s in ingest.splits.items()
            ],
        )
        clicks, catalog = ingest.clicks, ingest.catalog
        page.paragraph(
            f"Clicks: {count(clicks.rows)} rows read, {count(clicks.kept)} kept, {count(clicks.bad_rows)} bad "
            f"({percent(clicks.bad_fraction, 3)}; limit {percent(ingest.max_bad_fraction)}), "
            f"{count(sum(clicks.filtered.values()))} filtered by design. Catalog: {count(catalog.rows)} rows read, "
            f"{count(catalog.items)} items, {count(catalog.categories)} category paths, "
            f"{count(catalog.bad_rows)} bad rows ({percent(catalog.bad_fraction, 3)})."
        )
        skipped = [
            (reason, kind, n)
            for kind, counts in (
                ("bad click", clicks.bad),
                ("filtered", clicks.filtered),
                ("bad catalog", catalog.bad),
            )
            for reason, n in counts.items()
        ]
        if skipped:
            page.subsection("Rows skipped")
            page.table(
                ["reason", "kind", "rows"],
                [[r, k, count(n)] for r, k, n in skipped],
                row_classes=["bad" if k.startswith("bad") else "" for _, k, _ in skipped],
            )
            page.figure(
                plots.horizontal_bar_chart(
                    [f"{r} ({k})" for r, k, _ in skipped], [n for _, _, n in skipped], "Rows skipped, by reason", "rows"
                ),
                "skipped-rows",
                caption="Bad rows and rows filtered by design",
            )
        else:
            page.paragraph("No row was skipped.")
        if ingest.samples:
            page.subsection("Samples of skipped rows (verbatim)")
            page.table(["reason", "rows"], [[reason, " | ".join(rows)] for reason, rows in ingest.samples.items()])
    if not run.statistics:
        page.paragraph("No example statistics in this run.", kind="note")
        return
    page.subsection("Example statistics (StatisticsGen)")
    page.table(
        ["split", "examples", "mean prefix length", "max prefix length", "distinct targets"],
        [
            [
                split,
                count(s.examples),
                decimal(s.mean_prefix_length, 2),
                count(s.max_prefix_length),
                count(s.distinct_targets),
            ]
            for split, s in run.statistics.items()
        ],
    )
    histograms = {
        split: (s.prefix_length_edges, s.prefix_length_counts)
        for split, s in run.statistics.items()
        if len(s.prefix_length_counts)
    }
    if histograms:
        page.figure(
            plots.histogram_chart(histograms, "Prefix length per split", "clicks before the target"),
            "prefix-length",
            caption="Share of examples by prefix length (TFDV's histogram)",
        )


def _training_section(page: Page, run: RunData) -> None:
    page.section("Training")
    history = run.history
    if not history:
        page.paragraph("No training history (history.json) in this run.", kind="note")
        return
    curves = {k: list(v) for k, v in history.items() if k not in ("wall_s", "epochs_run") and len(v)}
    epochs = max(len(v) for v in curves.values()) if curves else 0
    tracked = curves.get(run.tracked_metric)
    best = int(np.argmax(tracked)) if tracked else epochs - 1
    wall = history.get("wall_s", [None])[0]
    page.paragraph(
        f"{run.model_variant or 'Model'}: {epochs} epoch(s) in {seconds(wall)}; best epoch {best + 1}"
        + (f" by {run.tracked_metric} (early stopping restores it)." if tracked else ".")
        + (f" SavedModel: {run.model_uri}" if run.model_uri else "")
    )
    losses = {k: v for k, v in curves.items() if k.endswith("loss")}
    rates = {k: v for k, v in curves.items() if "@" in k}
    if losses:
        page.figure(
            plots.line_chart(losses, "Loss per epoch", ylabel="loss"), "training-loss", caption="Training and eval loss"
        )
    if rates:
        page.figure(
            plots.line_chart(rates, "Ranking metrics per epoch", percent=True),
            "training-metrics",
            caption="Ranking metrics per epoch (val_: the eval split)",
        )
    names = sorted(curves, key=lambda k: (k.startswith("val_"), k))

    def cell(name: str, epoch: int) -> str:
        value = curves[name][epoch] if epoch < len(curves[name]) else None
        return percent(value) if "@" in name else decimal(value)  # rates in percent; loss, learning rate as is

    rows = [[str(e + 1)] + [cell(k, e) for k in names] for e in range(epochs)]
    page.table(["epoch", *names], rows, row_classes=["highlight" if e == best else "" for e in range(epochs)])
    _repeat_bonus_table(page, run.repeat_bonus)


def _repeat_bonus_table(page: Page, repeat_bonus: Mapping[str, Any] | None) -> None:
    """The repeat bonus chosen after training, and each value's HIT@20 / MRR@20 on the eval split."""
    if not repeat_bonus:
        return
    chosen, by_value = float(repeat_bonus["chosen"]), repeat_bonus["eval"]
    values = sorted(by_value, key=float)
    page.paragraph(
        f"Repeat bonus: {chosen:g} (added to the logits of the session's own items), chosen after "
        "training by HIT@20 on the eval split, then MRR@20."
    )
    page.table(
        ["repeat bonus", "HIT@20", "MRR@20"],
        [[f"{float(v):g}", percent(by_value[v]["hit"] / 100), percent(by_value[v]["mrr"] / 100)] for v in values],
        row_classes=["highlight" if float(v) == chosen else "" for v in values],
    )


def _evaluation_section(page: Page, evaluation: Evaluation) -> None:
    page.section(f"Evaluation ({evaluation.split} split)")
    slices = sorted(evaluation.slices, key=lambda s: (s.name != OVERALL, _natural(s.name)))
    if not slices:
        page.paragraph("The evaluation holds no metrics.", kind="note")
        return
    shown = [m for m in SLICE_METRICS if any(m in s.metrics for s in slices)]
    page.table(
        ["slice", "examples", *(m.upper() for m in shown)],
        [[s.name, count(s.metrics.get(EXAMPLE_COUNT)), *(percent(s.metrics.get(m)) for m in shown)] for s in slices],
    )
    page.paragraph(
        f"tail_session=1: an item of the session has fewer than {TAIL_CLICKS} training clicks; "
        "cold_start_target=1: the target was never clicked in training."
    )
    charted = [m for m in CHARTED_SLICE_METRICS if m in shown]
    if charted:
        page.figure(
            plots.grouped_bar_chart(
                [s.name for s in slices],
                {m.upper(): [s.metrics.get(m) for s in slices] for m in charted},
                "Next item, per slice",
                percent=True,
            ),
            "metrics-per-slice",
            caption="Next-item metrics per slice",
        )
    overall = _overall(evaluation)
    levels = _category_metrics(overall.metrics) if overall else {}
    page.subsection("Next category, per category level (overall)")
    if not levels:
        page.paragraph("The model has no category heads: no per-level metrics.")
        return
    names = sorted({m for values in levels.values() for m in values}, key=_metric_order)
    page.table(
        ["level", *(m.upper() for m in names)],
        [[f"L{level}", *(percent(values.get(m)) for m in names)] for level, values in levels.items()],
    )
    page.figure(
        plots.grouped_bar_chart(
            [f"L{level}" for level in levels],
            {m.upper(): [levels[level].get(m) for level in levels] for m in names},
            "Next category, per level",
            percent=True,
        ),
        "metrics-per-category-level",
        caption="Next-category metrics per level of the category path",
    )


def _comparison_section(page: Page, evaluation: Evaluation) -> None:
    page.section("Comparison with the last blessed model")
    overall = _overall(evaluation)
    if not evaluation.has_baseline or overall is None or overall.baseline is None:
        page.paragraph(
            "No baseline: no model has been blessed before this one, so the gate judged it on the "
            "absolute floors alone.",
            kind="note",
        )
        return
    if evaluation.baseline_uri:
        page.paragraph(f"Baseline: {evaluation.baseline_uri}")
    metrics = _item_metrics(overall.metrics) + sorted(m for m in overall.metrics if _CATEGORY_METRIC.match(m))
    rows, classes = [], []
    for name in metrics:
        change = overall.changes.get(name)
        if change is None and name in overall.baseline:
            change = overall.metrics[name] - overall.baseline[name]
        rows.append(
            [name.upper(), percent(overall.metrics[name]), percent(overall.baseline.get(name)), change_points(change)]
        )
        classes.append("bad" if change is not None and change < 0 else "")
    page.table(["metric (overall)", "candidate", "baseline", "change"], rows, row_classes=classes)
    item = _item_metrics(overall.metrics)
    page.figure(
        plots.grouped_bar_chart(
            [m.upper() for m in item],
            {"candidate": [overall.metrics[m] for m in item], "baseline": [overall.baseline.get(m) for m in item]},
            "Candidate vs last blessed model (overall)",
            percent=True,
        ),
        "candidate-vs-baseline",
        caption="Next-item metrics of the candidate and the baseline",
    )
    by_slice = [s for s in evaluation.slices if s.baseline is not None and "hit@20" in s.metrics]
    page.subsection("HIT@20 per slice")
    page.table(
        ["slice", "candidate", "baseline", "change"],
        [
            [
                s.name,
                percent(s.metrics["hit@20"]),
                percent(s.baseline.get("hit@20")),
                change_points(s.changes.get("hit@20")),
            ]
            for s in sorted(by_slice, key=lambda s: (s.name != OVERALL, _natural(s.name)))
        ],
    )


def _gate_section(page: Page, run: RunData, evaluation: Evaluation) -> None:
    page.section("Gate and push")
    if evaluation.blessed:
        page.paragraph("BLESSED: every threshold passed.", kind="good")
    else:
        page.paragraph(f"NOT BLESSED: {len(evaluation.failures)} threshold(s) failed.", kind="bad")
    if evaluation.failures:
        messages = any(f.message for f in evaluation.failures)  # TFMA leaves them empty for plain thresholds
        page.table(
            ["slice", "metric", "threshold on", "value", "threshold"] + (["message"] if messages else []),
            [
                [
                    f.slice_name,
                    f.metric,
                    "change vs the last blessed model" if f.against_baseline else "value",
                    decimal(f.value),
                    f.threshold,
                ]
                + ([f.message] if messages else [])
                for f in evaluation.failures
            ],
            row_classes=["bad"] * len(evaluation.failures),
        )
    push = run.push
    if push is None:
        page.paragraph("This pipeline has no Pusher.", kind="note")
    elif push.pushed:
        page.paragraph(f"Pushed version {push.version} to {push.destination}.", kind="good")
    else:
        page.paragraph("Not pushed: the serving directory keeps the last blessed model.")


def _item_cells(item: Item) -> list[str]:
    return [item.item_id, item.title or MISSING, item.category or MISSING]


def _sessions_section(page: Page, run: RunData) -> None:
    page.section("Example sessions")
    if not run.sessions:
        page.paragraph(run.sessions_note or "No example sessions.", kind="note")
        return
    page.paragraph(
        "Test sessions as the served model sees them: the clicks so far (oldest first), then its top "
        "recommendations; the true next item is highlighted when the model ranks it."
    )
    for number, session in enumerate(run.sessions, start=1):
        page.subsection(f"Session {number}: {session.session_id} ({len(session.prefix)} clicks)")
        first = max(0, len(session.prefix) - SHOWN_CLICKS)
        if first:
            page.paragraph(f"The {first} earliest clicks are left out; the last {SHOWN_CLICKS}:")
        page.table(
            ["click", "item id", "title", "category"],
            [[str(i), *_item_cells(item)] for i, item in enumerate(session.prefix[first:], start=first + 1)],
        )
        hits = [item.item_id == session.target.item_id for item, _ in session.recommendations]
        page.table(
            ["rank", "item id", "title", "category", "score", "true next"],
            [
                [str(rank), *_item_cells(item), decimal(score), "✓" if hit else ""]
                for rank, ((item, score), hit) in enumerate(zip(session.recommendations, hits), start=1)
            ],
            row_classes=["highlight" if hit else "" for hit in hits],
        )
        where = f"ranked {hits.index(True) + 1}" if any(hits) else f"not in the top {len(hits)}"
        target = session.target
        described = ", ".join(part for part in (target.title, target.category) if part)
        page.paragraph(
            f"True next item: {target.item_id}{f' ({described})' if described else ''}, {where}.",
            kind="good" if any(hits) else "plain",
        )
        if session.top_categories:
            page.bullets(
                [
                    f"Top categories L{level}: " + ", ".join(f"{name} ({score:.2f})" for name, score in cats)
                    for level, cats in sorted(session.top_categories.items())
                ]
            )
        if session.unknown_items:
            page.paragraph(
                f"{session.unknown_items} click(s) on items not in the model's catalog were left out.", kind="note"
            )


def write_run_report(run: RunData, out_dir: str) -> str:
    """Writes the run's page (`index.html` and its PNGs) into `out_dir`; returns the page's path."""
    page = Page(
        f"Run report: {run.pipeline_name}", subtitle=f"Generated {run.generated_at}" if run.generated_at else ""
    )
    _headline(page, run)
    _data_section(page, run)
    _training_section(page, run)
    if run.evaluation is None:
        page.section("Evaluation")
        page.paragraph("No evaluation in this run.", kind="note")
    else:
        _evaluation_section(page, run.evaluation)
        _comparison_section(page, run.evaluation)
        _gate_section(page, run, run.evaluation)
    _sessions_section(page, run)
    return page.write(out_dir)
