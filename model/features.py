"""Names of the transformed item features and of the model's inputs and outputs, once.

Transform's `preprocessing_fn` runs over the catalog (one example per item) and writes
the features below; the trainer stacks them into one array per feature (a row per item)
that the model holds, so session examples only carry item ids.

Example:
    >>> category_level(2)
    'category_l2'
    >>> vocabulary_name(category_level(2))
    'category_l2_vocab'
"""

from __future__ import annotations

import contract

# --- Transformed catalog features (outputs of preprocessing_fn), one row per item ------
ITEM_ID = contract.ITEM_ID  # the raw id, passed through: the row's key
ITEM_ID_INDEX = "item_id_index"  # tft vocabulary of items clicked in training; others -> OOV
TITLE_TOKENS = "title_tokens"  # tensorflow-text word tokens -> tft vocabulary ids (ragged)
BRAND = "brand_index"
PRICE_BUCKET = "price_bucket"  # quantile bucket; items without a price get their own bucket
CATEGORY_PREFIX = "category_l"  # category_l1 .. category_lN: the path cut at each level
TRAIN_CLICKS = contract.TRAIN_CLICKS  # passed through: tail and cold-start flags


def category_level(level: int) -> str:
    """Feature name of the category path cut at `level` (1-based): `Home > Kitchen` for 2."""
    return f"{CATEGORY_PREFIX}{level}"


def vocabulary_name(feature: str) -> str:
    """The tft vocabulary file behind an index feature."""
    return f"{feature}_vocab"


# --- Model inputs and outputs ------------------------------------------------------------
PREFIX_ROWS = "prefix_rows"  # [batch, max_prefix_length] catalog rows, padded with -1
TARGET_ROW = "target_row"  # [batch] catalog row of the next item
SESSION_KEY = "session_key"  # [batch] int64, inputs.session_keys: a session never reads itself as a neighbour
ITEM_LOGITS = "item_logits"  # [batch, catalog size]
SESSION_VECTOR = "session_vector"  # [batch, item width]


def category_logits(level: int) -> str:
    return f"category_logits_l{level}"


def category_target(level: int) -> str:
    return f"category_target_l{level}"
