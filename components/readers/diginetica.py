"""Diginetica (CIKM Cup 2016, track 2) as contract DataFrames.

Two sources, because the full raw click log is not in the shared data (see its SOURCE.md):

* `read_raw`: the raw CIKM Cup files (here only SR-GNN's 12,391-click sample). Real
  dates, so the ExampleGen's time split applies.
* `read_srgnn`: the SR-GNN/GCE-GNN preprocessed split (186,670 train sessions, 60,858
  test rows), the benchmark most session-based papers report on. No real times, so only
  its predefined train/test split (the `split` column) is meaningful.

The readers convert formats only; they drop nothing, because the ExampleGen counts and
reports bad rows.

Example (reads the whole data set from ../shared/data, so the doctests skip it):
    >>> import contract
    >>> from components.readers import diginetica
    >>> paths = diginetica.data_paths()  # doctest: +SKIP
    >>> clicks, catalog = diginetica.read_raw(paths["views"], paths["categories"])  # doctest: +SKIP
    >>> contract.write_contract(clicks, catalog, "/tmp/diginetica")  # doctest: +SKIP
    ('/tmp/diginetica/clicks.csv.gz', '/tmp/diginetica/catalog.csv.gz')
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd

import contract
from components.readers import positional_clicks, shared_data_dir

RAW_SUBDIR = os.path.join("diginetica", "raw")
SRGNN_SUBDIR = os.path.join("diginetica", "srgnn")

# Raw view headers: the CIKM Cup original and SR-GNN's renamed sample.
_VIEW_COLUMNS = ("sessionId", "userId", "itemId", "timeframe", "eventdate")
_SRGNN_VIEW_COLUMNS = ("session_id", "user_id", "item_id", "timeframe", "eventdate")
_CATEGORY_COLUMNS = ("itemId", "categoryId")
_PRODUCT_COLUMNS = ("itemId", "pricelog2", "product.name.tokens")


def data_paths(base_dir: str | None = None) -> dict[str, str]:
    """Where the shipped Diginetica files live under `base_dir` (default `shared_data_dir()`)."""
    base = base_dir or shared_data_dir()
    return {
        "views": os.path.join(base, RAW_SUBDIR, "sample_train-item-views.csv.gz"),
        "categories": os.path.join(base, RAW_SUBDIR, "product-categories.csv.gz"),
        "srgnn_dir": os.path.join(base, SRGNN_SUBDIR),
    }


def _read_semicolon_csv(path: str, expected_headers: tuple[tuple[str, ...], ...]) -> pd.DataFrame:
    """Reads a `;`-separated raw file as strings, with the first expected header's names.

    A line with too many fields raises a ValueError naming the file and line; a line with
    too few keeps its missing fields as empty strings, for the ExampleGen to flag.
    """
    try:
        frame = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    except pd.errors.ParserError as error:
        raise ValueError(f"{path}: malformed line: {error}") from error
    if tuple(frame.columns) not in expected_headers:
        raise ValueError(f"{path}: header {list(frame.columns)} is not one of {expected_headers}")
    frame.columns = list(expected_headers[0])
    return frame


def _raw_timestamps_ms(eventdate: pd.Series, timeframe: pd.Series) -> pd.Series:
    """Epoch ms = eventdate midnight UTC + timeframe; NA where either does not parse."""
    day = pd.to_datetime(eventdate, format="%Y-%m-%d", errors="coerce")
    day_ms = (day - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    # Only whole non-negative numbers are offsets; anything else becomes NA, not a guess.
    offset_ms = pd.to_numeric(timeframe.where(timeframe.str.fullmatch(r"\d+", na=False)))
    return (day_ms + offset_ms).astype("Int64")


def read_raw(
    views_path: str, categories_path: str, products_path: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads raw CIKM Cup views, product categories and (optionally) products.

    Clicks: `session_id, item_id, timestamp`, ids as strings. `timestamp` is epoch
    milliseconds (Int64): the click's `eventdate` at midnight UTC plus `timeframe`, the ms
    since its session started. The raw data has no time of day, so this is not wall-clock
    time: it keeps the day and the order of clicks, and the gaps within a session except
    in sessions that cross midnight (2 of 2,986 in the sample), which gain one day there.

    Catalog: `item_id, category_path` (+ `title, price` with products). The raw data has
    no category hierarchy, so `category_path` is the category id as a single level.
    Titles are the hashed name tokens joined by spaces; price is 2**pricelog2.

    Malformed lines: a line with too many fields raises ValueError (the columns cannot be
    assigned); a line with too few fields or unparsable values is kept with the bad
    field empty, so the ExampleGen counts it as a bad row.
    """
    views = _read_semicolon_csv(views_path, (_VIEW_COLUMNS, _SRGNN_VIEW_COLUMNS))
    clicks = pd.DataFrame(
        {
            contract.SESSION_ID: views["sessionId"],
            contract.ITEM_ID: views["itemId"],
            contract.TIMESTAMP: _raw_timestamps_ms(views["eventdate"], views["timeframe"]),
        }
    )

    categories = _read_semicolon_csv(categories_path, (_CATEGORY_COLUMNS,))
    catalog = pd.DataFrame({contract.ITEM_ID: categories["itemId"], contract.CATEGORY_PATH: categories["categoryId"]})
    if products_path is not None:
        products = _read_semicolon_csv(products_path, (_PRODUCT_COLUMNS,))
        tokens = products["product.name.tokens"].fillna("")
        pricelog2 = pd.to_numeric(products["pricelog2"], errors="coerce")
        details = pd.DataFrame(
            {
                contract.ITEM_ID: products["itemId"],
                # Tokens are comma-separated hashes; spaces make them words for a tokenizer.
                contract.TITLE: tokens.str.replace(",", " ", regex=False).str.split().str.join(" "),
                contract.PRICE: np.exp2(pricelog2),
            }
        )
        catalog = catalog.merge(details, on=contract.ITEM_ID, how="outer", sort=False)
    return clicks, catalog


