"""The data contract: the input files the pipeline reads and the examples it emits.

One source of truth for column and feature names. Readers turn a public data set into
contract files; the session ExampleGen reads only contract files; Transform and the model
read only the feature names below.

Click log (CSV with a header, optionally gzipped, or Parquet), one row per click:
    session_id, item_id, timestamp[, event_type][, split]
    `timestamp` is epoch seconds (int or float), epoch milliseconds (an integer above
    1e11), or ISO 8601 (`2016-05-09`, `2016-05-09T10:15:00`, `...Z`, `...+02:00`).
    `split` (optional) is a predefined split name per click; all clicks of a session must
    agree.

Item catalog (CSV with a header, optionally gzipped, or Parquet), one row per item:
    item_id, title, category_path, brand, price, and any extra columns (kept as strings)
    `category_path` is `L1 > L2 > ... > leaf`, any depth. Every column but `item_id`
    may be absent from the file or empty in a row.

Example:
    >>> split_category_path("Home > Kitchen >  Pans ")
    ['Home', 'Kitchen', 'Pans']
"""

from __future__ import annotations

import os

# --- Click log columns ------------------------------------------------------------------
SESSION_ID = "session_id"
ITEM_ID = "item_id"
TIMESTAMP = "timestamp"
EVENT_TYPE = "event_type"
SPLIT = "split"
CLICK_REQUIRED_COLUMNS = (SESSION_ID, ITEM_ID, TIMESTAMP)
CLICK_OPTIONAL_COLUMNS = (EVENT_TYPE, SPLIT)

# --- Catalog columns --------------------------------------------------------------------
TITLE = "title"
CATEGORY_PATH = "category_path"
BRAND = "brand"
PRICE = "price"
CATALOG_REQUIRED_COLUMNS = (ITEM_ID,)
CATALOG_KNOWN_COLUMNS = (ITEM_ID, TITLE, CATEGORY_PATH, BRAND, PRICE)
CATEGORY_SEPARATOR = ">"

# --- Session example features (one tf.Example per prefix -> next item) ------------------
PREFIX_ITEM_IDS = "prefix_item_ids"  # bytes list, oldest first, the most recent N clicks
TARGET_ITEM_ID = "target_item_id"  # bytes
TARGET_TIMESTAMP = "target_timestamp"  # int64 epoch seconds of the target click
PREFIX_LENGTH = "prefix_length"  # int64, clicks before the target (before truncation)
# SESSION_ID is carried as a bytes feature too.

# --- Catalog example features (one tf.Example per item) ---------------------------------
# ITEM_ID, TITLE, BRAND: bytes; PRICE: float (absent where unknown);
# CATEGORY_PATH: bytes list of the path's levels, root first. Extra columns: bytes.
TRAIN_CLICKS = "train_clicks"  # int64: the item's clicks in the train split (tail, cold start)

# Split names.
TRAIN = "train"
EVAL = "eval"
TEST = "test"
SPLITS = (TRAIN, EVAL, TEST)
CATALOG_SPLIT = "items"


def split_category_path(path: str | None) -> list[str]:
    """Splits `L1 > L2 > leaf` into its non-empty, stripped levels."""
    if not path:
        return []
    return [level.strip() for level in str(path).split(CATEGORY_SEPARATOR) if level.strip()]


def join_category_path(levels: list[str]) -> str:
    """The inverse of `split_category_path`."""
    return f" {CATEGORY_SEPARATOR} ".join(levels)


def write_contract(clicks, catalog, out_dir: str, file_format: str = "csv") -> tuple[str, str]:
    """Writes pandas DataFrames `clicks` and `catalog` as contract files.

    Returns the paths (clicks, catalog). `file_format` is `csv` (gzipped) or `parquet`.
    Columns are validated against the contract so a reader cannot emit something the
    ExampleGen will not read.
    """
    missing = [c for c in CLICK_REQUIRED_COLUMNS if c not in clicks.columns]
    missing += [c for c in CATALOG_REQUIRED_COLUMNS if c not in catalog.columns]
    if missing:
        raise ValueError(f"contract columns missing: {missing}")
    os.makedirs(out_dir, exist_ok=True)
    if file_format == "csv":
        paths = (os.path.join(out_dir, "clicks.csv.gz"), os.path.join(out_dir, "catalog.csv.gz"))
        clicks.to_csv(paths[0], index=False, compression={"method": "gzip", "mtime": 0})
        catalog.to_csv(paths[1], index=False, compression={"method": "gzip", "mtime": 0})
    elif file_format == "parquet":
        paths = (os.path.join(out_dir, "clicks.parquet"), os.path.join(out_dir, "catalog.parquet"))
        clicks.to_parquet(paths[0], index=False)
        catalog.to_parquet(paths[1], index=False)
    else:
        raise ValueError(f"file_format must be 'csv' or 'parquet', got {file_format!r}")
    return paths
