"""The Beam executor of the session ExampleGen.

read (CSV lines or Parquet records) -> parse -> drop clicks on items absent from the
catalog -> GroupByKey(session) -> sessionize -> one tf.Example per prefix -> WriteSplit.
Every row that does not end up in a session is a `Skip` with a reason; skips and kept
clicks are counted, a few skips per reason are sampled verbatim, and the report decides
whether the run may go on. The same code runs on DirectRunner, Flink, Spark or Dataflow.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from absl import logging
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

import contract
from components.session_example_gen import report as report_lib
from components.session_example_gen import sessionize as core
from components.session_example_gen.config import IngestConfig

# Execution parameter and output keys (one source of truth for component and executor).
INPUT_BASE_KEY = "input_base"
INPUT_CONFIG_KEY = "input_config"
RANGE_CONFIG_KEY = "range_config"
INGEST_CONFIG_KEY = "ingest_config"
EXAMPLES_KEY = "examples"
CATALOG_KEY = "catalog"
REPORT_KEY = "ingest_report"
# Names of the input splits in `input_config`: file patterns relative to `input_base`.
CLICKS_INPUT = "clicks"
CATALOG_INPUT = "catalog"

_MALFORMED = "malformed"


def is_parquet(pattern: str) -> bool:
    return pattern.rstrip("*").endswith(".parquet")


def csv_header(pattern: str, required: tuple[str, ...]) -> list[str]:
    """The header shared by every file matching `pattern`; raises if files disagree or lack columns."""
    matches = FileSystems.match([pattern])[0].metadata_list
    if not matches:
        raise FileNotFoundError(f"no file matches {pattern}")
    headers = set()
    for metadata in matches:
        with FileSystems.open(metadata.path) as f:
            # utf-8-sig: spreadsheet exports start with a byte-order mark.
            first_line = f.readline().decode("utf-8-sig")
        headers.add(tuple(column.strip() for column in next(csv.reader([first_line]), [])))
    if len(headers) > 1:
        raise ValueError(f"files matching {pattern} have different headers: {sorted(headers)}")
    header = list(headers.pop())
    missing = [column for column in required if column not in header]
    if missing:
        raise ValueError(f"{pattern}: header {header} lacks the contract columns {missing}")
    return header


class _CsvLineToFields(beam.DoFn):
    """A CSV line -> (column -> value, line); lines of the wrong width go to `malformed`."""

    def __init__(self, header: list[str]):
        self._header = header

    def process(self, line: str) -> Iterator[Any]:
        values = next(csv.reader([line]), [])
        if len(values) != len(self._header):
            yield beam.pvalue.TaggedOutput(_MALFORMED, line)
        else:
            yield dict(zip(self._header, values)), line


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


def parquet_row(record: dict[str, Any]) -> str:
    """A Parquet record as the raw row that skips sample and duplicates compare."""
    return json.dumps(record, default=str, sort_keys=True)


def csv_records(text: str, header: list[str]) -> Iterator[tuple[dict[str, str] | None, str]]:
    """A whole CSV file's rows after its header as (column -> value, raw row); None for a row of the wrong width.

    Whole-file parsing, so quoted fields may span lines (catalog titles do).
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)
    for values in reader:
        yield (dict(zip(header, values)) if len(values) == len(header) else None), _csv_line(values)


def read_text(path: str) -> str:
    """A contract file's text, decompressed by its extension; a spreadsheet export's byte-order mark dropped."""
    # Beam's decompressing reader cannot be wrapped in TextIOWrapper; a catalog shard fits in memory.
    with FileSystems.open(path) as f:
        return f.read().decode("utf-8-sig")


def _csv_file_to_fields(readable_file, header: list[str]) -> Iterator[Any]:
    for fields, line in csv_records(read_text(readable_file.metadata.path), header):
        yield (fields, line) if fields is not None else beam.pvalue.TaggedOutput(_MALFORMED, line)


