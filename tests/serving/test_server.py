"""The server over loopback, through the client and TF Serving's own stubs."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from benchmarks.common import rss_mb
from contract.model_api import (
    EXAMPLES,
    EXCLUDE_ITEM_IDS,
    EXCLUDING,
    FROM_METADATA,
    ITEM_IDS,
    SERVE_EXAMPLES,
    SERVING_DEFAULT,
    TOP_K_IDS,
    TOP_K_SCORES,
    TRANSFORM_FEATURES,
)
from serving import server as server_module
from serving import tensors
from serving.client import RecommenderClient, ServingError
from serving.server import RecommenderServer, ServerConfig
from serving.signatures import Limits
from tests.serving.conftest import MODEL_NAME, TOP_K

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


def _pad(sessions: list[list[str]]) -> np.ndarray:
    width = max(len(s) for s in sessions)
    return np.array([[i.encode() for i in s] + [b""] * (width - len(s)) for s in sessions], dtype=object)


def _request(item_ids: np.ndarray, **spec) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    for field, value in spec.items():
        if field == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, field, value)
    tensors.fill_proto(request.inputs[ITEM_IDS], item_ids)
    return request


def test_predict_answers_as_the_saved_model_does(running, exported_model):
    sessions = exported_model.sessions[:4]
    with RecommenderClient(running.target, model_name=MODEL_NAME, timeout_s=10) as client:
        answers = client.recommend(sessions)
        [single] = client.recommend(sessions[3])
    direct = running.versions.current.model.signatures[SERVING_DEFAULT](item_ids=tf.constant(_pad(sessions)))
    assert [a.item_ids for a in answers] == direct[TOP_K_IDS].numpy().astype(str).tolist()
    np.testing.assert_allclose([a.scores for a in answers], direct[TOP_K_SCORES].numpy(), rtol=1e-6)
    assert single.item_ids == answers[3].item_ids and len(single.item_ids) == TOP_K
    assert all(a.unknown_items == 0 and a.model_version == 1 for a in answers)
    assert sorted(single.top_categories) == [1, 2, 3, 4] and all(len(c) == 3 for c in single.top_categories.values())


def _metadata_request(**inputs: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, FROM_METADATA
    for name, value in inputs.items():
        tensors.fill_proto(request.inputs[name], value)
    return request


def _uniform_metadata_request(
    item_ids: np.ndarray, title: bytes = b"shoe", category_path: bytes = b"", brand: bytes = b"", price: float = -1.0
) -> predict_pb2.PredictRequest:
    """A recommend_from_metadata request whose items (`item_ids`' shape) share one title, path, brand and price."""
    return _metadata_request(
        item_ids=item_ids,
        titles=np.full(item_ids.shape, title, dtype=object),
        category_paths=np.full(item_ids.shape, category_path, dtype=object),
        brands=np.full(item_ids.shape, brand, dtype=object),
        prices=np.full(item_ids.shape, price, dtype=np.float32),
    )


def test_a_signature_of_several_inputs_answers_as_the_saved_model_does(running, exported_model):
    # recommend_from_metadata takes five inputs: each must reach its own argument.
    session = next(s for s in exported_model.sessions if len(s) >= 2)[:2]
    inputs = {
        "item_ids": np.array([[i.encode() for i in session]], dtype=object),
        "titles": np.array([[b"red running shoe", b"blue jacket"]], dtype=object),
        "category_paths": np.array([[b"Sport > Shoes", b"Clothes > Jackets"]], dtype=object),
        "brands": np.array([[b"acme", b""]], dtype=object),
        "prices": np.array([[49.5, -1.0]], dtype=np.float32),
    }
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(running.target))
    response = stub.Predict(_metadata_request(**inputs), timeout=10)
    direct = running.versions.current.model.signatures[FROM_METADATA](**{k: tf.constant(v) for k, v in inputs.items()})
    assert tensors.to_array(response.outputs[TOP_K_IDS]).tolist() == direct[TOP_K_IDS].numpy().tolist()
    np.testing.assert_allclose(
        tensors.to_array(response.outputs[TOP_K_SCORES]), direct[TOP_K_SCORES].numpy(), rtol=1e-6
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.Predict(_metadata_request(**{**inputs, "item_ids": inputs["item_ids"][:, :1]}), timeout=10)
    assert refused.value.code() == INVALID
    assert refused.value.details() == "item_ids, titles, category_paths, brands and prices must all have the same shape"
    # Items without ids: item_ids is still sent (Predict needs every declared input), as "".
    no_ids = stub.Predict(_metadata_request(**{**inputs, "item_ids": np.full((1, 2), b"", dtype=object)}), timeout=10)
    assert tensors.to_array(no_ids.outputs[TOP_K_IDS]).shape == (1, TOP_K)


def test_unknown_ids_are_left_out_and_counted(running, exported_model):
    session = exported_model.sessions[2]
    with RecommenderClient(running.target, model_name=MODEL_NAME) as client:
        [plain] = client.recommend(session)
        [mixed] = client.recommend(["no-such-item", *session, "nor-this"])
    assert mixed.unknown_items == 2 and mixed.item_ids == plain.item_ids


def test_excluded_items_are_never_recommended_and_the_rest_keep_their_order(running, exported_model):
    session, other = exported_model.sessions[0], exported_model.sessions[1]
    with RecommenderClient(running.target, model_name=MODEL_NAME) as client:
        [plain] = client.recommend(session)
        basket = plain.item_ids[:3]
        [without_basket] = client.recommend(session, exclude=[*basket, "no-such-item"])
        [without_own] = client.recommend(session, exclude_session_items=True)
        both = client.recommend([session, other], exclude=[basket, []])
        [other_plain] = client.recommend(other)
    assert not set(basket) & set(without_basket.item_ids)
    assert without_basket.item_ids[: TOP_K - 3] == plain.item_ids[3:]  # the others move up, in order
    assert without_basket.scores[: TOP_K - 3] == plain.scores[3:]
    assert not set(session) & set(without_own.item_ids) and len(without_own.item_ids) == TOP_K
    assert both[0].item_ids == without_basket.item_ids
    assert both[1].item_ids == other_plain.item_ids  # an empty exclusion list changes nothing


def test_an_exclusion_list_per_session_must_match_the_sessions(running, exported_model):
    sessions = exported_model.sessions[:2]
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(running.target))
    request = _request(_pad(sessions), signature_name=EXCLUDING)
    request.inputs[EXCLUDE_ITEM_IDS].CopyFrom(tensors.to_proto(np.array([[b"x"]], dtype=object)))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=10)
    assert raised.value.code() == INVALID and "exclude_item_ids must have one row per session" in raised.value.details()
    with (
        RecommenderClient(running.target, model_name=MODEL_NAME) as client,
        pytest.raises(ValueError, match="exclude has 1 lists for 2 sessions"),
    ):
        client.recommend(sessions, exclude=[["x"]])


