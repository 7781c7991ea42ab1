"""The embedded default data set: a deterministic synthetic e-commerce click log.

Why: the pipeline, its tests and the demo must run anywhere, offline, in minutes, so the
repo ships a small data set (`data/default/`, well under 5 MB) with the structure that
matters to a session recommender: a 3-4 level category tree, brands and titles whose words
carry category signal, log-normal prices, Zipf-like popularity (a head and a long tail),
sessions that stay in a category, items released over time (cold-start items in the last
week), an optional `event_type` column, and a few bad rows of every kind the ExampleGen
must drop and count. It is synthetic: no real users or products.

Everything is drawn from `numpy.random.default_rng(seed)`; nothing reads the clock, and
the gzip headers carry mtime 0, so the same arguments give the same bytes.

Regenerate the shipped files:

    python -m components.readers.synthetic --out data/default
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

import numpy as np

from components.session_example_gen.sessionize import Reason
from contract import (
    BRAND,
    CATEGORY_PATH,
    EVENT_TYPE,
    ITEM_ID,
    PRICE,
    SESSION_ID,
    TIMESTAMP,
    TITLE,
    join_category_path,
)

# --- Knobs -------------------------------------------------------------------------------
DEFAULT_SEED = 20240301
DEFAULT_N_ITEMS = 2500
DEFAULT_N_SESSIONS = 12000
DEFAULT_DAYS = 60
START_EPOCH_S = 1709251200  # 2024-03-01T00:00:00Z
SECONDS_PER_DAY = 86400

ITEM_ID_BASE = 100000  # item ids are 6-digit strings, increasing with release day
UNKNOWN_ITEM_ID_BASE = 900000  # ids of deleted items, never in the catalog
MIN_ITEMS_PER_LEAF = 6
MAX_DRAWS = 50  # popularity draws before falling back to a group's head item
LEAF_SIZE_SIGMA = 0.5  # spread of the number of items per leaf (log-normal)
LEAF_ZIPF_EXPONENT = 0.6  # popularity across leaves
ITEM_ZIPF_EXPONENT = 1.0  # popularity within a leaf
PRICE_SIGMA = 0.35  # log-normal spread around the leaf's median price
EMPTY_BRAND_RATE = 0.02  # unbranded items: the contract allows empty cells
DEPARTMENT_BRAND_SHARE = 0.5  # of items in a department with its own brands
GENERIC_BRAND_SHARE = 0.15  # cross-category brands, so a brand is not a category label
ATTRIBUTE_RATE = 0.7  # chance a title names a value from each attribute pool

RELEASED_BEFORE_START_SHARE = 0.75  # release day 0: the catalog as the log opens
COLD_START_SHARE = 0.05  # released in the last COLD_START_DAYS days
COLD_START_DAYS = 7
NEW_ARRIVAL_DAYS = 14  # how long a release counts as a "new arrival"

SESSION_LENGTH_LOG_MEAN = 1.3  # log-normal lengths: median ~3.7, mean ~5, a heavy tail
SESSION_LENGTH_LOG_SIGMA = 0.8
MAX_SESSION_LENGTH = 120
GAP_LOG_MEDIAN_S = 35.0  # seconds between clicks: log-normal, seconds to minutes
GAP_LOG_SIGMA = 1.0
MAX_GAP_S = 1800
# Next-click transitions; the rest of the probability mass jumps anywhere.
P_REPEAT = 0.05  # the same item again (reload, back button)
P_SAME_LEAF = 0.45
P_SAME_L2 = 0.20
P_NEW_ARRIVAL = 0.08  # a jump (or a first click) lands on a recent release
P_CART = 0.06  # event_type `cart`, else `view`
EVENT_VIEW = "view"
EVENT_CART = "cart"
# Relative sessions started per UTC hour: quiet nights, a lunch bump, an evening peak.
HOURLY_TRAFFIC = (3, 2, 1, 1, 1, 2, 3, 5, 6, 6, 7, 8, 9, 8, 7, 7, 7, 8, 9, 11, 12, 11, 8, 5)

# --- Bad rows --------------------------------------------------------------------------------
BAD_CLICK_ROW_RATE = 0.002  # of clean clicks, in total, split evenly across the reasons
# The reasons are the ExampleGen's own names (one source of truth); one defect per bad row:
# malformed_row is a stray comma in the item id, unparsable_item_id an id with whitespace,
# unknown_item a well-formed id not in the catalog, duplicate_click a copy of the line before.
MALFORMED_ROW = Reason.MALFORMED_ROW
MISSING_ITEM_ID = Reason.MISSING_ITEM_ID
MISSING_TIMESTAMP = Reason.MISSING_TIMESTAMP
UNPARSABLE_TIMESTAMP = Reason.UNPARSABLE_TIMESTAMP
UNPARSABLE_ITEM_ID = Reason.UNPARSABLE_ITEM_ID
UNKNOWN_ITEM = Reason.UNKNOWN_ITEM
DUPLICATE_CLICK = Reason.DUPLICATE_CLICK
BAD_CLICK_REASONS = (
    MALFORMED_ROW,
    MISSING_ITEM_ID,
    MISSING_TIMESTAMP,
    UNPARSABLE_TIMESTAMP,
    UNPARSABLE_ITEM_ID,
    UNKNOWN_ITEM,
    DUPLICATE_CLICK,
)
UNPARSABLE_TIMESTAMP_VALUE = "yesterday"
CATALOG_KEY = "catalog"
CATALOG_DUPLICATE_ITEM = Reason.CATALOG_DUPLICATE_ITEM  # a re-listing appended at the end
CATALOG_UNPARSABLE_PRICE = Reason.CATALOG_UNPARSABLE_PRICE
CATALOG_BAD_ROWS_PER_REASON = 2
UNPARSABLE_PRICE_VALUE = "n/a"

CLICK_COLUMNS = (SESSION_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE)
CATALOG_COLUMNS = (ITEM_ID, TITLE, CATEGORY_PATH, BRAND, PRICE)
CLICKS_FILE = "clicks.csv.gz"
CATALOG_FILE = "catalog.csv.gz"
INJECTED_FILE = "injected_bad_rows.json"


# --- The category tree -----------------------------------------------------------------------
@dataclass(frozen=True)
class Leaf:
    """A category path's last level."""

    noun: str  # the title's product word
    median_price: float


