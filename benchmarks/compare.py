"""Baselines and every variant of the family on one split, ranked by the same metric code.

    .venv/bin/python -m benchmarks.compare --dataset diginetica               # every row
    .venv/bin/python -m benchmarks.compare --dataset beauty --row Pop --row V-SKNN

Rows: Pop and V-SKNN (benchmarks/baselines.py), GRU4Rec and SASRec (presets of the same
Keras model with another session encoder), and the family TRec_id ... HierSRec. Every row
ranks each test target among all catalog items with `benchmarks.train.evaluate`, overall
and on the `tail` and `cold` slices (see benchmarks/train.py).

The neural rows train with their presets and ModelConfig's defaults (chosen on validation
by benchmarks/ablation.py), on one recorded budget, benchmarks/compare_config.json: full
passes over the training set (at most ModelConfig.epochs, the chosen settings', or
`budget.epochs` where recorded), early stopping on the first `budget.eval_examples` of the
eval split carved from training. V-SKNN runs with the
neighbours benchmarks/search.py chose on that eval split. A row whose inputs the data set
lacks (TRec_title on Diginetica, which has no titles) is listed as n/a, not run.

Each row runs in its own process, so its peak memory is its own and is freed after. A
finished row replaces its entry in benchmarks/results/compare_<dataset>.json, and the
markdown table compare_<dataset>.md is regenerated from all rows and printed, so a table
can be built over several runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import contract
from benchmarks import train as bench
from benchmarks.common import RESULTS_DIR, cpu_facts, environment, peak_rss_mb, write_result
from benchmarks.search import compare_config, load_search
from model.config import BASELINES, BEFORE_FIELDS, VARIANTS, ModelConfig
from reporting.comparison import BASELINE, MODEL, Comparison, ComparisonRow, machines, write_comparison_report
from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

FAMILY = (
    "TRec_id",
    "MuTRec_id",
    "TRec_title",
    "MeTRec",
    "M2TRec",
    "M2TRec_hybrid",
    "HierSRec",
    "A2D-MTL",
    "A2D-MTL_wo_CATE",
    "A2D-MTL_wo_EXP",
    "A2D-MTL_wo_SPA",
    "A2D-MTL_wo_AdaSPA",
)
ROWS = ("Pop", "V-SKNN", *BASELINES, *FAMILY)
# The item encoder's inputs, by the ModelConfig flag that switches each on.
INPUTS = {
    "use_item_id": "item ids",
    "use_title": "titles",
    "use_categories": "categories",
    "use_brand": "brands",
    "use_price": "prices",
}
KS = (5, 10, 20)


@dataclasses.dataclass(frozen=True)
class Budget:
    """What every neural row of a data set gets: at most `epochs` validations, with early stopping.

    Each epoch is a full pass over the training set, unless `train_examples` caps the whole
    run (a smoke run, or a table at a fixed budget of examples).
    """

    epochs: int
    eval_examples: int | None = None  # validation examples per epoch (None: the whole eval split)
    train_examples: int | None = None

    def train_steps(self, batch_size: int) -> int | None:
        if self.train_examples is None:
            return None
        return self.epochs * math.ceil(self.train_examples / (self.epochs * batch_size))


def row_config(dataset: str, row: str, budget: Budget) -> ModelConfig:
    """A neural row's preset with ModelConfig's defaults; the data set's switches win (no titles on Diginetica)."""
    return ModelConfig.preset(row, **bench.DATASETS[dataset].model_overrides, epochs=budget.epochs)


def changed_settings(dataset: str, row: ComparisonRow) -> list[str]:
    """`field: recorded, now today's` for each setting a neural row trained with that its preset,
    with today's defaults, sets otherwise (its epoch cap is the budget's, reported apart)."""
    if row.row not in VARIANTS or not row.hyperparameters:
        return []
    recorded = {**BEFORE_FIELDS, **row.hyperparameters}
    today = dataclasses.asdict(row_config(dataset, row.row, Budget(epochs=recorded.get("epochs", 1))))
    return [
        f"{name}: {recorded.get(name, 'not recorded')}, now {value}"
        for name, value in today.items()
        if name != "epochs" and recorded.get(name) != value
    ]


def unavailable(dataset: str, row: str) -> str | None:
    """Why `row` cannot run on `dataset` (the data lack all its inputs), or None."""
    if row not in VARIANTS:
        return None
    preset = VARIANTS[row]
    wanted = [flag for flag in INPUTS if preset.get(flag, flag != "use_item_id")]
    switched_off = bench.DATASETS[dataset].model_overrides
    if all(switched_off.get(flag, True) is False for flag in wanted):
        return f"n/a: no {', '.join(INPUTS[flag] for flag in wanted)} in this data set"
    return None


