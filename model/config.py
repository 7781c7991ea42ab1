"""The model layer's configs, light to import (no TensorFlow): the model family's knobs
(`ModelConfig`; each named variant of the papers is a preset of them), the Transform's
(`PreprocessingConfig`), the Evaluator's (`EvaluationConfig`), and the Trainer's pair of
them (`TrainingSetup`).

Variants differ by config alone (no copied model code), named as in M2TRec's Table 3:

| variant    | item encoder inputs             | heads                        |
|------------|---------------------------------|------------------------------|
| TRec_id    | item id                         | next item                    |
| MuTRec_id  | item id                         | next item + category levels  |
| TRec_title | title                           | next item                    |
| MeTRec     | title, categories, brand, price | next item                    |
| M2TRec     | title, categories, brand, price | next item + category levels  |
| M2TRec_hybrid | id + all metadata            | next item + category levels  |
| HierSRec   | id + all metadata               | category levels feed the item head |
| A2D-MTL    | id + all metadata               | next item + category levels; the session also reads its categories over the training sessions' category graph, an adaptive sparse readout and its nearest training sessions |

A2D-MTL's ablations (its Table 3) are presets too: `A2D-MTL_wo_CATE` (item ids only),
`A2D-MTL_wo_EXP` (categories only inside item vectors: no category channel), `A2D-MTL_wo_SPA`
(a softmax readout), `A2D-MTL_wo_AdaSPA` (entmax with a fixed α).

Two baselines from outside the family are presets too, so they share the input pipeline,
the training loop and the item head (benchmarks/compare.py ranks them beside the family):

| baseline | item encoder | session encoder                                      |
|----------|--------------|------------------------------------------------------|
| GRU4Rec  | item id      | GRU, last state (Hidasi et al.)                      |
| SASRec   | item id      | causal Transformer, last position (Kang and McAuley) |

Any variant becomes hybrid with `use_item_id=True` (ID-only is the same encoder with the
metadata switched off).

Example:
    >>> config = ModelConfig.preset("M2TRec", num_layers=1)
    >>> config.use_item_id, config.use_title, config.category_loss_weight > 0, config.num_layers
    (False, True, True, 1)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import contract
from contract.config import check_fields, from_fields
from contract.model_api import MODEL_CONFIG, PREPROCESSING_CONFIG

_ID_ONLY = dict(use_item_id=True, use_title=False, use_categories=False, use_brand=False, use_price=False)
_A2D_MTL = dict(
    use_item_id=True,
    id_dropout=0.1,
    category_loss_weight=0.25,
    category_channel=True,
    category_graph=True,
    readout_weighting="adaptive_entmax",
    # The 5,000 most recent training sessions: on Diginetica at 3 epochs, validation 55.31 / 19.25
    # against 55.36 / 19.19 with 20,000, and the search costs ~18 ms less a step (README).
    neighbour_sessions=5000,
    neighbours=10,
)
VARIANTS: dict[str, dict[str, Any]] = {
    "TRec_id": dict(_ID_ONLY, category_loss_weight=0.0),
    "MuTRec_id": dict(_ID_ONLY),
    "TRec_title": dict(
        use_item_id=False,
        use_title=True,
        use_categories=False,
        use_brand=False,
        use_price=False,
        category_loss_weight=0.0,
    ),
    "MeTRec": dict(use_item_id=False, category_loss_weight=0.0),
    "M2TRec": dict(use_item_id=False),
    # M2TRec plus an item-id embedding: where metadata is thin (Diginetica: category only).
    # A quarter of its training candidates use the OOV id, so the metadata path learns to carry
    # items it never saw clicked (Beauty held-out P@20: 0.00 without, 3.56 at 0.1, 6.36 at
    # 0.25, M2TRec 4.33; Diginetica validation 56.69 / 19.50 at 0.1, 56.63 / 19.61 at 0.25).
    "M2TRec_hybrid": dict(use_item_id=True, id_dropout=0.25),
    "HierSRec": dict(use_item_id=True, hierarchical=True),
    # A2D-MTL (Sec. 3) on the hybrid's item encoder, with its category loss weight (λ = 0.25,
    # its Fig. 3). Its neighbours come from the most recent training sessions only.
    "A2D-MTL": _A2D_MTL,
    "A2D-MTL_wo_CATE": dict(
        _A2D_MTL, **_ID_ONLY, id_dropout=0.0, category_loss_weight=0.0, category_channel=False, category_graph=False
    ),
    "A2D-MTL_wo_EXP": dict(_A2D_MTL, category_channel=False, category_graph=False),
    "A2D-MTL_wo_SPA": dict(_A2D_MTL, readout_weighting="softmax"),
    "A2D-MTL_wo_AdaSPA": dict(_A2D_MTL, readout_weighting="entmax"),
    # Baselines, not members of the family: id-only, next item only, another session encoder,
    # no repeat bonus (as published).
    "GRU4Rec": dict(_ID_ONLY, category_loss_weight=0.0, session_encoder="gru", pooling="last", repeat_bonus=0.0),
    "SASRec": dict(_ID_ONLY, category_loss_weight=0.0, causal=True, pooling="last", repeat_bonus=0.0),
}
BASELINES = ("GRU4Rec", "SASRec")
# What a config recorded before these fields existed trained with (the behaviour each kept
# selectable), so an earlier run's settings compare with today's.
BEFORE_FIELDS: dict[str, Any] = {"lazy_adam": False, "epoch_decay": 1.0}
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
SESSION_ENCODERS = ("transformer", "gru")
POOLINGS = ("mean", "last", "attention", "core")  # layers.SessionPooling's modes
READOUT_WEIGHTINGS = ("softmax", "entmax", "adaptive_entmax")  # how `attention` and `core` weigh items


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Every knob of the family. The defaults are the settings chosen on Diginetica's validation
    split (benchmarks/results/ablation_diginetica.md); the papers' own choices stay options:
    M2TRec's mean pooling is `pooling="mean"`, its full softmax `softmax="full"`.
    """

    variant: str = "M2TRec"

    # Item encoder (M2TRec Eq. 2-4): one embedding per enabled attribute, concatenated, projected.
    use_item_id: bool = False
    use_title: bool = True
    use_categories: bool = True
    use_brand: bool = True
    use_price: bool = True
    id_dim: int = 64
    title_dim: int = 64
    category_dim: int = 32
    brand_dim: int = 16
    price_dim: int = 8
    item_dim: int = 64

    # Session encoder (M2TRec Eq. 5): "transformer", or "gru" (GRU4Rec); `causal` attention
    # lets each position see only earlier items (SASRec).
    session_encoder: str = "transformer"
    causal: bool = False
    num_layers: int = 1
    num_heads: int = 2
    ff_dim: int = 128
    dropout: float = 0.2
    max_prefix_length: int = 50
    # "mean" (M2TRec), "last", "attention" (the last item queries the contextual items), or
    # "core" (a weighted sum of the input item vectors: CORE + GCE-GNN's position-aware attention).
    pooling: str = "core"
    # The readout's attention weights (`attention`, `core`): "softmax", or A2D-MTL's sparse
    # attention, an α-entmax whose small weights are exactly zero, with α = `entmax_alpha`
    # ("entmax") or learned per session starting there ("adaptive_entmax").
    readout_weighting: str = "softmax"
    entmax_alpha: float = 1.5
    # A2D-MTL's inter-session representation: the session vector gains the similarity-weighted
    # mean of its `neighbours` most similar sessions among the `neighbour_sessions` most recent
    # training sessions (an index built by the Trainer, exported with the model); 0: off.
    neighbour_sessions: int = 0
    neighbours: int = 10
    # Training reads the index sessions' mean vectors from a bank without gradient, refreshed
    # from the item encoder every this many steps (4% of a Diginetica epoch), instead of
    # encoding the whole catalog forward and backward at every step: A2D-MTL's step 162 ->
    # 108 ms on Diginetica (README).
    neighbour_refresh_steps: int = 50
    # A2D-MTL's category channel: a GRU reads the session's leaf categories and adds its
    # vector to the session's (layers.CategoryChannel); with `category_graph`, each category's
    # embedding is fused with a graph attention over the training sessions' category transitions.
    category_channel: bool = False
    category_graph: bool = False

    # Heads and loss (M2TRec Eq. 6-7): loss = item + category_loss_weight * sum over levels.
    category_loss_weight: float = 0.3
    hierarchical: bool = False  # HierSRec: category probabilities feed the item head
    item_id_head: bool = False  # an extra fully connected head over item ids, as in the paper
    item_id_head_loss_weight: float = 0.5
    # "full": softmax over the catalog; "sampled": over the target and `num_sampled` negatives
    # shared by the batch, log-Q corrected (model.SessionRecommender._sampled_item_loss), or
    # the full softmax where the catalog is no larger than the sample.
    softmax: str = "sampled"
    num_sampled: int = 4096
    # Item logits are session . item / temperature; with cosine_scores both are L2-normalized
    # first (NISER), which keeps popular items' large vectors from dominating.
    cosine_scores: bool = True
    temperature: float = 0.08
    # Items of the session's own prefix get this bonus on their logits (layers.RepeatBonus);
    # None: chosen on validation after training (model.model.REPEAT_BONUS_GRID); 0: none.
    repeat_bonus: float | None = None
    # Regularization: dropout on the candidates' item vectors in training (CORE); share of
    # catalog rows that train with the OOV id, so the hybrid's metadata path carries unseen
    # items; label smoothing of the item loss.
    item_dropout: float = 0.0
    id_dropout: float = 0.0
    label_smoothing: float = 0.0

    # Training.
    batch_size: int = 512
    # Training batches hold prefixes that pad to one width (model.inputs.session_dataset), so a
    # batch pads to its own sessions' length, not to the longest of 512 random ones: 1.8x a
    # Diginetica step, 1.6x a Beauty epoch, at equal validation (README).
    length_grouped_batches: bool = True
    # A cap: early stopping ends a run first (below). Diginetica's M2TRec_hybrid stopped after
    # 5 passes (55.07 / 19.37 on test, 7.4 minutes on a 2-core AVX512 machine); 8 and 12
    # passes scored no better (README, issue 13).
    epochs: int = 12
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    # Adam updates only the embedding rows a step's gradient touches (model.optimizers.LazyAdam),
    # not the whole catalog's table and moments; False: Keras' dense Adam. Diginetica's hybrid
    # scored 54.94 / 19.45 with it against 54.89 / 19.42 (validation 56.81 against 56.63).
    lazy_adam: bool = True
    # Polyak averaging: validation, early stopping, checkpoints and the export see an
    # exponential moving average of the weights with this momentum (0.999 averages about
    # the last 1,000 steps), not the last step's weights; 0: off.
    weight_average: float = 0.0
    # The learning rate rises linearly over `warmup_steps` (within the first epoch), and each
    # epoch after the first trains at `epoch_decay` times the last one's rate (1: constant; at
    # 0.5 Diginetica's hybrid learned slower: validation 55.45 after 4 epochs against 55.64,
    # README). An epoch whose validation HIT@20 gains at most `plateau_min_delta` (a fraction:
    # 0.001 is 0.1 point) on the last epoch that gained more is a plateau: the learning rate is
    # multiplied by `plateau_decay` after each (1: never), and training stops after
    # `early_stopping_patience` of them in a row, though not before `min_epochs`, keeping the
    # best epoch's weights (trainer.StopOnPlateau).
    # A threshold, because on Diginetica gains of hundredths of a point went on for twelve
    # epochs and bought nothing on test; so did the epochs after a cut (README, issue 13).
    warmup_steps: int = 0
    epoch_decay: float = 1.0
    plateau_decay: float = 0.3
    plateau_min_delta: float = 0.001
    early_stopping_patience: int = 1
    min_epochs: int = 3
    # "auto": mixed float16 on a GPU, float32 on a CPU (model.trainer.resolve_precision says
    # why not bfloat16); or "float32", "mixed_bfloat16", "mixed_float16" (a Keras dtype policy).
    precision: str = "auto"
    # HIT@20 / MRR@20 over the whole catalog at every training step (costs a catalog-wide
    # scoring and ranking per step); validation always reports them.
    train_rank_metrics: bool = False

    # Serving.
    top_k: int = 20
    top_categories: int = 3
    # The recommend_in_top_categories signature (models with category heads): it scores only
    # the items of the session's N most likely leaf categories (HierSRec); 0: not exported.
    candidate_categories: int = 0

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.readout_weighting not in READOUT_WEIGHTINGS:
            raise ValueError(f"readout_weighting must be one of {READOUT_WEIGHTINGS}, got {self.readout_weighting!r}")
        if self.readout_weighting != "softmax" and self.pooling not in ("attention", "core"):
            raise ValueError(f"readout_weighting {self.readout_weighting!r} weighs the attention or core readout")
        if self.neighbour_sessions < 0 or self.neighbours < 1 or self.neighbour_refresh_steps < 1:
            raise ValueError("neighbour_sessions must be >= 0, neighbours and neighbour_refresh_steps >= 1")
        if self.neighbour_sessions and self.neighbour_sessions <= self.neighbours:
            raise ValueError(f"the index ({self.neighbour_sessions} sessions) must hold more than {self.neighbours}")
        if self.category_graph and not self.category_channel:
            raise ValueError("category_graph feeds the category channel: set category_channel=True")
        if not 1.0 < self.entmax_alpha <= 2.0:
            raise ValueError(f"entmax_alpha must be in (1, 2], got {self.entmax_alpha}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("plateau_decay", "epoch_decay"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.plateau_min_delta < 0 or self.early_stopping_patience < 1 or self.min_epochs < 1:
            raise ValueError("plateau_min_delta must be >= 0, early_stopping_patience and min_epochs >= 1")
        for name in ("dropout", "item_dropout", "id_dropout", "label_smoothing", "weight_average"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.session_encoder not in SESSION_ENCODERS:
            raise ValueError(f"session_encoder must be one of {SESSION_ENCODERS}, got {self.session_encoder!r}")
        if self.causal and self.session_encoder != "transformer":
            raise ValueError("causal attention needs session_encoder='transformer'")
        if self.softmax not in ("full", "sampled"):
            raise ValueError(f"softmax must be full or sampled, got {self.softmax!r}")
        uses_metadata = self.use_title or self.use_categories or self.use_brand or self.use_price
        if not (self.use_item_id or uses_metadata):
            raise ValueError("the item encoder needs at least one input (id or metadata)")
        if self.id_dropout and not (self.use_item_id and uses_metadata):
            raise ValueError("id_dropout needs item ids and metadata to carry an item without its id")
        if self.item_dim % self.num_heads:
            raise ValueError("item_dim must be divisible by num_heads")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if self.repeat_bonus is not None and self.repeat_bonus < 0:
            raise ValueError(
                f"repeat_bonus must be >= 0 (0: none; None: chosen on validation), got {self.repeat_bonus}"
            )
        if self.hierarchical and self.category_loss_weight <= 0:
            raise ValueError("hierarchical (HierSRec) needs the category heads: category_loss_weight > 0")

    @property
    def uses_category_heads(self) -> bool:
        return self.category_loss_weight > 0

    @classmethod
    def preset(cls, variant: str, **overrides: Any) -> ModelConfig:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
        return cls(**{"variant": variant, **VARIANTS[variant], **overrides})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> ModelConfig:
        """A preset (by `variant`) with the other fields as overrides; an unknown key is an error."""
        check_fields(cls, fields)
        overrides = dict(fields)
        return cls.preset(overrides.pop("variant", "M2TRec"), **overrides)


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """The Transform's knobs, passed as the component's `custom_config`."""

    category_levels: int = 3
    title_vocab_size: int = 20000
    title_min_count: int = 2
    # Titles keep their first words: the item encoder pads every title to the longest, and
    # a few 100-word titles (ingredient lists) made Beauty's median 10-word title cost 139.
    title_max_tokens: int = 32
    price_buckets: int = 10
    # Items with fewer train clicks than this share the OOV item index (cold start).
    min_item_clicks: int = 1

    def __post_init__(self) -> None:
        if self.category_levels < 1:
            raise ValueError("category_levels must be >= 1")
        if self.title_vocab_size < 1 or self.title_max_tokens < 1:
            raise ValueError("title_vocab_size and title_max_tokens must be >= 1")
        if self.price_buckets < 1:
            raise ValueError("price_buckets must be >= 1")
        if self.title_min_count < 0 or self.min_item_clicks < 0:
            raise ValueError("title_min_count and min_item_clicks must be >= 0")

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any] | None) -> PreprocessingConfig:
        """The config from a dict (None: the defaults); an unknown key is an error."""
        return from_fields(cls, fields)


KS = (5, 10, 20)


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """What the Evaluator measures and when it blesses a model."""

    ks: tuple[int, ...] = KS
    # Absolute floors on the overall slice (fractions, not percent).
    min_hit_at_20: float = 0.05
    min_mrr_at_20: float = 0.01
    # The candidate may be at most this much worse than the last blessed model (absolute).
    max_regression: float = 0.0
    split: str = contract.TEST


@dataclasses.dataclass(frozen=True)
class TrainingSetup:
    model: ModelConfig
    preprocessing: PreprocessingConfig

    def to_custom_config(self) -> dict[str, Any]:
        """The inverse of `from_custom_config` (JSON-ready)."""
        return {
            MODEL_CONFIG: dataclasses.asdict(self.model),
            PREPROCESSING_CONFIG: dataclasses.asdict(self.preprocessing),
        }

    @classmethod
    def from_custom_config(cls, custom_config: dict[str, Any] | None) -> TrainingSetup:
        custom_config = custom_config or {}
        return cls(
            ModelConfig.from_dict(custom_config.get(MODEL_CONFIG, {})),
            PreprocessingConfig.from_dict(custom_config.get(PREPROCESSING_CONFIG)),
        )