# A subtree maps names to a Leaf (the path ends here) or to a deeper subtree.
Subtree = dict[str, Union[Leaf, "Subtree"]]


@dataclass(frozen=True)
class Department:
    """An L2 node: its subtree, title attributes, and brands sold only here."""

    children: Subtree
    attributes: tuple[tuple[str, ...], ...]
    brands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Division:
    """An L1 node: title adjectives, its brands, and its departments."""

    adjectives: tuple[str, ...]
    brands: tuple[str, ...]
    departments: dict[str, Department]


COLOURS = ("Black", "White", "Grey", "Navy", "Red", "Green", "Beige")
GENERIC_BRANDS = ("Everyday Basics", "Amberline", "Northstar", "Prima")

TREE: dict[str, Division] = {
    "Home": Division(
        adjectives=("Classic", "Modern", "Premium", "Essential", "Compact", "Deluxe"),
        brands=("Hearthstone", "Casa Verde", "Nordhaus", "Willow & Oak", "Homecraft"),
        departments={
            "Kitchen": Department(
                children={
                    "Cookware": {
                        "Frying Pans": Leaf("Frying Pan", 35),
                        "Saucepans": Leaf("Saucepan", 30),
                    },
                    "Cutlery": {
                        "Chef Knives": Leaf("Chef Knife", 45),
                        "Knife Sets": Leaf("Knife Set", 90),
                    },
                    "Small Appliances": {
                        "Kettles": Leaf("Electric Kettle", 40),
                        "Toasters": Leaf("Toaster", 45),
                        "Blenders": Leaf("Blender", 70),
                        "Coffee Makers": Leaf("Coffee Maker", 85),
                    },
                },
                attributes=(("Stainless Steel", "Ceramic", "Aluminium", "Enamel"), COLOURS),
                brands=("Ferro", "ChefLine"),
            ),
            "Bedding": Department(
                children={
                    "Duvets": Leaf("Duvet", 80),
                    "Pillows": Leaf("Pillow", 25),
                    "Bed Sheets": Leaf("Sheet Set", 40),
                },
                attributes=(("Single", "Double", "King"), ("Cotton", "Linen", "Bamboo")),
                brands=("Dreamwell",),
            ),
            "Bath": Department(
                children={
                    "Towels": Leaf("Bath Towel", 20),
                    "Bath Mats": Leaf("Bath Mat", 15),
                },
                attributes=(("White", "Grey", "Navy", "Sage"), ("Cotton", "Bamboo")),
            ),
            "Lighting": Department(
                children={
                    "Table Lamps": Leaf("Table Lamp", 45),
                    "Floor Lamps": Leaf("Floor Lamp", 80),
                    "LED Bulbs": Leaf("LED Bulb", 8),
                },
                attributes=(("Warm White", "Daylight", "Dimmable"), ("Brass", "Black", "White")),
                brands=("Lumen & Co",),
            ),
            "Furniture": Department(
                children={
                    "Office Chairs": Leaf("Office Chair", 150),
                    "Bookcases": Leaf("Bookcase", 120),
                },
                attributes=(("Oak", "Walnut", "White", "Black"), ("Small", "Medium", "Large")),
            ),
        },
    ),
    "Electronics": Division(
        adjectives=("Wireless", "Smart", "Pro", "Ultra", "Portable", "Compact"),
        brands=("Voltra", "Nexon", "Kestrel", "Zentek"),
        departments={
            "Audio": Department(
                children={
                    "Headphones": {
                        "Over-Ear Headphones": Leaf("Over-Ear Headphones", 120),
                        "Earbuds": Leaf("Wireless Earbuds", 80),
                    },
                    "Speakers": {
                        "Bluetooth Speakers": Leaf("Bluetooth Speaker", 60),
                        "Soundbars": Leaf("Soundbar", 200),
                    },
                },
                attributes=(
                    ("Black", "White", "Silver"),
                    ("Noise Cancelling", "Bass Boost", "Hi-Res"),
                ),
                brands=("Sonique", "BassLab"),
            ),
            "Computers": Department(
                children={
                    "Laptops": Leaf("Laptop", 900),
                    "Monitors": Leaf("Monitor", 250),
                    "Accessories": {
                        "Keyboards": Leaf("Keyboard", 50),
                        "Mice": Leaf("Mouse", 30),
                        "Laptop Bags": Leaf("Laptop Bag", 40),
                    },
                },
                attributes=(
                    ("Black", "Silver", "Space Grey"),
                    ("Slim", "Ergonomic", "2024 Edition"),
                ),
            ),
            "Phones": Department(
                children={
                    "Smartphones": Leaf("Smartphone", 500),
                    "Phone Cases": Leaf("Phone Case", 15),
                    "Chargers": Leaf("USB-C Charger", 20),
                },
                attributes=(("Black", "Blue", "Clear", "Rose"), ("Slim", "Rugged", "Fast Charge")),
            ),
            "Cameras": Department(
                children={
                    "Digital Cameras": Leaf("Digital Camera", 600),
                    "Lenses": Leaf("Camera Lens", 400),
                    "Tripods": Leaf("Tripod", 60),
                },
                attributes=(("Black", "Silver"), ("4K", "24 MP", "Weather Sealed")),
                brands=("Optika",),
            ),
            "TV & Video": Department(
                children={
                    "Televisions": Leaf("Television", 700),
                    "Streaming Devices": Leaf("Streaming Stick", 50),
                },
                attributes=(("43-inch", "55-inch", "65-inch"), ("4K", "HDR", "OLED", "Full HD")),
            ),
        },
    ),
    "Clothing": Division(
        adjectives=("Classic", "Slim Fit", "Relaxed", "Everyday", "Organic", "Vintage"),
        brands=("Thread & Co", "Northline", "Urbano", "Maple Street", "Loom"),
        departments={
            "Women": Department(
                children={
                    "Tops": {
                        "T-Shirts": Leaf("Women's T-Shirt", 18),
                        "Blouses": Leaf("Blouse", 35),
                    },
                    "Bottoms": {
                        "Jeans": Leaf("Women's Jeans", 50),
                        "Skirts": Leaf("Skirt", 35),
                    },
                    "Dresses": Leaf("Dress", 60),
                    "Coats": Leaf("Women's Coat", 120),
                },
                attributes=(("XS", "S", "M", "L", "XL"), COLOURS),
            ),
            "Men": Department(
                children={
                    "Shirts": Leaf("Men's Shirt", 35),
                    "Jeans": Leaf("Men's Jeans", 50),
                    "Jackets": Leaf("Men's Jacket", 100),
                },
                attributes=(("S", "M", "L", "XL", "XXL"), COLOURS),
            ),
            "Shoes": Department(
                children={
                    "Running Shoes": Leaf("Running Shoe", 90),
                    "Boots": Leaf("Boot", 110),
                    "Sandals": Leaf("Sandal", 40),
                },
                attributes=(
                    ("UK 6", "UK 7", "UK 8", "UK 9", "UK 10"),
                    ("Black", "White", "Tan", "Grey"),
                ),
                brands=("Stride", "Trailhead"),
            ),
            "Accessories": Department(
                children={
                    "Hats": Leaf("Hat", 20),
                    "Scarves": Leaf("Scarf", 25),
                },
                attributes=(("Leather", "Wool", "Cotton", "Canvas"), COLOURS),
            ),
        },
    ),
    "Sports & Outdoors": Division(
        adjectives=("Lightweight", "Pro", "Trail", "Performance", "Durable", "Compact"),
        brands=("Summit", "Peakform", "Ridgeway", "Aquila"),
        departments={
            "Camping": Department(
                children={
                    "Tents": Leaf("Tent", 150),
                    "Sleeping Bags": Leaf("Sleeping Bag", 70),
                    "Camping Stoves": Leaf("Camping Stove", 45),
                },
                attributes=(("Green", "Orange", "Grey"), ("Ultralight", "3-Season", "Waterproof")),
                brands=("Basecamp",),
            ),
            "Fitness": Department(
                children={
                    "Yoga": {
                        "Yoga Mats": Leaf("Yoga Mat", 30),
                        "Yoga Blocks": Leaf("Yoga Block", 12),
                    },
                    "Strength": {
                        "Dumbbells": Leaf("Dumbbell Set", 60),
                        "Resistance Bands": Leaf("Resistance Band", 15),
                    },
                    "Jump Ropes": Leaf("Jump Rope", 12),
                },
                attributes=(
                    ("Purple", "Black", "Blue", "Teal"),
                    ("Non-Slip", "Adjustable", "Set of 2"),
                ),
            ),
            "Cycling": Department(
                children={
                    "Bike Helmets": Leaf("Bike Helmet", 60),
                    "Bike Lights": Leaf("Bike Light", 25),
                    "Bike Locks": Leaf("Bike Lock", 35),
                },
                attributes=(
                    ("Black", "Hi-Vis Yellow", "White"),
                    ("Rechargeable", "Aero", "Anti-Theft"),
                ),
                brands=("Velo",),
            ),
            "Water Sports": Department(
                children={
                    "Swim Goggles": Leaf("Swim Goggles", 18),
                    "Snorkel Sets": Leaf("Snorkel Set", 40),
                },
                attributes=(("S", "M", "L"), ("Anti-Fog", "Black", "Blue")),
            ),
        },
    ),
    "Beauty": Division(
        adjectives=("Hydrating", "Gentle", "Natural", "Radiant", "Daily", "Nourishing"),
        brands=("Lumiere", "Verdana Botanics", "Pure Bloom", "Glow Lab"),
        departments={
            "Skin Care": Department(
                children={
                    "Moisturisers": Leaf("Moisturiser", 25),
                    "Cleansers": Leaf("Cleanser", 15),
                    "Serums": Leaf("Serum", 35),
                },
                attributes=(
                    ("30 ml", "50 ml", "100 ml"),
                    ("Fragrance-Free", "SPF 30", "Vitamin C"),
                ),
            ),
            "Hair Care": Department(
                children={
                    "Shampoos": Leaf("Shampoo", 10),
                    "Hair Dryers": Leaf("Hair Dryer", 60),
                },
                attributes=(("250 ml", "400 ml"), ("Argan Oil", "Keratin", "Ionic")),
            ),
            "Makeup": Department(
                children={
                    "Face": {
                        "Foundations": Leaf("Foundation", 30),
                        "Concealers": Leaf("Concealer", 20),
                    },
                    "Eyes": {
                        "Mascaras": Leaf("Mascara", 18),
                        "Eyeliners": Leaf("Eyeliner", 12),
                    },
                    "Lips": {
                        "Lipsticks": Leaf("Lipstick", 20),
                        "Lip Glosses": Leaf("Lip Gloss", 15),
                    },
                },
                attributes=(
                    ("Matte", "Satin", "Waterproof", "Long-Wear"),
                    ("Nude", "Berry", "Coral", "Black"),
                ),
                brands=("Rouge Atelier",),
            ),
            "Fragrance": Department(
                children={
                    "Perfumes": Leaf("Eau de Parfum", 70),
                    "Colognes": Leaf("Cologne", 55),
                },
                attributes=(("30 ml", "50 ml", "100 ml"), ("Floral", "Woody", "Citrus")),
            ),
        },
    ),
    "Toys & Games": Division(
        adjectives=("Classic", "Deluxe", "Junior", "Family", "Creative", "Mini"),
        brands=("Playforge", "Tinker Town", "Bright Minds", "Jolly Bear"),
        departments={
            "Board Games": Department(
                children={
                    "Strategy Games": Leaf("Strategy Game", 40),
                    "Family Games": Leaf("Family Board Game", 25),
                    "Card Games": Leaf("Card Game", 12),
                },
                attributes=(("2-4 Players", "2-6 Players"), ("Ages 8+", "Ages 12+")),
            ),
            "Building Toys": Department(
                children={
                    "Building Sets": Leaf("Building Set", 45),
                    "Marble Runs": Leaf("Marble Run", 35),
                },
                attributes=(
                    ("100 Pieces", "250 Pieces", "500 Pieces"),
                    ("Ages 4+", "Ages 6+", "Ages 8+"),
                ),
            ),
            "Puzzles": Department(
                children={
                    "Jigsaw Puzzles": Leaf("Jigsaw Puzzle", 20),
                    "3D Puzzles": Leaf("3D Puzzle", 30),
                },
                attributes=(
                    ("500 Pieces", "1000 Pieces", "1500 Pieces"),
                    ("Landscape", "Animals", "Map"),
                ),
            ),
            "Outdoor Toys": Department(
                children={
                    "Water Guns": Leaf("Water Blaster", 15),
                    "Kites": Leaf("Kite", 20),
                },
                attributes=(("Red", "Blue", "Rainbow"), ("Ages 3+", "Ages 6+")),
            ),
        },
    ),
}


