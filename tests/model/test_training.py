"""Every variant trains on the embedded data; the trainer writes what a run needs."""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from contract.model_api import HISTORY_FILE, REPEAT_BONUS_FILE
from model import features, trainer
from model.config import VARIANTS, ModelConfig
from model.inputs import session_dataset
from model.model import REPEAT_BONUS_GRID, SessionRecommender, build_model
from model.trainer import train
from tests.conftest import SMALL


def _loss(model, batch) -> float:
    inputs, labels = batch
    return float(ops.convert_to_numpy(model.compute_loss(y=labels, y_pred=model(inputs))))


OPTIONS = [
    ("M2TRec", dict(softmax="sampled", num_sampled=256)),
    ("M2TRec_hybrid", dict(cosine_scores=True, temperature=0.1, pooling="attention", item_id_head=True)),
    ("HierSRec", dict(pooling="last")),
]


@pytest.mark.parametrize("variant, options", [(v, {}) for v in sorted(VARIANTS)] + OPTIONS)
def test_each_variant_trains_and_its_loss_falls(variant, options, ingested, ingested_catalog):
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset(variant, **{**SMALL, **options})
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    data = session_dataset(
        ingested.split_files["train"], catalog.item_ids, config.max_prefix_length, 256, shuffle=False
    )
    probe = next(iter(data))
    before = _loss(model, probe)
    model.fit(data.take(40), epochs=1, verbose=0)
    after = _loss(model, probe)
    assert np.isfinite(after) and after < 0.9 * before, (variant, options, before, after)


def test_session_dataset_maps_ids_to_catalog_rows(ingested, ingested_catalog):
    catalog = ingested_catalog.catalog
    inputs, labels = next(iter(session_dataset(ingested.split_files["eval"], catalog.item_ids, 5, 64, shuffle=False)))
    rows = inputs[features.PREFIX_ROWS].numpy()
    # At most the 5 most recent items, padded to the batch's longest session.
    assert rows.shape[0] == 64 and rows.shape[1] <= 5 and (rows >= 0).all(axis=0)[0]
    # Left-aligned: real rows first, then -1 padding; targets are real rows.
    assert all(np.all(np.diff((r >= 0).astype(int)) <= 0) for r in rows)
    assert (labels[features.TARGET_ROW].numpy() >= 0).all() and (rows[:, 0] >= 0).all()


def _train_on(ingested, catalog, config, run_dir, **steps):
    """`train` on the embedded data's train and eval splits, quietly."""
    return train(
        config, catalog, ingested.split_files["train"], ingested.split_files["eval"], str(run_dir), verbose=0, **steps
    )


@pytest.mark.parametrize("weight_average", [0.0, 0.9])
def test_train_keeps_the_best_epoch_and_writes_the_run(weight_average, ingested, ingested_catalog, tmp_path):
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec", **SMALL, epochs=2, weight_average=weight_average)
    model, history = _train_on(ingested, catalog, config, tmp_path, train_steps=60)
    assert len(history["val_hit@20"]) == 2 and 0 < max(history["val_hit@20"]) <= 1
    # The weights kept are the ones validation scored (the averaged ones, with weight averaging).
    eval_data = session_dataset(
        ingested.split_files["eval"], catalog.item_ids, config.max_prefix_length, config.batch_size, shuffle=False
    )
    kept = model.evaluate(eval_data, verbose=0, return_dict=True)
    # Then the repeat bonus with the best eval HIT@20 was chosen (0: the weights as validated), and the model holds it.
    with open(tmp_path / REPEAT_BONUS_FILE) as f:
        repeat_bonus = json.load(f)
    by_value, chosen = repeat_bonus["eval"], repeat_bonus["chosen"]
    assert chosen in REPEAT_BONUS_GRID and by_value[str(chosen)]["hit"] == max(v["hit"] for v in by_value.values())
    assert by_value["0.0"]["hit"] == pytest.approx(100 * max(history["val_hit@20"]), abs=0.01)
    assert 100 * kept["hit@20"] == pytest.approx(by_value[str(chosen)]["hit"], abs=0.01)
    assert 100 * kept["mrr@20"] == pytest.approx(by_value[str(chosen)]["mrr"], abs=0.01)
    with open(tmp_path / HISTORY_FILE) as f:
        assert json.load(f)["epochs_run"] == [2]
    assert os.path.exists(tmp_path / "checkpoints" / "best.weights.h5")
    assert os.listdir(tmp_path / "tensorboard")


