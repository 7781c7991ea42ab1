"""Hyper-parameter search on a validation split carved from training, never on test.

    .venv/bin/python -m benchmarks.search --dataset diginetica --part family
    .venv/bin/python -m benchmarks.search --dataset diginetica --part vsknn

`family`: one representative variant (benchmarks/compare_config.json) trains on a fixed
budget of training examples from the base hyper-parameters, then with one knob changed
at a time (width, layers, dropout, learning rate, category loss weight, sampled softmax);
every trial is scored by HIT@20 / MRR@20 on the first `eval_examples` of the eval split.
Each knob takes its best value if that beats the base by more than MARGIN; the chosen
values are what benchmarks/compare.py trains every neural row with. Sampled softmax is
tried at the same number of examples and at `sampled_speedup` times as many, which costs
about the same wall time as the full softmax, so it is judged on accuracy per minute.
`vsknn`: V-SKNN's neighbours k and sample size, on the same eval examples.

Writes benchmarks/results/search_<dataset>.json (every trial, the chosen values) and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Optional

from benchmarks import train as bench
from benchmarks.common import RESULTS_DIR, write_result
from components import contract
from model.config import VARIANTS, ModelConfig
from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

MARGIN = 0.005  # HIT@20 a change must gain over the base trial to be adopted
COMPARE_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare_config.json")


def compare_config(dataset: str) -> dict[str, Any]:
    """The recorded budgets, base hyper-parameters and search space of `dataset`."""
    with open(COMPARE_CONFIG) as f:
        return json.load(f)[dataset]


def width_fields(width: int) -> dict[str, int]:
    """One knob for the model's width: item and id vectors `width`, feed-forward 2x."""
    return {"item_dim": width, "id_dim": width, "ff_dim": 2 * width}


def neural_fields(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Search-space names -> ModelConfig fields (`width` expands, the rest pass through)."""
    fields = {k: v for k, v in hyperparameters.items() if k != "width"}
    return {**fields, **(width_fields(hyperparameters["width"]) if "width" in hyperparameters else {})}


def neural_config(dataset: str, variant: str, hyperparameters: dict[str, Any], **fields: Any) -> ModelConfig:
    """`variant` with the shared hyper-parameters, where its preset does not say otherwise.

    The preset's own fields win (TRec_id keeps no category heads, SASRec its last-position
    pooling), and the data set's switches win over both (no titles on Diginetica).
    """
    overrides = {**neural_fields(hyperparameters), **VARIANTS[variant], **bench.DATASETS[dataset].model_overrides}
    return ModelConfig.preset(variant, **{**overrides, **fields})


def family_trials(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The base (empty change), then each knob's other values, one change at a time."""
    return [{}] + [{knob: value} for knob, values in space.items() for value in values]


def _search_family(dataset: str, setup: dict[str, Any], work_dir: str) -> dict[str, Any]:
    import keras

    from model.trainer import train

    prepared, catalog = bench.load(dataset, work_dir)
    search = setup["search"]
    base = setup["base"]
    batch = base["batch_size"]
    eval_steps = math.ceil(search["eval_examples"] / batch)
    trials = []
    for change in family_trials(search["space"]) + [{"softmax": "sampled", "speedup": search["sampled_speedup"]}]:
        hyperparameters = {**base, **{k: v for k, v in change.items() if k != "speedup"}}
        examples = search["train_examples"] * change.get("speedup", 1)
        config = neural_config(dataset, setup["representative"], hyperparameters, epochs=1)
        keras.backend.clear_session()
        start = time.time()
        _, history = train(config, catalog, prepared["splits"][contract.TRAIN], prepared["splits"][contract.EVAL],
                           os.path.join(work_dir, "runs", "search"), train_steps=math.ceil(examples / batch),
                           eval_steps=eval_steps, verbose=0)  # fmt: skip
        trial = {"change": change, "train_examples": examples, "wall_s": round(time.time() - start),
                 "val_hit@20": round(history["val_hit@20"][-1], 4), "val_mrr@20": round(history["val_mrr@20"][-1], 4)}  # fmt: skip
        trials.append(trial)
        print(json.dumps(trial), flush=True)
    return {"representative": setup["representative"], "base": base, "trials": trials, "chosen": _choose(base, trials)}


