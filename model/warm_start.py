"""Warm start: a new model begins from the last blessed model's weights, across catalog changes.

The exported SavedModel is a tf.Module (model/export.py), not a Keras model, so `run_fn`
also writes the Keras weights, and the vocabulary tokens their rows stand for, into the
Model artifact next to Format-Serving:

    <model uri>/warm_start/weights.npz    every weight, in `model.weights` order
    <model uri>/warm_start/index.json     each weight's path, each vocabulary's row tokens

Not `model.save_weights` (.weights.h5): Keras keys that file by attribute and layer names,
skips the embeddings ItemEncoder holds in a list of tuples, and names layers in lists by
auto-generated names (`dense_1`) that depend on how many models the process built before.

Weights pair by role (the variable path without the model's name or `_<n>` suffixes, e.g.
`session_encoder/block/dense/kernel`) and by rank among weights of that role, so a catalog
or a layer count may change between runs:
- a vocabulary-indexed weight (the item id, title token, brand and category embeddings; the
  category and item-id heads' outputs; HierSRec's category projections) is remapped row by
  row by token: rows of tokens the base model knew are copied, new tokens keep their fresh
  initialization;
- any other weight of the same shape is copied;
- the rest (new layers, changed widths) keep their fresh initialization.

Example:
    >>> save(model, vocabularies(tft_output, catalog), model_uri)      # doctest: +SKIP
    >>> report = restore(new_model, vocabularies(new_tft_output, new_catalog), model_uri)  # doctest: +SKIP
    >>> report["remapped"]["item_encoder/item_id_index/embeddings"]    # doctest: +SKIP
    {'kept': 2400, 'new': 100}
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from model import features
from model.catalog import Catalog

WARM_START_DIR = "warm_start"
WEIGHTS_FILE = "weights.npz"
INDEX_FILE = "index.json"
# Rows that stand for no vocabulary token: title padding (row 0) and the OOV row (last).
PADDING_TOKEN = "\x00padding"
OOV_TOKEN = "\x00oov"

_CATEGORY = rf"{features.CATEGORY_PREFIX}\d+"
_EMBEDDED = "|".join([features.ITEM_ID_INDEX, features.TITLE_TOKENS, features.BRAND, _CATEGORY])
# (weight path without the model's name, the feature whose vocabulary indexes it, that axis).
_VOCABULARY_AXES = [
    (re.compile(rf"item_encoder/({_EMBEDDED})/embeddings"), r"\1", 0),
    (re.compile(r"category_heads/level_(\d+)/kernel"), rf"{features.CATEGORY_PREFIX}\1", 1),
    (re.compile(r"category_heads/level_(\d+)/bias"), rf"{features.CATEGORY_PREFIX}\1", 0),
    (re.compile(r"hierarchical_fusion/level_(\d+)/kernel"), rf"{features.CATEGORY_PREFIX}\1", 0),
    (re.compile(r"item_id_head/kernel"), features.ITEM_ID_INDEX, 1),
    (re.compile(r"item_id_head/bias"), features.ITEM_ID_INDEX, 0),
]


def vocabularies(tft_output: tft.TFTransformOutput, catalog: Catalog) -> dict[str, list[str]]:
    """The token each row of every vocabulary-indexed table stands for (model/catalog.py's layout)."""
    rows = {}
    for feature, size in catalog.vocab_sizes.items():
        if feature == features.PRICE_BUCKET:  # quantile buckets, not a vocabulary
            continue
        tokens = [
            token.decode("utf-8", "backslashreplace") if isinstance(token, bytes) else str(token)
            for token in tft_output.vocabulary_by_name(features.vocabulary_name(feature))
        ]
        padding = [PADDING_TOKEN] if feature == features.TITLE_TOKENS else []
        rows[feature] = padding + tokens + [OOV_TOKEN]
        if len(rows[feature]) != size:
            raise ValueError(f"{feature}: {len(rows[feature])} vocabulary rows for a table of {size}")
    return rows


def save(model: keras.Model, vocabulary_rows: dict[str, list[str]], model_uri: str) -> None:
    """Writes the model's weights and vocabularies under `<model_uri>/warm_start/`."""
    directory = os.path.join(model_uri, WARM_START_DIR)
    tf.io.gfile.makedirs(directory)
    buffer = io.BytesIO()
    np.savez(buffer, *model.get_weights())
    with tf.io.gfile.GFile(os.path.join(directory, WEIGHTS_FILE), "wb") as f:
        f.write(buffer.getvalue())
    index = {"paths": [weight.path for weight in model.weights], "vocabularies": vocabulary_rows}
    with tf.io.gfile.GFile(os.path.join(directory, INDEX_FILE), "w") as f:
        json.dump(index, f)


def restore(model: keras.Model, vocabulary_rows: dict[str, list[str]], base_model_uri: str) -> dict[str, Any]:
    """Sets the model's weights from the base model's, where they carry over; returns what was done.

    The report names each weight by its path in the model: `copied`, `remapped` (rows kept
    and new), `reinitialized`; `from_scratch` says why nothing was restored, if so.
    """
    directory = os.path.join(base_model_uri, WARM_START_DIR)
    report: dict[str, Any] = {"base_model": base_model_uri, "copied": [], "remapped": {}, "reinitialized": []}
    if not tf.io.gfile.exists(os.path.join(directory, INDEX_FILE)):
        return {
            **report,
            "from_scratch": f"the base model has no {WARM_START_DIR}/ (trained before warm start existed)",
        }
    with tf.io.gfile.GFile(os.path.join(directory, INDEX_FILE)) as f:
        base_index = json.load(f)
    with tf.io.gfile.GFile(os.path.join(directory, WEIGHTS_FILE), "rb") as f:
        stored = np.load(io.BytesIO(f.read()))
        base_values = [stored[f"arr_{i}"] for i in range(len(base_index["paths"]))]
    base_by_key = dict(zip(_keys(base_index["paths"]), zip(base_index["paths"], base_values)))
    values = []
    for key, weight, value in zip(_keys([w.path for w in model.weights]), model.weights, model.get_weights()):
        name = weight.path.split("/", 1)[-1]
        if key not in base_by_key:
            report["reinitialized"].append(name)
            values.append(value)
            continue
        base_path, base_value = base_by_key[key]
        vocabulary = _vocabulary_axis(weight.path)
        if vocabulary is not None and vocabulary == _vocabulary_axis(base_path):
            feature, axis = vocabulary
            remapped = _remap(
                base_value, value, base_index["vocabularies"].get(feature), vocabulary_rows[feature], axis
            )
            if remapped is not None:
                values.append(remapped[0])
                report["remapped"][name] = {"kept": remapped[1], "new": value.shape[axis] - remapped[1]}
                continue
        elif base_value.shape == value.shape:
            values.append(base_value)
            report["copied"].append(name)
            continue
        report["reinitialized"].append(name)
        values.append(value)
    model.set_weights(values)
    return report


def summary(report: dict[str, Any]) -> str:
    """One line for the log: how much carried over."""
    if "from_scratch" in report:
        return f"Training from scratch: {report['from_scratch']}"
    rows = ", ".join(f"{name}: {n['kept']} rows kept, {n['new']} new" for name, n in report["remapped"].items())
    return (
        f"Warm start from {report['base_model']}: {len(report['copied'])} weights copied, "
        f"{len(report['remapped'])} remapped by vocabulary ({rows}), "
        f"{len(report['reinitialized'])} re-initialized {report['reinitialized']}"
    )


def _keys(paths: list[str]) -> list[tuple[str, int]]:
    """(role, rank among weights of that role) for each weight path."""
    seen: collections.Counter = collections.Counter()
    keys = []
    for path in paths:
        role = "/".join(re.sub(r"_\d+$", "", part) for part in path.split("/")[1:])
        keys.append((role, seen[role]))
        seen[role] += 1
    return keys


def _vocabulary_axis(path: str) -> tuple[str, int] | None:
    within_model = path.split("/", 1)[-1]
    for pattern, feature, axis in _VOCABULARY_AXES:
        match = pattern.fullmatch(within_model)
        if match:
            return match.expand(feature), axis
    return None


def _remap(
    base_value: np.ndarray, value: np.ndarray, base_rows: list[str] | None, rows: list[str], axis: int
) -> tuple[np.ndarray, int] | None:
    """`value` with the base's row for every token both vocabularies hold, and how many; None
    when the other axes differ (a changed width) or the base's vocabulary is unknown."""
    other_axes = np.delete(np.array(value.shape), axis).tolist()
    if base_rows is None or np.delete(np.array(base_value.shape), axis).tolist() != other_axes:
        return None
    base_row = {token: i for i, token in enumerate(base_rows)}
    pairs = [(row, base_row[token]) for row, token in enumerate(rows) if token in base_row]
    remapped = np.array(value, copy=True)
    if pairs:
        new_rows, old_rows = (list(side) for side in zip(*pairs))
        np.moveaxis(remapped, axis, 0)[new_rows] = np.moveaxis(base_value, axis, 0)[old_rows]
    return remapped, len(pairs)
