"""Metrics read as percentages, changes in points; missing values as a dash."""

from __future__ import annotations

import pytest

from reporting.formatting import MISSING, change_points, count, decimal, percent, seconds


def test_numbers_read_as_in_the_papers():
    assert (percent(0.5399), change_points(-0.0125), count(60858), seconds(3600), decimal(0.12345)) == (
        "53.99%",
        "-1.25 pp",
        "60,858",
        "3,600 s",
        "0.1235",
    )
    assert change_points(0.003) == "+0.30 pp"


@pytest.mark.parametrize("format_", [percent, change_points, count, seconds, decimal])
def test_missing_values_read_as_a_dash(format_):
    assert format_(None) == format_(float("nan")) == MISSING
