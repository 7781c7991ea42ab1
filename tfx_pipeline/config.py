"""One dataclass of every pipeline knob: data, outputs, ingest, model, gates, Beam, orchestration.

Defaults run the embedded data set from the repo; point `data_dir` (and the file
patterns) at your own contract files to run on them. A JSON file with the same fields
(nested `ingest` for the ExampleGen) overrides the defaults.

Example:
    >>> config = PipelineConfig.from_dict({"data_dir": "/data/shop", "ingest": {"test_days": 3}})
    >>> config.ingest.test_days, config.pipeline_root.endswith("session-recommender")
    (3, True)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

from components.session_example_gen.config import IngestConfig
from contract.config import from_fields
from model.config import EvaluationConfig, ModelConfig, PreprocessingConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(REPO_ROOT, "data", "default")
DEFAULT_OUTPUT_DIR = os.path.join(REPO_ROOT, "outputs")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    pipeline_name: str = "session-recommender"
    # Contract files: `clicks_pattern` and `catalog_pattern` are globs under `data_dir`;
    # `{SPAN}` in a pattern selects the newest span (e.g. one folder per day).
    data_dir: str = DEFAULT_DATA_DIR
    clicks_pattern: str = "clicks*"
    catalog_pattern: str = "catalog*"
    # Artifacts, the MLMD sqlite file and run summaries go under here.
    output_dir: str = DEFAULT_OUTPUT_DIR
    ingest: IngestConfig = IngestConfig()
    preprocessing: PreprocessingConfig = PreprocessingConfig(category_levels=4)
    # The variant and its knobs (model/config.py); `{"variant": "HierSRec", ...}` in JSON.
    model: ModelConfig = ModelConfig.preset("M2TRec", epochs=8)
    # Caps on training and evaluation steps (0: whole epochs, early stopping decides).
    train_steps: int = 0
    eval_steps: int = 0
    # The Evaluator's gates: absolute floors and no regression against the last blessed model.
    evaluation: EvaluationConfig = EvaluationConfig()
    # Blessed models are pushed to `<serving_dir>/<serving_model_name>/<version>/` (TF Serving's
    # layout); an empty serving_dir means `<output_dir>/serving`.
    serving_model_name: str = "session_recommender"
    serving_dir: str = ""
    # The one source of Beam arguments, passed to every Beam-based component (ExampleGen,
    # StatisticsGen, Transform, Evaluator) by every runner. Empty: DirectRunner in memory;
    # `--direct_running_mode=multi_processing --direct_num_workers=4` uses 4 local processes;
    # `--runner=DataflowRunner|FlinkRunner|SparkRunner ...` scales out (README, "Running on a cluster").
    beam_pipeline_args: tuple[str, ...] = ()
    enable_cache: bool = True
    # Start the Trainer from the last blessed model's weights, remapped to today's vocabularies
    # (model/warm_start.py), instead of from scratch; the Evaluator compares against that model.
    warm_start: bool = False
    # --- Beyond this machine (tfx_pipeline/compile.py) ---
    # The pipeline image (Dockerfile) that Kubeflow's pods and Airflow's workers run.
    container_image: str = "session-recommender:latest"
    # Artifacts go under `<artifact_root>/<pipeline_name>`; empty: `<output_dir>/pipelines`. On a
    # cluster this must be storage every worker sees (`gs://bucket/pipelines`, `s3://...`).
    artifact_root: str = ""
    # The MLMD sqlite file of the local and Airflow runners; empty: under `<output_dir>/metadata`.
    metadata_sqlite: str = ""
    # Airflow's schedule for retraining (cron or a preset such as "@daily"); empty: on trigger only.
    retrain_schedule: str = ""

    def __post_init__(self) -> None:
        # A model reading more items than the ExampleGen keeps wastes its width; fewer, it
        # would train on prefixes other than those it is evaluated and served with.
        if self.ingest.max_prefix_length != self.model.max_prefix_length:
            raise ValueError(
                f"max_prefix_length: the ExampleGen keeps {self.ingest.max_prefix_length} items, the model reads "
                f"{self.model.max_prefix_length}; set both (ingest and model) to the same value"
            )

    @property
    def serving_base(self) -> str:
        """The directory a model server watches: versions appear under it."""
        return os.path.join(self.serving_dir or os.path.join(self.output_dir, "serving"), self.serving_model_name)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.artifact_root or os.path.join(self.output_dir, "pipelines"), self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        return self.metadata_sqlite or os.path.join(self.output_dir, "metadata", self.pipeline_name, "metadata.db")

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> PipelineConfig:
        """The config from a dict (a JSON file), nested configs included; an unknown key at any level is an error."""
        fields = dict(fields)
        nested = {"ingest": IngestConfig, "preprocessing": PreprocessingConfig, "evaluation": EvaluationConfig}
        for name, config_class in nested.items():
            if name in fields:
                fields[name] = from_fields(config_class, fields[name])
        if "model" in fields:
            fields["model"] = ModelConfig.from_dict(fields["model"])
        return from_fields(cls, fields)

    @classmethod
    def from_file(cls, path: str) -> PipelineConfig:
        with open(path) as f:
            return cls.from_dict(json.load(f))
