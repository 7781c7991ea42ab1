"""The session ExampleGen: sessions -> prefix/next-item examples, time splits, bad-row report."""

from components.session_example_gen.component import IngestReport, SessionExampleGen
from components.session_example_gen.config import IngestConfig

__all__ = ["IngestConfig", "IngestReport", "SessionExampleGen"]
