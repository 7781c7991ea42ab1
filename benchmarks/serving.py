"""Predict latency and throughput over loopback, for a model over the full Diginetica catalog.

    .venv/bin/python -m benchmarks.serving      # writes benchmarks/results/serving.json

The M2TRec_hybrid model of benchmarks/train.py over all 43,097 Diginetica items (weights
as initialized: latency does not depend on them) is exported with warm-up requests and
served by `python -m serving.cli serve` in its own process. A load generator in another
process runs 1, 4 and 16 concurrent clients, each sending real test sessions (batch 1)
one after another through TF Serving's Predict stub, for `--seconds` per client count,
for each server setup in SERVER_SETUPS: the default (micro-batching on, one-thread op
pools, as TF Serving's `--tensorflow_intra_op_parallelism=1
--tensorflow_inter_op_parallelism=1`), batching off, and TF's own thread pools.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

CLIENTS = (1, 4, 16)
# Setup name -> `serving.cli serve` flags.
SERVER_SETUPS = {
    "default": [],
    "no batching": ["--no-batching"],
    "TF's thread pools": ["--intra-op-threads", "0", "--inter-op-threads", "0"],
}
MODEL_NAME = "diginetica"


def _export(work_dir: str) -> tuple[str, list[list[str]]]:
    """The model as `<base>/<MODEL_NAME>/1` with warm-up requests, and test sessions to send."""
    import tensorflow_transform as tft

    from benchmarks.train import DATASETS, prepare
    from components import contract
    from model import export
    from model.catalog import load_catalog
    from model.inputs import read_prefixes
    from model.config import ModelConfig
    from model.model import build_model
    from model.trainer import TrainingSetup
    from serving.warmup import write_warmup_requests
    from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

    dataset = DATASETS["diginetica"]
    prepared = prepare("diginetica", os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", "diginetica"))
    catalog = load_catalog(prepared["catalog_files"], tft.TFTransformOutput(prepared["transform_dir"]), dataset.preprocessing)
    config = ModelConfig.preset("M2TRec_hybrid", **dataset.model_overrides, item_dim=64, id_dim=64, num_layers=1,
                                num_heads=2, ff_dim=128, pooling="attention", cosine_scores=True, temperature=0.08)  # fmt: skip
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    version_dir = os.path.join(work_dir, MODEL_NAME, "1")
    export.export_serving_model(model, catalog, tft.TFTransformOutput(prepared["transform_dir"]),
                                TrainingSetup(config, dataset.preprocessing), version_dir)  # fmt: skip
    sessions = read_prefixes(prepared["splits"][contract.TEST], 500)
    write_warmup_requests(version_dir, MODEL_NAME, sessions[:10])
    return work_dir, sessions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(target: str, clients: int, seconds: float, sessions: list[list[str]]) -> dict[str, Any]:
    """`clients` concurrent clients send Predict requests one after another for `seconds`; latency in ms.

    Each client has its own channel and waits for its answer before the next request. They
    are coroutines on one asyncio loop (grpc.aio), not threads: on a 2-core machine shared
    with the server, 16 blocking threads fighting over the GIL cost the load generator
    more CPU than the server spends answering, and the benchmark would measure the client.
    """
    import asyncio

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from serving import tensors

    requests = []
    for session in sessions:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        tensors.fill_proto(request.inputs["item_ids"], np.array([[s.encode() for s in session]], dtype=object))
        requests.append(request)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    async def client(index: int, start_at: float, stop_at: float) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            await stub.Predict(requests[index % len(requests)], timeout=30)  # connect before the clock starts
            await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
            i = index
            while time.perf_counter() < stop_at:
                begin = time.perf_counter()
                try:
                    await stub.Predict(requests[i % len(requests)], timeout=30)
                    latencies[index].append((time.perf_counter() - begin) * 1000)
                except grpc.RpcError:
                    errors[index] += 1
                i += clients

    async def run_all() -> None:
        start_at = time.perf_counter() + 0.5
        await asyncio.gather(*(client(i, start_at, start_at + seconds) for i in range(clients)))

    asyncio.run(run_all())
    all_ms = np.concatenate([np.array(l) for l in latencies])
    return {
        "clients": clients,
        "requests": int(all_ms.size),
        "errors": int(sum(errors)),
        "p50_ms": round(float(np.percentile(all_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(all_ms, 99)), 2),
        "qps": round(all_ms.size / seconds, 1),
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


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per client count")
    # Internal: the load generator's own process.
    parser.add_argument("--load", nargs=3, metavar=("TARGET", "CLIENTS", "SESSIONS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        target, clients, sessions_file = args.load
        with open(sessions_file) as f:
            print(json.dumps(load(target, int(clients), args.seconds, json.load(f))))
        return

    from benchmarks.common import peak_rss_mb, write_result

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        base_path, sessions = _export(work_dir)
        sessions_file = os.path.join(work_dir, "sessions.json")
        with open(sessions_file, "w") as f:
            json.dump(sessions, f)
        for setup, flags in SERVER_SETUPS.items():
            port = _free_port()
            command = [sys.executable, "-m", "serving.cli", "serve", "--base-path", base_path, "--model-name",
                       MODEL_NAME, "--port", str(port), *flags]  # fmt: skip
            server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _wait_until_serving(f"127.0.0.1:{port}", server)
                for clients in CLIENTS:
                    out = subprocess.run(
                        [sys.executable, "-m", "benchmarks.serving", "--seconds", str(args.seconds), "--load",
                         f"127.0.0.1:{port}", str(clients), sessions_file],
                        env=env, capture_output=True, text=True, check=True,
                    )  # fmt: skip
                    row = {**json.loads(out.stdout.strip().splitlines()[-1]), "server": setup, "server_flags": flags}
                    rows.append(row)
                    print(f"{setup:<18} clients={row['clients']:>2}  p50 {row['p50_ms']:>7.2f} ms"
                          f"  p99 {row['p99_ms']:>7.2f} ms  {row['qps']:>8.1f} req/s  errors {row['errors']}", flush=True)  # fmt: skip
            finally:
                server.terminate()
                server.wait(timeout=30)
    write_result("serving", {"catalog_items": 43_097, "seconds_per_row": args.seconds, "rows": rows,
                             "benchmark_peak_rss_mb": round(peak_rss_mb())})  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
