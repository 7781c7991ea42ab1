"""The global category transition graph of A2D-MTL (Eq. 2), from the training split alone.

Every training example is a prefix and its next item, so the pairs (the prefix's last
item, the target) are exactly the consecutive clicks of the training sessions, each once.
Their leaf categories are the graph's directed edges; an edge's weight is its count over
its source's out-count (Eq. 2), so a popular category's many transitions do not outweigh a
rare one's few. The Trainer counts them in one pass over its own training batches, the
same ones it trains on, so there is one reading of the data and the graph grows with it.

Example:
    >>> rows = {features.PREFIX_ROWS: np.array([[0, 1, -1], [2, -1, -1], [1, 2, 0]])}
    >>> batches = [(rows, {features.TARGET_ROW: np.array([2, 0, 1])})]
    >>> sources, targets, weights = category_transitions(batches, leaves=np.array([0, 1, 1]))
    >>> sources.tolist(), targets.tolist(), weights.tolist()
    ([0, 1, 1], [1, 0, 1], [1.0, 0.5, 0.5])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from model import features


def category_transitions(
    batches: Iterable[tuple[dict[str, Any], dict[str, Any]]], leaves: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(sources, targets, weights)` of the leaf-category transitions in `batches` of (inputs, labels).

    `leaves[row]` is the leaf category of catalog row `row`. Weights are normalized per source.
    """
    leaves = np.asarray(leaves, np.int64)
    width = int(leaves.max()) + 1
    codes = []
    for inputs, labels in batches:
        rows = np.asarray(inputs[features.PREFIX_ROWS])
        target = np.asarray(labels[features.TARGET_ROW])
        last = rows[np.arange(len(rows)), np.maximum((rows >= 0).sum(axis=1) - 1, 0)]
        keep = last >= 0
        codes.append(leaves[last[keep]] * width + leaves[target[keep]])
    pairs, counts = np.unique(np.concatenate(codes or [np.zeros(0, np.int64)]), return_counts=True)
    sources, targets = pairs // width, pairs % width
    out_counts = np.bincount(sources, weights=counts, minlength=width)
    weights = counts / out_counts[sources]
    return sources.astype(np.int32), targets.astype(np.int32), weights.astype(np.float32)
