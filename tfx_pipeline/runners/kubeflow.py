"""Compiles the pipeline for Kubeflow Pipelines v2: a pipeline-spec JSON to submit.

Every component runs in `config.container_image` (the Dockerfile's image), artifacts go to
`config.pipeline_root` (set `artifact_root` to object storage, e.g. gs://bucket/pipelines),
and `config.beam_pipeline_args` reach every Beam-based component. KFP keeps its own MLMD.
Needs the `kfp` extra, in `.venv-kfp` (`scripts/setup.sh kfp`):

    .venv-kfp/bin/python -m tfx_pipeline.compile --orchestrator kubeflow --config cluster.json --out pipeline.json
    # then, with the kfp client:  kfp.Client(host=...).create_run_from_pipeline_package("pipeline.json")
"""

from __future__ import annotations

import os
from typing import Any

from tfx import v1 as tfx

from tfx_pipeline.config import PipelineConfig
from tfx_pipeline.pipeline import create_pipeline


def compile_pipeline(config: PipelineConfig, output_path: str) -> dict[str, Any]:
    """Writes the pipeline spec to `output_path` (JSON) and returns it."""
    if not hasattr(tfx.orchestration.experimental, "KubeflowV2DagRunner"):
        # TFX leaves the name out, silently, when kfp is not installed.
        raise RuntimeError(
            "KubeflowV2DagRunner needs the kfp extra: run scripts/setup.sh kfp, then use .venv-kfp/bin/python"
        )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=config.container_image),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path),
    )
    return runner.run(create_pipeline(config), write_out=True)
