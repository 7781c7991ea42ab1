"""Small Keras 3 layers, one job each, written in `keras.ops` so any backend runs them."""

from model.layers.category_channel import CategoryChannel, CategoryGraphAttention
from model.layers.entmax import AdaptiveAlpha, entmax
from model.layers.heads import CategoryHeads, HierarchicalFusion, RepeatBonus, session_items
from model.layers.item_encoder import ItemEncoder
from model.layers.neighbours import NeighbourSessions
from model.layers.pooling import SessionPooling
from model.layers.session_encoder import SessionEncoder
from model.layers.top_k import top_k_by_blocks
from model.layers.transformer import TransformerBlock

__all__ = [
    "AdaptiveAlpha",
    "CategoryChannel",
    "CategoryGraphAttention",
    "CategoryHeads",
    "HierarchicalFusion",
    "ItemEncoder",
    "NeighbourSessions",
    "RepeatBonus",
    "SessionEncoder",
    "SessionPooling",
    "TransformerBlock",
    "entmax",
    "session_items",
    "top_k_by_blocks",
]