def test_every_validation_reads_the_same_eval_batches(ingested, ingested_catalog, tmp_path):
    """Early stopping compares epochs, so each must be scored on the same examples: with a
    learning rate of ~0 the weights do not move, and neither may the validation loss."""
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec", **{**SMALL, "learning_rate": 1e-9}, epochs=3, plateau_decay=1.0)
    eval_batches = session_dataset(
        ingested.split_files["eval"], catalog.item_ids, config.max_prefix_length, config.batch_size, shuffle=False
    )
    assert int(eval_batches.cardinality()) >= 3  # so a validation that read on would see other examples
    _, history = _train_on(ingested, catalog, config, tmp_path, train_steps=3, eval_steps=1)
    assert history["val_loss"] == pytest.approx([history["val_loss"][0]] * 3, rel=1e-5)


@pytest.mark.parametrize(
    "patience, min_epochs, epochs_run, best_epoch",
    [(2, 1, 4, 3), (1, 1, 3, 2), (1, 5, 5, 3)],
)
def test_a_plateau_stops_training_yet_the_best_epoch_is_kept(patience, min_epochs, epochs_run, best_epoch):
    """Epochs 2-4 gain under 0.1 point on epoch 1's 52%: plateaus. The weights kept are the best
    epoch's, though it beat epoch 1 by less than min_delta (Keras' EarlyStopping would keep epoch 1's);
    the learning rate halves on each plateau."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    stop = trainer.StopOnPlateau("val_hit@20", min_delta=0.001, patience=patience, min_epochs=min_epochs, decay=0.5)
    stop.set_model(model)
    stop.on_train_begin()
    ran = 0
    for epoch, score in enumerate([0.50, 0.52, 0.5205, 0.5208, 0.5201, 0.60]):
        model.layers[0].bias.assign([float(epoch)])  # marks whose weights these are
        stop.on_epoch_end(epoch, {"val_hit@20": score})
        ran += 1
        if getattr(model, "stop_training", False):  # set by the callback (or by fit)
            break
    stop.on_train_end()
    assert (ran, float(ops.convert_to_numpy(model.layers[0].bias)[0])) == (epochs_run, best_epoch)
    assert float(ops.convert_to_numpy(model.optimizer.learning_rate)) == 0.5 ** (ran - 2)  # epochs 1, 2 gained
    with pytest.raises(KeyError, match="val_hit@20"):
        stop.on_epoch_end(ran, {"val_loss": 1.0})


def test_train_decays_and_cuts_the_learning_rate_and_stops_on_the_same_plateaus(ingested, ingested_catalog, tmp_path):
    catalog = ingested_catalog.catalog
    # No epoch can gain a whole 100 points: every epoch after the first is a plateau.
    config = ModelConfig.preset(
        "M2TRec",
        **SMALL,
        epochs=5,
        plateau_min_delta=1.0,
        plateau_decay=0.5,
        epoch_decay=0.5,
        early_stopping_patience=1,
        min_epochs=3,
    )
    model, history = _train_on(ingested, catalog, config, tmp_path, train_steps=10)
    # Each epoch's rate: halved as it begins (after the first), and again after each plateau;
    # stopped at the first plateau past `min_epochs`.
    assert [rate / config.learning_rate for rate in history["learning_rate"]] == pytest.approx([1.0, 0.5, 0.125])
    assert float(ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(config.learning_rate / 16)
    for bad in (dict(plateau_min_delta=-0.001), dict(min_epochs=0)):
        with pytest.raises(ValueError, match="plateau_min_delta"):
            ModelConfig(**bad)


def test_baseline_presets_and_encoder_options_are_validated():
    gru, sasrec = ModelConfig.preset("GRU4Rec"), ModelConfig.preset("SASRec")
    assert (gru.session_encoder, gru.pooling, gru.use_item_id, gru.use_title) == ("gru", "last", True, False)
    assert (sasrec.session_encoder, sasrec.causal, sasrec.pooling) == ("transformer", True, "last")
    with pytest.raises(ValueError, match="session_encoder"):
        ModelConfig(session_encoder="lstm")
    with pytest.raises(ValueError, match="causal"):
        ModelConfig(session_encoder="gru", causal=True)


def _new_item_ranks(overrides: dict, ingested, ingested_catalog) -> np.ndarray:
    """Trains a small hybrid, adds a never-clicked copy of the most clicked item, ranks it where that item leads."""
    catalog = ingested_catalog.catalog
    keras.utils.set_random_seed(0)
    config = ModelConfig.preset("M2TRec_hybrid", **SMALL, **overrides)
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    data = session_dataset(ingested.split_files["train"], catalog.item_ids, config.max_prefix_length, 128, shuffle=True)
    model.fit(data.take(60), epochs=2, verbose=0)
    template = int(np.argmax(catalog.features[features.TRAIN_CLICKS]))
    # The new item has the template's metadata and the id of an item never clicked (OOV), as
    # the Transform graph gives an item added to the catalog after training.
    extended = {
        name: np.concatenate([values, values[template : template + 1]]) for name, values in catalog.features.items()
    }
    extended[features.ITEM_ID_INDEX][-1] = catalog.vocab_sizes[features.ITEM_ID_INDEX] - 1
    extended[features.TRAIN_CLICKS][-1] = 0
    model.set_catalog(extended)
    eval_data = session_dataset(
        ingested.split_files["eval"], catalog.item_ids, config.max_prefix_length, 512, shuffle=False
    )
    logits = np.concatenate([ops.convert_to_numpy(model(x)[features.ITEM_LOGITS]) for x, _ in eval_data])
    leads = np.argsort(-logits[:, :-1], axis=1)[:, :5] == template  # sessions where the template is in the top 5
    assert leads.any(axis=1).sum() >= 10
    return (logits[leads.any(axis=1)] > logits[leads.any(axis=1), -1:]).sum(axis=1)


def test_a_hybrid_trained_with_id_dropout_ranks_an_item_added_after_training(ingested, ingested_catalog):
    """Cold start in the hybrid: with the preset's id dropout the metadata path carries an item without a trained id."""
    with_dropout = _new_item_ranks({}, ingested, ingested_catalog)
    without = _new_item_ranks({"id_dropout": 0.0}, ingested, ingested_catalog)
    # Among ~2,500 items it ranks near its template (median 4 when written, at 0.3); without id dropout
    # the shared unknown-id vector, only ever trained as a negative, sinks it (median 553).
    assert np.median(with_dropout) < 20 and np.median(without) > 5 * np.median(with_dropout)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_evaluation_cross_entropy_equals_the_fused_one_of_training(ingested, ingested_catalog, label_smoothing):
    """Validation computes the loss without TF's fused kernel (which also builds the gradient): same values."""
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec_hybrid", **SMALL, label_smoothing=label_smoothing)
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    inputs, labels = next(iter(session_dataset(ingested.split_files["eval"], catalog.item_ids, 50, 256, shuffle=False)))
    logits, target = model(inputs)[features.ITEM_LOGITS], labels[features.TARGET_ROW]
    fused, forward_only = (
        ops.convert_to_numpy(model._cross_entropy(logits, target, training=training)) for training in (True, False)
    )
    np.testing.assert_allclose(forward_only, fused, rtol=1e-5, atol=1e-5)
    assert fused.shape == (int(target.shape[0]),)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_sampled_softmax_estimates_the_full_softmax(ingested, ingested_catalog, label_smoothing):
    """The log-Q corrected sampled loss is close to the full one; a catalog no larger than the sample gets the full one.

    With label smoothing, masked accidental hits stay out of the smoothing term's mean.
    """
    catalog = ingested_catalog.catalog
    keras.utils.set_random_seed(0)
    config = ModelConfig.preset(
        "M2TRec_hybrid", **SMALL, softmax="sampled", num_sampled=2000, label_smoothing=label_smoothing
    )
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    assert model.samples_negatives and len(catalog.item_ids) > 2000
    inputs, labels = next(
        iter(session_dataset(ingested.split_files["train"], catalog.item_ids, 50, 256, shuffle=False))
    )
    outputs = model(inputs)
    full = float(
        np.mean(ops.convert_to_numpy(model._cross_entropy(outputs[features.ITEM_LOGITS], labels[features.TARGET_ROW])))
    )
    sampled = np.mean(
        [
            float(
                np.mean(
                    ops.convert_to_numpy(
                        model._sampled_item_loss(outputs[features.SESSION_VECTOR], labels[features.TARGET_ROW])
                    )
                )
            )
            for _ in range(5)
        ]
    )
    assert abs(sampled - full) < 0.05 * full, (sampled, full)
    small = build_model(
        dataclasses.replace(config, num_sampled=len(catalog.item_ids)),
        catalog.vocab_sizes,
        catalog.category_levels,
        catalog.features,
    )
    assert not small.samples_negatives


