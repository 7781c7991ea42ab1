"""What a catalog refresh needs from an exported model, kept inside its SavedModel.

A catalog refresh (`components/catalog_refresh.py`) encodes a new catalog with the model as
it was trained, from the served version alone: no training run, no pipeline artifacts. So
the export keeps, under `<version>/assets.extra/refresh/` (TF Serving reads nothing in
`assets.extra` but its warm-up file):

    training_setup.json   the TrainingSetup: model and preprocessing config
    transform_graph/      the Transform output the model trained with (its vocabularies)
    catalog.tfrecord.gz   the raw catalog examples the exported item vectors came from
    sessions.json         validation sessions (item ids, oldest first): a refresh compares the
                          new version's recommendations with the old one's on them

The weights are the SavedModel's own (`RecommenderModule.model_variables`, in
`model.variables` order).

Example:
    >>> write_refresh_assets(version_dir, setup, tft_output, catalog_examples, sessions)  # doctest: +SKIP
    >>> read_refresh_assets(version_dir).setup == setup                          # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable

import tensorflow as tf
import tensorflow_transform as tft

from model.config import TrainingSetup

REFRESH_DIR = os.path.join("assets.extra", "refresh")
SETUP_FILE = "training_setup.json"
TRANSFORM_DIR = "transform_graph"
CATALOG_FILE = "catalog.tfrecord.gz"
SESSIONS_FILE = "sessions.json"


@dataclasses.dataclass(frozen=True)
class RefreshAssets:
    setup: TrainingSetup
    tft_output: tft.TFTransformOutput
    catalog_examples: list[bytes]  # serialized raw catalog tf.Examples
    sessions: list[list[str]]


def _copy_tree(source: str, destination: str) -> None:
    for directory, _, files in tf.io.gfile.walk(source):
        target = os.path.join(destination, os.path.relpath(directory, source))
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(target, name), overwrite=True)


def write_refresh_assets(
    saved_model_dir: str,
    setup: TrainingSetup,
    tft_output: tft.TFTransformOutput,
    catalog_examples: Iterable[bytes],
    sessions: list[list[str]],
) -> str:
    """Writes the refresh assets into `saved_model_dir`; returns their directory."""
    directory = os.path.join(saved_model_dir, REFRESH_DIR)
    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(os.path.join(directory, SETUP_FILE), "w") as f:
        json.dump(setup.to_custom_config(), f, indent=2)
    _copy_tree(os.path.dirname(tft_output.transform_savedmodel_dir), os.path.join(directory, TRANSFORM_DIR))
    with tf.io.TFRecordWriter(os.path.join(directory, CATALOG_FILE), options="GZIP") as writer:
        for example in catalog_examples:
            writer.write(example)
    with tf.io.gfile.GFile(os.path.join(directory, SESSIONS_FILE), "w") as f:
        json.dump(sessions, f)
    return directory


def read_refresh_assets(saved_model_dir: str) -> RefreshAssets:
    """The assets `write_refresh_assets` wrote; FileNotFoundError, saying so, for a model without them."""
    directory = os.path.join(saved_model_dir, REFRESH_DIR)
    if not tf.io.gfile.exists(os.path.join(directory, SETUP_FILE)):
        raise FileNotFoundError(
            f"{saved_model_dir} has no {REFRESH_DIR}/: it was exported before catalog refresh existed, "
            "or not by the Trainer; retrain once to refresh its catalog"
        )
    with tf.io.gfile.GFile(os.path.join(directory, SETUP_FILE)) as f:
        setup = TrainingSetup.from_custom_config(json.load(f))
    with tf.io.gfile.GFile(os.path.join(directory, SESSIONS_FILE)) as f:
        sessions = json.load(f)
    records = tf.data.TFRecordDataset(os.path.join(directory, CATALOG_FILE), compression_type="GZIP")
    return RefreshAssets(
        setup,
        tft.TFTransformOutput(os.path.join(directory, TRANSFORM_DIR)),
        [record.numpy() for record in records],
        sessions,
    )
