"""A catalog refresh of the full Diginetica catalog: wall time and peak memory.

    .venv/bin/python -m benchmarks.refresh      # writes benchmarks/results/refresh.json

The model of benchmarks/serving.py (M2TRec_hybrid over all 43,097 Diginetica items, weights
as initialized: a refresh's cost does not depend on them) is exported as version 1, as the
Trainer exports it, with its refresh assets. The new catalog drops `--change` of the items
and adds as many new ones (new ids, in the categories of random existing items). Then
`python -m components.catalog_refresh` runs in a process of its own, as an operator would
run it, so its wall time includes starting Python and TensorFlow and its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import contract
from benchmarks.common import write_result
from benchmarks.serving import export_diginetica
from components.catalog_refresh import REPORT_FILE
from model.refresh_assets import REFRESH_DIR
from tfx_pipeline.config import DEFAULT_OUTPUT_DIR


def new_catalog(catalog_csv: str, out_path: str, change: float, seed: int = 0) -> dict[str, int]:
    """Writes `catalog_csv` less a share `change` of its items, plus as many new ones; returns the counts."""
    catalog = pd.read_csv(catalog_csv, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    changed = int(round(change * len(catalog)))
    kept = catalog.drop(index=rng.choice(len(catalog), changed, replace=False))
    added = catalog.iloc[rng.choice(len(catalog), changed, replace=False)].copy()
    added[contract.ITEM_ID] = [f"new-{i}" for i in range(changed)]
    pd.concat([kept, added]).to_csv(out_path, index=False)
    return {"items_before": len(catalog), "removed": changed, "added": changed, "items_after": len(kept) + changed}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--change", type=float, default=0.01, help="share of items removed, and as many added")
    args = parser.parse_args(argv)
    work_dir = os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", "diginetica")
    with tempfile.TemporaryDirectory() as tmp:
        version_dir, _ = export_diginetica(tmp)  # prepares the data set first, where it is not cached
        catalog_csv = os.path.join(work_dir, "contract", "catalog.csv.gz")  # benchmarks.train.prepare's copy
        counts = new_catalog(catalog_csv, os.path.join(tmp, "new_catalog.csv"), args.change)
        command = [
            sys.executable,
            "-m",
            "components.catalog_refresh",
            "--serving-base",
            os.path.dirname(version_dir),
            "--catalog",
            os.path.join(tmp, "new_catalog.csv"),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
        start = time.time()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        process_s = time.time() - start
        print(done.stdout)
        if done.returncode:
            raise SystemExit(f"the refresh failed ({done.returncode}):\n{done.stderr[-3000:]}")
        [pushed] = [v for v in os.listdir(os.path.dirname(version_dir)) if v.isdigit() and v != "1"]
        with open(os.path.join(os.path.dirname(version_dir), pushed, REFRESH_DIR, REPORT_FILE)) as f:
            report = json.load(f)
    result = {
        **counts,
        "refresh_wall_s": report["wall_s"],  # inside the refresh: read, encode, export, validate
        "process_wall_s": round(process_s, 1),  # the command, Python and TensorFlow start included
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "report": report,
        "command": "python -m components.catalog_refresh --serving-base <dir> --catalog <new catalog>",
    }
    print(
        f"refresh of {counts['items_after']:,} items ({counts['added']:,} added, {counts['removed']:,} removed): "
        f"{result['refresh_wall_s']} s in the refresh, {result['process_wall_s']} s for the command, "
        f"peak RSS {result['peak_rss_mb']:,} MiB"
    )
    print("results:", write_result("refresh", result))


if __name__ == "__main__":
    main(sys.argv[1:])
