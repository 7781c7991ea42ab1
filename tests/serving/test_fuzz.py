"""Thousands of randomly mutated valid requests, from a fixed seed: the server answers each cleanly.

Every answer is either a status a client can act on (never INTERNAL or UNKNOWN) or OK with
tensors whose values agree with their shapes and whose batch is the request's; afterwards
a valid request still succeeds. The mutations are what a buggy or hostile client sends:
dtypes the enum does or does not define, shapes of any rank and size, unknown rank,
contents replaced by random bytes or cut short, names (model, signature, inputs, version,
label, output_filter) changed, added, repeated or removed.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import contract
from contract.model_api import (
    BRANDS,
    CATEGORY_PATHS,
    EXAMPLES,
    EXCLUDE_ITEM_IDS,
    EXCLUDING,
    FROM_METADATA,
    IN_TOP_CATEGORIES,
    ITEM_IDS,
    PRICES,
    SERVE_EXAMPLES,
    SERVING_DEFAULT,
    TITLES,
    TOP_K_IDS,
    TRANSFORM_FEATURES,
)
from serving import tensors
from serving.server import RecommenderServer, ServerConfig
from serving.signatures import Limits
from tests.serving.conftest import MODEL_NAME

REQUESTS = 3_000
DEADLINE_S = 120  # a slow machine stops early, but only after MIN_REQUESTS
MIN_REQUESTS = 1_000
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


def _valid_requests(sessions: list[list[str]]) -> list[predict_pb2.PredictRequest]:
    """One valid request per signature."""

    def request(signature: str, **inputs: np.ndarray) -> predict_pb2.PredictRequest:
        made = predict_pb2.PredictRequest()
        made.model_spec.name, made.model_spec.signature_name = MODEL_NAME, signature
        for name, value in inputs.items():
            tensors.fill_proto(made.inputs[name], value)
        return made

    ids = np.array([[i.encode() for i in s[:2]] for s in sessions if len(s) >= 2][:2], dtype=object)  # [2, 2]
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                contract.PREFIX_ITEM_IDS: tf.train.Feature(bytes_list=tf.train.BytesList(value=list(ids[0]))),
            }
        )
    ).SerializeToString()
    texts = np.array([[b"red shoe", b""], [b"blue", b"bag"]], dtype=object)
    return [
        request(SERVING_DEFAULT, **{ITEM_IDS: ids}),
        request(EXCLUDING, **{ITEM_IDS: ids, EXCLUDE_ITEM_IDS: ids[:, :1]}),
        request(IN_TOP_CATEGORIES, **{ITEM_IDS: ids}),
        request(
            FROM_METADATA,
            **{
                ITEM_IDS: ids,
                TITLES: texts,
                CATEGORY_PATHS: texts,
                BRANDS: texts,
                PRICES: np.array([[1.5, -1.0], [3.0, 2.0]], np.float32),
            },
        ),
        request(SERVE_EXAMPLES, **{EXAMPLES: np.array([example, example], dtype=object)}),
        request(TRANSFORM_FEATURES, **{EXAMPLES: np.array([example], dtype=object)}),
    ]


def _random_bytes(rng: np.random.Generator) -> bytes:
    return rng.bytes(int(rng.integers(0, 24)))


def _random_name(rng: np.random.Generator) -> str:
    return rng.choice(["", "x", ITEM_IDS, EXAMPLES, TOP_K_IDS, "ü" * 3, "a" * int(rng.integers(1, 5_000))])


def _mutations(rng: np.random.Generator) -> list[Callable[[predict_pb2.PredictRequest], None]]:
    def some_input(request: predict_pb2.PredictRequest) -> str:
        names = sorted(request.inputs)
        return names[int(rng.integers(len(names)))] if names else ITEM_IDS

    def dtype(request):
        request.inputs[some_input(request)].dtype = int(rng.choice([0, 1, 2, 3, 5, 7, 9, 10, 14, 19, 23, 999, -1]))

    def dims(request):
        shape = request.inputs[some_input(request)].tensor_shape
        choice = rng.integers(3)
        if choice == 0 or not shape.dim:
            shape.dim.add().size = int(rng.choice([-2, 0, 1, 2, 7, 2**31, 2**40]))
        elif choice == 1:
            del shape.dim[int(rng.integers(len(shape.dim)))]
        else:
            shape.dim[int(rng.integers(len(shape.dim)))].size = int(rng.choice([-1, 0, 1, 3, 9, 1_001, 2**62]))

    def unknown_rank(request):
        request.inputs[some_input(request)].tensor_shape.unknown_rank = True

    def contents(request):
        proto = request.inputs[some_input(request)]
        choice = rng.integers(4)
        if choice == 0 and proto.string_val:
            proto.string_val[int(rng.integers(len(proto.string_val)))] = _random_bytes(rng)
        elif choice == 1:
            proto.tensor_content = _random_bytes(rng)
        elif choice == 2:
            proto.string_val.append(_random_bytes(rng))
        else:
            proto.ClearField("string_val")
            proto.ClearField("float_val")

    def names(request):
        choice = rng.integers(6)
        if choice == 0:
            request.model_spec.name = _random_name(rng)
        elif choice == 1:
            request.model_spec.signature_name = rng.choice(
                [
                    SERVING_DEFAULT,
                    FROM_METADATA,
                    EXCLUDING,
                    IN_TOP_CATEGORIES,
                    SERVE_EXAMPLES,
                    TRANSFORM_FEATURES,
                    _random_name(rng),
                ]
            )
        elif choice == 2:
            name = some_input(request)
            request.inputs[_random_name(rng)].CopyFrom(request.inputs[name])
            if rng.integers(2):
                del request.inputs[name]
        elif choice == 3:
            request.model_spec.version.value = int(rng.choice([0, 1, 2, -1, 2**63 - 1]))
        elif choice == 4:
            request.model_spec.version_label = _random_name(rng)
        else:
            request.output_filter.extend(rng.choice([TOP_K_IDS, _random_name(rng)], size=int(rng.integers(1, 4))))

    return [dtype, dims, unknown_rank, contents, names]


def _check_answer(request: predict_pb2.PredictRequest, response: predict_pb2.PredictResponse) -> None:
    """An OK answer: each tensor's values agree with its shape, and its batch is the request's."""
    batches = {tensors.shape_of(proto)[0] for proto in request.inputs.values()}
    assert response.outputs, "an OK answer with no outputs"
    for name, proto in response.outputs.items():
        array = tensors.to_array(proto)  # raises where the values disagree with the shape
        assert array.ndim >= 1 and {array.shape[0]} == batches, (name, array.shape, batches)
    if request.output_filter:
        assert sorted(response.outputs) == sorted(set(request.output_filter))


@pytest.fixture(scope="module")
def fuzzed(running) -> str:
    """A server of its own on the same versions, with a small batch limit."""
    server = RecommenderServer(running.versions, ServerConfig(port=0, limits=Limits(max_batch_size=8)))
    port = server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace_s=1)


def test_mutated_requests_get_clean_statuses_or_consistent_answers(fuzzed, exported_model):
    rng = np.random.default_rng(20261202)
    valid = _valid_requests(exported_model.sessions)
    mutations = _mutations(rng)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(fuzzed))
    for request in valid:  # the seeds are valid: each answers OK
        _check_answer(request, stub.Predict(request, timeout=10))
    codes: collections.Counter[str] = collections.Counter()
    start = time.monotonic()
    for sent in range(REQUESTS):
        if sent >= MIN_REQUESTS and time.monotonic() - start > DEADLINE_S:
            break
        request = predict_pb2.PredictRequest()
        request.CopyFrom(valid[int(rng.integers(len(valid)))])
        for _ in range(int(rng.integers(1, 4))):
            mutations[int(rng.integers(len(mutations)))](request)
        try:
            response = stub.Predict(request, timeout=30)
        except grpc.RpcError as error:
            assert error.code() not in NEVER, (error.code(), error.details(), request)
            codes[error.code().name] += 1
            continue
        _check_answer(request, response)
        codes["OK"] += 1
    print(f"{sum(codes.values())} mutated requests in {time.monotonic() - start:.1f} s: {dict(codes)}")
    assert codes["OK"] and codes["INVALID_ARGUMENT"] and codes["NOT_FOUND"]  # the mutations reach every path
    for request in valid:  # and it still serves
        _check_answer(request, stub.Predict(request, timeout=10))


def test_an_empty_batch_answers_empty_outputs_of_the_right_shapes(fuzzed):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(fuzzed))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    tensors.fill_proto(request.inputs[ITEM_IDS], np.zeros((0, 0), dtype=object))
    response = stub.Predict(request, timeout=10)
    assert tensors.to_array(response.outputs[TOP_K_IDS]).shape == (0, 20)
    _check_answer(request, response)
