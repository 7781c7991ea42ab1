"""A session -> what similar *training* sessions clicked (A2D-MTL's inter-session representation).

A2D-MTL (Eq. 16-19) averages each session's item vectors, finds the R most similar
sessions by cosine, and adds their averages, weighted by a softmax over the similarities,
to the session vector. Its published code, like MSGAT's that it follows, takes the
neighbours from the other sessions of the same batch, so at test time a session reads
other *test* sessions, which may hold its target: those numbers fell by 20 points once
the test set was shuffled. Here the neighbours come only from an index of training
sessions (`model.neighbours.NeighbourIndex`), so a session's recommendations do not
depend on what else is in its batch. A training example must not find its own session
(which holds its target): its `session_keys` leave it out.

The search, a `[batch, sessions]` cosine matmul and a top-k (`top_k_by_blocks`), runs
without gradient; the chosen sessions' similarities are recomputed from their vectors,
which gives the same gradient (a top-k passes one only to what it chose) at a fraction of
the backward pass. In training, the index vectors come from the model's bank, refreshed
without gradient every few dozen steps (`SessionRecommender._neighbour_bank`), so the
gradient reaches the item encoder through the session's own items only.

Example:
    >>> layer = NeighbourSessions(neighbours=2)
    >>> prefix = keras.random.normal((3, 4, 8))
    >>> mask = keras.ops.convert_to_tensor([[True] * 4, [True, False, False, False], [True, True, False, False]])
    >>> tuple(layer(prefix, mask, keras.random.normal((10, 8))).shape)
    (3, 8)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from model.layers.sessions import masked_mean, unit_rows
from model.layers.top_k import TOP_K_BLOCK, top_k_by_blocks


@keras.saving.register_keras_serializable(package="session_recommender")
class NeighbourSessions(keras.layers.Layer):
    """A session's item vectors -> the similarity-weighted mean of its R nearest indexed sessions.

    No weights of its own: the item encoder that makes both sides is what training shapes.

    Args:
        neighbours: R, the indexed sessions each session reads.

    Call arguments:
        prefix_vectors: `[batch, length, width]`, the session's input item vectors.
        mask: `[batch, length]` bool, True at real items.
        index_vectors: `[sessions, width]`, each indexed session's mean item vector; more
            sessions than `neighbours`, so an excluded one is never needed.
        index_keys: optional `[sessions]` int, each indexed session's key (unique).
        session_keys: optional `[batch]` int, each row's own session key (in training), whose
            indexed session the row must not read; needs `index_keys`.

    Returns:
        `[batch, width]` in the dtype of `prefix_vectors`.
    """

    def __init__(self, neighbours: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        self.neighbours = neighbours
        self.built = True  # no weights: nothing to build

    def call(
        self, prefix_vectors: Any, mask: Any, index_vectors: Any, index_keys: Any = None, session_keys: Any = None
    ) -> Any:
        session = unit_rows(ops.cast(masked_mean(prefix_vectors, mask), "float32"))
        index_vectors = ops.cast(index_vectors, "float32")
        index_units = unit_rows(index_vectors)
        excluding = session_keys is not None
        # One more candidate than R where a row's own session may be among them (keys are unique).
        # Zero rows pad the index to whole blocks of the search, which leaves them out: padding
        # the `[batch, sessions]` similarities instead would copy them.
        sessions = int(index_units.shape[0])
        searched = ops.pad(index_units, [[0, -sessions % TOP_K_BLOCK], [0, 0]])
        similarity = ops.matmul(ops.stop_gradient(session), ops.stop_gradient(ops.transpose(searched)))
        _, top_sessions = top_k_by_blocks(similarity, self.neighbours + int(excluding), columns=sessions)
        top_similarity = ops.einsum("bw,brw->br", session, ops.take(index_units, top_sessions, axis=0))  # Eq. 17
        if excluding:
            own = ops.take(index_keys, top_sessions, axis=0) == ops.expand_dims(session_keys, 1)
            top_similarity = ops.where(own, ops.full_like(top_similarity, -2.0), top_similarity)  # below any cosine
            top_similarity, kept = ops.top_k(top_similarity, self.neighbours)
            top_sessions = ops.take_along_axis(top_sessions, kept, axis=1)
        weights = ops.softmax(top_similarity, axis=-1)  # Eq. 19
        chosen = ops.take(index_vectors, top_sessions, axis=0)  # [batch, R, width]
        inter = ops.sum(chosen * ops.expand_dims(weights, -1), axis=1)  # Eq. 18
        return ops.cast(inter, prefix_vectors.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "neighbours": self.neighbours}
