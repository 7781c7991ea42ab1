"""Fixtures for reader tests: they need the shared data sets, and skip without them."""

from __future__ import annotations

import gzip
import os

import pytest

from components.readers import shared_data_dir


@pytest.fixture(scope="session")
def shared_dir() -> str:
    path = shared_data_dir()
    if not os.path.isdir(os.path.join(path, "diginetica")) or not os.path.isdir(os.path.join(path, "amazon-beauty")):
        pytest.skip(f"shared data sets not found under {path} (set SHARED_DATA_DIR)")
    return path


def head_lines(src: str, n: int) -> list[str]:
    """The first n lines of a gzipped text file, newlines kept."""
    with gzip.open(src, "rt", encoding="utf-8", newline="") as handle:
        return [line for _, line in zip(range(n), handle)]


def write_gz(path: str, lines: list[str]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)
    return path
