"""A client for the recommender, over TF Serving's gRPC API only.

It uses the standard `PredictionService` and `ModelService` stubs and nothing else, so it
works unchanged against `serving.server` and against the official
`tensorflow_model_server --model_name=NAME --model_base_path=BASE/NAME` on the same
directory. Errors surface as `ServingError`, carrying the gRPC code and the server's
message.

Usage:

    with RecommenderClient("127.0.0.1:8500", model_name="recommender", timeout_s=2) as client:
        [answer] = client.recommend(["100001", "100042"])
        answer.item_ids[:3], answer.scores[:3], answer.unknown_items, answer.top_categories[1]
        client.recommend([["100001"], ["100042", "100043"]])  # a batch: one answer per session
        client.metadata()   # {"serving_default": SignatureDef, ...}
        client.status()     # [VersionStatus(version=1, state="AVAILABLE", ...)]

    # A server with a certificate (serve --tls-cert/--tls-key [--tls-client-ca]):
    tls = ClientTls.from_files(ca="ca.pem", certificate="client.pem", key="client.key")
    RecommenderClient("recs.internal:8500", model_name="recommender", tls=tls)
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import grpc
import numpy as np
from google.protobuf.message import Message

from contract.model_api import (
    EXCLUDE_ITEM_IDS,
    EXCLUDING,
    ITEM_IDS,
    SERVING_DEFAULT,
    TOP_K_IDS,
    TOP_K_SCORES,
    UNKNOWN_ITEMS,
    top_categories,
    top_category_scores,
)
from serving.tls import ClientTls

if TYPE_CHECKING:
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow_serving.apis import model_pb2

DEFAULT_TARGET = "127.0.0.1:8500"


class ServingError(Exception):
    """The server refused a call, or could not be reached: `code` (grpc.StatusCode) says which."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclasses.dataclass(frozen=True)
class Recommendations:
    """The answer for one session, best first."""

    item_ids: list[str]
    scores: list[float]
    unknown_items: int  # ids of the session the catalog does not hold, left out
    top_categories: dict[int, list[tuple[str, float]]]  # level (1 = root) -> [(category path, probability)]
    model_version: int  # the version that answered


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # LOADING, AVAILABLE, END, ... (ModelVersionStatus.State)
    error_code: int  # 0 (OK), else a google.rpc code, e.g. of a failed load
    error_message: str


def _padded(rows: list[list[str]]) -> np.ndarray:
    """Lists of ids -> `[len(rows), longest]` bytes, "" as padding (at least one column)."""
    width = max([1, *map(len, rows)])
    return np.array([[i.encode() for i in row] + [b""] * (width - len(row)) for row in rows], dtype=object)


@functools.cache
def _protocol() -> types.SimpleNamespace:
    """TF Serving's proto and stub modules, imported when the first client is made.

    They live inside the `tensorflow` package, so importing them runs TensorFlow's own
    import (about 10 s on 2 cores): a program that imports this module without calling a
    server (for its types, or a CLI's --help) should not pay for it.
    """
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    from serving import tensors

    return types.SimpleNamespace(
        get_model_metadata_pb2=get_model_metadata_pb2,
        get_model_status_pb2=get_model_status_pb2,
        model_service_pb2_grpc=model_service_pb2_grpc,
        predict_pb2=predict_pb2,
        prediction_service_pb2_grpc=prediction_service_pb2_grpc,
        tensors=tensors,
    )


class RecommenderClient:
    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        model_name: str,
        timeout_s: float = 5.0,
        version: int | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        """`version` pins one model version; None asks for the newest the server has. `tls`: a
        server with a certificate (serve --tls-cert); None, plaintext."""
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.version = version
        self._protocol = protocol = _protocol()
        self._channel = grpc.insecure_channel(target) if tls is None else grpc.secure_channel(target, tls.credentials())
        self._predictions = protocol.prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = protocol.model_service_pb2_grpc.ModelServiceStub(self._channel)

    def recommend(
        self,
        session: list[str] | list[list[str]],
        signature: str = SERVING_DEFAULT,
        *,
        exclude: list[str] | list[list[str]] | None = None,
        exclude_session_items: bool = False,
    ) -> list[Recommendations]:
        """Recommendations for one session (item ids, oldest first) or for a list of them.

        `exclude`: item ids that must not be recommended (e.g. in the basket, out of stock),
        for every session, or one list per session; `exclude_session_items` adds each
        session's own items. Either asks the `recommend_excluding` signature.
        """
        sessions = cast(list[list[str]], [session] if not session or isinstance(session[0], str) else session)
        protocol = self._protocol
        request = protocol.predict_pb2.PredictRequest()
        self._fill_spec(request.model_spec)
        request.model_spec.signature_name = signature
        protocol.tensors.fill_proto(request.inputs[ITEM_IDS], _padded(sessions))
        if exclude or exclude_session_items:
            if signature != SERVING_DEFAULT:
                raise ValueError(
                    f"exclusions are answered by {EXCLUDING}, a variant of {SERVING_DEFAULT}, not {signature}"
                )
            request.model_spec.signature_name = EXCLUDING
            shared = not exclude or isinstance(exclude[0], str)
            per_session = [cast(list[str], exclude or [])] * len(sessions) if shared else cast(list[list[str]], exclude)
            if len(per_session) != len(sessions):
                raise ValueError(f"exclude has {len(per_session)} lists for {len(sessions)} sessions")
            if exclude_session_items:
                per_session = [[*excluded, *s] for excluded, s in zip(per_session, sessions)]
            protocol.tensors.fill_proto(request.inputs[EXCLUDE_ITEM_IDS], _padded(per_session))
        response = self._call(self._predictions.Predict, request)
        outputs = {name: protocol.tensors.to_array(proto) for name, proto in response.outputs.items()}
        levels = [level for level in range(1, len(outputs)) if top_categories(level) in outputs]

        def categories(level: int, row: int) -> list[tuple[str, float]]:
            names, scores = outputs[top_categories(level)][row], outputs[top_category_scores(level)][row]
            return [(name.decode(), float(score)) for name, score in zip(names, scores)]

        return [
            Recommendations(
                item_ids=[i.decode() for i in outputs[TOP_K_IDS][row]],
                scores=outputs[TOP_K_SCORES][row].tolist(),
                unknown_items=int(outputs[UNKNOWN_ITEMS][row]),
                top_categories={level: categories(level, row) for level in levels},
                model_version=response.model_spec.version.value,
            )
            for row in range(len(sessions))
        ]

    def metadata(self) -> dict[str, meta_graph_pb2.SignatureDef]:
        """The model's signatures, by name, as GetModelMetadata describes them."""
        metadata_pb2 = self._protocol.get_model_metadata_pb2
        request = metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec)
        response = self._call(self._predictions.GetModelMetadata, request)
        signature_defs = metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        return dict(signature_defs.signature_def)

    def status(self) -> list[VersionStatus]:
        """Every version the server knows of (or the pinned one), oldest first."""
        status_pb2 = self._protocol.get_model_status_pb2
        request = status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request)
        state_name = status_pb2.ModelVersionStatus.State.Name
        return [
            VersionStatus(s.version, state_name(s.state), int(s.status.error_code), s.status.error_message)
            for s in response.model_version_status
        ]

    def _fill_spec(self, spec: model_pb2.ModelSpec) -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version

    def _call(self, method: Callable[..., Message], request: Message) -> Message:
        try:
            return method(request, timeout=self.timeout_s)
        except grpc.RpcError as error:
            raise ServingError(error.code(), error.details()) from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RecommenderClient:
        return self

    def __exit__(self, *_) -> None:
        self.close()
