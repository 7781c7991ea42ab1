"""Amazon Beauty 5-core (SASRec/S3-Rec/P5 split) as contract DataFrames.

It exercises title features: 12,101 items with real product titles. The sequences are
per-user review histories (22,363 users, 198,502 reviews), not browsing sessions, and
carry no times. So each history is one session, timestamps are positions, and whole
histories are assigned to train/eval/test by a hash of the user id (the `split` column).

Categories. The S3-Rec attribute ids are anonymous, but their order is structured:
S3-Rec lists an item's brand first, then each of its category paths with the root
("Beauty") dropped (`get_attribute_Amazon` in CIKM2020-S3Rec's
`data/data_process.py`). The shipped data agrees (numbers from `items.tsv`):
* no root: the most frequent id is on only 3,814 of 12,101 items;
* position 0 holds 443 distinct ids, 435 of which never appear at a later position
  (brands, leading 7,492 items);
* after the brand, every item's first id is one of 6 ids (3,814 / 3,262 / 2,627 /
  1,222 / 684 / 492 items): a partition into top-level categories, with 2 to 11
  distinct second-level ids under each;
* below them, 178 of the 196 deeper ids always follow the same parent id; the others
  recur under several parents (id 2 under 17 on 1,979 items and under 1 on 563),
  as a name shared by two branches would;
* paths are 1 to 5 levels deep (106 / 1,693 / 7,509 / 2,445 / 348 items); only 2 items
  list ids after their first path.
So `category_path` is the first path as `a<id>` levels (e.g. `a17 > a2 > a39`), and
`brand` is the leading brand id (`a<id>`) where there is one. `attribute_ids` keeps the
raw list.

Example (reads the whole data set from ../shared/data, so the doctests skip it):
    >>> import contract
    >>> from components.readers import amazon_beauty
    >>> clicks, catalog = amazon_beauty.read_beauty(amazon_beauty.data_dir())  # doctest: +SKIP
    >>> contract.write_contract(clicks, catalog, "/tmp/beauty")  # doctest: +SKIP
    ('/tmp/beauty/clicks.csv.gz', '/tmp/beauty/catalog.csv.gz')
"""

from __future__ import annotations

import collections
import csv
import gzip
import hashlib
import os

import pandas as pd

import contract
from components.readers import positional_clicks, shared_data_dir

BEAUTY_SUBDIR = "amazon-beauty"
ATTRIBUTE_IDS = "attribute_ids"
_ITEMS_HEADER = ["asin", "s3rec_item_id", "title", "s3rec_attribute_ids"]
# A top-level category is (nearly) always the first id or right after a brand; deeper
# nodes almost never are. On Beauty the six top-level ids score >= 0.999, all others < 0.5.
_TOP_LEVEL_HEAD_SHARE = 0.9


def data_dir(base_dir: str | None = None) -> str:
    """Where Amazon Beauty lives under `base_dir` (default `shared_data_dir()`)."""
    return os.path.join(base_dir or shared_data_dir(), BEAUTY_SUBDIR)


def hash_split(user_id: str, eval_fraction: float, test_fraction: float, seed: int) -> str:
    """A user's split from a uniform hash of (seed, user id): stable across runs and machines."""
    digest = hashlib.sha256(f"{seed}:{user_id}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    if unit < test_fraction:
        return contract.TEST
    if unit < test_fraction + eval_fraction:
        return contract.EVAL
    return contract.TRAIN


def attribute_structure(attribute_lists: list[list[str]]) -> tuple[set[str], set[str]]:
    """(brand ids, top-level category ids) inferred from the order of S3-Rec attribute ids."""
    later = {a for attributes in attribute_lists for a in attributes[1:]}
    brands = {attributes[0] for attributes in attribute_lists if attributes} - later
    seen: collections.Counter = collections.Counter()
    heads: collections.Counter = collections.Counter()
    for attributes in attribute_lists:
        for i, attribute in enumerate(attributes):
            seen[attribute] += 1
            heads[attribute] += i == 0 or attributes[i - 1] in brands
    top_level = {a for a in seen if a not in brands and heads[a] / seen[a] >= _TOP_LEVEL_HEAD_SHARE}
    return brands, top_level


def brand_and_path(attributes: list[str], brands: set[str], top_level: set[str]) -> tuple[str | None, list[str]]:
    """An item's brand id (or None) and its first category path (root first, maybe empty)."""
    # The brand leads; it may share its name (hence its id) with a category.
    if len(attributes) > 1 and attributes[1] in top_level:
        brand, rest = attributes[0], attributes[1:]
    elif attributes and attributes[0] in top_level:
        brand, rest = None, attributes
    else:
        brand = attributes[0] if attributes and attributes[0] in brands else None
        return brand, []
    path = [rest[0]]
    # The path ends where a second path starts (a top-level id) or a node repeats.
    for attribute in rest[1:]:
        if attribute in top_level or attribute in path:
            break
        path.append(attribute)
    return brand, path


def _read_items(path: str) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        # Titles may hold quotes; tabs in titles were replaced upstream, so no quoting.
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != _ITEMS_HEADER:
        raise ValueError(f"{path}: header is not {_ITEMS_HEADER}")
    bad = [n for n, row in enumerate(rows[1:], start=2) if len(row) != len(_ITEMS_HEADER)]
    if bad:
        raise ValueError(f"{path}: lines {bad[:5]} do not have {len(_ITEMS_HEADER)} fields")
    return rows[1:]


def read_beauty(
    data_dir: str, eval_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads `p5_sequences/user_sequence.txt.gz` and `items.tsv.gz` from `data_dir`.

    Clicks: `session_id` (reviewerID), `item_id` (ASIN), `timestamp` (1-based position in
    the history, in seconds: the order is chronological but times are absent) and `split`:
    each whole history goes to test / eval / train with probability test_fraction /
    eval_fraction / the rest, by `hash_split`.

    Catalog: `item_id` (ASIN), `title`, `category_path`, `brand`, `attribute_ids` (the
    S3-Rec ids, space-separated). See the module docstring for the category mapping.
    """
    if eval_fraction < 0 or test_fraction < 0 or eval_fraction + test_fraction >= 1:
        raise ValueError("eval_fraction and test_fraction must be >= 0 and sum to < 1")
    with gzip.open(os.path.join(data_dir, "p5_sequences", "user_sequence.txt.gz"), "rt") as handle:
        histories = [line.split() for line in handle if line.strip()]
    users = [history[0] for history in histories]
    splits = [hash_split(user, eval_fraction, test_fraction, seed) for user in users]
    clicks = positional_clicks(users, [history[1:] for history in histories], splits)

    items = _read_items(os.path.join(data_dir, "items.tsv.gz"))
    attribute_lists = [row[3].split() for row in items]
    brands, top_level = attribute_structure(attribute_lists)
    brand_ids, paths = [], []
    for attributes in attribute_lists:
        brand, path = brand_and_path(attributes, brands, top_level)
        brand_ids.append(f"a{brand}" if brand else "")
        paths.append(contract.join_category_path([f"a{a}" for a in path]))
    catalog = pd.DataFrame(
        {
            contract.ITEM_ID: [row[0] for row in items],
            contract.TITLE: [row[2] for row in items],
            contract.CATEGORY_PATH: paths,
            contract.BRAND: brand_ids,
            ATTRIBUTE_IDS: [row[3] for row in items],
        }
    )
    return clicks, catalog