def test_response_carries_the_model_spec(running, exported_model):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(running.target))
    response = stub.Predict(_request(_pad(exported_model.sessions[:1])), timeout=10)
    spec = response.model_spec
    assert (spec.name, spec.version.value, spec.signature_name) == (MODEL_NAME, 1, SERVING_DEFAULT)
    assert tensors.to_array(response.outputs[TOP_K_IDS]).shape == (1, TOP_K)
    pinned = stub.Predict(_request(_pad(exported_model.sessions[:1]), version=1), timeout=10)
    assert pinned.model_spec.version.value == 1


def test_metadata_lists_the_three_signatures_and_status_says_available(running):
    with RecommenderClient(running.target, model_name=MODEL_NAME) as client:
        signatures = client.metadata()
        [status] = client.status()
    assert {SERVING_DEFAULT, FROM_METADATA, TRANSFORM_FEATURES} <= set(signatures)
    assert set(signatures) == set(running.versions.current.model.signatures)  # all of them, none of TF's own
    assert set(signatures[SERVING_DEFAULT].inputs) == {ITEM_IDS}
    assert TOP_K_IDS in signatures[SERVING_DEFAULT].outputs
    assert (status.version, status.state, status.error_code) == (1, "AVAILABLE", 0)


def _extra_input() -> predict_pb2.PredictRequest:
    request = _request(np.array([[b"100001"]], dtype=object))
    tensors.fill_proto(request.inputs["item_id"], np.array([[b"100001"]], dtype=object))
    return request


