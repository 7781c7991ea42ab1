"""The Beam graph end to end on DirectRunner, over tiny hand-made contract files."""

from __future__ import annotations

import glob
import gzip
import json
import os

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import contract
from components.session_example_gen import executor
from components.session_example_gen.config import SECONDS_PER_DAY, IngestConfig
from components.session_example_gen.report import build_report

T0 = 1_462_752_000  # 2016-05-09T00:00:00Z
DAY = SECONDS_PER_DAY

CATALOG_CSV = """\
item_id,title,category_path,brand,price
a,"Pan, large
red",Home > Kitchen > Pans,Acme,19.5
b,Bowl,Home > Kitchen,Acme,abc
c,Mug,Home,,3
c,Cup,Home > Kitchen,,2
d,Dish,Garden,Bee,1
e,Egg cup,,Bee,
f,Fork,Home > Kitchen > Cutlery,,4
,No id,Home,,1
bad id,Bad,Home,,1
g,Too,many,columns,1,2
"""

# Column split; only `click` events; repeats collapsed. s1..s4 are good sessions.
CLICKS_CSV = """\
session_id,item_id,timestamp,event_type,split
s1,c,1462752030000,click,train
s3,a,1462752100,click,test
s1,a,1462752010,click,train
s2,e,2016-05-09T00:05:00,click,train
s1,d,2016-05-09T02:00:40+02:00,click,train
s1,b,2016-05-09T00:00:20Z,click,train
s3,b,1462752200,click,test
s1,b,2016-05-09T00:00:20Z,click,train
s4,f,1462752000,click,eval
s1,d,1462752050.5,click,train
s2,f,2016-05-09T00:06:00,click,train
s3,c,1462752300,click,test
s4,a,1462752001,click,eval
s9,a,1
,a,1462752000,click,train
s1,,1462752000,click,train
s1,a,,click,train
bad id,a,1462752000,click,train
s1,a;b,1462752000,click,train
s1,a,yesterday,click,train
s1,a,1462752000,click,
s1,a,1462752000,click,validation
s1,a,1462752000,view,train
s2,zz,1462752000,click,train
s5,a,1462752000,click,train
s5,b,1462752001,click,test
s6,a,1462752000,click,test
"""
CSV_CONFIG = IngestConfig(split_method="column", event_types=("click",), collapse_repeats=True)
CSV_SKIPS = {
    "malformed_row": 1,
    "missing_session_id": 1,
    "missing_item_id": 1,
    "missing_timestamp": 1,
    "unparsable_session_id": 1,
    "unparsable_item_id": 1,
    "unparsable_timestamp": 1,
    "missing_split": 1,
    "unknown_split": 1,
    "excluded_event_type": 1,
    "unknown_item": 1,
    "conflicting_split": 2,
    "short_session": 1,
    "duplicate_click": 1,
    "collapsed_repeat": 1,
}
CATALOG_SKIPS = {
    "catalog_unparsable_price": 1,
    "catalog_duplicate_item": 1,
    "catalog_missing_item_id": 1,
    "catalog_unparsable_item_id": 1,
    "catalog_malformed_row": 1,
}

PARQUET_CONFIG = IngestConfig(eval_days=1, test_days=1)


def _parquet_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    def at(seconds):
        return pd.Timestamp(T0 + seconds, unit="s")

    rows = [
        (1.0, "a", at(0)),  # session "1": train
        (1.0, "b", at(60)),
        (2.0, "d", at(2 * DAY + 60)),  # session "2" ends exactly test_days before the end: eval
        (2.0, "c", at(2 * DAY)),
        (3.0, "e", at(3 * DAY)),  # session "3": test; its end is the newest known click
        (3.0, "f", at(3 * DAY + 60)),
        (np.nan, "a", at(0)),  # missing_session_id
        (4.0, None, at(0)),  # missing_item_id
        (4.0, "a", pd.NaT),  # missing_timestamp
        (4.0, "zz", at(9 * DAY)),  # unknown_item: must not move the time split's end
    ]
    clicks = pd.DataFrame(rows, columns=[contract.SESSION_ID, contract.ITEM_ID, contract.TIMESTAMP])
    catalog = pd.DataFrame(
        {
            contract.ITEM_ID: list("abcdef"),
            contract.TITLE: ["Pan", "Bowl", "Cup", "Dish", "Egg cup", None],
            contract.PRICE: [19.5, np.nan, 2.0, 1.0, 0.5, 4.0],
            "stock": [3, 0, 1, 2, 5, 8],
        }
    )
    return clicks, catalog


