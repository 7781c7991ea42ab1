"""Non-neural baselines that score the whole catalog, so the models' ranking code ranks them.

Each is a callable `inputs -> {features.ITEM_LOGITS: [batch, items]}` over the same
prefix rows the Keras models read (left-aligned catalog rows, -1 as padding), which is
what `benchmarks.train.evaluate` calls.

- `Pop`: training clicks per item.
- `VSKNN`: V-SKNN (Ludewig & Jannach, 2018). Training sessions are item sets. A prefix is a
  vector with linear position decay (the i-th of n clicks weighs i/n, the last 1); its
  similarity to a training session is the dot product with that session's binary vector.
  From the `sample_size` most recent sessions sharing an item with the prefix, the `k` most
  similar are the neighbours; an item's score is the sum of the similarities of the
  neighbours that hold it.

Most items get 0 from V-SKNN and many share a click count; `benchmarks.train.evaluate`
breaks such ties by popularity for every row, so a target scored 0 ranks behind every
scored item and behind the more popular unscored ones (V-SKNN falls back on popularity).

Example:
    >>> pop = Pop(catalog)                                                   # doctest: +SKIP
    >>> pop({features.PREFIX_ROWS: rows})[features.ITEM_LOGITS].shape        # doctest: +SKIP
    (batch, len(catalog))
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

import contract
from model import features
from model.inputs import item_table


def _rows(inputs: dict[str, Any]) -> np.ndarray:
    rows = inputs[features.PREFIX_ROWS]
    return rows.numpy() if hasattr(rows, "numpy") else np.asarray(rows)


class Pop:
    """Most clicked items in training first, whatever the session."""

    def __init__(self, catalog: Any) -> None:
        self.scores = catalog.features[features.TRAIN_CLICKS].astype("float64")

    def __call__(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        batch = _rows(inputs).shape[0]
        return {features.ITEM_LOGITS: np.broadcast_to(self.scores, (batch, self.scores.size))}


def _natural_key(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


class VSKNN:
    """Session-kNN with vector (position-decayed) prefixes and recency-sampled neighbours."""

    def __init__(self, sessions: sp.csr_matrix, k: int = 100, sample_size: int = 1000) -> None:
        """`sessions`: binary `[sessions, items]`, most recent session first (`sessions_from_examples`)."""
        self.sessions = sessions
        self.sessions_t = sessions.T.tocsr()
        self.k, self.sample_size = k, sample_size

    @staticmethod
    def sessions_from_examples(file_pattern: str, item_ids: np.ndarray) -> sp.csr_matrix:
        """Training sessions as item sets from the ExampleGen's (prefix -> next item) examples.

        A session's items are the union of its examples' prefixes and targets; sessions are
        ordered most recent first by their last target's time, ties (the SR-GNN split has no
        real times) by session id in natural order, which is that split's date order.
        """
        table = item_table(item_ids)
        spec = {
            contract.SESSION_ID: tf.io.FixedLenFeature([], tf.string),
            contract.PREFIX_ITEM_IDS: tf.io.RaggedFeature(tf.string),
            contract.TARGET_ITEM_ID: tf.io.FixedLenFeature([], tf.string),
            contract.TARGET_TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
        }
        files = tf.io.gfile.glob(file_pattern)
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
        session_ids, times, example_rows, item_rows = [], [], [], []
        seen = 0
        for batch in dataset.map(lambda s: tf.io.parse_example(s, spec)):
            prefix = table.lookup(batch[contract.PREFIX_ITEM_IDS].flat_values).numpy()
            lengths = batch[contract.PREFIX_ITEM_IDS].row_lengths().numpy()
            target = table.lookup(batch[contract.TARGET_ITEM_ID]).numpy()
            count = len(target)
            example_rows += [np.repeat(np.arange(seen, seen + count), lengths), np.arange(seen, seen + count)]
            item_rows += [prefix, target]
            session_ids.append(batch[contract.SESSION_ID].numpy())
            times.append(batch[contract.TARGET_TIMESTAMP].numpy())
            seen += count
        ids, example_session = np.unique(np.concatenate(session_ids), return_inverse=True)
        last_time = np.full(len(ids), np.iinfo(np.int64).min)
        np.maximum.at(last_time, example_session, np.concatenate(times))
        natural = np.array(sorted(range(len(ids)), key=lambda i: _natural_key(ids[i].decode())), np.int64)
        natural_rank = np.empty(len(ids), np.int64)
        natural_rank[natural] = np.arange(len(ids))
        recency = np.lexsort((-natural_rank, -last_time))  # most recent first
        position = np.empty(len(ids), np.int64)
        position[recency] = np.arange(len(ids))
        examples, items = np.concatenate(example_rows), np.concatenate(item_rows)
        keep = items >= 0
        matrix = sp.csr_matrix(
            (np.ones(keep.sum(), "float32"), (position[example_session[examples[keep]]], items[keep])),
            shape=(len(ids), len(item_ids)),
        )
        matrix.data[:] = 1.0  # duplicates were summed
        return matrix

    def _prefix_vectors(self, rows: np.ndarray) -> sp.csr_matrix:
        """`[batch, length]` rows -> `[batch, items]`: the i-th of n clicks weighs i/n; a repeat keeps its latest."""
        real = rows >= 0
        weights = np.arange(1, rows.shape[1] + 1)[None, :] / np.maximum(real.sum(axis=1, keepdims=True), 1)
        batch, _ = np.nonzero(real)
        items, weights = rows[real], weights[real].astype("float32")
        keys = batch * self.sessions.shape[1] + items
        _, latest = np.unique(keys[::-1], return_index=True)  # items are oldest first
        latest = len(keys) - 1 - latest
        return sp.csr_matrix(
            (weights[latest], (batch[latest], items[latest])), shape=(rows.shape[0], self.sessions.shape[1])
        )

    def __call__(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        rows = _rows(inputs)
        similarity = (self._prefix_vectors(rows) @ self.sessions_t).tocsr()  # [batch, sessions]
        similarity.sort_indices()  # column order = recency order
        neighbour_rows, neighbour_cols, neighbour_sims = [], [], []
        for b in range(rows.shape[0]):
            start, end = similarity.indptr[b], similarity.indptr[b + 1]
            end = min(end, start + self.sample_size)  # the most recent sessions sharing an item
            sims, cols = similarity.data[start:end], similarity.indices[start:end]
            top = np.argsort(-sims, kind="stable")[: self.k]  # equal similarity: the more recent session
            sims, cols = sims[top], cols[top]
            neighbour_rows.append(np.full(len(cols), b))
            neighbour_cols.append(cols)
            neighbour_sims.append(sims)
        neighbours = sp.csr_matrix(
            (np.concatenate(neighbour_sims), (np.concatenate(neighbour_rows), np.concatenate(neighbour_cols))),
            shape=similarity.shape,
        )
        return {features.ITEM_LOGITS: (neighbours @ self.sessions).toarray()}
