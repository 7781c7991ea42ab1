"""What a person reads after a run: the ingest report, split sizes, the inferred schema, the model,
the Evaluator's verdict, and where the run's HTML report is.

Artifacts are found through MLMD (the newest of each type), so the summary is right
whether a component ran now or was reused from the cache.

Example:
    >>> print(summarize(PipelineConfig()))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow_data_validation as tfdv
from ml_metadata import errors, metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import artifact_utils

from components.run_report import RunReport, RunReportArtifact
from components.run_report.load import read_evaluation
from components.session_example_gen import IngestReport
from components.session_example_gen import report as report_lib
from contract.model_api import HISTORY_FILE, TRACKED_METRIC
from reporting.html import PAGE_FILE
from tfx_pipeline.config import PipelineConfig

SUMMARY_FILE = "summary.md"
RUN_REPORT_NODE = RunReport.__name__  # the component's default id in the pipeline


def _node_contexts(store: metadata_store.MetadataStore, pipeline_name: str, node_id: str) -> list:
    """Where MLMD files a component's artifacts: one `node` context (LocalDagRunner, Kubeflow),
    or one `component_run` context per run (`<pipeline>.<run id>.<node>`, the legacy launcher
    of AirflowDagRunner)."""
    node = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if node is not None:
        return [node]
    return [
        context
        for context in store.get_contexts_by_type("component_run")
        if context.name.startswith(f"{pipeline_name}.") and context.name.endswith(f".{node_id}")
    ]


def _latest(
    store: metadata_store.MetadataStore, pipeline_name: str, node_id: str, type_name: str, split: str | None = None
):
    """The newest live artifact of `type_name` that component `node_id` produced or reused
    (with `split` among its splits, where a component outputs several Examples)."""
    contexts = _node_contexts(store, pipeline_name, node_id)
    if not contexts:
        return None
    try:
        type_id = store.get_artifact_type(type_name).id
    except errors.NotFoundError:  # no artifact of this type was ever recorded (e.g. the run stopped before it)
        return None
    artifacts = [
        a
        for context in contexts
        for a in store.get_artifacts_by_context(context.id)
        if a.type_id == type_id
        and a.state == metadata_store_pb2.Artifact.LIVE
        and (split is None or split in artifact_utils.decode_split_names(a.properties["split_names"].string_value))
    ]
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def open_store(config: PipelineConfig) -> metadata_store.MetadataStore:
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def latest_uri(config: PipelineConfig, node_id: str, type_name: str, split: str | None = None) -> str | None:
    """Where the newest `type_name` artifact of component `node_id` is, if any."""
    artifact = _latest(open_store(config), config.pipeline_name, node_id, type_name, split)
    return artifact.uri if artifact is not None else None


def summarize(config: PipelineConfig) -> str:
    """Markdown summary of the newest run's artifacts."""
    store = open_store(config)

    sections = [f"# Run summary: {config.pipeline_name}", "", f"Data: `{config.data_dir}`", ""]
    report = _latest(store, config.pipeline_name, "SessionExampleGen", IngestReport.TYPE_NAME)
    if report is not None:
        sections.append(
            report_lib.render_markdown(report_lib.read_report(report.uri)).replace(
                "# Ingest report", "## Ingest report"
            )
        )
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
        sections += [
            "## Inferred schema",
            "",
            "| feature | type | presence | values per example |",
            "|---|---|---:|---|",
        ]
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
        best = int(np.argmax(history[TRACKED_METRIC]))
        sections += [
            "## Model",
            "",
            f"{config.model.variant}: {history['epochs_run'][0]} epochs in {history['wall_s'][0]:.0f} s; best epoch {best + 1}: "
            + ", ".join(
                f"eval {k[4:]} {history[k][best]:.4f}" for k in sorted(history) if k.startswith("val_") and "@" in k
            ),
            "",
            f"SavedModel: `{os.path.join(model.uri, 'Format-Serving')}`",
            "",
        ]
    sections += _evaluation_section(store, config)
    page = report_page(config)
    if page is not None:
        sections += [
            "## Run report",
            "",
            f"Data, training curves, metrics per slice and category level, the comparison "
            f"with the last blessed model and example sessions, with plots: `{page}`",
            "",
        ]
    return "\n".join(sections)


def report_page(config: PipelineConfig) -> str | None:
    """The newest run report's page (`index.html` of the RunReport component's artifact), if any."""
    uri = latest_uri(config, RUN_REPORT_NODE, RunReportArtifact.TYPE_NAME)
    return os.path.join(uri, PAGE_FILE) if uri is not None else None


_SHOWN = ("example_count", "hit@5", "hit@20", "mrr@20", "ndcg@20")


def _evaluation_section(store: metadata_store.MetadataStore, config: PipelineConfig) -> list[str]:
    """The Evaluator's metrics per slice, the gate's verdict and what was pushed."""
    evaluation = _latest(store, config.pipeline_name, "Evaluator", "ModelEvaluation")
    blessing = _latest(store, config.pipeline_name, "Evaluator", "ModelBlessing")
    if evaluation is None or blessing is None:
        return []
    blessed = blessing.custom_properties["blessed"].int_value == 1
    # The run report's reader: the candidate's metrics even when TFMA also holds the baseline's.
    result = read_evaluation(evaluation.uri, blessed, config.evaluation.split)
    lines = [
        f"## Evaluation ({result.split} split)",
        "",
        "| slice | " + " | ".join(_SHOWN) + " |",
        "|---|" + "---:|" * len(_SHOWN),
    ]
    for slice_metrics in sorted(result.slices, key=lambda s: s.name):
        values = slice_metrics.metrics
        cells = [f"{values[m]:,.0f}" if m == "example_count" else f"{values[m]:.4f}" for m in _SHOWN if m in values]
        lines.append(f"| {slice_metrics.name} | " + " | ".join(cells) + " |")
    lines += ["", f"Gate: **{'BLESSED' if blessed else 'NOT BLESSED'}**"]
    for failure in result.failures:
        change = " (change vs. the last blessed model)" if failure.against_baseline else ""
        message = f" ({failure.message})" if failure.message else ""
        lines.append(
            f"- failed on {failure.slice_name}: {failure.metric}{change} = {failure.value:.4f}, "
            f"needs {failure.threshold}{message}"
        )
    pushed = _latest(store, config.pipeline_name, "AtomicPusher", "PushedModel")
    if pushed is not None and pushed.custom_properties["pushed"].int_value == 1:
        lines.append(
            f"Pushed version {pushed.custom_properties['pushed_version'].string_value} to "
            f"`{pushed.custom_properties['pushed_destination'].string_value}`"
        )
    else:
        lines.append("Not pushed: the serving directory keeps the last blessed model.")
    return lines + [""]


def write_summary(config: PipelineConfig) -> str:
    """Writes the summary beside the run's outputs and returns it."""
    text = summarize(config)
    path = os.path.join(config.output_dir, SUMMARY_FILE)
    with open(path, "w") as f:
        f.write(text)
    return text
