from __future__ import annotations

import datetime
import math

import pytest

import contract
from components.session_example_gen.config import SECONDS_PER_DAY, IngestConfig
from components.session_example_gen.sessionize import (
    CatalogItem,
    Click,
    Reason,
    Skip,
    catalog_example,
    compile_id_pattern,
    parse_catalog_row,
    parse_click,
    parse_timestamp,
    sessionize,
)

T0 = 1_462_752_000  # 2016-05-09T00:00:00Z
DAY = SECONDS_PER_DAY
COLUMN = IngestConfig(split_method="column")
PATTERN = compile_id_pattern(IngestConfig())


def _feature(example, name):
    feature = example.features.feature[name]
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    return [v.decode() for v in values] if kind == "bytes_list" else values


def _click(session, item, ts, split="", event="", row=None):
    return Click(float(ts), item, session, event, split, row if row is not None else f"{session},{item},{ts}")


def _parse(config=IngestConfig(), **fields):
    row = ",".join(f"{k}={v}" for k, v in fields.items())
    return parse_click(fields, row, config, compile_id_pattern(config))


# --- parse_timestamp --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1462752000", T0),
        (" 1462752000.5 ", T0 + 0.5),
        (1462752000, T0),
        (1462752000.25, T0 + 0.25),
        ("0", 0.0),
        ("1462752000000", T0),  # milliseconds (> 1e11)
        ("1462752000123", T0 + 0.123),
        ("99999999999", 99_999_999_999.0),  # just under 1e11: still seconds
        ("2016-05-09", T0),
        ("2016-05-09T10:15:00", T0 + 36_900),
        ("2016-05-09 10:15:00", T0 + 36_900),
        ("2016-05-09T10:15:00Z", T0 + 36_900),
        ("2016-05-09T10:15:00.500Z", T0 + 36_900.5),
        ("2016-05-09T10:15:00+02:00", T0 + 36_900 - 7_200),
        ("2016-05-09T10:15:00-01:30", T0 + 36_900 + 5_400),
        (datetime.datetime(2016, 5, 9, 10, 15), T0 + 36_900),  # naive = UTC
        (datetime.datetime(2016, 5, 9, 10, 15, tzinfo=datetime.timezone.utc), T0 + 36_900),
        (
            datetime.datetime(2016, 5, 9, 12, 15, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
            T0 + 36_900,
        ),
    ],
)
def test_parse_timestamp_valid(value, expected):
    assert parse_timestamp(value) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "-0.5",
        -5,
        "nan",
        "NaN",
        float("nan"),
        "inf",
        "-inf",
        float("inf"),
        "",
        "abc",
        "2016-13-01",
        "2016-05-09T25:00",
        "10:15",
        "12,5",
        "1462752000s",
        None,
        "1e300",
        "253402300800000.5",
    ],
)
def test_parse_timestamp_invalid(value):
    assert parse_timestamp(value) is None


def test_parse_timestamp_upper_bound_is_year_9999():
    last = 253_402_300_799  # 9999-12-31T23:59:59Z
    assert parse_timestamp(str(last * 1000)) == last
    assert parse_timestamp(str(last * 1000 + 1000)) is None
    assert parse_timestamp("9999-12-31T23:59:59Z") == last


def test_huge_numeric_timestamp_is_a_skip_not_a_crash():
    config = IngestConfig()
    row = {"session_id": "s", "item_id": "b", "timestamp": "1e25"}
    assert parse_click(row, "r", config, PATTERN) == Skip(Reason.UNPARSABLE_TIMESTAMP, "r")


def test_parse_timestamp_naive_iso_is_utc_whatever_the_local_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_timestamp("2016-05-09T10:15:00") == T0 + 36_900
        assert parse_timestamp(datetime.datetime(2016, 5, 9)) == T0
    finally:
        monkeypatch.undo()
        time.tzset()


# --- parse_click ------------------------------------------------------------------------


def test_parse_click_keeps_a_good_row_and_its_raw_text():
    click = parse_click(
        {"session_id": " s1 ", "item_id": "a", "timestamp": "2016-05-09", "event_type": " view "},
        "s1,a,2016-05-09,view",
        IngestConfig(),
        PATTERN,
    )
    assert click == Click(float(T0), "a", "s1", "view", "")
    assert click.row == "s1,a,2016-05-09,view"


