"""Runners: local (LocalDagRunner), kubeflow (a KFP v2 pipeline spec), airflow (a DAG file).

All run the one definition, tfx_pipeline/pipeline.py::create_pipeline; `python -m
tfx_pipeline.compile` writes the Kubeflow spec or the Airflow DAG file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from model.cpu_allocator import use_pooling_cpu_allocator
from tfx_pipeline.config import REPO_ROOT

# Before the runner's first tensor: its Trainer and Evaluator pool TensorFlow's CPU memory.
use_pooling_cpu_allocator()

# What TensorFlow's C++ side prints while it is imported on a machine without a GPU (at ERROR
# level, so TF_CPP_MIN_LOG_LEVEL=2 keeps it): CUDA plugins registered twice, no driver, no
# TensorRT, and the CPU instructions it was not built for. None of it is about this run.
TF_IMPORT_NOISE = re.compile(
    r"Unable to register cu(FFT|DNN|BLAS) factory|Could not find cuda drivers|TF-TRT Warning|"
    r"cpu_feature_guard|To enable the following instructions"
)


@contextlib.contextmanager
def native_stderr_without(noise: re.Pattern[str]) -> Iterator[None]:
    """Captures what is written to file descriptor 2 (native code included) inside the block,
    then writes back every line that `noise` does not match: nothing else is lost, and an
    error raised inside the block still shows what was printed before it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line for line in captured.read().decode(errors="replace").splitlines(True) if not noise.search(line)
            ]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def share_code_with_beam_workers() -> None:
    """Puts the repo on PYTHONPATH, so Beam's `multi_processing` workers import its modules.

    Those workers are fresh interpreters: they inherit the environment, not `sys.path`.
    """
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if REPO_ROOT not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([REPO_ROOT, *paths])
