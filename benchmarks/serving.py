"""Predict latency and throughput over loopback, for a model over the full Diginetica catalog.

    .venv/bin/python -m benchmarks.serving      # writes benchmarks/results/serving.json

The M2TRec_hybrid model of benchmarks/train.py over all 43,097 Diginetica items (weights
as initialized: latency does not depend on them) is exported with warm-up requests and
served by `python -m serving.cli serve` in its own process, one per server setup in
SERVER_SETUPS: the default (micro-batching on, one-thread op pools, as TF Serving's
`--tensorflow_intra_op_parallelism=1 --tensorflow_inter_op_parallelism=1`), batching off,
TF's own thread pools, the default server answering `recommend_in_top_categories`
(the candidate path; untrained, its top categories are arbitrary ones, so it scores an
average category's share of items, not a trained model's: benchmarks/candidates.py
measures that), and the default server with the A2D-MTL preset (category channel over the
training sessions' category graph, adaptive sparse readout, neighbours among the preset's
index of recent training sessions) at the same widths. A load generator in another process runs 1, 4 and 16
concurrent clients, each sending real test sessions (batch 1) one after another as TF
Serving Predict requests, for `--seconds` per client count.

Two setups measure one client of `serving_default` while 4 other clients send the largest
`recommend_from_metadata` request the server takes, one after another: "metadata stream"
is the default server (4,096 items per request, such calls one at a time on a thread of
their own); "metadata stream, unbounded" is the server as it was before those limits
(256 sessions x 1,000 items accepted, 4 such calls at once). Their rows report the one
client's latency, and the heavy requests' rate and errors beside it. Every row also
gives the server's resident memory before its load, its peak during it (sampled every
50 ms) and what it keeps a second after: under a stream of maximal metadata requests,
whether memory stays bounded and is given back.

This VM's speed drifts by up to 2x within minutes (other tenants), so one pass says
little: `--rounds` passes run every (setup, clients) pair in turn, all servers up (an
idle one costs nothing), and each row reports the median of its rounds, with every
round's figures beside it. `server_cpu_ms` (server CPU time per request) moves less
with the machine's load than latency does, and each round starts by timing the same
model called in a process of its own (`in_process_ms`: p50 of batch-1 calls, one-thread
op pools as the default server; `in_process_ms_batch16`: of 16 sessions per call), which
says how fast the machine was in that round and how much of a request's latency is the model's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

from benchmarks import CALLER_ALLOCATOR
from benchmarks.common import peak_rss_mb, rss_mb, write_result
from contract.model_api import IN_TOP_CATEGORIES, ITEM_IDS, SERVING_DEFAULT
from model.cpu_allocator import ALLOCATOR_ENV, cpu_allocator

CLIENTS = (1, 4, 16)
# recommend_in_top_categories' N (benchmarks/candidates.py: the share of items it scores).
CANDIDATE_CATEGORIES = 20


BASE_VARIANT = "M2TRec_hybrid"


@dataclasses.dataclass(frozen=True)
class Setup:
    """A server's `serving.cli serve` flags, the signature its requests ask for, and the model's preset."""

    flags: tuple[str, ...] = ()
    signature: str = SERVING_DEFAULT
    variant: str = BASE_VARIANT
    clients: tuple[int, ...] = CLIENTS
    # Clients sending recommend_from_metadata requests of `heavy_shape` (sessions, items) beside.
    heavy_clients: int = 0
    heavy_shape: tuple[int, int] = (0, 0)


# The server before recommend_from_metadata was bounded: no item limit, 4 such calls at once.
UNBOUNDED = ("--metadata-threads", "4", "--max-metadata-items", "256000", "--max-request-bytes", str(64 << 20))


SERVER_SETUPS = {
    "default": Setup(),
    "no batching": Setup(("--no-batching",)),
    "TF's thread pools": Setup(("--intra-op-threads", "0", "--inter-op-threads", "0")),
    f"top {CANDIDATE_CATEGORIES} categories": Setup(signature=IN_TOP_CATEGORIES),
    "A2D-MTL": Setup(variant="A2D-MTL"),
    # Beside 4 clients sending the largest recommend_from_metadata request the server takes.
    "metadata stream": Setup(clients=(1,), heavy_clients=4, heavy_shape=(8, 512)),
    "metadata stream, unbounded": Setup(UNBOUNDED, clients=(1,), heavy_clients=4, heavy_shape=(256, 1_000)),
}
MODEL_NAME = "diginetica"
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


def export_diginetica(work_dir: str, variant: str = BASE_VARIANT) -> tuple[str, list[list[str]]]:
    """The model as `<work_dir>/<MODEL_NAME>/1` with warm-up requests (its directory), and test sessions to send.

    The preset `variant` at the base model's widths; what it reads from the training
    sessions (A2D-MTL) is built from Diginetica's training split, as the Trainer does.
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    import contract
    from benchmarks.train import DATASETS, prepare
    from model import export
    from model.catalog import load_catalog
    from model.config import ModelConfig, TrainingSetup
    from model.inputs import read_prefixes
    from model.model import build_model
    from model.trainer import hold_training_sessions
    from model.warmup import write_warmup_requests
    from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

    dataset = DATASETS["diginetica"]
    prepared = prepare("diginetica", os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", "diginetica"))
    catalog = load_catalog(
        prepared["catalog_files"], tft.TFTransformOutput(prepared["transform_dir"]), dataset.preprocessing
    )
    config = ModelConfig.preset(
        variant,
        **dataset.model_overrides,
        item_dim=64,
        id_dim=64,
        num_layers=1,
        num_heads=2,
        ff_dim=128,
        pooling="attention",
        cosine_scores=True,
        temperature=0.08,
        candidate_categories=CANDIDATE_CATEGORIES,
    )
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    hold_training_sessions(model, catalog, prepared["splits"][contract.TRAIN])
    version_dir = os.path.join(work_dir, MODEL_NAME, "1")
    sessions = read_prefixes(prepared["splits"][contract.TEST], 500)
    catalog_records = tf.data.TFRecordDataset(tf.io.gfile.glob(prepared["catalog_files"]), compression_type="GZIP")
    export.export_serving_model(
        model,
        catalog,
        tft.TFTransformOutput(prepared["transform_dir"]),
        TrainingSetup(config, dataset.preprocessing),
        version_dir,
        catalog_examples=(record.numpy() for record in catalog_records),  # as the Trainer exports: refreshable
        sessions=sessions,
    )
    write_warmup_requests(version_dir, MODEL_NAME, sessions[:10])
    return version_dir, sessions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metadata_request(shape: tuple[int, int], sessions: list[list[str]]) -> bytes:
    """A serialized recommend_from_metadata request of `shape` (sessions, items): the test sessions' items,
    each with a title, a category path, a brand and a price, as a client describing new items sends them."""
    from tensorflow_serving.apis import predict_pb2

    from contract.model_api import BRANDS, CATEGORY_PATHS, FROM_METADATA, PRICES, TITLES
    from serving import tensors

    items = [item for session in sessions for item in session]
    ids = np.resize(np.array([item.encode() for item in items], dtype=object), shape)
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, FROM_METADATA
    for name, value in {
        ITEM_IDS: ids,
        TITLES: np.full(shape, b"hydrating daily serum 50 ml", dtype=object),
        CATEGORY_PATHS: np.full(shape, b"Beauty > Skin Care > Serums", dtype=object),
        BRANDS: np.full(shape, b"glow lab", dtype=object),
        PRICES: np.full(shape, 35.0, dtype=np.float32),
    }.items():
        tensors.fill_proto(request.inputs[name], value)
    return request.SerializeToString()


def load(
    target: str,
    signature: str,
    clients: int,
    seconds: float,
    sessions: list[list[str]],
    heavy_clients: int = 0,
    heavy_shape: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """`clients` concurrent clients send Predict requests to `signature` one after another for `seconds`; latency in ms.

    `heavy_clients` more send `metadata_request(heavy_shape)` the same way; only their rate
    and errors are reported.

    Each client has its own channel and waits for its answer before the next request. They
    are coroutines on one asyncio loop (grpc.aio), not threads: on a 2-core machine shared
    with the server, 16 blocking threads fighting over the GIL cost the load generator
    more CPU than the server spends answering, and the benchmark would measure the client.
    """
    import asyncio

    import grpc
    from tensorflow_serving.apis import predict_pb2

    from serving import tensors

    # Requests are serialized once and answers not parsed: the load generator shares the
    # machine's two cores with the server, so it spends as little of them as it can.
    requests = []
    for session in sessions:
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, signature
        tensors.fill_proto(request.inputs[ITEM_IDS], np.array([[s.encode() for s in session]], dtype=object))
        requests.append(request.SerializeToString())
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    heavy = metadata_request(heavy_shape, sessions) if heavy_clients else b""
    heavy_answers: list[str] = []  # each heavy request's status code

    async def client(index: int, start_at: float, stop_at: float) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            predict = channel.unary_unary(PREDICT_METHOD)  # bytes in, bytes out
            await predict(requests[index % len(requests)], timeout=30)  # connect before the clock starts
            await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
            i = index
            while time.perf_counter() < stop_at:
                begin = time.perf_counter()
                try:
                    await predict(requests[i % len(requests)], timeout=30)
                    latencies[index].append((time.perf_counter() - begin) * 1000)
                except grpc.RpcError:
                    errors[index] += 1
                i += clients

    async def heavy_client(start_at: float, stop_at: float) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            predict = channel.unary_unary(PREDICT_METHOD)
            await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
            while time.perf_counter() < stop_at:
                try:
                    await predict(heavy, timeout=60)
                    heavy_answers.append("OK")
                except grpc.RpcError as error:
                    heavy_answers.append(error.code().name)

    async def run_all() -> None:
        start_at = time.perf_counter() + 0.5
        await asyncio.gather(
            *(client(i, start_at, start_at + seconds) for i in range(clients)),
            *(heavy_client(start_at, start_at + seconds) for _ in range(heavy_clients)),
        )

    asyncio.run(run_all())
    all_ms = np.concatenate([np.array(ms) for ms in latencies])
    return {
        "clients": clients,
        "requests": int(all_ms.size),
        "errors": int(sum(errors)),
        "p50_ms": round(float(np.percentile(all_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(all_ms, 99)), 2),
        "qps": round(all_ms.size / seconds, 1),
        **(
            {
                "heavy_qps": round(len(heavy_answers) / seconds, 2),
                "heavy_errors": sum(code != "OK" for code in heavy_answers),
            }
            if heavy_clients
            else {}
        ),
    }


def in_process_call_ms(version_dir: str, sessions: list[list[str]], batch: int = 1, calls: int = 300) -> float:
    """p50 latency of the server's model call made in this process, `batch` sessions per call."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the Transform graph uses)

    from serving.server import set_op_parallelism
    from serving.signatures import Signature

    set_op_parallelism(1, 1)
    signature = Signature(SERVING_DEFAULT, tf.saved_model.load(version_dir).signatures[SERVING_DEFAULT])

    def request(first: int) -> dict[str, np.ndarray]:
        chosen = [sessions[(first + i) % len(sessions)] for i in range(batch)]
        width = max(len(session) for session in chosen)
        return {ITEM_IDS: np.array([[i.encode() for i in s] + [b""] * (width - len(s)) for s in chosen], dtype=object)}

    inputs = [request(first) for first in range(0, len(sessions), batch)]
    for request in inputs[:50]:  # warm-up: every call shape seen once
        signature.call(request)
    latencies = []
    for i in range(calls):
        begin = time.perf_counter()
        signature.call(inputs[i % len(inputs)])
        latencies.append((time.perf_counter() - begin) * 1000)
    return round(float(np.percentile(latencies, 50)), 2)


def server_environment() -> dict[str, str]:
    """The environment of the servers, the in-process calls and the load: what `serving.cli serve` gets from the caller.

    `import benchmarks` asked this process for TensorFlow's pooling CPU allocator, which a
    server does not ask for (model.cpu_allocator); so the servers run with the caller's own
    choice, malloc unless set (`TF_CPU_ALLOCATOR_USE_BFC`, to compare the two). It is written
    out, so the in-process calls, which import benchmarks too, keep it.
    """
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
        ALLOCATOR_ENV: "false" if CALLER_ALLOCATOR is None else CALLER_ALLOCATOR,
    }


def _wait_until_serving(target: str, server: subprocess.Popen, timeout_s: float = 180) -> None:
    from serving.client import RecommenderClient, ServingError

    client = RecommenderClient(target, model_name=MODEL_NAME, timeout_s=2)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if any(state.state == "AVAILABLE" for state in client.status()):
                return
        except ServingError:
            pass
        time.sleep(1)
    raise TimeoutError("the server did not come up")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class _PeakRss:
    """The highest resident memory of process `pid` while the block runs, sampled every `every_s`.

    A server's peak under a request stream lasts as long as its requests, so sampling
    catches it; `resource.getrusage` would give the process's lifetime peak instead.
    """

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self.pid, self.every_s, self.peak_mb = pid, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            self._stop.wait(self.every_s)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb(self.pid))


def _describe(setup: str, result: dict[str, Any]) -> str:
    heavy = (
        f"  beside: {result['heavy_qps']:.2f} metadata req/s, {result['heavy_errors']} errors"
        if "heavy_qps" in result
        else ""
    )
    return (
        f"{setup:<20} clients={result['clients']:>2}  p50 {result['p50_ms']:>6.2f} ms  p99 {result['p99_ms']:>6.2f} ms"
        f"  {result['qps']:>7.1f} req/s  server CPU {result['server_cpu_ms']:.2f} ms/req  errors {result['errors']}"
        f"  (in-process call {result['in_process_ms']:.2f} ms, batch 16 {result['in_process_ms_batch16']:.2f} ms)"
        + heavy
        + f"  server RSS {result['rss_before_mb']:.0f} -> peak {result['rss_peak_mb']:.0f} -> {result['rss_after_mb']:.0f} MiB"
    )


def _median_row(setup: str, clients: int, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "clients": clients,
        "server": setup,
        "server_flags": list(SERVER_SETUPS[setup].flags),
        "signature": SERVER_SETUPS[setup].signature,
        "variant": SERVER_SETUPS[setup].variant,
    }
    for key in (
        "p50_ms",
        "p99_ms",
        "qps",
        "server_cpu_ms",
        "in_process_ms",
        "in_process_ms_batch16",
        "heavy_qps",
        "rss_before_mb",
        "rss_peak_mb",
        "rss_after_mb",
    ):
        if key in rounds[0]:
            row[key] = round(statistics.median(r[key] for r in rounds), 2)
    for key in ("errors", "heavy_errors"):
        if key in rounds[0]:
            row[key] = sum(r[key] for r in rounds)
    row["rounds"] = rounds
    return row


def _run_benchmark_process(args: list[str], env: dict[str, str]) -> str:
    """This module's stdout, run as its own process with `args`."""
    command = [sys.executable, "-m", "benchmarks.serving", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per client count and round")
    parser.add_argument("--rounds", type=int, default=3, help="passes over every setup and client count")
    parser.add_argument("--setup", action="append", choices=list(SERVER_SETUPS), help="default: every setup")
    parser.add_argument("--result", default="serving", help="benchmarks/results/<RESULT>.json")
    # Internal: the load generator's and the in-process timing's own processes.
    parser.add_argument(
        "--load",
        nargs=6,
        metavar=("TARGET", "SIGNATURE", "CLIENTS", "SESSIONS_JSON", "HEAVY", "SHAPE"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--in-process", nargs=3, metavar=("VERSION_DIR", "SESSIONS_JSON", "BATCH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.load:
        target, signature, clients, sessions_file, heavy_clients, shape = args.load
        rows, items = (int(n) for n in shape.split("x"))
        with open(sessions_file) as f:
            sessions = json.load(f)
        print(
            json.dumps(load(target, signature, int(clients), args.seconds, sessions, int(heavy_clients), (rows, items)))
        )
        return
    if args.in_process:
        version_dir, sessions_file, batch = args.in_process
        with open(sessions_file) as f:
            print(json.dumps(in_process_call_ms(version_dir, json.load(f), int(batch))))
        return

    env = server_environment()
    setups = {name: SERVER_SETUPS[name] for name in args.setup or SERVER_SETUPS}
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {(s, c): [] for s in setups for c in setups[s].clients}
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    with tempfile.TemporaryDirectory() as work_dir:
        # One model directory per preset: <work_dir>/<variant>/<MODEL_NAME>/1.
        version_dirs = {}
        for variant in sorted({setup.variant for setup in setups.values()}):
            version_dirs[variant], sessions = export_diginetica(os.path.join(work_dir, variant), variant)
        sessions_file = os.path.join(work_dir, "sessions.json")
        with open(sessions_file, "w") as f:
            json.dump(sessions, f)
        try:
            for setup, server_setup in setups.items():
                port = _free_port()
                command = [
                    sys.executable,
                    "-m",
                    "serving.cli",
                    "serve",
                    "--base-path",
                    os.path.join(work_dir, server_setup.variant),
                    "--model-name",
                    MODEL_NAME,
                    "--port",
                    str(port),
                    *server_setup.flags,
                ]
                servers[setup] = (
                    subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                    port,
                )
            for server, port in servers.values():
                _wait_until_serving(f"127.0.0.1:{port}", server)
            for round_number in range(1, args.rounds + 1):
                in_process_ms = {
                    (variant, batch): json.loads(
                        _run_benchmark_process(
                            ["--in-process", version_dir, sessions_file, str(batch)], env
                        ).splitlines()[-1]
                    )
                    for variant, version_dir in version_dirs.items()
                    for batch in (1, 16)
                }
                for (setup, clients), results in rounds.items():
                    server, port = servers[setup]
                    server_setup = setups[setup]
                    cpu_before, rss_before = _cpu_seconds(server.pid), rss_mb(server.pid)
                    with _PeakRss(server.pid) as rss:
                        out = _run_benchmark_process(
                            [
                                "--seconds",
                                str(args.seconds),
                                "--load",
                                f"127.0.0.1:{port}",
                                server_setup.signature,
                                str(clients),
                                sessions_file,
                                str(server_setup.heavy_clients),
                                "x".join(map(str, server_setup.heavy_shape)),
                            ],
                            env,
                        )
                    result = json.loads(out.splitlines()[-1])
                    # The server idles while the load generator starts: its CPU time is the requests'
                    # (with heavy clients beside, theirs too).
                    result["server_cpu_ms"] = round(
                        (_cpu_seconds(server.pid) - cpu_before) * 1000 / result["requests"], 2
                    )
                    # What the server keeps once its requests are answered: bounded if it gave back
                    # what a stream of them took (measured after a second of quiet).
                    time.sleep(1)
                    result["rss_before_mb"], result["rss_peak_mb"] = round(rss_before), round(rss.peak_mb)
                    result["rss_after_mb"] = round(rss_mb(server.pid))
                    result["in_process_ms"] = in_process_ms[server_setup.variant, 1]
                    result["in_process_ms_batch16"] = in_process_ms[server_setup.variant, 16]
                    results.append(result)
                    print(f"round {round_number}/{args.rounds}  {_describe(setup, result)}", flush=True)
        finally:
            for server, _ in servers.values():
                server.terminate()
                server.wait(timeout=30)
    rows = [_median_row(setup, clients, results) for (setup, clients), results in rounds.items()]
    print(f"\nMedians of {args.rounds} rounds of {args.seconds:g} s:")
    for row in rows:
        print(_describe(row["server"], row))
    write_result(
        args.result,
        {
            "catalog_items": 43_097,
            "seconds_per_row": args.seconds,
            "rounds": args.rounds,
            "rows": rows,
            "benchmark_peak_rss_mb": round(peak_rss_mb()),
            "server_cpu_allocator": cpu_allocator(env),
        },
    )


if __name__ == "__main__":
    main(sys.argv[1:])
