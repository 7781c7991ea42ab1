"""Catalog refresh on the embedded data: new items served, removed ones never, over gRPC, without a failed request."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import threading
import time

import pytest
import tensorflow as tf

from components import catalog_refresh
from components.catalog_refresh import read_catalog, refresh
from components.session_example_gen.config import IngestConfig
from contract.model_api import SERVING_DEFAULT, TOP_K_IDS
from model.refresh_assets import REFRESH_DIR
from serving.client import RecommenderClient, ServingError
from serving.server import RecommenderServer, ServerConfig
from serving.versions import VersionManager
from tests.conftest import DEFAULT_DATA

MODEL_NAME = "recommender"
CLONE, FRESH = "refresh-clone-1", "refresh-fresh-1"


def _default_catalog() -> tuple[list[str], list[list[str]]]:
    with gzip.open(os.path.join(DEFAULT_DATA, "catalog.csv.gz"), "rt", encoding="utf-8", newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def _write_csv(path: str, header: list[str], rows: list[list[str]]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture
def served(exported, tmp_path) -> str:
    """The exported model as version 1 of a serving base of this test's own."""
    base = str(tmp_path / "models" / MODEL_NAME)
    shutil.copytree(exported.export_dir, os.path.join(base, "1"))
    return base


def _top_ids(version_dir: str, session: list[str]) -> list[str]:
    serve = tf.saved_model.load(version_dir).signatures[SERVING_DEFAULT]
    return [item.decode() for item in serve(item_ids=tf.constant([session]))[TOP_K_IDS].numpy()[0]]


def test_read_catalog_counts_bad_rows_and_keeps_the_smallest_duplicate(tmp_path):
    path = _write_csv(
        str(tmp_path / "catalog.csv"),
        ["item_id", "title", "category_path", "brand", "price"],
        [
            ["1", "b title", "A > B", "x", "2.5"],
            ["1", "a title", "A > B", "x", "2.5"],  # the smaller raw row of item 1
            ["2", "t", "A", "y", "not a price"],  # kept, its price unknown
            ["", "no id", "A", "y", "1"],
            ["3", "too", "many", "fields", "1", "!"],
        ],
    )
    items, skipped = read_catalog(path, IngestConfig())
    assert {item.item_id: item.text_fields[-1][1] for item in items} == {"1": "a title", "2": "t"}
    assert [item.price for item in items if item.item_id == "2"] == [None]
    assert skipped == {
        "catalog_duplicate_item": 1,
        "catalog_malformed_row": 1,
        "catalog_missing_item_id": 1,
        "catalog_unparsable_price": 1,
    }


def test_a_refresh_serves_new_items_and_never_removed_ones_without_a_failed_request(exported, served, tmp_path):
    session = exported.sessions[0]
    before = _top_ids(os.path.join(served, "1"), session)
    template = next(item for item in before if item not in session)  # no repeat bonus: its clone ties with it
    removed = [item for item in before[1:5] if item not in session and item != template][:3]
    header, rows = _default_catalog()
    original = next(row for row in rows if row[0] == template)
    new_rows = [row for row in rows if row[0] not in removed]
    new_rows += [
        [CLONE, *original[1:]],  # the metadata of the session's best new item: M2TRec gives it the same vector
        [FRESH, "Zyxwv Qrstu", "Brand New > Category", "NeverSeenBrand", "12.5"],  # only unseen tokens
    ]
    catalog = _write_csv(str(tmp_path / "new_catalog.csv"), header, new_rows)

    manager = VersionManager(os.path.dirname(served), MODEL_NAME, poll_s=0.2).start()
    server = RecommenderServer(manager, ServerConfig(port=0))
    target = f"127.0.0.1:{server.start()}"
    stop, failures, versions_seen = threading.Event(), [], []

    def client_loop() -> None:
        with RecommenderClient(target, model_name=MODEL_NAME, timeout_s=30) as client:
            while not stop.is_set():
                try:
                    versions_seen.append(client.recommend([session])[0].model_version)
                    time.sleep(0.01)
                except ServingError as error:
                    failures.append(error)

    thread = threading.Thread(target=client_loop)
    thread.start()
    try:
        report = refresh(served, catalog)
        assert report.passed, report.problems
        deadline = time.monotonic() + 120
        while int(report.version) not in versions_seen:
            assert time.monotonic() < deadline, "the refreshed version was never served"
            time.sleep(0.1)
        stop.set()
        thread.join()
        assert not failures and versions_seen[0] == 1
        with RecommenderClient(target, model_name=MODEL_NAME) as client:
            [answer] = client.recommend([session])
            assert answer.model_version == int(report.version)
            ranked = list(answer.item_ids)
            assert CLONE in ranked and abs(ranked.index(CLONE) - ranked.index(template)) == 1  # they tie
            answers = client.recommend(exported.sessions)
            assert not {item for a in answers for item in a.item_ids} & set(removed)
            [fresh] = client.recommend([[FRESH]])  # a session of an item added today is answered
            assert fresh.unknown_items == 0 and len(fresh.item_ids) == 20
    finally:
        stop.set()
        thread.join()
        server.stop(grace_s=1)
        manager.stop()

    assert (report.added, report.removed, report.changed) == (2, len(removed), 0)
    assert report.unchanged == len(exported.catalog) - len(removed) and report.items == report.unchanged + 2
    assert report.skipped  # the embedded catalog's injected bad rows, counted as the ExampleGen counts them
    assert report.sessions_compared > 0 and report.sessions_differing == 0
    assert report.max_vector_change <= catalog_refresh.TOLERANCE and report.nonfinite_items == 0
    version_dir = os.path.join(served, report.version)
    with open(os.path.join(version_dir, REFRESH_DIR, catalog_refresh.REPORT_FILE)) as f:
        assert json.load(f)["passed"] is True
    # The refreshed version can be refreshed again: it keeps the assets, with its own catalog.
    assert refresh(served, catalog).unchanged == report.items


def test_a_refresh_that_fails_validation_is_not_pushed(served, tmp_path, monkeypatch):
    header, rows = _default_catalog()
    catalog = _write_csv(str(tmp_path / "same.csv"), header, rows)
    monkeypatch.setattr(catalog_refresh, "TOLERANCE", -1.0)  # every unchanged vector counts as moved
    report = refresh(served, catalog)
    assert not report.passed and report.version == ""
    assert any("unchanged item's vector moved" in problem for problem in report.problems)
    assert sorted(os.listdir(served)) == [".refused-refresh.json", "1"]


def test_a_model_exported_without_refresh_assets_is_refused_clearly(served, tmp_path):
    shutil.rmtree(os.path.join(served, "1", REFRESH_DIR))
    header, rows = _default_catalog()
    with pytest.raises(FileNotFoundError, match="has no assets.extra/refresh/"):
        refresh(served, _write_csv(str(tmp_path / "c.csv"), header, rows))


def test_a_catalog_without_a_usable_item_is_refused_clearly(served, tmp_path):
    header, _ = _default_catalog()
    catalog = _write_csv(str(tmp_path / "bad.csv"), header, [["", "no id", "A", "b", "1"], ["x", "too", "few"]])
    with pytest.raises(ValueError, match="no usable catalog item"):
        refresh(served, catalog)
    assert os.listdir(served) == ["1"]
