"""Model versions on disk -> the one being served, swapped without dropping a request.

The layout is TF Serving's: `<base_path>/<model_name>/<version>/saved_model.pb`, the
version a number. Names that are not numbers (a Pusher's `.tmp-*` copy in progress),
numbers that do not fit a version (int64, as ModelSpec's), and version directories
without `saved_model.pb` yet are ignored. A version written in place (plain `cp -r`,
rsync, an object-store sync) is loaded once nothing under it has changed for `settle_s`.
As TF Serving's default latest-version policy does, the newest version is loaded, warmed up with its
`assets.extra/tf_serving_warmup_requests`, marked AVAILABLE, put in place, and only then
is the previous one marked END. A request reads `current` once and finishes on that
`Servable` even if a swap happens meanwhile (the reference keeps the old model alive
until its last request is answered); the swap is one attribute assignment, so readers
take no lock. A version that fails to load (or to warm up) is logged, marked END with
the error, and tried again after `load_retry_s`, doubling, `max_load_attempts` times in
all (TF Serving tries 5 times); the previous one keeps serving meanwhile. When the served
version's directory disappears the newest remaining one is loaded (a rollback); when
none remains, the last one loaded keeps serving.

Usage:

    versions = VersionManager("/models", "recommender", poll_s=5).start()  # loads the newest
    servable = versions.current   # Servable(version=7, ...), or None before the first load
    versions.states()             # {6: VersionState(6, END), 7: VersionState(7, AVAILABLE)}
    versions.stop()
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import grpc
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the Transform graph uses)
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from contract.model_api import SERVING_DEFAULT
from serving.signatures import Limits, RequestError, Signature, refuse_sessions_without_items, status_of
from serving.warmup import read_warmup_requests

DEFAULT_POLL_S = 5.0
MAX_VERSION = 2**63 - 1  # ModelSpec.version is an int64
MTIME_RESOLUTION_S = 1.0  # tf.io.gfile.stat gives mtimes in whole seconds: a change may be this much newer
_REPORTED: set[str] = set()  # ignored directory names already logged
State = get_model_status_pb2.ModelVersionStatus.State
LOADING, AVAILABLE, END = State.Value("LOADING"), State.Value("AVAILABLE"), State.Value("END")


@dataclasses.dataclass(frozen=True)
class Servable:
    """One loaded version: what a request needs, and the model that keeps it alive."""

    model_name: str
    version: int
    path: str
    signatures: Mapping[str, Signature]
    signature_defs: get_model_metadata_pb2.SignatureDefMap  # as saved_model.pb has them, for GetModelMetadata
    warmup_requests: int  # how many warm-up requests were replayed at load
    model: Any  # the loaded SavedModel: owns the variables and tables the signatures capture


@dataclasses.dataclass(frozen=True)
class VersionState:
    version: int
    state: int  # a ModelVersionStatus.State value
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


def find_versions(model_dir: str) -> list[int]:
    """The complete versions under `model_dir`, oldest first."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    names = [name.rstrip("/") for name in tf.io.gfile.listdir(model_dir)]  # GCS lists folders with a "/"
    versions = []
    for name in names:
        if not (name.isascii() and name.isdigit()):
            continue
        if int(name) > MAX_VERSION:
            path = os.path.join(model_dir, name)
            if path not in _REPORTED:
                _REPORTED.add(path)
                logging.warning("Ignoring %s: %s does not fit a version number (int64)", path, name)
            continue
        if tf.io.gfile.exists(os.path.join(model_dir, name, "saved_model.pb")):
            versions.append(int(name))
    return sorted(versions)


def newest_change(path: str) -> tuple[float, list[tuple[str, int, int]]]:
    """When anything under `path` last changed (seconds since the epoch), and each file's path, size and mtime."""
    files = []
    for directory, _, names in tf.io.gfile.walk(path):
        for name in names:
            stat = tf.io.gfile.stat(os.path.join(directory, name))
            files.append((os.path.join(directory, name), stat.length, stat.mtime_nsec))
    return max((mtime for _, _, mtime in files), default=0) / 1e9, sorted(files)


def read_signature_defs(saved_model_dir: str) -> get_model_metadata_pb2.SignatureDefMap:
    """The SignatureDefs of saved_model.pb, without TF's internal `__saved_model_init_op`."""
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in saved_model.meta_graphs[0].signature_def.items():
        if not name.startswith("__"):
            signature_defs.signature_def[name].CopyFrom(signature_def)
    return signature_defs


