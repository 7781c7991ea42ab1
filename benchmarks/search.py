"""V-SKNN's hyper-parameters, searched on a validation split carved from training, never on test.

    .venv/bin/python -m benchmarks.search --dataset diginetica

Every (neighbours k, sample size) pair of the data set's `vsknn_space`
(benchmarks/compare_config.json) is scored by HIT@20 / MRR@20 on the first `eval_examples`
of the eval split; the best is what benchmarks/compare.py runs. The neural rows need no
search here: they train with ModelConfig's defaults, which benchmarks/ablation.py chose
on validation.

Writes benchmarks/results/search_<dataset>.json (every trial, the chosen values) and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import contract
from benchmarks import train as bench
from benchmarks.common import RESULTS_DIR, write_result
from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

COMPARE_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare_config.json")


def compare_config(dataset: str) -> dict[str, Any]:
    """The recorded comparison budget and V-SKNN search space of `dataset`."""
    with open(COMPARE_CONFIG) as f:
        return json.load(f)[dataset]


def _search_vsknn(dataset: str, setup: dict[str, Any], work_dir: str) -> dict[str, Any]:
    from benchmarks.baselines import VSKNN

    prepared, catalog = bench.load(dataset, work_dir)
    search = setup["search"]
    sessions = VSKNN.sessions_from_examples(prepared["splits"][contract.TRAIN], catalog.item_ids)
    trials = []
    for k in search["vsknn_space"]["k"]:
        for sample_size in search["vsknn_space"]["sample_size"]:
            start = time.time()
            model = VSKNN(sessions, k=k, sample_size=sample_size)
            metrics = bench.evaluate(
                model,
                catalog,
                prepared["splits"][contract.EVAL],
                bench.DATASETS[dataset].ingest.max_prefix_length,
                max_examples=search["eval_examples"],
            )["all"]
            trial = {
                "change": {"k": k, "sample_size": sample_size},
                "wall_s": round(time.time() - start),
                "val_hit@20": round(metrics["hit@20"], 4),
                "val_mrr@20": round(metrics["mrr@20"], 4),
            }
            trials.append(trial)
            print(json.dumps(trial), flush=True)
    best = max(trials, key=lambda t: (t["val_hit@20"], t["val_mrr@20"]))
    return {"trials": trials, "chosen": best["change"]}


def search_path(dataset: str) -> str:
    return os.path.join(RESULTS_DIR, f"search_{dataset}.json")


def load_search(dataset: str) -> dict[str, Any]:
    """The recorded search of `dataset` ({} before any)."""
    if not os.path.exists(search_path(dataset)):
        return {}
    with open(search_path(dataset)) as f:
        return json.load(f)


def _markdown(dataset: str, result: dict[str, Any], setup: dict[str, Any]) -> str:
    lines = [
        f"# V-SKNN search, {dataset}",
        "",
        f"Validation: the first {setup['search']['eval_examples']:,} examples of the eval split (carved from "
        "training sessions; test is never read).",
        "",
        "| k, sample | val HIT@20 | val MRR@20 | wall s |",
        "|---|---:|---:|---:|",
    ]
    for t in result["vsknn"]["trials"]:
        lines.append(
            f"| {t['change']['k']}, {t['change']['sample_size']} | {100 * t['val_hit@20']:.2f} | "
            f"{100 * t['val_mrr@20']:.2f} | {t['wall_s']} |"
        )
    lines += ["", f"Chosen: `{json.dumps(result['vsknn']['chosen'])}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(bench.DATASETS), required=True)
    parser.add_argument("--work-dir", help="cache of prepared data (default outputs/benchmarks/<dataset>)")
    args = parser.parse_args(argv)
    work_dir = os.path.abspath(args.work_dir or os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", args.dataset))
    setup = compare_config(args.dataset)
    result = {"dataset": args.dataset, "vsknn": _search_vsknn(args.dataset, setup, work_dir)}
    write_result(f"search_{args.dataset}", result)
    markdown = _markdown(args.dataset, result, setup)
    with open(os.path.join(RESULTS_DIR, f"search_{args.dataset}.md"), "w") as f:
        f.write(markdown)
    print(markdown)


if __name__ == "__main__":
    main(sys.argv[1:])
