"""The transformed catalog as arrays the model holds: one row per item, sorted by item id.

Raw catalog tf.Examples go through the Transform graph (`tft_output`) in a tf.data map
(the TFT layer is a tf_keras model and cannot be called inside a Keras 3 model) and are
stacked into numpy arrays. Session examples carry only item ids; `Catalog.row_of` turns
them into rows, and the model gathers each row's features.

Title tokens are shifted by +1 so that 0 is padding: a title's ids are 1..vocab+1 (the
last one is the OOV token), and `vocab_sizes[TITLE_TOKENS]` counts the padding id too.

Example:
    >>> import numpy as np
    >>> catalog = Catalog(np.array(["a", "c"]), {}, {}, 1)
    >>> catalog.row_of(["c", "b", "a"]).tolist(), len(catalog)
    ([1, -1, 0], 2)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from model import features
from model.config import PreprocessingConfig
from model.preprocessing import vocabulary_sizes


@dataclasses.dataclass(frozen=True)
class Catalog:
    """The items and their transformed features, row i of every array is item_ids[i]."""

    item_ids: np.ndarray  # str [N], sorted
    # ITEM_ID_INDEX, BRAND, PRICE_BUCKET, category_level(k), TRAIN_CLICKS: int32 [N];
    # TITLE_TOKENS: int32 [N, T], ids + 1, 0-padded, T >= 1.
    features: dict[str, np.ndarray]
    # Number of ids per index feature, OOV included (TITLE_TOKENS: + the padding id).
    vocab_sizes: dict[str, int]
    category_levels: int

    def __len__(self) -> int:
        return len(self.item_ids)

    def row_of(self, item_ids: Iterable[str] | np.ndarray) -> np.ndarray:
        """The row of each id (int64, same shape), -1 for ids not in the catalog."""
        ids = np.asarray(item_ids if isinstance(item_ids, np.ndarray) else list(item_ids), dtype=object)
        ids = np.array([_as_str(item_id) for item_id in ids.reshape(-1)], dtype=str).reshape(ids.shape)
        if not len(self.item_ids):
            return np.full(ids.shape, -1, np.int64)
        rows = np.searchsorted(self.item_ids, ids)
        clipped = np.minimum(rows, len(self.item_ids) - 1)
        return np.where(self.item_ids[clipped] == ids, clipped, -1).astype(np.int64)


def _as_str(item_id) -> str:
    return item_id.decode("utf-8") if isinstance(item_id, bytes) else str(item_id)


def _index_features(config: PreprocessingConfig) -> list[str]:
    return [
        features.ITEM_ID_INDEX,
        features.BRAND,
        features.PRICE_BUCKET,
        features.TRAIN_CLICKS,
        *(features.category_level(level) for level in range(1, config.category_levels + 1)),
    ]


def model_item_features(transformed: dict[str, Any], config: PreprocessingConfig) -> dict[str, tf.Tensor]:
    """Transform outputs -> the item features the model reads, dense, as TF ops.

    Used on the catalog here and on raw metadata inside the serving graph, so both
    encode items the same way. Title tokens become `[n, T]` ids + 1, 0-padded.
    """
    out = {name: tf.cast(transformed[name], tf.int32) for name in _index_features(config)}
    tokens = transformed[features.TITLE_TOKENS]
    if isinstance(tokens, tf.SparseTensor):
        tokens = tf.RaggedTensor.from_sparse(tokens)
    if isinstance(tokens, tf.RaggedTensor):
        tokens = (tokens + 1).to_tensor(default_value=0, shape=[None, None])
    else:
        tokens = tokens + 1
    out[features.TITLE_TOKENS] = tf.cast(tokens, tf.int32)
    return out


def _catalog_from_serialized(
    serialized: tf.data.Dataset, tft_output: tft.TFTransformOutput, config: PreprocessingConfig, batch_size: int
) -> Catalog:
    """Serialized raw catalog examples -> transformed, stacked, sorted Catalog."""
    raw_spec = tft_output.raw_feature_spec()
    transform = tft_output.transform_features_layer()
    wanted = [features.ITEM_ID, features.TITLE_TOKENS, *_index_features(config)]

    # No autograph: converting the TFT layer's Python (tf_keras call paths) takes seconds
    # and the function has no Python control flow on tensors.
    @tf.autograph.experimental.do_not_convert
    def apply(batch: tf.Tensor) -> dict:
        transformed = transform(tf.io.parse_example(batch, raw_spec))
        return {features.ITEM_ID: transformed[features.ITEM_ID], **model_item_features(transformed, config)}

    dataset = serialized.batch(batch_size).map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    for batch in dataset.prefetch(tf.data.AUTOTUNE):
        for name in wanted:
            chunks[name].append(batch[name].numpy())

    item_ids = np.array(
        [raw.decode("utf-8") for chunk in chunks[features.ITEM_ID] for raw in chunk.reshape(-1)], dtype=str
    )
    arrays = {name: _concat(chunks[name]).astype(np.int32) for name in _index_features(config)}
    arrays[features.TITLE_TOKENS] = _pad_concat(chunks[features.TITLE_TOKENS])

    # Sorted by id (stable, so the first of duplicate ids in read order is kept).
    order = np.argsort(item_ids, kind="stable")
    item_ids = item_ids[order]
    keep = np.ones(len(item_ids), dtype=bool)
    keep[1:] = item_ids[1:] != item_ids[:-1]
    order, item_ids = order[keep], item_ids[keep]
    arrays = {name: array[order] for name, array in arrays.items()}
    tokens = arrays[features.TITLE_TOKENS]
    longest = int((tokens > 0).sum(axis=1).max()) if len(tokens) else 0
    arrays[features.TITLE_TOKENS] = np.ascontiguousarray(tokens[:, : max(1, longest)])

    sizes = vocabulary_sizes(tft_output, config)
    sizes[features.TITLE_TOKENS] += 1  # the padding id
    return Catalog(item_ids, arrays, sizes, config.category_levels)


def _concat(chunks: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([c.reshape(-1) for c in chunks]) if chunks else np.zeros([0], np.int64)


def _pad_concat(chunks: Sequence[np.ndarray]) -> np.ndarray:
    """Row-stacks [n_i, T_i] int arrays into one int32 [sum n_i, max(1, max T_i)], 0-padded."""
    width = max([1, *(c.shape[1] for c in chunks)])
    rows = sum(c.shape[0] for c in chunks)
    out = np.zeros([rows, width], np.int32)
    start = 0
    for chunk in chunks:
        out[start : start + chunk.shape[0], : chunk.shape[1]] = chunk
        start += chunk.shape[0]
    return out


def load_catalog(
    file_pattern: str, tft_output: tft.TFTransformOutput, config: PreprocessingConfig, batch_size: int = 4096
) -> Catalog:
    """The catalog from raw catalog TFRecords (GZIP) matching `file_pattern`."""
    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise FileNotFoundError(f"no catalog files match {file_pattern!r}")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return _catalog_from_serialized(dataset, tft_output, config, batch_size)


def catalog_from_examples(
    serialized: Sequence[bytes], tft_output: tft.TFTransformOutput, config: PreprocessingConfig, batch_size: int = 4096
) -> Catalog:
    """The catalog of items given in memory as serialized raw tf.Examples (e.g. new items)."""
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(serialized), dtype=tf.string))
    return _catalog_from_serialized(dataset, tft_output, config, batch_size)
