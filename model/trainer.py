"""TFX Trainer entry point: `run_fn(fn_args)` trains a variant and exports it for serving.

custom_config (set by the pipeline): `model` (ModelConfig fields, with `variant`),
`preprocessing` (PreprocessingConfig fields), `warm_start` and `catalog_files` (added by
SessionTrainer). Training reads raw session examples (item ids); the catalog goes through
the Transform graph once and is held by the model. Early stopping watches eval HIT@20 and
restores the best weights; then, unless the config fixes it, the repeat bonus is chosen
on the eval split (`repeat_bonus.json`). Checkpoints, TensorBoard logs and the history land
in the ModelRun artifact. With `warm_start`, training begins from the base model's weights (the
last blessed model, `fn_args.base_model`), remapped to today's vocabularies; what carried
over is logged and written to `warm_start.json` in the ModelRun artifact. Every model
writes its weights for the next one to start from (model/warm_start.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging

from contract.model_api import (
    CATALOG_FILES,
    HISTORY_FILE,
    REPEAT_BONUS_FILE,
    SERVING_MODEL_NAME,
    TRACKED_METRIC,
    WARM_START,
    WARM_START_FILE,
)
from model import export, warm_start
from model.catalog import Catalog, load_catalog
from model.category_graph import category_transitions
from model.config import ModelConfig, TrainingSetup
from model.inputs import read_prefixes, session_dataset
from model.model import SessionRecommender, build_model
from model.neighbours import build_neighbour_index
from model.warmup import write_warmup_requests

WARMUP_REQUESTS = 10
REFRESH_SESSIONS = 1_000  # validation sessions a catalog refresh compares recommendations on


def resolve_precision(precision: str) -> str:
    """ModelConfig.precision -> a Keras dtype policy; `auto`: mixed float16 on a GPU, float32 on a CPU.

    Mixed bfloat16 stays an option, not the CPU default: on a CPU with AVX512-BF16 its steps
    were 1.12x (width 64) to 1.45x (width 128) faster, but at equal examples it lost 1.6
    points of validation HIT@20 on Diginetica, and with validation counted it was slower
    end to end (benchmarks/results/train_throughput.json, ablation_diginetica.md).
    """
    if precision != "auto":
        return precision
    if keras.backend.backend() == "tensorflow" and tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "float32"


def float32_twin(model: SessionRecommender, catalog: Catalog) -> SessionRecommender:
    """`model` itself if it computes in float32, else a float32 copy of it (same weights) to export.

    Serving stays float32 whatever the training precision: TF Serving may run on CPUs
    without bfloat16, and the exported item vectors are exact.
    """
    if model.compute_dtype == "float32":
        return model
    config = dataclasses.replace(model.model_config, precision="float32")
    twin = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    twin.set_weights(model.get_weights())
    if model.neighbour_index is not None:
        twin.set_neighbour_index(model.neighbour_index, catalog.item_ids)
    if model.category_edges is not None:
        twin.set_category_graph(*(keras.ops.convert_to_numpy(edge) for edge in model.category_edges))
    return twin


def training_batches(train_files: Any, item_ids: np.ndarray, config: ModelConfig) -> tf.data.Dataset:
    """The Trainer's training batches, as `config` asks: shuffled, length-grouped or random."""
    return session_dataset(
        train_files,
        item_ids,
        config.max_prefix_length,
        config.batch_size,
        shuffle=True,
        group_by_length=config.length_grouped_batches,
    )


