"""Every variant trains on the embedded data; the trainer writes what a run needs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from keras import ops

from model import features
from model.config import VARIANTS, ModelConfig
from model.inputs import session_dataset
from model.model import build_model
from model.trainer import HISTORY_FILE, train
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
    data = session_dataset(ingested.split_files["train"], catalog.item_ids, config.max_prefix_length, 256, shuffle=False)
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


def test_train_keeps_the_best_epoch_and_writes_the_run(ingested, ingested_catalog, tmp_path):
    catalog = ingested_catalog.catalog
    config = ModelConfig.preset("M2TRec", **SMALL, epochs=2)
    model, history = train(config, catalog, ingested.split_files["train"], ingested.split_files["eval"], str(tmp_path),
                           train_steps=60, verbose=0)  # fmt: skip
    assert len(history["val_hit@20"]) == 2 and 0 < max(history["val_hit@20"]) <= 1
    with open(tmp_path / HISTORY_FILE) as f:
        assert json.load(f)["epochs_run"] == [2]
    assert os.path.exists(tmp_path / "checkpoints" / "best.weights.h5")
    assert os.listdir(tmp_path / "tensorboard")


def test_baseline_presets_and_encoder_options_are_validated():
    gru, sasrec = ModelConfig.preset("GRU4Rec"), ModelConfig.preset("SASRec")
    assert (gru.session_encoder, gru.pooling, gru.use_item_id, gru.use_title) == ("gru", "last", True, False)
    assert (sasrec.session_encoder, sasrec.causal, sasrec.pooling) == ("transformer", True, "last")
    with pytest.raises(ValueError, match="session_encoder"):
        ModelConfig(session_encoder="lstm")
    with pytest.raises(ValueError, match="causal"):
        ModelConfig(session_encoder="gru", causal=True)
