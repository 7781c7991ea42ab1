"""The ingest report's schema: every row SessionExampleGen read, kept in a split or counted.

SessionExampleGen builds it (`components/session_example_gen/report.py` decides what fails
a run) and writes it as `report.json`; the run report, the pipeline summary and
`benchmarks/ingest.py` read it back. It is typed here, below every layer, so a reader gets
attributes instead of nested dicts indexed by strings, and a field renamed on one side
fails on the other at once. The JSON also carries the derived counts (`bad_rows`,
`bad_fraction`, `passed`) for readers that are not Python.

Example:
    >>> report = IngestReport(
    ...     clicks=ClickCounts(rows=4, kept=3, bad={"unknown_item": 1}),
    ...     catalog=CatalogCounts(rows=2, items=2),
    ...     splits={"train": SplitCounts(sessions=1, examples=2, clicks=3, target_items=2)},
    ...     max_bad_fraction=0.5,
    ... )
    >>> report.passed, report.clicks.bad_fraction, report.examples
    (True, 0.25, 2)
    >>> IngestReport.from_json(report.to_json()) == report
    True
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

# Keys of the JSON computed from the fields: written for other readers, not read back.
_DERIVED = ("bad_rows", "bad_fraction", "passed")


class _BadRows:
    """`bad_rows` and `bad_fraction` of a table whose bad rows are counted by reason in `bad`."""

    rows: int
    bad: Mapping[str, int]

    @property
    def bad_rows(self) -> int:
        return sum(self.bad.values())

    @property
    def bad_fraction(self) -> float:
        return self.bad_rows / self.rows if self.rows else 0.0


@dataclasses.dataclass(frozen=True)
class ClickCounts(_BadRows):
    """The click log: rows read, kept in a split, bad (by reason) or filtered by design (by reason)."""

    rows: int
    kept: int
    bad: Mapping[str, int] = dataclasses.field(default_factory=dict)
    filtered: Mapping[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CatalogCounts(_BadRows):
    """The item catalog: rows read, distinct items and category paths kept, bad rows by reason."""

    rows: int
    items: int
    categories: int = 0
    bad: Mapping[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SplitCounts:
    """One split of session examples: sessions, examples (prefixes), clicks kept, distinct targets."""

    sessions: int
    examples: int
    clicks: int
    target_items: int


@dataclasses.dataclass(frozen=True)
class IngestReport:
    """What one ingest read and produced, and every problem that should stop training on it.

    Args:
        clicks: the click log's counts.
        catalog: the catalog's counts.
        splits: counts per split, in the order the splits were configured.
        max_bad_fraction: the share of bad rows (clicks or catalog) the run was allowed.
        problems: why the data is not fit to train on; empty when it is.
        samples: a few skipped rows verbatim, by skip reason.
    """

    clicks: ClickCounts
    catalog: CatalogCounts
    splits: Mapping[str, SplitCounts]
    max_bad_fraction: float
    problems: Sequence[str] = ()
    samples: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def examples(self) -> int:
        """Session examples over all splits."""
        return sum(split.examples for split in self.splits.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, with the derived counts beside the fields."""
        counts = {
            name: {**dataclasses.asdict(part), "bad_rows": part.bad_rows, "bad_fraction": part.bad_fraction}
            for name, part in (("clicks", self.clicks), ("catalog", self.catalog))
        }
        return {
            **counts,
            "splits": {name: dataclasses.asdict(split) for name, split in self.splits.items()},
            "samples": {reason: list(rows) for reason, rows in self.samples.items()},
            "max_bad_fraction": self.max_bad_fraction,
            "problems": list(self.problems),
            "passed": self.passed,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)  # dicts keep the split order

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IngestReport:
        """The report from `to_dict`'s output; a missing or unknown key is an error, not a default."""

        def fields(part: Mapping[str, Any]) -> dict[str, Any]:
            return {key: value for key, value in part.items() if key not in _DERIVED}

        report = fields(data)
        return cls(
            clicks=ClickCounts(**fields(report.pop("clicks"))),
            catalog=CatalogCounts(**fields(report.pop("catalog"))),
            splits={name: SplitCounts(**split) for name, split in report.pop("splits").items()},
            problems=tuple(report.pop("problems", ())),
            samples={reason: tuple(rows) for reason, rows in report.pop("samples", {}).items()},
            **report,
        )

    @classmethod
    def from_json(cls, text: str) -> IngestReport:
        return cls.from_dict(json.loads(text))
