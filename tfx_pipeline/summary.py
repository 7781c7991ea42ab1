"""What a person reads after a run: the ingest report, split sizes and the inferred schema.

Artifacts are found through MLMD (the newest of each type), so the summary is right
whether a component ran now or was reused from the cache.

Example:
    >>> print(summarize(PipelineConfig()))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

import tensorflow_data_validation as tfdv
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import artifact_utils

from components.session_example_gen import report as report_lib
from model.model import TRACKED_K
from model.trainer import HISTORY_FILE
from tfx_pipeline.config import PipelineConfig

SUMMARY_FILE = "summary.md"


def _latest(store: metadata_store.MetadataStore, pipeline_name: str, node_id: str, type_name: str):
    """The newest live artifact of `type_name` that component `node_id` produced or reused."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if context is None:
        return None
    type_id = store.get_artifact_type(type_name).id
    artifacts = [
        a for a in store.get_artifacts_by_context(context.id)
        if a.type_id == type_id and a.state == metadata_store_pb2.Artifact.LIVE
    ]  # fmt: skip
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def summarize(config: PipelineConfig) -> str:
    """Markdown summary of the newest run's artifacts."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(connection)

    sections = [f"# Run summary: {config.pipeline_name}", "", f"Data: `{config.data_dir}`", ""]
    report = _latest(store, config.pipeline_name, "SessionExampleGen", "IngestReport")
    if report is not None:
        sections.append(report_lib.render_markdown(report_lib.read_report(report.uri)).replace("# Ingest report", "## Ingest report"))
        sections.append(f"Report: `{os.path.join(report.uri, report_lib.REPORT_MARKDOWN)}`\n")

    statistics = _latest(store, config.pipeline_name, "StatisticsGen", "ExampleStatistics")
    if statistics is not None:
        sections += ["## Statistics", "", "| split | examples | features |", "|---|---:|---:|"]
        for split in artifact_utils.decode_split_names(statistics.properties["split_names"].string_value):
            path = os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb")
            stats = tfdv.load_stats_binary(path).datasets[0]
            sections.append(f"| {split} | {stats.num_examples:,} | {len(stats.features)} |")
        sections.append("")

    schema = _latest(store, config.pipeline_name, "SchemaGen", "Schema")
    if schema is not None:
        loaded = tfdv.load_schema_text(os.path.join(schema.uri, "schema.pbtxt"))
        sections += ["## Inferred schema", "", "| feature | type | presence | values per example |", "|---|---|---:|---|"]
        for feature in loaded.feature:
            shape = feature.value_count
            count = f"{shape.min}..{shape.max}" if shape.max else (f">= {shape.min}" if shape.min else "any")
            sections.append(
                f"| {feature.name} | {schema_pb2.FeatureType.Name(feature.type)} "
                f"| {feature.presence.min_fraction:.0%} | {count} |"
            )
        sections.append("")
    model_run = _latest(store, config.pipeline_name, "SessionTrainer", "ModelRun")
    model = _latest(store, config.pipeline_name, "SessionTrainer", "Model")
    if model_run is not None and model is not None:
        with open(os.path.join(model_run.uri, HISTORY_FILE)) as f:
            history = json.load(f)
        best = int(np.argmax(history[f"val_hit@{TRACKED_K}"]))
        sections += [
            "## Model",
            "",
            f"{config.model.variant}: {history['epochs_run'][0]} epochs in {history['wall_s'][0]:.0f} s; best epoch {best + 1}: "
            + ", ".join(f"eval {k[4:]} {history[k][best]:.4f}" for k in sorted(history) if k.startswith("val_") and "@" in k),
            "",
            f"SavedModel: `{os.path.join(model.uri, 'Format-Serving')}`",
            "",
        ]
    return "\n".join(sections)


def write_summary(config: PipelineConfig) -> str:
    """Writes the summary beside the run's outputs and returns it."""
    text = summarize(config)
    path = os.path.join(config.output_dir, SUMMARY_FILE)
    with open(path, "w") as f:
        f.write(text)
    return text
