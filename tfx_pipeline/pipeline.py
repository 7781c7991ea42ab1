"""The one pipeline definition; runners (local, Kubeflow, Airflow) differ only in how they run it."""

from __future__ import annotations

from typing import Optional

from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from components.session_example_gen import SessionExampleGen
from tfx_pipeline.config import PipelineConfig


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
) -> tfx.dsl.Pipeline:
    example_gen = SessionExampleGen(
        input_base=config.data_dir,
        clicks_pattern=config.clicks_pattern,
        catalog_pattern=config.catalog_pattern,
        config=config.ingest,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[example_gen, statistics_gen, schema_gen],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
