"""The exported model's interface: signature, input and output names, and slice keys.

The export writes these names into the SavedModel; the server, the client, the warm-up,
the Evaluator and the run report read them. They live here, with no TensorFlow import, so
a client that only needs the names (`serving.client`) does not load TF Transform.

Example:
    >>> SERVING_DEFAULT, ITEM_IDS, top_categories(1)
    ('serving_default', 'item_ids', 'top_categories_l1')
"""

from __future__ import annotations

import os

# Signatures.
SERVING_DEFAULT = "serving_default"
FROM_METADATA = "recommend_from_metadata"
EXCLUDING = "recommend_excluding"  # serving_default, leaving out the items of `exclude_item_ids`
IN_TOP_CATEGORIES = "recommend_in_top_categories"  # serving_default over the top leaf categories' items
TRANSFORM_FEATURES = "transform_features"
SERVE_EXAMPLES = "serve_examples"
# Signature input and output names.
ITEM_IDS = "item_ids"
TITLES = "titles"
CATEGORY_PATHS = "category_paths"
BRANDS = "brands"
PRICES = "prices"
EXAMPLES = "examples"
EXCLUDE_ITEM_IDS = "exclude_item_ids"  # [batch, n] per session, "" as padding; ids not in the catalog are ignored
TOP_K_IDS = "top_k_ids"
TOP_K_SCORES = "top_k_scores"
UNKNOWN_ITEMS = "unknown_items"
KNOWN_ITEMS = "known_items"  # per session: 0 means no item the model knows, and empty recommendations
NO_KNOWN_ITEMS = "every session needs at least one item the model knows (empty session, or only unknown ids)"
UNKNOWN_CATEGORY = b"<unknown>"
# transform_features' label and slice keys (model.export.transform_features_signature).
TARGET_TRAIN_CLICKS = "target_train_clicks"
TAIL_SESSION = "tail_session"
COLD_START_TARGET = "cold_start_target"
SESSION_LENGTH = "session_length"
TAIL_CLICKS = 10  # M2TRec: tail items have fewer than 10 occurrences in training
# Rank metrics are named `<kind>@<K>` (hit, mrr, ndcg) everywhere: training histories, the
# Evaluator, the reports and the benchmarks' JSON; Keras prefixes those on validation "val_".
TRACKED_K = 20  # the K early stopping watches and the tables lead with
# Prefix length -> bucket name: lower bounds and names.
SESSION_LENGTH_BUCKETS = ([1, 2, 3, 5, 10], [b"1", b"2", b"3-4", b"5-9", b"10+"])

# Warm-up requests, inside a version directory, where TF Serving replays them from.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Files the Trainer writes into its ModelRun artifact, read by the run report and the summary.
HISTORY_FILE = "history.json"  # Keras' history: each epoch's loss and metrics
WARM_START_FILE = "warm_start.json"  # which weights a warm start copied, remapped or re-initialized
REPEAT_BONUS_FILE = "repeat_bonus.json"  # the bonus chosen after training, and each value's eval metrics

# Keys of the Transform's and the Trainer's custom_config: written by tfx_pipeline.pipeline
# (and the catalog's file pattern by components.session_trainer), read by
# model.preprocessing.preprocessing_fn and model.trainer.run_fn.
MODEL_CONFIG = "model"
PREPROCESSING_CONFIG = "preprocessing"
SERVING_MODEL_NAME = "serving_model_name"
WARM_START = "warm_start"
CATALOG_FILES = "catalog_files"


def target_category(level: int) -> str:
    return f"target_category_l{level}"


def top_categories(level: int) -> str:
    return f"top_categories_l{level}"


def top_category_scores(level: int) -> str:
    return f"top_category_scores_l{level}"


def rank_metric(kind: str, k: int = TRACKED_K) -> str:
    """`("hit", 20)` -> `hit@20`."""
    return f"{kind}@{k}"


def on_validation(metric: str) -> str:
    """A metric's name in a Keras history on validation data: `hit@20` -> `val_hit@20`."""
    return f"val_{metric}"


# What early stopping and the best epoch are chosen by.
TRACKED_METRIC = on_validation(rank_metric("hit"))
