"""The reports' charts, drawn with matplotlib's Agg backend (no display, no GUI toolkit).

Each function returns a `matplotlib.figure.Figure`; `Page.figure` saves it as a PNG and
closes it. Rates in [0, 1] are drawn as percentages, as the tables show them.

Example:
    >>> figure = grouped_bar_chart(["all", "tail"], {"V-SKNN": [0.51, 0.42], "M2TRec": [0.54, 0.47]},
    ...                            title="P@20", percent=True)
    >>> page.figure(figure, "p-at-20")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: reports are drawn on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

_WIDTH, _HEIGHT = 6.4, 3.6


def _check_lengths(name: str, values: Sequence[object], expected: int) -> None:
    if len(values) != expected:
        raise ValueError(f"{name} has {len(values)} values for {expected} positions")


def _percent_axis(axis, percent: bool, which: str = "y") -> None:
    if percent:
        (axis.yaxis if which == "y" else axis.xaxis).set_major_formatter(PercentFormatter(1.0))


def line_chart(
    series: Mapping[str, Sequence[float]], title: str, xlabel: str = "epoch", ylabel: str = "", percent: bool = False
) -> Figure:
    """One line per series over positions 1..N (e.g. a metric per epoch); markers show single points."""
    if not series:
        raise ValueError(f"line chart {title!r} has no series")
    figure, axis = plt.subplots(figsize=(_WIDTH, _HEIGHT))
    for name, values in series.items():
        axis.plot(range(1, len(values) + 1), values, marker="o", label=name)
    axis.set(title=title, xlabel=xlabel, ylabel=ylabel)
    longest = max(len(values) for values in series.values())
    axis.set_xticks(range(1, longest + 1, max(1, longest // 10)))
    _percent_axis(axis, percent)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def grouped_bar_chart(
    groups: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str = "", percent: bool = False
) -> Figure:
    """Bars grouped by `groups` (e.g. slices), one colour per series (e.g. model); NaN leaves a gap."""
    if not groups or not series:
        raise ValueError(f"bar chart {title!r} needs at least one group and one series")
    for name, values in series.items():
        _check_lengths(f"series {name!r}", values, len(groups))
    width = 0.8 / len(series)
    figure, axis = plt.subplots(figsize=(max(_WIDTH, 1.2 * len(groups) * max(1, len(series) / 3)), _HEIGHT))
    positions = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        heights = [np.nan if v is None else v for v in values]
        axis.bar(positions + (i - (len(series) - 1) / 2) * width, heights, width, label=name)
    axis.set_xticks(
        positions,
        groups,
        rotation=20 if max(len(g) for g in groups) > 10 else 0,
        ha="right" if max(len(g) for g in groups) > 10 else "center",
    )
    axis.set(title=title, ylabel=ylabel)
    axis.set_ylim(top=axis.get_ylim()[1] * 1.15)  # room for the legend above the bars
    _percent_axis(axis, percent)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, ncol=min(len(series), 4))
    return figure


def horizontal_bar_chart(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str = "") -> Figure:
    """One bar per label, largest on top (e.g. rows skipped per reason)."""
    if not labels:
        raise ValueError(f"bar chart {title!r} has no bars")
    _check_lengths("values", values, len(labels))
    order = np.argsort(values)
    figure, axis = plt.subplots(figsize=(_WIDTH, max(1.6, 0.32 * len(labels) + 0.9)))
    axis.barh([labels[i] for i in order], [values[i] for i in order], color="#4c72b0")
    for position, i in enumerate(order):
        axis.annotate(
            f"{values[i]:,.0f}",
            (values[i], position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axis.set(title=title, xlabel=xlabel)
    axis.margins(x=0.15)
    return figure


def histogram_chart(
    histograms: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, xlabel: str = ""
) -> Figure:
    """Pre-computed histograms, `name -> (bucket edges, counts per bucket)`, one outline each, as shares.

    Each series keeps its own edges (TFDV's buckets differ per split).
    """
    if not histograms:
        raise ValueError(f"histogram {title!r} has no series")
    figure, axis = plt.subplots(figsize=(_WIDTH, _HEIGHT))
    for name, (edges, values) in histograms.items():
        _check_lengths(f"histogram {name!r}", values, len(edges) - 1)
        total = float(sum(values)) or 1.0
        axis.stairs(np.asarray(values, dtype=float) / total, edges, label=name, linewidth=1.5)
    axis.set(title=title, xlabel=xlabel, ylabel="share of examples")
    _percent_axis(axis, True)
    axis.legend(fontsize=8)
    return figure


def labeled_scatter(
    points: Mapping[str, Sequence[tuple[str, float, float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
    percent: bool = False,
) -> Figure:
    """Labelled points, one marker per series (e.g. P@20 and MRR@20 of each model vs its training time)."""
    if not any(points.values()):
        raise ValueError(f"scatter {title!r} has no points")
    figure, axis = plt.subplots(figsize=(_WIDTH + 1, _HEIGHT + 0.6))
    for (name, series), marker in zip(points.items(), "osD^v"):
        if not series:
            continue
        xs = [x for _, x, _ in series]
        ys = [y for _, _, y in series]
        axis.scatter(xs, ys, marker=marker, label=name)
        for label, x, y in series:
            axis.annotate(label, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=8)
    if log_x and all(x > 0 for series in points.values() for _, x, _ in series):
        axis.set_xscale("log")
    axis.set(title=title, xlabel=xlabel, ylabel=ylabel)
    _percent_axis(axis, percent)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure
