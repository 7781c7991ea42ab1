"""Each chart draws its data and refuses data it cannot draw."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from reporting import plots


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.line_chart({"loss": [3.0, 2.0], "val_loss": [3.1, 2.5]}, "Loss"),
        lambda: plots.grouped_bar_chart(["all", "tail"], {"a": [0.5, 0.4], "b": [0.6, None]}, "P@20", percent=True),
        lambda: plots.horizontal_bar_chart(["unknown_item", "short_session"], [17, 1498], "Skipped"),
        lambda: plots.histogram_chart({"train": ([1, 5, 10], [80, 20]), "test": ([1, 6, 12], [70, 30])}, "Length"),
        lambda: plots.labeled_scatter(
            {"P@20": [("V-SKNN", 40, 0.5), ("M2TRec", 3600, 0.54)]}, "t", "s", "m", log_x=True
        ),
    ],
    ids=["line", "grouped-bars", "horizontal-bars", "histogram", "scatter"],
)
def test_charts_draw(draw):
    figure = draw()
    assert figure.axes and (figure.axes[0].lines or figure.axes[0].patches or figure.axes[0].collections)
    plt.close(figure)


@pytest.mark.parametrize(
    "draw, message",
    [
        (lambda: plots.line_chart({}, "Loss"), "no series"),
        (lambda: plots.grouped_bar_chart(["all", "tail"], {"a": [0.5]}, "P@20"), "1 values for 2 positions"),
        (lambda: plots.horizontal_bar_chart([], [], "Skipped"), "no bars"),
        (lambda: plots.histogram_chart({"train": ([1, 5], [80, 20])}, "Length"), "2 values for 1 positions"),
        (lambda: plots.labeled_scatter({"P@20": []}, "t", "s", "m"), "no points"),
    ],
)
def test_charts_refuse_what_they_cannot_draw(draw, message):
    with pytest.raises(ValueError, match=message):
        draw()
    plt.close("all")
