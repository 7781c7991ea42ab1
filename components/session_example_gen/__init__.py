"""The session ExampleGen: sessions -> prefix/next-item examples, time splits, bad-row report.

`IngestConfig` imports light; the component (TFX, Beam) is imported on first use, so a
config needs no TFX (PEP 562's module `__getattr__`).
"""

from __future__ import annotations

import importlib
from typing import Any

from components.session_example_gen.config import IngestConfig

_FROM_COMPONENT = ("IngestReport", "SessionExampleGen")
__all__ = ["IngestConfig", "IngestReport", "SessionExampleGen"]


def __getattr__(name: str) -> Any:
    if name in _FROM_COMPONENT:
        return getattr(importlib.import_module("components.session_example_gen.component"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
