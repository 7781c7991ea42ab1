"""The cluster runners: the Kubeflow v2 spec, the Airflow DAG, and Beam beyond one process.

The Kubeflow and Airflow checks run in `.venv-kfp` and `.venv-airflow` (their extras cannot
share `.venv`; `make test` creates them), each in one subprocess that compiles through the
CLI; what they produce is compared with the pipeline built here.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx.orchestration.pipeline import RunOptions

import contract
from model import features
from tfx_pipeline.config import REPO_ROOT, PipelineConfig
from tfx_pipeline.pipeline import create_pipeline
from tfx_pipeline.runners import share_code_with_beam_workers

CLUSTER = PipelineConfig(
    container_image="registry.example.com/session-recommender:test",
    artifact_root="gs://bucket/pipelines",
    warm_start=True,
    retrain_schedule="@daily",
    beam_pipeline_args=("--runner=DataflowRunner", "--project=my-project", "--region=europe-west1"),
)
# Kubeflow v2 takes custom artifact types only with a "<namespace>.<Name>" TYPE_NAME.
_KFP_TYPE_NAME = re.compile(r"^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$")


def _run_in(env: str, args: list[str], tmp_path) -> str:
    python = os.path.join(REPO_ROOT, env, "bin", "python")
    if not os.path.exists(python):
        pytest.fail(f"{env} is missing: `make setup-orchestrators` (or scripts/setup.sh kfp airflow) creates it")
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    done = subprocess.run([python, *args], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _write_config(tmp_path, config: PipelineConfig, **fields) -> str:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "container_image": config.container_image,
                "artifact_root": config.artifact_root,
                "warm_start": config.warm_start,
                "retrain_schedule": config.retrain_schedule,
                "beam_pipeline_args": list(config.beam_pipeline_args),
                **fields,
            }
        )
    )
    return str(path)


def test_kubeflow_spec_has_every_component_with_its_inputs_outputs_and_image(tmp_path):
    pipeline = create_pipeline(CLUSTER)
    custom = {
        channel.type
        for c in pipeline.components
        for channel in [*c.inputs.values(), *c.outputs.values()]
        if not channel.type.__module__.startswith("tfx.")
    }
    unnamed = sorted(t.TYPE_NAME for t in custom if not _KFP_TYPE_NAME.fullmatch(t.TYPE_NAME))
    assert not unnamed, (
        f"Kubeflow v2 rejects custom artifact types {unnamed}: their TYPE_NAME needs a '<namespace>.' prefix"
    )
    spec_path = tmp_path / "pipeline.json"
    _run_in(
        ".venv-kfp",
        [
            "-m",
            "tfx_pipeline.compile",
            "--orchestrator",
            "kubeflow",
            "--config",
            _write_config(tmp_path, CLUSTER),
            "--out",
            str(spec_path),
        ],
        tmp_path,
    )
    spec = json.loads(spec_path.read_text())
    tasks, components = spec["pipelineSpec"]["root"]["dag"]["tasks"], spec["pipelineSpec"]["components"]
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    assert (
        spec["runtimeConfig"]["gcsOutputDirectory"]
        == CLUSTER.pipeline_root
        == "gs://bucket/pipelines/session-recommender"
    )
    for component in pipeline.components:
        if isinstance(component, tfx.dsl.Resolver):  # KFP resolves each channel in its own task
            assert {f"{component.id}-model-resolver", f"{component.id}-model-blessing-resolver"} <= set(tasks)
            continue
        definition = components[tasks[component.id]["componentRef"]["name"]]
        assert set(definition.get("inputDefinitions", {}).get("artifacts", {})) == set(component.inputs), component.id
        assert set(definition["outputDefinitions"]["artifacts"]) == set(component.outputs), component.id
        container = executors[definition["executorLabel"]]["container"]
        assert container["image"] == CLUSTER.container_image
        # Pipeline-level Beam args reach every component unchanged (those without Beam ignore them).
        assert container["args"][-len(CLUSTER.beam_pipeline_args) :] == list(CLUSTER.beam_pipeline_args)
    # warm_start: the Trainer starts from the model the resolver picks, the Evaluator's baseline too.
    for task, key in [("SessionTrainer", "base_model"), ("Evaluator", "baseline_model")]:
        producer = tasks[task]["inputs"]["artifacts"][key]["taskOutputArtifact"]["producerTask"]
        assert producer == "LatestBlessedModelResolver-model-resolver"


def test_airflow_dag_loads_in_a_dagbag_with_the_pipelines_tasks_and_edges(tmp_path):
    config_path = _write_config(tmp_path, CLUSTER, output_dir=str(tmp_path / "outputs"), artifact_root="")
    dags = tmp_path / "dags"
    dags.mkdir()
    script = f"""
import json, sys
from airflow.models import DagBag
from tfx_pipeline import compile
compile.main(["--orchestrator", "airflow", "--config", {config_path!r}, "--out", {str(dags / "session_recommender.py")!r}])
bag = DagBag(dag_folder={str(dags)!r}, include_examples=False)
print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dags": {{
    i: {{"tasks": sorted(t.task_id for t in d.tasks), "schedule": str(d.schedule_interval),
        "edges": sorted([t.task_id, x] for t in d.tasks for x in t.downstream_task_ids)}} for i, d in bag.dags.items()}}}}))
"""
    result = json.loads(_run_in(".venv-airflow", ["-c", script], tmp_path).strip().splitlines()[-1])
    assert result["errors"] == {}
    dag = result["dags"][CLUSTER.pipeline_name]
    pipeline = create_pipeline(CLUSTER)
    assert dag["tasks"] == sorted(c.id for c in pipeline.components)
    assert dag["edges"] == sorted([up.id, c.id] for c in pipeline.components for up in c.upstream_nodes)
    assert ["LatestBlessedModelResolver", "SessionTrainer"] in dag["edges"]  # warm start
    assert ["SessionTrainer", "Evaluator"] in dag["edges"] and ["Evaluator", "AtomicPusher"] in dag["edges"]
    assert dag["schedule"] == "@daily"


@pytest.mark.pipeline
def test_multi_processing_beam_runs_example_gen_and_transform_on_the_embedded_data(tmp_path, monkeypatch):
    config = PipelineConfig(
        output_dir=str(tmp_path),
        beam_pipeline_args=("--direct_running_mode=multi_processing", "--direct_num_workers=2"),
    )
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # restored after the test
    share_code_with_beam_workers()
    assert REPO_ROOT in os.environ["PYTHONPATH"].split(os.pathsep)
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(config, metadata), run_options=RunOptions(to_nodes=["Transform"])
    )

    def output(component: str, key: str) -> str:
        (uri,) = glob.glob(os.path.join(config.pipeline_root, component, key, "*"))
        return uri

    examples = output("SessionExampleGen", "examples")
    counts = {
        split: sum(
            1
            for _ in tf.data.TFRecordDataset(
                glob.glob(os.path.join(examples, f"Split-{split}", "*")), compression_type="GZIP"
            )
        )
        for split in contract.SPLITS
    }
    assert counts == {"train": 37_102, "eval": 5_969, "test": 5_738}  # as in memory (test_pipeline.py)
    transform = tft.TFTransformOutput(output("Transform", "transform_graph"))
    assert transform.vocabulary_size_by_name(features.vocabulary_name(features.BRAND)) > 1
    assert not glob.glob(os.path.join(config.pipeline_root, "SessionTrainer"))  # a partial run: up to Transform
