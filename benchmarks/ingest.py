"""SessionExampleGen on the full Diginetica SR-GNN split: throughput, wall time, memory, counts.

    .venv/bin/python -m benchmarks.ingest            # writes benchmarks/results/ingest.json

The split is the published one (719,470 train / 60,858 test examples over 43,097 items
and 995 categories); the script fails if the ExampleGen does not reproduce it exactly.
The ExampleGen runs as a real TFX component (LocalDagRunner, sqlite MLMD, DirectRunner).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

from tfx import v1 as tfx

import contract
from benchmarks.common import peak_rss_mb, write_result
from components.readers import diginetica
from components.session_example_gen import IngestConfig, SessionExampleGen
from components.session_example_gen import report as report_lib
from tfx_pipeline.config import PipelineConfig

EXPECTED = {"train": 719_470, "test": 60_858, "items": 43_097, "categories": 995}


def run(work_dir: str) -> dict:
    start = time.time()
    clicks, catalog = diginetica.read_srgnn(diginetica.data_paths()["srgnn_dir"])
    data_dir = f"{work_dir}/data"
    contract.write_contract(clicks, catalog, data_dir)
    convert_s = time.time() - start

    config = PipelineConfig(
        data_dir=data_dir,
        output_dir=f"{work_dir}/outputs",
        ingest=IngestConfig(split_method="column", column_splits=(contract.TRAIN, contract.TEST)),
        enable_cache=False,
    )
    example_gen = SessionExampleGen(input_base=config.data_dir, config=config.ingest)
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="ingest-benchmark",
        pipeline_root=config.pipeline_root,
        components=[example_gen],
        enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            f"{work_dir}/metadata.db"
        ),
    )
    start = time.time()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    ingest_s = time.time() - start

    report_dir = f"{config.pipeline_root}/SessionExampleGen/ingest_report"
    report = report_lib.read_report(f"{report_dir}/{_only_execution(report_dir)}")
    return {
        "dataset": "diginetica-srgnn",
        "clicks": report.clicks.rows,
        "examples": {name: split.examples for name, split in report.splits.items()},
        "sessions": {name: split.sessions for name, split in report.splits.items()},
        "items": report.catalog.items,
        "categories": report.catalog.categories,
        "bad_rows": report.clicks.bad_rows,
        "filtered": dict(report.clicks.filtered),
        "convert_wall_s": round(convert_s, 1),
        "ingest_wall_s": round(ingest_s, 1),
        "examples_per_s": round(report.examples / ingest_s),
        "clicks_per_s": round(report.clicks.rows / ingest_s),
        "peak_rss_mb": round(peak_rss_mb()),
        "config": dataclasses.asdict(config.ingest),
    }


def _only_execution(directory: str) -> str:
    (execution,) = os.listdir(directory)
    return execution


def check(result: dict) -> list[str]:
    actual = {**result["examples"], "items": result["items"], "categories": result["categories"]}
    return [
        f"{key}: expected {value:,}, got {actual.get(key, 0):,}"
        for key, value in EXPECTED.items()
        if actual.get(key) != value
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.work_dir or tmp)
    print(f"{'split':<8}{'sessions':>12}{'examples':>12}")
    for name, n in result["examples"].items():
        print(f"{name:<8}{result['sessions'][name]:>12,}{n:>12,}")
    print(
        f"clicks {result['clicks']:,}, items {result['items']:,}, categories {result['categories']:,}, "
        f"bad rows {result['bad_rows']:,}\n"
        f"ingest {result['ingest_wall_s']} s ({result['examples_per_s']:,} examples/s, "
        f"{result['clicks_per_s']:,} clicks/s), contract conversion {result['convert_wall_s']} s, "
        f"peak RSS {result['peak_rss_mb']:,} MiB"
    )
    problems = check(result)
    result["matches_published_counts"] = not problems
    print("results:", write_result("ingest", result))
    for problem in problems:
        print("MISMATCH", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