@dataclass(frozen=True)
class LeafSpec:
    """A flattened leaf: its full path and what a title in it is made of."""

    path: tuple[str, ...]  # root first; len 3 or 4
    leaf: Leaf
    adjectives: tuple[str, ...]
    attributes: tuple[tuple[str, ...], ...]
    division_brands: tuple[str, ...]
    department_brands: tuple[str, ...]


def leaves() -> list[LeafSpec]:
    """Every leaf of TREE, depth first, in definition order."""

    def walk(prefix: tuple[str, ...], node: Subtree, division: Division, dept: Department) -> Iterator[LeafSpec]:
        for name, child in node.items():
            if isinstance(child, Leaf):
                yield LeafSpec(
                    prefix + (name,),
                    child,
                    division.adjectives,
                    dept.attributes,
                    division.brands,
                    dept.brands,
                )
            else:
                yield from walk(prefix + (name,), child, division, dept)

    return [
        spec
        for l1, division in TREE.items()
        for l2, dept in division.departments.items()
        for spec in walk((l1, l2), dept.children, division, dept)
    ]


# --- Generation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticData:
    """CSV rows (header first) and the exact bad-row counts injected into them."""

    clicks: list[list[str]]
    catalog: list[list[str]]
    injected: dict[str, int | dict[str, int]]  # reason -> count; CATALOG_KEY -> {...}


