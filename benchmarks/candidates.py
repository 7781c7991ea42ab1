"""HierSRec's candidate path against full scoring: items scored, accuracy kept, in-process latency.

    .venv/bin/python -m benchmarks.candidates   # writes benchmarks/results/candidates.json

A HierSRec model is trained on Diginetica (the preset and ModelConfig's defaults;
`--train-examples` caps the run) and put in the exported module, in process. For each N
of `--categories`, `recommend_in_top_categories` scores only the items of each session's N
most likely leaf categories (`model/export.py`). Per N:

- `items_share`: the mean share of the catalog a session's candidates are.
- `hit@20_retained`, `mrr@20_retained`: HIT@20 / MRR@20 on the first `--eval-examples` test
  examples, as fractions of the full scoring's (serving_default).
- `p50_ms`, `p99_ms` against `p50_ms_full`, `p99_ms_full`: one call of the path, in
  process, at batch 1 and 16 (real test sessions). The calls of all paths are interleaved
  in `--rounds` rounds, so a drift in the machine's speed hits every row alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import contract
from benchmarks import train as bench
from benchmarks.common import peak_rss_mb, write_result
from contract.model_api import TOP_K_IDS
from model import features
from model.config import ModelConfig, TrainingSetup
from model.metrics import ranking_metrics
from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

VARIANT = "HierSRec"
CATEGORIES = (1, 2, 3, 5, 10, 20, 50, 100)
BATCHES = (1, 16)
EVAL_BATCH = 256  # sessions per accuracy call: the candidate path pads every session to the batch's longest list
MISSED = 10**6  # the rank of a target outside the top K


def _ranks(top_ids: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each target in its row of `top_ids`, MISSED where it is not there."""
    hits = top_ids == targets[:, None]
    return np.where(hits.any(axis=1), hits.argmax(axis=1), MISSED)


