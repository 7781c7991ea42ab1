from __future__ import annotations

import math

import pandas as pd
import pytest

import contract
from components.readers import diginetica
from tests.components.readers.conftest import head_lines, write_gz

# 2016-05-09T00:00:00Z in epoch milliseconds.
MAY_9_MS = 1_462_752_000_000


@pytest.fixture(scope="module")
def paths(shared_dir: str) -> dict[str, str]:
    return diginetica.data_paths(shared_dir)


def test_read_raw_full_sample(paths):
    clicks, catalog = diginetica.read_raw(paths["views"], paths["categories"])
    assert list(clicks.columns) == [contract.SESSION_ID, contract.ITEM_ID, contract.TIMESTAMP]
    assert len(clicks) == 12_391
    assert clicks[contract.SESSION_ID].nunique() == 2_986
    assert clicks[contract.ITEM_ID].nunique() == 7_139
    assert clicks[contract.TIMESTAMP].notna().all()
    # First line: session 1, item 81766, timeframe 526309 on 2016-05-09.
    assert clicks.iloc[0].tolist() == ["1", "81766", MAY_9_MS + 526_309]
    assert len(catalog) == 184_047
    assert catalog[contract.CATEGORY_PATH].nunique() == 1_217
    assert clicks[contract.ITEM_ID].isin(catalog[contract.ITEM_ID]).all()


def test_read_raw_original_header_products_and_bad_rows(paths, tmp_path):
    lines = head_lines(paths["views"], 4)
    lines[0] = "sessionId;userId;itemId;timeframe;eventdate\n"
    lines += ["9;NA;555;12;not-a-date\n", "9;NA;556;-5;2016-05-09\n", "9;NA\n"]
    views = write_gz(str(tmp_path / "views.csv.gz"), lines)
    category_lines = ["itemId;categoryId\n", "81766;7\n", "31331;8\n"]
    categories = write_gz(str(tmp_path / "cats.csv.gz"), category_lines)
    products = tmp_path / "products.csv"
    products.write_text("itemId;pricelog2;product.name.tokens\n81766;3;4,5,6\n999;;\n")

    clicks, catalog = diginetica.read_raw(views, categories, str(products))
    # Bad rows are kept (the ExampleGen counts them) with an empty timestamp or item.
    assert len(clicks) == 6
    assert clicks[contract.TIMESTAMP].isna().tolist() == [False] * 3 + [True] * 3
    assert clicks.iloc[5][contract.ITEM_ID] == ""
    rows = catalog.set_index(contract.ITEM_ID)
    assert rows.loc["81766", contract.TITLE] == "4 5 6"
    assert rows.loc["81766", contract.PRICE] == 8.0
    assert rows.loc["81766", contract.CATEGORY_PATH] == "7"
    assert pd.isna(rows.loc["31331", contract.TITLE])
    assert math.isnan(rows.loc["999", contract.PRICE])


def test_read_raw_rejects_extra_fields_and_unknown_header(paths, tmp_path):
    good = head_lines(paths["views"], 3)
    too_many = write_gz(str(tmp_path / "a.csv.gz"), good + ["1;NA;2;3;2016-05-09;extra\n"])
    with pytest.raises(ValueError, match="malformed line"):
        diginetica.read_raw(too_many, paths["categories"])
    renamed = write_gz(str(tmp_path / "b.csv.gz"), ["s;u;i;t;d\n"] + good[1:])
    with pytest.raises(ValueError, match="header"):
        diginetica.read_raw(renamed, paths["categories"])


def test_reconstruct_two_consecutive_test_sessions():
    sessions = [["1", "2", "3"], ["1", "2"], ["4", "5", "6", "7"]]
    rows = diginetica.expand_sessions(sessions)
    assert rows[:4] == [(["1", "2"], "3"), (["1"], "2"), (["1"], "2"), (["4", "5", "6"], "7")]
    assert diginetica.reconstruct_test_sessions(rows) == sessions
    # A session cut short (its last row missing) cannot be re-expanded into the rows.
    with pytest.raises(ValueError, match="process_seqs"):
        diginetica.reconstruct_test_sessions(rows[:-1])


def test_read_srgnn_counts(paths):
    clicks, catalog = diginetica.read_srgnn(paths["srgnn_dir"])
    by_split = clicks.groupby(contract.SPLIT)
    assert by_split[contract.SESSION_ID].nunique()[contract.TRAIN] == 186_670
    assert by_split.size()[contract.TRAIN] == 906_140
    lengths = clicks.groupby([contract.SPLIT, contract.SESSION_ID]).size()
    examples = (lengths - 1).groupby(level=0).sum()
    assert examples[contract.TRAIN] == 719_470
    assert examples[contract.TEST] == 60_858
    assert clicks[contract.SESSION_ID].iloc[0] == "srgnn-train-0"
    # The first train sessions are "1 2" and "3 4 5".
    assert clicks[contract.TIMESTAMP].iloc[:3].tolist() == [1, 2, 1]
    assert len(catalog) == catalog[contract.ITEM_ID].nunique() == 43_097
    assert catalog[contract.CATEGORY_PATH].nunique() == 995
    assert clicks[contract.ITEM_ID].isin(catalog[contract.ITEM_ID]).all()


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_write_contract_round_trips_raw(paths, tmp_path, file_format):
    clicks, catalog = diginetica.read_raw(paths["views"], paths["categories"])
    clicks_path, catalog_path = contract.write_contract(clicks, catalog, str(tmp_path), file_format)
    if file_format == "csv":
        ids = {contract.SESSION_ID: str, contract.ITEM_ID: str, contract.TIMESTAMP: "Int64"}
        clicks_back = pd.read_csv(clicks_path, dtype=ids)
        catalog_back = pd.read_csv(catalog_path, dtype=str)
    else:
        clicks_back, catalog_back = pd.read_parquet(clicks_path), pd.read_parquet(catalog_path)
    pd.testing.assert_frame_equal(clicks_back, clicks)
    pd.testing.assert_frame_equal(catalog_back, catalog)
