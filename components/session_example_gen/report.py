"""The ingest report: every row read is accounted for, by split or by skip reason.

The executor's Beam pipeline produces flat counters (`stats`) and a few verbatim samples
per reason; this module turns them into the report (an `IngestReport`, typed in
`contract/ingest_report.py` for every reader), decides whether the data is fit to train
on, and writes the artifact: `report.json` for machines, `report.md` for people.

Example:
    >>> stats = {"clicks/rows": 4, "clicks/kept/train": 3, "clicks/skipped/unknown_item": 1,
    ...          "catalog/rows": 2, "catalog/items": 2, "sessions/train": 1, "examples/train": 2}
    >>> report = build_report(stats, {}, split_names=("train",), max_bad_fraction=0.5)
    >>> report.passed, report.clicks.bad_fraction
    (True, 0.25)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from components.session_example_gen.sessionize import FILTERED_REASONS, Reason
from contract.ingest_report import CatalogCounts, ClickCounts, IngestReport, SplitCounts

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"

# Catalog reasons that keep the item (only a field is lost) and so do not remove a row.
_CATALOG_ROW_KEPT = frozenset({Reason.CATALOG_UNPARSABLE_PRICE})


def _section(stats: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {key[len(prefix) :]: value for key, value in sorted(stats.items()) if key.startswith(prefix)}


def build_report(
    stats: Mapping[str, int],
    samples: Mapping[str, Sequence[str]],
    split_names: Sequence[str],
    max_bad_fraction: float,
) -> IngestReport:
    """Assembles counters into the report and lists every problem that should fail the run."""
    skipped = _section(stats, "clicks/skipped/")
    kept = _section(stats, "clicks/kept/")
    clicks = ClickCounts(
        rows=stats.get("clicks/rows", 0),
        kept=sum(kept.values()),
        bad={r: n for r, n in skipped.items() if r not in FILTERED_REASONS},
        filtered={r: n for r, n in skipped.items() if r in FILTERED_REASONS},
    )
    catalog = CatalogCounts(
        rows=stats.get("catalog/rows", 0),
        items=stats.get("catalog/items", 0),
        categories=stats.get("catalog/categories", 0),
        bad=_section(stats, "catalog/skipped/"),
    )
    splits = {
        name: SplitCounts(
            sessions=stats.get(f"sessions/{name}", 0),
            examples=stats.get(f"examples/{name}", 0),
            clicks=kept.get(name, 0),
            target_items=stats.get(f"target_items/{name}", 0),
        )
        for name in split_names
    }

    problems = []
    if clicks.rows == 0:
        problems.append("the click log has no data rows")
    unaccounted = clicks.rows - clicks.kept - sum(skipped.values())
    if unaccounted:
        problems.append(f"{unaccounted} click rows are neither kept nor counted as skipped (a bug)")
    catalog_removed = sum(n for r, n in catalog.bad.items() if r not in _CATALOG_ROW_KEPT)
    if catalog.rows - catalog.items - catalog_removed:
        problems.append(f"{catalog.rows - catalog.items - catalog_removed} catalog rows are unaccounted for (a bug)")
    for section, counts in (("clicks", clicks), ("catalog", catalog)):
        if counts.bad_fraction > max_bad_fraction:
            worst = sorted(counts.bad.items(), key=lambda kv: -kv[1])[:3]
            problems.append(
                f"{counts.bad_fraction:.2%} of {section} rows are bad, over the limit of {max_bad_fraction:.2%}"
                f" (most: {', '.join(f'{r}={n}' for r, n in worst)})"
            )
    problems += [f"split '{name}' has no examples" for name, split in splits.items() if split.examples == 0]
    return IngestReport(
        clicks=clicks,
        catalog=catalog,
        splits=splits,
        max_bad_fraction=max_bad_fraction,
        problems=tuple(problems),
        samples={reason: tuple(rows) for reason, rows in sorted(samples.items())},
    )


def _one_line(row: str) -> str:
    return row.replace("\r", "\\r").replace("\n", "\\n").replace("`", "'")


def render_markdown(report: IngestReport) -> str:
    """The report as a page a person reads: counts, reasons with samples, the verdict."""
    clicks, catalog = report.clicks, report.catalog
    lines = [
        "# Ingest report",
        "",
        f"**{'PASSED' if report.passed else 'FAILED'}**" + "".join(f"\n- {problem}" for problem in report.problems),
        "",
        "| split | sessions | examples | clicks | distinct targets |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, split in report.splits.items():
        lines.append(
            f"| {name} | {split.sessions:,} | {split.examples:,} | {split.clicks:,} | {split.target_items:,} |"
        )
    lines += [
        "",
        f"Clicks: {clicks.rows:,} rows read, {clicks.kept:,} kept, {clicks.bad_rows:,} bad "
        f"({clicks.bad_fraction:.3%}; limit {report.max_bad_fraction:.2%}), "
        f"{sum(clicks.filtered.values()):,} filtered by design.",
        f"Catalog: {catalog.rows:,} rows read, {catalog.items:,} items, {catalog.categories:,} "
        f"category paths, {catalog.bad_rows:,} bad ({catalog.bad_fraction:.3%}).",
        "",
        "| rows skipped because | kind | count |",
        "|---|---|---:|",
    ]
    for kind, counts in (("bad", clicks.bad), ("filtered", clicks.filtered), ("bad", catalog.bad)):
        lines += [f"| {reason} | {kind} | {count:,} |" for reason, count in counts.items()]
    if report.samples:
        lines += ["", "## Samples", ""]
        for reason, rows in report.samples.items():
            lines.append(f"- `{reason}`: " + "; ".join(f"`{_one_line(row)}`" for row in rows))
    return "\n".join(lines) + "\n"


def write_report(report: IngestReport, directory: str) -> None:
    import tensorflow as tf  # gfile writes to local disk and object stores alike.

    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(os.path.join(directory, REPORT_JSON), "w") as f:
        f.write(report.to_json())
    with tf.io.gfile.GFile(os.path.join(directory, REPORT_MARKDOWN), "w") as f:
        f.write(render_markdown(report))


def read_report(directory: str) -> IngestReport:
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(directory, REPORT_JSON)) as f:
        return IngestReport.from_json(f.read())