@dataclass(frozen=True)
class _Items:
    leaf: np.ndarray  # leaf index per item
    release_day: np.ndarray
    weight: np.ndarray  # unnormalised popularity


def _allocate_items(rng: np.random.Generator, n_items: int, n_leaves: int) -> np.ndarray:
    """Items per leaf: log-normal shares on top of a floor, summing to n_items."""
    spare = n_items - MIN_ITEMS_PER_LEAF * n_leaves
    if spare < 0:
        raise ValueError(f"n_items must be at least {MIN_ITEMS_PER_LEAF * n_leaves}")
    shares = rng.lognormal(0.0, LEAF_SIZE_SIGMA, n_leaves)
    extra = np.floor(shares / shares.sum() * spare).astype(int)
    # Hand the rounding remainder to the largest shares.
    extra[np.argsort(-shares)[: spare - extra.sum()]] += 1
    return extra + MIN_ITEMS_PER_LEAF


def _make_items(rng: np.random.Generator, n_items: int, n_leaves: int, days: int) -> _Items:
    """Leaf, release day and Zipf popularity (across leaves x within a leaf) per item."""
    counts = _allocate_items(rng, n_items, n_leaves)
    leaf_of = np.repeat(np.arange(n_leaves), counts)
    leaf_rank = rng.permutation(n_leaves)
    leaf_weight = 1.0 / (leaf_rank + 1.0) ** LEAF_ZIPF_EXPONENT
    weight = np.empty(n_items)
    is_leaf_head = np.zeros(n_items, dtype=bool)
    start = 0
    for leaf, count in enumerate(counts):
        rank = rng.permutation(count)
        within = 1.0 / (rank + 1.0) ** ITEM_ZIPF_EXPONENT
        weight[start : start + count] = leaf_weight[leaf] * within / within.sum()
        is_leaf_head[start : start + count] = rank == 0
        start += count

    # Leaf heads exist from day 0, so every leaf has something to click from the start.
    release_day = np.zeros(n_items, dtype=int)
    candidates = rng.permutation(np.flatnonzero(~is_leaf_head))
    n_cold = round(COLD_START_SHARE * n_items)
    n_later = round((1.0 - RELEASED_BEFORE_START_SHARE) * n_items) - n_cold
    cold, later = candidates[:n_cold], candidates[n_cold : n_cold + n_later]
    release_day[cold] = rng.integers(days - COLD_START_DAYS, days, n_cold)
    release_day[later] = rng.integers(1, days - COLD_START_DAYS, n_later)
    return _Items(leaf_of, release_day, weight)


