"""The one pipeline definition; runners (local, Kubeflow, Airflow) differ only in how they run it.

SessionExampleGen -> StatisticsGen -> SchemaGen                 (session examples)
                  -> catalog StatisticsGen -> SchemaGen -> Transform   (item metadata)
examples + catalog + transform graph -> SessionTrainer (run_fn in model/trainer.py)
model + test split + last blessed model -> Evaluator (TFMA, gates) -> AtomicPusher
everything above -> RunReport (the run's HTML page with plots)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

import contract
from components.atomic_pusher import AtomicPusher
from components.run_report import RunReport
from components.session_example_gen import SessionExampleGen
from components.session_trainer import SessionTrainer
from contract.model_api import MODEL_CONFIG, PREPROCESSING_CONFIG, SERVING_MODEL_NAME, WARM_START
from model.evaluation import eval_config
from tfx_pipeline.config import REPO_ROOT, PipelineConfig

PREPROCESSING_FN = "model.preprocessing.preprocessing_fn"
RUN_FN = "model.trainer.run_fn"
# Packages whose code the Transform and Trainer steps run.
_CODE_PACKAGES = ("contract", "model", "components")
# Code under them that runs only after the model is trained (the run report): editing it must
# not re-run Transform and the Trainer.
_AFTER_TRAINING = (os.path.join("components", "run_report"),)


def code_fingerprint() -> str:
    """A hash of the model and component code.

    Transform and Trainer name their functions by module path, so TFX's cache key would not
    change when the code does; passing this in their custom_config makes it change.
    """
    digest = hashlib.sha256()
    for package in _CODE_PACKAGES:
        for root, _, files in sorted(os.walk(os.path.join(REPO_ROOT, package))):
            if os.path.relpath(root, REPO_ROOT).startswith(_AFTER_TRAINING):
                continue
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, REPO_ROOT).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()[:16]


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
) -> tfx.dsl.Pipeline:
    code_version = code_fingerprint()
    example_gen = SessionExampleGen(
        input_base=config.data_dir,
        clicks_pattern=config.clicks_pattern,
        catalog_pattern=config.catalog_pattern,
        config=config.ingest,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False)
    catalog_statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["catalog"]).with_id(
        "CatalogStatisticsGen"
    )
    # Every catalog feature stays VarLen: a field may be missing for some items.
    catalog_schema_gen = tfx.components.SchemaGen(
        statistics=catalog_statistics_gen.outputs["statistics"], infer_feature_shape=False
    ).with_id("CatalogSchemaGen")
    transform = tfx.components.Transform(
        examples=example_gen.outputs["catalog"],
        schema=catalog_schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={PREPROCESSING_CONFIG: dataclasses.asdict(config.preprocessing), "code_version": code_version},
        splits_config=tfx.proto.SplitsConfig(analyze=[contract.CATALOG_SPLIT]),
        materialize=False,
        disable_statistics=True,  # CatalogStatisticsGen has them
    )
    # The last blessed model: the Evaluator's baseline (a candidate may not be worse) and,
    # with warm_start, the Trainer's starting point.
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("LatestBlessedModelResolver")
    trainer = SessionTrainer(
        examples=example_gen.outputs["examples"],
        catalog=example_gen.outputs["catalog"],
        transform_graph=transform.outputs["transform_graph"],
        run_fn=RUN_FN,
        train_args=tfx.proto.TrainArgs(splits=[contract.TRAIN], num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=[contract.EVAL], num_steps=config.eval_steps),
        custom_config={
            MODEL_CONFIG: dataclasses.asdict(config.model),
            PREPROCESSING_CONFIG: dataclasses.asdict(config.preprocessing),
            "code_version": code_version,
            SERVING_MODEL_NAME: config.serving_model_name,
            WARM_START: config.warm_start,
        },
        base_model=baseline.outputs["model"] if config.warm_start else None,
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        example_splits=[config.evaluation.split],
        eval_config=eval_config(config.evaluation, config.preprocessing.category_levels, config.model.top_categories),
    )
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_base)
        ),
    )
    # Last: the run's page (data, training, evaluation vs the baseline, gate, push, example sessions).
    run_report = RunReport(
        model=trainer.outputs["model"],
        pipeline_name=config.pipeline_name,
        model_variant=config.model.variant,
        ingest_report=example_gen.outputs["ingest_report"],
        statistics=statistics_gen.outputs["statistics"],
        examples=example_gen.outputs["examples"],
        catalog=example_gen.outputs["catalog"],
        model_run=trainer.outputs["model_run"],
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        baseline_model=baseline.outputs["model"],
        pushed_model=pusher.outputs["pushed_model"],
        split=config.evaluation.split,
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            catalog_statistics_gen,
            catalog_schema_gen,
            transform,
            trainer,
            baseline,
            evaluator,
            pusher,
            run_report,
        ],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
