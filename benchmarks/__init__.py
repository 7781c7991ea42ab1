"""Speed, memory and accuracy measurements; each script prints a table and writes JSON to results/."""

from model.cpu_allocator import use_pooling_cpu_allocator

# Before any benchmark's first tensor; the comparison's per-row processes inherit it.
use_pooling_cpu_allocator()
