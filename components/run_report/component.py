"""RunReport: the pipeline's last component, a static HTML page (with PNG plots) about the run.

It reads what the run produced (ingest report, statistics, training history, TFMA's
evaluation and validation, the blessing, the push) and serves a few test sessions through
the trained model, then writes `index.html` and its PNGs as a `RunReport` artifact, so
every run on any orchestrator leaves its page beside its artifacts. Every input but the
model is optional: the page says what a run did not produce (no Pusher, no baseline yet).

Example:
    >>> report = RunReport(ingest_report=example_gen.outputs["ingest_report"],  # doctest: +SKIP
    ...     statistics=statistics_gen.outputs["statistics"], examples=example_gen.outputs["examples"],
    ...     catalog=example_gen.outputs["catalog"], model=trainer.outputs["model"],
    ...     model_run=trainer.outputs["model_run"], evaluation=evaluator.outputs["evaluation"],
    ...     blessing=evaluator.outputs["blessing"], pushed_model=pusher.outputs["pushed_model"],
    ...     pipeline_name="session-recommender")
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.run_report import executor
from components.session_example_gen import IngestReport


class RunReportArtifact(types.Artifact):
    """A static HTML page about one pipeline run: `index.html` and the PNGs it shows."""

    TYPE_NAME = "session_recommender.RunReport"


def _optional(artifact_type: type) -> ChannelParameter:
    return ChannelParameter(type=artifact_type, optional=True)


class RunReportSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.PIPELINE_NAME_KEY: ExecutionParameter(type=str),
        executor.MODEL_VARIANT_KEY: ExecutionParameter(type=str, optional=True),
        executor.SPLIT_KEY: ExecutionParameter(type=str, optional=True),
        executor.NUM_SESSIONS_KEY: ExecutionParameter(type=int, optional=True),
        executor.NUM_RECOMMENDATIONS_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        executor.INGEST_REPORT_KEY: _optional(IngestReport),
        executor.STATISTICS_KEY: _optional(standard_artifacts.ExampleStatistics),
        executor.EXAMPLES_KEY: _optional(standard_artifacts.Examples),
        executor.CATALOG_KEY: _optional(standard_artifacts.Examples),
        executor.MODEL_RUN_KEY: _optional(standard_artifacts.ModelRun),
        executor.EVALUATION_KEY: _optional(standard_artifacts.ModelEvaluation),
        executor.BLESSING_KEY: _optional(standard_artifacts.ModelBlessing),
        executor.BASELINE_MODEL_KEY: _optional(standard_artifacts.Model),
        executor.PUSHED_MODEL_KEY: _optional(standard_artifacts.PushedModel),
    }
    OUTPUTS = {executor.REPORT_KEY: ChannelParameter(type=RunReportArtifact)}


class RunReport(base_component.BaseComponent):
    """The run's HTML report; output `report` holds `index.html` (see `reporting.html.PAGE_FILE`)."""

    SPEC_CLASS = RunReportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        pipeline_name: str,
        ingest_report: types.BaseChannel | None = None,
        statistics: types.BaseChannel | None = None,
        examples: types.BaseChannel | None = None,
        catalog: types.BaseChannel | None = None,
        model_run: types.BaseChannel | None = None,
        evaluation: types.BaseChannel | None = None,
        blessing: types.BaseChannel | None = None,
        baseline_model: types.BaseChannel | None = None,
        pushed_model: types.BaseChannel | None = None,
        model_variant: str = "",
        split: str = "test",
        num_sessions: int = 3,
        num_recommendations: int = 10,
    ):
        super().__init__(
            RunReportSpec(
                model=model,
                ingest_report=ingest_report,
                statistics=statistics,
                examples=examples,
                catalog=catalog,
                model_run=model_run,
                evaluation=evaluation,
                blessing=blessing,
                baseline_model=baseline_model,
                pushed_model=pushed_model,
                report_pipeline_name=pipeline_name,
                model_variant=model_variant,
                split=split,
                num_sessions=num_sessions,
                num_recommendations=num_recommendations,
                report=types.Channel(type=RunReportArtifact),
            )
        )