def _resized(width: int) -> predict_pb2.PredictRequest:
    request = _request(np.array([[b"100001"]], dtype=object))
    request.inputs[ITEM_IDS].tensor_shape.dim[1].size = width
    return request


def _with_dtype(dtype: int) -> predict_pb2.PredictRequest:
    request = _request(np.array([[b"100001"]], dtype=object))
    request.inputs[ITEM_IDS].dtype = dtype
    return request


def _unknown_rank() -> predict_pb2.PredictRequest:
    request = _request(np.array([[b"100001"]], dtype=object))
    request.inputs[ITEM_IDS].tensor_shape.unknown_rank = True
    return request


def _examples(serialized: list[bytes]) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, SERVE_EXAMPLES
    tensors.fill_proto(request.inputs[EXAMPLES], np.array(serialized, dtype=object))
    return request


def _no_inputs() -> predict_pb2.PredictRequest:
    request = _request(np.array([[b"100001"]], dtype=object))
    del request.inputs[ITEM_IDS]
    return request


LIMITS = Limits(max_batch_size=8)  # the other limits at their defaults
BAD_PREDICTS: dict[str, tuple[Callable[[], predict_pb2.PredictRequest], grpc.StatusCode, str]] = {
    "unknown model": (
        lambda: _request(np.array([[b"100001"]], dtype=object), name="other"),
        NOT_FOUND,
        "model 'other' is not served here",
    ),
    "unknown version": (
        lambda: _request(np.array([[b"100001"]], dtype=object), version=7),
        NOT_FOUND,
        "version 7 of model 'recommender' is not available; version 1 is served",
    ),
    "unknown version label": (
        lambda: _request(np.array([[b"100001"]], dtype=object), version_label="canary"),
        NOT_FOUND,
        "version label 'canary'",
    ),
    "unknown signature": (
        lambda: _request(np.array([[b"100001"]], dtype=object), signature_name="nope"),
        INVALID,
        "version 1 has no signature 'nope'; it has ['recommend_excluding', 'recommend_from_metadata', ",
    ),
    "missing input": (_no_inputs, INVALID, "takes inputs item_ids string [?, ?]; missing ['item_ids']"),
    "extra input": (_extra_input, INVALID, "unexpected ['item_id']"),
    "int ids": (
        lambda: _request(np.array([[100001, 100002]], dtype=np.int64)),
        INVALID,
        "input 'item_ids' of signature 'serving_default' must be string, got int64",
    ),
    "rank 1": (
        lambda: _request(np.array([b"100001"], dtype=object)),
        INVALID,
        "must have shape [?, ?] (rank 2), got [1]",
    ),
    "negative size": (lambda: _resized(-1), INVALID, "shape [1, -1] does not match its 1 values"),
    "values do not match the shape": (lambda: _resized(3), INVALID, "shape [1, 3] does not match its 1 values"),
    "empty session": (
        lambda: _request(np.array([[b"", b""]], dtype=object)),
        INVALID,
        "every session needs at least one item the model knows",
    ),
    "no items at all": (lambda: _request(np.zeros((1, 0), dtype=object)), INVALID, "at least one item the model knows"),
    "only unknown ids": (
        lambda: _request(np.array([[b"nope", b"nor-this"]], dtype=object)),
        INVALID,
        "at least one item the model knows",
    ),
    "session too long": (
        lambda: _request(np.full((1, 1_001), b"100001", dtype=object)),
        INVALID,
        "has sessions of length 1001; at most 1000 items",
    ),
    "batch too large": (
        lambda: _request(np.full((9, 1), b"100001", dtype=object)),
        INVALID,
        "has a batch of 9; at most 8 per request",
    ),
    "request too large": (
        lambda: _request(np.full((1, 900), b"1" * 5_000, dtype=object)),
        INVALID,
        "bytes; at most 4,194,304 are accepted",
    ),
    "too many items to encode from metadata": (
        lambda: _uniform_metadata_request(np.full((8, 600), b"", dtype=object)),
        INVALID,
        "holds 4,800 items; at most 4,096 per request are encoded from their metadata",
    ),
    "unknown output in the filter": (lambda: _filtered(["top_k_idz"]), INVALID, "output_filter names ['top_k_idz']"),
    # TF Serving: "duplicate output tensor alias"; answering both would give top_k_ids twice over in one tensor.
    "an output twice in the filter": (
        lambda: _filtered([TOP_K_IDS, TOP_K_IDS]),
        INVALID,
        "duplicate output tensor alias in output_filter: ['top_k_ids']",
    ),
    "a dtype the enum does not define": (
        lambda: _with_dtype(999),
        INVALID,
        "must be string, got an undefined dtype (999)",
    ),
    "a negative dtype": (lambda: _with_dtype(-1), INVALID, "must be string, got an undefined dtype (-1)"),
    "a shape of unknown rank": (_unknown_rank, INVALID, "must have shape [?, ?], got a shape of unknown rank"),
    # TF's parse error quotes the bytes, and TF then fails to decode its own message.
    "examples that are not UTF-8 or protos": (
        lambda: _examples([b"\xff garbage"]),
        INVALID,
        "error quotes bytes of them that are not UTF-8",
    ),
}


