from __future__ import annotations

import dataclasses
import json

import pytest

from components.session_example_gen.config import IngestConfig


def test_json_round_trip_default():
    config = IngestConfig()
    assert IngestConfig.from_json(config.to_json()) == config


def test_json_round_trip_keeps_tuples():
    config = IngestConfig(
        max_prefix_length=7,
        collapse_repeats=True,
        event_types=("view", "buy"),
        split_method="column",
        column_splits=("train", "test"),
        eval_fraction_of_train=0.1,
        max_bad_fraction=0.2,
        samples_per_reason=2,
    )
    text = config.to_json()
    assert json.loads(text)["event_types"] == ["view", "buy"]
    restored = IngestConfig.from_json(text)
    assert restored == config
    assert isinstance(restored.event_types, tuple) and isinstance(restored.column_splits, tuple)
    assert hash(restored) == hash(config)  # frozen and hashable: tuples, not lists


def test_json_is_stable():
    # Sorted keys: the same config always gives the same execution fingerprint.
    text = IngestConfig(eval_days=3).to_json()
    assert text == IngestConfig.from_json(text).to_json()
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert IngestConfig(eval_days=3).to_json() != IngestConfig(eval_days=4).to_json()


def test_from_json_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown IngestConfig field 'no_such_knob'"):
        IngestConfig.from_json(json.dumps({"no_such_knob": 1}))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split_method": "random"}, "split_method"),
        ({"max_prefix_length": 0}, "max_prefix_length"),
        ({"min_session_length": 1}, "min_session_length"),
        ({"max_bad_fraction": -0.1}, "max_bad_fraction"),
        ({"max_bad_fraction": 1.5}, "max_bad_fraction"),
        ({"split_method": "column", "eval_fraction_of_train": 1.0}, "eval_fraction_of_train"),
        ({"split_method": "column", "eval_fraction_of_train": -0.1}, "eval_fraction_of_train"),
        ({"eval_days": 0}, "eval_days"),
        ({"test_days": -1}, "test_days"),
        ({"eval_fraction_of_train": 0.1}, "split_method='column'"),
    ],
)
def test_validation_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IngestConfig(**kwargs)


def test_validation_edges_that_are_allowed():
    IngestConfig(max_bad_fraction=0.0)
    IngestConfig(max_bad_fraction=1.0)
    IngestConfig(max_prefix_length=1, min_session_length=2)
    # Days only matter for the time split.
    IngestConfig(split_method="column", eval_days=0, test_days=0)
    with pytest.raises(ValueError):
        dataclasses.replace(IngestConfig(), split_method="nope")


def test_split_names():
    assert IngestConfig().split_names == ("train", "eval", "test")
    # Time split ignores column_splits.
    assert IngestConfig(column_splits=("a", "b")).split_names == ("train", "eval", "test")
    assert IngestConfig(split_method="column").split_names == ("train", "eval", "test")
    assert IngestConfig(split_method="column", column_splits=("train", "test")).split_names == ("train", "test")


def test_split_names_with_eval_carve():
    carve = dict(split_method="column", eval_fraction_of_train=0.1)
    assert IngestConfig(**carve, column_splits=("train", "test")).split_names == ("train", "eval", "test")
    assert IngestConfig(**carve, column_splits=("test", "train")).split_names == ("test", "train", "eval")
    # eval already there: not added twice.
    assert IngestConfig(**carve, column_splits=("train", "eval", "test")).split_names == ("train", "eval", "test")
    # No train split to carve from: refused rather than an eval split that stays empty.
    with pytest.raises(ValueError, match="no 'train'"):
        IngestConfig(**carve, column_splits=("test",))
