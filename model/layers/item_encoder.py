"""Item metadata (and optionally the item id) -> one vector per item.

M2TRec (Eq. 2-4) encodes each attribute with its own embedding (title tokens mean-pooled),
concatenates them and needs no item id, so an item never clicked, or added after training,
gets a vector from its metadata alone. An optional id embedding makes the encoder hybrid;
items rarely clicked in training share the "unknown id" row, so their vectors stay
metadata-driven. Switching all metadata off gives the id-only encoder of TRec_id.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from model import features
from model.layers.sessions import dense_on_rows


@keras.saving.register_keras_serializable(package="session_recommender")
class ItemEncoder(keras.layers.Layer):
    """Item features -> one vector per item: an embedding per attribute, concatenated, projected.

    Args:
        vocab_sizes: ids per index feature (model.features names), the OOV id included.
        category_levels: category levels embedded (root first).
        use_item_id, use_title, use_categories, use_brand, use_price: which inputs to read
            (at least one).
        id_dim, title_dim, category_dim, brand_dim, price_dim: each attribute's embedding width.
        output_dim: the item vector's width.
        dtype: the encoder's dtype policy, which its embeddings and projection share (the
            model makes it float32 under any mixed policy).

    Call arguments:
        item_features: feature name -> ids, each `[...]`; title tokens `[..., tokens]` with 0
            as padding (a title is the mean of its tokens' embeddings).

    Returns:
        `[..., output_dim]`.

    Example:
        >>> encoder = ItemEncoder({"category_l1": 10}, category_levels=1, use_item_id=False,
        ...                       use_title=False, use_brand=False, use_price=False, output_dim=8)
        >>> tuple(encoder({"category_l1": keras.ops.convert_to_tensor([1, 2, 3])}).shape)
        (3, 8)
    """

    def __init__(
        self,
        vocab_sizes: dict[str, int],
        category_levels: int,
        use_item_id: bool = False,
        use_title: bool = True,
        use_categories: bool = True,
        use_brand: bool = True,
        use_price: bool = True,
        id_dim: int = 64,
        title_dim: int = 64,
        category_dim: int = 32,
        brand_dim: int = 16,
        price_dim: int = 8,
        output_dim: int = 64,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_sizes = dict(vocab_sizes)
        self.category_levels = category_levels
        self.flags = dict(
            use_item_id=use_item_id,
            use_title=use_title,
            use_categories=use_categories,
            use_brand=use_brand,
            use_price=use_price,
        )
        self.dims = dict(
            id_dim=id_dim,
            title_dim=title_dim,
            category_dim=category_dim,
            brand_dim=brand_dim,
            price_dim=price_dim,
            output_dim=output_dim,
        )
        # Feature name -> embedding, for the single-valued attributes, in a fixed order. A dict
        # of layers (not a list of tuples), so Keras' weight files save them too.
        self.attribute_embeddings: dict[str, keras.layers.Embedding] = {}
        if use_item_id:
            self._add(features.ITEM_ID_INDEX, id_dim)
        if use_categories:
            for level in range(1, category_levels + 1):
                self._add(features.category_level(level), category_dim)
        if use_brand:
            self._add(features.BRAND, brand_dim)
        if use_price:
            self._add(features.PRICE_BUCKET, price_dim)
        self.title_embedding = (
            keras.layers.Embedding(
                vocab_sizes[features.TITLE_TOKENS], title_dim, name="title_tokens", dtype=self.dtype_policy
            )
            if use_title
            else None
        )
        if not self.attribute_embeddings and self.title_embedding is None:
            raise ValueError("ItemEncoder needs at least one input: the item id or some metadata")
        self.projection = keras.layers.Dense(output_dim, name="projection", dtype=self.dtype_policy)

    def _add(self, feature: str, dim: int) -> None:
        self.attribute_embeddings[feature] = keras.layers.Embedding(
            self.vocab_sizes[feature], dim, name=feature, dtype=self.dtype_policy
        )

    @property
    def input_features(self) -> list[str]:
        """The catalog features this encoder reads."""
        names = list(self.attribute_embeddings)
        return names + ([features.TITLE_TOKENS] if self.title_embedding is not None else [])

    def call(self, item_features: dict[str, Any]) -> Any:
        parts = [embedding(item_features[name]) for name, embedding in self.attribute_embeddings.items()]
        if self.title_embedding is not None:
            tokens = item_features[features.TITLE_TOKENS]
            mask = ops.expand_dims(ops.cast(tokens > 0, self.compute_dtype), -1)
            summed = ops.sum(self.title_embedding(tokens) * mask, axis=-2)
            # Mean over the real tokens; an item without a title gets the zero vector.
            parts.append(summed / ops.maximum(ops.sum(mask, axis=-2), 1.0))
        return dense_on_rows(self.projection, ops.concatenate(parts, axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_sizes": self.vocab_sizes,
            "category_levels": self.category_levels,
            **self.flags,
            **self.dims,
        }