def test_parse_click_ids_from_parquet_floats_and_ints():
    click = _parse(session_id=12.0, item_id=7, timestamp=1462752000)
    assert (click.session_id, click.item_id, click.timestamp) == ("12", "7", T0)
    # A non-integral float keeps its text (and is still a valid id).
    assert _parse(session_id=1.5, item_id="a", timestamp="1").session_id == "1.5"


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"item_id": "a", "timestamp": "1"}, Reason.MISSING_SESSION_ID),
        ({"session_id": "", "item_id": "a", "timestamp": "1"}, Reason.MISSING_SESSION_ID),
        ({"session_id": "  ", "item_id": "a", "timestamp": "1"}, Reason.MISSING_SESSION_ID),
        ({"session_id": float("nan"), "item_id": "a", "timestamp": "1"}, Reason.MISSING_SESSION_ID),
        ({"session_id": None, "item_id": "a", "timestamp": "1"}, Reason.MISSING_SESSION_ID),
        ({"session_id": "s", "item_id": "", "timestamp": "1"}, Reason.MISSING_ITEM_ID),
        ({"session_id": "s", "item_id": "a", "timestamp": ""}, Reason.MISSING_TIMESTAMP),
        ({"session_id": "s", "item_id": "a"}, Reason.MISSING_TIMESTAMP),
        # Missing beats unparsable, and columns are checked session, item, timestamp.
        ({"session_id": "bad id", "item_id": "", "timestamp": "x"}, Reason.MISSING_ITEM_ID),
        ({"session_id": "bad id", "item_id": "a", "timestamp": "1"}, Reason.UNPARSABLE_SESSION_ID),
        ({"session_id": "-s", "item_id": "a", "timestamp": "1"}, Reason.UNPARSABLE_SESSION_ID),
        ({"session_id": "s" * 257, "item_id": "a", "timestamp": "1"}, Reason.UNPARSABLE_SESSION_ID),
        ({"session_id": "s", "item_id": "a;b", "timestamp": "1"}, Reason.UNPARSABLE_ITEM_ID),
        ({"session_id": "s", "item_id": "ä", "timestamp": "1"}, Reason.UNPARSABLE_ITEM_ID),
        ({"session_id": "s", "item_id": "a", "timestamp": "yesterday"}, Reason.UNPARSABLE_TIMESTAMP),
        ({"session_id": "s", "item_id": "a", "timestamp": "-3"}, Reason.UNPARSABLE_TIMESTAMP),
    ],
)
def test_parse_click_skip_reasons(fields, reason):
    result = parse_click(fields, "the raw row", IngestConfig(), PATTERN)
    assert result == Skip(reason, "the raw row")


def test_parse_click_split_column_reasons():
    base = {"session_id": "s", "item_id": "a", "timestamp": "1"}
    assert _parse(COLUMN, **base).__class__ is Skip
    assert _parse(COLUMN, **base).reason == Reason.MISSING_SPLIT
    assert _parse(COLUMN, **base, split=" ").reason == Reason.MISSING_SPLIT
    assert _parse(COLUMN, **base, split="validation").reason == Reason.UNKNOWN_SPLIT
    assert _parse(COLUMN, **base, split=" test ").split == "test"
    # The time method ignores the column entirely.
    assert _parse(IngestConfig(), **base, split="validation").split == ""
    # A custom split list.
    custom = IngestConfig(split_method="column", column_splits=("train", "holdout"))
    assert _parse(custom, **base, split="holdout").split == "holdout"
    assert _parse(custom, **base, split="test").reason == Reason.UNKNOWN_SPLIT


def test_parse_click_event_type_filter():
    config = IngestConfig(event_types=("view", "buy"))
    base = {"session_id": "s", "item_id": "a", "timestamp": "1"}
    assert _parse(config, **base, event_type="buy").event_type == "buy"
    skip = _parse(config, **base, event_type="cart")
    assert skip.reason == Reason.EXCLUDED_EVENT_TYPE and skip.row.startswith("session_id=s")
    assert _parse(config, **base).reason == Reason.EXCLUDED_EVENT_TYPE  # no event type at all
    assert _parse(IngestConfig(), **base, event_type="cart").event_type == "cart"  # None keeps all


