"""preprocessing_fn through TFT on the default catalog (the `tft_catalog` fixture)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import contract
from model import features
from model.config import PreprocessingConfig
from model.preprocessing import vocabulary_sizes
from tests.conftest import DEFAULT_DATA, raw_catalog_examples


def _vocab(tft_catalog, feature: str) -> list[str]:
    return [v.decode("utf-8") for v in tft_catalog.tft_output.vocabulary_by_name(features.vocabulary_name(feature))]


def _raw(tft_catalog) -> dict[str, dict]:
    """item id -> {title, levels, price} of the raw examples."""
    out = {}
    for example in tft_catalog.examples:
        f = example.features.feature
        out[f[contract.ITEM_ID].bytes_list.value[0].decode()] = {
            "title": f[contract.TITLE].bytes_list.value[0].decode() if contract.TITLE in f else "",
            "levels": [v.decode() for v in f[contract.CATEGORY_PATH].bytes_list.value],
            "price": f[contract.PRICE].float_list.value[0] if contract.PRICE in f else None,
        }
    return out


def test_config_from_dict_refuses_a_key_that_is_not_a_field():
    config = PreprocessingConfig.from_dict({"category_levels": 2, "price_buckets": 5})
    assert (config.category_levels, config.price_buckets, config.title_min_count) == (2, 5, 2)
    with pytest.raises(ValueError, match="unknown PreprocessingConfig field 'category_level'; known: category_levels"):
        PreprocessingConfig.from_dict({"category_level": 2})
    with pytest.raises(ValueError):
        PreprocessingConfig(category_levels=0)


def test_vocabularies_have_plausible_sizes(tft_catalog):
    config = tft_catalog.config
    sizes = vocabulary_sizes(tft_catalog.tft_output, config)
    clicked = sum(1 for n in tft_catalog.train_clicks.values() if n >= config.min_item_clicks)
    assert sizes[features.ITEM_ID_INDEX] == clicked + 1
    # The default data: 6 L1, 26 L2, 84 leaves (55 three deep, 29 four deep), 42 brands.
    levels = [sizes[features.category_level(k)] for k in range(1, config.category_levels + 1)]
    assert levels == [7, 27, 69, 85]
    assert 20 <= sizes[features.BRAND] <= 100
    assert 100 <= sizes[features.TITLE_TOKENS] <= config.title_vocab_size + 1
    assert sizes[features.PRICE_BUCKET] == config.price_buckets + 1
    for k in range(1, config.category_levels + 1):
        names = _vocab(tft_catalog, features.category_level(k))
        assert all(1 <= len(contract.split_category_path(name)) <= k for name in names)
        assert "" not in names
    assert "" not in _vocab(tft_catalog, features.BRAND)


def test_items_without_train_clicks_get_the_oov_index(tft_catalog):
    catalog = tft_catalog.catalog
    oov = catalog.vocab_sizes[features.ITEM_ID_INDEX] - 1
    index = catalog.features[features.ITEM_ID_INDEX]
    clicks = np.array([tft_catalog.train_clicks[item_id] for item_id in catalog.item_ids])
    np.testing.assert_array_equal(catalog.features[features.TRAIN_CLICKS], clicks)
    assert (clicks == 0).sum() > 50  # never clicked, or only in the last 14 days
    # TFT's weighted frequency_threshold=1 does filter zero-weight ids (despite its
    # "frequency_threshold 1 <= 1 is a no-op" warning).
    assert np.all(index[clicks == 0] == oov)
    assert np.all(index[clicks > 0] < oov)
    assert len(np.unique(index[clicks > 0])) == (clicks > 0).sum()
    # The most clicked item comes first in the vocabulary.
    assert index[np.argmax(clicks)] == 0


def test_title_tokens_are_case_folded_words(tft_catalog):
    catalog, raw = tft_catalog.catalog, _raw(tft_catalog)
    vocab = _vocab(tft_catalog, features.TITLE_TOKENS)
    assert all(re.fullmatch(r"\w+", token) and token == token.lower() for token in vocab)
    tokens = catalog.features[features.TITLE_TOKENS]
    oov = catalog.vocab_sizes[features.TITLE_TOKENS] - 1  # shifted: 1..len(vocab), OOV, 0 pads
    assert oov == len(vocab) + 1
    assert tokens.shape[1] == max(len(re.sub(r"[^\w\s]", " ", r["title"]).split()) for r in raw.values())
    for row in range(0, len(catalog), 97):
        expected = re.sub(r"[^\w\s]", " ", raw[catalog.item_ids[row]]["title"].casefold()).split()
        ids = tokens[row][tokens[row] > 0]
        decoded = [vocab[i - 1] if i < oov else None for i in ids]
        assert decoded == [word if word in vocab else None for word in expected]
        assert np.all(tokens[row][len(ids) :] == 0)
    chefline = catalog.row_of(["100001"])[0]  # "ChefLine Modern Blender, Stainless Steel, Black"
    assert [vocab[i - 1] for i in tokens[chefline] if i] == [
        "chefline",
        "modern",
        "blender",
        "stainless",
        "steel",
        "black",
    ]


def test_category_levels_cut_the_path(tft_catalog):
    catalog, raw, levels = tft_catalog.catalog, _raw(tft_catalog), tft_catalog.config.category_levels
    vocabs = {k: _vocab(tft_catalog, features.category_level(k)) for k in range(1, levels + 1)}
    depths = {3: 0, 4: 0}
    for row, item_id in enumerate(catalog.item_ids):
        path = raw[item_id]["levels"]
        depths[len(path)] += 1
        for k in range(1, levels + 1):
            index = catalog.features[features.category_level(k)][row]
            assert vocabs[k][index] == contract.join_category_path(path[:k])
        if len(path) == 3:  # shallower than level 4: its level 4 is its leaf, its level 3
            assert (
                vocabs[4][catalog.features[features.category_level(4)][row]]
                == vocabs[3][catalog.features[features.category_level(3)][row]]
            )
    assert depths[3] > 0 and depths[4] > 0


def test_price_buckets(tft_catalog):
    catalog, raw, buckets = tft_catalog.catalog, _raw(tft_catalog), tft_catalog.config.price_buckets
    bucket = catalog.features[features.PRICE_BUCKET]
    prices = np.array([raw[item_id]["price"] for item_id in catalog.item_ids], dtype=object)
    missing = np.array([p is None for p in prices])
    assert missing.sum() == 2  # the two `n/a` prices of the default data
    assert np.all(bucket[missing] == buckets)
    known, known_prices = bucket[~missing], prices[~missing].astype(float)
    assert known.min() == 0 and known.max() == buckets - 1
    # Quantile buckets: ordered by price, and each holds roughly a tenth of the items.
    assert np.all(np.diff(known[np.argsort(known_prices, kind="stable")]) >= 0)
    counts = np.bincount(known, minlength=buckets)
    assert counts.min() > 0.5 * len(known) / buckets and counts.max() < 1.5 * len(known) / buckets


def test_catalog_without_title_brand_price(analyze_catalog, default_train_clicks):
    def keep(fields):
        return {key: fields[key] for key in (contract.ITEM_ID, contract.CATEGORY_PATH)}

    examples = raw_catalog_examples(os.path.join(DEFAULT_DATA, "catalog.csv.gz"), default_train_clicks, keep)[:300]
    config = PreprocessingConfig(category_levels=2, price_buckets=4, min_item_clicks=5)
    result = analyze_catalog(examples, config, "bare_catalog")
    assert set(result.tft_output.raw_feature_spec()) == {
        contract.ITEM_ID,
        contract.CATEGORY_PATH,
        contract.TRAIN_CLICKS,
    }
    catalog = result.catalog
    assert len(catalog) == 300
    assert catalog.features[features.TITLE_TOKENS].shape == (300, 1)
    assert np.all(catalog.features[features.TITLE_TOKENS] == 0)
    assert np.all(catalog.features[features.BRAND] == catalog.vocab_sizes[features.BRAND] - 1)
    assert np.all(catalog.features[features.PRICE_BUCKET] == 4)
    assert catalog.vocab_sizes[features.PRICE_BUCKET] == 5
    assert set(catalog.features) >= {features.category_level(1), features.category_level(2)}
    assert features.category_level(3) not in catalog.features
    assert catalog.vocab_sizes[features.category_level(1)] > 2
    # min_item_clicks=5: the weighted threshold keeps exactly the items with >= 5 train clicks.
    clicks = catalog.features[features.TRAIN_CLICKS]
    oov = catalog.vocab_sizes[features.ITEM_ID_INDEX] - 1
    index = catalog.features[features.ITEM_ID_INDEX]
    assert np.all(index[clicks < 5] == oov) and np.all(index[clicks >= 5] < oov)
    assert 0 < (clicks < 5).sum() < 300


def test_titles_keep_their_first_words(analyze_catalog, default_train_clicks):
    examples = raw_catalog_examples(os.path.join(DEFAULT_DATA, "catalog.csv.gz"), default_train_clicks)[:100]
    config = PreprocessingConfig(category_levels=2, title_min_count=1, title_max_tokens=4)
    result = analyze_catalog(examples, config, "short_titles")
    catalog, raw = result.catalog, _raw(result)
    vocab = _vocab(result, features.TITLE_TOKENS)
    tokens = catalog.features[features.TITLE_TOKENS]
    assert tokens.shape == (100, 4)
    for row, item_id in enumerate(catalog.item_ids):
        words = re.sub(r"[^\w\s]", " ", raw[item_id]["title"].casefold()).split()
        assert [vocab[i - 1] for i in tokens[row] if i] == words[:4]
    with pytest.raises(ValueError, match="title_max_tokens"):
        PreprocessingConfig(title_max_tokens=0)
