"""Command line: serve the newest model version over gRPC, or ask a server for recommendations.

    python -m serving.cli serve --base-path outputs/serving --model-name recommender [--port 8500] \\
        [--host 0.0.0.0 --tls-cert server.pem --tls-key server.key [--tls-client-ca clients-ca.pem]]
    python -m serving.cli recommend --target 127.0.0.1:8500 --model-name recommender \\
        100001 100042 --catalog data/default/catalog.csv.gz [--exclude 100007 100008] [--exclude-session-items]

`serve` loads `<base-path>/<model-name>/<newest version>`, polls for new versions every
`--poll-s` seconds and runs until Ctrl-C or SIGTERM, then stops gracefully (requests in
flight are answered). `recommend` prints the top-K as a table (rank, item id, score and,
with `--catalog`, each item's title and category path) and the top categories per level;
a gRPC error prints the code and the server's message, and exits with 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

import pandas as pd

import contract
from serving.client import DEFAULT_TARGET, Recommendations, RecommenderClient, ServingError
from serving.server import ServerConfig
from serving.signatures import Limits
from serving.tls import ClientTls, ServerTls

_TITLE_WIDTH = 60


def _serve(args: argparse.Namespace) -> int:
    from absl import logging

    from serving.server import RecommenderServer, set_op_parallelism
    from serving.versions import VersionManager

    logging.set_verbosity(logging.INFO)
    set_op_parallelism(args.intra_op_threads, args.inter_op_threads)
    # Handlers first: a SIGTERM during the first load also stops cleanly.
    stopping = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stopping.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            tls = ServerTls.from_files(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        limits = Limits(args.max_batch_size, args.max_session_length, args.max_request_bytes, args.max_metadata_items)
        versions = VersionManager(args.base_path, args.model_name, poll_s=args.poll_s, limits=limits).start()
        config = ServerConfig(
            args.host,
            args.port,
            limits,
            not args.no_batching,
            args.batch_max_size,
            args.batch_timeout_ms,
            args.call_threads,
            args.max_concurrent_rpcs,
            args.metadata_threads,
            tls,
        )
        server = RecommenderServer(versions, config)
        try:
            port = server.start()
        except RuntimeError as error:
            versions.stop()
            print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
            return 1
        current = versions.current
        print(
            f"Serving {args.model_name!r} ({f'version {current.version}' if current else 'no version yet'}) "
            f"on {args.host}:{port}; Ctrl-C to stop",
            flush=True,
        )
        while not stopping.wait(0.5):  # a timed wait: signal handlers run between waits
            pass
        print("Stopping: answering the requests in flight", flush=True)
        server.stop()
        versions.stop()
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def read_catalog(path: str) -> pd.DataFrame:
    """A contract catalog (CSV, CSV.gz or Parquet) indexed by item id, with title and category path."""
    if path.endswith(".parquet"):
        frame = pd.read_parquet(path).fillna("").astype(str)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")
    for column in (contract.TITLE, contract.CATEGORY_PATH):
        if column not in frame.columns:
            frame[column] = ""
    frame[contract.ITEM_ID] = frame[contract.ITEM_ID].str.strip()
    return frame.drop_duplicates(contract.ITEM_ID).set_index(contract.ITEM_ID)[[contract.TITLE, contract.CATEGORY_PATH]]


def format_recommendations(answer: Recommendations, catalog: pd.DataFrame | None = None) -> str:
    """The answer as a table, then the top categories per level."""
    header = ["rank", "item id", "score"] + (["title", "category"] if catalog is not None else [])
    rows = []
    for rank, (item_id, score) in enumerate(zip(answer.item_ids, answer.scores), start=1):
        row = [str(rank), item_id, f"{score:.4f}"]
        if catalog is not None:
            title, path = catalog.loc[item_id].tolist() if item_id in catalog.index else ("(not in the catalog)", "")
            row += [title if len(title) <= _TITLE_WIDTH else title[: _TITLE_WIDTH - 1] + "…", path]
        rows.append(row)
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    numeric = {0, 2}  # right-aligned columns

    def line(cells: list[str]) -> str:
        aligned = (c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(aligned).rstrip()

    lines = [line(cells) for cells in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if answer.top_categories:
        lines += ["", "Top categories:"]
        lines += [
            f"  L{level}: " + ", ".join(f"{name} ({score:.2f})" for name, score in categories)
            for level, categories in sorted(answer.top_categories.items())
        ]
    if answer.unknown_items:
        lines += ["", f"{answer.unknown_items} id(s) of the session are not in the model's catalog and were left out."]
    lines += ["", f"(model version {answer.model_version})"]
    return "\n".join(lines)


def _recommend(args: argparse.Namespace) -> int:
    try:
        catalog = read_catalog(args.catalog) if args.catalog else None
    except (OSError, ValueError, KeyError) as error:
        print(f"error: cannot read the catalog {args.catalog}: {error}", file=sys.stderr)
        return 1
    try:
        tls = ClientTls.from_files(args.tls_ca, args.tls_cert, args.tls_key) if args.tls else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with RecommenderClient(args.target, model_name=args.model_name, timeout_s=args.timeout_s, tls=tls) as client:
        try:
            [answer] = client.recommend(
                args.item_ids, exclude=args.exclude, exclude_session_items=args.exclude_session_items
            )
        except ServingError as error:
            print(f"error: {args.target} answered {error.code.name}: {error.details}", file=sys.stderr)
            return 1
    print(format_recommendations(answer, catalog))
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the newest version under BASE_PATH/MODEL_NAME")
    serve.add_argument("--base-path", required=True, help="holds MODEL_NAME/<version>/saved_model.pb")
    serve.add_argument("--model-name", required=True)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="0.0.0.0 to answer other machines (with --tls-cert and --tls-key, or anyone may call it)",
    )
    serve.add_argument("--port", type=int, default=8500, help="0: any free port (printed)")
    serve.add_argument("--poll-s", type=float, default=5.0, help="seconds between looks for a new version")
    # TF Serving's --ssl_config_file: server_cert, server_key, and custom_ca with client_verify.
    serve.add_argument("--tls-cert", metavar="PEM", help="serve over TLS with this certificate chain (needs --tls-key)")
    serve.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    serve.add_argument("--tls-client-ca", metavar="PEM", help="admit only clients with a certificate this CA signed")
    serve.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        default=ServerConfig.max_concurrent_rpcs,
        help="more requests in flight are refused with RESOURCE_EXHAUSTED",
    )
    serve.add_argument(
        "--call-threads",
        type=int,
        default=ServerConfig.call_threads,
        help="model calls at once outside the batcher (other signatures, or --no-batching)",
    )
    serve.add_argument(
        "--metadata-threads",
        type=int,
        default=ServerConfig.metadata_threads,
        help="recommend_from_metadata calls at once (they queue beyond it)",
    )
    serve.add_argument("--no-batching", action="store_true", help="one model call per request, even under load")
    serve.add_argument(
        "--batch-max-size", type=int, default=ServerConfig.batch_max_size, help="sessions per batched model call"
    )
    serve.add_argument(
        "--batch-timeout-ms",
        type=float,
        default=ServerConfig.batch_timeout_ms,
        help="> 0: batches wait this long for company",
    )
    # TF Serving's --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism. One
    # thread each: a recommendation is many tiny ops, and concurrent requests fill the cores.
    serve.add_argument("--intra-op-threads", type=int, default=1, help="threads within one op (0: TF's default)")
    serve.add_argument("--inter-op-threads", type=int, default=1, help="ops of one call run at once (0: TF's default)")
    defaults = Limits()
    serve.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size, help="sessions per request")
    serve.add_argument("--max-session-length", type=int, default=defaults.max_session_length)
    serve.add_argument("--max-request-bytes", type=int, default=defaults.max_request_bytes)
    serve.add_argument(
        "--max-metadata-items",
        type=int,
        default=defaults.max_metadata_items,
        help="items per recommend_from_metadata request",
    )
    serve.set_defaults(run=_serve)

    recommend = commands.add_parser("recommend", help="recommendations for one session")
    recommend.add_argument("item_ids", nargs="+", metavar="ITEM_ID", help="the session's item ids, oldest first")
    recommend.add_argument("--target", default=DEFAULT_TARGET, help="HOST:PORT of the server")
    recommend.add_argument("--model-name", required=True)
    recommend.add_argument("--catalog", help="contract catalog (CSV, CSV.gz, Parquet) for titles and categories")
    recommend.add_argument("--timeout-s", type=float, default=10.0)
    recommend.add_argument(
        "--tls", action="store_true", help="the server speaks TLS (implied by the --tls-* flags below)"
    )
    recommend.add_argument("--tls-ca", metavar="PEM", help="the CA of the server's certificate (default: the system's)")
    recommend.add_argument(
        "--tls-cert", metavar="PEM", help="this client's certificate, for a server that verifies clients"
    )
    recommend.add_argument("--tls-key", metavar="PEM", help="its private key")
    recommend.add_argument(
        "--exclude", nargs="+", default=[], metavar="ITEM_ID", help="ids never to recommend (basket, out of stock)"
    )
    recommend.add_argument(
        "--exclude-session-items", action="store_true", help="never recommend the session's own items"
    )
    recommend.set_defaults(run=_recommend)
    args = parser.parse_args(argv)
    if args.command == "serve" and (args.tls_cert is None) != (args.tls_key is None):
        serve.error("--tls-cert and --tls-key go together")
    if args.command == "serve" and args.tls_client_ca and not args.tls_cert:
        serve.error("--tls-client-ca needs --tls-cert and --tls-key: clients are verified over TLS")
    if args.command == "recommend":
        if (args.tls_cert is None) != (args.tls_key is None):
            recommend.error("--tls-cert and --tls-key go together")
        args.tls = args.tls or bool(args.tls_ca or args.tls_cert)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
