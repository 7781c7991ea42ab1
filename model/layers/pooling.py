"""Contextual item encodings of a session -> one session vector.

- `mean` is M2TRec's average pooling (Eq. 5).
- `last` takes the most recent item's contextual vector (SASRec).
- `attention` is SR-GNN/NARM-style: the last item queries all contextual items, and the
  weighted sum is fused with the last item, which keeps both the session's gist and its
  current intent.
- `core` is CORE's representation-consistent readout (Hou et al., SIGIR 2022) with
  GCE-GNN's position-aware soft attention: the session vector is a weighted sum of the
  session's *input* item vectors, the very vectors candidates are scored with, so it
  stays in the items' space and repeat clicks are easy to rank. The weights come from each
  item with its reversed position embedding (how far back it was clicked), queried by the
  last item's contextual vector.

`last` and `core` read the contextual vector of the last item only, so the session
encoder computes only that row in its last block (`TransformerBlock(last_only=True)`).

The attention weights of `attention` and `core` are a softmax, or an α-entmax (A2D-MTL's
sparse attention: an accidental click can get weight zero), with a fixed α or one learned
per session from the last item (`adaptive_entmax`, A2D-MTL's AdaSPA).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from model.config import POOLINGS as MODES
from model.config import READOUT_WEIGHTINGS as WEIGHTINGS
from model.layers.entmax import AdaptiveAlpha, entmax
from model.layers.sessions import dense_on_rows, gather_last, masked_mean

LAST_ONLY_MODES = ("last", "core")  # modes that read only the last item's contextual vector


@keras.saving.register_keras_serializable(package="session_recommender")
class SessionPooling(keras.layers.Layer):
    """A session's contextual item vectors -> one session vector (the readout).

    Args:
        mode: one of `MODES` (see the module's docstring).
        weighting: how `attention` and `core` normalize their weights, one of `WEIGHTINGS`.
        alpha: entmax's α in (1, 2] (`entmax`), or its initial value (`adaptive_entmax`).

    Call arguments: see `call`.

    Returns:
        `[batch, width]`.

    Example:
        >>> pool = SessionPooling("mean")
        >>> x = keras.ops.convert_to_tensor([[[1.0], [3.0], [100.0]]])
        >>> keras.ops.convert_to_numpy(pool(x, keras.ops.convert_to_tensor([[True, True, False]]))).tolist()
        [[2.0]]
        >>> core = SessionPooling("core")
        >>> items = keras.random.normal((2, 3, 4))
        >>> mask = keras.ops.convert_to_tensor([[True] * 3, [True, False, False]])
        >>> tuple(core(items[:, :1], mask, items=items).shape)
        (2, 4)
        >>> sparse = SessionPooling("core", weighting="adaptive_entmax")
        >>> tuple(sparse(items[:, :1], mask, items=items).shape)
        (2, 4)
    """

    def __init__(self, mode: str = "mean", weighting: str = "softmax", alpha: float = 1.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # It takes the padding mask as an argument; one Keras attached to `x` is consumed, not passed on.
        self.supports_masking = True
        if mode not in MODES:
            raise ValueError(f"pooling mode must be one of {MODES}, got {mode!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"pooling weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.mode, self.weighting, self.alpha = mode, weighting, alpha
        self.adaptive_alpha = AdaptiveAlpha(alpha, name="adaptive_alpha") if weighting == "adaptive_entmax" else None

    def build(self, x_shape: Any, mask_shape: Any = None, items_shape: Any = None, positions_shape: Any = None) -> None:
        width = x_shape[-1]
        if self.mode in ("attention", "core"):
            self.key_projection = keras.layers.Dense(width, use_bias=False, name="key")
            self.query_projection = keras.layers.Dense(width, name="query")
            self.score = keras.layers.Dense(1, use_bias=False, name="score")
            self.key_projection.build((None, None, width))
            self.query_projection.build((None, width))
            self.score.build((None, None, width))
            if self.adaptive_alpha is not None:
                self.adaptive_alpha.build((None, width))
        if self.mode == "attention":
            self.fusion = keras.layers.Dense(width, name="fusion")
            self.fusion.build((None, 2 * width))

    @property
    def last_only(self) -> bool:
        """Whether the mode reads only the last item's contextual vector."""
        return self.mode in LAST_ONLY_MODES

    def call(self, x: Any, mask: Any, items: Any | None = None, positions: Any | None = None) -> Any:
        """Pools a session.

        Args:
            x: `[batch, length, width]` contextual items, left-aligned; for `last_only`
                modes `[batch, 1, width]`, the last item's row alone.
            mask: `[batch, length]`, True for real items.
            items: `[batch, length, width]` input item vectors (`core` pools these).
            positions: `[batch, length, width]` position embeddings of the items (`core`), if any.
        """
        if self.mode == "mean":
            return masked_mean(x, mask)
        last = (x if self.last_only else gather_last(x, mask))[:, 0]
        if self.mode == "last":
            return last
        values = x if self.mode == "attention" else items
        keys = values if positions is None else values + positions
        hidden = ops.sigmoid(dense_on_rows(self.key_projection, keys) + ops.expand_dims(self.query_projection(last), 1))
        logits = ops.squeeze(dense_on_rows(self.score, hidden), -1)
        logits = ops.where(mask, logits, ops.full_like(logits, -1e9))
        attention = self._normalize(logits, last)
        summary = ops.sum(values * ops.expand_dims(attention, -1), axis=1)
        if self.mode == "core":
            return summary
        return self.fusion(ops.concatenate([summary, last], axis=-1))

    def _normalize(self, logits: Any, last: Any) -> Any:
        """Attention logits `[batch, length]` -> weights summing to one, by `weighting`."""
        if self.weighting == "softmax":
            return ops.softmax(logits, axis=-1)
        alpha = self.alpha if self.adaptive_alpha is None else self.adaptive_alpha(last)
        return entmax(logits, alpha)

    def compute_mask(self, *args: Any, **kwargs: Any) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "weighting": self.weighting, "alpha": self.alpha}