def test_prefix_rows_encode_alike_from_the_rows_or_from_the_catalog(ingested_catalog):
    """Training encodes a batch's rows, or the whole catalog when that is fewer rows: the same vectors."""
    catalog = ingested_catalog.catalog
    model = build_model(
        ModelConfig.preset("M2TRec_hybrid", **SMALL), catalog.vocab_sizes, catalog.category_levels, catalog.features
    )
    everything = ops.convert_to_numpy(model.encode_items())
    for count in (7, 3 * len(catalog.item_ids)):  # fewer rows than the catalog, then more
        rows = np.random.default_rng(0).integers(0, len(catalog.item_ids), (count, 1)).astype("int32")
        np.testing.assert_allclose(ops.convert_to_numpy(model._encode_rows(rows)), everything[rows], atol=1e-5)


def test_a_mixed_precision_model_is_exported_from_a_float32_twin(ingested_catalog):
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec", **SMALL, precision="mixed_bfloat16")
    model = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    assert model.compute_dtype == "bfloat16" and all(w.dtype == "float32" for w in model.weights)
    twin = trainer.float32_twin(model, catalog)
    assert twin.compute_dtype == "float32" and keras.config.dtype_policy().name == "float32"
    for mine, theirs in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    # The item encoder computes float32 under any policy (id-only models learned slower with a
    # bfloat16 one), so both models' item vectors are the same; the session encoder is bfloat16.
    assert model.item_encoder.compute_dtype == "float32" and model.session_encoder.compute_dtype == "bfloat16"
    assert all(layer.compute_dtype == "float32" for layer in model.item_encoder._flatten_layers())
    vectors = [ops.convert_to_numpy(m.encode_items()) for m in (model, twin)]
    np.testing.assert_allclose(vectors[0], vectors[1], rtol=1e-6, atol=1e-7)
    # Its scores are float32 products of its vectors: bfloat16 logits would tie many items.
    outputs = model({features.PREFIX_ROWS: np.array([[0, 1, 2]], "int32")})
    session = ops.convert_to_numpy(ops.cast(outputs[features.SESSION_VECTOR], "float32"))
    unit = [v / np.linalg.norm(v, axis=-1, keepdims=True) for v in (session, vectors[0])]
    np.testing.assert_allclose(
        ops.convert_to_numpy(outputs[features.ITEM_LOGITS]), unit[0] @ unit[1].T / config.temperature, atol=1e-4
    )
    # `auto` trains a CPU in float32 (bfloat16 lost accuracy); a chosen precision is kept.
    assert trainer.resolve_precision("auto") == "float32"
    assert trainer.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"


