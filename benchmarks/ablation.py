"""Ablation: each training knob's effect on validation and on test, at an equal budget of examples.

    .venv/bin/python -m benchmarks.ablation --dataset diginetica                        # every trial
    .venv/bin/python -m benchmarks.ablation --dataset diginetica --trial default --trial fp32_full

Every trial is M2TRec_hybrid with ModelConfig overrides (`TRIALS`), trained on the same
number of training examples (`--train-examples`, validated `--epochs` times with early
stopping on the eval split carved from training), then scored on the eval split (the
numbers a choice is made on) and on the whole test split (reported, never chosen on).

Two groups of trials:
- speed: the fast training path against today's float32 full-softmax path at equal
  examples seen, so a faster path shows what accuracy, if any, it gives up;
- knobs: one change at a time from the preset's defaults.

A finished trial replaces its row in benchmarks/results/ablation_<dataset>.json; the
markdown table ablation_<dataset>.md is rebuilt from all rows, so trials can run over
several invocations.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any

from benchmarks import train as bench
from benchmarks.common import RESULTS_DIR, write_result
from benchmarks.train_throughput import CORE_LAST_QUERY, FP32_FULL, SHARED
from model.config import ModelConfig
from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

VARIANT = "M2TRec_hybrid"
TRIALS: dict[str, dict[str, Any]] = {
    # speed: today's path (the 53.99 run's settings), then the levers of the fast path.
    "fp32_full": {**SHARED, **FP32_FULL},
    "core_full": {**SHARED, **CORE_LAST_QUERY},
    "core_sampled_4096": {**SHARED, **CORE_LAST_QUERY, "softmax": "sampled", "num_sampled": 4096},
    "core_sampled_8192": {**SHARED, **CORE_LAST_QUERY, "softmax": "sampled", "num_sampled": 8192},
    # knobs, one at a time from the defaults.
    "default": {},
    "bfloat16": {"precision": "mixed_bfloat16"},
    "pooling_attention": {"pooling": "attention"},
    "item_dropout_0.2": {"item_dropout": 0.2},
    "label_smoothing_0.1": {"label_smoothing": 0.1},
    "id_dropout_0.1": {"id_dropout": 0.1},
    "temperature_0.06": {"temperature": 0.06},
    "width_128": {"item_dim": 128, "id_dim": 128, "ff_dim": 256},
    "no_repeat_bonus": {"repeat_bonus": 0.0},
    "random_batches": {"length_grouped_batches": False},
}


def trial_config(dataset: str, name: str) -> ModelConfig:
    return ModelConfig.preset(VARIANT, **{**bench.DATASETS[dataset].model_overrides, **TRIALS[name]})


def run_trial(
    dataset: str, name: str, train_examples: int, epochs: int, eval_examples: int, work_dir: str
) -> dict[str, Any]:
    config = dataclasses.replace(trial_config(dataset, name), epochs=epochs)
    steps = epochs * -(-train_examples // (epochs * config.batch_size))
    eval_steps = -(-eval_examples // config.batch_size)
    start = time.time()
    result = bench.fit_and_evaluate(dataset, config, work_dir, train_steps=steps, eval_steps=eval_steps)
    test = result["metrics"]["all"]
    return {
        "trial": name,
        "overrides": TRIALS[name],
        "examples_seen": result["examples_seen"],
        "val_hit@20": result["best_val_hit@20"],
        "val_mrr@20": result["best_val_mrr@20"],
        "repeat_bonus": result["repeat_bonus"]["chosen"],
        "test_p@20": round(100 * test["hit@20"], 2),
        "test_mrr@20": round(100 * test["mrr@20"], 2),
        "test_cold_p@20": round(100 * result["metrics"]["cold"].get("hit@20", 0.0), 2),
        "train_examples_per_s": result["train_examples_per_s"],
        "precision": result["precision"],
        "wall_s": round(time.time() - start),
        "config": result["config"],
    }


def changes(dataset: str, config: dict[str, Any]) -> dict[str, Any]:
    """The fields of a trial's `config` that differ from the defaults (the variant's preset on `dataset`)."""
    default = dataclasses.asdict(trial_config(dataset, "default"))
    return {k: v for k, v in config.items() if k not in ("epochs",) and default.get(k) != v}


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown(dataset: str, rows: list[dict[str, Any]], budget: dict[str, int]) -> str:
    cold = bench.cold_slice_name(dataset)
    lines = [
        f"# Ablation, {dataset} ({VARIANT})",
        "",
        f"Each trial: {budget['train_examples']:,} training examples, validated {budget['epochs']} times on the "
        f"first {budget['eval_examples']:,} examples of the eval split (carved from training; early stopping "
        "keeps the best); then the whole test split. Choices are made on validation only.",
        "",
        "Changes are against the defaults (`ModelConfig`'s, as `M2TRec_hybrid` on this data set); precision is "
        "what it trained in (`auto` resolves per machine; test is always ranked in float32). Train ex/s "
        "includes validation and was measured with other work on the machine at times: "
        "benchmarks/results/train_throughput.json has the clean speed figures. Repeat bonus: the logits the "
        "model adds to the session's own items, chosen on validation after training unless the trial sets it; "
        "validation and test are scored with it (–: trained before the bonus existed, so none).",
        "",
        f"| trial | changes | precision | repeat bonus | val HIT@20 | val MRR@20 | test P@20 | test MRR@20 "
        f"| test {cold} P@20 | train ex/s | wall s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['trial']} | `{json.dumps(changes(dataset, row['config']))}` | {row['precision']} "
            f"| {_number(row.get('repeat_bonus'))} | {row['val_hit@20']:.2f} | {row['val_mrr@20']:.2f} "
            f"| {row['test_p@20']:.2f} | {row['test_mrr@20']:.2f} | {_number(row.get('test_cold_p@20'))} "
            f"| {row['train_examples_per_s']:,} | {row['wall_s']:,} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(bench.DATASETS), required=True)
    parser.add_argument("--trial", action="append", choices=sorted(TRIALS), help="default: every trial")
    parser.add_argument("--train-examples", type=int, default=300_000)
    parser.add_argument("--epochs", type=int, default=2, help="validations within the budget")
    parser.add_argument("--eval-examples", type=int, default=20_000)
    parser.add_argument("--work-dir", help="cache of prepared data (default outputs/benchmarks/<dataset>)")
    args = parser.parse_args(argv)
    work_dir = os.path.abspath(args.work_dir or os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", args.dataset))
    budget = {"train_examples": args.train_examples, "epochs": args.epochs, "eval_examples": args.eval_examples}
    name = f"ablation_{args.dataset}"
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    rows: list[dict[str, Any]] = []
    if os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)
        if stored.get("budget") == budget:  # rows of another budget are not comparable
            rows = stored["rows"]
    for trial in args.trial or list(TRIALS):
        row = run_trial(args.dataset, trial, args.train_examples, args.epochs, args.eval_examples, work_dir)
        rows = [r for r in rows if r["trial"] != trial] + [row]
        rows.sort(key=lambda r: list(TRIALS).index(r["trial"]))
        write_result(name, {"dataset": args.dataset, "variant": VARIANT, "budget": budget, "rows": rows})
        with open(os.path.join(RESULTS_DIR, f"{name}.md"), "w") as f:
            f.write(markdown(args.dataset, rows, budget))
        print(
            f"{trial}: val HIT@20 {row['val_hit@20']:.2f} MRR@20 {row['val_mrr@20']:.2f} | test P@20 "
            f"{row['test_p@20']:.2f} MRR@20 {row['test_mrr@20']:.2f} | {row['train_examples_per_s']:,} ex/s",
            flush=True,
        )
    print(markdown(args.dataset, rows, budget))


if __name__ == "__main__":
    main(sys.argv[1:])