# --- parse_catalog_row ------------------------------------------------------------------


def test_parse_catalog_row_full():
    fields = {
        "item_id": " 42 ",
        "title": " Pan, 28 cm ",
        "category_path": "Home > Kitchen >  Pans ",
        "brand": "",
        "price": " 19.5 ",
        "colour": "red",
    }
    item, skips = parse_catalog_row(fields, "raw", PATTERN)
    assert skips == []
    assert item == CatalogItem(
        item_id="42",
        text_fields=(("brand", ""), ("colour", "red"), ("title", "Pan, 28 cm")),
        category_levels=("Home", "Kitchen", "Pans"),
        price=19.5,
        has_category_path=True,
    )


def test_parse_catalog_row_missing_and_unparsable_id():
    assert parse_catalog_row({"item_id": " ", "title": "x"}, "r1", PATTERN) == (
        None,
        [Skip(Reason.CATALOG_MISSING_ITEM_ID, "r1")],
    )
    assert parse_catalog_row({"title": "x"}, "r1", PATTERN)[1][0].reason == Reason.CATALOG_MISSING_ITEM_ID
    assert parse_catalog_row({"item_id": "a b"}, "r2", PATTERN) == (
        None,
        [Skip(Reason.CATALOG_UNPARSABLE_ITEM_ID, "r2")],
    )


@pytest.mark.parametrize("price", ["abc", "-1", "nan", "inf", "1,5"])
def test_parse_catalog_row_bad_price_keeps_the_item(price):
    item, skips = parse_catalog_row({"item_id": "a", "price": price, "title": "T"}, "row", PATTERN)
    assert item is not None and item.item_id == "a" and item.price is None
    assert item.text_fields == (("title", "T"),)
    assert skips == [Skip(Reason.CATALOG_UNPARSABLE_PRICE, "row")]


def test_parse_catalog_row_empty_price_is_unknown_not_bad():
    for price in ("", float("nan"), None):
        item, skips = parse_catalog_row({"item_id": "a", "price": price}, "row", PATTERN)
        assert item.price is None and skips == []
    item, _ = parse_catalog_row({"item_id": 3.0, "price": 0}, "row", PATTERN)
    assert (item.item_id, item.price) == ("3", 0.0)


def test_parse_catalog_row_without_category_path_column():
    item, _ = parse_catalog_row({"item_id": "a", "title": "T"}, "row", PATTERN)
    assert item.has_category_path is False and item.category_levels == ()
    item, _ = parse_catalog_row({"item_id": "a", "category_path": ""}, "row", PATTERN)
    assert item.has_category_path is True and item.category_levels == ()
    item, _ = parse_catalog_row({"item_id": "a", "category_path": " > Top >> Leaf > "}, "row", PATTERN)
    assert item.category_levels == ("Top", "Leaf")


# --- sessionize -------------------------------------------------------------------------


def _run(clicks, config=IngestConfig(), max_timestamp=None, session="s"):
    if max_timestamp is None:
        max_timestamp = max(c.timestamp for c in clicks)
    return sessionize(session, clicks, config, max_timestamp)


def _sequences(result):
    return [(_feature(e, contract.PREFIX_ITEM_IDS), _feature(e, contract.TARGET_ITEM_ID)[0]) for e in result.examples]


def test_sessionize_orders_by_time_then_item_id():
    clicks = [_click("s", "c", 30), _click("s", "b", 10), _click("s", "z", 20), _click("s", "a", 20)]
    for order in (clicks, clicks[::-1]):
        result = _run(order)
        assert _sequences(result) == [(["b"], "a"), (["b", "a"], "z"), (["b", "a", "z"], "c")]
        assert result.skips == [] and result.clicks == 4