def _run(tmp: str, clicks: str, catalog: str, config: IngestConfig) -> dict:
    """Runs the graph; returns counters and the examples of every split as feature dicts."""
    split_uris = {name: os.path.join(tmp, "examples", f"Split-{name}") for name in config.split_names}
    catalog_uri = os.path.join(tmp, "catalog", "Split-items")
    counters_path = os.path.join(tmp, "counters.json")
    with beam.Pipeline() as pipeline:
        executor._build_pipeline(pipeline, clicks, catalog, config, split_uris, catalog_uri, counters_path)
    with open(counters_path) as f:
        counters = json.load(f)
    uris = {**split_uris, contract.CATALOG_SPLIT: catalog_uri}
    return {"counters": counters, "examples": {name: _read_examples(uri) for name, uri in uris.items()}}


def _read_examples(uri: str) -> list[dict]:
    files = sorted(glob.glob(os.path.join(uri, "*.gz")))
    assert files, f"no output under {uri}"
    examples = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        features = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            features[name] = [v.decode() for v in values] if kind == "bytes_list" else values
        examples.append(features)
    return examples


def _write_csv(path: str, text: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    results = {}
    for variant, suffix in (("csv", ".csv"), ("gzip", ".csv.gz")):
        tmp = str(tmp_path_factory.mktemp(variant))
        clicks = _write_csv(os.path.join(tmp, "clicks" + suffix), CLICKS_CSV)
        catalog = _write_csv(os.path.join(tmp, "catalog" + suffix), CATALOG_CSV)
        results[variant] = _run(tmp, clicks, catalog, CSV_CONFIG)
    tmp = str(tmp_path_factory.mktemp("parquet"))
    clicks_df, catalog_df = _parquet_frames()
    clicks_df.to_parquet(os.path.join(tmp, "clicks.parquet"), index=False)
    catalog_df.to_parquet(os.path.join(tmp, "catalog.parquet"), index=False)
    results["parquet"] = _run(
        tmp, os.path.join(tmp, "clicks.parquet"), os.path.join(tmp, "catalog.parquet"), PARQUET_CONFIG
    )
    return results


def _sequences(examples: list[dict]) -> list[tuple]:
    return sorted(
        (
            e[contract.SESSION_ID][0],
            e[contract.PREFIX_LENGTH][0],
            tuple(e[contract.PREFIX_ITEM_IDS]),
            e[contract.TARGET_ITEM_ID][0],
            e[contract.TARGET_TIMESTAMP][0],
        )
        for e in examples
    )


@pytest.mark.parametrize("variant", ["csv", "gzip"])
def test_csv_counters_count_every_reason(runs, variant):
    stats = runs[variant]["counters"]["stats"]
    skipped = {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("clicks/skipped/")}
    assert skipped == CSV_SKIPS
    kept = {k: v for k, v in stats.items() if k.startswith("clicks/kept/")}
    assert kept == {"clicks/kept/train": 6, "clicks/kept/eval": 2, "clicks/kept/test": 3}
    assert stats["clicks/rows"] == 27 == sum(kept.values()) + sum(skipped.values())
    catalog_skipped = {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("catalog/skipped/")}
    assert catalog_skipped == CATALOG_SKIPS
    assert (stats["catalog/rows"], stats["catalog/items"], stats["catalog/categories"]) == (10, 6, 4)
    assert {k: v for k, v in stats.items() if k.split("/")[0] in ("sessions", "examples", "target_items")} == {
        "sessions/train": 2,
        "sessions/eval": 1,
        "sessions/test": 1,
        "examples/train": 4,
        "examples/eval": 1,
        "examples/test": 2,
        "target_items/train": 4,
        "target_items/eval": 1,
        "target_items/test": 2,
    }
    report = build_report(stats, runs[variant]["counters"]["samples"], CSV_CONFIG.split_names, 1.0)
    assert report.problems == ()


def test_csv_samples_are_the_raw_rows(runs):
    samples = runs["csv"]["counters"]["samples"]
    assert set(samples) == set(CSV_SKIPS) | set(CATALOG_SKIPS)
    assert samples["malformed_row"] == ["s9,a,1"]
    assert samples["unparsable_timestamp"] == ["s1,a,yesterday,click,train"]
    assert samples["duplicate_click"] == ["s1,b,2016-05-09T00:00:20Z,click,train"]
    assert samples["collapsed_repeat"] == ["s1,d,1462752050.5,click,train"]
    assert sorted(samples["conflicting_split"]) == ["s5,a,1462752000,click,train", "s5,b,1462752001,click,test"]
    assert samples["catalog_duplicate_item"] == ["c,Mug,Home,,3"]
    assert samples["catalog_malformed_row"] == ["g,Too,many,columns,1,2"]
    assert samples["catalog_unparsable_price"] == ["b,Bowl,Home > Kitchen,Acme,abc"]


def _canonical(examples: list[dict]) -> list[str]:
    return sorted(json.dumps(e, sort_keys=True) for e in examples)


def test_csv_and_gzip_give_the_same_output(runs):
    assert runs["gzip"]["counters"] == runs["csv"]["counters"]
    for name, examples in runs["csv"]["examples"].items():
        assert _canonical(runs["gzip"]["examples"][name]) == _canonical(examples)


def test_csv_session_examples(runs):
    examples = runs["csv"]["examples"]
    assert {name: len(e) for name, e in examples.items()} == {"train": 4, "eval": 1, "test": 2, "items": 6}
    assert _sequences(examples["train"]) == [
        ("s1", 1, ("a",), "b", T0 + 20),
        ("s1", 2, ("a", "b"), "c", T0 + 30),
        ("s1", 3, ("a", "b", "c"), "d", T0 + 40),
        ("s2", 1, ("e",), "f", T0 + 360),
    ]
    assert _sequences(examples["eval"]) == [("s4", 1, ("f",), "a", T0 + 1)]
    assert _sequences(examples["test"]) == [
        ("s3", 1, ("a",), "b", T0 + 200),
        ("s3", 2, ("a", "b"), "c", T0 + 300),
    ]


def test_csv_catalog_examples(runs):
    items = {e[contract.ITEM_ID][0]: e for e in runs["csv"]["examples"]["items"]}
    assert sorted(items) == list("abcdef")
    a = items["a"]
    assert a[contract.TITLE] == ["Pan, large\nred"]
    assert a[contract.CATEGORY_PATH] == ["Home", "Kitchen", "Pans"]
    assert a[contract.BRAND] == ["Acme"]
    assert a[contract.PRICE] == [pytest.approx(19.5)]
    assert contract.PRICE not in items["b"]  # unparsable price: the item stays, without a price
    assert items["b"][contract.TITLE] == ["Bowl"]
    assert items["c"][contract.TITLE] == ["Cup"]  # of the duplicates, the smallest raw row wins
    assert items["c"][contract.CATEGORY_PATH] == ["Home", "Kitchen"]
    assert items["e"][contract.CATEGORY_PATH] == [] and contract.PRICE not in items["e"]
    assert items["f"][contract.CATEGORY_PATH] == ["Home", "Kitchen", "Cutlery"]
    assert all(
        set(e) >= {contract.ITEM_ID, contract.TITLE, contract.BRAND, contract.CATEGORY_PATH} for e in items.values()
    )
    # Train-split clicks only: `a` is also clicked in eval (s4) and test (s3).
    assert {i: e[contract.TRAIN_CLICKS] for i, e in items.items()} == {i: [1] for i in "abcdef"}


def test_parquet_counters_and_time_split(runs):
    run = runs["parquet"]
    stats = run["counters"]["stats"]
    skipped = {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("clicks/skipped/")}
    assert skipped == {"missing_session_id": 1, "missing_item_id": 1, "missing_timestamp": 1, "unknown_item": 1}
    assert stats["clicks/rows"] == 10
    assert {k: v for k, v in stats.items() if k.startswith("clicks/kept/")} == {
        "clicks/kept/train": 2,
        "clicks/kept/eval": 2,
        "clicks/kept/test": 2,
    }
    assert (stats["catalog/rows"], stats["catalog/items"], stats["catalog/categories"]) == (6, 6, 0)
    assert build_report(stats, run["counters"]["samples"], PARQUET_CONFIG.split_names, 1.0).problems == ()
    examples = run["examples"]
    assert _sequences(examples["train"]) == [("1", 1, ("a",), "b", T0 + 60)]
    assert _sequences(examples["eval"]) == [("2", 1, ("c",), "d", T0 + 2 * DAY + 60)]
    assert _sequences(examples["test"]) == [("3", 1, ("e",), "f", T0 + 3 * DAY + 60)]
    # Raw Parquet rows are kept as JSON in the samples.
    [missing] = run["counters"]["samples"]["missing_item_id"]
    assert json.loads(missing)[contract.ITEM_ID] is None


def test_parquet_catalog_without_category_path(runs):
    items = {e[contract.ITEM_ID][0]: e for e in runs["parquet"]["examples"]["items"]}
    assert sorted(items) == list("abcdef")
    assert all(contract.CATEGORY_PATH not in e for e in items.values())
    assert items["a"]["stock"] == ["3"] and items["a"][contract.PRICE] == [pytest.approx(19.5)]
    assert contract.PRICE not in items["b"]
    assert items["f"][contract.TITLE] == [""]


def _construct(tmp_path, clicks_files: dict[str, str], config=CSV_CONFIG):
    for name, text in clicks_files.items():
        _write_csv(os.path.join(tmp_path, name), text)
    catalog = _write_csv(os.path.join(tmp_path, "catalog.csv"), CATALOG_CSV)
    out = str(tmp_path)
    splits = {name: os.path.join(out, name) for name in config.split_names}
    pipeline = beam.Pipeline()
    executor._build_pipeline(
        pipeline,
        os.path.join(out, "clicks*"),
        catalog,
        config,
        splits,
        os.path.join(out, "items"),
        os.path.join(out, "counters.json"),
    )


def test_missing_timestamp_column_fails_at_construction(tmp_path):
    with pytest.raises(ValueError, match=r"lacks the contract columns \['timestamp'\]"):
        _construct(tmp_path, {"clicks.csv": "session_id,item_id,split\ns1,a,train\n"})


def test_different_headers_fail_at_construction(tmp_path):
    files = {
        "clicks-1.csv": "session_id,item_id,timestamp,split\ns1,a,1,train\n",
        "clicks-2.csv.gz": "session_id,timestamp,item_id,split\ns2,1,a,train\n",
    }
    with pytest.raises(ValueError, match="different headers"):
        _construct(tmp_path, files)


def test_column_split_needs_a_split_column(tmp_path):
    with pytest.raises(ValueError, match="needs a 'split' column"):
        _construct(tmp_path, {"clicks.csv": "session_id,item_id,timestamp\ns1,a,1\n"})
    # The time split does not.
    _construct(tmp_path, {}, config=IngestConfig())
