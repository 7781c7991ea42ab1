"""Shared fixtures (model, serving and evaluation tests): the shipped default catalog, analyzed by TFT, as a Catalog.

`tft_catalog` (session-scoped) is what model tests should use: it runs the real
`preprocessing_fn` through `tft_beam.AnalyzeDataset` (Beam DirectRunner, in process) over
the raw catalog examples of `data/default`, exactly as the Transform component would see
them (every feature VarLen, as SchemaGen with `infer_feature_shape=False` infers), and
loads the transformed catalog with `load_catalog`. It holds:

    .tft_output    tft.TFTransformOutput of the written transform_fn
    .file_pattern  the GZIP TFRecord of raw catalog examples
    .config        PreprocessingConfig(category_levels=4) (the default data is 3-4 deep)
    .catalog       model.catalog.Catalog, one row per item
    .examples      the raw tf.Examples written, in file order
    .train_clicks  item id -> clicks before the last 14 days (0 for the others)

`analyze_catalog` (session-scoped) is the factory behind it, for tests that need another
catalog (say, one without titles): `analyze_catalog(examples, config, name)`.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import os
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import contract
from components.session_example_gen.config import SECONDS_PER_DAY, IngestConfig
from components.session_example_gen.sessionize import catalog_example, compile_id_pattern, parse_catalog_row
from model import export
from model.catalog import Catalog, load_catalog
from model.config import ModelConfig, PreprocessingConfig, TrainingSetup
from model.inputs import read_prefixes
from model.preprocessing import analyze_catalog_files
from model.trainer import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "data", "default")
HOLDOUT_DAYS = 14  # eval + test days of the default time split: clicks after this are not train


@dataclasses.dataclass(frozen=True)
class TftCatalog:
    tft_output: object  # tft.TFTransformOutput
    file_pattern: str
    config: PreprocessingConfig
    catalog: Catalog
    examples: list[tf.train.Example]
    train_clicks: dict[str, int]


def train_click_counts(clicks_path: str, holdout_days: float = HOLDOUT_DAYS) -> dict[str, int]:
    """Clicks per item id before the last `holdout_days` of the log; bad rows are skipped."""
    clicks = pd.read_csv(clicks_path, dtype=str, on_bad_lines="skip", keep_default_na=False)
    timestamps = pd.to_numeric(clicks[contract.TIMESTAMP], errors="coerce")
    ok = timestamps.notna() & (clicks[contract.ITEM_ID].str.strip() != "")
    clicks, timestamps = clicks[ok], timestamps[ok]
    cutoff = timestamps.max() - holdout_days * SECONDS_PER_DAY
    counts = clicks.loc[timestamps <= cutoff, contract.ITEM_ID].str.strip().value_counts()
    return {str(item): int(n) for item, n in counts.items()}


def raw_catalog_examples(
    catalog_path: str, train_clicks: dict[str, int], keep: Callable[[dict], dict] | None = None
) -> list[tf.train.Example]:
    """Raw catalog examples of a contract CSV (malformed rows and repeated ids skipped).

    `keep` may rewrite each row's column -> value dict first (e.g. drop columns).
    """
    id_pattern = compile_id_pattern(IngestConfig())
    with gzip.open(catalog_path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, seen, examples = [c.strip() for c in rows[0]], set(), []
    for values in rows[1:]:
        if len(values) != len(header):
            continue
        fields = dict(zip(header, values))
        if keep is not None:
            fields = keep(fields)
        line = io.StringIO()
        csv.writer(line, lineterminator="").writerow(values)
        item, _ = parse_catalog_row(fields, line.getvalue(), id_pattern)
        if item is None or item.item_id in seen:
            continue
        seen.add(item.item_id)
        examples.append(catalog_example(item, train_clicks.get(item.item_id, 0)))
    return examples


def analyze(examples: list[tf.train.Example], work_dir: str, config: PreprocessingConfig) -> TftCatalog:
    """Writes `examples` as a GZIP TFRecord, analyzes them with TFT and loads the Catalog."""
    os.makedirs(work_dir, exist_ok=True)
    file_pattern = os.path.join(work_dir, "catalog.tfrecord.gz")
    with tf.io.TFRecordWriter(file_pattern, options="GZIP") as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    tft_output = analyze_catalog_files(file_pattern, work_dir, config)
    return TftCatalog(tft_output, file_pattern, config, load_catalog(file_pattern, tft_output, config), examples, {})


@pytest.fixture(scope="session")
def analyze_catalog(tmp_path_factory) -> Callable[..., TftCatalog]:
    """A factory: `analyze_catalog(examples, config, name)` -> TftCatalog in a fresh dir."""

    def run(examples: list[tf.train.Example], config: PreprocessingConfig, name: str = "catalog") -> TftCatalog:
        return analyze(examples, str(tmp_path_factory.mktemp(name)), config)

    return run


@pytest.fixture(scope="session")
def default_train_clicks() -> dict[str, int]:
    return train_click_counts(os.path.join(DEFAULT_DATA, "clicks.csv.gz"))


@pytest.fixture(scope="session")
def tft_catalog(analyze_catalog, default_train_clicks) -> TftCatalog:
    """The shipped default catalog through TFT (see the module docstring)."""
    examples = raw_catalog_examples(os.path.join(DEFAULT_DATA, "catalog.csv.gz"), default_train_clicks)
    result = analyze_catalog(examples, PreprocessingConfig(category_levels=4), "default_catalog")
    clicks = {item_id: default_train_clicks.get(item_id, 0) for item_id in result.catalog.item_ids}
    return dataclasses.replace(result, train_clicks=clicks)


@dataclasses.dataclass(frozen=True)
class Ingested:
    """The embedded data through the real ExampleGen graph: session splits and catalog."""

    split_files: dict[str, str]  # split name -> GZIP TFRecord glob of session examples
    catalog_examples: list[tf.train.Example]  # with the ExampleGen's own train_clicks


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> Ingested:
    import glob

    import apache_beam as beam

    from components.session_example_gen import executor

    out = str(tmp_path_factory.mktemp("ingested"))
    config = IngestConfig()
    with beam.Pipeline() as pipeline:
        executor._build_pipeline(
            pipeline,
            os.path.join(DEFAULT_DATA, "clicks*"),
            os.path.join(DEFAULT_DATA, "catalog*"),
            config,
            {name: os.path.join(out, name) for name in config.split_names},
            os.path.join(out, "items"),
            os.path.join(out, "counters.json"),
        )
    records = tf.data.TFRecordDataset(glob.glob(os.path.join(out, "items", "*")), compression_type="GZIP")
    return Ingested(
        {name: os.path.join(out, name, "*") for name in config.split_names},
        [tf.train.Example.FromString(record.numpy()) for record in records],
    )


@pytest.fixture(scope="session")
def ingested_catalog(analyze_catalog, ingested) -> TftCatalog:
    """The ExampleGen's catalog through the real preprocessing_fn (4 category levels)."""
    return analyze_catalog(ingested.catalog_examples, PreprocessingConfig(category_levels=4), name="ingested")


