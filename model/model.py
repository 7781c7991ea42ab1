"""The session recommender: one Keras 3 model for every variant of the family.

Items are scored as the session vector's cosine (or dot product) with the item encoder's
output for every catalog item. Training fuses the scoring with the loss: the full
softmax over the catalog (`softmax="full"`), or the target against negatives sampled once
per batch with a log-Q correction (`softmax="sampled"`), which encodes and scores only
those items. The catalog-wide logits, and the rank metrics over them, are computed at
evaluation. The catalog's features are held by the model, not fed per example, so the
catalog given at export time, not the training set, decides what can be recommended.

Example:
    >>> model = build_model(ModelConfig.preset("M2TRec"), catalog)   # doctest: +SKIP
    >>> model.fit(sessions, validation_data=eval_sessions)            # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from contract.model_api import TRACKED_K, rank_metric
from model import features
from model.config import ModelConfig
from model.layers import (
    CategoryChannel,
    CategoryHeads,
    HierarchicalFusion,
    ItemEncoder,
    NeighbourSessions,
    RepeatBonus,
    SessionEncoder,
)
from model.layers.sessions import unit_rows
from model.losses import sampled_softmax_cross_entropy
from model.metrics import RankMetric, bonus_ranks, popularity_ranks, ranking_metrics, target_rank
from model.optimizers import LazyAdam

if TYPE_CHECKING:  # model.neighbours reads TFRecords with TensorFlow; the model runs on any backend
    from model.neighbours import NeighbourIndex

ITEM_ID_LOGITS = "item_id_logits"
CATALOG_VECTORS = "catalog_vectors"  # training only: the catalog's item vectors, scored by the loss
# The rank metrics reported during training; early stopping watches the first.
# Repeat bonuses (logits) tried on validation after training when ModelConfig.repeat_bonus is
# None. On Diginetica, where one target in five is an item of its session, validation HIT@20
# peaked at 4 (+1.1 points) and MRR@20 at 2 (+0.5); beyond, the session's items crowd out new ones.
REPEAT_BONUS_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


class SessionRecommender(keras.Model):
    """Prefix catalog rows -> item logits over the catalog, category logits per level."""

    def __init__(self, config: ModelConfig, vocab_sizes: dict[str, int], category_levels: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.model_config = config
        self.vocab_sizes = dict(vocab_sizes)
        self.category_levels = category_levels
        self.item_encoder = ItemEncoder(
            vocab_sizes,
            category_levels,
            use_item_id=config.use_item_id,
            use_title=config.use_title,
            use_categories=config.use_categories,
            use_brand=config.use_brand,
            use_price=config.use_price,
            id_dim=config.id_dim,
            title_dim=config.title_dim,
            category_dim=config.category_dim,
            brand_dim=config.brand_dim,
            price_dim=config.price_dim,
            output_dim=config.item_dim,
            name="item_encoder",
            # float32 under any mixed policy: with a bfloat16 item encoder, id-only models learned
            # slower (Diginetica, 800 steps: SASRec's loss 8.64 against 8.17 in float32, GRU4Rec's
            # 8.66 against 7.78); with this one they track float32 (8.19, 7.75). It is a small
            # share of a step: a gather and one projection.
            dtype="float32",
        )
        self.session_encoder = SessionEncoder(
            config.item_dim,
            config.num_layers,
            config.num_heads,
            config.ff_dim,
            config.dropout,
            config.max_prefix_length,
            config.pooling,
            kind=config.session_encoder,
            causal=config.causal,
            weighting=config.readout_weighting,
            alpha=config.entmax_alpha,
            name="session_encoder",
        )
        head_levels = range(1, category_levels + 1) if config.uses_category_heads else range(0)
        self.category_heads = (
            CategoryHeads([vocab_sizes[features.category_level(k)] for k in head_levels], name="category_heads")
            if config.uses_category_heads
            else None
        )
        self.fusion = HierarchicalFusion(config.item_dim, name="hierarchical_fusion") if config.hierarchical else None
        self.neighbour_sessions = (
            NeighbourSessions(config.neighbours, name="neighbour_sessions") if config.neighbour_sessions else None
        )
        # Training's copy of the index sessions' mean vectors, and the steps since it was
        # refreshed (`_neighbour_bank`): state, not parameters; padded to the most sessions an index holds.
        self.neighbour_bank: Any = None
        self.neighbour_bank_age: Any = None
        if config.neighbour_sessions:
            self.neighbour_bank = self.add_weight(
                shape=(config.neighbour_sessions, config.item_dim),
                initializer="zeros",
                trainable=False,
                name="neighbour_bank",
            )
            self.neighbour_bank_age = self.add_weight(
                shape=(), initializer="zeros", dtype="int32", trainable=False, name="neighbour_bank_age"
            )
        leaf = features.category_level(category_levels)
        self.category_channel = (
            CategoryChannel(
                vocab_sizes[leaf],
                config.item_dim,
                config.max_prefix_length,
                graph=config.category_graph,
                name="category_channel",
            )
            if config.category_channel
            else None
        )
        # The leaf-category transitions of the training sessions (model.category_graph), or none yet.
        self.category_edges: tuple[Any, Any, Any] | None = None
        # The training sessions it reads (ids), and their rows in the catalog it holds.
        self.neighbour_index: NeighbourIndex | None = None
        self._neighbour_rows: dict[str, Any] | None = None
        self.item_id_head = (
            keras.layers.Dense(vocab_sizes[features.ITEM_ID_INDEX], name="item_id_head")
            if config.item_id_head
            else None
        )
        # None (chosen on validation after training) starts at 0; a set 0 leaves the layer out.
        self.repeat_bonus = (
            RepeatBonus(config.repeat_bonus or 0.0, name="repeat_bonus") if config.repeat_bonus != 0 else None
        )
        self.item_dropout = keras.layers.Dropout(config.item_dropout, name="item_dropout")
        self.rank_metrics = [RankMetric(kind, TRACKED_K) for kind in ("hit", "mrr")]
        self.seed_generator = keras.random.SeedGenerator(1337)
        self._catalog: dict[str, Any] = {}

    # --- The catalog --------------------------------------------------------------------
    @property
    def catalog_features(self) -> list[str]:
        """Catalog features the model reads: the encoder's inputs and the heads' targets."""
        names = set(self.item_encoder.input_features)
        if self.category_heads is not None:
            names.update(features.category_level(k) for k in range(1, self.category_levels + 1))
        if self.item_id_head is not None:
            names.add(features.ITEM_ID_INDEX)
        if self.category_channel is not None:
            names.add(self.leaf_feature)
        return sorted(names)

    @property
    def leaf_feature(self) -> str:
        return features.category_level(self.category_levels)

    def set_catalog(self, catalog_features: dict[str, np.ndarray], item_ids: np.ndarray | None = None) -> None:
        """Holds the catalog (one row per item) that is encoded and scored.

        A model holding a neighbour index needs the catalog's `item_ids`: the index's sessions
        are found again in it by id.
        """
        self._catalog = {name: ops.convert_to_tensor(catalog_features[name]) for name in self.catalog_features}
        if self.neighbour_index is not None:
            if item_ids is None:
                raise ValueError("this model holds a neighbour index: set_catalog needs the catalog's item_ids")
            self.set_neighbour_index(self.neighbour_index, item_ids)
        # Exact score ties in the rank metrics go to the more clicked item, as in evaluation.
        clicks = catalog_features.get(features.TRAIN_CLICKS)
        self._tie_break = (
            None if clicks is None else ops.convert_to_tensor(popularity_ranks(np.asarray(clicks)), "float32")
        )

    def set_category_graph(self, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> None:
        """Holds the leaf-category transition graph (`model.category_graph.category_transitions`)."""
        if self.category_channel is None or not self.model_config.category_graph:
            raise ValueError(f"{self.model_config.variant} has no category graph (category_graph=False)")
        self.category_edges = (
            ops.convert_to_tensor(sources, "int32"),
            ops.convert_to_tensor(targets, "int32"),
            ops.convert_to_tensor(weights, "float32"),
        )

    def category_table(self) -> Any | None:
        """`[leaf categories, width]`: the category channel's embeddings, fused over the graph; None without a channel.

        Before a graph is set (a model not yet trained) the graph has no edges: each category attends to itself.
        """
        if self.category_channel is None:
            return None
        edges = self.category_edges
        if edges is None and self.model_config.category_graph:
            empty = ops.zeros((0,), "int32")
            edges = (empty, empty, ops.zeros((0,), "float32"))
        return self.category_channel.embedding_table(edges)

    def set_neighbour_index(self, index: NeighbourIndex, item_ids: np.ndarray) -> None:
        """Holds the training sessions `NeighbourSessions` reads, as rows of the catalog of `item_ids`.

        Items this catalog lacks drop out of their sessions, and sessions left empty out of the index.
        """
        if self.neighbour_sessions is None:
            raise ValueError(f"{self.model_config.variant} reads no neighbour sessions (neighbour_sessions=0)")
        row_of = {str(item): row for row, item in enumerate(item_ids)}
        rows, segments, keys = index.rows(lambda ids: np.array([row_of.get(str(i), -1) for i in ids], np.int64))
        if len(keys) <= self.model_config.neighbours:
            raise ValueError(
                f"the neighbour index has {len(keys)} sessions with items in this catalog; "
                f"it needs more than neighbours={self.model_config.neighbours}"
            )
        if len(keys) > self.model_config.neighbour_sessions:
            raise ValueError(
                f"the neighbour index has {len(keys)} sessions, more than "
                f"neighbour_sessions={self.model_config.neighbour_sessions}"
            )
        self.neighbour_index = index
        self.neighbour_bank_age.assign(0)  # the next training step refreshes the bank from this index
        lengths = np.bincount(segments, minlength=len(keys))
        self._neighbour_rows = {
            "rows": ops.convert_to_tensor(rows),
            "segments": ops.convert_to_tensor(segments),
            "lengths": ops.convert_to_tensor(lengths[:, None], "float32"),
            "keys": ops.convert_to_tensor(keys),
            "shares": _item_shares(rows, segments, lengths, len(item_ids)),
        }

    def neighbour_index_vectors(self, catalog_vectors: Any | None = None) -> Any | None:
        """`[sessions, width]`: each indexed session's mean item vector (A2D-MTL Eq. 16), from
        `catalog_vectors` where given; None without an index (a model not yet trained)."""
        if self.neighbour_sessions is None or self.neighbour_index is None:
            return None
        index = self._neighbour_rows
        assert index is not None, "set_neighbour_index and set_catalog keep the rows with the index"
        if catalog_vectors is not None and index["shares"] is not None:
            import tensorflow as tf  # only where the shares exist: the TensorFlow backend

            means = tf.sparse.sparse_dense_matmul(index["shares"], ops.cast(catalog_vectors, "float32"), adjoint_a=True)
            return ops.cast(means, catalog_vectors.dtype)
        rows = index["rows"]
        vectors = self._encode_rows(rows) if catalog_vectors is None else ops.take(catalog_vectors, rows, axis=0)
        sums = ops.segment_sum(vectors, index["segments"], num_segments=int(ops.shape(index["keys"])[0]))
        return sums / ops.cast(index["lengths"], sums.dtype)

    def _neighbour_bank(self, catalog_vectors: Any | None = None) -> Any | None:
        """Training's `[sessions, width]` index vectors: the bank, without gradient, refreshed from
        the item encoder (`catalog_vectors`, where the step encoded the catalog anyway) at every
        `neighbour_refresh_steps`-th training step; None without an index.

        Exact index vectors would encode the whole catalog forward and backward at every step
        and pass their gradient through the sparse means: a Diginetica step of A2D-MTL took
        162 ms with them and 108 ms with the bank (2-core AVX2, benchmarks/results/
        train_throughput_a2d.json). Evaluation and the export compute them exactly.
        """
        if self.neighbour_bank is None or self._neighbour_rows is None:
            return None
        sessions = int(ops.shape(self._neighbour_rows["keys"])[0])
        padding = self.model_config.neighbour_sessions - sessions

        def refreshed() -> Any:
            encoded = self.encode_items() if catalog_vectors is None else catalog_vectors
            vectors = ops.cast(self.neighbour_index_vectors(encoded), "float32")
            return ops.pad(vectors, [[0, padding], [0, 0]])

        age = self.neighbour_bank_age
        refresh = ops.equal(age, 0)
        bank = ops.stop_gradient(ops.cond(refresh, refreshed, lambda: ops.convert_to_tensor(self.neighbour_bank)))
        # Assigned outside the cond, so a backend that traces the step statelessly (JAX) can too.
        self.neighbour_bank.assign(bank)
        age.assign((age + 1) % self.model_config.neighbour_refresh_steps)
        return bank[:sessions]

    @property
    def samples_negatives(self) -> bool:
        """Whether training samples negatives: `softmax="sampled"` and a catalog larger than the sample."""
        return self.model_config.softmax == "sampled" and self.catalog_size > self.model_config.num_sampled

    @property
    def catalog_size(self) -> int:
        return int(ops.shape(next(iter(self._catalog.values())))[0])

    def _catalog_rows(self, rows: Any) -> dict[str, Any]:
        return {name: ops.take(values, rows, axis=0) for name, values in self._catalog.items()}

    # --- Forward ------------------------------------------------------------------------
    def encode_items(self, item_features: dict[str, Any] | None = None, drop_ids: bool = False) -> Any:
        """Item vectors for `item_features` (default: the whole catalog).

        With `drop_ids` (training's candidates), `id_dropout` of the rows get the OOV id, as
        never-clicked items have, so the metadata path learns to carry an item without its
        id, and the OOV vector is trained as a target, not only pushed down as a negative.
        """
        item_features = dict(self._catalog if item_features is None else item_features)
        rate = self.model_config.id_dropout
        if drop_ids and rate > 0 and features.ITEM_ID_INDEX in item_features:
            ids = item_features[features.ITEM_ID_INDEX]
            dropped = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) < rate
            oov = self.vocab_sizes[features.ITEM_ID_INDEX] - 1
            item_features[features.ITEM_ID_INDEX] = ops.where(dropped, ops.full_like(ids, oov), ids)
        return self.item_encoder(item_features)

    def _encode_rows(self, rows: Any) -> Any:
        """Vectors of catalog `rows` (any shape), encoding whichever is smaller: the rows, or the catalog.

        A batch of long sessions can hold more rows than a small catalog (Beauty: 512 x 64
        prefix rows against 12,101 items), and encoding titles is the costly part.
        """
        return ops.cond(
            ops.size(rows) < self.catalog_size,
            lambda: self.encode_items(self._catalog_rows(rows)),
            lambda: ops.take(self.encode_items(), rows, axis=0),
        )

    def encode_session(
        self,
        prefix_vectors: Any,
        mask: Any,
        training: bool = False,
        index_vectors: Any | None = None,
        session_keys: Any | None = None,
        prefix_categories: Any | None = None,
        category_table: Any | None = None,
    ) -> tuple[Any, list[Any]]:
        """Prefix item vectors `[batch, length, width]` -> session vector and category logits.

        With `index_vectors` (`neighbour_index_vectors`), the session vector gains what its
        nearest training sessions clicked (A2D-MTL Eq. 20), leaving out those of `session_keys`.
        With a category channel it gains the vector of the prefix's leaf categories
        (`prefix_categories`, `[batch, length]`), from `category_table` where given (serving
        computes it once), else from the channel's embeddings and the graph.
        """
        session = self.session_encoder(prefix_vectors, mask, training=training)
        if self.category_channel is not None:
            if prefix_categories is None:
                raise ValueError("a model with a category channel needs the prefix's leaf categories")
            table = self.category_table() if category_table is None else category_table
            session = session + ops.cast(self.category_channel(prefix_categories, mask, table=table), session.dtype)
        if index_vectors is not None and self.neighbour_sessions is not None:
            index_keys = None if session_keys is None else self._neighbour_rows["keys"]  # type: ignore[index]
            session = session + self.neighbour_sessions(prefix_vectors, mask, index_vectors, index_keys, session_keys)
        category_logits = self.category_heads(session) if self.category_heads is not None else []
        if self.fusion is not None:
            session = self.fusion(session, category_logits)
        return session, category_logits

    def score(self, session: Any, item_vectors: Any) -> Any:
        """Session vectors `[batch, width]` x item vectors `[items, width]` -> logits `[batch, items]`.

        Scoring is float32 whatever the compute dtype: with bfloat16's 8-bit mantissa, logits
        near 10 round to steps of 1/16, which ties hundreds of items at evaluation.
        """
        return self.score_prepared(session, self.scoring_vectors(item_vectors))

    def scoring_vectors(self, item_vectors: Any) -> Any:
        """The item side of `score`, float32 `[width, items]`: a server computes it once, not per request.

        Normalized (cosine scores), divided by the temperature and laid out for a plain
        matmul, which on CPU is twice as fast as one with a transposed operand.
        """
        item_vectors = ops.cast(item_vectors, "float32")
        if self.model_config.cosine_scores:
            item_vectors = unit_rows(item_vectors)
        return ops.transpose(item_vectors / self.model_config.temperature)

    def score_prepared(self, session: Any, scoring_vectors: Any) -> Any:
        """`score` against `scoring_vectors(item_vectors)`."""
        return ops.matmul(self.scoring_session(session), scoring_vectors)

    def scoring_session(self, session: Any) -> Any:
        """The session side of `score`, float32: L2-normalized with cosine scores."""
        session = ops.cast(session, "float32")
        if self.model_config.cosine_scores:
            session = unit_rows(session)
        return session

    def add_repeat_bonus(self, logits: Any, rows: Any) -> Any:
        """`logits` `[batch, items]` plus the repeat bonus at the session's own items (`rows` `[batch, length]`, < 0: none)."""
        return logits if self.repeat_bonus is None else self.repeat_bonus(logits, rows)

    def call(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        rows = inputs[features.PREFIX_ROWS]
        mask = rows >= 0
        safe_rows = ops.maximum(rows, 0)
        config = self.model_config
        # Training scores candidates in `compute_loss` (the whole catalog, or shared sampled
        # negatives), fused with the loss; catalog-wide logits are for evaluation, and for
        # training only when the rank metrics are tracked per step.
        # Id dropout is for the candidates only: a session's own items keep their ids. Dropping
        # them too cost 1.7 points of validation HIT@20 on Diginetica, candidates only 0.6.
        encode_catalog = not (training and self.samples_negatives)
        catalog_vectors = self.encode_items() if encode_catalog else None
        if catalog_vectors is not None:
            prefix_vectors = ops.take(catalog_vectors, safe_rows, axis=0)
        else:
            prefix_vectors = self._encode_rows(safe_rows)
        if training:
            index_vectors = self._neighbour_bank(catalog_vectors)
        else:
            index_vectors = self.neighbour_index_vectors(catalog_vectors)
        # A training example's own session key: its indexed session is not a neighbour.
        session_keys = inputs.get(features.SESSION_KEY) if index_vectors is not None else None
        prefix_categories = None
        if self.category_channel is not None:
            prefix_categories = ops.take(self._catalog[self.leaf_feature], safe_rows, axis=0)
        session, category_logits = self.encode_session(
            prefix_vectors, mask, training, index_vectors, session_keys, prefix_categories
        )
        outputs = {features.SESSION_VECTOR: session}
        if encode_catalog and training and config.id_dropout:
            catalog_vectors = self.encode_items(drop_ids=True)
        if not training or (config.train_rank_metrics and encode_catalog):
            outputs[features.ITEM_LOGITS] = self.add_repeat_bonus(self.score(session, catalog_vectors), rows)
        elif catalog_vectors is not None:
            outputs[CATALOG_VECTORS] = catalog_vectors
        for level, logits in enumerate(category_logits, start=1):
            outputs[features.category_logits(level)] = ops.cast(logits, "float32")
        if self.item_id_head is not None:
            outputs[ITEM_ID_LOGITS] = ops.cast(self.item_id_head(session), "float32")
        return outputs

    def choose_repeat_bonus(self, eval_data: Any, steps: int | None = None) -> dict[str, dict[str, float]]:
        """Sets the repeat bonus to the value of REPEAT_BONUS_GRID with the best HIT@20 on `eval_data` (then MRR@20).

        One pass over `eval_data` (`steps` batches; default all): each batch's logits without
        the bonus are ranked with every value (`metrics.bonus_ranks`), the exact ranks (ties
        broken as in training's metrics). Returns HIT@20 and MRR@20 per value, as percentages keyed by the value.
        """
        if self.repeat_bonus is None:
            raise ValueError("this model has no repeat bonus to choose (repeat_bonus=0)")
        self.repeat_bonus.bonus.assign(0.0)
        tie_break = None if self._tie_break is None else ops.convert_to_numpy(self._tie_break)
        parts = []
        for inputs, labels in eval_data.take(steps or -1):
            logits = self.predict_on_batch(inputs)[features.ITEM_LOGITS]
            parts.append(
                bonus_ranks(
                    logits, inputs[features.PREFIX_ROWS], labels[features.TARGET_ROW], REPEAT_BONUS_GRID, tie_break
                )
            )
        results = {}
        for bonus, ranks in zip(REPEAT_BONUS_GRID, np.concatenate(parts, axis=1)):
            metrics = ranking_metrics(ranks, ks=(TRACKED_K,))
            results[str(bonus)] = {name: round(100 * metrics[rank_metric(name)], 2) for name in ("hit", "mrr")}
        best = max(REPEAT_BONUS_GRID, key=lambda b: (results[str(b)]["hit"], results[str(b)]["mrr"]))
        self.repeat_bonus.bonus.assign(best)
        return results

    # --- Training -----------------------------------------------------------------------
    def _candidate_vectors(self, item_vectors: Any) -> Any:
        """Candidates' scoring vectors in training (float32, as `score`'s), with `item_dropout` (CORE) applied first."""
        return self.scoring_vectors(self.item_dropout(item_vectors, training=True))

    def _full_item_loss(self, session: Any, target: Any, catalog_vectors: Any) -> Any:
        """Softmax cross-entropy over every catalog item."""
        logits = self.score_prepared(session, self._candidate_vectors(catalog_vectors))
        return self._cross_entropy(logits, ops.cast(target, "int32"))

    def _sampled_item_loss(self, session: Any, target: Any) -> Any:
        """Softmax over the target and `num_sampled` negatives shared by the batch, log-Q corrected.

        Negatives are drawn uniformly with replacement; each negative's logit gets
        log(catalog / num_sampled), so the sampled terms estimate the full softmax's
        denominator (Bengio and Senecal; Yi et al. 2019), and a negative that is the row's
        target is masked out. Only the target's and the negatives' item vectors are encoded.
        """
        config = self.model_config
        target = ops.cast(target, "int32")
        negatives = keras.random.randint(
            (config.num_sampled,), 0, self.catalog_size, seed=self.seed_generator, dtype="int32"
        )
        candidates = ops.concatenate([target, negatives])
        vectors = self._candidate_vectors(self.encode_items(self._catalog_rows(candidates), drop_ids=True))
        batch = ops.shape(target)[0]
        session = self.scoring_session(session)
        target_vectors = ops.transpose(vectors[:, :batch])
        positive = ops.sum(session * target_vectors, axis=-1)
        negative = ops.matmul(session, vectors[:, batch:])
        log_q = float(np.log(config.num_sampled)) - ops.log(ops.cast(self.catalog_size, "float32"))
        accidental = ops.expand_dims(target, 1) == ops.expand_dims(negatives, 0)
        return sampled_softmax_cross_entropy(positive, negative - log_q, accidental, config.label_smoothing)

    def _cross_entropy(self, logits: Any, target: Any, training: bool = True) -> Any:
        """Sparse softmax cross-entropy per example over catalog-wide logits, with `label_smoothing`.

        In training, TF's fused kernel, which computes the gradient with the loss in one pass;
        in evaluation, where no gradient is taken, logsumexp minus the target's logit: 39 ms
        against 96 for `[512, 43097]` on the AVX512 machine, which was half of a Diginetica
        validation step.
        """
        smoothing = self.model_config.label_smoothing
        logsumexp = ops.logsumexp(logits, axis=-1) if smoothing or not training else None
        if training:
            loss = keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True)
        else:
            loss = logsumexp - ops.squeeze(ops.take_along_axis(logits, ops.expand_dims(target, 1), axis=1), 1)
        if smoothing:
            # (1 - e) * CE(target) + e * mean over columns of -log p: the second term is
            # logsumexp - mean(logits), so no one-hot matrix is built.
            loss = (1.0 - smoothing) * loss + smoothing * (logsumexp - ops.mean(logits, axis=-1))
        return loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Item loss + weighted category and item-id losses (M2TRec Eq. 7)."""
        target = y[features.TARGET_ROW]
        if features.ITEM_LOGITS in y_pred:
            item_loss = self._cross_entropy(y_pred[features.ITEM_LOGITS], ops.cast(target, "int32"), training=training)
        elif CATALOG_VECTORS in y_pred:
            item_loss = self._full_item_loss(y_pred[features.SESSION_VECTOR], target, y_pred[CATALOG_VECTORS])
        else:
            item_loss = self._sampled_item_loss(y_pred[features.SESSION_VECTOR], target)
        loss = ops.mean(ops.cast(item_loss, "float32"))
        for level in range(1, self.category_levels + 1):
            if features.category_logits(level) in y_pred:
                level_target = ops.take(self._catalog[features.category_level(level)], target, axis=0)
                level_loss = keras.losses.sparse_categorical_crossentropy(
                    level_target, y_pred[features.category_logits(level)], from_logits=True
                )
                loss = loss + self.model_config.category_loss_weight * ops.mean(level_loss)
        if ITEM_ID_LOGITS in y_pred:
            id_target = ops.take(self._catalog[features.ITEM_ID_INDEX], target, axis=0)
            id_loss = keras.losses.sparse_categorical_crossentropy(id_target, y_pred[ITEM_ID_LOGITS], from_logits=True)
            loss = loss + self.model_config.item_id_head_loss_weight * ops.mean(id_loss)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The loss always; the rank metrics where catalog-wide logits exist (evaluation)."""
        if features.ITEM_LOGITS not in y_pred:
            return {metric.name: metric.result() for metric in self.metrics if metric not in self.rank_metrics}
        ranks = target_rank(y_pred[features.ITEM_LOGITS], y[features.TARGET_ROW], self._tie_break)
        for metric in self.rank_metrics:
            metric.update_state(ranks)
        return self.get_metrics_result()


def _item_shares(rows: np.ndarray, segments: np.ndarray, lengths: np.ndarray, items: int) -> Any | None:
    """`[items, sessions]` sparse: the share of each catalog item in each indexed session (its
    clicks over the session's length), or None off the TensorFlow backend.

    A session's mean item vector (A2D-MTL Eq. 16) is then one sparse matmul with the catalog's
    vectors, whose gradient is a plain sparse product: 9 ms forward and backward for
    Diginetica's 20,000 sessions on the 2-core AVX2 machine, against 74 ms for the gather of
    their 251,000 rows and the segment sum (and 98 ms for Keras's `ops.matmul` of a sparse
    tensor, which gathers). Stored transposed: the product reads it with `adjoint_a`, whose
    backward is the faster of the two orders. Other backends take the gather and segment sum.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    pairs, clicks = np.unique(np.stack([rows, segments], axis=1), axis=0, return_counts=True)
    shares = (clicks / lengths[pairs[:, 1]]).astype(np.float32)
    return tf.SparseTensor(pairs, shares, (items, len(lengths)))


def build_model(
    config: ModelConfig,
    vocab_sizes: dict[str, int],
    category_levels: int,
    catalog_features: dict[str, np.ndarray],
    jit_compile: bool = False,
) -> SessionRecommender:
    """A compiled model holding `catalog_features`; built, so its weights exist.

    Its layers compute in `config.precision` (a Keras dtype policy; `auto` means float32
    here: model.trainer.resolve_precision picks the machine's before building).
    Weights stay float32. `jit_compile` (XLA) pays off on a GPU; on CPU the default
    eager-graph mode is used.
    """
    policy = "float32" if config.precision == "auto" else config.precision
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)  # layers take the global policy when they are made
    try:
        model = SessionRecommender(config, vocab_sizes, category_levels, name=config.variant)
        model.set_catalog(catalog_features)
        model({features.PREFIX_ROWS: ops.zeros((1, config.max_prefix_length), dtype="int32")})
    finally:
        keras.config.set_dtype_policy(previous)
    model.compile(
        optimizer=(LazyAdam if config.lazy_adam else keras.optimizers.Adam)(
            learning_rate=config.learning_rate,
            # None, not 0: Keras would still rewrite every weight with its decay at each step.
            weight_decay=config.weight_decay or None,
            use_ema=config.weight_average > 0,
            ema_momentum=config.weight_average or 0.99,
        ),
        jit_compile=jit_compile,
    )
    return model
