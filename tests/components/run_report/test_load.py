"""The RunReport's readers on hand-made artifacts (the pipeline test runs the whole component)."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts

import contract
from components.run_report import load
from components.run_report.sessions import pick_sessions, read_items
from reporting.run_report import Item, Push


def _bytes(*values: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _write(path: str, examples: list[dict[str, tf.train.Feature]]) -> str:
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for features in examples:
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return path


def test_slice_names_read_as_in_the_summary():
    assert load._slice_name(()) == "overall"
    assert load._slice_name((("tail_session", 1),)) == "tail_session=1"
    assert load._slice_name((("session_length", b"3-4"),)) == "session_length=3-4"


def test_thresholds_read_as_conditions():
    floor = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 0.05}))
    change = tfma.MetricThreshold(
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -0.01}
        )
    )
    assert load._describe_threshold(floor) == "value >= 0.05"
    assert load._describe_threshold(change) == "absolute change >= -0.01 (higher is better)"


def test_blessing_and_push_come_from_the_artifacts_properties():
    blessing = standard_artifacts.ModelBlessing()
    pushed, not_pushed = standard_artifacts.PushedModel(), standard_artifacts.PushedModel()
    blessing.set_int_custom_property("blessed", 1)
    pushed.set_int_custom_property("pushed", 1)
    pushed.set_string_custom_property("pushed_version", "17")
    pushed.set_string_custom_property("pushed_destination", "/serving/m/17")
    not_pushed.set_int_custom_property("pushed", 0)
    assert load.is_blessed(blessing)
    assert load.read_push(pushed) == Push(True, "17", "/serving/m/17")
    assert load.read_push(not_pushed) == Push(False)


def test_sessions_are_picked_at_their_longest_prefix_long_ones_first(tmp_path):
    def example(session: str, prefix: list[str], target: str) -> dict[str, tf.train.Feature]:
        return {
            contract.SESSION_ID: _bytes(session),
            contract.PREFIX_ITEM_IDS: _bytes(*prefix),
            contract.TARGET_ITEM_ID: _bytes(target),
        }

    path = _write(
        str(tmp_path / "test.gz"),
        [
            example("short", ["a"], "b"),
            example("long", ["a"], "b"),
            example("long", ["a", "b"], "c"),
            example("long", ["a", "b", "c"], "d"),
        ],
    )
    assert pick_sessions(path, 2) == [("long", ["a", "b", "c"], "d"), ("short", ["a"], "b")]
    catalog = _write(
        str(tmp_path / "items.gz"),
        [
            {
                contract.ITEM_ID: _bytes("a"),
                contract.TITLE: _bytes("Red shoe"),
                contract.CATEGORY_PATH: _bytes("Shoes", "Red"),
            },
            {contract.ITEM_ID: _bytes("z")},
        ],
    )
    # An item without a title or categories still shows by id; an id not in the catalog is absent.
    assert read_items(catalog, {"a", "z", "missing"}) == {"a": Item("a", "Red shoe", "Shoes > Red"), "z": Item("z")}
