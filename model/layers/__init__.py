"""Small Keras 3 layers, one job each, written in `keras.ops` so any backend runs them."""

from model.layers.heads import CategoryHeads, HierarchicalFusion, RepeatBonus, session_items
from model.layers.item_encoder import ItemEncoder
from model.layers.pooling import SessionPooling
from model.layers.session_encoder import SessionEncoder
from model.layers.transformer import TransformerBlock

__all__ = [
    "CategoryHeads",
    "HierarchicalFusion",
    "ItemEncoder",
    "RepeatBonus",
    "SessionEncoder",
    "SessionPooling",
    "TransformerBlock",
    "session_items",
]