def expand_sessions(sessions: list[list[str]]) -> list[tuple[list[str], str]]:
    """SR-GNN's `process_seqs`: (s[:-i], s[-i]) for i = 1..len(s)-1, session by session."""
    return [(s[:-i], s[-i]) for s in sessions for i in range(1, len(s))]


def reconstruct_test_sessions(rows: list[tuple[list[str], str]]) -> list[list[str]]:
    """Recovers the sessions behind SR-GNN test rows (prefix, label).

    Rows of one session are consecutive, longest prefix first, so a row starts a new
    session when prefix + [label] is not the previous row's prefix. The session is
    prefix + [label] of its first row. Raises ValueError if re-expanding the sessions does
    not give back `rows` exactly.
    """
    sessions: list[list[str]] = []
    previous_prefix: list[str] | None = None
    for prefix, label in rows:
        full = prefix + [label]
        if full != previous_prefix:
            sessions.append(full)
        previous_prefix = prefix
    if expand_sessions(sessions) != rows:
        raise ValueError("SR-GNN test rows are not consecutive process_seqs expansions of sessions")
    return sessions


def read_srgnn(srgnn_dir: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads the SR-GNN preprocessed split: train_sessions.txt, test.tsv, item_category.tsv.

    Clicks: `session_id` (`srgnn-train-<n>` / `srgnn-test-<n>`), `item_id` (SR-GNN item
    index as a string), `timestamp` and `split` (train/test). The data has no times, so
    `timestamp` is the click's 1-based position in its session, in seconds: it orders
    clicks but means nothing across sessions; use the `split` column, not a time split.
    Test sessions are rebuilt from the (prefix, label) rows and checked to expand back.

    Catalog: `item_id, category_path`, the category (1..995) as a single level.
    """
    train_path = os.path.join(srgnn_dir, "train_sessions.txt.gz")
    with gzip.open(train_path, "rt", encoding="utf-8") as handle:
        train = [line.split() for line in handle]
    test_table = pd.read_csv(os.path.join(srgnn_dir, "test.tsv.gz"), sep="\t", dtype=str, keep_default_na=False)
    test_rows = list(zip(test_table["prefix"].str.split(), test_table["label"]))
    test = reconstruct_test_sessions(test_rows)
    session_ids = [f"srgnn-{contract.TRAIN}-{n}" for n in range(len(train))]
    session_ids += [f"srgnn-{contract.TEST}-{n}" for n in range(len(test))]
    splits = [contract.TRAIN] * len(train) + [contract.TEST] * len(test)
    clicks = positional_clicks(session_ids, train + test, splits)

    categories = pd.read_csv(os.path.join(srgnn_dir, "item_category.tsv.gz"), sep="\t", dtype=str)
    catalog = pd.DataFrame({contract.ITEM_ID: categories["item"], contract.CATEGORY_PATH: categories["category"]})
    return clicks, catalog