@beam.ptransform_fn
def _ReadTable(pipeline, pattern: str, required: tuple[str, ...], line_splittable: bool):
    """Contract file(s) -> (fields, raw row) and a `malformed` output of raw rows."""
    if is_parquet(pattern):
        records = pipeline | "ReadParquet" >> beam.io.ReadFromParquet(pattern)
        rows = records | "WithRaw" >> beam.Map(lambda r: (r, parquet_row(r)))
        return {"main": rows, _MALFORMED: pipeline | "NoMalformed" >> beam.Create([])}
    header = csv_header(pattern, required)
    if line_splittable:
        lines = pipeline | "ReadLines" >> beam.io.ReadFromText(pattern, skip_header_lines=1)
        parsed = lines | "ToFields" >> beam.ParDo(_CsvLineToFields(header)).with_outputs(_MALFORMED, main="main")
    else:
        files = pipeline | "Match" >> fileio.MatchFiles(pattern) | "Open" >> fileio.ReadMatches()
        parsed = files | "ToFields" >> beam.FlatMap(_csv_file_to_fields, header).with_outputs(_MALFORMED, main="main")
    return {"main": parsed.main, _MALFORMED: parsed[_MALFORMED]}


class _ParseRows(beam.DoFn):
    """Holds the config and, per worker, its compiled id pattern."""

    def __init__(self, config: IngestConfig):
        self._config = config

    def setup(self) -> None:
        self._id_pattern = core.compile_id_pattern(self._config)


class _ParseClicks(_ParseRows):
    def process(self, element) -> Iterator[Any]:
        fields, row = element
        result = core.parse_click(fields, row, self._config, self._id_pattern)
        yield beam.pvalue.TaggedOutput("skip", result) if isinstance(result, core.Skip) else result


class _ParseCatalog(_ParseRows):
    def process(self, element) -> Iterator[Any]:
        fields, row = element
        item, skips = core.parse_catalog_row(fields, row, self._id_pattern)
        for skip in skips:
            yield beam.pvalue.TaggedOutput("skip", skip)
        if item is not None:
            yield item.item_id, (row, item)


def _first_of_duplicates(element) -> Iterator[Any]:
    """Keeps one row per item id (the smallest raw row, so the choice is deterministic)."""
    _, rows = element
    rows = sorted(rows, key=lambda row_item: row_item[0])
    yield rows[0][1]
    for row, _ in rows[1:]:
        yield beam.pvalue.TaggedOutput("skip", core.Skip(core.Reason.CATALOG_DUPLICATE_ITEM, row))


def _keep_known_items(click: core.Click, catalog_ids) -> Iterator[Any]:
    if click.item_id in catalog_ids:
        yield click
    else:
        yield beam.pvalue.TaggedOutput("skip", core.Skip(core.Reason.UNKNOWN_ITEM, click.row))


class _Sessionize(beam.DoFn):
    def __init__(self, config: IngestConfig):
        self._config = config

    def process(self, element, max_timestamp: float) -> Iterator[Any]:
        session_id, clicks = element
        result = core.sessionize(session_id, clicks, self._config, max_timestamp)
        for skip in result.skips:
            yield beam.pvalue.TaggedOutput("skip", skip)
        if result.split is None:
            return
        yield beam.pvalue.TaggedOutput("stats", (f"sessions/{result.split}", 1))
        yield beam.pvalue.TaggedOutput("stats", (f"examples/{result.split}", len(result.examples)))
        yield beam.pvalue.TaggedOutput("stats", (f"clicks/kept/{result.split}", result.clicks))
        if result.split == contract.TRAIN:
            for item_id in result.items:
                yield beam.pvalue.TaggedOutput("train_items", item_id)
        for example in result.examples:
            target = example.features.feature[contract.TARGET_ITEM_ID].bytes_list.value[0]
            yield beam.pvalue.TaggedOutput("targets", (result.split, target))
            yield result.split, example


def _skip_counter(skip: core.Skip) -> tuple[str, int]:
    section = "catalog" if skip.reason.startswith("catalog_") else "clicks"
    return f"{section}/skipped/{skip.reason}", 1


