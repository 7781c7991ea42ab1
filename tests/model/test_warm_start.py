"""Warm start: the Trainer resumes from a blessed model, across a catalog that changed."""

from __future__ import annotations

import json
import os

import numpy as np
from tfx.components.trainer.fn_args_utils import FnArgs

import contract
from contract.model_api import CATALOG_FILES, MODEL_CONFIG, PREPROCESSING_CONFIG, WARM_START, WARM_START_FILE
from model import features, warm_start
from model.config import ModelConfig
from model.model import build_model
from model.trainer import run_fn, train
from tests.conftest import SMALL

# Every kind of vocabulary-indexed weight: id, title, brand and category tables, the
# category heads, HierSRec's category projections and the item-id head.
CONFIG = ModelConfig.preset("HierSRec", **SMALL, item_id_head=True, epochs=1)
NEW_TOKEN = "a token the base model never saw"


def _weights(model) -> dict[str, np.ndarray]:
    return {w.path.split("/", 1)[1]: np.array(w.numpy()) for w in model.weights}


def _changed(rows: dict[str, list[str]]) -> dict[str, list[str]]:
    """Vocabularies after a catalog change: 10 tokens gone, the rest reordered, one new token."""
    changed = {}
    for feature, tokens in rows.items():
        padding = tokens[:1] if feature == features.TITLE_TOKENS else []
        known = tokens[len(padding) : -1]
        changed[feature] = padding + known[10:][::-1] + [NEW_TOKEN] + tokens[-1:]
    return changed


def test_weights_carry_over_a_changed_catalog_row_by_row(ingested_catalog, tmp_path):
    catalog = ingested_catalog.catalog
    base = build_model(CONFIG, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    old_rows = warm_start.vocabularies(ingested_catalog.tft_output, catalog)
    warm_start.save(base, old_rows, str(tmp_path))

    new_rows = _changed(old_rows)
    sizes = {**catalog.vocab_sizes, **{feature: len(tokens) for feature, tokens in new_rows.items()}}
    item_features = {
        name: np.minimum(values, sizes[name] - 1) if name in sizes else values
        for name, values in catalog.features.items()
    }
    model = build_model(CONFIG, sizes, catalog.category_levels, item_features)
    fresh = _weights(model)
    report = warm_start.restore(model, new_rows, str(tmp_path))

    assert not report["reinitialized"] and "from_scratch" not in report
    before, after = _weights(base), _weights(model)
    # Same-shaped weights (the session encoder, the projection) are copied as they were.
    assert "session_encoder/positions/embeddings" in report["copied"]
    np.testing.assert_array_equal(after["item_encoder/projection/kernel"], before["item_encoder/projection/kernel"])
    # Vocabulary-indexed weights follow their tokens; a new token keeps its fresh row.
    for feature, axis, path in [
        (features.ITEM_ID_INDEX, 0, f"item_encoder/{features.ITEM_ID_INDEX}/embeddings"),
        (features.BRAND, 0, f"item_encoder/{features.BRAND}/embeddings"),
        (features.TITLE_TOKENS, 0, f"item_encoder/{features.TITLE_TOKENS}/embeddings"),
        (features.category_level(4), 0, f"item_encoder/{features.category_level(4)}/embeddings"),
        (features.category_level(2), 1, "category_heads/level_2/kernel"),
        (features.category_level(3), 0, "category_heads/level_3/bias"),
        (features.category_level(1), 0, "hierarchical_fusion/level_1/kernel"),
        (features.ITEM_ID_INDEX, 1, "item_id_head/kernel"),
    ]:
        rows = new_rows[feature]
        assert report["remapped"][path] == {"kept": len(rows) - 1, "new": 1}, path
        for token in rows[:: max(1, len(rows) // 20)] + rows[-1:]:
            expected = fresh[path] if token == NEW_TOKEN else before[path]
            index = rows.index(token) if token == NEW_TOKEN else old_rows[feature].index(token)
            np.testing.assert_array_equal(
                np.take(after[path], rows.index(token), axis=axis),
                np.take(expected, index, axis=axis),
                err_msg=f"{path} {token!r}",
            )


def _fn_args(ingested, catalog, model_uri: str) -> FnArgs:
    """The Trainer's arguments with warm start on and no blessed model yet."""
    return FnArgs(
        train_files=[ingested.split_files[contract.TRAIN]],
        eval_files=[ingested.split_files[contract.EVAL]],
        transform_output=os.path.dirname(catalog.tft_output.transform_savedmodel_dir),
        train_steps=8,
        eval_steps=4,
        serving_model_dir=os.path.join(model_uri, "Format-Serving"),
        model_run_dir=os.path.join(model_uri, "run"),
        base_model=None,
        custom_config={
            MODEL_CONFIG: {"variant": "M2TRec", **SMALL, "learning_rate": 1e-9, "epochs": 1},
            PREPROCESSING_CONFIG: {"category_levels": 4},
            WARM_START: True,
            CATALOG_FILES: catalog.file_pattern,
        },
    )


def test_run_fn_trains_from_scratch_then_a_model_resumes_from_it(ingested, ingested_catalog, tmp_path):
    first = str(tmp_path / "first")
    run_fn(_fn_args(ingested, ingested_catalog, first))
    with open(os.path.join(first, "run", WARM_START_FILE)) as f:
        assert "no model has been blessed yet" in json.load(f)["from_scratch"]

    # run_fn hands train() the Model artifact's URI (TFX gives it <uri>/Format-Serving).
    catalog = ingested_catalog.catalog
    rows = warm_start.vocabularies(ingested_catalog.tft_output, catalog)
    config = ModelConfig.preset("M2TRec", **{**SMALL, "learning_rate": 1e-9}, epochs=1)
    model, _ = train(
        config,
        catalog,
        ingested.split_files[contract.TRAIN],
        ingested.split_files[contract.EVAL],
        str(tmp_path / "second"),
        train_steps=4,
        eval_steps=2,
        verbose=0,
        base_model=first,
        vocabulary_rows=rows,
    )
    with open(tmp_path / "second" / WARM_START_FILE) as f:
        report = json.load(f)
    assert report["base_model"] == first and not report["reinitialized"] and report["copied"]
    assert all(n["new"] == 0 for n in report["remapped"].values())  # the same catalog
    # A learning rate of 1e-9 leaves the weights where the blessed model's were.
    base = np.load(os.path.join(first, warm_start.WARM_START_DIR, warm_start.WEIGHTS_FILE))
    for i, value in enumerate(model.get_weights()):
        np.testing.assert_allclose(value, base[f"arr_{i}"], atol=1e-5)