NEW_ITEM = "new-item-1"
# Small enough for CI's two cores, big enough to learn something in a few steps.
SMALL = dict(
    num_layers=1,
    num_heads=2,
    item_dim=32,
    ff_dim=64,
    id_dim=16,
    title_dim=16,
    category_dim=8,
    batch_size=128,
    learning_rate=3e-3,
)


@dataclasses.dataclass
class Exported:
    model: object
    catalog: object
    tft_output: object
    setup: TrainingSetup
    export_dir: str
    sessions: list[list[str]]


def pad(sessions: list[list[str]]) -> np.ndarray:
    """Sessions of ids as one `[batch, length]` array, padded with "" (serving_default's input)."""
    width = max(len(s) for s in sessions)
    return np.array([s + [""] * (width - len(s)) for s in sessions], dtype=object)


CANDIDATE_CATEGORIES = 3  # the exported model's recommend_in_top_categories


@pytest.fixture(scope="session")
def exported(ingested, ingested_catalog, tmp_path_factory) -> Exported:
    """A small M2TRec with a repeat bonus, the candidate signature and every option of A2D-MTL (category
    channel over the category graph, neighbour sessions, adaptive sparse readout), trained for a few steps
    and exported as version 1 (shared by model and serving tests)."""
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset(
        "M2TRec",
        **SMALL,
        epochs=1,
        top_k=20,
        repeat_bonus=1.0,
        candidate_categories=CANDIDATE_CATEGORIES,
        neighbour_sessions=100,
        neighbours=5,
        readout_weighting="adaptive_entmax",
        category_channel=True,
        category_graph=True,
    )
    run_dir = tmp_path_factory.mktemp("run")
    model, _ = train(
        config,
        catalog,
        ingested.split_files["train"],
        ingested.split_files["eval"],
        str(run_dir),
        train_steps=60,
        verbose=0,
    )
    setup = TrainingSetup(config, ingested_catalog.config)
    export_dir = str(tmp_path_factory.mktemp("export") / "1")
    export.export_serving_model(
        model,
        catalog,
        ingested_catalog.tft_output,
        setup,
        export_dir,
        catalog_examples=[example.SerializeToString() for example in ingested.catalog_examples],
        sessions=read_prefixes(ingested.split_files["eval"], 300),
    )
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(ingested.split_files["test"]), compression_type="GZIP").take(6)
    sessions = [
        [
            v.decode()
            for v in tf.train.Example.FromString(r.numpy()).features.feature[contract.PREFIX_ITEM_IDS].bytes_list.value
        ]
        for r in records
    ]
    return Exported(model, catalog, ingested_catalog.tft_output, setup, export_dir, sessions)