def test_warmup_raises_the_learning_rate_linearly_then_leaves_it():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.4), loss="mse")
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(float(ops.convert_to_numpy(model.optimizer.learning_rate)))
    )
    model.fit(
        np.zeros((6, 2)), np.zeros((6, 1)), batch_size=1, epochs=1, verbose=0, callbacks=[trainer.Warmup(4), record]
    )
    np.testing.assert_allclose(seen, [0.1, 0.2, 0.3, 0.4, 0.4, 0.4], rtol=1e-6)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("precision", "bf16", "precision"),
        ("epoch_decay", 0.0, "epoch_decay"),
        ("epoch_decay", 1.1, "epoch_decay"),
        ("plateau_decay", 0.0, "plateau_decay"),
        ("plateau_decay", 1.5, "plateau_decay"),
        ("id_dropout", 1.0, "id_dropout"),
        ("item_dropout", -0.1, "item_dropout"),
        ("label_smoothing", 1.0, "label_smoothing"),
        ("pooling", "max", "pooling"),
        ("repeat_bonus", -1.0, "repeat_bonus"),
    ],
)
def test_training_knobs_are_validated(field, value, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{field: value})


def test_id_dropout_needs_ids_and_metadata():
    for variant in ("TRec_id", "M2TRec"):  # ids only: nothing carries a dropped id; metadata only: no ids
        with pytest.raises(ValueError, match="id_dropout needs item ids and metadata"):
            ModelConfig.preset(variant, id_dropout=0.1)
    assert ModelConfig.preset("M2TRec_hybrid", id_dropout=0.1).id_dropout == 0.1