def hold_training_sessions(
    model: SessionRecommender, catalog: Catalog, train_files: Any, train_data: tf.data.Dataset | None = None
) -> None:
    """Gives `model` what it reads from the training sessions, if its config asks: A2D-MTL's
    neighbour index (model.neighbours) and category graph (model.category_graph, counted over
    `train_data`, the training batches, or a pass over `train_files`)."""
    config = model.model_config
    if config.neighbour_sessions:
        start = time.time()
        index = build_neighbour_index(train_files, config.neighbour_sessions, config.max_prefix_length)
        model.set_neighbour_index(index, catalog.item_ids)
        logging.info("Neighbour index: %d training sessions in %.0f s", index.sessions, time.time() - start)
    if config.category_graph:
        start = time.time()
        if train_data is None:
            train_data = session_dataset(train_files, catalog.item_ids, config.max_prefix_length, 4096, shuffle=False)
        sources, targets, weights = category_transitions(train_data, catalog.features[model.leaf_feature])
        model.set_category_graph(sources, targets, weights)
        logging.info("Category graph: %d distinct transitions in %.0f s", len(sources), time.time() - start)


class TrainingDiverged(RuntimeError):
    """The training loss stopped being finite: no model comes out of the run, so nothing is pushed."""


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, and remembers where.

    Keras' TerminateOnNaN stops quietly and leaves the NaN weights to be saved; `train`
    raises TrainingDiverged instead, so the Trainer fails with the reason.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.diverged_at: tuple[int, int, float] | None = None  # (epoch, batch, loss), counted from 1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = (self.epoch + 1, batch + 1, float(loss))
            self.model.stop_training = True


