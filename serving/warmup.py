"""Warm-up requests, replayed when a version loads, as TF Serving does.

`model.warmup` writes them into the version directory
(`<version>/assets.extra/tf_serving_warmup_requests`, a TFRecord of `PredictionLog`s);
`serving.versions` replays them before it marks the version AVAILABLE.

Usage:

    read_warmup_requests("/models/recommender/7")  # -> [PredictRequest, PredictRequest]
"""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from contract.model_api import WARMUP_FILE


def read_warmup_requests(saved_model_dir: str) -> list[predict_pb2.PredictRequest]:
    """The Predict requests of the warm-up file; none when there is no file.

    Raises ValueError for a record that is not a Predict log (TF Serving also replays
    Classify, Regress and MultiInference logs; this server answers only Predict).
    """
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    requests = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise ValueError(f"{path}: only predict_log warm-up records are supported, got {kind}")
        requests.append(log.predict_log.request)
    return requests
