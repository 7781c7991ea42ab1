"""How numbers read in the reports: metrics as percentages (as in the papers), changes in points.

Example:
    >>> percent(0.5399), change_points(-0.0125), count(60858), seconds(3600)
    ('53.99%', '-1.25 pp', '60,858', '3,600 s')
"""

from __future__ import annotations

import math

MISSING = "–"


def _finite(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def percent(fraction: float | None, digits: int = 2) -> str:
    """A fraction in [0, 1] as a percentage; `MISSING` for None or NaN."""
    return f"{100 * fraction:.{digits}f}%" if _finite(fraction) else MISSING


def change_points(fraction: float | None, digits: int = 2) -> str:
    """A change of a fraction, in percentage points with its sign."""
    return f"{100 * fraction:+.{digits}f} pp" if _finite(fraction) else MISSING


def count(value: float | None) -> str:
    return f"{value:,.0f}" if _finite(value) else MISSING


def seconds(value: float | None) -> str:
    return f"{value:,.0f} s" if _finite(value) else MISSING


def decimal(value: float | None, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if _finite(value) else MISSING