def _percentiles(times_s: list[float]) -> tuple[float, float]:
    ms = 1000 * np.asarray(times_s)
    return round(float(np.percentile(ms, 50)), 3), round(float(np.percentile(ms, 99)), 3)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", type=int, nargs="+", default=list(CATEGORIES))
    parser.add_argument("--train-examples", type=int, help="cap training at this many examples (default: full epochs)")
    parser.add_argument("--epochs", type=int, help="default: the preset's")
    parser.add_argument("--eval-examples", type=int, default=20_000, help="test examples for the accuracy columns")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40, help="calls per path, batch size and round")
    parser.add_argument("--work-dir", help="cache of prepared data (default outputs/benchmarks/diginetica)")
    args = parser.parse_args(argv)

    import tensorflow as tf
    import tensorflow_transform as tft
    from keras import ops

    from model.catalog import load_catalog
    from model.export import RecommenderModule
    from model.inputs import session_dataset
    from model.trainer import float32_twin, train

    dataset = bench.DATASETS["diginetica"]
    work_dir = os.path.abspath(args.work_dir or os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", "diginetica"))
    prepared = bench.prepare("diginetica", work_dir)
    tft_output = tft.TFTransformOutput(prepared["transform_dir"])
    catalog = load_catalog(prepared["catalog_files"], tft_output, dataset.preprocessing)
    config = ModelConfig.preset(VARIANT, **dataset.model_overrides, **({"epochs": args.epochs} if args.epochs else {}))
    train_steps = (
        config.epochs * math.ceil(args.train_examples / (config.epochs * config.batch_size))
        if args.train_examples
        else None
    )
    start = time.time()
    model, _ = train(
        config,
        catalog,
        prepared["splits"][contract.TRAIN],
        prepared["splits"][contract.EVAL],
        os.path.join(work_dir, "runs", "candidates"),
        train_steps=train_steps,
    )
    train_s = time.time() - start
    model = float32_twin(model, catalog)  # what the Trainer exports
    # Any N > 0 gives the module its candidate path; each N below is passed per call.
    serving_config = dataclasses.replace(config, candidate_categories=max(args.categories))
    module = RecommenderModule(model, catalog, tft_output, TrainingSetup(serving_config, dataset.preprocessing))

    # The test sessions, as serving takes them (ids, "" as padding), with their targets.
    ids, targets, leaf_logits = [], [], []
    leaf = features.category_logits(catalog.category_levels)
    batches = session_dataset(
        prepared["splits"][contract.TEST], catalog.item_ids, config.max_prefix_length, EVAL_BATCH, shuffle=False
    )
    for inputs, labels in batches.take(-(-args.eval_examples // EVAL_BATCH)):
        rows = inputs[features.PREFIX_ROWS].numpy()
        ids.append(np.where(rows >= 0, catalog.item_ids[np.maximum(rows, 0)].astype(str), ""))
        targets.append(catalog.item_ids[labels[features.TARGET_ROW].numpy()].astype(str))
        leaf_logits.append(ops.convert_to_numpy(model(inputs)[leaf]))
    leaf_sizes = np.bincount(
        catalog.features[features.category_level(catalog.category_levels)], minlength=leaf_logits[0].shape[1]
    )

    def path(categories: int) -> Callable[[Any], dict[str, Any]]:
        spec = [tf.TensorSpec([None, None], tf.string)]
        return tf.function(
            lambda item_ids: module.recommend_ids(item_ids, candidate_categories=categories),
            input_signature=spec,
            autograph=False,
        )

    paths = {0: module.serve, **{n: path(n) for n in args.categories}}  # 0: full scoring

    def accuracy(call: Callable[[Any], dict[str, Any]]) -> dict[str, float]:
        ranks = [
            _ranks(call(tf.constant(batch_ids.astype(bytes)))[TOP_K_IDS].numpy().astype(str), batch_targets)
            for batch_ids, batch_targets in zip(ids, targets)
        ]
        return ranking_metrics(np.concatenate(ranks)[: args.eval_examples], ks=(20,))

    print(f"accuracy on {args.eval_examples:,} test examples ...", flush=True)
    metrics = {n: accuracy(call) for n, call in paths.items()}
    shares = {}
    for n in args.categories:
        top = np.argsort(-np.concatenate(leaf_logits), axis=1)[:, :n]
        shares[n] = float(leaf_sizes[top].sum(axis=1).mean() / len(catalog.item_ids))

    # Latency: real test sessions, every path called in turn within each round.
    sessions = [[item for item in row if item] for batch_ids in ids for row in batch_ids]

    def padded(batch: list[list[str]]) -> Any:
        width = max(len(session) for session in batch)
        return tf.constant([[*session, *[""] * (width - len(session))] for session in batch])

    requests = {b: [padded(sessions[i : i + b]) for i in range(0, b * args.calls, b)] for b in BATCHES}
    for call in paths.values():  # trace and warm up
        for batch in BATCHES:
            call(requests[batch][0])
    times: dict[tuple[int, int], list[float]] = {(n, b): [] for n in paths for b in BATCHES}
    for round_ in range(args.rounds):
        print(f"latency round {round_ + 1}/{args.rounds}", flush=True)
        for batch in BATCHES:
            for request in requests[batch]:
                for n, call in paths.items():
                    start = time.perf_counter()
                    call(request)[TOP_K_IDS].numpy()
                    times[n, batch].append(time.perf_counter() - start)

    full = metrics[0]
    rows = []
    for n in args.categories:
        row: dict[str, Any] = {
            "categories": n,
            "items_share": round(shares[n], 4),
            "hit@20_retained": round(metrics[n]["hit@20"] / full["hit@20"], 4),
            "mrr@20_retained": round(metrics[n]["mrr@20"] / full["mrr@20"], 4),
            "hit@20": round(100 * metrics[n]["hit@20"], 2),
            "mrr@20": round(100 * metrics[n]["mrr@20"], 2),
        }
        for batch in BATCHES:
            suffix = "" if batch == 1 else f"_batch{batch}"
            p50, p99 = _percentiles(times[n, batch])
            p50_full, p99_full = _percentiles(times[0, batch])
            row |= {
                f"p50_ms{suffix}": p50,
                f"p99_ms{suffix}": p99,
                f"p50_ms_full{suffix}": p50_full,
                f"p99_ms_full{suffix}": p99_full,
                f"speedup_p50{suffix}": round(p50_full / p50, 2),
            }
        rows.append(row)

    header = f"{'N':>4} {'items':>7} {'HIT kept':>9} {'MRR kept':>9} {'p50 ms':>8} {'full':>7} {'x':>6} {'p50@16':>8} {'full':>7}"
    print(f"full scoring: HIT@20 {100 * full['hit@20']:.2f} MRR@20 {100 * full['mrr@20']:.2f}\n{header}")
    for r in rows:
        print(
            f"{r['categories']:>4} {r['items_share']:>7.2%} {r['hit@20_retained']:>9.2%} {r['mrr@20_retained']:>9.2%} "
            f"{r['p50_ms']:>8.2f} {r['p50_ms_full']:>7.2f} {r['speedup_p50']:>6.2f} "
            f"{r['p50_ms_batch16']:>8.2f} {r['p50_ms_full_batch16']:>7.2f}"
        )
    result = {
        "dataset": "diginetica",
        "variant": VARIANT,
        "items": len(catalog.item_ids),
        "leaf_categories": int((leaf_sizes > 0).sum()),
        "eval_examples": args.eval_examples,
        "full": {"hit@20": round(100 * full["hit@20"], 2), "mrr@20": round(100 * full["mrr@20"], 2)},
        "train_wall_s": round(train_s),
        "train_examples": args.train_examples,
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "peak_rss_mb": round(peak_rss_mb()),
        "config": dataclasses.asdict(config),
        "rows": rows,
    }
    print("results:", write_result("candidates", result))


if __name__ == "__main__":
    main(sys.argv[1:])