def test_sessionize_prefix_examples():
    clicks = [_click("s7", item, T0 + i) for i, item in enumerate("abcde")]
    result = _run(clicks, IngestConfig(max_prefix_length=2), session="s7")
    assert len(result.examples) == 4
    assert _sequences(result) == [(["a"], "b"), (["a", "b"], "c"), (["b", "c"], "d"), (["c", "d"], "e")]
    assert [_feature(e, contract.PREFIX_LENGTH) for e in result.examples] == [[1], [2], [3], [4]]
    assert [_feature(e, contract.TARGET_TIMESTAMP) for e in result.examples] == [[T0 + t] for t in (1, 2, 3, 4)]
    assert {_feature(e, contract.SESSION_ID)[0] for e in result.examples} == {"s7"}
    assert set(result.examples[0].features.feature) == {
        contract.SESSION_ID,
        contract.PREFIX_ITEM_IDS,
        contract.TARGET_ITEM_ID,
        contract.TARGET_TIMESTAMP,
        contract.PREFIX_LENGTH,
    }


def test_sessionize_target_timestamp_truncates_fractions():
    result = _run([_click("s", "a", 10.2), _click("s", "b", 11.9)])
    assert _feature(result.examples[0], contract.TARGET_TIMESTAMP) == [11]


def test_sessionize_duplicate_clicks_are_exact_copies_only():
    clicks = [
        _click("s", "a", 10, row="r1"),
        _click("s", "b", 20, row="r2"),
        _click("s", "a", 10, row="r1-again"),
        _click("s", "a", 30, row="r3"),  # same item, another time: not a duplicate
        _click("s", "b", 20, event="buy", row="r4"),  # another event type: not a duplicate
    ]
    result = _run(clicks)
    assert [s.reason for s in result.skips] == [Reason.DUPLICATE_CLICK]
    assert result.skips[0].row in ("r1", "r1-again")
    assert result.clicks == 4
    assert [target for _, target in _sequences(result)] == ["b", "b", "a"]


def test_sessionize_short_session_after_duplicates():
    clicks = [_click("s", "a", 10, row="r1"), _click("s", "a", 10, row="r2"), _click("s", "a", 10, row="r3")]
    result = _run(clicks)
    assert result.split is None and result.examples == [] and result.clicks == 0
    assert sorted(s.reason for s in result.skips) == [Reason.DUPLICATE_CLICK] * 2 + [Reason.SHORT_SESSION]
    # One row per skip: every input row is accounted for exactly once.
    assert sorted(s.row for s in result.skips) == ["r1", "r2", "r3"]


def test_sessionize_min_session_length():
    clicks = [_click("s", item, i) for i, item in enumerate("abc")]
    result = _run(clicks, IngestConfig(min_session_length=4))
    assert result.split is None and [s.reason for s in result.skips] == [Reason.SHORT_SESSION] * 3
    assert _run(clicks, IngestConfig(min_session_length=3)).split == contract.TEST


def test_sessionize_collapse_repeats():
    clicks = [_click("s", item, i, row=f"r{i}") for i, item in enumerate("aabaa")]
    plain = _run(clicks)
    assert plain.skips == [] and plain.clicks == 5 and len(plain.examples) == 4
    collapsed = _run(clicks, IngestConfig(collapse_repeats=True))
    assert _sequences(collapsed) == [(["a"], "b"), (["a", "b"], "a")]
    assert collapsed.skips == [Skip(Reason.COLLAPSED_REPEAT, "r1"), Skip(Reason.COLLAPSED_REPEAT, "r4")]
    assert collapsed.clicks == 3
    # Collapsing can make a session too short.
    short = _run([_click("s", "a", 1), _click("s", "a", 2)], IngestConfig(collapse_repeats=True))
    assert short.split is None
    assert sorted(s.reason for s in short.skips) == [Reason.COLLAPSED_REPEAT, Reason.SHORT_SESSION]


def test_sessionize_conflicting_split_skips_every_click():
    clicks = [
        _click("s", "a", 1, split="train", row="r1"),
        _click("s", "b", 2, split="test", row="r2"),
        _click("s", "c", 3, split="train", row="r3"),
        _click("s", "c", 3, split="train", row="r3-dup"),
    ]
    result = _run(clicks, COLUMN)
    assert result.split is None and result.examples == [] and result.clicks == 0
    reasons = sorted(s.reason for s in result.skips)
    assert reasons == [Reason.CONFLICTING_SPLIT] * 3 + [Reason.DUPLICATE_CLICK]