def _title(rng: np.random.Generator, spec: LeafSpec, brand: str) -> str:
    words = [brand, spec.adjectives[rng.integers(len(spec.adjectives))], spec.leaf.noun]
    attributes = [pool[rng.integers(len(pool))] for pool in spec.attributes if rng.random() < ATTRIBUTE_RATE]
    return ", ".join([" ".join(w for w in words if w)] + attributes)


def _brand(rng: np.random.Generator, spec: LeafSpec) -> str:
    """Department brands first where there are any, then division brands, then generic."""
    u = rng.random()
    if u < EMPTY_BRAND_RATE:
        return ""
    if spec.department_brands and u < DEPARTMENT_BRAND_SHARE:
        pool = spec.department_brands
    elif u < 1.0 - GENERIC_BRAND_SHARE:
        pool = spec.division_brands
    else:
        pool = GENERIC_BRANDS
    return pool[rng.integers(len(pool))]


def _price(rng: np.random.Generator, median: float) -> str:
    # Retail-style .99 prices.
    return f"{max(1.0, round(median * rng.lognormal(0.0, PRICE_SIGMA))) - 0.01:.2f}"


class _Sampler:
    """Popularity draws from a group of items, skipping items not yet released."""

    def __init__(self, members: np.ndarray, weight: np.ndarray, release_day: np.ndarray):
        self.members = members
        self.cumulative = np.cumsum(weight[members])
        self.release_day = release_day
        # Released on day 0 (see _make_items), so always a valid answer.
        self.head = int(members[np.argmax(weight[members])])

    def draw(self, rng: np.random.Generator, day: int, avoid: int = -1) -> int:
        """A released item other than `avoid`; the head if MAX_DRAWS draws find none."""
        for _ in range(MAX_DRAWS):
            target = rng.random() * self.cumulative[-1]
            position = np.searchsorted(self.cumulative, target, side="right")
            item = int(self.members[min(position, len(self.members) - 1)])
            if self.release_day[item] <= day and item != avoid:
                return item
        return self.head