def describe(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The gRPC code and message a failed load reports (TF's errors keep their code)."""
    if isinstance(error, RequestError):
        return error.code, error.message
    if isinstance(error, tf.errors.OpError):
        return status_of(error)
    return grpc.StatusCode.UNKNOWN, f"{type(error).__name__}: {error}"


def load_servable(model_dir: str, model_name: str, version: int, limits: Limits = Limits()) -> Servable:
    """Loads one version and replays its warm-up requests; raises if either fails."""
    path = os.path.join(model_dir, str(version))
    model = tf.saved_model.load(path)
    signatures = {name: Signature(name, function) for name, function in model.signatures.items()}
    warmup = read_warmup_requests(path)
    for number, request in enumerate(warmup, start=1):
        name = request.model_spec.signature_name or SERVING_DEFAULT
        if name not in signatures:
            raise ValueError(f"warm-up request {number} is for signature {name!r}, which {path} does not have")
        try:
            refuse_sessions_without_items(signatures[name].call(signatures[name].parse(request.inputs, limits)))
        except (RequestError, tf.errors.OpError) as error:
            code, message = describe(error)
            raise RequestError(code, f"warm-up request {number} of {len(warmup)} failed: {message}") from error
    return Servable(model_name, version, path, signatures, read_signature_defs(path), len(warmup), model)


class VersionManager:
    """Serves the newest complete version of one model; a thread polls for new ones."""

    def __init__(
        self,
        base_path: str,
        model_name: str,
        poll_s: float = DEFAULT_POLL_S,
        limits: Limits = Limits(),
        settle_s: float = 2.0,
        load_retry_s: float = 30.0,
        max_load_attempts: int = 5,
    ) -> None:
        self.model_name = model_name
        self.model_dir = os.path.join(base_path, model_name)
        self.poll_s = poll_s
        self.limits = limits
        self.settle_s = settle_s
        self.load_retry_s = load_retry_s
        self.max_load_attempts = max_load_attempts
        self._current: Servable | None = None
        self._states: dict[int, VersionState] = {}
        self._states_lock = threading.Lock()  # for the states only: requests never take it
        self._failures: dict[int, tuple[int, float]] = {}  # version -> (failed loads, when to try again)
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def current(self) -> Servable | None:
        """The version being served; read it once per request."""
        return self._current

    def states(self) -> dict[int, VersionState]:
        with self._states_lock:
            return dict(self._states)

    def _set_state(self, state: VersionState) -> None:
        with self._states_lock:
            self._states[state.version] = state

    def _may_load(self, version: int, now: float) -> bool:
        failures, retry_at = self._failures.get(version, (0, 0.0))
        return failures < self.max_load_attempts and now >= retry_at

    def _settled(self, version: int) -> bool:
        """Whether nothing under the version's directory changed for `settle_s` (waits up to that long to see)."""
        path = os.path.join(self.model_dir, str(version))
        changed, files = newest_change(path)
        quiet_s = time.time() - changed - MTIME_RESOLUTION_S
        if quiet_s >= self.settle_s:
            return True
        if self._stopping.wait(self.settle_s - quiet_s):
            return False
        if newest_change(path)[1] != files:
            logging.info("%s is still being written; loading it once it settles", path)
            return False
        return True

    def poll(self) -> None:
        """Loads the newest version if it is not the one served; one pass, in this thread."""
        now = time.monotonic()
        candidates = [v for v in find_versions(self.model_dir) if self._may_load(v, now)]
        previous = self._current
        if not candidates or (previous is not None and previous.version == candidates[-1]):
            return
        version = candidates[-1]
        if not self._settled(version):
            return
        logging.info("Loading %s version %d", self.model_name, version)
        self._set_state(VersionState(version, LOADING))
        try:
            servable = load_servable(self.model_dir, self.model_name, version, self.limits)
        except Exception as error:  # any failure: keep serving the previous version
            failures = self._failures.get(version, (0, 0.0))[0] + 1
            wait_s = self.load_retry_s * 2 ** (failures - 1)
            self._failures[version] = (failures, time.monotonic() + wait_s)
            retry = f"attempt {failures} of {self.max_load_attempts}; " + (
                f"trying again in {wait_s:g} s" if failures < self.max_load_attempts else "not tried again"
            )
            fallback = f"version {previous.version} keeps serving" if previous else "nothing to serve"
            logging.exception("Loading %s version %d failed (%s); %s", self.model_name, version, retry, fallback)
            code, message = describe(error)
            self._set_state(VersionState(version, END, code, f"{message[:2000]} ({retry})"))
            return
        self._failures.pop(version, None)
        self._set_state(VersionState(version, AVAILABLE))
        self._current = servable
        if previous is not None:
            self._set_state(VersionState(previous.version, END))
            # A loaded SavedModel holds reference cycles: only the cycle collector frees the
            # old version, once its last request is answered. Collect now (a load took far
            # longer) rather than whenever Python next runs a full collection.
            del previous
            gc.collect()
        logging.info(
            "Serving %s version %d (%d warm-up requests replayed)", self.model_name, version, servable.warmup_requests
        )

    def start(self) -> VersionManager:
        """Loads the newest version now, then polls every `poll_s` seconds in a thread."""
        self.poll()
        self._poller = threading.Thread(target=self._poll_loop, name=f"versions-{self.model_name}", daemon=True)
        self._poller.start()
        return self

    def _poll_loop(self) -> None:
        while not self._stopping.wait(self.poll_s):
            try:
                self.poll()
            except Exception:  # a file system hiccup must not end the polling
                logging.exception("Polling %s failed", self.model_dir)

    def stop(self) -> None:
        """Stops polling (waits for a load in progress); the current version stays usable."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.join()
