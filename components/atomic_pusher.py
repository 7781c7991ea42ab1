"""AtomicPusher: TFX's Pusher, but a version appears in TF Serving's layout all at once.

TFX's filesystem Pusher copies straight into `<base>/<version>/` (saved_model.pb last),
so a model server polling the directory can see a half-written version. This one copies
into `<base>/.tmp-<version>/` (TF Serving ignores names that are not numbers) and renames
it to `<base>/<version>/`, so a version is either absent or complete. Only blessed models
are pushed, as with TFX's Pusher.

Example:
    >>> pusher = AtomicPusher(model=trainer.outputs["model"],  # doctest: +SKIP
    ...     model_blessing=evaluator.outputs["blessing"],
    ...     push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
    ...         base_directory="/models/session_recommender")))
"""

from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
from tfx.components import Pusher
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

TEMP_PREFIX = ".tmp-"


def push_atomically(model_dir: str, base_directory: str, version: str) -> str:
    """Copies `model_dir` to `<base_directory>/<version>` through a temporary directory."""
    destination = os.path.join(base_directory, version)
    if fileio.exists(destination):
        raise FileExistsError(f"version {version} already exists under {base_directory}")
    temporary = os.path.join(base_directory, f"{TEMP_PREFIX}{version}")
    if fileio.exists(temporary):  # left over by a push that died half-way
        fileio.rmtree(temporary)
    fileio.makedirs(base_directory)
    io_utils.copy_dir(model_dir, temporary)
    fileio.rename(temporary, destination)
    return destination


def versions(base_directory: str) -> list[int]:
    """The version numbers under `base_directory`, oldest first (none if it does not exist)."""
    names = fileio.listdir(base_directory) if fileio.exists(base_directory) else []
    return sorted(int(name.strip("/")) for name in names if name.strip("/").isdigit())


def next_version(base_directory: str) -> str:
    """TF Serving serves the highest number: a Unix timestamp, bumped past any existing one."""
    return str(max([int(time.time()), *(v + 1 for v in versions(base_directory))]))


class Executor(pusher_executor.Executor):
    def Do(self, input_dict: dict[str, list[Any]], output_dict: dict[str, list[Any]], exec_properties: dict[str, Any]):
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], pusher_pb2.PushDestination()
        )
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("AtomicPusher pushes to a filesystem destination only")
        base_directory = destination.filesystem.base_directory
        version = next_version(base_directory)
        model_dir = self.GetModelPath(input_dict)
        serving_path = push_atomically(model_dir, base_directory, version)
        io_utils.copy_dir(model_dir, model_push.uri)  # archived with the artifact, as TFX's Pusher does
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        logging.info("Model pushed to %s", serving_path)


class AtomicPusher(Pusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
