"""Readers that turn public data sets into contract DataFrames `(clicks, catalog)`.

Each reader converts formats only; filtering and bad-row accounting are the ExampleGen's
job. Write the result with `contract.write_contract`.

* `diginetica.read_raw`: CIKM Cup 2016 Diginetica raw clicks and product categories.
* `diginetica.read_srgnn`: the SR-GNN/GCE-GNN preprocessed Diginetica train/test split.
* `amazon_beauty.read_beauty`: Amazon Beauty 5-core user histories with titles.

Example:
    >>> from components.readers import diginetica
    >>> clicks, catalog = diginetica.read_srgnn(diginetica.data_paths()["srgnn_dir"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

import contract

SHARED_DATA_DIR_ENV = "SHARED_DATA_DIR"


def shared_data_dir() -> str:
    """The shared data directory: `$SHARED_DATA_DIR`, else `<repo root>/../shared/data`."""
    configured = os.environ.get(SHARED_DATA_DIR_ENV)
    if configured:
        return configured
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.normpath(os.path.join(repo_root, "..", "shared", "data"))


def positional_clicks(
    session_ids: Sequence[str], sessions: Sequence[Sequence[str]], splits: Sequence[str]
) -> pd.DataFrame:
    """Contract clicks from ordered item lists, one session (and its split) per list.

    For data sets without times: `timestamp` is the click's 1-based position in its
    session, in seconds. It orders a session's clicks and means nothing across sessions,
    so such data sets must be split by their `split` column, never by time.
    """
    lengths = np.fromiter(map(len, sessions), dtype=np.int64, count=len(sessions))
    starts = np.cumsum(lengths) - lengths
    return pd.DataFrame(
        {
            contract.SESSION_ID: np.repeat(np.asarray(session_ids, dtype=object), lengths),
            contract.ITEM_ID: [item for session in sessions for item in session],
            contract.TIMESTAMP: np.arange(lengths.sum()) - np.repeat(starts, lengths) + 1,
            contract.SPLIT: np.repeat(np.asarray(splits, dtype=object), lengths),
        }
    )
