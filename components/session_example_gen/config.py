"""Every knob of the session ExampleGen, in one serializable dataclass.

The component receives it as a JSON execution parameter, so a changed knob changes the
execution's fingerprint and TFX re-runs the component instead of reusing a cached output.

Example:
    >>> config = IngestConfig(split_method="column", column_splits=("train", "test"))
    >>> IngestConfig.from_json(config.to_json()) == config
    True
"""

from __future__ import annotations

import dataclasses
import json

import contract
from contract.config import from_fields

SECONDS_PER_DAY = 86_400


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """How clicks become sessions, splits and prefix -> next-item examples."""

    # The prefix keeps the most recent N items (older ones are cut, the count is kept in
    # `prefix_length`), which bounds example size on bot-like sessions.
    max_prefix_length: int = 50
    # Sessions shorter than this (after bad rows are removed) give no example.
    min_session_length: int = 2
    # Collapse consecutive clicks on the same item into one (counted as filtered).
    collapse_repeats: bool = False
    # Keep only these event types (None keeps all); others are counted as filtered.
    event_types: tuple[str, ...] | None = None

    # "time": sessions ending in the last `test_days` go to test, the `eval_days` before
    # that to eval, the rest to train. "column": the click log's `split` column decides.
    split_method: str = "time"
    eval_days: float = 7.0
    test_days: float = 7.0
    # Split names the `split` column may hold ("column" method); other values are bad rows.
    column_splits: tuple[str, ...] = contract.SPLITS
    # "column" method: move this share of train sessions (by session-id hash) to eval, for
    # data sets that ship only train and test (early stopping must never see test).
    eval_fraction_of_train: float = 0.0

    # Ids must match this regular expression in full; others are `unparsable_*_id`.
    id_pattern: str = r"[A-Za-z0-9][A-Za-z0-9_.:/@#+\-]{0,255}"
    # The component fails when more than this share of click (or catalog) rows is bad.
    max_bad_fraction: float = 0.05
    # Bad rows kept verbatim in the report, per reason.
    samples_per_reason: int = 5

    def __post_init__(self) -> None:
        if self.split_method not in ("time", "column"):
            raise ValueError(f"split_method must be 'time' or 'column', got {self.split_method!r}")
        if self.max_prefix_length < 1:
            raise ValueError("max_prefix_length must be >= 1")
        if self.min_session_length < 2:
            raise ValueError("min_session_length must be >= 2: a session needs a prefix and a target")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError("max_bad_fraction must be in [0, 1]")
        if not 0.0 <= self.eval_fraction_of_train < 1.0:
            raise ValueError("eval_fraction_of_train must be in [0, 1)")
        if self.split_method == "time" and (self.eval_days <= 0 or self.test_days <= 0):
            raise ValueError("eval_days and test_days must be > 0 for the time split")
        if self.eval_fraction_of_train and self.split_method != "column":
            raise ValueError("eval_fraction_of_train applies to split_method='column' only")
        if self.eval_fraction_of_train and contract.TRAIN not in self.column_splits:
            raise ValueError("eval_fraction_of_train carves eval from train, but column_splits has no 'train'")

    @property
    def split_names(self) -> tuple[str, ...]:
        """The output splits, in order; every one must receive examples."""
        if self.split_method == "time":
            return contract.SPLITS
        names = list(self.column_splits)
        if self.eval_fraction_of_train and contract.EVAL not in names:
            names.insert(names.index(contract.TRAIN) + 1, contract.EVAL)
        return tuple(names)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IngestConfig:
        """The inverse of to_json; an unknown key is an error."""
        return from_fields(cls, json.loads(text))
