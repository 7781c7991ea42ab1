"""The page builder: escaping, numeric alignment, figures beside the page, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from reporting.html import PAGE_FILE, Page


def _figure():
    figure, axis = plt.subplots(figsize=(2, 1))
    axis.plot([1, 2, 3])
    return figure


def test_text_and_cells_are_escaped_and_numbers_right_aligned():
    page = Page("A <title>")
    page.section("Data & more")
    page.paragraph("<script>alert(1)</script>", kind="bad")
    page.table(["name", "count"], [["<b>x</b>", "1,234"], ["y", "-1.25 pp"]])
    text = page.render()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<title>A &lt;title&gt;</title>" in text
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in text
    assert '<td class="num">1,234</td>' in text and '<td class="num">-1.25 pp</td>' in text
    assert '<a href="#data-more">Data &amp; more</a>' in text  # the contents line links the section


def test_figures_are_pngs_beside_the_page_referenced_by_relative_path(tmp_path):
    page = Page("Plots")
    page.figure(_figure(), "curve", caption="a curve")
    path = page.write(str(tmp_path / "out"))
    assert path == str(tmp_path / "out" / PAGE_FILE)
    assert sorted(os.listdir(tmp_path / "out")) == ["curve.png", PAGE_FILE]
    with open(tmp_path / "out" / "curve.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    text = Path(path).read_text()
    assert '<img src="curve.png" alt="a curve">' in text
    assert "http://" not in text and "https://" not in text  # nothing from the network
    assert not plt.get_fignums()  # the figure was closed once drawn


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda page: page.table(["a", "b"], [["1"]]), "row 0 has 1 cells for 2 columns"),
        (lambda page: page.table(["a"], [["1"]], row_classes=[]), "0 row classes for 1 rows"),
        (lambda page: page.paragraph("x", kind="loud"), "paragraph kind"),
        (lambda page: page.figure(_figure(), "../escape"), "figure name"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(build, message):
    with pytest.raises(ValueError, match=message):
        build(Page("Bad"))
    plt.close("all")


def test_a_figure_name_is_used_once():
    page = Page("Twice")
    page.figure(_figure(), "same")
    with pytest.raises(ValueError, match="already on the page"):
        page.figure(_figure(), "same")
    plt.close("all")
