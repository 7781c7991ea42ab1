"""TensorFlow's pooling CPU allocator, for the processes that train and evaluate.

TensorFlow allocates a CPU tensor with the C library's malloc by default, and glibc serves
every block over 32 MB with a fresh `mmap`, unmapped again when freed. A catalog-wide tensor
is such a block (Diginetica's `[512, 43097]` logits: 88 MB), so every validation and test
batch page-faults each of its intermediates in anew: on the 2-core AVX2 machine one
elementwise pass over it took 50-60 ms with 21,551 page faults, and 14 ms with 12 under
TensorFlow's BFC allocator (the pooling allocator it uses on GPUs), which keeps freed
memory for the next tensor. There the scoring GEMM went from 35 to 100 GFLOP/s, and two
epochs of M2TRec_hybrid with validation and the test ranking from 500 s to 402 s, at
equal losses (README, "Stop 43"). Its cost: memory stays at the process's peak (+8%
peak RSS in that run), which suits a training job; the gRPC server (`serving/`) does not
ask for it (the local runner's closing demo serves from the runner's own, pooled process).

`TF_CPU_ALLOCATOR_USE_BFC` is read when TensorFlow makes its CPU allocator, at the first
tensor, so the entry points call `use_pooling_cpu_allocator` before any TensorFlow work
(importing TensorFlow is early enough); containers set it in their image.

Example:
    >>> os.environ[ALLOCATOR_ENV] = "false"  # the environment's choice wins
    >>> use_pooling_cpu_allocator()
    >>> cpu_allocator()
    'malloc'
    >>> del os.environ[ALLOCATOR_ENV]
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ALLOCATOR_ENV = "TF_CPU_ALLOCATOR_USE_BFC"


def use_pooling_cpu_allocator() -> None:
    """Asks TensorFlow for its BFC allocator on CPU, unless the environment already chose."""
    os.environ.setdefault(ALLOCATOR_ENV, "true")


def cpu_allocator(environ: Mapping[str, str] = os.environ) -> str:
    """Which CPU allocator `environ` (default: this process's) asks TensorFlow for: "bfc" or "malloc" (for benchmark records)."""
    return "bfc" if environ.get(ALLOCATOR_ENV, "").lower() in ("true", "1") else "malloc"
