"""The shipped default data set: reproducible, realistically shaped, bad rows as declared."""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections import Counter

import pandas as pd
import pytest

from components.readers import synthetic
from contract import (
    CATEGORY_PATH,
    ITEM_ID,
    PRICE,
    SESSION_ID,
    TIMESTAMP,
    split_category_path,
)

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "data", "default")
END_S = synthetic.START_EPOCH_S + synthetic.DEFAULT_DAYS * synthetic.SECONDS_PER_DAY
LAST_WEEK_START_S = END_S - synthetic.COLD_START_DAYS * synthetic.SECONDS_PER_DAY
TRAIN_END_S = END_S - 14 * synthetic.SECONDS_PER_DAY  # a week each for eval and test


def _read_rows(name: str) -> list[list[str]]:
    with gzip.open(os.path.join(DATA_DIR, name), "rt", encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _reason(row: list[str], catalog_ids: set[str], seen: set[tuple[str, ...]]) -> str | None:
    """Why a click row is bad, checked in the order a reader would; None when clean."""
    if len(row) != len(synthetic.CLICK_COLUMNS):
        return synthetic.MALFORMED_ROW
    _, item, timestamp, _ = row
    if not item:
        return synthetic.MISSING_ITEM_ID
    if not timestamp:
        return synthetic.MISSING_TIMESTAMP
    if not timestamp.isdigit():
        return synthetic.UNPARSABLE_TIMESTAMP
    if any(c.isspace() for c in item):
        return synthetic.UNPARSABLE_ITEM_ID
    if item not in catalog_ids:
        return synthetic.UNKNOWN_ITEM
    if tuple(row) in seen:
        return synthetic.DUPLICATE_CLICK
    seen.add(tuple(row))
    return None


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    rows = _read_rows(synthetic.CATALOG_FILE)
    return pd.DataFrame(rows[1:], columns=rows[0])


@pytest.fixture(scope="module")
def parsed(catalog: pd.DataFrame) -> tuple[pd.DataFrame, Counter]:
    """(clean clicks, bad-row counts by reason) of the shipped click log."""
    rows = _read_rows(synthetic.CLICKS_FILE)
    assert rows[0] == list(synthetic.CLICK_COLUMNS)
    catalog_ids, seen = set(catalog[ITEM_ID]), set()
    clean, bad = [], Counter()
    for row in rows[1:]:
        reason = _reason(row, catalog_ids, seen)
        if reason:
            bad[reason] += 1
        else:
            clean.append(row)
    clicks = pd.DataFrame(clean, columns=rows[0]).astype({TIMESTAMP: "int64"})
    return clicks, bad


@pytest.fixture(scope="module")
def injected() -> dict:
    with open(os.path.join(DATA_DIR, synthetic.INJECTED_FILE), encoding="utf-8") as f:
        return json.load(f)


def test_regenerating_gives_the_shipped_bytes(tmp_path):
    synthetic.main(["--out", str(tmp_path)])
    for name in (synthetic.CLICKS_FILE, synthetic.CATALOG_FILE):
        with open(os.path.join(DATA_DIR, name), "rb") as f:
            shipped = f.read()
        with open(tmp_path / name, "rb") as f:
            fresh = f.read()
        # The gzip header (mtime 0) must match; the payload is compared decompressed, since
        # another zlib build (zlib-ng) may deflate the same bytes differently.
        assert fresh[:10] == shipped[:10]
        assert gzip.decompress(fresh) == gzip.decompress(shipped), name
    with open(os.path.join(DATA_DIR, synthetic.INJECTED_FILE), "rb") as f:
        assert (tmp_path / synthetic.INJECTED_FILE).read_bytes() == f.read()


def test_category_tree_has_three_or_four_levels(catalog):
    paths = catalog[CATEGORY_PATH].map(split_category_path)
    assert set(paths.map(len)) == {3, 4}
    assert paths.str[0].nunique() >= 5
    assert paths.map(tuple).nunique() >= 70


def test_popularity_has_a_head_and_a_long_tail(parsed, catalog):
    clicks, _ = parsed
    counts = clicks[ITEM_ID].value_counts().reindex(catalog[ITEM_ID].unique(), fill_value=0)
    top = counts.sort_values(ascending=False).iloc[: len(counts) // 10]
    assert top.sum() / counts.sum() > 0.4
    train = clicks[clicks[TIMESTAMP] < TRAIN_END_S][ITEM_ID].value_counts()
    train = train.reindex(counts.index, fill_value=0)
    assert (train < 10).mean() > 0.3


def test_sessions_are_time_ordered_and_stay_in_a_category(parsed, catalog):
    clicks, _ = parsed
    assert clicks[TIMESTAMP].is_monotonic_increasing
    lengths = clicks.groupby(SESSION_ID).size()
    assert 4 < lengths.mean() < 6 and (lengths == 1).any() and lengths.max() >= 30
    path = catalog.drop_duplicates(ITEM_ID).set_index(ITEM_ID)[CATEGORY_PATH]
    by_session = clicks.sort_values([SESSION_ID, TIMESTAMP], kind="stable")
    same_session = by_session[SESSION_ID].eq(by_session[SESSION_ID].shift())
    same_leaf = by_session[ITEM_ID].map(path).eq(by_session[ITEM_ID].shift().map(path))
    assert same_leaf[same_session].mean() > 0.4


def test_cold_start_items_first_appear_in_the_last_week(parsed):
    clicks, _ = parsed
    first_click = clicks.groupby(ITEM_ID)[TIMESTAMP].min()
    assert (first_click >= LAST_WEEK_START_S).sum() >= 0.03 * synthetic.DEFAULT_N_ITEMS


def test_bad_click_rows_match_the_declared_counts(parsed, injected):
    clicks, bad = parsed
    declared = {k: v for k, v in injected.items() if k != synthetic.CATALOG_KEY}
    assert dict(bad) == declared
    assert set(declared) == set(synthetic.BAD_CLICK_REASONS)
    assert 0.001 < sum(bad.values()) / len(clicks) < 0.003


def test_bad_catalog_rows_match_the_declared_counts(catalog, injected):
    declared = injected[synthetic.CATALOG_KEY]
    assert catalog[ITEM_ID].duplicated().sum() == declared[synthetic.CATALOG_DUPLICATE_ITEM]
    prices = pd.to_numeric(catalog[PRICE], errors="coerce")
    assert prices.isna().sum() == declared[synthetic.CATALOG_UNPARSABLE_PRICE]
    assert (prices.dropna() > 0).all()


def test_shipped_data_is_small():
    total = sum(os.path.getsize(os.path.join(DATA_DIR, name)) for name in os.listdir(DATA_DIR))
    assert total < 5 * 1024 * 1024


def test_catalog_reads_with_pandas(catalog):
    # Titles hold commas; quoting must keep every row at the five contract columns.
    path = os.path.join(DATA_DIR, synthetic.CATALOG_FILE)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(synthetic.CATALOG_COLUMNS)
    assert len(frame) == len(catalog)
