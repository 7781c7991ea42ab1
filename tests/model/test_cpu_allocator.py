import os
import subprocess
import sys

import pytest

from model.cpu_allocator import ALLOCATOR_ENV, cpu_allocator, use_pooling_cpu_allocator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_pooling_allocator_is_asked_for_unless_the_environment_chose(monkeypatch):
    monkeypatch.delenv(ALLOCATOR_ENV, raising=False)
    assert cpu_allocator() == "malloc"
    use_pooling_cpu_allocator()
    assert os.environ[ALLOCATOR_ENV] == "true" and cpu_allocator() == "bfc"
    monkeypatch.setenv(ALLOCATOR_ENV, "false")
    use_pooling_cpu_allocator()
    assert cpu_allocator() == "malloc"


# Five elementwise passes over an 88 MB tensor, as a validation batch makes them; the minor page
# faults they cost. Under malloc each output is a fresh mmap, faulted in page by page (~21,500
# faults a pass, ~107,000 for five); pooled, the memory is reused.
_FAULTS = """
import resource
import {entry}
import tensorflow as tf
x = tf.random.normal([512, 43097])
double = tf.function(lambda x: x * 2.0)
double(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    double(x).numpy()[:0]
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.parametrize("entry", ["benchmarks", "tfx_pipeline.runners"])
def test_entry_points_pool_tensorflows_cpu_memory(entry):
    env = {key: value for key, value in os.environ.items() if key != ALLOCATOR_ENV}
    result = subprocess.run(
        [sys.executable, "-c", _FAULTS.format(entry=entry)],
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    # Reused memory: the numpy views and TF's bookkeeping fault a few pages, not the 88 MB outputs.
    assert int(result.stdout.split()[-1]) < 10_000, result.stdout
