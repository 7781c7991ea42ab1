"""The pipeline through LocalDagRunner (sqlite MLMD, DirectRunner) on the embedded data."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import shutil

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv

import contract
from components.session_example_gen import IngestConfig
from components.session_example_gen import report as report_lib
from contract import model_api
from model.config import ModelConfig
from tests.reporting.chromium import assert_renders
from tfx_pipeline import summary as summary_lib
from tfx_pipeline.config import DEFAULT_DATA_DIR, PipelineConfig
from tfx_pipeline.demo import serve_and_recommend
from tfx_pipeline.runners import local

pytestmark = pytest.mark.pipeline


def _output(config: PipelineConfig, component: str, key: str) -> str:
    (uri,) = glob.glob(os.path.join(config.pipeline_root, component, key, "*"))
    return uri


def _count(pattern: str) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(glob.glob(pattern), compression_type="GZIP"))


# A small model and a few steps: this checks the wiring, benchmarks/ measure quality.
QUICK_MODEL = ModelConfig.preset("M2TRec", num_layers=1, num_heads=2, item_dim=32, ff_dim=64, epochs=1)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("run")
    config = PipelineConfig(output_dir=str(output_dir), model=QUICK_MODEL, train_steps=30, eval_steps=10)
    summary = local.run(config)
    return config, summary


def test_examples_match_report_and_statistics(finished_run):
    config, _ = finished_run
    report = report_lib.read_report(_output(config, "SessionExampleGen", "ingest_report"))
    assert report.passed, report.problems
    examples_dir = _output(config, "SessionExampleGen", "examples")
    statistics_dir = _output(config, "StatisticsGen", "statistics")
    for split in contract.SPLITS:
        written = _count(os.path.join(examples_dir, f"Split-{split}", "*.gz"))
        stats = tfdv.load_stats_binary(os.path.join(statistics_dir, f"Split-{split}", "FeatureStats.pb"))
        assert written == report.splits[split].examples == stats.datasets[0].num_examples
        # n clicks in a session give n - 1 examples.
        assert written == report.splits[split].clicks - report.splits[split].sessions
    # The embedded data is fixed, so its counts are too (README, data/default/README.md).
    assert {s: report.splits[s].examples for s in contract.SPLITS} == {
        "train": 37_102,
        "eval": 5_969,
        "test": 5_738,
    }


def test_bad_rows_are_those_injected_and_every_row_is_accounted_for(finished_run):
    config, summary = finished_run
    report = report_lib.read_report(_output(config, "SessionExampleGen", "ingest_report"))
    with open(os.path.join(DEFAULT_DATA_DIR, "injected_bad_rows.json")) as f:
        injected = json.load(f)
    catalog_injected = injected.pop("catalog")
    assert report.clicks.bad == injected
    assert report.catalog.bad == catalog_injected
    clicks = report.clicks
    assert clicks.rows == clicks.kept + clicks.bad_rows + sum(clicks.filtered.values())
    assert all(len(report.samples[reason]) == 5 for reason in injected)
    assert "PASSED" in summary and "unparsable_timestamp" in summary


def test_catalog_and_schema(finished_run):
    config, summary = finished_run
    catalog_dir = _output(config, "SessionExampleGen", "catalog")
    assert _count(os.path.join(catalog_dir, f"Split-{contract.CATALOG_SPLIT}", "*.gz")) == 2_500
    schema = tfdv.load_schema_text(os.path.join(_output(config, "SchemaGen", "schema"), "schema.pbtxt"))
    assert {f.name for f in schema.feature} == {
        contract.SESSION_ID,
        contract.PREFIX_ITEM_IDS,
        contract.TARGET_ITEM_ID,
        contract.TARGET_TIMESTAMP,
        contract.PREFIX_LENGTH,
    }
    assert os.path.exists(os.path.join(config.output_dir, "summary.md"))
    assert "## Inferred schema" in summary


def test_trainer_exports_a_servable_model(finished_run):
    config, summary = finished_run
    model_dir = os.path.join(_output(config, "SessionTrainer", "model"), "Format-Serving")
    loaded = tf.saved_model.load(model_dir)
    assert set(loaded.signatures) == {
        model_api.SERVING_DEFAULT,
        model_api.FROM_METADATA,
        model_api.EXCLUDING,
        model_api.TRANSFORM_FEATURES,
        model_api.SERVE_EXAMPLES,
    }
    # The catalog the model holds is the ingested one: any of its items can be asked about.
    out = loaded.signatures[model_api.SERVING_DEFAULT](item_ids=tf.constant([["100000", "100001"]]))
    assert out[model_api.TOP_K_IDS].shape == (1, QUICK_MODEL.top_k)
    assert "## Model" in summary and "M2TRec" in summary


def test_first_model_is_blessed_pushed_atomically_and_served(finished_run):
    config, summary = finished_run
    assert "Gate: **BLESSED**" in summary and "Pushed version" in summary
    for slice_name in (
        "overall",
        f"{model_api.TAIL_SESSION}=1",
        f"{model_api.COLD_START_TARGET}=1",
        f"{model_api.SESSION_LENGTH}=",
    ):
        assert slice_name in summary
    (version,) = os.listdir(config.serving_base)  # no temporary directory left behind
    assert version.isdigit()
    assert os.path.exists(os.path.join(config.serving_base, version, "assets.extra", "tf_serving_warmup_requests"))
    answer = serve_and_recommend(config)
    assert f"Served version {version}" in answer and "Session (" in answer
    assert answer.count("\n") > QUICK_MODEL.top_k  # a row per recommendation, with titles


def _rendered_report(summary: str, headings: list[str]):
    """The run report the summary points to, rendered in headless Chromium with every plot decoded."""
    (page,) = re.findall(r"Run report \(open in a browser\): file://(\S+)", summary)
    figures = sorted(f for f in os.listdir(os.path.dirname(page)) if f.endswith(".png"))
    return assert_renders(page, figures, min_tables=8, headings=headings), figures


_REPORT_SECTIONS = [
    "Data",
    "Training",
    "Evaluation (test split)",
    "Comparison with the last blessed model",
    "Gate and push",
    "Example sessions",
]


def test_run_report_shows_the_first_run(finished_run):
    config, summary = finished_run
    rendered, figures = _rendered_report(summary, _REPORT_SECTIONS)
    assert os.path.dirname(summary_lib.report_page(config)) == _output(config, "RunReport", "report")
    assert "## Run report" in summary
    assert {
        "skipped-rows.png",
        "prefix-length.png",
        "training-loss.png",
        "metrics-per-slice.png",
        "metrics-per-category-level.png",
    } <= set(figures)
    assert "The model is BLESSED" in rendered.text and "Pushed version" in rendered.text
    assert "No baseline: no model has been blessed before this one" in rendered.text
    # Example test sessions went through the exported model, with the catalog's titles.
    assert rendered.text.count("True next item:") == 3 and "Session 1:" in rendered.text


def test_a_worse_model_is_not_blessed_and_not_pushed(finished_run):
    config, _ = finished_run
    before = sorted(os.listdir(config.serving_base))
    # One training step: far worse than the blessed model, which is now the baseline.
    worse = dataclasses.replace(config, train_steps=1, model=dataclasses.replace(QUICK_MODEL, learning_rate=1e-6))
    summary = local.run(worse)
    assert "Gate: **NOT BLESSED**" in summary
    # The comparison with the baseline blocks it (on HIT@20 or MRR@20, whichever regressed:
    # metadata alone already ranks well, so even an untrained M2TRec is not hopeless).
    assert "(change vs. the last blessed model)" in summary
    assert "Not pushed" in summary
    assert sorted(os.listdir(config.serving_base)) == before
    # The run report compares with the baseline and names the failed threshold.
    rendered, figures = _rendered_report(summary, _REPORT_SECTIONS)
    assert "candidate-vs-baseline.png" in figures
    assert "The model is NOT BLESSED" in rendered.text and "change vs the last blessed model" in rendered.text
    assert "Not pushed: the serving directory keeps the last blessed model." in rendered.text


def test_too_many_bad_rows_fails_the_run_with_the_reason(tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, data_dir)
    config = PipelineConfig(
        data_dir=str(data_dir),
        output_dir=str(tmp_path / "run"),
        ingest=dataclasses.replace(IngestConfig(), max_bad_fraction=0.001),
    )
    with pytest.raises(RuntimeError, match=r"of clicks rows are bad, over the limit of 0\.10%"):
        local.run(config)
