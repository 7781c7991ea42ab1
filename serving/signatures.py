"""A SavedModel signature on the request path: checks a request's inputs, calls, answers.

Everything a request needs is worked out once per loaded version (the concrete function,
each input's dtype and rank from its TensorSpec, the output names), so a request pays
for a few comparisons, one call and one bytes copy per output. A bad request raises
`RequestError` with the gRPC code and a message that names the input and what was
expected; errors TensorFlow raises while running (say, `recommend_from_metadata` inputs of
different shapes) carry a gRPC code of their own: `status_of` maps them. A session with no
known item is not an error of the model's: `refuse_sessions_without_items` reads it from
the answer. A message quotes at most
`MAX_QUOTED` characters of any name a client sent (`quoted`, `quoted_names`): a status
whose details overflow gRPC's metadata limit (8 KB) reaches the client as a transport
RESOURCE_EXHAUSTED, and the real reason is lost.

Example:
    signature = Signature(SERVING_DEFAULT, loaded.signatures[SERVING_DEFAULT])
    outputs = signature.call(signature.parse(request.inputs, Limits()))
    signature.fill_outputs(response.outputs, outputs)
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any, NoReturn

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from contract.model_api import FROM_METADATA, KNOWN_ITEMS, NO_KNOWN_ITEMS
from serving import tensors

# TF's error codes are gRPC's (both follow google.rpc.Code).
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "\t [[")
MAX_QUOTED = 64  # characters of one name a client sent that an error message quotes
MAX_QUOTED_NAMES = 8  # names of a list a client sent that an error message quotes


def quoted(text: str) -> str:
    """`repr(text)`, cut to MAX_QUOTED characters, the rest counted."""
    if len(text) <= MAX_QUOTED:
        return repr(text)
    return f"{text[:MAX_QUOTED]!r}... ({len(text):,} characters)"


def quoted_names(names: Sequence[str]) -> str:
    """A list of names a client sent, as `[...]` of `quoted` names, at most MAX_QUOTED_NAMES of them."""
    shown = [quoted(name) for name in names[:MAX_QUOTED_NAMES]]
    rest = len(names) - len(shown)
    return "[" + ", ".join(shown) + (f", and {rest:,} more" if rest > 0 else "") + "]"


class RequestError(Exception):
    """A request the server refuses: `code` is the gRPC status code to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for; bigger requests are refused with INVALID_ARGUMENT."""

    max_batch_size: int = 256
    max_session_length: int = 1_000  # the width of `[batch, length]` inputs
    max_request_bytes: int = 4 * 1024 * 1024
    # Items of one recommend_from_metadata request: each runs through the Transform graph and
    # the item encoder, ~3 us and ~2 KB apiece; 256 x 1,000 of them took 0.8 s and 490 MB.
    max_metadata_items: int = 4_096


def status_of(error: tf.errors.OpError) -> tuple[grpc.StatusCode, str]:
    """A TF runtime error -> its gRPC code and the message a client can act on.

    Assertions keep only their own message (`tf.debugging.assert_*`'s `message=`), others
    their first meaningful line: the graph's node names and stack say nothing to a client.
    """
    code = _GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN)
    assertion = re.search(r"assertion failed: \[(.*?)\s*\]", error.message)
    if assertion:
        return code, assertion.group(1).strip()
    lines = [line for line in error.message.splitlines() if line.strip() and not line.startswith(_TF_NOISE)]
    return code, re.sub(r"\s*\[Op:[^\]]*\]$", "", lines[0] if lines else error.message).strip()


def refuse_sessions_without_items(outputs: Mapping[str, np.ndarray]) -> None:
    """Raises RequestError (INVALID_ARGUMENT) where an answer says a session had no item the model knows.

    The model answers such a session on its own row (`known_items` 0, no recommendations),
    so that it never fails the sessions batched with it; the request that sent it is refused.
    """
    known = outputs.get(KNOWN_ITEMS)
    if known is not None and not known.all():
        sessions = np.flatnonzero(known == 0).tolist()
        which = f"session {sessions[0]}" if len(sessions) == 1 else f"sessions {sessions[:MAX_QUOTED_NAMES]}"
        more = f" and {len(sessions) - MAX_QUOTED_NAMES:,} more" if len(sessions) > MAX_QUOTED_NAMES else ""
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"{NO_KNOWN_ITEMS}: {which}{more} of the request")


def _shape_text(spec: tf.TensorSpec) -> str:
    return "[" + ", ".join("?" if size is None else str(size) for size in spec.shape.as_list()) + "]"


class Signature:
    """One signature of a loaded SavedModel, ready to answer Predict requests."""

    def __init__(self, name: str, function: Any) -> None:
        self.name = name
        self.function = function
        _, specs = function.structured_input_signature
        self.inputs: dict[str, tf.TensorSpec] = dict(specs)
        self.outputs: tuple[str, ...] = tuple(sorted(function.structured_outputs))
        self._dtypes = {name: spec.dtype.as_datatype_enum for name, spec in self.inputs.items()}
        self._shapes = {name: spec.shape.as_list() for name, spec in self.inputs.items()}  # None: any size
        self._expected = ", ".join(
            f"{n} {tensors.dtype_name(self._dtypes[n])} {_shape_text(s)}" for n, s in sorted(self.inputs.items())
        )
        # `call` goes straight to the function's flat call, where its `__call__` ends up after
        # binding keyword arguments in Python: 0.4 of a 1.5 ms batch-1 call here, all of it
        # under the GIL. The flat inputs are the keyword arguments in sorted order.
        self._flat_inputs = sorted(self.inputs)
        self._captured_inputs = function.captured_inputs

    def parse(self, protos: Mapping[str, tensor_pb2.TensorProto], limits: Limits) -> dict[str, np.ndarray]:
        """The request's input tensors as numpy arrays, checked against the TensorSpecs."""
        if len(protos) != len(self.inputs) or not all(name in self.inputs for name in protos):
            missing, extra = sorted(set(self.inputs) - set(protos)), sorted(set(protos) - set(self.inputs))
            problems = (f"; missing {missing}" if missing else "") + (
                f"; unexpected {quoted_names(extra)}" if extra else ""
            )
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"signature {self.name!r} takes inputs {self._expected}{problems}"
            )
        arrays = {}
        for name, spec in self.inputs.items():
            proto = protos[name]
            if proto.dtype != self._dtypes[name]:
                expected_dtype, dtype = tensors.dtype_name(self._dtypes[name]), tensors.dtype_name(proto.dtype)
                self._refuse(name, f"must be {expected_dtype}, got {dtype}")
            if proto.tensor_shape.unknown_rank:  # TF refuses a TensorProto of unknown rank, dims or not
                self._refuse(name, f"must have shape {_shape_text(spec)}, got a shape of unknown rank")
            shape, expected = tensors.shape_of(proto), self._shapes[name]
            if len(shape) != len(expected) or any(e is not None and e != size for e, size in zip(expected, shape)):
                self._refuse(name, f"must have shape {_shape_text(spec)} (rank {spec.shape.rank}), got {list(shape)}")
            if shape and shape[0] > limits.max_batch_size:
                self._refuse(name, f"has a batch of {shape[0]}; at most {limits.max_batch_size} per request")
            if len(shape) == 2 and shape[1] > limits.max_session_length:
                self._refuse(name, f"has sessions of length {shape[1]}; at most {limits.max_session_length} items")
            if self.name == FROM_METADATA and len(shape) == 2 and shape[0] * shape[1] > limits.max_metadata_items:
                self._refuse(
                    name,
                    f"holds {shape[0] * shape[1]:,} items; at most {limits.max_metadata_items:,} per "
                    "request are encoded from their metadata: send fewer or shorter sessions",
                )
            try:
                arrays[name] = tensors.to_array(proto)
            except ValueError as error:
                self._refuse(name, str(error))
        return arrays

    def _refuse(self, name: str, problem: str) -> NoReturn:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"input {name!r} of signature {self.name!r} {problem}")

    def call(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the signature on inputs `parse` checked.

        Raises tf.errors.OpError for inputs the model refuses, and RequestError where TF's
        error quotes bytes of the input that are not UTF-8 (say, examples that are not
        serialized tf.train.Example protos): TF then raises UnicodeDecodeError while it
        makes the error, and the code it meant is lost; the input is the cause.
        """
        flat = [tf.constant(inputs[name], self.inputs[name].dtype) for name in self._flat_inputs]
        try:
            outputs = self.function._call_flat(flat, self._captured_inputs)
        except UnicodeDecodeError as error:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"signature {self.name!r} could not read its inputs {self._expected}: TensorFlow's "
                f"error quotes bytes of them that are not UTF-8 ({error.reason} at byte "
                f"{error.start}); check that each input holds what the signature takes",
            ) from None
        return {name: value.numpy() for name, value in outputs.items()}

    def check_output_filter(self, names: Iterable[str]) -> tuple[str, ...]:
        """The outputs to answer with: all of them, or those a request's output_filter names."""
        names = tuple(names)
        unknown = sorted(set(names) - set(self.outputs))
        if unknown:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"output_filter names {quoted_names(unknown)}, not "
                f"outputs of signature {self.name!r} ({list(self.outputs)})",
            )
        repeated = sorted(name for name, count in collections.Counter(names).items() if count > 1)
        if repeated:  # as TF Serving: each output is answered once
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"duplicate output tensor alias in output_filter: {repeated}"
            )
        return names or self.outputs

    def fill_outputs(
        self,
        protos: MutableMapping[str, tensor_pb2.TensorProto],
        outputs: Mapping[str, np.ndarray],
        names: Iterable[str],
    ) -> None:
        """Writes `names` of `outputs` into a response's output map, in place (no copies of protos)."""
        for name in names:
            tensors.fill_proto(protos[name], outputs[name])