def test_sessionize_column_split_follows_the_column():
    for split in ("train", "eval", "test"):
        clicks = [_click("s", "a", 1, split=split), _click("s", "b", 2, split=split)]
        assert _run(clicks, COLUMN, max_timestamp=1e9).split == split


def test_sessionize_time_split_boundaries():
    config = IngestConfig(eval_days=2, test_days=1)
    end = T0 + 100 * DAY

    def split_of(session_end):
        clicks = [_click("s", "a", session_end - 5), _click("s", "b", session_end)]
        return _run(clicks, config, max_timestamp=end).split

    assert split_of(end) == contract.TEST
    assert split_of(end - DAY + 1) == contract.TEST
    assert split_of(end - DAY) == contract.EVAL  # exactly test_days before the end: eval
    assert split_of(end - 3 * DAY + 1) == contract.EVAL
    assert split_of(end - 3 * DAY) == contract.TRAIN  # exactly test_days + eval_days: train
    assert split_of(T0) == contract.TRAIN


def test_sessionize_time_split_uses_the_session_end():
    # Starts in the train range, ends in the test range: the whole session is test.
    end = T0 + 100 * DAY
    clicks = [_click("s", "a", end - 30 * DAY), _click("s", "b", end - 10)]
    assert _run(clicks, IngestConfig(), max_timestamp=end).split == contract.TEST


def test_sessionize_eval_carve_from_train_is_deterministic():
    fraction = 0.2
    config = IngestConfig(split_method="column", eval_fraction_of_train=fraction)
    ids = [f"session-{i}" for i in range(2_000)]

    def split_of(session_id, split="train"):
        clicks = [_click(session_id, "a", 1, split=split), _click(session_id, "b", 2, split=split)]
        return sessionize(session_id, clicks, config, max_timestamp=2.0).split

    splits = [split_of(s) for s in ids]
    assert set(splits) == {contract.TRAIN, contract.EVAL}
    assert splits.count(contract.EVAL) / len(ids) == pytest.approx(fraction, abs=0.03)
    assert [split_of(s) for s in ids[:200]] == splits[:200]
    # Only train sessions are carved: test stays test.
    assert {split_of(s, "test") for s in ids[:200]} == {contract.TEST}
    # No carve by default.
    assert {
        sessionize(s, [_click(s, "a", 1, "train"), _click(s, "b", 2, "train")], COLUMN, 2.0).split for s in ids[:200]
    } == {contract.TRAIN}


# --- catalog_example --------------------------------------------------------------------


def test_catalog_example_features():
    item = CatalogItem("42", (("brand", ""), ("colour", "red"), ("title", "Pan")), ("Home", "Pans"), 19.5, True)
    example = catalog_example(item, train_clicks=7)
    assert set(example.features.feature) == {
        "item_id",
        "brand",
        "colour",
        "title",
        "category_path",
        "price",
        contract.TRAIN_CLICKS,
    }
    assert _feature(example, contract.TRAIN_CLICKS) == [7]
    assert _feature(example, contract.ITEM_ID) == ["42"]
    assert _feature(example, contract.TITLE) == ["Pan"]
    assert _feature(example, contract.BRAND) == [""]
    assert _feature(example, "colour") == ["red"]
    assert _feature(example, contract.CATEGORY_PATH) == ["Home", "Pans"]
    assert _feature(example, contract.PRICE) == [pytest.approx(19.5)]


def test_catalog_example_unknown_price_and_no_path_column():
    example = catalog_example(CatalogItem("a", (), (), None, False))
    assert set(example.features.feature) == {contract.ITEM_ID, contract.TRAIN_CLICKS}
    assert _feature(example, contract.TRAIN_CLICKS) == [0]  # never clicked in train
    # A path column with an empty cell gives an empty list, so every item has the feature.
    example = catalog_example(CatalogItem("a", (), (), None, True))
    assert set(example.features.feature) == {contract.ITEM_ID, contract.TRAIN_CLICKS, contract.CATEGORY_PATH}
    assert _feature(example, contract.CATEGORY_PATH) == []


def test_click_row_is_not_part_of_identity():
    assert _click("s", "a", 1, row="x") == _click("s", "a", 1, row="y")
    assert math.isclose(_click("s", "a", 1).timestamp, 1.0)
