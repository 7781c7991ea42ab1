"""Speed, memory and accuracy measurements; each script prints a table and writes JSON to results/."""

import os

from model.cpu_allocator import ALLOCATOR_ENV, use_pooling_cpu_allocator

# The caller's own allocator choice (None: none), for processes that must run as they would
# outside the benchmarks: the serving benchmark's servers.
CALLER_ALLOCATOR = os.environ.get(ALLOCATOR_ENV)
# Before any benchmark's first tensor; the comparison's per-row processes inherit it.
use_pooling_cpu_allocator()
