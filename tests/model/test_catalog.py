"""The transformed catalog as arrays: load_catalog, catalog_from_examples, row_of."""

from __future__ import annotations

import numpy as np

import contract
from components.session_example_gen.config import IngestConfig
from components.session_example_gen.sessionize import catalog_example, compile_id_pattern, parse_catalog_row
from model import features
from model.catalog import Catalog, catalog_from_examples


def _new_item(item_id: str, title: str, path: str, brand: str, price: str, clicks: int = 0) -> bytes:
    fields = {
        contract.ITEM_ID: item_id,
        contract.TITLE: title,
        contract.CATEGORY_PATH: path,
        contract.BRAND: brand,
        contract.PRICE: price,
    }
    item, _ = parse_catalog_row(fields, "", compile_id_pattern(IngestConfig()))
    return catalog_example(item, clicks).SerializeToString()


def test_loaded_catalog_arrays(tft_catalog):
    catalog = tft_catalog.catalog
    assert len(catalog) == 2500  # the duplicate-id rows of the default data are dropped
    assert list(catalog.item_ids) == sorted(set(catalog.item_ids))
    expected = {
        features.ITEM_ID_INDEX,
        features.TITLE_TOKENS,
        features.BRAND,
        features.PRICE_BUCKET,
        features.TRAIN_CLICKS,
        *(features.category_level(k) for k in range(1, 5)),
    }
    assert set(catalog.features) == expected
    assert catalog.category_levels == 4
    for name, array in catalog.features.items():
        assert array.dtype == np.int32, name
        assert array.shape[0] == len(catalog), name
        if name in catalog.vocab_sizes:
            assert array.min() >= 0 and array.max() < catalog.vocab_sizes[name], name
    tokens = catalog.features[features.TITLE_TOKENS]
    assert tokens.ndim == 2 and np.all(tokens[:, 0] > 0)  # every default item has a title
    # Padding only at the end of a row, and the widest row fills T.
    lengths = (tokens > 0).sum(axis=1)
    assert np.all((np.arange(tokens.shape[1]) < lengths[:, None]) == (tokens > 0))
    assert lengths.max() == tokens.shape[1]


def test_row_of(tft_catalog):
    catalog = tft_catalog.catalog
    rows = catalog.row_of(["100001", "nope", "100000", "102499", "0", "999999999"])
    assert rows.tolist() == [1, -1, 0, 2499, -1, -1]
    assert catalog.row_of(np.array([b"100002", b"x"])).tolist() == [2, -1]
    assert catalog.row_of(catalog.item_ids).tolist() == list(range(len(catalog)))
    assert catalog.row_of([]).shape == (0,)
    empty = Catalog(np.array([], dtype=str), {}, {}, 1)
    assert len(empty) == 0 and empty.row_of(["a"]).tolist() == [-1]


def test_catalog_from_examples_matches_load_catalog(tft_catalog):
    catalog = tft_catalog.catalog
    subset = [example.SerializeToString() for example in tft_catalog.examples[::250]]
    small = catalog_from_examples(subset, tft_catalog.tft_output, tft_catalog.config)
    rows = catalog.row_of(small.item_ids)
    assert np.all(rows >= 0)
    assert small.vocab_sizes == catalog.vocab_sizes
    for name, array in small.features.items():
        width = array.shape[1] if array.ndim == 2 else None
        expected = catalog.features[name][rows]
        if width is not None:
            assert np.all(expected[:, width:] == 0)
            expected = expected[:, :width]
        np.testing.assert_array_equal(array, expected, err_msg=name)
    empty = catalog_from_examples([], tft_catalog.tft_output, tft_catalog.config)
    assert len(empty) == 0 and empty.features[features.TITLE_TOKENS].shape == (0, 1)


def test_new_item_after_training(tft_catalog):
    """An item added after training: known words and category, unknown id."""
    catalog = tft_catalog.catalog
    new = _new_item(
        "200000",
        "ChefLine Modern Blender, Stainless Steel",
        "Home > Kitchen > Small Appliances > Blenders",
        "ChefLine",
        "45.50",
    )
    unpriced = _new_item("200001", "", "Home > Kitchen", "", "")
    items = catalog_from_examples([unpriced, new], tft_catalog.tft_output, tft_catalog.config)
    assert items.item_ids.tolist() == ["200000", "200001"]
    assert catalog.row_of(items.item_ids).tolist() == [-1, -1]
    sizes = items.vocab_sizes
    assert np.all(items.features[features.ITEM_ID_INDEX] == sizes[features.ITEM_ID_INDEX] - 1)
    tokens = items.features[features.TITLE_TOKENS]
    assert tokens.shape == (2, 5)
    assert np.all(tokens[0] > 0) and np.all(tokens[0] < sizes[features.TITLE_TOKENS] - 1)  # none OOV
    assert np.all(tokens[1] == 0)  # no title: no tokens
    # The new item's words get the ids the same words have in the catalog.
    chefline = catalog.features[features.TITLE_TOKENS][catalog.row_of(["100001"])[0]]
    np.testing.assert_array_equal(tokens[0], chefline[:5])
    for k in range(1, 5):
        index = items.features[features.category_level(k)]
        assert index[0] < sizes[features.category_level(k)] - 1, k
    # `Home > Kitchen` is known at levels 1-2; at levels 3-4 the full 2-level path is no category.
    level3 = items.features[features.category_level(3)]
    assert level3[1] == sizes[features.category_level(3)] - 1
    assert items.features[features.category_level(2)][1] < sizes[features.category_level(2)] - 1
    assert items.features[features.BRAND].tolist()[1] == sizes[features.BRAND] - 1
    assert items.features[features.BRAND].tolist()[0] < sizes[features.BRAND] - 1
    assert items.features[features.PRICE_BUCKET].tolist()[1] == tft_catalog.config.price_buckets
    assert items.features[features.PRICE_BUCKET].tolist()[0] < tft_catalog.config.price_buckets
    assert items.features[features.TRAIN_CLICKS].tolist() == [0, 0]
