"""A few test sessions through the exported model, with titles and categories from the catalog.

The model is called as a server calls it: the SavedModel's `serving_default` signature on
the session's item ids (oldest first, padded with ""). Sessions are picked
deterministically: the first test sessions in file order, each at its longest prefix.

Example:
    >>> sessions = example_sessions(test_files, catalog_files, model_dir, count=3, top_k=10)  # doctest: +SKIP
    >>> sessions[0].recommendations[0]                                                       # doctest: +SKIP
    (Item(item_id='100042', title='...', category='Beauty > Skin > Creams'), 0.83)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

import contract
from contract import model_api
from reporting.run_report import ExampleSession, Item

# Test examples scanned for sessions: the first few thousand hold plenty of sessions.
_SCANNED_EXAMPLES = 5_000
# A session this long or longer shows the model using context; shorter ones fill in.
_PREFERRED_PREFIX = 3
_TOP_CATEGORIES = re.compile(r"^top_categories_l(\d+)$")


def _records(file_pattern: str, limit: int = -1) -> Iterable[bytes]:
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise FileNotFoundError(f"no examples match {file_pattern}")
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit):
        yield record.numpy()


def _bytes_values(example, name: str) -> list[str]:
    return [v.decode("utf-8", "replace") for v in example.features.feature[name].bytes_list.value]


def pick_sessions(file_pattern: str, count: int) -> list[tuple[str, list[str], str]]:
    """`count` (session id, prefix, target) triples: each session at its longest prefix, long ones first in file order."""
    import tensorflow as tf

    longest: dict[str, tuple[list[str], str]] = {}
    for record in _records(file_pattern, _SCANNED_EXAMPLES):
        example = tf.train.Example.FromString(record)
        (session_id,) = _bytes_values(example, contract.SESSION_ID) or [""]
        prefix = _bytes_values(example, contract.PREFIX_ITEM_IDS)
        (target,) = _bytes_values(example, contract.TARGET_ITEM_ID)
        if session_id not in longest or len(prefix) > len(longest[session_id][0]):
            longest[session_id] = (prefix, target)
    ordered = sorted(longest.items(), key=lambda kv: len(kv[1][0]) < _PREFERRED_PREFIX)  # stable: file order kept
    return [(session_id, prefix, target) for session_id, (prefix, target) in ordered[:count]]


def read_items(file_pattern: str, item_ids: set[str]) -> dict[str, Item]:
    """Titles and category paths of `item_ids`, from the ExampleGen's catalog examples."""
    import tensorflow as tf

    items = {}
    for record in _records(file_pattern):
        example = tf.train.Example.FromString(record)
        (item_id,) = _bytes_values(example, contract.ITEM_ID)
        if item_id in item_ids:
            title = " ".join(_bytes_values(example, contract.TITLE))
            category = f" {contract.CATEGORY_SEPARATOR} ".join(_bytes_values(example, contract.CATEGORY_PATH))
            items[item_id] = Item(item_id, title, category)
    return items


def example_sessions(
    test_files: str, catalog_files: str, model_dir: str, count: int, top_k: int
) -> list[ExampleSession]:
    """`count` test sessions with the model's top `top_k` recommendations, titles and categories."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the model's tokenizer ops must be registered before loading)

    picked = pick_sessions(test_files, count)
    if not picked:
        return []
    width = max(len(prefix) for _, prefix, _ in picked)
    padded = np.array([prefix + [""] * (width - len(prefix)) for _, prefix, _ in picked], dtype=object)
    serve = tf.saved_model.load(model_dir).signatures[model_api.SERVING_DEFAULT]
    outputs = {name: value.numpy() for name, value in serve(item_ids=tf.constant(padded.astype(bytes))).items()}
    top_ids = [[i.decode() for i in row[:top_k]] for row in outputs[model_api.TOP_K_IDS]]
    needed = {i for _, prefix, target in picked for i in [*prefix, target]} | {i for row in top_ids for i in row}
    items = read_items(catalog_files, needed)
    levels = sorted(int(m.group(1)) for m in map(_TOP_CATEGORIES.match, outputs) if m)
    sessions = []
    for row, (session_id, prefix, target) in enumerate(picked):
        sessions.append(
            ExampleSession(
                session_id=session_id,
                prefix=[items.get(i, Item(i)) for i in prefix],
                target=items.get(target, Item(target)),
                recommendations=[
                    (items.get(i, Item(i)), float(score))
                    for i, score in zip(top_ids[row], outputs[model_api.TOP_K_SCORES][row])
                ],
                top_categories={
                    level: [
                        (name.decode(), float(score))
                        for name, score in zip(
                            outputs[model_api.top_categories(level)][row],
                            outputs[model_api.top_category_scores(level)][row],
                        )
                    ]
                    for level in levels
                },
                unknown_items=int(outputs[model_api.UNKNOWN_ITEMS][row]),
            )
        )
    return sessions
