"""The RunReport executor: loads the run's artifacts, lays out the page, copies it into the artifact.

The page is built in a local temporary directory and copied with TFX's fileio, so the
artifact may live on an object store (Kubeflow, Vertex) as well as on local disk.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

import contract
from components.run_report import load
from components.run_report.sessions import example_sessions
from contract.model_api import HISTORY_FILE, REPEAT_BONUS_FILE, TRACKED_METRIC
from reporting.html import PAGE_FILE
from reporting.run_report import RunData, write_run_report

# Input, output and parameter keys.
INGEST_REPORT_KEY = "ingest_report"
STATISTICS_KEY = "statistics"
EXAMPLES_KEY = "examples"
CATALOG_KEY = "catalog"
MODEL_KEY = "model"
MODEL_RUN_KEY = "model_run"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"
BASELINE_MODEL_KEY = "baseline_model"
PUSHED_MODEL_KEY = "pushed_model"
REPORT_KEY = "report"
# Not "pipeline_name": TFX's legacy launcher (AirflowDagRunner's) reserves that execution property.
PIPELINE_NAME_KEY = "report_pipeline_name"
MODEL_VARIANT_KEY = "model_variant"
SPLIT_KEY = "split"
NUM_SESSIONS_KEY = "num_sessions"
NUM_RECOMMENDATIONS_KEY = "num_recommendations"


def _single(input_dict: dict[str, list[types.Artifact]], key: str) -> types.Artifact | None:
    """The one artifact of an input, or None where the channel is absent or empty (e.g. no baseline yet)."""
    artifacts = input_dict.get(key) or []
    return artifacts[0] if artifacts else None


def _sessions(input_dict: dict[str, list[types.Artifact]], split: str, count: int, top_k: int) -> tuple[list, str]:
    """Example sessions through the trained model, or none and why."""
    examples, catalog, model = (_single(input_dict, k) for k in (EXAMPLES_KEY, CATALOG_KEY, MODEL_KEY))
    if count <= 0:
        return [], "Example sessions are switched off (num_sessions=0)."
    if examples is None or catalog is None or model is None:
        return [], "No example sessions: the report needs the examples, the catalog and the model."
    if split not in artifact_utils.decode_split_names(examples.split_names):
        return [], f"No example sessions: the examples have no '{split}' split."
    sessions = example_sessions(
        io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split)),
        io_utils.all_files_pattern(artifact_utils.get_split_uri([catalog], contract.CATALOG_SPLIT)),
        path_utils.serving_model_path(model.uri),
        count,
        top_k,
    )
    return sessions, "" if sessions else f"The '{split}' split holds no sessions."


def build_run_data(input_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]) -> RunData:
    """Everything the page shows, read from whichever inputs the pipeline wired in."""
    split = exec_properties.get(SPLIT_KEY) or "test"
    ingest, statistics, model, model_run = (
        _single(input_dict, k) for k in (INGEST_REPORT_KEY, STATISTICS_KEY, MODEL_KEY, MODEL_RUN_KEY)
    )
    evaluation, blessing, baseline, pushed = (
        _single(input_dict, k) for k in (EVALUATION_KEY, BLESSING_KEY, BASELINE_MODEL_KEY, PUSHED_MODEL_KEY)
    )
    from components.session_example_gen import report as report_lib

    sessions, sessions_note = _sessions(
        input_dict,
        split,
        int(exec_properties.get(NUM_SESSIONS_KEY) or 0),
        int(exec_properties.get(NUM_RECOMMENDATIONS_KEY) or 10),
    )
    return RunData(
        pipeline_name=exec_properties.get(PIPELINE_NAME_KEY) or "pipeline",
        generated_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        model_variant=exec_properties.get(MODEL_VARIANT_KEY) or "",
        model_uri=path_utils.serving_model_path(model.uri) if model else "",
        ingest=report_lib.read_report(ingest.uri) if ingest else None,
        statistics=load.read_statistics(statistics.uri, artifact_utils.decode_split_names(statistics.split_names))
        if statistics
        else None,
        history=load.read_json(os.path.join(model_run.uri, HISTORY_FILE)) if model_run else None,
        repeat_bonus=load.read_json(os.path.join(model_run.uri, REPEAT_BONUS_FILE), missing_ok=True)
        if model_run
        else None,
        tracked_metric=TRACKED_METRIC,
        evaluation=load.read_evaluation(
            evaluation.uri,
            load.is_blessed(blessing),
            split,
            path_utils.serving_model_path(baseline.uri) if baseline else "",
        )
        if evaluation and blessing
        else None,
        push=load.read_push(pushed) if pushed else None,
        sessions=sessions,
        sessions_note=sessions_note,
    )


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        report = artifact_utils.get_single_instance(output_dict[REPORT_KEY])
        run = build_run_data(input_dict, exec_properties)
        with tempfile.TemporaryDirectory() as local_dir:
            write_run_report(run, local_dir)
            io_utils.copy_dir(local_dir, report.uri)
        logging.info("Run report written to %s", os.path.join(report.uri, PAGE_FILE))
