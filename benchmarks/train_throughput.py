"""Training throughput: steady-state examples/s per configuration and path, and where a step goes.

    .venv/bin/python -m benchmarks.train_throughput                      # widths 64 and 128, every path
    .venv/bin/python -m benchmarks.train_throughput --width 64 --path fp32_full --path default

M2TRec_hybrid on the Diginetica catalog (43,097 items), 1 Transformer layer. Each path is
a set of ModelConfig overrides:

- `fp32_full`: today's default path, kept selectable: float32, full softmax scored in the
  model's call, HIT@20/MRR@20 ranked over the catalog at every step, attention pooling
  (the readout of the 53.99 Diginetica run), batches of 512 random prefixes, Keras' dense Adam.
- intermediate paths switch one lever on at a time, in the order the profile ranks them:
  no per-step rank metrics; the CORE readout, whose last block computes one query row;
  bfloat16; a 4x larger batch; 8,192 sampled negatives instead of the full softmax;
- `default`: what ModelConfig's preset gives today, with no override but the width; its
  precision `auto` resolves as the Trainer resolves it (float32 on a CPU), and
  `default_bfloat16` is the same path in mixed bfloat16; `default_random_batches` is it
  with batches of random prefixes instead of length-grouped ones (the default before them).
- `a2d`: `default` plus A2D-MTL's options as its preset sets them (category channel over
  the category graph, adaptive entmax readout, neighbour sessions from the training
  index), what the A2D-MTL row costs over the hybrid; `a2d_channel`, `a2d_entmax` and
  `a2d_neighbours` add one of them each, to say where that cost goes; `a2d_index_20000` is
  `a2d` searching the 20,000 most recent training sessions, the preset's index before
  5,000 (the search is the bulk of the neighbours' cost and grows with the index).
- `default_dense_adam`: `default` with Keras' Adam, which rewrites every embedding table
  and its moments at each step, instead of LazyAdam's touched rows (the default before it).
- `default_batch_1024`, `default_batch_2048`, `a2d_batch_1024`, `a2d_batch_2048`: `default`
  and `a2d` with larger batches (examples/s only; what they do to accuracy at equal epochs
  is a training run's question, README).

Timing excludes input preparation: batches of real training prefixes are read once and
fed from memory (the tf.data pipeline's own rate is reported beside, to show that it keeps
ahead of training). The batches held are drawn evenly from a window of length-grouped (or
random) batches sorted by width, so their mix of padded widths is an epoch's. Each path is
warmed up (every padded width traced) and then timed for `--passes` passes over its
batches, in `--rounds` interleaved rounds; the median round is reported, so every path sees
the same machine phase. `speedup_vs_fp32_baseline` is the ratio to `fp32_full`
in the same run.

Alongside: this machine's GEMM rate for the scoring shape `[batch, width] x [width, items]`
(float32 and bfloat16, forward), the CPU's bfloat16 support, and a profile of one step of
`fp32_full` and `default`: each part (item encoder over the catalog, session encoder and
heads, scoring matmul, softmax cross-entropy, rank metrics, optimizer) timed alone,
forward and backward, on a batch of median width, and the rest of the step (executor,
Python) as the remainder.
Writes benchmarks/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import contract
from benchmarks import train as bench
from benchmarks.common import cpu_facts, write_result
from model import features
from model.config import VARIANTS, ModelConfig
from tfx_pipeline.config import DEFAULT_OUTPUT_DIR

DATASET = "diginetica"
VARIANT = "M2TRec_hybrid"
WIDTHS = (64, 128)
# Today's tuned settings (the 53.99 run of train_diginetica.json) that every path shares.
SHARED = dict(
    num_layers=1, num_heads=2, ff_dim=128, dropout=0.2, category_loss_weight=0.3, cosine_scores=True, temperature=0.08
)
FP32_FULL = dict(
    lazy_adam=False,
    precision="float32",
    softmax="full",
    train_rank_metrics=True,
    pooling="attention",
    batch_size=512,
    length_grouped_batches=False,
)
# A2D-MTL's options, as its preset sets them (the rest of the preset is the hybrid's).
A2D_OPTIONS = {
    name: VARIANTS["A2D-MTL"][name]
    for name in ("category_channel", "category_graph", "readout_weighting", "neighbour_sessions", "neighbours")
}
CORE_LAST_QUERY = {**FP32_FULL, "train_rank_metrics": False, "pooling": "core"}
PATHS = {
    "fp32_full": FP32_FULL,
    "no_step_metrics": {**FP32_FULL, "train_rank_metrics": False},
    "core_last_query": CORE_LAST_QUERY,
    "bf16": {**CORE_LAST_QUERY, "precision": "mixed_bfloat16"},
    "full_batch_2048": {**CORE_LAST_QUERY, "batch_size": 2048},
    "sampled_8192": {**CORE_LAST_QUERY, "softmax": "sampled", "num_sampled": 8192},
    # The default path in mixed bfloat16, the option ModelConfig.precision keeps for CPUs with it.
    "default_bfloat16": {"precision": "mixed_bfloat16"},
    "default": {},  # core readout, 4,096 sampled negatives, length-grouped batches of 512, precision auto
    "default_random_batches": {"length_grouped_batches": False},  # the default before length grouping
    "a2d": A2D_OPTIONS,
    "a2d_channel": {k: A2D_OPTIONS[k] for k in ("category_channel", "category_graph")},
    "a2d_entmax": {k: A2D_OPTIONS[k] for k in ("readout_weighting",)},
    "a2d_neighbours": {k: A2D_OPTIONS[k] for k in ("neighbour_sessions", "neighbours")},
    "a2d_index_20000": {**A2D_OPTIONS, "neighbour_sessions": 20000},
    "default_dense_adam": {"lazy_adam": False},
    # Larger batches: per-step costs that do not grow with the batch (the category graph,
    # the optimizer over whole tables, the executor) are shared by more examples.
    "default_batch_1024": {"batch_size": 1024},
    "default_batch_2048": {"batch_size": 2048},
    "a2d_batch_1024": {**A2D_OPTIONS, "batch_size": 1024},
    "a2d_batch_2048": {**A2D_OPTIONS, "batch_size": 2048},
}
SCORING_BATCH = 512


def path_config(path: str, width: int) -> ModelConfig:
    overrides = {**bench.DATASETS[DATASET].model_overrides, **SHARED, "item_dim": width, **PATHS[path]}
    return ModelConfig.preset(VARIANT, **overrides)


def read_batches(train_files: str, catalog: Any, config: ModelConfig, count: int) -> list[tuple[dict, dict]]:
    """`count` batches of real training prefixes, as in-memory tensors, padded as an epoch's are.

    With length-grouped batches a batch's padded width depends on where in its window it
    was cut, so the `count` batches are drawn evenly from a window's worth of batches
    sorted by width: timed in turn, they cost what an epoch's batches cost on average.
    """
    from model.inputs import LENGTH_GROUP_BATCHES
    from model.trainer import training_batches

    data = training_batches(train_files, catalog.item_ids, config)
    window = sorted(data.take(LENGTH_GROUP_BATCHES), key=lambda batch: int(batch[0][features.PREFIX_ROWS].shape[1]))
    return [window[(2 * i + 1) * len(window) // (2 * count)] for i in range(count)]


def input_pipeline_rate(train_files: str, catalog: Any) -> float:
    """Examples/s of the default path's tf.data pipeline alone (read, group by length, parse, look
    up, pad) over a whole epoch, after a first epoch has filled its cache.

    A whole epoch, not its first batches: an epoch's first batch waits for the 200,000-example
    shuffle buffer, and a cache read only in part is dropped and read from the files again.
    Timed over its first 200 batches (before stop 37), the pipeline read 11,845 examples/s;
    over whole epochs, 278,000-293,000 (the AVX512 machine, stop 37).
    """
    from model.trainer import training_batches

    data = training_batches(train_files, catalog.item_ids, ModelConfig())
    for _ in data:  # fills the cache
        pass
    start = time.perf_counter()
    examples = sum(int(x[features.PREFIX_ROWS].shape[0]) for x, _ in data)
    return examples / (time.perf_counter() - start)


def _median_ms(run: Callable[[], Any], repeats: int = 15) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def gemm_rates(width: int, items: int) -> dict[str, float]:
    """GFLOP/s of the scoring matmul `[SCORING_BATCH, width] x [width, items]`, forward, per dtype."""
    import tensorflow as tf

    rates = {}
    for dtype in ("float32", "bfloat16"):
        a = tf.random.normal([SCORING_BATCH, width], dtype=tf.float32)
        b = tf.random.normal([width, items], dtype=tf.float32)
        a, b = tf.cast(a, dtype), tf.cast(b, dtype)
        matmul = tf.function(lambda a=a, b=b: tf.matmul(a, b))
        ms = _median_ms(matmul)
        rates[dtype] = round(2 * SCORING_BATCH * width * items / (ms / 1000) / 1e9, 1)
    return rates


def step_flops(config: ModelConfig, items: int, batch: int, length: float) -> float:
    """Rough FLOPs of one training step (forward + backward = 3x forward) in its matmuls."""
    width = config.item_dim
    scored = items if config.softmax == "full" else batch + config.num_sampled
    scoring = 2 * batch * width * scored
    queries = 1 if config.pooling in ("last", "core") else length  # last_only computes one query row
    projections = 2 * width * width * (2 * length + 2 * queries)  # keys and values over all items
    attention = 4 * queries * length * width
    feed_forward = 4 * queries * width * config.ff_dim
    block = batch * (projections + attention + feed_forward)
    encoder = 2 * items * width * (config.id_dim + config.category_dim) if config.softmax == "full" else 0
    return 3.0 * (scoring + block * config.num_layers + encoder)


def profile_step(model: Any, batch: tuple[dict, dict]) -> dict[str, float]:
    """Milliseconds of each part of a training step, each timed alone (forward + backward)."""
    import keras
    import tensorflow as tf

    from model.metrics import target_rank

    inputs, labels = batch
    rows = inputs[features.PREFIX_ROWS]
    target = labels[features.TARGET_ROW]
    config = model.model_config
    encoder_weights = model.item_encoder.trainable_weights
    session_weights = [w for w in model.trainable_weights if not any(w is e for e in encoder_weights)]

    @tf.function
    def item_encoder():
        with tf.GradientTape() as tape:
            vectors = model.encode_items()
            total = tf.reduce_sum(tf.cast(vectors, tf.float32))
        return tape.gradient(total, encoder_weights)

    vectors = tf.cast(model.encode_items(), tf.float32)
    prefix = tf.gather(vectors, tf.maximum(rows, 0))

    @tf.function
    def session_encoder():
        with tf.GradientTape() as tape:
            tape.watch(prefix)
            session, category_logits = model.encode_session(prefix, rows >= 0, training=True)
            logits = sum(tf.reduce_sum(tf.cast(c, tf.float32)) for c in category_logits)
            total = tf.reduce_sum(tf.cast(session, tf.float32)) + logits
        return tape.gradient(total, [prefix, *session_weights])

    session = tf.random.normal([int(rows.shape[0]), config.item_dim])
    scoring = tf.Variable(tf.transpose(vectors))

    @tf.function
    def scoring_matmul():
        with tf.GradientTape() as tape:
            tape.watch(session)
            logits = tf.matmul(session, scoring)
        return tape.gradient(logits, [session, scoring], output_gradients=tf.ones_like(logits))

    logits = tf.Variable(tf.matmul(session, scoring))

    @tf.function
    def softmax_cross_entropy():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True))
        return tape.gradient(loss, logits)

    @tf.function
    def rank_metrics():
        return target_rank(tf.convert_to_tensor(logits), target)

    with tf.GradientTape() as tape:  # a real step's gradients: the embeddings' are row-sparse
        loss = model.compute_loss(inputs, labels, model(inputs, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)

    @tf.function
    def optimizer():
        model.optimizer.apply(gradients, model.trainable_weights)

    parts = {
        "item_encoder_catalog": item_encoder,
        "session_encoder_and_heads": session_encoder,
        "scoring_matmul": scoring_matmul,
        "softmax_cross_entropy": softmax_cross_entropy,
        "rank_metrics": rank_metrics,
        "optimizer": optimizer,
    }
    if config.softmax != "full":  # the sampled loss replaces the catalog-wide parts
        del parts["item_encoder_catalog"], parts["scoring_matmul"], parts["softmax_cross_entropy"]

        @tf.function
        def sampled_loss():
            with tf.GradientTape() as tape:
                tape.watch(session)
                loss = tf.reduce_mean(model._sampled_item_loss(session, target))
            return tape.gradient(loss, [session, *model.item_encoder.trainable_weights])

        parts["sampled_scoring_and_loss"] = sampled_loss
    if not config.train_rank_metrics:
        del parts["rank_metrics"]
    return {name: round(_median_ms(run), 2) for name, run in parts.items()}


@dataclasses.dataclass
class PathRun:
    path: str
    width: int
    config: ModelConfig
    model: Any
    batches: list
    step_ms: list = dataclasses.field(default_factory=list)  # mean step time of each round

    def warm_up(self) -> None:
        for inputs, labels in self.batches:  # traces every padded width
            self.model.train_on_batch(inputs, labels)

    def time_round(self, passes: int) -> None:
        """Trains on each held batch in turn, `passes` times: batches of several widths weigh
        as they do in an epoch, so the round's mean step is an epoch's."""
        start = time.perf_counter()
        for _ in range(passes):
            for inputs, labels in self.batches:
                self.model.train_on_batch(inputs, labels)
        self.step_ms.append(1000 * (time.perf_counter() - start) / (passes * len(self.batches)))

    @property
    def examples_per_s(self) -> float:
        return self.config.batch_size / (statistics.median(self.step_ms) / 1000)


def build(path: str, width: int, catalog: Any, train_files: str, batches: int) -> PathRun:
    from model.model import build_model
    from model.trainer import hold_training_sessions, resolve_precision

    config = path_config(path, width)
    config = dataclasses.replace(config, precision=resolve_precision(config.precision))
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    hold_training_sessions(model, catalog, train_files)  # A2D-MTL's index and graph, where asked
    return PathRun(path, width, config, model, read_batches(train_files, catalog, config, batches))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, action="append", help=f"item width (default {WIDTHS})")
    parser.add_argument("--path", action="append", choices=sorted(PATHS), help="default: every path")
    parser.add_argument("--passes", type=int, default=2, help="timed passes over the held batches per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batches", type=int, default=8, help="distinct batches held in memory per path, timed in turn"
    )
    parser.add_argument("--work-dir", default=os.path.join(DEFAULT_OUTPUT_DIR, "benchmarks", DATASET))
    parser.add_argument("--result", default="train_throughput", help="benchmarks/results/<RESULT>.json")
    args = parser.parse_args(argv)
    widths = args.width or list(WIDTHS)
    paths = args.path or list(PATHS)
    if "fp32_full" not in paths:
        paths.insert(0, "fp32_full")

    prepared, catalog = bench.load(DATASET, os.path.abspath(args.work_dir))
    train_files = prepared["splits"][contract.TRAIN]
    items = len(catalog.item_ids)
    print(
        f"{DATASET}: {items:,} items; {VARIANT}, 1 layer; timing {args.passes} x {args.batches} steps x {args.rounds} "
        "rounds",
        flush=True,
    )
    result: dict[str, Any] = {
        "dataset": DATASET,
        "variant": VARIANT,
        "items": items,
        "cpu": {"avx512_bf16_or_amx": cpu_facts()["bfloat16_native"]},
    }
    result["input_pipeline_examples_per_s"] = round(input_pipeline_rate(train_files, catalog))
    print(f"input pipeline alone: {result['input_pipeline_examples_per_s']:,} examples/s", flush=True)
    rows, profiles, gemm = [], {}, {}
    for width in widths:
        gemm[width] = gemm_rates(width, items)
        print(
            f"width {width}: scoring GEMM [{SCORING_BATCH},{width}]x[{width},{items}] GFLOP/s {gemm[width]}", flush=True
        )
        runs = [build(path, width, catalog, train_files, args.batches) for path in paths]
        for run in runs:
            run.warm_up()
        for round_index in range(args.rounds):
            for run in runs:
                run.time_round(args.passes)
            print(
                f"  round {round_index + 1}: " + ", ".join(f"{r.path} {r.step_ms[-1]:.0f} ms" for r in runs), flush=True
            )
        baseline = runs[0].examples_per_s
        for run in runs:
            mean_length = float(np.mean([(x[features.PREFIX_ROWS].numpy() >= 0).sum(1).mean() for x, _ in run.batches]))
            flops = step_flops(run.config, items, run.config.batch_size, mean_length)
            gflops = flops / (statistics.median(run.step_ms) / 1000) / 1e9
            row = {
                "config": f"width {width}",
                "path": run.path,
                "examples_per_s": round(run.examples_per_s),
                "speedup_vs_fp32_baseline": round(run.examples_per_s / baseline, 2),
                "step_ms": round(statistics.median(run.step_ms), 1),
                "step_ms_rounds": [round(ms, 1) for ms in run.step_ms],
                "batch_size": run.config.batch_size,
                "precision": run.config.precision,
                "achieved_gflop_per_s": round(gflops, 1),
                "fraction_of_fp32_gemm": round(gflops / gemm[width]["float32"], 3),
                "overrides": PATHS[run.path],
            }
            rows.append(row)
            print(
                f"  {run.path:<18}{row['examples_per_s']:>8,} ex/s  x{row['speedup_vs_fp32_baseline']:<5} "
                f"{row['step_ms']:>7} ms/step  {row['achieved_gflop_per_s']:>6} GFLOP/s "
                f"({100 * row['fraction_of_fp32_gemm']:.0f}% of the GEMM rate)",
                flush=True,
            )
        for run in runs:
            if run.path in ("fp32_full", "default"):
                parts = profile_step(run.model, run.batches[len(run.batches) // 2])  # a median-width batch
                step = statistics.median(run.step_ms)
                parts["rest_executor_python"] = round(step - sum(parts.values()), 2)
                profiles[f"width {width} / {run.path}"] = {"step_ms": round(step, 1), "parts_ms": parts}
                print(
                    f"  profile {run.path} ({step:.0f} ms/step): "
                    + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()),
                    flush=True,
                )
        del runs
    result.update(
        gemm_gflop_per_s={f"width {w}": r for w, r in gemm.items()},
        rows=rows,
        profiles=profiles,
        steps=args.passes * args.batches,
        rounds=args.rounds,
    )
    path = write_result(args.result, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
