"""What every benchmark shares: memory figures, environment facts and writing results."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from typing import Any

from model.cpu_allocator import cpu_allocator

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB


def rss_mb(pid: int) -> float:
    """Resident memory of running process `pid` now, in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_facts() -> dict[str, Any]:
    """The CPU's model and widest vector extension: timings differ about 3x between an AVX2 and an
    AVX512-BF16/AMX machine, so every result says which one it ran on."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    vector = next((name for name in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if name in flags), "other")
    return {
        "model": fields.get("model name", platform.processor() or "unknown"),
        "vector": vector,
        "bfloat16_native": bool(flags & {"avx512_bf16", "amx_bf16"}),
    }


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpu": cpu_facts(),
        "tf_cpu_allocator": cpu_allocator(),
    }


def write_result(name: str, result: dict[str, Any], results_dir: str = RESULTS_DIR) -> str:
    """Writes `<results_dir>/<name>.json` and returns its path."""
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, f"{name}.json")
    with open(path, "w") as f:
        json.dump({**result, "environment": environment()}, f, indent=2)
        f.write("\n")
    return path
