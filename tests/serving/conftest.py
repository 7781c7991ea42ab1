"""Fixtures for serving tests: the small exported model of tests/model, laid out as TF
Serving expects it, `<base_path>/<model_name>/1`, with warm-up requests.

`exported_model` (session-scoped) copies tests/model's `exported` SavedModel (a SMALL
M2TRec trained for a few steps) to version 1 of MODEL_NAME and writes its warm-up file;
it holds the base path, the version's directory and a few test sessions (lists of known
item ids). Tests that change the directory (version swaps) copy it into their own base
path first. `running` (session-scoped) is the server over it, on a free loopback port.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest

from model.warmup import write_warmup_requests
from serving.server import RecommenderServer, ServerConfig
from serving.versions import VersionManager

MODEL_NAME = "recommender"
TOP_K = 20  # tests/model's exported model answers the top 20


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    base_path: str
    version_dir: str
    sessions: list[list[str]]  # test sessions, every id in the catalog


@pytest.fixture(scope="session")
def exported_model(exported, tmp_path_factory) -> ExportedModel:
    base_path = str(tmp_path_factory.mktemp("models"))
    version_dir = os.path.join(base_path, MODEL_NAME, "1")
    shutil.copytree(exported.export_dir, version_dir)
    write_warmup_requests(version_dir, MODEL_NAME, exported.sessions[:3])
    return ExportedModel(base_path, version_dir, exported.sessions)


@dataclasses.dataclass(frozen=True)
class Running:
    versions: VersionManager
    server: RecommenderServer
    target: str


@pytest.fixture(scope="session")
def running(exported_model) -> Running:
    """The server on a free loopback port, serving version 1 (no polling: nothing changes)."""
    versions = VersionManager(exported_model.base_path, MODEL_NAME, poll_s=3600).start()
    server = RecommenderServer(versions, ServerConfig(port=0))
    port = server.start()
    yield Running(versions, server, f"127.0.0.1:{port}")
    server.stop(grace_s=1)
    versions.stop()
