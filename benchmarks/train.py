"""Train a variant on a real data set; measure P@20 (= HIT@20), MRR@20 and NDCG@20 on all test examples.

    .venv/bin/python -m benchmarks.train --dataset diginetica --variant M2TRec_hybrid
    .venv/bin/python -m benchmarks.train --dataset beauty --variant TRec_id --variant M2TRec
    .venv/bin/python -m benchmarks.train --dataset diginetica --variant M2TRec_hybrid --set item_dim=128 --set epochs=8

The same code as the pipeline: reader -> contract files -> the ExampleGen's Beam graph ->
preprocessing_fn (tft_beam) -> model.trainer.train -> model.metrics on the test split.
Early stopping watches an eval split carved from training sessions, never test. Prepared
data is cached under --work-dir, so variants run one after another reuse it. Each run
replaces its row in benchmarks/results/train_<dataset>.json and prints the table.

Slices (M2TRec's definitions): `tail` = examples whose session (prefix or target) holds an
item with fewer than TAIL_CLICKS (10) training clicks; `cold` = targets never clicked in training (for
Beauty, a hashed 5% of items is held out of the training sessions for this).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import contract
from benchmarks.common import RESULTS_DIR, peak_rss_mb, write_result
from components.session_example_gen.config import IngestConfig
from contract.model_api import REPEAT_BONUS_FILE, TAIL_CLICKS, TRACKED_METRIC, on_validation, rank_metric
from model import features
from model.config import ModelConfig, PreprocessingConfig
from model.metrics import popularity_ranks, ranking_metrics, target_rank
from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

EVAL_BATCH = 1024
HELD_OUT_SHARE = 0.05


@dataclasses.dataclass(frozen=True)
class Dataset:
    read: Callable[[], tuple[Any, Any]]  # -> contract DataFrames (clicks, catalog)
    ingest: IngestConfig
    preprocessing: PreprocessingConfig
    model_overrides: dict[str, Any]  # switches off metadata the data set does not have
    hold_out_items: bool = False


def _read_diginetica():
    from components.readers import diginetica

    return diginetica.read_srgnn(diginetica.data_paths()["srgnn_dir"])


def _read_beauty():
    from components.readers import amazon_beauty

    return amazon_beauty.read_beauty(amazon_beauty.data_dir())


DATASETS = {
    # Category is the only metadata of the SR-GNN split; 10% of train sessions validate.
    "diginetica": Dataset(
        _read_diginetica,
        IngestConfig(split_method="column", column_splits=(contract.TRAIN, contract.TEST), eval_fraction_of_train=0.1),
        PreprocessingConfig(category_levels=1),
        dict(use_title=False, use_brand=False, use_price=False),
    ),
    "beauty": Dataset(
        _read_beauty,
        IngestConfig(split_method="column"),
        PreprocessingConfig(category_levels=3),
        dict(use_price=False),
        hold_out_items=True,
    ),
}


def cold_slice_name(name: str) -> str:
    """What a table calls the `cold` slice: "held-out" where items were held out of training."""
    return "held-out" if DATASETS[name].hold_out_items else "cold"


def _held_out(item_id: str) -> bool:
    return int(hashlib.md5(item_id.encode()).hexdigest()[:8], 16) / 2**32 < HELD_OUT_SHARE


def prepare(name: str, work_dir: str) -> dict[str, Any]:
    """Contract files -> session examples + catalog -> transform graph, cached in `work_dir`."""
    import apache_beam as beam

    from components.session_example_gen import executor
    from model.preprocessing import analyze_catalog_files

    dataset = DATASETS[name]
    done = os.path.join(work_dir, "prepared.json")
    if os.path.exists(done):
        with open(done) as f:
            return json.load(f)
    start = time.time()
    clicks, catalog = dataset.read()
    if dataset.hold_out_items:  # their training clicks go, so they are new to the model
        held = clicks[contract.ITEM_ID].map(_held_out) & (clicks[contract.SPLIT] == contract.TRAIN)
        clicks = clicks[~held]
    data_dir = os.path.join(work_dir, "contract")
    contract.write_contract(clicks, catalog, data_dir)
    out = os.path.join(work_dir, "examples")
    with beam.Pipeline() as pipeline:
        executor._build_pipeline(
            pipeline,
            os.path.join(data_dir, "clicks*"),
            os.path.join(data_dir, "catalog*"),
            dataset.ingest,
            {s: os.path.join(out, s) for s in dataset.ingest.split_names},
            os.path.join(out, contract.CATALOG_SPLIT),
            os.path.join(work_dir, "counters.json"),
        )
    catalog_files = os.path.join(out, contract.CATALOG_SPLIT, "*")
    analyze_catalog_files(catalog_files, work_dir, dataset.preprocessing)
    prepared = {
        "splits": {s: os.path.join(out, s, "*") for s in dataset.ingest.split_names},
        "catalog_files": catalog_files,
        "transform_dir": os.path.join(work_dir, "transform_fn_output"),
        "prepare_wall_s": round(time.time() - start, 1),
    }
    with open(done, "w") as f:
        json.dump(prepared, f)
    return prepared


def evaluate(
    model: Any, catalog: Any, test_files: str, max_prefix_length: int, max_examples: int | None = None
) -> dict[str, dict[str, Any]]:
    """Ranks of every test target (or the first `max_examples`) among all catalog items, per slice.

    `model(inputs)[features.ITEM_LOGITS]` gives `[batch, items]` scores; any callable that
    returns that dict is ranked the same way (benchmarks/baselines.py).
    """
    from keras import ops

    from model.inputs import session_dataset

    clicks = catalog.features[features.TRAIN_CLICKS]
    # Exact ties would otherwise go the target's way (the rank counts only higher scores):
    # items with one shared vector (one category, or the unknown-id row) would all rank as
    # their best. Popularity breaks them, as in training (model.metrics.target_rank).
    tie_break = popularity_ranks(clicks)
    ranks, tail, cold = [], [], []
    batches = session_dataset(test_files, catalog.item_ids, max_prefix_length, EVAL_BATCH, shuffle=False)
    for inputs, labels in batches.take(-(-max_examples // EVAL_BATCH) if max_examples else -1):
        rows, target = inputs[features.PREFIX_ROWS].numpy(), labels[features.TARGET_ROW].numpy()
        ranks.append(ops.convert_to_numpy(target_rank(model(inputs)[features.ITEM_LOGITS], target, tie_break)))
        prefix_clicks = np.where(rows >= 0, clicks[np.maximum(rows, 0)], TAIL_CLICKS)
        tail.append((prefix_clicks < TAIL_CLICKS).any(axis=1) | (clicks[target] < TAIL_CLICKS))
        cold.append(clicks[target] == 0)
    ranks, tail, cold = np.concatenate(ranks), np.concatenate(tail), np.concatenate(cold)
    result = {}
    for slice_name, mask in (("all", np.ones_like(tail)), ("tail", tail), ("cold", cold)):
        result[slice_name] = {"examples": int(mask.sum()), **(ranking_metrics(ranks[mask]) if mask.any() else {})}
    return result


def load(name: str, work_dir: str) -> tuple[dict[str, Any], Any]:
    """The prepared data set and its catalog, as the model holds it."""
    import tensorflow_transform as tft

    from model.catalog import load_catalog

    prepared = prepare(name, work_dir)
    catalog = load_catalog(
        prepared["catalog_files"], tft.TFTransformOutput(prepared["transform_dir"]), DATASETS[name].preprocessing
    )
    return prepared, catalog


def train_examples(work_dir: str) -> int:
    with open(os.path.join(work_dir, "counters.json")) as f:
        return json.load(f)["stats"][f"examples/{contract.TRAIN}"]


def fit_and_evaluate(
    name: str, config: ModelConfig, work_dir: str, train_steps: int | None = None, eval_steps: int | None = None
) -> dict[str, Any]:
    """Trains `config` (early stopping on the eval split), then ranks the whole test split.

    `train_steps` caps the run at that many batches, spread over `config.epochs` (a fixed
    budget of training examples); without it each epoch is one pass over the training set.
    """
    from model.trainer import float32_twin, train

    prepared, catalog = load(name, work_dir)
    start = time.time()
    run_dir = os.path.join(work_dir, "runs", config.variant)
    model, history = train(
        config,
        catalog,
        prepared["splits"][contract.TRAIN],
        prepared["splits"][contract.EVAL],
        run_dir,
        train_steps=train_steps,
        eval_steps=eval_steps,
    )
    train_s = time.time() - start
    best = int(np.argmax(history[TRACKED_METRIC]))
    validation = {
        "hit": round(100 * history[TRACKED_METRIC][best], 2),
        "mrr": round(100 * history[on_validation(rank_metric("mrr"))][best], 2),
    }
    repeat_bonus: dict[str, Any] = {"chosen": config.repeat_bonus}
    if config.repeat_bonus is None:  # chosen after training: validation is the chosen value's
        with open(os.path.join(run_dir, REPEAT_BONUS_FILE)) as f:
            repeat_bonus = json.load(f)
        validation = repeat_bonus["eval"][str(repeat_bonus["chosen"])]
    epochs = history["epochs_run"][0]
    per_epoch = (train_steps // config.epochs) * config.batch_size if train_steps else train_examples(work_dir)
    precision = model.dtype_policy.name
    start = time.time()
    # The test split is ranked by the float32 model that the Trainer exports.
    metrics = evaluate(
        float32_twin(model, catalog), catalog, prepared["splits"][contract.TEST], config.max_prefix_length
    )
    return {
        "metrics": metrics,
        "train_examples": train_examples(work_dir),
        "examples_seen": per_epoch * epochs,
        "epochs_run": epochs,
        # The epoch early stopping kept (the best HIT@20), with the repeat bonus the model exports.
        "best_val_hit@20": validation["hit"],
        "best_val_mrr@20": validation["mrr"],
        "repeat_bonus": repeat_bonus,
        "train_examples_per_s": round(per_epoch * epochs / train_s),
        "train_wall_s": round(train_s),
        "eval_wall_s": round(time.time() - start),
        # Trainable weights: not state such as A2D-MTL's neighbour bank or the repeat bonus.
        "parameters": sum(int(np.prod(weight.shape)) for weight in model.trainable_weights),
        "peak_rss_mb": round(peak_rss_mb()),
        "precision": precision,  # what config.precision resolved to on this machine
        "config": dataclasses.asdict(config),
    }


def run(name: str, variant: str, overrides: dict[str, Any], work_dir: str) -> dict[str, Any]:
    config = ModelConfig.preset(variant, **{**DATASETS[name].model_overrides, **overrides})
    result = fit_and_evaluate(name, config, work_dir)
    overall = result["metrics"]["all"]
    return {
        "variant": variant,
        "p@20": round(100 * overall["hit@20"], 2),
        "mrr@20": round(100 * overall["mrr@20"], 2),
        "ndcg@20": round(100 * overall["ndcg@20"], 2),
        **result,
    }


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'variant':<16}{'P@20':>8}{'MRR@20':>8}{'NDCG@20':>9}{'tail P@20':>11}{'cold P@20':>11}{'ex/s':>8}{'min':>6}"
    )
    for row in rows:
        tail, cold = row["metrics"]["tail"], row["metrics"]["cold"]
        print(
            f"{row['variant']:<16}{row['p@20']:>8.2f}{row['mrr@20']:>8.2f}{row['ndcg@20']:>9.2f}"
            f"{100 * tail.get('hit@20', 0):>11.2f}{100 * cold.get('hit@20', 0):>11.2f}"
            f"{row['train_examples_per_s']:>8,}{row['train_wall_s'] / 60:>6.1f}"
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--variant", action="append", required=True, help="a ModelConfig preset; repeatable")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="ModelConfig override")
    parser.add_argument("--work-dir", help="cache of prepared data (default outputs/benchmarks/<dataset>)")
    args = parser.parse_args(argv)
    overrides = {key: _parse_value(value) for key, value in (item.split("=", 1) for item in args.set)}
    work_dir = args.work_dir or os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", args.dataset)

    path = os.path.join(RESULTS_DIR, f"train_{args.dataset}.json")
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = json.load(f)["rows"]
    for variant in args.variant:
        row = run(args.dataset, variant, overrides, os.path.abspath(work_dir))
        rows = [r for r in rows if r["variant"] != variant] + [row]
        write_result(f"train_{args.dataset}", {"dataset": args.dataset, "rows": rows})
        print_table([row])
    print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
