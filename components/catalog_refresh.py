"""Catalog refresh: the served model recommends a new catalog, without retraining.

New items arrive daily, and retraining for each is slow and risky. The model scores items
through their metadata, so a new catalog needs only new item vectors:

    python -m components.catalog_refresh --serving-base outputs/serving/session_recommender \\
        --catalog new_catalog.csv

1. The newest version under `--serving-base` and what its export kept for this
   (`model/refresh_assets.py`: setup, Transform graph, catalog, validation sessions).
2. The new catalog, in the data contract, read as SessionExampleGen reads it: bad rows
   counted by reason, the first of duplicate ids kept. An item keeps the training clicks
   the model knew (0 for a new one).
3. The model's own Transform graph and weights encode it (vocabularies as trained: unseen
   tokens, brands and ids go to OOV, as in serving) into a new SavedModel.
4. Validation, reported like the Evaluator's verdict: on the validation sessions made only
   of unchanged items, the new version recommends what the old one did among unchanged
   items (the items that stayed keep their vectors), every item's vector is finite, and the
   items added, removed and changed are counted.
5. A version that passed is pushed atomically as the next version (TF Serving, and
   `serving/`, pick it up); one that failed is not pushed.

Items absent from the new catalog can no longer be recommended; new items can.

Example:
    >>> report = refresh("outputs/serving/session_recommender", "new_catalog.csv")  # doctest: +SKIP
    >>> report.passed, report.added, report.version                               # doctest: +SKIP
    (True, 120, '1764892800')
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

import contract
from components.atomic_pusher import next_version, push_atomically, versions
from components.session_example_gen.config import IngestConfig
from components.session_example_gen.executor import csv_header, csv_records, is_parquet, parquet_row, read_text
from components.session_example_gen.sessionize import (
    CatalogItem,
    Reason,
    catalog_example,
    compile_id_pattern,
    parse_catalog_row,
)
from contract.model_api import SERVING_DEFAULT, TOP_K_IDS, TOP_K_SCORES, WARMUP_FILE
from model.catalog import catalog_from_examples
from model.export import RecommenderModule, SessionTables, export_serving_model
from model.model import build_model
from model.refresh_assets import REFRESH_DIR, read_refresh_assets

REPORT_FILE = "refresh_report.json"
# Unchanged items' vectors and scores, old against new: the same weights and inputs, so
# they differ only by float rounding of another batch shape.
TOLERANCE = 1e-4
_SESSION_BATCH = 256


@dataclasses.dataclass(frozen=True)
class RefreshReport:
    """What a refresh changed and whether the new version may be served.

    Args:
        base: the version directory refreshed.
        items: items in the new catalog.
        added, removed, changed: items new to the catalog, gone from it, and kept with
            other metadata (their vectors change); `unchanged` the rest.
        skipped: catalog rows not used, by reason (as in the ingest report).
        sessions_compared: validation sessions made only of unchanged items.
        sessions_differing: those whose recommendations among unchanged items changed.
        max_vector_change: the largest change of an unchanged item's vector.
        nonfinite_items: items whose vector is not finite.
        problems: why the new version must not be served; empty when it may.
        version: the version pushed, or "" when none was.
    """

    base: str
    items: int
    added: int
    removed: int
    changed: int
    unchanged: int
    skipped: Mapping[str, int]
    sessions_compared: int
    sessions_differing: int
    max_vector_change: float
    nonfinite_items: int
    problems: Sequence[str]
    wall_s: float
    version: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "passed": self.passed}, indent=2)

    def markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED, not pushed"
        lines = [
            f"# Catalog refresh of {self.base}",
            "",
            f"**{verdict}**" + "".join(f"\n- {problem}" for problem in self.problems),
            "",
            f"Items: {self.items:,} ({self.added:,} added, {self.removed:,} removed, {self.changed:,} changed, "
            f"{self.unchanged:,} unchanged); rows skipped: "
            + (", ".join(f"{reason} {n:,}" for reason, n in self.skipped.items()) or "none")
            + ".",
            f"Validation sessions of unchanged items: {self.sessions_compared:,}, of which "
            f"{self.sessions_differing:,} changed their recommendations among unchanged items; largest change "
            f"of an unchanged item's vector {self.max_vector_change:.2g}; items with a non-finite vector: "
            f"{self.nonfinite_items:,}.",
            f"Refreshed in {self.wall_s:.1f} s" + (f"; pushed as version {self.version}." if self.version else "."),
        ]
        return "\n".join(lines) + "\n"


def read_catalog(pattern: str, config: IngestConfig) -> tuple[list[CatalogItem], dict[str, int]]:
    """The catalog file(s) as SessionExampleGen reads them: the items, and rows skipped by reason."""
    id_pattern = compile_id_pattern(config)
    skipped: collections.Counter[str] = collections.Counter()
    rows: list[tuple[Mapping[str, Any], str]] = []
    paths = sorted(tf.io.gfile.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no catalog file matches {pattern}")
    if is_parquet(pattern):
        import pyarrow.parquet as pq

        for path in paths:
            rows += [(r, parquet_row(r)) for r in pq.read_table(path).to_pylist()]
    else:
        header = csv_header(pattern, contract.CATALOG_REQUIRED_COLUMNS)
        for path in paths:
            for fields, line in csv_records(read_text(path), header):
                if fields is None:
                    skipped[Reason.CATALOG_MALFORMED_ROW] += 1
                else:
                    rows.append((fields, line))
    chosen: dict[str, tuple[str, CatalogItem]] = {}
    for fields, line in rows:
        item, skips = parse_catalog_row(fields, line, id_pattern)
        skipped.update(skip.reason for skip in skips)
        if item is None:
            continue
        if item.item_id in chosen:  # the smallest raw row wins, as in the ExampleGen
            skipped[Reason.CATALOG_DUPLICATE_ITEM] += 1
            if line >= chosen[item.item_id][0]:
                continue
        chosen[item.item_id] = (line, item)
    return [item for _, item in chosen.values()], dict(sorted(skipped.items()))


def _by_id(serialized: Iterable[bytes]) -> dict[str, tf.train.Example]:
    examples = (tf.train.Example.FromString(record) for record in serialized)
    return {e.features.feature[contract.ITEM_ID].bytes_list.value[0].decode(): e for e in examples}


def _train_clicks(example: tf.train.Example) -> int:
    values = example.features.feature[contract.TRAIN_CLICKS].int64_list.value
    return int(values[0]) if values else 0


def _strings(values: tf.Tensor) -> np.ndarray:
    return np.array([value.decode() for value in values.numpy().reshape(-1)], dtype=object).reshape(values.shape)


def _vectors_by_id(item_ids: tf.Variable, vectors: tf.Variable, wanted: Sequence[str]) -> np.ndarray:
    ids = _strings(item_ids).astype(str)
    order = np.argsort(ids)
    return vectors.numpy()[order[np.searchsorted(ids, wanted, sorter=order)]]


def _top_k(serve: Any, sessions: list[list[str]]) -> list[tuple[list[str], np.ndarray]]:
    results = []
    for start in range(0, len(sessions), _SESSION_BATCH):
        batch = sessions[start : start + _SESSION_BATCH]
        width = max(len(session) for session in batch)
        padded = [[*s, *[""] * (width - len(s))] for s in batch]
        out = serve(item_ids=tf.constant(padded))
        ids, scores = _strings(out[TOP_K_IDS]), out[TOP_K_SCORES].numpy()
        results += [(list(ids[i]), scores[i]) for i in range(len(batch))]
    return results


def _differs(old: tuple[list[str], np.ndarray], new: tuple[list[str], np.ndarray], unchanged: set[str]) -> bool:
    """Whether two top-K lists disagree among `unchanged` items, over their common length.

    Added items may push unchanged ones down and removed ones leave gaps, so each list is
    cut to its unchanged items first. Positions are compared by score: two lists whose
    scores agree there hold the same items, but for exact ties, which either may order.
    """
    old_scores = [score for item, score in zip(*old) if item in unchanged]
    new_scores = [score for item, score in zip(*new) if item in unchanged]
    return any(abs(a - b) > TOLERANCE * max(1.0, abs(a)) for a, b in zip(old_scores, new_scores))


def refresh_version(
    version_dir: str, catalog_pattern: str, export_dir: str, config: IngestConfig | None = None
) -> RefreshReport:
    """Exports the model of `version_dir` over the catalog of `catalog_pattern` into `export_dir`, and validates it."""
    start = time.time()
    assets = read_refresh_assets(version_dir)
    setup = dataclasses.replace(assets.setup, model=dataclasses.replace(assets.setup.model, precision="float32"))
    old = _by_id(assets.catalog_examples)
    items, skipped = read_catalog(catalog_pattern, config or IngestConfig())
    new = {
        item.item_id: catalog_example(item, _train_clicks(old[item.item_id]) if item.item_id in old else 0)
        for item in items
    }
    if not new:
        raise ValueError(f"{catalog_pattern} has no usable catalog item (rows skipped: {skipped})")
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    changed = sorted(item_id for item_id in set(new) & set(old) if new[item_id] != old[item_id])
    unchanged = set(new) - set(added) - set(changed)

    serialized = [example.SerializeToString() for example in new.values()]
    catalog = catalog_from_examples(serialized, assets.tft_output, setup.preprocessing)
    model = build_model(setup.model, catalog.vocab_sizes, catalog.category_levels, catalog.features)
    served = tf.saved_model.load(version_dir)
    saved_weights = list(served.model_variables)
    if [tuple(w.shape) for w in model.variables] != [tuple(w.shape) for w in saved_weights]:
        raise ValueError(f"{version_dir}: its weights do not fit the model its refresh assets describe")
    for weight, saved in zip(model.variables, saved_weights):
        weight.assign(saved.numpy())
    module: RecommenderModule = export_serving_model(
        model,
        catalog,
        assets.tft_output,
        setup,
        export_dir,
        catalog_examples=serialized,
        sessions=assets.sessions,
        tables=SessionTables.of_served(served),  # what training saw (A2D-MTL's neighbours, category graph)
    )
    if tf.io.gfile.exists(os.path.join(version_dir, WARMUP_FILE)):
        tf.io.gfile.copy(os.path.join(version_dir, WARMUP_FILE), os.path.join(export_dir, WARMUP_FILE), overwrite=True)

    kept = sorted(unchanged)
    vector_change = (
        float(
            np.abs(
                _vectors_by_id(served.item_ids, served.item_vectors, kept)
                - _vectors_by_id(module.item_ids, module.item_vectors, kept)
            ).max()
        )
        if kept
        else 0.0
    )
    problems = []
    nonfinite = int((~np.isfinite(module.item_vectors.numpy()).all(axis=1)).sum())
    sessions = [s for s in assets.sessions if s and set(s) <= unchanged]
    differing = 0
    if sessions:
        pairs = zip(_top_k(served.signatures[SERVING_DEFAULT], sessions), _top_k(module.serve, sessions))
        differing = sum(_differs(before, after, unchanged) for before, after in pairs)
    if vector_change > TOLERANCE:
        problems.append(f"an unchanged item's vector moved by {vector_change:.2g} (over {TOLERANCE:g})")
    if nonfinite:
        problems.append(f"{nonfinite} items have a non-finite vector")
    if differing:
        problems.append(
            f"{differing} of {len(sessions)} validation sessions changed their recommendations among unchanged items"
        )
    return RefreshReport(
        base=version_dir,
        items=len(new),
        added=len(added),
        removed=len(removed),
        changed=len(changed),
        unchanged=len(unchanged),
        skipped=skipped,
        sessions_compared=len(sessions),
        sessions_differing=differing,
        max_vector_change=vector_change,
        nonfinite_items=nonfinite,
        problems=problems,
        wall_s=round(time.time() - start, 1),
    )


def refresh(serving_base: str, catalog_pattern: str, config: IngestConfig | None = None) -> RefreshReport:
    """Refreshes the newest version under `serving_base` with a new catalog; pushes it if it passes validation.

    The report is written into the pushed version (`assets.extra/refresh/refresh_report.json`);
    a refused refresh leaves `<serving_base>/.refused-refresh.json` and pushes nothing.
    """
    existing = versions(serving_base)
    if not existing:
        raise FileNotFoundError(f"no model version under {serving_base} to refresh")
    version_dir = os.path.join(serving_base, str(existing[-1]))
    with tempfile.TemporaryDirectory() as work_dir:
        export_dir = os.path.join(work_dir, "export")
        report = refresh_version(version_dir, catalog_pattern, export_dir, config)
        if not report.passed:
            with tf.io.gfile.GFile(os.path.join(serving_base, ".refused-refresh.json"), "w") as f:
                f.write(report.to_json())
            return report
        report = dataclasses.replace(report, version=next_version(serving_base))
        with tf.io.gfile.GFile(os.path.join(export_dir, REFRESH_DIR, REPORT_FILE), "w") as f:
            f.write(report.to_json())
        push_atomically(export_dir, serving_base, report.version)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serving-base", required=True, help="<serving_dir>/<model_name>: the versions")
    parser.add_argument("--catalog", required=True, help="the new catalog file(s), in the data contract")
    args = parser.parse_args(argv)
    report = refresh(args.serving_base, args.catalog)
    print(report.markdown())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