class StopOnPlateau(keras.callbacks.Callback):
    """Cuts the learning rate on each plateau epoch, stops after `patience` in a row, and keeps
    the best epoch's weights.

    A plateau is an epoch whose score gains at most `min_delta` on the last epoch that gained
    more. One callback judges both the cut and the stop, so the two can never disagree on which
    epochs were plateaus. The threshold only decides when to cut and stop: the weights kept are
    the highest-scoring epoch's (those ModelCheckpoint saves), where Keras' EarlyStopping would
    restore the last epoch that gained `min_delta`. Each epoch's logs get the `learning_rate` it
    trained at, so the history shows every cut.

    Args:
        monitor: the validation metric to maximize, a key of the epoch's logs.
        min_delta: the largest gain that is still a plateau.
        patience: plateau epochs in a row that stop training.
        min_epochs: training does not stop before this many epochs.
        decay: each plateau multiplies the optimizer's learning rate by this; 1.0 keeps it.

    Example:
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> stop = StopOnPlateau("val_hit@20", min_delta=0.001, patience=1, decay=0.5)
        >>> stop.set_model(model)
        >>> stop.on_train_begin()
        >>> for epoch, score in enumerate([0.50, 0.52, 0.5205]):
        ...     stop.on_epoch_end(epoch, {"val_hit@20": score})
        >>> model.stop_training, stop.best_epoch, round(float(model.optimizer.learning_rate), 4)
        (True, 2, 0.05)
    """

    def __init__(self, monitor: str, min_delta: float, patience: int, min_epochs: int = 1, decay: float = 1.0) -> None:
        super().__init__()
        self.monitor, self.min_delta, self.patience, self.min_epochs = monitor, min_delta, patience, min_epochs
        self.decay = decay

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.reference, self.plateaus = -math.inf, 0  # the last score that gained more than min_delta
        self.best, self.best_epoch = -math.inf, 0
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if self.monitor not in logs:
            raise KeyError(f"early stopping watches {self.monitor!r}, which the epoch did not log: {sorted(logs)}")
        current = float(logs[self.monitor])
        rate = self.model.optimizer.learning_rate
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))  # History reads logs after us
        if current > self.best:
            self.best, self.best_epoch, self.best_weights = current, epoch, self.model.get_weights()
        if current > self.reference + self.min_delta:
            self.reference, self.plateaus = current, 0
        else:
            self.plateaus += 1
            rate.assign(logs["learning_rate"] * self.decay)
        if self.plateaus >= self.patience and epoch + 1 >= self.min_epochs:
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class Warmup(keras.callbacks.Callback):
    """Raises the learning rate linearly from 0 to its set value over the first `steps` batches."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.step, self.target = steps, 0, 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.target = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.step < self.steps:
            self.step += 1
            self.model.optimizer.learning_rate.assign(self.target * self.step / self.steps)


class EpochDecay(keras.callbacks.Callback):
    """Multiplies the learning rate by `decay` at the start of each epoch after the first.

    A schedule that needs no horizon, so early stopping still decides how many epochs a run
    gets; a plateau's cut (StopOnPlateau) multiplies on top of it.

    Example:
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> decay = EpochDecay(0.5)
        >>> decay.set_model(model)
        >>> for epoch in range(3):
        ...     decay.on_epoch_begin(epoch)
        >>> round(float(model.optimizer.learning_rate), 4)
        0.025
    """

    def __init__(self, decay: float) -> None:
        super().__init__()
        self.decay = decay

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch > 0:
            rate = self.model.optimizer.learning_rate
            rate.assign(float(keras.ops.convert_to_numpy(rate)) * self.decay)


def record_warm_start(report: dict[str, Any], run_dir: str) -> None:
    """Logs what carried over from the base model and writes it to `warm_start.json`."""
    logging.info(warm_start.summary(report))
    with tf.io.gfile.GFile(os.path.join(run_dir, WARM_START_FILE), "w") as f:
        json.dump(report, f, indent=2)


def train(
    config: ModelConfig,
    catalog: Catalog,
    train_files: Any,
    eval_files: Any,
    run_dir: str,
    train_steps: int | None = None,
    eval_steps: int | None = None,
    verbose: int | None = None,
    base_model: str | None = None,
    vocabulary_rows: dict[str, list[str]] | None = None,
) -> tuple[SessionRecommender, dict[str, list[float]]]:
    """Trains `config` on session examples; returns the best model (by eval HIT@20) and history.

    With `config.repeat_bonus` None, the best model's repeat bonus is then chosen on the
    same eval batches (SessionRecommender.choose_repeat_bonus), and `repeat_bonus.json` says
    which, with each value's HIT@20 and MRR@20.

    With `base_model` (a Model artifact's URI) training starts from its weights, remapped by
    `vocabulary_rows` (warm_start.vocabularies of this catalog); `warm_start.json` says how.
    """
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(config, precision=resolve_precision(config.precision))
    model = build_model(
        config,
        catalog.vocab_sizes,
        catalog.category_levels,
        catalog.features,
        jit_compile=config.precision == "mixed_float16",
    )  # XLA pays off on a GPU
    tf.io.gfile.makedirs(run_dir)  # gfile: on a cluster, artifacts are on object storage
    if base_model is not None:
        if vocabulary_rows is None:
            raise ValueError("a warm start (base_model) needs the vocabulary_rows of this catalog to remap by")
        record_warm_start(warm_start.restore(model, vocabulary_rows, base_model), run_dir)
    train_data = training_batches(train_files, catalog.item_ids, config)
    eval_data = session_dataset(
        eval_files, catalog.item_ids, config.max_prefix_length, config.batch_size, shuffle=False
    )
    hold_training_sessions(model, catalog, train_files, train_data)
    steps_per_epoch = None
    if train_steps:  # TFX's TrainArgs.num_steps caps the whole run
        train_data = train_data.repeat()
        steps_per_epoch = max(1, train_steps // config.epochs)
    monitor = TRACKED_METRIC
    # With weight averaging, the averaged weights are swapped in before validation and at each
    # epoch's end, so the callbacks after it watch, keep and save those.
    divergence = StopOnDivergence()
    callbacks: list[keras.callbacks.Callback] = [divergence]
    if config.weight_average:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks += [
        StopOnPlateau(
            monitor,
            config.plateau_min_delta,
            config.early_stopping_patience,
            config.min_epochs,
            config.plateau_decay,
        ),
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, "checkpoints", "best.weights.h5"),
            monitor=monitor,
            mode="max",
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, "tensorboard")),
    ]
    if config.warmup_steps:
        callbacks.append(Warmup(config.warmup_steps))
    if config.epoch_decay < 1.0:
        callbacks.append(EpochDecay(config.epoch_decay))
    start = time.time()
    history = model.fit(
        train_data,
        validation_data=eval_data,
        validation_steps=eval_steps or None,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        # A progress bar on a terminal; one line per epoch in logs.
        verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2),
    )
    if divergence.diverged_at is not None:
        epoch, batch, loss = divergence.diverged_at
        raise TrainingDiverged(
            f"training diverged: the loss was {loss} at epoch {epoch}, batch {batch}; no model is "
            f"written. Lower learning_rate (now {config.learning_rate}) or set warmup_steps."
        )
    record = {**history.history, "wall_s": [time.time() - start], "epochs_run": [len(history.epoch)]}
    with tf.io.gfile.GFile(os.path.join(run_dir, HISTORY_FILE), "w") as f:
        json.dump(record, f, indent=2)
    if config.repeat_bonus is None:
        start = time.time()
        by_value = model.choose_repeat_bonus(eval_data, eval_steps)
        assert model.repeat_bonus is not None, "a bonus chosen on validation has its layer"
        chosen = float(keras.ops.convert_to_numpy(model.repeat_bonus.bonus))
        logging.info("Repeat bonus %s chosen on the eval split in %.0f s: %s", chosen, time.time() - start, by_value)
        with tf.io.gfile.GFile(os.path.join(run_dir, REPEAT_BONUS_FILE), "w") as f:
            json.dump({"chosen": chosen, "eval": by_value}, f, indent=2)
    return model, record


def run_fn(fn_args: Any) -> None:
    """The TFX Trainer's entry point."""
    setup = TrainingSetup.from_custom_config(fn_args.custom_config)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    catalog = load_catalog(fn_args.custom_config[CATALOG_FILES], tft_output, setup.preprocessing)
    logging.info("Training %s on %d catalog items", setup.model.variant, len(catalog))
    vocabulary_rows = warm_start.vocabularies(tft_output, catalog)
    # The base model is the Format-Serving directory of the last blessed Model artifact.
    base_model = os.path.dirname(fn_args.base_model) if fn_args.base_model else None
    if fn_args.custom_config.get(WARM_START) and base_model is None:
        tf.io.gfile.makedirs(fn_args.model_run_dir)
        record_warm_start(
            {"from_scratch": "warm start is on, but no model has been blessed yet"}, fn_args.model_run_dir
        )
    model, history = train(
        setup.model,
        catalog,
        fn_args.train_files,
        fn_args.eval_files,
        fn_args.model_run_dir,
        train_steps=fn_args.train_steps,
        eval_steps=fn_args.eval_steps,
        base_model=base_model,
        vocabulary_rows=vocabulary_rows,
    )
    logging.info("Best eval %s", {k: max(v) for k, v in history.items() if k.startswith("val_") and "@" in k})
    sessions = read_prefixes(fn_args.eval_files, REFRESH_SESSIONS)  # the warm-up replays the first few
    catalog_records = tf.data.TFRecordDataset(
        sorted(tf.io.gfile.glob(fn_args.custom_config[CATALOG_FILES])), compression_type="GZIP"
    )
    export.export_serving_model(
        float32_twin(model, catalog),
        catalog,
        tft_output,
        setup,
        fn_args.serving_model_dir,
        # What a catalog refresh needs (model/refresh_assets.py).
        catalog_examples=(record.numpy() for record in catalog_records),
        sessions=sessions,
    )
    warm_start.save(model, vocabulary_rows, os.path.dirname(fn_args.serving_model_dir))
    # TF Serving (and serving/server.py) replay these at load, so the first user request is fast.
    write_warmup_requests(
        fn_args.serving_model_dir,
        fn_args.custom_config.get(SERVING_MODEL_NAME, "session_recommender"),
        sessions[:WARMUP_REQUESTS],
    )
    logging.info("Exported %s to %s", setup.model.variant, fn_args.serving_model_dir)
