"""SessionExampleGen: a click log and an item catalog -> session examples, catalog, report.

Unlike TFX's file ExampleGens it splits by time (or a predefined column) at session level,
so no session straddles two splits, and it accounts for every row it does not use.
It reuses TFX's FileBasedDriver: input files are fingerprinted (a changed file re-runs the
component despite the cache) and `{SPAN}` patterns select the newest daily export.

Example:
    >>> gen = SessionExampleGen(input_base="data/default", clicks_pattern="clicks.csv.gz",
    ...                         catalog_pattern="catalog.csv.gz")
    >>> sorted(gen.outputs)
    ['catalog', 'examples', 'ingest_report']
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.example_gen import driver
from tfx.dsl.components.base import base_beam_component, base_driver, executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.session_example_gen import executor
from components.session_example_gen.config import IngestConfig


class IngestReport(types.Artifact):
    """Counts of rows kept per split and skipped per reason, with samples (JSON + Markdown)."""

    # "<namespace>.<Name>": Kubeflow Pipelines v2 rejects custom artifact type names without one.
    TYPE_NAME = "session_recommender.IngestReport"


class SessionExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.INPUT_BASE_KEY: ExecutionParameter(type=str),
        executor.INPUT_CONFIG_KEY: ExecutionParameter(type=example_gen_pb2.Input),
        executor.RANGE_CONFIG_KEY: ExecutionParameter(type=range_config_pb2.RangeConfig, optional=True),
        executor.INGEST_CONFIG_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {}
    OUTPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.CATALOG_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.REPORT_KEY: ChannelParameter(type=IngestReport),
    }


class SessionExampleGenDriver(driver.FileBasedDriver):
    """TFX's FileBasedDriver, which also prepares this component's `catalog` and `ingest_report`.

    The legacy launchers (AirflowDagRunner's) take the output artifacts from the driver, and
    ExampleGen's driver prepares `examples` alone: the executor then found no `catalog`.
    """

    def _prepare_output_artifacts(
        self,
        input_artifacts: dict[str, list[types.Artifact]],
        output_dict: dict[str, types.Channel],
        exec_properties: dict[str, Any],
        execution_id: int,
        pipeline_info: Any,
        component_info: Any,
    ) -> dict[str, list[types.Artifact]]:
        others = {name: channel for name, channel in output_dict.items() if name != executor.EXAMPLES_KEY}
        prepared = base_driver.BaseDriver._prepare_output_artifacts(
            self, input_artifacts, others, exec_properties, execution_id, pipeline_info, component_info
        )
        examples = super()._prepare_output_artifacts(
            input_artifacts, output_dict, exec_properties, execution_id, pipeline_info, component_info
        )
        return {**prepared, **examples}


class SessionExampleGen(base_beam_component.BaseBeamComponent):
    """Session ExampleGen over contract files under `input_base`.

    Outputs: `examples` (splits from `config.split_names`: one tf.Example per prefix ->
    next item), `catalog` (split `items`: one tf.Example per item) and `ingest_report`.
    Fails when more than `config.max_bad_fraction` of the rows are bad.
    """

    SPEC_CLASS = SessionExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = SessionExampleGenDriver

    def __init__(
        self,
        input_base: str,
        clicks_pattern: str = "clicks*",
        catalog_pattern: str = "catalog*",
        config: IngestConfig = IngestConfig(),
        range_config: range_config_pb2.RangeConfig | None = None,
    ):
        input_config = example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=executor.CLICKS_INPUT, pattern=clicks_pattern),
                example_gen_pb2.Input.Split(name=executor.CATALOG_INPUT, pattern=catalog_pattern),
            ]
        )
        super().__init__(
            SessionExampleGenSpec(
                input_base=input_base,
                input_config=input_config,
                range_config=range_config,
                ingest_config=config.to_json(),
                examples=types.Channel(type=standard_artifacts.Examples),
                catalog=types.Channel(type=standard_artifacts.Examples),
                ingest_report=types.Channel(type=IngestReport),
            )
        )