def test_a_model_without_a_repeat_bonus_refuses_to_choose_one(ingested_catalog):
    catalog = ingested_catalog.catalog
    model = build_model(
        ModelConfig.preset("M2TRec", **SMALL, repeat_bonus=0.0),
        catalog.vocab_sizes,
        catalog.category_levels,
        catalog.features,
    )
    assert model.repeat_bonus is None
    with pytest.raises(ValueError, match="no repeat bonus to choose"):
        model.choose_repeat_bonus(None)


def test_training_that_diverges_stops_with_a_clear_error(ingested, ingested_catalog, tmp_path, monkeypatch):
    # A loss that turns NaN (here: made so) stops the run at that batch, and train() writes no history or model.
    original = SessionRecommender.compute_loss
    monkeypatch.setattr(SessionRecommender, "compute_loss", lambda self, *a, **k: original(self, *a, **k) * np.nan)
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec", **SMALL, epochs=2)
    with pytest.raises(trainer.TrainingDiverged, match=r"the loss was nan at epoch 1, batch 1; no model is written"):
        train(
            config,
            catalog,
            ingested.split_files["train"],
            ingested.split_files["eval"],
            str(tmp_path),
            train_steps=20,
            verbose=0,
        )
    assert not os.path.exists(tmp_path / HISTORY_FILE)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_saved_model_reloads_with_the_same_outputs(variant, ingested_catalog, tmp_path):
    # Every weight is tracked, so a model rebuilt from its ModelConfig and the saved weights
    # (as warm start and the checkpoints do) answers exactly as the one saved.
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset(variant, **SMALL, repeat_bonus=1.5)
    keras.utils.set_random_seed(1)
    saved = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    path = str(tmp_path / "model.weights.h5")
    saved.save_weights(path)
    keras.utils.set_random_seed(2)
    reloaded = build_model(config, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    rows = np.array([[0, 1, 2, -1], [3, -1, -1, -1]], dtype="int32")
    inputs = {features.PREFIX_ROWS: np.pad(rows, ((0, 0), (0, config.max_prefix_length - 4)), constant_values=-1)}

    def logits(model):
        return ops.convert_to_numpy(model(inputs)[features.ITEM_LOGITS])

    assert not np.allclose(logits(saved), logits(reloaded))  # a fresh model differs
    reloaded.load_weights(path)
    np.testing.assert_allclose(logits(reloaded), logits(saved), rtol=1e-6, atol=1e-6)
    assert len(reloaded.weights) == len(saved.weights)
