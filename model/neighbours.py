"""The index of training sessions that `layers.NeighbourSessions` reads (A2D-MTL's neighbours).

Built once by the Trainer from the training split alone (never validation or test), and
held by the model like the catalog, so the SavedModel answers a session from training
sessions only: a session's recommendations do not depend on its batch. Items are kept as
ids, not catalog rows, so the index follows the model onto a refreshed catalog (an item
the new catalog lacks drops out of its sessions).

Which sessions: the `size` most recent (by their last click), each whole (its longest
prefix and that prefix's target; the most recent `max_length` items). Recent sessions are
the most like the sessions the model will serve, and a fixed size bounds the cost per
step: scoring a session against the index is a `[batch, width] x [width, size]` matmul.

Example:
    >>> index = NeighbourIndex.from_sessions([["a", "b"], ["c"]], np.array([7, 9]))
    >>> index.sessions, index.lengths.tolist()
    (2, [2, 1])
    >>> NeighbourIndex.from_bytes(index.to_bytes()).item_ids.tolist()
    ['a', 'b', 'c']
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
import tensorflow as tf

import contract
from model.inputs import session_files, session_keys


@dataclasses.dataclass(frozen=True)
class NeighbourIndex:
    """Training sessions as item ids: session i is `item_ids[offsets[i]:offsets[i + 1]]`."""

    item_ids: np.ndarray  # str, every session's items in order, concatenated
    lengths: np.ndarray  # int64 [sessions]
    keys: np.ndarray  # int64 [sessions]: inputs.session_keys of each session's id

    @property
    def sessions(self) -> int:
        return len(self.lengths)

    @classmethod
    def from_sessions(cls, sessions: list[list[str]], keys: np.ndarray) -> NeighbourIndex:
        flat = [item for session in sessions for item in session]
        return cls(
            np.array(flat, dtype=str), np.array([len(s) for s in sessions], np.int64), np.asarray(keys, np.int64)
        )

    def rows(self, row_of: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Catalog rows by `row_of` (ids -> rows, -1 for unknown): `(rows, segments, keys)` of the sessions
        that keep at least one item; `segments[j]` is the session of `rows[j]`, numbered from 0."""
        rows = np.asarray(row_of(self.item_ids), np.int64)
        segments = np.repeat(np.arange(self.sessions), self.lengths)
        known = rows >= 0
        kept = np.unique(segments[known])
        renumber = np.full(self.sessions, -1, np.int64)
        renumber[kept] = np.arange(len(kept))
        return rows[known].astype(np.int32), renumber[segments[known]].astype(np.int32), self.keys[kept]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, item_ids=self.item_ids, lengths=self.lengths, keys=self.keys)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> NeighbourIndex:
        with np.load(io.BytesIO(data)) as arrays:
            return cls(arrays["item_ids"], arrays["lengths"], arrays["keys"])


_FEATURES = {
    contract.SESSION_ID: tf.io.FixedLenFeature([], tf.string),
    contract.PREFIX_ITEM_IDS: tf.io.RaggedFeature(tf.string),
    contract.TARGET_ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    contract.TARGET_TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    contract.PREFIX_LENGTH: tf.io.FixedLenFeature([], tf.int64),
}


def build_neighbour_index(train_files: str | list[str], size: int, max_length: int) -> NeighbourIndex:
    """The `size` most recent whole sessions of the training examples (see the module's docstring)."""
    # Per session: (prefix length, last click time, items) of its longest example.
    longest: dict[int, tuple[int, int, list[bytes]]] = {}
    dataset = tf.data.TFRecordDataset(session_files(train_files), compression_type="GZIP").batch(4096)
    for batch in dataset.map(lambda records: tf.io.parse_example(records, _FEATURES)):
        keys = session_keys(batch[contract.SESSION_ID]).numpy()
        lengths = batch[contract.PREFIX_LENGTH].numpy()
        times = batch[contract.TARGET_TIMESTAMP].numpy()
        prefixes = batch[contract.PREFIX_ITEM_IDS].to_list()
        targets = batch[contract.TARGET_ITEM_ID].numpy()
        for key, length, time, prefix, target in zip(keys.tolist(), lengths, times, prefixes, targets):
            if key not in longest or length > longest[key][0]:
                longest[key] = (int(length), int(time), [*prefix, target])
    recent = sorted(longest.items(), key=lambda entry: entry[1][1], reverse=True)[:size]
    return NeighbourIndex.from_sessions(
        [[item.decode() for item in items[-max_length:]] for _, (_, _, items) in recent],
        np.array([key for key, _ in recent], np.int64),
    )
