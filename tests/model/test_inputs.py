import numpy as np
import pytest
import tensorflow as tf

import contract
from model import features
from model.inputs import PADDING, _by_padded_width, item_table, padded_widths, prefix_rows, session_dataset


def test_padded_widths_are_powers_of_two_up_to_the_limit():
    assert padded_widths(50) == [1, 2, 4, 8, 16, 32, 50]
    assert padded_widths(8) == [1, 2, 4, 8]
    assert padded_widths(1) == [1]


@pytest.mark.parametrize("longest, width", [(1, 1), (3, 4), (5, 8), (8, 8), (9, 16), (40, 50), (70, 50)])
def test_prefix_rows_pad_to_the_next_width_and_keep_the_most_recent_items(longest, width):
    ids = np.array([str(i) for i in range(100)])
    sessions = [[str(i) for i in range(longest)], ["unknown", "7"]]
    rows, unknown = prefix_rows(tf.ragged.constant(sessions), item_table(ids), max_length=50)
    rows = rows.numpy()
    assert rows.shape == (2, width)
    kept = min(longest, 50)
    np.testing.assert_array_equal(rows[0, :kept], np.arange(longest - kept, longest))
    assert (rows[0, kept:] == PADDING).all()
    np.testing.assert_array_equal(rows[1], [7] + [PADDING] * (width - 1))
    assert unknown.numpy().tolist() == [0, 1]


def test_a_session_dataset_knows_its_number_of_batches(ingested, ingested_catalog):
    catalog = ingested_catalog.catalog
    data = session_dataset(ingested.split_files["train"], catalog.item_ids, 50, 64, shuffle=True)
    batches = sum(1 for _ in data)
    assert int(data.cardinality()) == batches > 1  # Keras knows an epoch's length before the first ends


def test_length_grouped_batches_hold_every_example_once_and_pad_less(ingested, ingested_catalog):
    catalog = ingested_catalog.catalog
    files = ingested.split_files["train"]

    def read(group_by_length):
        data = session_dataset(files, catalog.item_ids, 50, 64, shuffle=True, group_by_length=group_by_length)
        batches = list(data)
        assert int(data.cardinality()) == len(batches)
        examples = sorted(
            (key, tuple(row[row >= 0]), target)
            for inputs, labels in batches
            for key, row, target in zip(
                inputs[features.SESSION_KEY].numpy(),
                inputs[features.PREFIX_ROWS].numpy(),
                labels[features.TARGET_ROW].numpy(),
            )
        )
        widths = [int(inputs[features.PREFIX_ROWS].shape[1]) for inputs, _ in batches]
        return len(batches), examples, widths

    random_count, random_examples, random_widths = read(group_by_length=False)
    grouped_count, grouped_examples, grouped_widths = read(group_by_length=True)
    assert grouped_count == random_count and grouped_examples == random_examples
    assert sum(grouped_widths) < sum(random_widths) / 2
    assert len(set(grouped_widths)) > 2  # short batches and long ones, in a shuffled order
    assert grouped_widths != sorted(grouped_widths)


def test_a_window_is_ordered_by_padded_width_and_keeps_its_order_within_a_width():
    """Prefixes that pad alike stay mixed (a batch of one exact length cost Beauty ~0.5 HIT@20)."""
    lengths = [7, 1, 3, 60, 2, 5, 4, 1, 50, 8]
    examples = []
    for length in lengths:
        example = tf.train.Example()
        example.features.feature[contract.PREFIX_ITEM_IDS].bytes_list.value.extend([b"a"] * length)
        examples.append(example.SerializeToString())
    ordered = _by_padded_width(tf.constant(examples), max_length=50).numpy()
    read = [
        len(tf.train.Example.FromString(e).features.feature[contract.PREFIX_ITEM_IDS].bytes_list.value) for e in ordered
    ]
    assert read == [1, 1, 2, 3, 4, 7, 5, 8, 60, 50]  # widths 1, 1, 2, 4, 4, 8, 8, 8, 50, 50


def test_length_grouped_batches_are_refused_without_shuffling():
    """Grouping shuffles the batches of each window, so an ordered (evaluation) stream cannot take it."""
    with pytest.raises(ValueError, match="group_by_length .* shuffle=True"):
        session_dataset("no-such-files-*", np.array(["a"]), 5, 4, shuffle=False, group_by_length=True)
