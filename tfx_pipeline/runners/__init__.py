"""Runners: local (LocalDagRunner), kubeflow (a KFP v2 pipeline spec), airflow (a DAG file).

All run the one definition, tfx_pipeline/pipeline.py::create_pipeline; `python -m
tfx_pipeline.compile` writes the Kubeflow spec or the Airflow DAG file.
"""

from __future__ import annotations

import os

from tfx_pipeline.config import REPO_ROOT


def share_code_with_beam_workers() -> None:
    """Puts the repo on PYTHONPATH, so Beam's `multi_processing` workers import its modules.

    Those workers are fresh interpreters: they inherit the environment, not `sys.path`.
    """
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if REPO_ROOT not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([REPO_ROOT, *paths])