def _filtered(names: list[str]) -> predict_pb2.PredictRequest:
    request = _request(np.array([[b"100001"]], dtype=object))
    request.output_filter.extend(names)
    return request


@pytest.fixture(scope="module")
def strict(running) -> str:
    """A second server on the same versions, with a small batch limit."""
    server = RecommenderServer(running.versions, ServerConfig(port=0, limits=LIMITS))
    port = server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace_s=1)


def _assert_still_serves(target: str, session: list[str]) -> None:
    with RecommenderClient(target, model_name=MODEL_NAME, timeout_s=10) as client:
        [answer] = client.recommend(session)
    assert len(answer.item_ids) == TOP_K


@pytest.mark.parametrize("case", sorted(BAD_PREDICTS))
def test_a_bad_predict_gets_a_clear_status_and_the_server_keeps_serving(strict, exported_model, case):
    make, code, message = BAD_PREDICTS[case]
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(strict))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(make(), timeout=10)
    assert raised.value.code() == code, raised.value.details()
    assert message in raised.value.details()
    _assert_still_serves(strict, exported_model.sessions[0])


def test_output_filter_answers_only_the_outputs_named(strict, exported_model):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(strict))
    request = _request(_pad(exported_model.sessions[:1]))
    request.output_filter.extend([TOP_K_IDS])
    assert list(stub.Predict(request, timeout=10).outputs) == [TOP_K_IDS]


