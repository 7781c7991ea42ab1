"""TFX Transform over the item catalog: raw item metadata -> integer features per item.

`preprocessing_fn` runs over the CATALOG split (one tf.Example per item), not over the
session examples: sessions only carry item ids, and the model holds the transformed
catalog as arrays (see `model/catalog.py`) that it gathers rows from.

Why only TF and tensorflow-text ops: the transform graph is exported next to the model
and runs again at serving time (a new item added after training is transformed by the
same graph, in TF Serving), so there is no `tf.py_function` and no Python per row. The
official TF Serving binary links the tensorflow-text ops; loading the graph in Python
needs `import tensorflow_text` first.

Inputs: the catalog schema is inferred with `infer_feature_shape=False`, so every input
is a `tf.SparseTensor` (VarLen) and a column the data set lacks (title, brand, price,
category_path) is absent from `inputs` altogether; its outputs are then the defaults
(no title tokens, the OOV brand/category index, the "no price" bucket). Empty strings
never enter a vocabulary (TFT drops them), so a missing brand or category maps to OOV;
an empty vocabulary holds one TFT dummy token, so its size is 1, never 0.

TFT logs "frequency_threshold 1 <= 1 is a no-op" for the item ids: not so with weights,
where the threshold does drop ids whose train clicks sum below it (tested).

Outputs (names from `model/features.py`):
    item_id           the raw id, dense string [batch]
    item_id_index     vocabulary of ids weighted by train clicks; items with fewer than
                      `min_item_clicks` clicks in train (cold start) -> OOV (= vocab size)
    title_tokens      case-folded words -> vocabulary ids, ragged int64 [batch, None], the
                      first `title_max_tokens` words
    category_l1..lN   the path cut at level k (`Home > Kitchen`), each its own vocabulary;
                      shallower paths use their full path, a missing path -> OOV
    brand_index       vocabulary, missing -> OOV
    price_bucket      quantile bucket of the known prices; no price -> `price_buckets`
    train_clicks      int64 passthrough, 0 when absent

Wiring (the catalog examples are the ExampleGen's `items` split):

    schema_gen = tfx.components.SchemaGen(statistics=..., infer_feature_shape=False)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        module_file="model/preprocessing.py",
        splits_config=tfx.proto.SplitsConfig(analyze=["items"], transform=["items"]),
        custom_config={PREPROCESSING_CONFIG: dataclasses.asdict(PreprocessingConfig(category_levels=3))},
    )

Example:
    >>> PreprocessingConfig.from_dict({"category_levels": 4}).category_levels
    4
    >>> PreprocessingConfig.from_dict(None) == PreprocessingConfig()
    True
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterable, Mapping
from typing import Any

import tensorflow as tf
import tensorflow_text as tf_text
import tensorflow_transform as tft

import contract
from contract.model_api import PREPROCESSING_CONFIG
from model import features
from model.config import PreprocessingConfig

# Unicode punctuation and symbols become word boundaries ("2-6" -> "2 6", "Bear's" -> "bear s").
_PUNCTUATION = r"[\pP\pS]+"
_CATEGORY_JOIN = f" {contract.CATEGORY_SEPARATOR} "


# --- Sparse (VarLen) inputs -> dense or ragged --------------------------------------------


def _ragged(inputs: Mapping[str, Any], name: str) -> tf.RaggedTensor | None:
    value = inputs.get(name)
    if value is None:
        return None
    if isinstance(value, tf.SparseTensor):
        # What RaggedTensor.from_sparse does, less its index checks (parsed VarLen features
        # are row-major already), which cost graph-building time and run time.
        return tf.RaggedTensor.from_value_rowids(
            value.values, value.indices[:, 0], nrows=value.dense_shape[0], validate=False
        )
    if isinstance(value, tf.RaggedTensor):
        return value
    value = tf.convert_to_tensor(value)
    if value.shape.rank == 1:
        value = tf.expand_dims(value, 1)
    return tf.RaggedTensor.from_tensor(value)


def _first(values: tf.RaggedTensor, default: Any) -> tf.Tensor:
    """The first value of each row, `default` for an empty row: dense [batch]."""
    return tf.reshape(values[:, :1].to_tensor(default_value=default, shape=[None, 1]), [-1])


def _dense_or_default(inputs: Mapping[str, Any], name: str, default: Any, dtype: tf.DType, batch: tf.Tensor):
    values = _ragged(inputs, name)
    if values is None:
        return tf.fill([batch], tf.constant(default, dtype))
    return _first(tf.cast(values, dtype) if values.dtype != dtype else values, tf.constant(default, dtype))


def _text(inputs: Mapping[str, Any], name: str, batch: tf.Tensor) -> tf.Tensor:
    """A text column as dense [batch] strings; several values are joined by a space."""
    values = _ragged(inputs, name)
    if values is None:
        return tf.fill([batch], "")
    return tf.strings.reduce_join(values, axis=1, separator=" ")


def _vocabulary_index(x, feature: str, **kwargs) -> Any:
    return tft.compute_and_apply_vocabulary(
        x, num_oov_buckets=1, vocab_filename=features.vocabulary_name(feature), name=feature, **kwargs
    )


# --- The parts ----------------------------------------------------------------------------


def tokenize_titles(titles: tf.Tensor) -> tf.RaggedTensor:
    """Case-folded words of each title, punctuation removed: ragged strings [batch, None]."""
    folded = tf_text.case_fold_utf8(titles)
    spaced = tf.strings.regex_replace(folded, _PUNCTUATION, " ")
    return tf_text.WhitespaceTokenizer().tokenize(spaced)


def category_cuts(levels: tf.RaggedTensor | None, num_levels: int, batch: tf.Tensor) -> list[tf.Tensor]:
    """The path cut at levels 1..num_levels, joined with ' > ' (full path if shallower)."""
    if levels is None:
        return [tf.fill([batch], "") for _ in range(num_levels)]
    return [tf.strings.reduce_join(levels[:, :k], axis=1, separator=_CATEGORY_JOIN) for k in range(1, num_levels + 1)]


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any] | None = None) -> dict:
    """TFX Transform entry point over the catalog (see the module docstring).

    `custom_config[PREPROCESSING_CONFIG]` holds the PreprocessingConfig's fields; the component's
    other keys (e.g. the pipeline's code fingerprint) are not read here.
    """
    config = PreprocessingConfig.from_dict((custom_config or {}).get(PREPROCESSING_CONFIG))
    if contract.ITEM_ID not in inputs:
        raise ValueError(f"the catalog needs an {contract.ITEM_ID!r} feature")
    item_ids = _first(_ragged(inputs, contract.ITEM_ID), "")
    batch = tf.shape(item_ids)[0]

    train_clicks = _dense_or_default(inputs, contract.TRAIN_CLICKS, 0, tf.int64, batch)
    outputs = {
        features.ITEM_ID: item_ids,
        features.TRAIN_CLICKS: train_clicks,
        features.ITEM_ID_INDEX: _vocabulary_index(
            item_ids,
            features.ITEM_ID_INDEX,
            weights=tf.cast(train_clicks, tf.float32),
            frequency_threshold=config.min_item_clicks,
        ),
    }

    outputs[features.TITLE_TOKENS] = _vocabulary_index(
        tokenize_titles(_text(inputs, contract.TITLE, batch))[:, : config.title_max_tokens],
        features.TITLE_TOKENS,
        top_k=config.title_vocab_size,
        frequency_threshold=config.title_min_count,
    )

    cuts = category_cuts(_ragged(inputs, contract.CATEGORY_PATH), config.category_levels, batch)
    for level, cut in enumerate(cuts, start=1):
        outputs[features.category_level(level)] = _vocabulary_index(cut, features.category_level(level))

    outputs[features.BRAND] = _vocabulary_index(_text(inputs, contract.BRAND, batch), features.BRAND)

    prices = _ragged(inputs, contract.PRICE)
    if prices is None:
        outputs[features.PRICE_BUCKET] = tf.fill([batch], tf.constant(config.price_buckets, tf.int64))
    else:
        # A ragged input: only the known prices enter the quantiles, missing ones stay missing.
        buckets = tft.bucketize(tf.cast(prices[:, :1], tf.float32), config.price_buckets, name=features.PRICE_BUCKET)
        outputs[features.PRICE_BUCKET] = _first(tf.cast(buckets, tf.int64), tf.constant(config.price_buckets, tf.int64))
    return outputs


def vocabulary_sizes(tft_output: tft.TFTransformOutput, config: PreprocessingConfig) -> dict[str, int]:
    """Each index feature's number of ids, the OOV id included (price: buckets + 1)."""
    indexed = [features.ITEM_ID_INDEX, features.TITLE_TOKENS, features.BRAND]
    indexed += [features.category_level(level) for level in range(1, config.category_levels + 1)]
    sizes = {name: tft_output.vocabulary_size_by_name(features.vocabulary_name(name)) + 1 for name in indexed}
    sizes[features.PRICE_BUCKET] = config.price_buckets + 1
    return sizes


# --- Outside TFX ----------------------------------------------------------------------------


def varlen_feature_spec(examples: Iterable[tf.train.Example]) -> dict[str, tf.io.VarLenFeature]:
    """Every feature any example has, as VarLen (what SchemaGen infers with infer_feature_shape=False)."""
    dtypes = {"bytes_list": tf.string, "float_list": tf.float32, "int64_list": tf.int64}
    spec: dict[str, tf.io.VarLenFeature] = {}
    for example in examples:
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            if kind:
                spec.setdefault(name, tf.io.VarLenFeature(dtypes[kind]))
    return spec


def analyze_catalog_files(file_pattern: str, work_dir: str, config: PreprocessingConfig) -> tft.TFTransformOutput:
    """Analyzes raw catalog TFRecords (GZIP) with `preprocessing_fn`, as TFX's Transform would.

    For benchmarks and tests that run the model without a pipeline; writes the transform
    graph and the raw schema under `work_dir` and returns its TFTransformOutput.
    """
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
    from tfx_bsl.public import tfxio

    files = tf.io.gfile.glob(file_pattern)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    schema = schema_utils.schema_from_feature_spec(
        varlen_feature_spec(tf.train.Example.FromString(r.numpy()) for r in records)
    )
    transform_dir = os.path.join(work_dir, "transform_fn_output")
    source = tfxio.TFExampleRecord(file_pattern, schema=schema)
    fn = functools.partial(preprocessing_fn, custom_config={PREPROCESSING_CONFIG: dataclasses.asdict(config)})
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=os.path.join(work_dir, "tmp")):
        transform_fn = (
            pipeline | "Read" >> source.BeamSource(),
            source.TensorAdapterConfig(),
        ) | "Analyze" >> tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | "Write" >> tft_beam.WriteTransformFn(transform_dir)
    # TFX's Transform writes the raw schema beside the transform graph; WriteTransformFn does not.
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(schema),
        os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR),
    )
    return tft.TFTransformOutput(transform_dir)
