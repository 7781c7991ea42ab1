"""Export for TF Serving: the trained model, the Transform graph and the catalog, in one SavedModel.

Signatures (dense inputs and outputs; `K` = ModelConfig.top_k, padding is the empty string):

- `serving_default`: `item_ids` string `[batch, length]`, the session's clicks oldest first
  -> `top_k_ids` string `[batch, K]`, `top_k_scores` float `[batch, K]`, `unknown_items`
  int `[batch]` (ids not in the catalog are left out of the session and counted), and per
  category level `top_categories_l{n}` / `top_category_scores_l{n}` when the model has
  category heads. A session with no known item is refused (INVALID_ARGUMENT).
- `recommend_from_metadata`: the same for items given by their metadata (`titles`,
  `category_paths` as `A > B > C`, `brands`, `prices` (< 0 when unknown) and optionally
  `item_ids`), so a session of items the model never saw gets recommendations. The raw
  metadata goes through the same Transform graph as in training.
- `recommend_in_top_categories` (models with category heads, `candidate_categories` N > 0):
  serving_default scoring only the items of the session's N most likely leaf categories
  (HierSRec's candidate set), so a request does a fraction of the work; a session whose
  next item lies outside them misses it.
- `serve_examples`: serving_default for serialized session tf.Examples (what TFMA feeds).
- `transform_features`: serialized session tf.Examples -> `item_ids` (as serving_default
  takes them), the label `target_item_id` and the Evaluator's slice keys.

The catalog's item vectors are computed here, at export, from the catalog given (which
may hold items added after training), and held in the graph. Only TF and tensorflow-text
ops are in it (TF Serving links tensorflow-text), no py_function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

import contract
from contract.model_api import (
    BRANDS,
    CATEGORY_PATHS,
    COLD_START_TARGET,
    EXAMPLES,
    EXCLUDE_ITEM_IDS,
    EXCLUDING,
    FROM_METADATA,
    IN_TOP_CATEGORIES,
    ITEM_IDS,
    KNOWN_ITEMS,
    PRICES,
    SERVE_EXAMPLES,
    SERVING_DEFAULT,
    SESSION_LENGTH,
    SESSION_LENGTH_BUCKETS,
    TAIL_CLICKS,
    TAIL_SESSION,
    TARGET_TRAIN_CLICKS,
    TITLES,
    TOP_K_IDS,
    TOP_K_SCORES,
    TRANSFORM_FEATURES,
    UNKNOWN_CATEGORY,
    UNKNOWN_ITEMS,
    target_category,
    top_categories,
    top_category_scores,
)
from model import features
from model.catalog import Catalog, model_item_features
from model.config import TrainingSetup
from model.inputs import PADDING, item_table, prefix_rows
from model.layers.top_k import TOP_K_BLOCK, top_k_by_blocks
from model.model import SessionRecommender
from model.refresh_assets import write_refresh_assets


def pad_items(matrix: np.ndarray, axis: int, value: Any = 0, block: int = TOP_K_BLOCK) -> np.ndarray:
    """`matrix` padded along its item `axis` to a multiple of `block` (see `top_k_by_blocks`)."""
    padding = [(0, 0)] * matrix.ndim
    padding[axis] = (0, -matrix.shape[axis] % block)
    return np.pad(matrix, padding, constant_values=value)


def _matrix(dtype: tf.DType, name: str) -> tf.TensorSpec:
    return tf.TensorSpec([None, None], dtype, name=name)


def _fixed(values: np.ndarray | None, name: str) -> tf.Variable | None:
    return None if values is None else tf.Variable(values, trainable=False, name=name)


class _Untracked:
    """Holds an object out of tf.Module's tracking (see RecommenderModule)."""

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclasses.dataclass(frozen=True)
class SessionTables:
    """What an export holds from the training sessions, not from the catalog (A2D-MTL): the
    neighbour sessions' mean vectors and the category channel's embedding table, fused over
    the transition graph. Both are fixed at export, so a request pays for neither, and a
    catalog refresh keeps the served version's: they describe training, not the catalog."""

    neighbour_vectors: np.ndarray | None = None
    category_table: np.ndarray | None = None

    @classmethod
    def of_model(cls, model: SessionRecommender) -> SessionTables:
        neighbours, categories = model.neighbour_index_vectors(), model.category_table()
        return cls(
            None if neighbours is None else np.asarray(neighbours),
            None if categories is None else np.asarray(categories),
        )

    @classmethod
    def of_served(cls, served: Any) -> SessionTables:
        """The tables of a loaded SavedModel (`tf.saved_model.load`) that this module wrote."""
        return cls(
            *(
                getattr(served, name).numpy() if getattr(served, name, None) is not None else None
                for name in ("neighbour_vectors", "category_table")
            )
        )


