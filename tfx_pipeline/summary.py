"""What a person reads after a run: the ingest report, split sizes and the inferred schema.

Artifacts are found through MLMD (the newest of each type), so the summary is right
whether a component ran now or was reused from the cache.

Example:
    >>> print(summarize(PipelineConfig()))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Optional

import tensorflow_data_validation as tfdv
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import artifact_utils

from components.session_example_gen import report as report_lib
from tfx_pipeline.config import PipelineConfig

SUMMARY_FILE = "summary.md"


def _latest(store: metadata_store.MetadataStore, type_name: str) -> Optional[metadata_store_pb2.Artifact]:
    artifacts = [a for a in store.get_artifacts_by_type(type_name) if a.state == metadata_store_pb2.Artifact.LIVE]
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def summarize(config: PipelineConfig) -> str:
    """Markdown summary of the newest run's artifacts."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(connection)

    sections = [f"# Run summary: {config.pipeline_name}", "", f"Data: `{config.data_dir}`", ""]
    report = _latest(store, "IngestReport")
    if report is not None:
        sections.append(report_lib.render_markdown(report_lib.read_report(report.uri)).replace("# Ingest report", "## Ingest report"))
        sections.append(f"Report: `{os.path.join(report.uri, report_lib.REPORT_MARKDOWN)}`\n")

    statistics = _latest(store, "ExampleStatistics")
    if statistics is not None:
        sections += ["## Statistics", "", "| split | examples | features |", "|---|---:|---:|"]
        for split in artifact_utils.decode_split_names(statistics.properties["split_names"].string_value):
            path = os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb")
            stats = tfdv.load_stats_binary(path).datasets[0]
            sections.append(f"| {split} | {stats.num_examples:,} | {len(stats.features)} |")
        sections.append("")

    schema = _latest(store, "Schema")
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
    return "\n".join(sections)


def write_summary(config: PipelineConfig) -> str:
    """Writes the summary beside the run's outputs and returns it."""
    text = summarize(config)
    path = os.path.join(config.output_dir, SUMMARY_FILE)
    with open(path, "w") as f:
        f.write(text)
    return text