def _count(pcoll: beam.PCollection, key: str) -> beam.PCollection:
    """(key, number of elements), also when there are none."""
    return pcoll | f"Count[{key}]" >> beam.combiners.Count.Globally() | f"Key[{key}]" >> beam.Map(lambda n: (key, n))


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads the contract files, writes session examples, the catalog and the ingest report."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        config = IngestConfig.from_json(exec_properties[INGEST_CONFIG_KEY])
        input_config = proto_utils.json_to_proto(exec_properties[INPUT_CONFIG_KEY], example_gen_pb2.Input())
        patterns = {s.name: os.path.join(exec_properties[INPUT_BASE_KEY], s.pattern) for s in input_config.splits}
        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        catalog = artifact_utils.get_single_instance(output_dict[CATALOG_KEY])
        for artifact, splits in ((examples, config.split_names), (catalog, (contract.CATALOG_SPLIT,))):
            artifact.split_names = artifact_utils.encode_split_names(list(splits))
            examples_utils.set_payload_format(artifact, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
            examples_utils.set_file_format(
                artifact, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP)
            )
        report_dir = artifact_utils.get_single_uri(output_dict[REPORT_KEY])
        counters_path = os.path.join(self._get_tmp_dir(), "counters.json")

        logging.info("Ingesting clicks %s and catalog %s", patterns[CLICKS_INPUT], patterns[CATALOG_INPUT])
        with self._make_beam_pipeline() as pipeline:
            _build_pipeline(
                pipeline,
                patterns[CLICKS_INPUT],
                patterns[CATALOG_INPUT],
                config,
                split_uris={name: artifact_utils.get_split_uri([examples], name) for name in config.split_names},
                catalog_uri=artifact_utils.get_split_uri([catalog], contract.CATALOG_SPLIT),
                counters_path=counters_path,
            )

        with FileSystems.open(counters_path) as f:  # on a cluster, the artifact is on object storage
            counters = json.load(f)
        report = report_lib.build_report(
            counters["stats"], counters["samples"], config.split_names, config.max_bad_fraction
        )
        report_lib.write_report(report, report_dir)
        logging.info("Ingest report:\n%s", report_lib.render_markdown(report))
        if not report.passed:
            raise RuntimeError(
                "SessionExampleGen refused the input data: "
                + "; ".join(report.problems)
                + f". Full report with samples: {os.path.join(report_dir, report_lib.REPORT_MARKDOWN)}"
            )


