"""Warm-up requests, written into a version directory beside the SavedModel.

The first calls of a freshly loaded SavedModel are slow (TensorFlow initializes kernels,
tables and thread pools on first use): without warm-up the first clients of every new
version pay for it. TF Serving replays `<version>/assets.extra/tf_serving_warmup_requests`
(a TFRecord of `PredictionLog`s) before it marks a version AVAILABLE, and so does
`serving.versions`. A failed warm-up request fails the load, in both: give sessions of
items the exported catalog holds.

Usage (the Trainer, or whoever writes a version, before it becomes visible):

    write_warmup_requests("/models/recommender/7", "recommender", [["100001", "100002"], ["100003"]])
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from contract.model_api import ITEM_IDS, SERVING_DEFAULT, WARMUP_FILE


def warmup_requests(model_name: str, sessions: list[list[str]]) -> list[predict_pb2.PredictRequest]:
    """One `serving_default` request per session (batch 1), as a client would send it."""
    if not sessions or not all(sessions):
        raise ValueError("warm-up needs at least one session, and no empty session (the model refuses those)")
    requests = []
    for session in sessions:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = SERVING_DEFAULT
        items = np.array([[s.encode() for s in session]], dtype=object)
        request.inputs[ITEM_IDS].CopyFrom(tf.make_tensor_proto(items, dtype=tf.string))
        requests.append(request)
    return requests


def write_warmup_requests(saved_model_dir: str, model_name: str, sessions: list[list[str]]) -> str:
    """Writes the warm-up file into `saved_model_dir` and returns its path."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for request in warmup_requests(model_name, sessions):
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
