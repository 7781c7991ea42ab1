"""The local runner's console: known noise is dropped, everything else is kept."""

import logging
import subprocess
import sys

from tfx_pipeline.runners import TF_IMPORT_NOISE, local

SCRIPT = """
import os, re, sys
from tfx_pipeline.runners import native_stderr_without
try:
    with native_stderr_without(re.compile("benign")):
        os.write(2, b"E cuda.cc] benign: plugin registered twice\\n")
        os.write(2, b"E kernel.cc] a real native error\\n")
        print("python's own stderr", file=sys.stderr)
        raise RuntimeError("the import failed")
except RuntimeError as error:
    print(f"caught: {error}", file=sys.stderr)
"""


def test_native_stderr_keeps_every_line_but_the_noise_even_when_the_block_raises():
    stderr = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stderr
    assert stderr.splitlines() == [
        "E kernel.cc] a real native error",
        "python's own stderr",
        "caught: the import failed",
    ]


def test_tensorflows_import_lines_on_a_cpu_machine_are_the_known_noise():
    lines = [
        "2026-12-04 18:04:43.968240: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] Unable to "
        "register cuFFT factory: Attempting to register factory for plugin cuFFT when one has already been registered",
        "2026-12-04 17:35:04.847320: I external/local_tsl/tsl/cuda/cudart_stub.cc:32] Could not find cuda drivers on "
        "your machine, GPU will not be used.",
    ]
    assert all(TF_IMPORT_NOISE.search(line) for line in lines)
    assert not TF_IMPORT_NOISE.search("E tensorflow/core/framework/op_kernel.cc] OOM when allocating tensor")


def _shown(message: str, level: int = logging.WARNING) -> bool:
    record = logging.LogRecord("absl", level, __file__, 1, message, None, None)
    return local._ProgressOnly().filter(record)


def test_the_console_shows_progress_and_real_warnings_not_the_known_noise():
    assert _shown("Component Transform is running.", logging.INFO)
    assert not _shown("Transform: analyzing 3 features", logging.INFO)
    assert _shown("Evaluator: the model was not blessed")
    for noise in (
        "ArtifactQuery.property_predicate is not supported.",
        "Not using the in-place Transform because the following features require analyzing: ('brand',)",
        "Tables initialized inside a tf.function  will be re-initialized on every invocation of the function.",
    ):
        assert not _shown(noise)