def _build_pipeline(
    pipeline: beam.Pipeline,
    clicks_pattern: str,
    catalog_pattern: str,
    config: IngestConfig,
    split_uris: dict[str, str],
    catalog_uri: str,
    counters_path: str,
) -> None:
    """Wires the ingest graph; kept apart from `Do` so tests can run it on any runner."""
    # --- Catalog: one item per id; duplicates and bad rows become skips.
    catalog_rows = pipeline | "ReadCatalog" >> _ReadTable(catalog_pattern, contract.CATALOG_REQUIRED_COLUMNS, False)
    catalog_parsed = catalog_rows["main"] | "ParseCatalog" >> beam.ParDo(_ParseCatalog(config)).with_outputs(
        "skip", main="items"
    )
    catalog_unique = (
        catalog_parsed.items
        | "GroupById" >> beam.GroupByKey()
        | "Deduplicate" >> beam.FlatMap(_first_of_duplicates).with_outputs("skip", main="items")
    )
    items = catalog_unique.items
    catalog_ids = items | "CatalogIds" >> beam.Map(lambda item: (item.item_id, None))

    # --- Clicks: parse, keep those on catalog items, group into sessions.
    click_rows = pipeline | "ReadClicks" >> _ReadTable(clicks_pattern, contract.CLICK_REQUIRED_COLUMNS, True)
    if (
        config.split_method == "column"
        and not is_parquet(clicks_pattern)
        and contract.SPLIT not in csv_header(clicks_pattern, contract.CLICK_REQUIRED_COLUMNS)
    ):
        raise ValueError(f"split_method='column' needs a '{contract.SPLIT}' column in {clicks_pattern}")
    parsed = click_rows["main"] | "ParseClicks" >> beam.ParDo(_ParseClicks(config)).with_outputs("skip", main="clicks")
    known = parsed.clicks | "KnownItems" >> beam.FlatMap(
        _keep_known_items, catalog_ids=beam.pvalue.AsDict(catalog_ids)
    ).with_outputs("skip", main="clicks")
    max_timestamp = (
        known.clicks
        | "Timestamps" >> beam.Map(lambda click: click.timestamp)
        | "MaxTimestamp" >> beam.CombineGlobally(lambda ts: max(ts, default=0.0))
    )
    sessions = (
        known.clicks
        | "BySession" >> beam.Map(lambda click: (click.session_id, click))
        | "GroupBySession" >> beam.GroupByKey()
        | "Sessionize"
        >> beam.ParDo(_Sessionize(config), max_timestamp=beam.pvalue.AsSingleton(max_timestamp)).with_outputs(
            "skip", "stats", "targets", "train_items", main="examples"
        )
    )

    # The catalog carries each item's train-split clicks: tail and cold-start flags, and
    # which items get an id embedding, derive from it.
    train_clicks = sessions.train_items | "CountTrainClicks" >> beam.combiners.Count.PerElement()
    _ = (
        items
        | "CatalogExample"
        >> beam.Map(
            lambda item, counts: core.catalog_example(item, counts.get(item.item_id, 0)),
            counts=beam.pvalue.AsDict(train_clicks),
        )
        | "WriteCatalog" >> write_split.WriteSplit(catalog_uri, example_gen_pb2.FORMAT_TFRECORDS_GZIP)
    )

    split_index = {name: i for i, name in enumerate(config.split_names)}
    by_split = sessions.examples | "PartitionBySplit" >> beam.Partition(
        lambda split_example, _: split_index[split_example[0]], len(split_index)
    )
    for name, index in split_index.items():
        _ = (
            by_split[index]
            | f"Example[{name}]" >> beam.Values()
            | f"WriteSplit[{name}]" >> write_split.WriteSplit(split_uris[name], example_gen_pb2.FORMAT_TFRECORDS_GZIP)
        )

    # --- Accounting: every row read is kept in a session or skipped with a reason.
    malformed = (
        (click_rows[_MALFORMED] | "MalformedClick" >> beam.Map(lambda row: core.Skip(core.Reason.MALFORMED_ROW, row))),
        (
            catalog_rows[_MALFORMED]
            | "MalformedItem" >> beam.Map(lambda row: core.Skip(core.Reason.CATALOG_MALFORMED_ROW, row))
        ),
    )
    skips = (
        malformed + (parsed.skip, known.skip, sessions.skip, catalog_parsed.skip, catalog_unique.skip)
    ) | "AllSkips" >> beam.Flatten()
    categories = (
        items
        | "CategoryPaths" >> beam.Map(lambda item: item.category_levels)
        | "DistinctPaths" >> beam.Distinct()
        | "NonEmptyPaths" >> beam.Filter(bool)
    )
    target_items = sessions.targets | "DistinctTargets" >> beam.Distinct()
    clicks_read = (click_rows["main"], click_rows[_MALFORMED]) | "ClickRowsRead" >> beam.Flatten()
    catalog_read = (catalog_rows["main"], catalog_rows[_MALFORMED]) | "CatalogRowsRead" >> beam.Flatten()
    counters = (
        (
            _count(clicks_read, "clicks/rows"),
            _count(catalog_read, "catalog/rows"),
            _count(items, "catalog/items"),
            _count(categories, "catalog/categories"),
            target_items | "TargetCounter" >> beam.Map(lambda split_item: (f"target_items/{split_item[0]}", 1)),
            skips | "SkipCounter" >> beam.Map(_skip_counter),
            sessions.stats,
        )
        | "AllCounters" >> beam.Flatten()
        | "SumCounters" >> beam.CombinePerKey(sum)
    )
    samples = (
        skips
        | "ReasonRow" >> beam.Map(lambda skip: (skip.reason, skip.row))
        | "Samples" >> beam.combiners.Top.SmallestPerKey(config.samples_per_reason)
    )
    _ = (
        pipeline
        | "One" >> beam.Create([None])
        | "Counters"
        >> beam.Map(
            lambda _, stats, samples: json.dumps({"stats": stats, "samples": samples}),
            stats=beam.pvalue.AsDict(counters),
            samples=beam.pvalue.AsDict(samples),
        )
        | "WriteCounters" >> beam.io.WriteToText(counters_path, shard_name_template="", num_shards=1)
    )
