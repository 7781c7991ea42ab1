"""The session recommender: one Keras 3 model for every variant of the family.

Items are scored as the dot product of the session vector with the item encoder's output
for every catalog item (full softmax), or for the batch's targets plus sampled negatives
(`softmax="sampled"`, for catalogs too large to score whole at each step). The catalog's
features are held by the model, not fed per example, so the catalog given at export
time, not the training set, decides what can be recommended.

Example:
    >>> model = build_model(ModelConfig.preset("M2TRec"), catalog)   # doctest: +SKIP
    >>> model.fit(sessions, validation_data=eval_sessions)            # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Optional

import keras
import numpy as np
from keras import ops

from model import features
from model.config import ModelConfig
from model.layers import CategoryHeads, HierarchicalFusion, ItemEncoder, SessionEncoder
from model.metrics import RankMetric, target_rank

ITEM_ID_LOGITS = "item_id_logits"
# The rank metrics reported during training; early stopping watches the first.
TRACKED_K = 20


class SessionRecommender(keras.Model):
    """Prefix catalog rows -> item logits over the catalog, category logits per level."""

    def __init__(self, config: ModelConfig, vocab_sizes: dict[str, int], category_levels: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.model_config = config
        self.vocab_sizes = dict(vocab_sizes)
        self.category_levels = category_levels
        self.item_encoder = ItemEncoder(
            vocab_sizes, category_levels,
            use_item_id=config.use_item_id, use_title=config.use_title, use_categories=config.use_categories,
            use_brand=config.use_brand, use_price=config.use_price, id_dim=config.id_dim,
            title_dim=config.title_dim, category_dim=config.category_dim, brand_dim=config.brand_dim,
            price_dim=config.price_dim, output_dim=config.item_dim, name="item_encoder",
        )  # fmt: skip
        self.session_encoder = SessionEncoder(
            config.item_dim, config.num_layers, config.num_heads, config.ff_dim, config.dropout,
            config.max_prefix_length, config.pooling, kind=config.session_encoder, causal=config.causal,
            name="session_encoder",
        )  # fmt: skip
        head_levels = range(1, category_levels + 1) if config.uses_category_heads else range(0)
        self.category_heads = (
            CategoryHeads([vocab_sizes[features.category_level(k)] for k in head_levels], name="category_heads")
            if config.uses_category_heads
            else None
        )
        self.fusion = HierarchicalFusion(config.item_dim, name="hierarchical_fusion") if config.hierarchical else None
        self.item_id_head = (
            keras.layers.Dense(vocab_sizes[features.ITEM_ID_INDEX], name="item_id_head") if config.item_id_head else None
        )
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
        return sorted(names)

    def set_catalog(self, catalog_features: dict[str, np.ndarray]) -> None:
        """Holds the catalog (one row per item) that is encoded and scored."""
        self._catalog = {name: ops.convert_to_tensor(catalog_features[name]) for name in self.catalog_features}

    @property
    def catalog_size(self) -> int:
        return int(ops.shape(next(iter(self._catalog.values())))[0])

    def _catalog_rows(self, rows: Any) -> dict[str, Any]:
        return {name: ops.take(values, rows, axis=0) for name, values in self._catalog.items()}

    # --- Forward ------------------------------------------------------------------------
    def encode_items(self, item_features: Optional[dict[str, Any]] = None) -> Any:
        """Item vectors for `item_features` (default: the whole catalog)."""
        return self.item_encoder(self._catalog if item_features is None else item_features)

    def encode_session(self, prefix_vectors: Any, mask: Any, training: bool = False) -> tuple[Any, list[Any]]:
        """Prefix item vectors `[batch, length, width]` -> session vector and category logits."""
        session = self.session_encoder(prefix_vectors, mask, training=training)
        category_logits = self.category_heads(session) if self.category_heads is not None else []
        if self.fusion is not None:
            session = self.fusion(session, category_logits)
        return session, category_logits

    def score(self, session: Any, item_vectors: Any) -> Any:
        """Session vectors `[batch, width]` x item vectors `[items, width]` -> logits `[batch, items]`."""
        return self.score_prepared(session, self.scoring_vectors(item_vectors))

    def scoring_vectors(self, item_vectors: Any) -> Any:
        """The item side of `score`, `[width, items]`: a server computes it once, not per request.

        Normalized (cosine scores), divided by the temperature and laid out for a plain
        matmul, which on CPU is twice as fast as one with a transposed operand.
        """
        if self.model_config.cosine_scores:
            item_vectors = item_vectors / ops.maximum(ops.norm(item_vectors, axis=-1, keepdims=True), 1e-6)
        return ops.transpose(item_vectors / self.model_config.temperature)

    def score_prepared(self, session: Any, scoring_vectors: Any) -> Any:
        """`score` against `scoring_vectors(item_vectors)`."""
        if self.model_config.cosine_scores:
            session = session / ops.maximum(ops.norm(session, axis=-1, keepdims=True), 1e-6)
        return ops.cast(ops.matmul(session, scoring_vectors), "float32")

    def call(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        rows = inputs[features.PREFIX_ROWS]
        mask = rows >= 0
        safe_rows = ops.maximum(rows, 0)
        score_catalog = self.model_config.softmax == "full" or not training
        if score_catalog:
            catalog_vectors = self.encode_items()
            prefix_vectors = ops.take(catalog_vectors, safe_rows, axis=0)
        else:
            prefix_vectors = self.encode_items(self._catalog_rows(safe_rows))
        session, category_logits = self.encode_session(prefix_vectors, mask, training=training)
        outputs = {features.SESSION_VECTOR: session}
        if score_catalog:
            outputs[features.ITEM_LOGITS] = self.score(session, catalog_vectors)
        for level, logits in enumerate(category_logits, start=1):
            outputs[features.category_logits(level)] = ops.cast(logits, "float32")
        if self.item_id_head is not None:
            outputs[ITEM_ID_LOGITS] = ops.cast(self.item_id_head(session), "float32")
        return outputs

    # --- Training -----------------------------------------------------------------------
    def _sampled_item_loss(self, session: Any, target: Any) -> Any:
        """Softmax over the batch's targets plus uniformly sampled items (M2TRec's head, cheaper)."""
        import keras_rs  # only needed for this option

        negatives = keras.random.randint(
            (self.model_config.num_sampled,), 0, self.catalog_size, seed=self.seed_generator, dtype="int32"
        )
        candidates = ops.concatenate([ops.cast(target, "int32"), negatives])
        logits = self.score(session, self.encode_items(self._catalog_rows(candidates)))
        batch = ops.shape(target)[0]
        labels = ops.pad(ops.eye(batch, dtype="float32"), [[0, 0], [0, self.model_config.num_sampled]])
        logits = keras_rs.layers.RemoveAccidentalHits()(logits, labels, candidates)
        return keras.losses.categorical_crossentropy(labels, logits, from_logits=True)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Item loss + weighted category and item-id losses (M2TRec Eq. 7)."""
        target = y[features.TARGET_ROW]
        if features.ITEM_LOGITS in y_pred:
            item_loss = keras.losses.sparse_categorical_crossentropy(target, y_pred[features.ITEM_LOGITS], from_logits=True)
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
        if features.ITEM_LOGITS in y_pred:
            ranks = target_rank(y_pred[features.ITEM_LOGITS], y[features.TARGET_ROW])
            for metric in self.rank_metrics:
                metric.update_state(ranks)
        return self.get_metrics_result()


def build_model(config: ModelConfig, vocab_sizes: dict[str, int], category_levels: int,
                catalog_features: dict[str, np.ndarray], jit_compile: bool = False) -> SessionRecommender:  # fmt: skip
    """A compiled model holding `catalog_features`; built, so its weights exist.

    `jit_compile` (XLA) pays off on a GPU; on CPU the default eager-graph mode is used.
    """
    model = SessionRecommender(config, vocab_sizes, category_levels, name=config.variant)
    model.set_catalog(catalog_features)
    model({features.PREFIX_ROWS: ops.zeros((1, config.max_prefix_length), dtype="int32")})
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=config.learning_rate, weight_decay=config.weight_decay),
        jit_compile=jit_compile,
    )
    return model
