"""A gRPC server that speaks TF Serving's protocol, for the newest version of one model.

It answers `tensorflow.serving.PredictionService` (Predict, GetModelMetadata; Classify,
Regress and MultiInference answer UNIMPLEMENTED) and `tensorflow.serving.ModelService`
(GetModelStatus; HandleReloadConfigRequest answers UNIMPLEMENTED) with the protos of
tensorflow-serving-api, so a client written for TF Serving works against it unchanged,
and `serving.client` works against the official `tensorflow_model_server` on the same
directory. Versions come from `serving.versions` (latest-version policy, swapped without
dropping a request).

What a client gets, and why:
- Responses carry `model_spec` (name, the version that answered, signature) and the
  signature's outputs as TensorProtos.
- A session with some ids the catalog does not hold is served: the model leaves them
  out and counts them in `unknown_items`. A request with a session of no known id
  (empty, all padding, or only unknown ids) is refused with INVALID_ARGUMENT. The model
  answers such a session on its own row (`known_items` 0), so it never fails the
  requests micro-batched with it.
- Unknown model name or version (number or label) -> NOT_FOUND; no version loaded yet ->
  UNAVAILABLE; unknown signature, missing or extra inputs, a wrong dtype or rank, a batch
  over `max_batch_size`, sessions over `max_session_length` items, a recommend_from_metadata
  request over `max_metadata_items` items, a request over `max_request_bytes` ->
  INVALID_ARGUMENT, with a message that names what was expected.
  gRPC's own receive limit is set 4x higher so that the server, not the transport, says
  why a big request is refused.
- More than `max_concurrent_rpcs` requests in flight -> RESOURCE_EXHAUSTED: back-pressure
  instead of an unbounded queue.
- No exception leaves a handler: errors TF raises keep their code (TF's codes are
  gRPC's), anything else is logged and answered INTERNAL; the server keeps serving.
  Logs are bounded under a flood: refusals at most one line a second, an unexpected
  error's traceback once per cause (type and line), then a count every minute.
- Status details quote at most 64 characters of any name the client sent, and are cut
  at MAX_DETAILS characters: gRPC's metadata limit would otherwise drop the status.

How it runs: one asyncio loop (grpc.aio) parses, checks and answers every request; model
calls leave the loop for a thread, so the loop keeps answering while TensorFlow computes
(TensorFlow releases the GIL). Concurrent `serving_default` requests share model calls
(`serving.batching`; `batching=False` turns it off); a lone request's call starts at once.
Against the threaded server (16 handler threads) it replaced, in interleaved runs on the
same model and machine, it spent about 10% less CPU per request at 16 clients and
answered about 5% more of them, at the same latency for one client.

Latency: the request path is a few proto field reads, one numpy array per input, one
call of the signature's concrete function (loaded once per version) and one bytes copy
per output: about 0.06 ms besides the model's call, on top of gRPC's own round trip
(~0.4 ms over loopback for an empty RPC).

Usage:

    versions = VersionManager("/models", "recommender").start()
    server = RecommenderServer(versions, ServerConfig(port=0))
    port = server.start()          # the bound port (a free one for port=0); serves from a thread
    ...
    server.stop()
    versions.stop()
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.apis.classification_pb2 import ClassificationResponse
from tensorflow_serving.apis.get_model_metadata_pb2 import GetModelMetadataRequest, GetModelMetadataResponse
from tensorflow_serving.apis.get_model_status_pb2 import GetModelStatusRequest, GetModelStatusResponse
from tensorflow_serving.apis.inference_pb2 import MultiInferenceResponse
from tensorflow_serving.apis.model_management_pb2 import ReloadConfigResponse
from tensorflow_serving.apis.model_pb2 import ModelSpec
from tensorflow_serving.apis.predict_pb2 import PredictRequest, PredictResponse
from tensorflow_serving.apis.regression_pb2 import RegressionResponse

from contract.model_api import FROM_METADATA, ITEM_IDS, SERVING_DEFAULT
from serving.batching import MicroBatcher
from serving.signatures import (
    Limits,
    RequestError,
    Signature,
    quoted,
    quoted_names,
    refuse_sessions_without_items,
    status_of,
)
from serving.tls import ServerTls, is_loopback
from serving.versions import Servable, VersionManager

SIGNATURE_DEF = "signature_def"  # the one GetModelMetadata field TF Serving knows
MAX_DETAILS = 2_000  # characters of a status's details; gRPC's metadata limit is 8 KB
_INVALID, _NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


def set_op_parallelism(intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
    """TensorFlow's thread pools for every model this process runs (0 keeps TF's default).

    A batch-1 recommendation is many tiny ops: handing each to a pool costs more than it
    saves, so small pools lower latency and, with concurrent requests keeping the cores
    busy, raise throughput too. TensorFlow fixes its pools when it first runs, so in a
    process that already ran TensorFlow they stay as they are (with a warning).
    """
    try:
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
        if inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    except RuntimeError as error:  # "cannot be modified after initialization"
        logging.warning("TensorFlow already runs in this process; its op thread pools stay as they are (%s)", error)


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8500  # 0: any free port (see RecommenderServer.port)
    limits: Limits = Limits()
    batching: bool = True  # concurrent requests share model calls
    batch_max_size: int = 32  # sessions per batched call
    batch_timeout_ms: float = 0.0  # > 0: a batch also waits this long for company
    call_threads: int = 4  # model calls at once outside the batcher (other signatures, or batching off)
    max_concurrent_rpcs: int = 1_000  # more requests in flight are refused with RESOURCE_EXHAUSTED
    # recommend_from_metadata calls at once, on threads of their own: a stream of costly ones
    # queues there instead of taking every core from serving_default.
    metadata_threads: int = 1
    tls: ServerTls | None = None  # None: plaintext (warned about when bound beyond loopback)


class _Handlers(prediction_service_pb2_grpc.PredictionServiceServicer, model_service_pb2_grpc.ModelServiceServicer):
    """The RPCs; each answers with a response or a status, never an exception."""

    def __init__(
        self,
        versions: VersionManager,
        limits: Limits,
        batcher: MicroBatcher | None,
        call_threads: ThreadPoolExecutor,
        metadata_threads: ThreadPoolExecutor,
    ) -> None:
        self._versions = versions
        self._limits = limits
        self._batcher = batcher
        self._call_threads = call_threads
        self._metadata_threads = metadata_threads

    # --- PredictionService ----------------------------------------------------------------
    async def Predict(self, request: PredictRequest, context: grpc.aio.ServicerContext) -> PredictResponse:
        return await _answer(context, PredictResponse, self._predict, request)

    async def GetModelMetadata(
        self, request: GetModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> GetModelMetadataResponse:
        return await _answer(context, GetModelMetadataResponse, self._metadata, request)

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> ClassificationResponse:
        return _unimplemented(context, "Classify", ClassificationResponse)

    async def Regress(self, request: Any, context: grpc.aio.ServicerContext) -> RegressionResponse:
        return _unimplemented(context, "Regress", RegressionResponse)

    async def MultiInference(self, request: Any, context: grpc.aio.ServicerContext) -> MultiInferenceResponse:
        return _unimplemented(context, "MultiInference", MultiInferenceResponse)

    # --- ModelService ---------------------------------------------------------------------
    async def GetModelStatus(
        self, request: GetModelStatusRequest, context: grpc.aio.ServicerContext
    ) -> GetModelStatusResponse:
        return await _answer(context, GetModelStatusResponse, self._status, request)

    async def HandleReloadConfigRequest(self, request: Any, context: grpc.aio.ServicerContext) -> ReloadConfigResponse:
        return _unimplemented(context, "HandleReloadConfigRequest", ReloadConfigResponse)

    # --- The work -------------------------------------------------------------------------
    async def _predict(self, request: PredictRequest) -> PredictResponse:
        size = request.ByteSize()
        if size > self._limits.max_request_bytes:
            raise RequestError(
                _INVALID,
                f"the request is {size:,} bytes; at most {self._limits.max_request_bytes:,} "
                "are accepted: send fewer or shorter sessions per request",
            )
        servable = self._servable(request.model_spec)
        signature = self._signature(servable, request.model_spec.signature_name)
        inputs = signature.parse(request.inputs, self._limits)
        names = signature.check_output_filter(request.output_filter)
        if self._batcher is not None and signature.name == SERVING_DEFAULT:
            outputs = await self._batcher.run(signature, inputs[ITEM_IDS])
        else:
            threads = self._metadata_threads if signature.name == FROM_METADATA else self._call_threads
            outputs = await asyncio.get_running_loop().run_in_executor(threads, signature.call, inputs)
        refuse_sessions_without_items(outputs)
        response = PredictResponse()
        _fill_spec(response.model_spec, servable, signature.name)
        signature.fill_outputs(response.outputs, outputs, names)
        return response

    async def _metadata(self, request: GetModelMetadataRequest) -> GetModelMetadataResponse:
        servable = self._servable(request.model_spec)
        fields = list(request.metadata_field)
        if fields != [SIGNATURE_DEF]:
            raise RequestError(
                _INVALID,
                f"metadata_field must be [{SIGNATURE_DEF!r}] (the one field served), got {quoted_names(fields)}",
            )
        response = GetModelMetadataResponse()
        _fill_spec(response.model_spec, servable, "")
        response.metadata[SIGNATURE_DEF].Pack(servable.signature_defs)
        return response

    async def _status(self, request: GetModelStatusRequest) -> GetModelStatusResponse:
        spec = request.model_spec
        self._check_name(spec.name)
        states = self._versions.states()
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            raise RequestError(
                _NOT_FOUND, f"version label {quoted(spec.version_label)} is unknown: no labels are configured"
            )
        if choice == "version":
            if spec.version.value not in states:
                raise RequestError(
                    _NOT_FOUND,
                    f"version {spec.version.value} of model {spec.name!r} is unknown; known versions: {sorted(states)}",
                )
            states = {spec.version.value: states[spec.version.value]}
        if not states:
            raise RequestError(_NOT_FOUND, f"no version of model {spec.name!r} found under {self._versions.model_dir}")
        response = GetModelStatusResponse()
        for version in sorted(states):
            state = states[version]
            status = response.model_version_status.add(version=version, state=state.state)
            status.status.error_code = state.error_code.value[0]
            status.status.error_message = state.error_message
        return response

    def _check_name(self, name: str) -> None:
        if name != self._versions.model_name:
            served = self._versions.model_name
            raise RequestError(_NOT_FOUND, f"model {quoted(name)} is not served here; this server serves {served!r}")

    def _servable(self, spec: ModelSpec) -> Servable:
        self._check_name(spec.name)
        servable = self._versions.current  # read once: the whole request runs on this version
        if servable is None:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE,
                f"model {spec.name!r} has no version loaded (yet) from {self._versions.model_dir}",
            )
        choice = spec.WhichOneof("version_choice")
        if choice == "version" and spec.version.value != servable.version:
            raise RequestError(
                _NOT_FOUND,
                f"version {spec.version.value} of model {spec.name!r} is not available; "
                f"version {servable.version} is served",
            )
        if choice == "version_label":
            raise RequestError(
                _NOT_FOUND,
                f"version label {quoted(spec.version_label)} of model {spec.name!r} is unknown: "
                f"no labels are configured; ask for version {servable.version} or for "
                "none",
            )
        return servable

    @staticmethod
    def _signature(servable: Servable, name: str) -> Signature:
        signature = servable.signatures.get(name or SERVING_DEFAULT)
        if signature is None:
            raise RequestError(
                _INVALID,
                f"model {servable.model_name!r} version {servable.version} has no signature "
                f"{quoted(name)}; it has {sorted(servable.signatures)}",
            )
        return signature


def _fill_spec(spec: ModelSpec, servable: Servable, signature_name: str) -> None:
    spec.name = servable.model_name
    spec.version.value = servable.version
    spec.signature_name = signature_name


class _UnexpectedErrors:
    """Logs errors of ours: the first of each cause with its traceback, then a count a minute.

    A cause is the error's type and the line that raised it. A client that keeps hitting
    one bug must not fill the disk with the same traceback.
    """

    MAX_CAUSES = 100  # causes remembered; beyond them every error is counted under one key

    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def log(self, error: Exception, request_type: str) -> None:
        frames = traceback.extract_tb(error.__traceback__)
        cause = (type(error).__name__, f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?")
        if cause not in self._counts and len(self._counts) >= self.MAX_CAUSES:
            cause = ("(other causes)", "")
        self._counts[cause] += 1
        if self._counts[cause] == 1 and cause[1]:
            logging.error(
                "Unexpected error answering %s (its traceback is logged once)",
                request_type,
                exc_info=(type(error), error, error.__traceback__),
            )
        else:
            logging.log_every_n_seconds(
                logging.ERROR, "Unexpected errors so far, by cause: %s", 60, dict(self._counts.most_common(5))
            )


_UNEXPECTED = _UnexpectedErrors()


def _bounded(details: str) -> str:
    """Status details gRPC can carry: at most MAX_DETAILS characters, valid UTF-8."""
    if len(details) > MAX_DETAILS:
        details = f"{details[:MAX_DETAILS]}... (cut from {len(details):,} characters)"
    return details.encode("utf-8", "backslashreplace").decode("utf-8")


async def _answer(
    context: grpc.aio.ServicerContext, response_type: type, handler: Callable[[Any], Awaitable[Any]], request: Any
) -> Any:
    """`await handler(request)`, or an empty response with the status of what went wrong."""
    try:
        return await handler(request)
    except RequestError as error:
        code, message = error.code, _bounded(error.message)
        logging.log_every_n_seconds(logging.INFO, "Refused a request: %s: %s", 1, code.name, message)
    except tf.errors.OpError as error:
        code, message = status_of(error)
        message = _bounded(message)
        logging.log_every_n_seconds(logging.INFO, "The model refused a request: %s: %s", 1, code.name, message)
    except Exception as error:  # a bug of ours: log it, answer, keep serving
        _UNEXPECTED.log(error, type(request).__name__)
        code, message = grpc.StatusCode.INTERNAL, _bounded(f"internal error: {type(error).__name__}: {error}")
    context.set_code(code)
    context.set_details(message)
    return response_type()


def _unimplemented(context: grpc.aio.ServicerContext, method: str, response_type: type) -> Any:
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details(f"{method} is not served here; use Predict (signatures: see GetModelMetadata)")
    return response_type()


class RecommenderServer:
    """The gRPC server around a VersionManager; `start()` binds and returns the port.

    It serves from an asyncio loop on a thread of its own, so callers (the CLI, tests, the
    pipeline's demo) start and stop it like a threaded server.
    """

    def __init__(self, versions: VersionManager, config: ServerConfig = ServerConfig()) -> None:
        self.config = config
        self._versions = versions
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: grpc.aio.Server | None = None
        self._batcher: MicroBatcher | None = None
        self._call_threads: ThreadPoolExecutor | None = None
        self._metadata_threads: ThreadPoolExecutor | None = None

    def start(self) -> int:
        """Binds `host:port` and starts answering; raises RuntimeError if the port is taken."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grpc-server", daemon=True)
        self._thread.start()
        try:
            self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        except BaseException:
            self._end_loop()
            raise
        logging.info("Answering on %s:%d%s", self.config.host, self.port, " over TLS" if self.config.tls else "")
        if self.config.tls is None and not is_loopback(self.config.host):
            logging.warning(
                "Serving on %s without TLS: anyone who reaches port %d can call the model and read its "
                "answers. Give a certificate and key (serve --tls-cert, --tls-key), and --tls-client-ca "
                "to admit only clients with a certificate.",
                self.config.host,
                self.port,
            )
        return self.port

    def stop(self, grace_s: float = 5.0) -> None:
        """Refuses new requests, lets those in flight finish for up to `grace_s`, then stops."""
        if self._loop is None or self._server is None:
            return
        asyncio.run_coroutine_threadsafe(self._server.stop(grace_s), self._loop).result()
        self._end_loop()

    async def _start(self) -> int:
        # Made on the loop it serves from: grpc.aio binds a server to the running loop.
        config = self.config
        self._batcher = MicroBatcher(config.batch_max_size, config.batch_timeout_ms) if config.batching else None
        self._call_threads = ThreadPoolExecutor(max_workers=config.call_threads, thread_name_prefix="model-call")
        self._metadata_threads = ThreadPoolExecutor(
            max_workers=config.metadata_threads, thread_name_prefix="metadata-call"
        )
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", 4 * config.limits.max_request_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),  # a second server on a taken port fails instead of sharing it
            ],
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        )
        handlers = _Handlers(self._versions, config.limits, self._batcher, self._call_threads, self._metadata_threads)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(handlers, self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(handlers, self._server)
        address = f"{config.host}:{config.port}"
        if config.tls is None:
            port = self._server.add_insecure_port(address)
        else:
            port = self._server.add_secure_port(address, config.tls.credentials())
        await self._server.start()
        return port

    def _end_loop(self) -> None:
        assert self._loop is not None and self._thread is not None, "the loop was started"
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._loop = None
        if self._batcher is not None:
            self._batcher.stop()
        for threads in (self._call_threads, self._metadata_threads):
            if threads is not None:
                threads.shutdown()
