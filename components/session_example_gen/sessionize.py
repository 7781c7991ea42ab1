"""Rows -> clicks -> sessions -> prefix/next-item tf.Examples, as plain Python.

The Beam executor only wires these functions together, so everything that decides what a
row becomes (kept, counted as bad, counted as filtered) is unit-testable without Beam.

Example:
    >>> config = IngestConfig()
    >>> rows = [("s1", "a", "10"), ("s1", "b", "20"), ("s1", "c", "30")]
    >>> clicks = [parse_click(dict(zip(("session_id", "item_id", "timestamp"), r)), ",".join(r),
    ...                       config, compile_id_pattern(config)) for r in rows]
    >>> result = sessionize("s1", clicks, config, max_timestamp=30.0)
    >>> result.split, len(result.examples)
    ('test', 2)
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import tensorflow as tf

import contract
from components.session_example_gen.config import SECONDS_PER_DAY, IngestConfig


class Reason:
    """Why a row was skipped. `BAD` reasons count towards the bad-row limit."""

    MALFORMED_ROW = "malformed_row"
    MISSING_SESSION_ID = "missing_session_id"
    MISSING_ITEM_ID = "missing_item_id"
    MISSING_TIMESTAMP = "missing_timestamp"
    UNPARSABLE_SESSION_ID = "unparsable_session_id"
    UNPARSABLE_ITEM_ID = "unparsable_item_id"
    UNPARSABLE_TIMESTAMP = "unparsable_timestamp"
    MISSING_SPLIT = "missing_split"
    UNKNOWN_SPLIT = "unknown_split"
    CONFLICTING_SPLIT = "conflicting_split"
    UNKNOWN_ITEM = "unknown_item"
    DUPLICATE_CLICK = "duplicate_click"
    # Catalog rows.
    CATALOG_MALFORMED_ROW = "catalog_malformed_row"
    CATALOG_MISSING_ITEM_ID = "catalog_missing_item_id"
    CATALOG_UNPARSABLE_ITEM_ID = "catalog_unparsable_item_id"
    CATALOG_DUPLICATE_ITEM = "catalog_duplicate_item"
    CATALOG_UNPARSABLE_PRICE = "catalog_unparsable_price"
    # Filtered by design, not bad data: counted and reported, but not against the limit.
    EXCLUDED_EVENT_TYPE = "excluded_event_type"
    COLLAPSED_REPEAT = "collapsed_repeat"
    SHORT_SESSION = "short_session"


FILTERED_REASONS = frozenset({Reason.EXCLUDED_EVENT_TYPE, Reason.COLLAPSED_REPEAT, Reason.SHORT_SESSION})


@dataclasses.dataclass(frozen=True)
class Skip:
    """A row that produced no click (or no catalog item), with why."""

    reason: str
    row: str


@dataclasses.dataclass(frozen=True, order=True)
class Click:
    timestamp: float
    item_id: str
    session_id: str
    event_type: str = ""
    split: str = ""
    # The source row, for report samples; not part of a click's identity or order.
    row: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass(frozen=True)
class CatalogItem:
    item_id: str
    # Contract columns the file has, as strings ('' where empty); price separately.
    text_fields: tuple[tuple[str, str], ...]
    category_levels: tuple[str, ...]
    price: float | None
    has_category_path: bool


@dataclasses.dataclass
class SessionResult:
    """What one session became."""

    split: str | None
    examples: list[tf.train.Example]
    skips: list[Skip]
    items: list[str]  # item ids of the clicks kept (after duplicates and repeats)

    @property
    def clicks(self) -> int:
        return len(self.items)


def compile_id_pattern(config: IngestConfig) -> re.Pattern:
    return re.compile(config.id_pattern)


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return str(value).strip() == ""


def _as_id(value: Any) -> str:
    # Parquet may hold integer ids; `12.0` from a float column is the id `12`.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


_MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the last moment a datetime holds
# Python 3.10's fromisoformat takes only 3 or 6 fraction digits; logs write 1 to 9.
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")


def _fromisoformat(text: str) -> datetime.datetime:
    text = text[:-1] + "+00:00" if text.endswith("Z") else text
    return datetime.datetime.fromisoformat(_FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text))


def parse_timestamp(value: Any) -> float | None:
    """Epoch seconds from seconds, milliseconds (> 1e11) or ISO 8601; None if unparsable.

    Times before 1970 or after year 9999 are garbage (and past 9999 would overflow the
    int64 `target_timestamp`), so they are unparsable too.
    """
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = _fromisoformat(text)
            except ValueError:
                return None
        else:
            if not math.isfinite(seconds):
                return None
            seconds = seconds / 1000.0 if seconds > 1e11 else seconds
            return seconds if 0 <= seconds <= _MAX_EPOCH_SECONDS else None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    seconds = moment.timestamp()
    return seconds if 0 <= seconds <= _MAX_EPOCH_SECONDS else None


def parse_click(fields: Mapping[str, Any], row: str, config: IngestConfig, id_pattern: re.Pattern) -> Click | Skip:
    """One click-log row (column -> value) as a Click, or a Skip saying why not."""
    for column, missing in (
        (contract.SESSION_ID, Reason.MISSING_SESSION_ID),
        (contract.ITEM_ID, Reason.MISSING_ITEM_ID),
        (contract.TIMESTAMP, Reason.MISSING_TIMESTAMP),
    ):
        if _blank(fields.get(column)):
            return Skip(missing, row)
    session_id = _as_id(fields[contract.SESSION_ID])
    item_id = _as_id(fields[contract.ITEM_ID])
    if not id_pattern.fullmatch(session_id):
        return Skip(Reason.UNPARSABLE_SESSION_ID, row)
    if not id_pattern.fullmatch(item_id):
        return Skip(Reason.UNPARSABLE_ITEM_ID, row)
    timestamp = parse_timestamp(fields[contract.TIMESTAMP])
    if timestamp is None:
        return Skip(Reason.UNPARSABLE_TIMESTAMP, row)

    split = ""
    if config.split_method == "column":
        if _blank(fields.get(contract.SPLIT)):
            return Skip(Reason.MISSING_SPLIT, row)
        split = str(fields[contract.SPLIT]).strip()
        if split not in config.column_splits:
            return Skip(Reason.UNKNOWN_SPLIT, row)
    event_type = "" if _blank(fields.get(contract.EVENT_TYPE)) else str(fields[contract.EVENT_TYPE]).strip()
    if config.event_types is not None and event_type not in config.event_types:
        return Skip(Reason.EXCLUDED_EVENT_TYPE, row)
    return Click(timestamp, item_id, session_id, event_type, split, row)


def parse_catalog_row(
    fields: Mapping[str, Any], row: str, id_pattern: re.Pattern
) -> tuple[CatalogItem | None, list[Skip]]:
    """One catalog row as a CatalogItem (or None) and the skips it caused.

    An unparsable price keeps the item (price unknown) but is still counted.
    """
    if _blank(fields.get(contract.ITEM_ID)):
        return None, [Skip(Reason.CATALOG_MISSING_ITEM_ID, row)]
    item_id = _as_id(fields[contract.ITEM_ID])
    if not id_pattern.fullmatch(item_id):
        return None, [Skip(Reason.CATALOG_UNPARSABLE_ITEM_ID, row)]
    skips = []
    price = None
    if not _blank(fields.get(contract.PRICE)):
        try:
            price = float(str(fields[contract.PRICE]).strip())
        except ValueError:
            price = None
        if price is None or not math.isfinite(price) or price < 0:
            price = None
            skips.append(Skip(Reason.CATALOG_UNPARSABLE_PRICE, row))
    text_fields = tuple(
        (column, "" if _blank(value) else str(value).strip())
        for column, value in sorted(fields.items())
        if column not in (contract.ITEM_ID, contract.PRICE, contract.CATEGORY_PATH)
    )
    path = fields.get(contract.CATEGORY_PATH)
    levels = tuple(contract.split_category_path(None if _blank(path) else str(path)))
    return CatalogItem(item_id, text_fields, levels, price, contract.CATEGORY_PATH in fields), skips


def _stable_fraction(key: str) -> float:
    """A deterministic number in [0, 1) per key (Python's hash() is salted per process)."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def assign_split(
    session_end: float, session_id: str, column_split: str, config: IngestConfig, max_timestamp: float
) -> str:
    if config.split_method == "time":
        if session_end > max_timestamp - config.test_days * SECONDS_PER_DAY:
            return contract.TEST
        if session_end > max_timestamp - (config.test_days + config.eval_days) * SECONDS_PER_DAY:
            return contract.EVAL
        return contract.TRAIN
    if column_split == contract.TRAIN and _stable_fraction(session_id) < config.eval_fraction_of_train:
        return contract.EVAL
    return column_split