def _choose(base: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Per knob, the best-scoring value, if it beats the base trial's HIT@20 by more than MARGIN.

    One short trial per value is noisy, and every change costs time on the fixed budget
    (2 layers: twice the encoder), so a change has to win clearly to be adopted.
    """
    chosen = dict(base)
    for knob in {k for t in trials[1:] for k in t["change"] if k != "speedup"}:
        best = max((t for t in trials[1:] if knob in t["change"]), key=lambda t: (t["val_hit@20"], t["val_mrr@20"]))
        if best["val_hit@20"] > trials[0]["val_hit@20"] + MARGIN:
            chosen[knob] = best["change"][knob]
    return chosen


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
            metrics = bench.evaluate(model, catalog, prepared["splits"][contract.EVAL], 50,
                                     max_examples=search["eval_examples"])["all"]  # fmt: skip
            trial = {"change": {"k": k, "sample_size": sample_size}, "wall_s": round(time.time() - start),
                     "val_hit@20": round(metrics["hit@20"], 4), "val_mrr@20": round(metrics["mrr@20"], 4)}  # fmt: skip
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


def chosen_family(dataset: str) -> dict[str, Any]:
    """The family's searched hyper-parameters; `family_search_from` borrows another data set's."""
    source = compare_config(dataset).get("family_search_from", dataset)
    return load_search(source)["family"]["chosen"]


def _markdown(dataset: str, result: dict[str, Any], setup: dict[str, Any]) -> str:
    search = setup["search"]
    lines = [f"# Hyper-parameter search, {dataset}", "",
             f"Validation: the first {search['eval_examples']:,} examples of the eval split (carved from training "
             "sessions; test is never read). One change at a time from the base.", ""]  # fmt: skip
    if "family" in result:
        family = result["family"]
        lines += [f"## Family ({family['representative']}, {search['train_examples']:,} training examples per trial, "
                  "1 epoch)", "", f"Base: `{json.dumps(family['base'])}`", "",
                  "| change | train examples | val HIT@20 | val MRR@20 | wall s |", "|---|---:|---:|---:|---:|"]  # fmt: skip
        for t in family["trials"]:
            lines.append(f"| `{json.dumps(t['change']) if t['change'] else 'base'}` | {t['train_examples']:,} | "
                         f"{100 * t['val_hit@20']:.2f} | {100 * t['val_mrr@20']:.2f} | {t['wall_s']} |")  # fmt: skip
        lines += ["", f"Chosen: `{json.dumps(family['chosen'])}`", ""]
    if "family_search_from" in setup:
        lines += ["## Family", "", f"No search of its own: benchmarks/compare.py trains every neural row with "
                  f"{setup['family_search_from']}'s chosen values (compare_config.json: `family_search_from`).", ""]  # fmt: skip
    if "vsknn" in result:
        lines += ["## V-SKNN", "", "| k, sample | val HIT@20 | val MRR@20 | wall s |", "|---|---:|---:|---:|"]
        for t in result["vsknn"]["trials"]:
            lines.append(f"| {t['change']['k']}, {t['change']['sample_size']} | {100 * t['val_hit@20']:.2f} | "
                         f"{100 * t['val_mrr@20']:.2f} | {t['wall_s']} |")  # fmt: skip
        lines += ["", f"Chosen: `{json.dumps(result['vsknn']['chosen'])}`", ""]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(bench.DATASETS), required=True)
    parser.add_argument("--part", choices=("family", "vsknn"), action="append", required=True)
    parser.add_argument("--work-dir", help="cache of prepared data (default outputs/benchmarks/<dataset>)")
    args = parser.parse_args(argv)
    work_dir = os.path.abspath(args.work_dir or os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", args.dataset))
    setup = compare_config(args.dataset)
    for part in args.part:
        found = (_search_family if part == "family" else _search_vsknn)(args.dataset, setup, work_dir)
        result = {k: v for k, v in load_search(args.dataset).items() if k != "environment"}
        result = {**result, "dataset": args.dataset, part: found}
        write_result(f"search_{args.dataset}", result)
        markdown = _markdown(args.dataset, result, setup)
        with open(os.path.join(RESULTS_DIR, f"search_{args.dataset}.md"), "w") as f:
            f.write(markdown)
        print(markdown)


if __name__ == "__main__":
    main(sys.argv[1:])
