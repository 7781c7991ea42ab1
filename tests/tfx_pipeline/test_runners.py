"""The cluster runners: the Kubeflow v2 spec, the Airflow DAG, and Beam beyond one process.

The Kubeflow and Airflow checks run in `.venv-kfp` and `.venv-airflow` (their extras cannot
share `.venv`; `make test` creates them), in subprocesses that compile through the CLI;
what they produce is compared with the pipeline built here. The retraining loop runs under
Airflow itself (`airflow dags test`), twice, while this process serves what it pushes.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import time

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx.orchestration import data_types
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration.pipeline import RunOptions

import contract
from contract.model_api import WARM_START_FILE
from model import features
from model.inputs import read_prefixes
from serving.server import RecommenderServer, ServerConfig
from serving.versions import VersionManager, find_versions
from tests.serving.asking import AskingClients
from tfx_pipeline import summary
from tfx_pipeline.config import REPO_ROOT, PipelineConfig
from tfx_pipeline.pipeline import create_pipeline
from tfx_pipeline.runners import airflow as airflow_runner
from tfx_pipeline.runners import share_code_with_beam_workers

CLUSTER = PipelineConfig(
    container_image="registry.example.com/session-recommender:test",
    artifact_root="gs://bucket/pipelines",
    warm_start=True,
    retrain_schedule="@daily",
    beam_pipeline_args=("--runner=DataflowRunner", "--project=my-project", "--region=europe-west1"),
)
DAGBAG_IMPORT_TIMEOUT_S = 300  # README, "Running on a cluster", says to raise it as much
# Kubeflow v2 takes custom artifact types only with a "<namespace>.<Name>" TYPE_NAME.
_KFP_TYPE_NAME = re.compile(r"^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$")


def _run_in(env: str, args: list[str], tmp_path, cwd: str = REPO_ROOT) -> str:
    python = os.path.join(REPO_ROOT, env, "bin", "python")
    if not os.path.exists(python):
        pytest.fail(f"{env} is missing: `make setup-orchestrators` (or scripts/setup.sh kfp airflow) creates it")
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        # Importing TFX to build the DAG takes longer than Airflow's default 30 s on two cores.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": str(DAGBAG_IMPORT_TIMEOUT_S),
    }
    done = subprocess.run([python, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
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


def test_the_airflow_runner_gives_each_components_outputs_names_of_their_own(tmp_path):
    """Both StatisticsGens write `statistics`: under the legacy launcher their MLMD names collided."""
    pipeline = create_pipeline(CLUSTER)
    run = data_types.PipelineInfo(CLUSTER.pipeline_name, str(tmp_path), run_id="manual__2025-01-02")
    names = set()
    for component in pipeline.components:
        if component.id in ("StatisticsGen", "CatalogStatisticsGen"):
            driver = airflow_runner._component_scoped_names(component.driver_class)(metadata_handle=None)
            info = data_types.ComponentInfo(type(component).__name__, component.id, run)
            prepared = driver._prepare_output_artifacts({}, component.outputs, {}, 1, run, info)
            names |= {artifact.name for artifacts in prepared.values() for artifact in artifacts}
    assert names == {f"{c}.statistics:manual__2025-01-02" for c in ("StatisticsGen", "CatalogStatisticsGen")}


def test_no_component_parameter_takes_a_name_the_legacy_launcher_reserves():
    """AirflowDagRunner's launcher refuses an execution property named like its own (pipeline_name, run_id...)."""
    reserved = tfx_metadata._EXECUTION_TYPE_RESERVED_KEYS
    for component in create_pipeline(CLUSTER).components:
        assert not reserved & set(getattr(component, "exec_properties", {})), component.id


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


class _ServedAlong:
    """A server polling `config`'s serving directory, and one client asking it all along."""

    def __init__(self, config: PipelineConfig, session: list[str]) -> None:
        self._manager = VersionManager(
            os.path.dirname(config.serving_base), config.serving_model_name, poll_s=0.5
        ).start()
        self._server = RecommenderServer(self._manager, ServerConfig(port=0))
        target = f"127.0.0.1:{self._server.start()}"
        # Slowly: the training run beside it needs the two cores.
        self.client = AskingClients(target, config.serving_model_name, [session], pause_s=0.05, timeout_s=60)
        self.versions = self.client.versions[0]

    def stop(self) -> None:
        self.client.stop()
        self._server.stop(grace_s=1)
        self._manager.stop()


@pytest.mark.pipeline
def test_the_retraining_loop_runs_on_airflow_and_its_second_model_is_served_without_a_failed_request(tmp_path):
    """Two daily runs of the compiled DAG under `airflow dags test`: the first pushes a model, the
    second warm-starts from it, is gated against it and pushed, and a server that was serving the
    first answers from the second with no failed request."""
    fields = {
        "output_dir": str(tmp_path / "outputs"),
        "warm_start": True,
        "retrain_schedule": "@daily",
        "model": {"variant": "M2TRec", "num_layers": 1, "num_heads": 2, "item_dim": 32, "ff_dim": 64, "epochs": 1},
        "train_steps": 30,
        "eval_steps": 10,
        # Gated against the first model, but tolerantly, so that the swap below happens
        # (test_pipeline.py has a model the gate refuses).
        "evaluation": {"max_regression": 1.0},
    }
    config = PipelineConfig.from_dict(fields)
    config_path = tmp_path / "daily.json"
    config_path.write_text(json.dumps(fields))
    dag_file = str(tmp_path / "dags" / "session_recommender.py")
    compile_dag = ["-m", "tfx_pipeline.compile", "--orchestrator", "airflow", "--config", str(config_path)]
    _run_in(".venv-airflow", [*compile_dag, "--out", dag_file], tmp_path)

    def run_airflow(*args: str) -> None:  # not from the repo's root: a worker imports the project as installed
        _run_in(".venv-airflow", ["-m", "airflow", *args], tmp_path, cwd=str(tmp_path))

    def warm_start_report() -> dict:
        with open(os.path.join(summary.latest_uri(config, "SessionTrainer", "ModelRun"), WARM_START_FILE)) as f:
            return json.load(f)

    run_airflow("db", "migrate")
    run_airflow("dags", "test", config.pipeline_name, "2025-01-02")
    first = summary.summarize(config)
    assert "Gate: **BLESSED**" in first and "Pushed version" in first
    (first_version,) = find_versions(config.serving_base)
    assert "no model has been blessed yet" in warm_start_report()["from_scratch"]
    assert "candidate-vs-baseline.png" not in os.listdir(os.path.dirname(summary.report_page(config)))

    examples = summary.latest_uri(config, "SessionExampleGen", "Examples", split=contract.EVAL)
    session = read_prefixes(os.path.join(examples, f"Split-{contract.EVAL}", "*"), 1)[0]
    served = _ServedAlong(config, session)
    try:
        run_airflow("dags", "test", config.pipeline_name, "2025-01-03")
        assert "Gate: **BLESSED**" in summary.summarize(config)
        assert "candidate-vs-baseline.png" in os.listdir(os.path.dirname(summary.report_page(config)))  # gated vs 1st
        warm_start = warm_start_report()
        assert "from_scratch" not in warm_start and warm_start["copied"]
        versions = find_versions(config.serving_base)
        assert versions[0] == first_version and len(versions) == 2
        deadline = time.monotonic() + 120
        while not (served.versions and served.versions[-1] == versions[1]):
            assert time.monotonic() < deadline, "the server did not swap in the second model"
            time.sleep(0.2)
    finally:
        served.stop()
    assert not served.client.failures
    assert served.versions[0] == first_version and served.versions == sorted(served.versions)
