"""The pipeline as an Airflow DAG, built by TFX's AirflowDagRunner.

`python -m tfx_pipeline.compile --orchestrator airflow` writes a DAG file (`dag_file_source`)
for Airflow's dags folder; Airflow imports it on a worker that has this repo and the
`airflow` extra (the Dockerfile's image with EXTRA=airflow, or `.venv-airflow`). Each
component is one task and runs in the worker's process; MLMD is the sqlite file at
`config.metadata_path` (`metadata_sqlite` to move it), and `retrain_schedule` is the DAG's
schedule. Building the DAG imports TFX, which takes longer than Airflow's default
`dagbag_import_timeout` of 30 s on a small worker: raise it (README, "Running on a
cluster"). The DAG file names its config as a JSON file in `$SESSION_RECOMMENDER_CONFIG`, or
holds the fields it was compiled with:

    .venv-airflow/bin/python -m tfx_pipeline.compile --orchestrator airflow --config daily.json \\
        --out ~/airflow/dags/session_recommender.py
"""

from __future__ import annotations

import datetime
import os
import pprint
from collections.abc import Mapping
from typing import Any

from tfx_pipeline.config import PipelineConfig
from tfx_pipeline.pipeline import create_pipeline
from tfx_pipeline.runners import share_code_with_beam_workers

CONFIG_ENV = "SESSION_RECOMMENDER_CONFIG"
# A fixed past start and no catchup: a scheduled DAG runs from its next slot on, not for every slot since.
START_DATE = datetime.datetime(2025, 1, 1)


def config_for_dag(compiled_fields: Mapping[str, Any]) -> PipelineConfig:
    """The JSON file named by $SESSION_RECOMMENDER_CONFIG if set, else the compiled-in fields."""
    path = os.environ.get(CONFIG_ENV)
    return PipelineConfig.from_file(path) if path else PipelineConfig.from_dict(compiled_fields)


def _component_scoped_names(driver_class: type) -> type:
    """`driver_class`, naming each output artifact `<component id>.<output>:<run id>`.

    AirflowDagRunner runs TFX's legacy launcher, whose driver names an output `<output>:<run id>`,
    and MLMD keeps names unique per artifact type: the catalog's StatisticsGen and the
    examples' StatisticsGen then collide, and the second fails with AlreadyExistsError.
    """

    class ComponentScoped(driver_class):  # type: ignore[misc, valid-type]
        def _prepare_output_artifacts(
            self, input_artifacts, output_dict, exec_properties, execution_id, pipeline_info, component_info
        ):
            prepared = super()._prepare_output_artifacts(
                input_artifacts, output_dict, exec_properties, execution_id, pipeline_info, component_info
            )
            for output, artifacts in prepared.items():
                for artifact in artifacts:
                    artifact.name = f"{component_info.component_id}.{output}:{pipeline_info.run_id}"
            return prepared

    ComponentScoped.__name__ = ComponentScoped.__qualname__ = f"ComponentScoped{driver_class.__name__}"
    return ComponentScoped


def build_dag(config: PipelineConfig) -> Any:
    """An airflow.models.DAG with one task per component, with the pipeline's edges."""
    from tfx import v1 as tfx
    from tfx.orchestration.airflow.airflow_dag_runner import AirflowDagRunner, AirflowPipelineConfig

    share_code_with_beam_workers()
    os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
    # The DAG's id is the pipeline's name.
    dag_config = {
        "schedule_interval": config.retrain_schedule or None,
        "start_date": START_DATE,
        "catchup": False,
    }
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    pipeline = create_pipeline(config, metadata)
    for component in pipeline.components:
        if hasattr(component, "driver_class"):  # a Resolver has none
            component.driver_class = _component_scoped_names(component.driver_class)
    return AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config=dag_config)).run(pipeline)


def dag_file_source(fields: Mapping[str, Any]) -> str:
    """A DAG file for Airflow's dags folder that builds the DAG from `fields` (PipelineConfig's)."""
    PipelineConfig.from_dict(fields)  # fail here, not in Airflow's parser
    return f'''"""Session recommender DAG: written by `python -m tfx_pipeline.compile --orchestrator airflow`.

${CONFIG_ENV}, if set, names a JSON file of PipelineConfig fields used instead of these.
"""
from tfx_pipeline.runners.airflow import build_dag, config_for_dag

COMPILED_FIELDS = {pprint.pformat(dict(fields))}
DAG = build_dag(config_for_dag(COMPILED_FIELDS))
'''