def _baseline_row(dataset: str, row: str, work_dir: str) -> ComparisonRow:
    from benchmarks.baselines import VSKNN, Pop

    prepared, catalog = bench.load(dataset, work_dir)
    start = time.time()
    if row == "Pop":
        model, hyperparameters = Pop(catalog), {"scores": "training clicks"}
    else:
        chosen = load_search(dataset)["vsknn"]["chosen"]
        sessions = VSKNN.sessions_from_examples(prepared["splits"][contract.TRAIN], catalog.item_ids)
        model = VSKNN(sessions, **chosen)
        hyperparameters = {**chosen, "weighting": "linear", "training_sessions": sessions.shape[0]}
    train_s = time.time() - start
    start = time.time()
    prefix_length = bench.DATASETS[dataset].ingest.max_prefix_length  # what the examples hold
    metrics = bench.evaluate(model, catalog, prepared["splits"][contract.TEST], prefix_length)
    return ComparisonRow(
        row=row,
        family=BASELINE,
        metrics=metrics,
        train_wall_s=round(train_s, 1),
        peak_rss_mb=round(peak_rss_mb()),
        hyperparameters=hyperparameters,
        eval_wall_s=round(time.time() - start, 1),
    )


def _neural_row(dataset: str, row: str, work_dir: str, budget: Budget) -> ComparisonRow:
    config = row_config(dataset, row, budget)
    eval_steps = math.ceil(budget.eval_examples / config.batch_size) if budget.eval_examples else None
    result = bench.fit_and_evaluate(dataset, config, work_dir, budget.train_steps(config.batch_size), eval_steps)
    return ComparisonRow(
        row=row,
        family=BASELINE if row in BASELINES else MODEL,
        metrics=result["metrics"],
        train_wall_s=result["train_wall_s"],
        train_examples_per_s=result["train_examples_per_s"],
        parameters=result["parameters"],
        peak_rss_mb=round(peak_rss_mb()),
        epochs_run=result["epochs_run"],
        examples_seen=result["examples_seen"],
        best_validation={metric: result[f"best_val_{metric}"] for metric in ("hit@20", "mrr@20")},
        precision=result["precision"],
        repeat_bonus=result["repeat_bonus"]["chosen"],
        hyperparameters=result["config"],
        eval_wall_s=result["eval_wall_s"],
    )


def run_row(dataset: str, row: str, work_dir: str, budget: Budget) -> ComparisonRow:
    """One row, in this process."""
    reason = unavailable(dataset, row)
    if reason:
        return ComparisonRow(row=row, family=MODEL, unavailable=reason)
    if row in ("Pop", "V-SKNN"):
        return _baseline_row(dataset, row, work_dir)
    return _neural_row(dataset, row, work_dir, budget)


# --- The table ---------------------------------------------------------------------------
def _pct(metrics: Mapping[str, float], name: str) -> str:
    return f"{100 * metrics[name]:.2f}" if name in metrics else "–"


def markdown_table(result: Comparison) -> str:
    """All rows as one markdown table, in ROWS order (percent; tail and cold/held-out at @20)."""
    order = {name: i for i, name in enumerate(ROWS)}
    rows = sorted(result.rows, key=lambda r: order.get(r.row, len(order)))
    cold = bench.cold_slice_name(result.dataset)
    counts = next((r.metrics for r in rows if r.metrics), {})
    lines = [
        f"| row | kind | P@20 | MRR@20 | NDCG@20 | P@10 | MRR@10 | tail P@20 | tail MRR@20 | {cold} P@20 | "
        f"{cold} MRR@20 | train min | train ex/s | epochs | repeat bonus | parameters | peak MB |",
        "|---|---|" + "---:|" * 15,
    ]
    for r in rows:
        if r.unavailable:
            lines.append(f"| {r.row} | {r.family} | {r.unavailable} |" + " |" * 14)
            continue
        m = r.metrics
        rate = f"{r.train_examples_per_s:,}" if r.train_examples_per_s else "–"
        params = f"{r.parameters:,}" if r.parameters else "–"
        bonus = f"{r.repeat_bonus:g}" if r.repeat_bonus is not None else "–"
        minutes = f"{r.train_wall_s / 60:.1f}" if r.train_wall_s is not None else "–"
        peak = f"{r.peak_rss_mb:,}" if r.peak_rss_mb is not None else "–"
        lines.append(
            f"| {r.row} | {r.family} | {_pct(m['all'], 'hit@20')} | {_pct(m['all'], 'mrr@20')} | "
            f"{_pct(m['all'], 'ndcg@20')} | {_pct(m['all'], 'hit@10')} | {_pct(m['all'], 'mrr@10')} | "
            f"{_pct(m['tail'], 'hit@20')} | {_pct(m['tail'], 'mrr@20')} | {_pct(m['cold'], 'hit@20')} | "
            f"{_pct(m['cold'], 'mrr@20')} | {minutes} | {rate} | {r.epochs_run or '–'} | "
            f"{bonus} | {params} | {peak} |"
        )
    if counts:
        lines += [
            "",
            f"Test examples: all {counts['all']['examples']:,}, tail {counts['tail']['examples']:,}, "
            f"{cold} {counts['cold']['examples']:,}. P@K = HIT@K; metrics in percent.",
        ]
    lines += [
        "Repeat bonus: the logit bonus of the session's own items the row scored with (chosen on validation, "
        "or 0 where the preset has none); –: the row predates it, or has no model."
    ]
    lines += [f"- {r.row}: {r.note}" for r in rows if r.note]
    ran_on = machines(rows)
    lines += [f"- Ran on: {ran_on}."] if ran_on else []
    current = result.budget
    lines += [
        f"- {r.row}: an earlier run ({_budget_text(r.budget)}, with the settings of its time), not "
        f"re-run at today's budget ({_budget_text(current)}) yet."
        for r in rows
        if r.epochs_run and r.budget and current and r.budget != current
    ]
    changed: dict[str, list[str]] = {}  # rows by what changed since they trained
    for r in rows:
        if settings := changed_settings(result.dataset, r):
            changed.setdefault("; ".join(settings), []).append(r.row)
    lines += [f"- Trained with settings changed since ({c}): {', '.join(names)}." for c, names in changed.items()]
    return "\n".join(lines)