def test_other_rpcs_get_clear_statuses(strict, exported_model):
    channel = grpc.insecure_channel(strict)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Classify(classification_pb2.ClassificationRequest(), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED and "use Predict" in raised.value.details()
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL_NAME
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetModelMetadata(request, timeout=10)
    assert raised.value.code() == INVALID and "metadata_field must be ['signature_def']" in raised.value.details()
    with RecommenderClient(strict, model_name=MODEL_NAME, version=3) as client, pytest.raises(ServingError) as error:
        client.status()
    assert error.value.code == NOT_FOUND and "version 3 of model 'recommender' is unknown" in str(error.value)
    with (
        RecommenderClient(strict, model_name="other") as client,
        pytest.raises(ServingError, match="NOT_FOUND: model 'other' is not served here"),
    ):
        client.metadata()
    _assert_still_serves(strict, exported_model.sessions[0])


def test_micro_batcher_gives_each_request_its_own_answer(running, exported_model):
    sessions = exported_model.sessions + [["no-such-item", *s] for s in exported_model.sessions]
    signature = running.versions.current.signatures[SERVING_DEFAULT]
    expected = {tuple(s): signature.call({ITEM_IDS: _pad([s])}) for s in sessions}
    server = RecommenderServer(running.versions, ServerConfig(port=0, batching=True, batch_timeout_ms=5))
    port = server.start()
    calls, results, refusals, failures, call_errors = [], [], [], [], []
    original = signature.call

    def counting(inputs):
        calls.append(len(inputs[ITEM_IDS]))
        try:
            return original(inputs)
        except Exception as error:  # a failed batched call would be re-run request by request
            call_errors.append(error)
            raise

    def client_loop(offset: int) -> None:
        with RecommenderClient(f"127.0.0.1:{port}", model_name=MODEL_NAME, timeout_s=30) as client:
            for i in range(12):
                session = sessions[(offset + i) % len(sessions)]
                try:
                    results.append((session, client.recommend(session)[0]))
                except ServingError as error:
                    failures.append(error)
                try:  # a refused session in the same batches must not fail the others
                    client.recommend(["only-unknown"])
                    failures.append("a session of unknown ids was served")
                except ServingError as error:
                    refusals.append(error.code)

    signature.call = counting  # an instance attribute: the batcher's calls go through it
    try:
        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(16)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    finally:
        del signature.call
        server.stop(grace_s=1)
    assert not failures and len(results) == 16 * 12 and refusals == [INVALID] * 16 * 12
    assert max(calls) > 1  # requests did share calls
    assert not call_errors  # sessions of unknown ids were answered on their rows, not by failing the batch
    for session, answer in results:
        alone = expected[tuple(session)]
        assert answer.item_ids == alone[TOP_K_IDS][0].astype(str).tolist()
        np.testing.assert_allclose(answer.scores, alone[TOP_K_SCORES][0], rtol=1e-4, atol=1e-5)
        assert answer.unknown_items == (1 if session[0] == "no-such-item" else 0)


def test_requests_over_max_concurrent_rpcs_get_resource_exhausted(running, exported_model):
    signature = running.versions.current.signatures[SERVING_DEFAULT]
    original, model_entered = signature.call, threading.Event()

    def slow(inputs):
        model_entered.set()
        threading.Event().wait(1.0)  # holds the one slot the server has
        return original(inputs)

    server = RecommenderServer(running.versions, ServerConfig(port=0, max_concurrent_rpcs=1))
    target = f"127.0.0.1:{server.start()}"
    session, answers = exported_model.sessions[0], []
    signature.call = slow  # an instance attribute: the batcher's calls go through it
    try:
        with RecommenderClient(target, model_name=MODEL_NAME, timeout_s=30) as client:
            first = threading.Thread(target=lambda: answers.append(client.recommend(session)[0]))
            first.start()
            assert model_entered.wait(10)
            with pytest.raises(ServingError) as refused:
                client.recommend(session)
            first.join()
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(answers) == 1 and len(answers[0].item_ids) == TOP_K  # the one in flight was answered
        del signature.call
        _assert_still_serves(target, session)
    finally:
        signature.__dict__.pop("call", None)
        server.stop(grace_s=1)


def test_recommend_from_metadata_queues_on_its_own_thread_and_serving_default_keeps_answering(running, exported_model):
    """Costly metadata calls run one at a time (`metadata_threads`) on a thread of their own: while
    one is held and another waits behind it, sessions are answered, even by a server whose
    `serving_default` has a single call thread of its own."""
    signature = running.versions.current.signatures[FROM_METADATA]
    original, entered, started, release = signature.call, [], threading.Event(), threading.Event()

    def held(inputs):
        entered.append(inputs)
        started.set()
        assert release.wait(30)
        return original(inputs)

    session = exported_model.sessions[0]
    request = _uniform_metadata_request(np.array([[i.encode() for i in session]], dtype=object))
    server = RecommenderServer(running.versions, ServerConfig(port=0, batching=False, call_threads=1))
    target = f"127.0.0.1:{server.start()}"
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    signature.call = held  # an instance attribute: the server's metadata calls go through it
    try:
        pending = [stub.Predict.future(request, timeout=60) for _ in range(2)]
        assert started.wait(10)
        for _ in range(3):
            _assert_still_serves(target, session)
        assert len(entered) == 1 and not any(future.done() for future in pending)  # one held, one queued
        release.set()
        assert all(len(tensors.to_array(f.result().outputs[TOP_K_IDS])[0]) == TOP_K for f in pending)
    finally:
        release.set()
        signature.__dict__.pop("call", None)
        server.stop(grace_s=1)


def test_a_stream_of_the_largest_metadata_requests_leaves_memory_flat(running, exported_model):
    """The issue this bound answers: one 256 x 1,000-item request took +490 MB that was never given
    back. Requests at the limit (8 x 512 = 4,096 items), one after another, must not grow the
    server's memory request by request."""
    session = exported_model.sessions[0]
    shape = (8, Limits().max_metadata_items // 8)
    ids = np.array([[session[i % len(session)].encode() for i in range(shape[1])]] * shape[0], dtype=object)
    request = _uniform_metadata_request(ids, b"red running shoe", b"Sport > Shoes", b"acme", 49.5)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(running.target))
    rss = []
    for _ in range(12):
        assert tensors.to_array(stub.Predict(request, timeout=60).outputs[TOP_K_IDS]).shape == (shape[0], TOP_K)
        rss.append(rss_mb(os.getpid()))  # the server runs in this process
    print(f"RSS after each request (MB): {[round(r) for r in rss]}")
    assert rss[-1] - rss[2] < 20, rss  # after two to warm up


def _long_names(field: str) -> predict_pb2.PredictRequest:
    """A request with 100 KB in one field a client names things with, or 1,000 extra inputs."""
    long = "x" * 100_000
    request = _request(np.array([[b"100001"]], dtype=object))
    if field in ("name", "signature_name", "version_label"):
        setattr(request.model_spec, field, long)
    elif field == "input":
        tensors.fill_proto(request.inputs[long], np.array([[b"100001"]], dtype=object))
    elif field == "output_filter":
        request.output_filter.append(long)
    else:  # "inputs"
        for i in range(1_000):
            tensors.fill_proto(request.inputs[f"extra_{i}"], np.array([[b"1"]], dtype=object))
    return request


@pytest.mark.parametrize(
    "field, code",
    [
        ("name", NOT_FOUND),
        ("signature_name", INVALID),
        ("version_label", NOT_FOUND),
        ("input", INVALID),
        ("output_filter", INVALID),
        ("inputs", INVALID),
    ],
)
def test_a_status_quotes_a_bounded_part_of_what_the_client_sent(strict, exported_model, field, code):
    # Unbounded, the details overflow gRPC's 8 KB of metadata: the client would see only a transport error.
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(strict))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(_long_names(field), timeout=10)
    assert raised.value.code() == code, raised.value.details()
    assert len(raised.value.details()) < 1_000
    assert "'xxxx" in raised.value.details() or "and 992 more" in raised.value.details()
    _assert_still_serves(strict, exported_model.sessions[0])


