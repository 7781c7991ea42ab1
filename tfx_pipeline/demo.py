"""The end of the main command: serve the pushed model over gRPC and ask it for one recommendation.

Starts the TF Serving-protocol server (serving/) on a free loopback port over the
directory the Pusher writes, sends one test session through the gRPC client, prints the
answer with titles and categories from the catalog, and stops the server.

    python -m tfx_pipeline.demo   # after python -m tfx_pipeline.runners.local
"""

from __future__ import annotations

import glob
import os
import sys

import contract
from model.inputs import read_prefixes
from serving.cli import format_recommendations, read_catalog
from serving.client import RecommenderClient
from serving.server import RecommenderServer, ServerConfig
from serving.versions import VersionManager, find_versions
from tfx_pipeline.config import PipelineConfig
from tfx_pipeline.summary import latest_uri


def _test_session(config: PipelineConfig) -> list[str]:
    """The prefix of the first test example of the newest ingest."""
    examples = latest_uri(config, "SessionExampleGen", "Examples", split=contract.TEST)
    sessions = read_prefixes(os.path.join(examples, f"Split-{contract.TEST}", "*"), 1) if examples else []
    if not sessions:
        raise RuntimeError("no test session found: run the pipeline first")
    return sessions[0]


def _catalog_file(config: PipelineConfig) -> str | None:
    matches = sorted(glob.glob(os.path.join(config.data_dir, config.catalog_pattern)))
    return matches[0] if matches else None


def serve_and_recommend(config: PipelineConfig) -> str:
    """Serves the newest pushed version, asks for one recommendation, returns it printed."""
    if not find_versions(config.serving_base):
        return (
            f"No model has been pushed to {config.serving_base}: the Evaluator did not bless one "
            "(see its verdict in the summary)."
        )
    versions = VersionManager(os.path.dirname(config.serving_base), config.serving_model_name).start()
    server = RecommenderServer(versions, ServerConfig(port=0))
    port = server.start()
    try:
        session = _test_session(config)
        client = RecommenderClient(f"127.0.0.1:{port}", model_name=config.serving_model_name)
        (answer,) = client.recommend(session)
        catalog_file = _catalog_file(config)
        catalog = read_catalog(catalog_file) if catalog_file else None
        return (
            f"Served version {versions.current.version} of '{config.serving_model_name}' over gRPC on 127.0.0.1:{port}.\n"
            f"Session ({len(session)} clicks, oldest first): {' '.join(session)}\n\n"
            + format_recommendations(answer, catalog)
        )
    finally:
        server.stop()
        versions.stop()


def main() -> None:
    print(serve_and_recommend(PipelineConfig()))


if __name__ == "__main__":
    main()
    sys.exit(0)
