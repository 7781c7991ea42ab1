from __future__ import annotations

import os

import pandas as pd
import pytest

import contract
from components.readers import amazon_beauty
from tests.components.readers.conftest import head_lines, write_gz


@pytest.fixture(scope="module")
def beauty_dir(shared_dir: str) -> str:
    return amazon_beauty.data_dir(shared_dir)


@pytest.fixture(scope="module")
def beauty(beauty_dir: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return amazon_beauty.read_beauty(beauty_dir)


def test_full_counts_and_splits(beauty):
    clicks, catalog = beauty
    assert len(clicks) == 198_502
    assert clicks[contract.SESSION_ID].nunique() == 22_363
    assert clicks[contract.ITEM_ID].nunique() == len(catalog) == 12_101
    assert clicks[contract.ITEM_ID].isin(catalog[contract.ITEM_ID]).all()
    # Whole histories per split, in roughly the requested shares.
    assert clicks.groupby(contract.SESSION_ID)[contract.SPLIT].nunique().max() == 1
    users = clicks.drop_duplicates(contract.SESSION_ID)[contract.SPLIT].value_counts(normalize=True)
    assert users[contract.TEST] == pytest.approx(0.1, abs=0.01)
    assert users[contract.EVAL] == pytest.approx(0.1, abs=0.01)
    assert (catalog[contract.TITLE] != "").sum() == 12_094


def test_catalog_categories_from_attribute_order(beauty):
    _, catalog = beauty
    first = catalog.iloc[0]  # OPI nail lacquer, attribute ids "173 1 162 171"
    assert first[amazon_beauty.ATTRIBUTE_IDS] == "173 1 162 171"
    assert first[contract.BRAND] == "a173"
    assert first[contract.CATEGORY_PATH] == "a1 > a162 > a171"
    top = catalog[contract.CATEGORY_PATH].map(lambda p: contract.split_category_path(p)[0])
    assert top.value_counts().tolist() == [3_814, 3_262, 2_627, 1_222, 684, 492]


def test_brand_and_path_edge_cases():
    brands, top = {"b"}, {"1", "4"}
    assert amazon_beauty.brand_and_path(["b", "1", "2", "3"], brands, top) == ("b", ["1", "2", "3"])
    assert amazon_beauty.brand_and_path(["1", "2"], brands, top) == (None, ["1", "2"])
    # A brand whose name (so id) is also a category; a second path; a repeated node.
    collided = amazon_beauty.brand_and_path(["3", "4", "5", "3"], brands, top)
    assert collided == ("3", ["4", "5", "3"])
    assert amazon_beauty.brand_and_path(["1", "2", "4", "5"], brands, top) == (None, ["1", "2"])
    repeated = amazon_beauty.brand_and_path(["4", "5", "6", "6"], brands, top)
    assert repeated == (None, ["4", "5", "6"])
    assert amazon_beauty.brand_and_path(["b"], brands, top) == ("b", [])


def test_slice_positions_and_unquoted_titles(beauty_dir, tmp_path):
    sequences = head_lines(os.path.join(beauty_dir, "p5_sequences", "user_sequence.txt.gz"), 2)
    items = head_lines(os.path.join(beauty_dir, "items.tsv.gz"), 3)
    items.append('B0QUOTE\t99\tSay "hi\tq 1\n')  # a stray quote must not swallow lines
    write_gz(str(tmp_path / "p5_sequences" / "user_sequence.txt.gz"), sequences)
    write_gz(str(tmp_path / "items.tsv.gz"), items)

    clicks, catalog = amazon_beauty.read_beauty(str(tmp_path), eval_fraction=0.0, test_fraction=0.0)
    first = clicks[clicks[contract.SESSION_ID] == "A1YJEY40YUW4SE"]
    assert first[contract.ITEM_ID].tolist() == sequences[0].split()[1:]
    assert first[contract.TIMESTAMP].tolist() == [1, 2, 3, 4, 5]
    assert set(clicks[contract.SPLIT]) == {contract.TRAIN}
    assert catalog[contract.TITLE].tolist()[-1] == 'Say "hi'


def test_bad_items_line_and_fractions_raise(beauty_dir, tmp_path):
    write_gz(str(tmp_path / "p5_sequences" / "user_sequence.txt.gz"), ["u1 i1 i2\n"])
    items = head_lines(os.path.join(beauty_dir, "items.tsv.gz"), 2) + ["x\t1\n"]
    write_gz(str(tmp_path / "items.tsv.gz"), items)
    with pytest.raises(ValueError, match=r"lines \[3\]"):
        amazon_beauty.read_beauty(str(tmp_path))
    with pytest.raises(ValueError, match="fraction"):
        amazon_beauty.read_beauty(str(tmp_path), eval_fraction=0.5, test_fraction=0.5)


def test_hash_split_is_deterministic_and_seeded(beauty):
    clicks, _ = beauty
    users = clicks[contract.SESSION_ID].unique()[:200]
    splits = [amazon_beauty.hash_split(u, 0.1, 0.1, seed=0) for u in users]
    assert splits == [amazon_beauty.hash_split(u, 0.1, 0.1, seed=0) for u in users]
    assert splits != [amazon_beauty.hash_split(u, 0.1, 0.1, seed=1) for u in users]


def test_write_contract_round_trips(beauty, tmp_path):
    clicks, catalog = beauty
    clicks_path, catalog_path = contract.write_contract(clicks, catalog, str(tmp_path))
    strings = {contract.SESSION_ID: str, contract.ITEM_ID: str, contract.SPLIT: str}
    clicks_back = pd.read_csv(clicks_path, dtype=strings)
    pd.testing.assert_frame_equal(clicks_back, clicks)
    catalog_back = pd.read_csv(catalog_path, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(catalog_back, catalog)