def test_an_unexpected_error_logs_its_traceback_once_per_cause_then_only_counts(caplog):
    """A client that keeps hitting one bug must not fill the disk: 1,000 errors from each of two
    lines log two tracebacks and, within the minute, one count line."""
    errors = server_module._UnexpectedErrors()

    def fail(which: int) -> None:
        if which:
            raise KeyError("one cause")
        raise ValueError("another")

    with caplog.at_level(logging.INFO):
        for i in range(2_000):
            try:
                fail(i % 2)
            except (KeyError, ValueError) as error:
                errors.log(error, "PredictRequest")
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert sorted(r.exc_info[0].__name__ for r in tracebacks) == ["KeyError", "ValueError"]
    assert len(caplog.records) <= 3, [r.getMessage() for r in caplog.records]


def test_a_client_that_keeps_sending_bad_requests_logs_a_line_a_second_at_most(strict, caplog):
    """Refusals are the client's mistakes: each is answered, but the log gets one line a second,
    so a misbehaving client cannot fill the disk."""
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(strict))
    refused = 0
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="absl"):  # absl logs at WARNING and above by default
        while time.monotonic() - started < 2.5:
            with pytest.raises(grpc.RpcError) as raised:
                stub.Predict(_filtered(["no_such_output"]), timeout=10)
            assert raised.value.code() == INVALID
            refused += 1
    seconds = time.monotonic() - started
    logged = [r for r in caplog.records if "Refused a request" in r.getMessage()]
    assert refused > 3 * seconds  # many refusals a second...
    assert 1 <= len(logged) <= seconds + 1, (len(logged), refused, seconds)  # ...and a line a second