def _budget_text(budget: Mapping[str, Any]) -> str:
    if budget.get("train_examples"):
        return f"{budget['train_examples']:,} training examples over {budget['epochs']} validations"
    return f"at most {budget['epochs']} full epochs, early stopping"


def write_outputs(result: Comparison, results_dir: str) -> None:
    """compare_<dataset>.json and .md, printed, and the HTML page."""
    name = f"compare_{result.dataset}"
    write_result(name, result.to_dict(), results_dir)
    table = markdown_table(result)
    with open(os.path.join(results_dir, f"{name}.md"), "w") as f:
        f.write(f"# Comparison on {result.dataset}\n\n{table}\n")
    print(table, flush=True)
    write_comparison_report(dataclasses.replace(result, environment=environment()), os.path.join(results_dir, name))


def _load(path: str, dataset: str) -> Comparison:
    if os.path.exists(path):
        with open(path) as f:
            return Comparison.from_dict(json.load(f))
    return Comparison(dataset=dataset, rows=())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(bench.DATASETS), required=True)
    parser.add_argument("--row", action="append", choices=ROWS, help="repeatable; default: every row")
    parser.add_argument("--train-examples", type=int, help="cap each row at this many (default: full passes)")
    parser.add_argument("--epochs", type=int, help="override the recorded number of validations")
    parser.add_argument("--eval-examples", type=int, help="override the recorded validation examples per epoch")
    parser.add_argument("--row-timeout-minutes", type=float, default=25, help="a row running longer is killed")
    parser.add_argument("--results-dir", default=RESULTS_DIR)
    parser.add_argument("--work-dir", help="cache of prepared data (default outputs/benchmarks/<dataset>)")
    parser.add_argument("--row-output", help=argparse.SUPPRESS)  # set for the per-row child process
    args = parser.parse_args(argv)
    work_dir = os.path.abspath(args.work_dir or os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", args.dataset))
    recorded = compare_config(args.dataset)["budget"]
    budget = Budget(
        args.epochs or recorded.get("epochs", ModelConfig.epochs),
        args.eval_examples or recorded.get("eval_examples"),
        args.train_examples or recorded.get("train_examples"),
    )

    path = os.path.join(args.results_dir, f"compare_{args.dataset}.json")
    if args.row_output:  # the child: one row, in this process
        (row,) = args.row
        with open(args.row_output, "w") as f:
            json.dump(run_row(args.dataset, row, work_dir, budget).to_dict(), f)
        return

    for row in args.row or ROWS:
        row_output = os.path.join(work_dir, "compare", f"{row}.json")
        os.makedirs(os.path.dirname(row_output), exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "benchmarks.compare",
            *_without_rows(argv),
            "--row",
            row,
            "--row-output",
            row_output,
        ]
        print(f"== {row}: {shlex.join(command[1:])}", flush=True)
        try:
            failed = subprocess.run(command, timeout=60 * args.row_timeout_minutes).returncode
        except subprocess.TimeoutExpired:  # run() has killed the child
            failed = f"over {args.row_timeout_minutes} minutes"
        if failed:
            print(f"!! {row} failed ({failed}); the table keeps its previous entry", flush=True)
            continue
        with open(row_output) as f:
            entry = dataclasses.replace(
                ComparisonRow.from_dict(json.load(f)),
                command=shlex.join(["python", *command[1:-2]]),
                budget=dataclasses.asdict(budget),
                cpu=cpu_facts(),
            )
        stored = _load(path, args.dataset)
        rows = [r for r in stored.rows if r.row != row] + [entry]
        write_outputs(Comparison(args.dataset, rows, budget=dataclasses.asdict(budget)), args.results_dir)


def _without_rows(argv: list[str]) -> list[str]:
    """The command line less its --row options (each child gets exactly one)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--row":
            skip = True
        elif not arg.startswith("--row="):
            kept.append(arg)
    return kept


if __name__ == "__main__":
    main(sys.argv[1:])
