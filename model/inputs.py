"""Session item ids -> catalog rows, for training (tf.data) and serving (the exported graph).

One mapping for both, so a session is read the same way in training and in serving:
ids are looked up in the catalog, unknown ids are dropped (serving reports how many), the
most recent `max_length` known items are kept, left-aligned and padded with -1 to the
batch's longest session rounded up to a power of two (at most `max_length`).

Why that width: most sessions are short, so padding all to `max_length` would multiply
the Transformer's work several times over; but a width per batch makes every distinct
(batch, width) pair a new shape, and oneDNN (TF's CPU kernels) builds and caches a
primitive per op and shape. Under a server's mixed batches the pairs overflowed its
1,024-entry cache: primitives were rebuilt on every call, which cost 40% of the
model's CPU time. Widths 1, 2, 4, ..., `max_length` keep the shapes few.

Training batches can also be grouped by length (`session_dataset(group_by_length=True)`):
a batch of 512 random Diginetica prefixes holds at least one long session, so it pads to
~44 items where the median prefix has 3. Ordered by the width they pad to within windows
of `LENGTH_GROUP_BATCHES` batches, a batch pads to ~6 (7x less session-encoder work); the
prefixes of one width stay in random order, so a batch mixes the lengths that pad alike
(sorting by exact length cost Beauty ~0.5 HIT@20), and the batches of a window are
shuffled, so the order of widths over an epoch stays random.

Example:
    >>> table = item_table(np.array(["a", "b", "c"]))
    >>> rows, unknown = prefix_rows(tf.ragged.constant([["a", "x", "c", "b"], ["b"]]), table, max_length=5)
    >>> rows.numpy().tolist(), unknown.numpy().tolist()
    ([[0, 2, 1, -1], [1, -1, -1, -1]], [1, 0])
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import contract
from model import features

PADDING = -1
# Batches per window ordered by padded width (group_by_length): large enough that a batch's
# prefixes pad to one width, small enough that a window is ~5% of Diginetica's training set.
LENGTH_GROUP_BATCHES = 64


def item_table(item_ids: np.ndarray) -> tf.lookup.StaticHashTable:
    """Item id -> catalog row, -1 for ids not in the catalog."""
    keys = tf.constant([str(i) for i in item_ids], dtype=tf.string)
    initializer = tf.lookup.KeyValueTensorInitializer(keys, tf.range(tf.size(keys), dtype=tf.int32))
    return tf.lookup.StaticHashTable(initializer, default_value=PADDING)


def prefix_rows(
    item_ids: tf.RaggedTensor, table: tf.lookup.StaticHashTable, max_length: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Ragged `[batch, (items)]` ids -> dense rows `[batch, width]` and unknown counts `[batch]`.

    `width` is the longest session's length rounded up to a power of two, at most
    `max_length` (see the module's docstring).
    """
    rows = item_ids.with_flat_values(table.lookup(item_ids.flat_values))
    known = tf.ragged.boolean_mask(rows, rows >= 0)
    unknown = tf.cast(rows.row_lengths() - known.row_lengths(), tf.int32)
    recent = known[:, -max_length:]
    width = padded_width(tf.reduce_max(recent.row_lengths())[None], max_length)[0]
    return recent.to_tensor(default_value=PADDING, shape=tf.stack([recent.nrows(), width])), unknown


def padded_widths(max_length: int) -> list[int]:
    """The widths `prefix_rows` pads to: powers of two below `max_length`, then `max_length`."""
    return sorted({min(2**power, max_length) for power in range(max_length.bit_length() + 1)})


def padded_width(lengths: tf.Tensor, max_length: int) -> tf.Tensor:
    """The width of `padded_widths` each prefix length `[n]` pads to (longer than `max_length`: the last)."""
    widths = tf.constant(padded_widths(max_length), lengths.dtype)
    return tf.gather(widths, tf.searchsorted(widths, tf.minimum(lengths, max_length)))


def session_files(file_pattern: str | list[str]) -> list[str]:
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no session examples match {patterns}")
    return files