def _session_starts(rng: np.random.Generator, n_sessions: int, days: int) -> np.ndarray:
    """Sorted start offsets in seconds, with a daily traffic cycle."""
    hourly = np.asarray(HOURLY_TRAFFIC, dtype=float)
    day = rng.integers(0, days, n_sessions)
    hour = rng.choice(24, size=n_sessions, p=hourly / hourly.sum())
    second = rng.integers(0, 3600, n_sessions)
    return np.sort(day * SECONDS_PER_DAY + hour * 3600 + second)


def _sessions(
    rng: np.random.Generator, items: _Items, l2_of_leaf: np.ndarray, n_sessions: int, days: int
) -> list[tuple[int, int, int, str]]:
    """Clean clicks `(timestamp, session number, item index, event type)` in time order."""
    everyone = _Sampler(np.arange(len(items.leaf)), items.weight, items.release_day)
    by_leaf = [
        _Sampler(np.flatnonzero(items.leaf == leaf), items.weight, items.release_day) for leaf in range(len(l2_of_leaf))
    ]
    l2_of_item = l2_of_leaf[items.leaf]
    by_l2 = {
        l2: _Sampler(np.flatnonzero(l2_of_item == l2), items.weight, items.release_day) for l2 in np.unique(l2_of_leaf)
    }
    released = items.release_day
    new_arrivals = [
        np.flatnonzero((released > 0) & (released <= day) & (released > day - NEW_ARRIVAL_DAYS)) for day in range(days)
    ]

    def jump(day: int) -> int:
        recent = new_arrivals[day]
        if len(recent) and rng.random() < P_NEW_ARRIVAL:
            return int(recent[rng.integers(len(recent))])
        return everyone.draw(rng, day)

    starts = _session_starts(rng, n_sessions, days)
    lengths = np.clip(
        np.rint(rng.lognormal(SESSION_LENGTH_LOG_MEAN, SESSION_LENGTH_LOG_SIGMA, n_sessions)),
        1,
        MAX_SESSION_LENGTH,
    ).astype(int)
    clicks = []
    for session, (start, length) in enumerate(zip(starts, lengths)):
        gaps = rng.lognormal(np.log(GAP_LOG_MEDIAN_S), GAP_LOG_SIGMA, length)
        gaps = np.clip(np.rint(gaps), 1, MAX_GAP_S)
        gaps[0] = 0
        times = int(start) + np.cumsum(gaps).astype(int)
        # A session that would run past the window ends at its last second instead.
        times -= max(0, int(times[-1]) - (days * SECONDS_PER_DAY - 1))
        day = int(times[0] // SECONDS_PER_DAY)
        item = jump(day)
        for t in times:
            event = EVENT_CART if rng.random() < P_CART else EVENT_VIEW
            clicks.append((int(t), session, item, event))
            u = rng.random()
            if u < P_REPEAT:
                continue
            if u < P_REPEAT + P_SAME_LEAF:
                item = by_leaf[items.leaf[item]].draw(rng, day, avoid=item)
            elif u < P_REPEAT + P_SAME_LEAF + P_SAME_L2:
                item = by_l2[l2_of_item[item]].draw(rng, day, avoid=item)
            else:
                item = jump(day)
    clicks.sort()  # by time; ties by session, then click order
    return clicks


def _bad_click(reason: str, host: list[str], unknown_id: str) -> list[str]:
    """A row with exactly one defect, `reason`, built from a clean host row."""
    session, item, timestamp, event = host
    if reason == MALFORMED_ROW:
        return [session, item[:3], item[3:], timestamp, event]
    if reason == MISSING_ITEM_ID:
        return [session, "", timestamp, event]
    if reason == MISSING_TIMESTAMP:
        return [session, item, "", event]
    if reason == UNPARSABLE_TIMESTAMP:
        return [session, item, UNPARSABLE_TIMESTAMP_VALUE, event]
    if reason == UNPARSABLE_ITEM_ID:
        return [session, f"{item[:3]} {item[3:]}", timestamp, event]
    if reason == UNKNOWN_ITEM:
        return [session, unknown_id, timestamp, event]
    return list(host)  # DUPLICATE_CLICK


def _inject_click_errors(rng: np.random.Generator, rows: list[list[str]]) -> tuple[list[list[str]], dict[str, int]]:
    """Adds bad rows, each right after a distinct clean host row whose fields it reuses."""
    per_reason = max(1, round(BAD_CLICK_ROW_RATE * len(rows) / len(BAD_CLICK_REASONS)))
    n_bad = per_reason * len(BAD_CLICK_REASONS)
    hosts = rng.choice(len(rows), size=n_bad, replace=False).tolist()
    unknown_ids = rng.choice(UNKNOWN_ITEM_ID_BASE, size=n_bad, replace=False) + UNKNOWN_ITEM_ID_BASE
    bad_after = {
        host: _bad_click(BAD_CLICK_REASONS[k // per_reason], rows[host], str(unknown_ids[k]))
        for k, host in enumerate(hosts)
    }
    out = []
    for i, row in enumerate(rows):
        out.append(row)
        if i in bad_after:
            out.append(bad_after[i])
    return out, {reason: per_reason for reason in BAD_CLICK_REASONS}


def _inject_catalog_errors(rng: np.random.Generator, rows: list[list[str]]) -> tuple[list[list[str]], dict[str, int]]:
    """Sets a few prices to `n/a` in place and appends re-listings of existing items."""
    n = CATALOG_BAD_ROWS_PER_REASON
    picked = rng.choice(len(rows), size=2 * n, replace=False).tolist()
    out = [list(row) for row in rows]
    for i in picked[:n]:
        out[i][-1] = UNPARSABLE_PRICE_VALUE
    # A re-listing: same id and title, a new price.
    relisted = [out[i][:-1] + [f"{float(out[i][-1]) + 5:.2f}"] for i in picked[n:]]
    return out + relisted, {CATALOG_DUPLICATE_ITEM: n, CATALOG_UNPARSABLE_PRICE: n}


def generate(
    seed: int = DEFAULT_SEED,
    n_items: int = DEFAULT_N_ITEMS,
    n_sessions: int = DEFAULT_N_SESSIONS,
    days: int = DEFAULT_DAYS,
) -> SyntheticData:
    """The click log and catalog rows, bad rows included. Deterministic in the arguments."""
    if days <= COLD_START_DAYS + 1:
        raise ValueError(f"days must exceed {COLD_START_DAYS + 1}")
    if ITEM_ID_BASE + n_items > UNKNOWN_ITEM_ID_BASE:
        raise ValueError("n_items too large: catalog ids would reach the unknown-item ids")
    rng = np.random.default_rng(seed)
    specs = leaves()
    items = _make_items(rng, n_items, len(specs), days)
    # Ids follow release order, as a shop's sequential ids would; shuffled within a day.
    order = np.lexsort((rng.permutation(n_items), items.release_day))
    item_id = np.empty(n_items, dtype=object)
    item_id[order] = [str(ITEM_ID_BASE + k) for k in range(n_items)]

    catalog = []
    for i in order.tolist():
        spec = specs[items.leaf[i]]
        brand = _brand(rng, spec)
        catalog.append(
            [
                item_id[i],
                _title(rng, spec, brand),
                join_category_path(list(spec.path)),
                brand,
                _price(rng, spec.leaf.median_price),
            ]
        )

    l2_names = sorted({spec.path[:2] for spec in specs})
    l2_of_leaf = np.array([l2_names.index(spec.path[:2]) for spec in specs])
    clicks = [
        [str(session + 1), item_id[item], str(START_EPOCH_S + t), event]
        for t, session, item, event in _sessions(rng, items, l2_of_leaf, n_sessions, days)
    ]

    clicks, click_counts = _inject_click_errors(rng, clicks)
    catalog, catalog_counts = _inject_catalog_errors(rng, catalog)
    return SyntheticData(
        clicks=[list(CLICK_COLUMNS)] + clicks,
        catalog=[list(CATALOG_COLUMNS)] + catalog,
        injected={**click_counts, CATALOG_KEY: catalog_counts},
    )


def _write_csv_gz(path: str, rows: list[list[str]]) -> None:
    # The csv module writes malformed rows verbatim; mtime=0 and no file name in the
    # gzip header keep the bytes reproducible.
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))


def write(data: SyntheticData, out_dir: str) -> tuple[str, str, str]:
    """Writes clicks, catalog and the injected counts; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    clicks, catalog, injected = (os.path.join(out_dir, name) for name in (CLICKS_FILE, CATALOG_FILE, INJECTED_FILE))
    _write_csv_gz(clicks, data.clicks)
    _write_csv_gz(catalog, data.catalog)
    with open(injected, "w", encoding="utf-8") as f:
        f.write(json.dumps(data.injected, indent=2) + "\n")
    return clicks, catalog, injected


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory, e.g. data/default")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--n-items", type=int, default=DEFAULT_N_ITEMS)
    parser.add_argument("--n-sessions", type=int, default=DEFAULT_N_SESSIONS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    args = parser.parse_args(argv)
    data = generate(args.seed, args.n_items, args.n_sessions, args.days)
    for path in write(data, args.out):
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