def _bytes(values: Iterable[str]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))


def _int64(values: Iterable[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def session_examples(session_id: str, clicks: list[Click], max_prefix_length: int) -> list[tf.train.Example]:
    """One example per position t >= 1: the (most recent) clicks before t -> click t."""
    items = [click.item_id for click in clicks]
    examples = []
    for t in range(1, len(items)):
        features = {
            contract.SESSION_ID: _bytes([session_id]),
            contract.PREFIX_ITEM_IDS: _bytes(items[max(0, t - max_prefix_length) : t]),
            contract.TARGET_ITEM_ID: _bytes([items[t]]),
            contract.TARGET_TIMESTAMP: _int64([int(clicks[t].timestamp)]),
            contract.PREFIX_LENGTH: _int64([t]),
        }
        examples.append(tf.train.Example(features=tf.train.Features(feature=features)))
    return examples


def sessionize(session_id: str, clicks: Iterable[Click], config: IngestConfig, max_timestamp: float) -> SessionResult:
    """Orders a session's clicks by time and turns it into examples of one split.

    Ties in time are broken by item id so the order, and so the examples, are
    deterministic whatever order the runner delivers the clicks in.
    """
    ordered = sorted(clicks)
    skips: list[Skip] = []
    unique: list[Click] = []
    for click in ordered:
        if unique and click == unique[-1]:
            skips.append(Skip(Reason.DUPLICATE_CLICK, click.row))
        else:
            unique.append(click)

    if len({click.split for click in unique}) > 1:
        skips.extend(Skip(Reason.CONFLICTING_SPLIT, click.row) for click in unique)
        return SessionResult(None, [], skips, [])

    kept: list[Click] = []
    for click in unique:
        if config.collapse_repeats and kept and click.item_id == kept[-1].item_id:
            skips.append(Skip(Reason.COLLAPSED_REPEAT, click.row))
        else:
            kept.append(click)

    if len(kept) < config.min_session_length:
        skips.extend(Skip(Reason.SHORT_SESSION, click.row) for click in kept)
        return SessionResult(None, [], skips, [])

    split = assign_split(kept[-1].timestamp, session_id, kept[0].split, config, max_timestamp)
    examples = session_examples(session_id, kept, config.max_prefix_length)
    return SessionResult(split, examples, skips, [click.item_id for click in kept])


def catalog_example(item: CatalogItem, train_clicks: int = 0) -> tf.train.Example:
    """The item as a tf.Example; `train_clicks` is its click count in the train split."""
    features = {contract.ITEM_ID: _bytes([item.item_id]), contract.TRAIN_CLICKS: _int64([train_clicks])}
    for column, value in item.text_fields:
        features[column] = _bytes([value])
    if item.has_category_path:
        features[contract.CATEGORY_PATH] = _bytes(item.category_levels)
    if item.price is not None:
        features[contract.PRICE] = tf.train.Feature(float_list=tf.train.FloatList(value=[item.price]))
    return tf.train.Example(features=tf.train.Features(feature=features))