def read_prefixes(file_pattern: str | list[str], count: int) -> list[list[str]]:
    """The prefixes (id lists, oldest first) of the first `count` session examples."""
    records = tf.data.TFRecordDataset(session_files(file_pattern), compression_type="GZIP").take(count)
    return [
        [
            v.decode()
            for v in tf.train.Example.FromString(r.numpy()).features.feature[contract.PREFIX_ITEM_IDS].bytes_list.value
        ]
        for r in records
    ]


def session_keys(session_ids: tf.Tensor) -> tf.Tensor:
    """Session ids -> int64 keys: how a training example and the neighbour index
    (model.neighbours) tell that they hold the same session."""
    return tf.strings.to_hash_bucket_fast(session_ids, 2**62)


_SESSION_FEATURES = {
    contract.SESSION_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
    contract.PREFIX_ITEM_IDS: tf.io.RaggedFeature(tf.string),
    contract.TARGET_ITEM_ID: tf.io.FixedLenFeature([], tf.string),
}


def session_dataset(
    file_pattern: str | list[str],
    item_ids: np.ndarray,
    max_length: int,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    group_by_length: bool = False,
) -> tf.data.Dataset:
    """Session examples (GZIP TFRecords from the ExampleGen) -> batches of (inputs, labels).

    Examples whose target is not in the catalog are dropped (the ExampleGen already drops
    clicks on unknown items, so with the same catalog there are none). The serialized
    examples are cached in memory: they are small, and parsing per epoch is cheap. A first
    pass only counts them, so the dataset knows its number of batches: Keras then knows an
    epoch's length (a progress bar with its total, and no "input ran out of data" warning
    at the end of the first epoch). With `group_by_length` (training), each window of
    `LENGTH_GROUP_BATCHES` batches is ordered by padded width before it is cut into batches,
    and the batches are shuffled; the number of batches is unchanged.
    """
    if group_by_length and not shuffle:
        raise ValueError("group_by_length shuffles the batches of each window: it is for training, with shuffle=True")
    files = session_files(file_pattern)
    examples = int(
        tf.data.TFRecordDataset(files, compression_type="GZIP").reduce(np.int64(0), lambda count, _: count + 1)
    )
    table = item_table(item_ids)

    def parse(serialized: tf.Tensor) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        parsed = tf.io.parse_example(serialized, _SESSION_FEATURES)
        rows, _ = prefix_rows(parsed[contract.PREFIX_ITEM_IDS], table, max_length)
        target = table.lookup(parsed[contract.TARGET_ITEM_ID])
        keep = target >= 0
        inputs = {
            features.PREFIX_ROWS: tf.boolean_mask(rows, keep),
            features.SESSION_KEY: tf.boolean_mask(session_keys(parsed[contract.SESSION_ID]), keep),
        }
        return inputs, {features.TARGET_ROW: tf.boolean_mask(target, keep)}

    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE).cache()
    if shuffle:
        dataset = dataset.shuffle(200_000, seed=seed, reshuffle_each_iteration=True)
    if group_by_length:
        dataset = (
            dataset.batch(batch_size * LENGTH_GROUP_BATCHES)
            .map(lambda window: _by_padded_width(window, max_length))
            .unbatch()
        )
    batches = dataset.batch(batch_size)
    if group_by_length:
        batches = batches.shuffle(LENGTH_GROUP_BATCHES, seed=seed, reshuffle_each_iteration=True)
    batches = batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    known_length = tf.data.experimental.assert_cardinality(-(-examples // batch_size))
    return batches.apply(known_length).prefetch(tf.data.AUTOTUNE)


def _by_padded_width(serialized: tf.Tensor, max_length: int) -> tf.Tensor:
    """Serialized session examples `[n]`, reordered by the width their prefix pads to (`padded_widths`).

    Within a width they keep their (shuffled) order, so a batch mixes the prefix lengths that
    pad alike (5 to 8 items, say) at no cost in padding.
    """
    prefixes = tf.io.parse_example(serialized, {contract.PREFIX_ITEM_IDS: _SESSION_FEATURES[contract.PREFIX_ITEM_IDS]})
    widths = padded_width(prefixes[contract.PREFIX_ITEM_IDS].row_lengths(), max_length)
    return tf.gather(serialized, tf.argsort(widths, stable=True))