class RecommenderModule(tf.Module):
    """The model, the Transform graph and the encoded catalog, side by side.

    As Keras' own ExportArchive does, the Keras model is not tracked as an object (saving
    would trace a default signature for it with guessed input types); its variables are.
    """

    def __init__(
        self,
        model: SessionRecommender,
        catalog: Catalog,
        tft_output: tft.TFTransformOutput,
        setup: TrainingSetup,
        tables: SessionTables | None = None,
    ) -> None:
        super().__init__()
        self._model = _Untracked(model)
        self.model_variables = list(model.variables)
        self.config = setup.model
        self.preprocessing = setup.preprocessing
        self.transform_layer = tft_output.transform_features_layer()
        self.raw_feature_spec = tft_output.raw_feature_spec()
        # Computed before the model takes the served catalog: they are over the one it trained with.
        if tables is None:
            if setup.model.category_graph and model.category_edges is None:
                raise ValueError(f"{setup.model.variant} has a category graph, but the model holds none")
            tables = SessionTables.of_model(model)
        if setup.model.neighbour_sessions and tables.neighbour_vectors is None:
            raise ValueError(f"{setup.model.variant} reads neighbour sessions, but the model holds no index")
        self.neighbour_vectors = _fixed(tables.neighbour_vectors, "neighbour_vectors")
        self.category_table = _fixed(tables.category_table, "category_table")
        model.set_catalog(catalog.features, catalog.item_ids)
        item_vectors = model.encode_items()
        self.item_vectors = tf.Variable(np.asarray(item_vectors), trainable=False, name="item_vectors")
        # The catalog's side of the score (normalized, temperature folded in) is fixed at export,
        # so a request pays only for the session side, the matmul and top-K. Zero columns pad it
        # to whole blocks of top_k_by_blocks, which leaves them out.
        self.num_items = len(catalog.item_ids)
        self.scoring_vectors = tf.Variable(
            pad_items(np.asarray(model.scoring_vectors(item_vectors)), axis=1), trainable=False, name="scoring_vectors"
        )
        self.item_ids = tf.Variable(catalog.item_ids.astype(object).astype(bytes), trainable=False, name="item_ids")
        self.table = item_table(catalog.item_ids)
        # Category names per level (vocabulary + OOV), for outputs and the Evaluator's labels.
        self.category_names = [
            tf.Variable(
                np.array(
                    [
                        *tft_output.vocabulary_by_name(features.vocabulary_name(features.category_level(level))),
                        UNKNOWN_CATEGORY,
                    ],
                    dtype=object,
                ).astype(bytes),
                trainable=False,
            )
            for level in range(1, catalog.category_levels + 1)
        ]
        item_categories = np.stack(
            [catalog.features[features.category_level(k)] for k in range(1, catalog.category_levels + 1)], 1
        )
        self.item_categories = tf.constant(item_categories)
        if self.serves_candidates:
            # The candidate path (HierSRec): scoring vectors grouped by leaf category, so the
            # items of one category are one contiguous block, rows offsets[c]:offsets[c + 1].
            leaves = item_categories[:, -1]
            leaf_classes = model.vocab_sizes[features.category_level(catalog.category_levels)]  # the leaf head's
            order = np.argsort(leaves, kind="stable")
            self.leaf_offsets = tf.constant(
                np.concatenate([[0], np.cumsum(np.bincount(leaves, minlength=leaf_classes))]),
                tf.int32,
            )
            self.grouped_rows = tf.constant(order.astype(np.int32))
            self.grouped_scoring_vectors = tf.Variable(
                np.ascontiguousarray(self.scoring_vectors.numpy()[:, order].T), trainable=False, name="grouped_vectors"
            )
        self.item_train_clicks = tf.constant(catalog.features[features.TRAIN_CLICKS])

    @property
    def model(self) -> SessionRecommender:
        return self._model.value

    @property
    def serves_candidates(self) -> bool:
        """Whether it has the candidate path: category heads and `candidate_categories` > 0.

        Only then does it hold the catalog's vectors a second time, grouped by leaf category.
        """
        return bool(self.category_names) and self.config.uses_category_heads and self.config.candidate_categories > 0

    # --- Shared ---------------------------------------------------------------------------
    def _recommend(
        self,
        prefix_vectors: tf.Tensor,
        mask: tf.Tensor,
        rows: tf.Tensor,
        unknown: tf.Tensor,
        excluded_rows: tf.Tensor | None = None,
        candidate_categories: int = 0,
        prefix_categories: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """Outputs for sessions of `prefix_vectors`; `rows`: their catalog rows (< 0: padding, or not in the catalog).

        `prefix_categories` are the items' leaf categories (the category channel's input;
        default: the catalog's, by `rows`). `excluded_rows` (`[batch, n]`, < 0: none) are catalog rows each session must not be
        recommended: they score below every other item. With `candidate_categories` N > 0,
        only the items of the session's N most likely leaf categories are scored
        (`_top_k_in_categories`). Where fewer than K items are left, the rest of the list is
        empty ("", score 0).

        A session with no item the model knows is answered on its own row, not refused with
        an error that would fail every session batched with it: its `known_items` is 0, its
        ids and category names "" and its scores 0. (`serving.server` refuses such a request
        with INVALID_ARGUMENT; the official TF Serving binary returns that row.)
        """
        known = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        empty = known == 0
        # It reads a stand-in first position so that the batch runs; its outputs are blanked below.
        mask = mask | (empty[:, None] & (tf.range(tf.shape(mask)[1]) == 0)[None, :])
        if prefix_categories is None and self.category_table is not None:
            prefix_categories = tf.gather(self.item_categories[:, -1], tf.maximum(rows, 0))
        session, category_logits = self.model.encode_session(
            prefix_vectors,
            mask,
            training=False,
            index_vectors=self.neighbour_vectors,
            prefix_categories=prefix_categories,
            category_table=self.category_table,
        )
        if candidate_categories:
            top_scores, top_rows = self._top_k_in_categories(session, category_logits[-1], rows, candidate_categories)
        else:
            scores = self.model.add_repeat_bonus(self.model.score_prepared(session, self.scoring_vectors), rows)
            if excluded_rows is not None:
                excluded = tf.where(excluded_rows >= 0)  # [m, 2]: (session, position) of each catalog item
                at = tf.stack([excluded[:, 0], tf.gather_nd(tf.cast(excluded_rows, tf.int64), excluded)], axis=1)
                scores = tf.tensor_scatter_nd_update(scores, at, tf.fill([tf.shape(at)[0]], tf.float32.min))
            top_scores, top_rows = top_k_by_blocks(scores, self.config.top_k, columns=self.num_items)
        outputs = {TOP_K_IDS: tf.gather(self.item_ids, top_rows), TOP_K_SCORES: top_scores}
        if excluded_rows is not None or candidate_categories:
            left_out = top_scores <= tf.float32.min
            outputs = {
                TOP_K_IDS: tf.where(left_out, tf.constant(b""), outputs[TOP_K_IDS]),
                TOP_K_SCORES: tf.where(left_out, 0.0, top_scores),
            }
        for level, (logits, names) in enumerate(zip(category_logits, self.category_names), start=1):
            probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
            top_level = tf.math.top_k(probabilities, k=tf.minimum(self.config.top_categories, tf.shape(logits)[1]))
            outputs[top_categories(level)] = tf.gather(names, top_level.indices)
            outputs[top_category_scores(level)] = top_level.values
        outputs = {name: tf.where(empty[:, None], tf.zeros_like(value), value) for name, value in outputs.items()}
        return {**outputs, UNKNOWN_ITEMS: unknown, KNOWN_ITEMS: known}

    def _top_k_in_categories(
        self, session: tf.Tensor, leaf_logits: tf.Tensor, rows: tf.Tensor, categories: int
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Top-K (scores, catalog rows) among the items of each session's `categories` most likely leaf categories.

        HierSRec's candidate set. Only those items' vectors are gathered and scored, so the
        work follows the candidates, not the catalog: their blocks of the grouped vectors are
        cut out per session, padded to the longest candidate list of the batch, and scored
        with the repeat bonus. Slots past a session's candidates score float32.min, below
        every real score, so a list shorter than K ends in them.
        """
        top_leaves = tf.math.top_k(leaf_logits, k=tf.minimum(categories, tf.shape(leaf_logits)[1])).indices
        batch, leaves = tf.shape(top_leaves)[0], tf.shape(top_leaves)[1]
        starts = tf.reshape(tf.gather(self.leaf_offsets, top_leaves), [-1])
        limits = tf.reshape(tf.gather(self.leaf_offsets, top_leaves + 1), [-1])
        positions = tf.RaggedTensor.from_row_lengths(
            tf.ragged.range(starts, limits).flat_values,
            tf.reduce_sum(tf.reshape(limits - starts, [batch, leaves]), axis=1),
        ).to_tensor(default_value=-1)  # [batch, candidates]: rows of the grouped vectors, -1 past the end
        real = positions >= 0
        vectors = tf.gather(self.grouped_scoring_vectors, tf.maximum(positions, 0))
        scores = tf.einsum("bd,bcd->bc", self.model.scoring_session(session), vectors)
        candidate_rows = tf.gather(self.grouped_rows, tf.maximum(positions, 0))
        if self.model.repeat_bonus is not None:
            own = tf.reduce_any((candidate_rows[:, :, None] == rows[:, None, :]) & (rows[:, None, :] >= 0), axis=-1)
            scores += self.model.repeat_bonus.bonus * tf.cast(own, tf.float32)
        scores = tf.where(real, scores, tf.float32.min)
        k = self.config.top_k
        # Fewer candidates than K: pad the scores first, so the outputs are [batch, K] always.
        scores = tf.pad(scores, [[0, 0], [0, tf.maximum(k - tf.shape(scores)[1], 0)]], constant_values=tf.float32.min)
        candidate_rows = tf.pad(candidate_rows, [[0, 0], [0, tf.maximum(k - tf.shape(candidate_rows)[1], 0)]])
        best = tf.math.top_k(scores, k=k)
        return best.values, tf.gather(candidate_rows, best.indices, batch_dims=1)

    def recommend_ids(
        self, item_ids: tf.Tensor, excluded_rows: tf.Tensor | None = None, candidate_categories: int = 0
    ) -> dict[str, tf.Tensor]:
        """Sessions of item ids (`[batch, length]`, "" as padding) -> `_recommend`'s outputs."""
        rows, unknown = prefix_rows(
            tf.ragged.boolean_mask(item_ids, item_ids != ""), self.table, self.config.max_prefix_length
        )
        prefix_vectors = tf.gather(self.item_vectors, tf.maximum(rows, 0))
        return self._recommend(prefix_vectors, rows != PADDING, rows, unknown, excluded_rows, candidate_categories)

    # --- Signatures -----------------------------------------------------------------------
    # autograph=False: no Python control flow on tensors here, and converting the TFT layer's
    # tf_keras code takes seconds per signature.
    @tf.function(input_signature=[_matrix(tf.string, ITEM_IDS)], autograph=False)
    def serve(self, item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.recommend_ids(item_ids)

    @tf.function(input_signature=[_matrix(tf.string, ITEM_IDS), _matrix(tf.string, EXCLUDE_ITEM_IDS)], autograph=False)
    def serve_excluding(self, item_ids: tf.Tensor, exclude_item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        """serving_default, without the items of `exclude_item_ids` (e.g. in the basket, out of stock)."""
        check = tf.debugging.assert_equal(
            tf.shape(exclude_item_ids)[0],
            tf.shape(item_ids)[0],
            message=f"{EXCLUDE_ITEM_IDS} must have one row per session of {ITEM_IDS}",
        )
        with tf.control_dependencies([check]):
            excluded_rows = tf.where(exclude_item_ids != "", self.table.lookup(exclude_item_ids), PADDING)
        return self.recommend_ids(item_ids, excluded_rows)

    @tf.function(input_signature=[_matrix(tf.string, ITEM_IDS)], autograph=False)
    def serve_in_top_categories(self, item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        """serving_default over the items of the session's `candidate_categories` most likely leaf categories."""
        return self.recommend_ids(item_ids, candidate_categories=self.config.candidate_categories)

    @tf.function(
        input_signature=[
            _matrix(tf.string, ITEM_IDS),
            _matrix(tf.string, TITLES),
            _matrix(tf.string, CATEGORY_PATHS),
            _matrix(tf.string, BRANDS),
            _matrix(tf.float32, PRICES),
        ],
        autograph=False,
    )
    def serve_metadata(self, item_ids, titles, category_paths, brands, prices) -> dict[str, tf.Tensor]:
        shape = tf.shape(item_ids)
        # Every input describes the same [batch, length] items: refuse others with a message that says so.
        checks = [
            tf.debugging.assert_equal(
                tf.shape(t),
                shape,
                message=f"{ITEM_IDS}, {TITLES}, {CATEGORY_PATHS}, {BRANDS} and {PRICES} must all have the same shape",
            )
            for t in (titles, category_paths, brands, prices)
        ]
        with tf.control_dependencies(checks):
            titles, category_paths, brands, prices = (tf.identity(t) for t in (titles, category_paths, brands, prices))
        # Sessions of no items at all ([batch, 0]) get one padding item, so that each has a first position.
        widen = [[0, 0], [0, tf.maximum(1 - shape[1], 0)]]
        item_ids, titles, category_paths, brands = (
            tf.pad(t, widen, constant_values="") for t in (item_ids, titles, category_paths, brands)
        )
        prices = tf.pad(prices, widen, constant_values=-1.0)
        shape = tf.shape(item_ids)
        present = (item_ids != "") | (titles != "") | (category_paths != "") | (brands != "")
        raw = self._raw_items(*(tf.reshape(t, [-1]) for t in (item_ids, titles, category_paths, brands, prices)))
        item_features = model_item_features(self.transform_layer(raw), self.preprocessing)
        vectors = tf.reshape(self.model.encode_items(item_features), [shape[0], shape[1], -1])
        leaves = tf.reshape(item_features[self.model.leaf_feature], shape)
        # Real items first (oldest first), padding after, the most recent max_prefix_length kept.
        order = tf.argsort(tf.cast(~present, tf.int32), axis=1, stable=True)
        lengths = tf.reduce_sum(tf.cast(present, tf.int32), axis=1, keepdims=True)
        keep = self.config.max_prefix_length
        positions = tf.range(keep)[None, :] + tf.maximum(lengths - keep, 0)
        gather_at = tf.gather(order, tf.minimum(positions, shape[1] - 1), batch_dims=1)
        mask = tf.range(keep)[None, :] < tf.minimum(lengths, keep)
        prefix_vectors = tf.gather(vectors, gather_at, batch_dims=1)
        # Items given by id that the catalog holds get the repeat bonus, as in serving_default.
        rows = tf.where(mask, tf.gather(self.table.lookup(item_ids), gather_at, batch_dims=1), PADDING)
        return self._recommend(
            prefix_vectors,
            mask,
            rows,
            tf.zeros([shape[0]], tf.int32),
            prefix_categories=tf.gather(leaves, gather_at, batch_dims=1),
        )

    def _raw_items(self, item_ids, titles, category_paths, brands, prices) -> dict[str, Any]:
        """Flat `[n]` metadata -> raw catalog features as the Transform graph takes them (VarLen)."""

        def sparse(values: tf.Tensor, keep: tf.Tensor) -> tf.SparseTensor:
            return tf.RaggedTensor.from_tensor(values[:, None], lengths=tf.cast(keep, tf.int64)).to_sparse()

        levels = tf.strings.strip(tf.strings.split(category_paths, sep=contract.CATEGORY_SEPARATOR))
        levels = tf.ragged.boolean_mask(levels, levels != "")
        everything = tf.ones_like(item_ids, dtype=tf.bool)
        raw = {
            contract.ITEM_ID: sparse(item_ids, everything),
            contract.TITLE: sparse(titles, everything),
            contract.BRAND: sparse(brands, everything),
            contract.CATEGORY_PATH: levels.to_sparse(),
            contract.PRICE: sparse(prices, prices >= 0),
            contract.TRAIN_CLICKS: sparse(tf.zeros_like(item_ids, dtype=tf.int64), everything),
        }
        return {name: value for name, value in raw.items() if name in self.raw_feature_spec}

    def _parse_sessions(self, examples: tf.Tensor) -> tuple[tf.RaggedTensor, dict[str, tf.Tensor]]:
        parsed = tf.io.parse_example(
            examples,
            {
                contract.PREFIX_ITEM_IDS: tf.io.RaggedFeature(tf.string),
                contract.TARGET_ITEM_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
                contract.PREFIX_LENGTH: tf.io.FixedLenFeature([], tf.int64, default_value=0),
            },
        )
        return parsed[contract.PREFIX_ITEM_IDS][:, -self.config.max_prefix_length :], parsed

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES)], autograph=False)
    def serve_examples(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        """serving_default for serialized session tf.Examples (what TFMA feeds a model)."""
        prefix, _ = self._parse_sessions(examples)
        return self.serve(prefix.to_tensor(default_value=""))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES)], autograph=False)
    def transform_features(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        """Session examples -> serving_default's input, the label, and the Evaluator's slice keys.

        Slices come from the catalog's training clicks, so they match the model's training
        data: `tail_session` (an item of the session, target included, has fewer than
        TAIL_CLICKS training clicks; M2TRec's "sparse" sessions), `cold_start_target` (the
        target was never clicked in training) and `session_length` (a bucket of the prefix's
        length). `target_category_l{n}` is the target's category at level n.
        """
        prefix, parsed = self._parse_sessions(examples)
        target_row = self.table.lookup(parsed[contract.TARGET_ITEM_ID])
        target_clicks = tf.where(target_row >= 0, tf.gather(self.item_train_clicks, tf.maximum(target_row, 0)), 0)
        prefix_rows = prefix.with_flat_values(self.table.lookup(prefix.flat_values))
        prefix_clicks = tf.where(
            prefix_rows.flat_values >= 0, tf.gather(self.item_train_clicks, tf.maximum(prefix_rows.flat_values, 0)), 0
        )
        session_min = tf.minimum(
            tf.reduce_min(prefix.with_flat_values(prefix_clicks), axis=1, keepdims=False), target_clicks
        )
        length = tf.maximum(parsed[contract.PREFIX_LENGTH], tf.cast(prefix.row_lengths(), tf.int64))
        outputs = {
            ITEM_IDS: prefix.to_tensor(default_value=""),
            contract.TARGET_ITEM_ID: parsed[contract.TARGET_ITEM_ID],
            TARGET_TRAIN_CLICKS: tf.cast(target_clicks, tf.int64),
            TAIL_SESSION: tf.cast(session_min < TAIL_CLICKS, tf.int64),
            COLD_START_TARGET: tf.cast(target_clicks == 0, tf.int64),
            # The bucket is the number of lower bounds the length reaches, minus one.
            SESSION_LENGTH: tf.gather(
                tf.constant(SESSION_LENGTH_BUCKETS[1]),
                tf.reduce_sum(tf.cast(length[:, None] >= tf.constant(SESSION_LENGTH_BUCKETS[0], tf.int64), tf.int32), 1)
                - 1,
            ),
        }
        for level, names in enumerate(self.category_names, start=1):
            category = tf.gather(self.item_categories[:, level - 1], tf.maximum(target_row, 0))
            outputs[target_category(level)] = tf.where(target_row >= 0, tf.gather(names, category), UNKNOWN_CATEGORY)
        return outputs


def export_serving_model(
    model: SessionRecommender,
    catalog: Catalog,
    tft_output: tft.TFTransformOutput,
    setup: TrainingSetup,
    export_dir: str,
    catalog_examples: Iterable[bytes] | None = None,
    sessions: list[list[str]] | None = None,
    tables: SessionTables | None = None,
) -> RecommenderModule:
    """Writes the SavedModel with the signatures above; `catalog` decides what can be recommended.

    With `catalog_examples` (the raw examples `catalog` was loaded from) and validation
    `sessions`, the SavedModel also keeps what a catalog refresh needs (`model/refresh_assets.py`).
    What the model holds from its training sessions is exported as `tables` say, or as
    the model computes it (`SessionTables.of_model`); a refresh keeps the served version's.
    """
    module = RecommenderModule(model, catalog, tft_output, setup, tables)
    signatures = {
        SERVING_DEFAULT: module.serve.get_concrete_function(),
        FROM_METADATA: module.serve_metadata.get_concrete_function(),
        EXCLUDING: module.serve_excluding.get_concrete_function(),
        TRANSFORM_FEATURES: module.transform_features.get_concrete_function(),
        SERVE_EXAMPLES: module.serve_examples.get_concrete_function(),
    }
    if module.serves_candidates:
        signatures[IN_TOP_CATEGORIES] = module.serve_in_top_categories.get_concrete_function()
    tf.saved_model.save(module, export_dir, signatures=signatures)
    if catalog_examples is not None:
        write_refresh_assets(export_dir, setup, tft_output, catalog_examples, sessions or [])
    return module
