"""Vocabulary of the synthetic catalog: categories, colours, patterns, materials, styles, brands, synonyms, templates.

Everything the generator samples from lives here so that the world it describes can be read in one place.
The attribute correlations (price by brand tier and material, gender by category, material by category, ...)
are encoded as per-category weight tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------------------------------
# Colours: name -> RGB. The colour of an item is hidden truth unless its title names it.
COLORS: dict[str, tuple[int, int, int]] = {
    "black": (22, 22, 24),
    "white": (244, 244, 240),
    "grey": (128, 128, 132),
    "navy": (26, 38, 88),
    "blue": (38, 102, 204),
    "red": (204, 30, 40),
    "green": (36, 142, 62),
    "olive": (112, 116, 44),
    "beige": (222, 202, 160),
    "brown": (112, 70, 38),
    "pink": (242, 142, 182),
    "yellow": (242, 210, 36),
    "orange": (242, 128, 28),
    "purple": (122, 48, 152),
    "burgundy": (122, 20, 46),
    "teal": (18, 132, 132),
}
COLOR_NAMES: list[str] = list(COLORS)

# Words a shopper (or a title writer) may use for each colour. The first entry is the canonical name.
COLOR_SYNONYMS: dict[str, list[str]] = {
    "black": ["black", "jet black", "onyx"],
    "white": ["white", "ivory", "off-white", "cream"],
    "grey": ["grey", "gray", "charcoal"],
    "navy": ["navy", "navy blue", "midnight blue"],
    "blue": ["blue", "cobalt", "royal blue"],
    "red": ["red", "crimson", "scarlet"],
    "green": ["green", "emerald", "forest green"],
    "olive": ["olive", "khaki", "army green"],
    "beige": ["beige", "sand", "camel"],
    "brown": ["brown", "chocolate", "cognac"],
    "pink": ["pink", "blush", "rose pink"],
    "yellow": ["yellow", "mustard", "lemon"],
    "orange": ["orange", "tangerine", "rust orange"],
    "purple": ["purple", "violet", "plum"],
    "burgundy": ["burgundy", "maroon", "wine red"],
    "teal": ["teal", "turquoise", "petrol"],
}

# Colours a shopper would accept as "close" (used for grade-1 judgments).
COLOR_NEIGHBOURS: dict[str, list[str]] = {
    "black": ["grey", "navy"],
    "white": ["beige", "grey"],
    "grey": ["black", "white"],
    "navy": ["blue", "black"],
    "blue": ["navy", "teal"],
    "red": ["burgundy", "orange", "pink"],
    "green": ["olive", "teal"],
    "olive": ["green", "brown"],
    "beige": ["white", "brown"],
    "brown": ["beige", "burgundy", "olive"],
    "pink": ["red", "purple"],
    "yellow": ["orange", "beige"],
    "orange": ["red", "yellow"],
    "purple": ["pink", "burgundy"],
    "burgundy": ["red", "brown", "purple"],
    "teal": ["blue", "green"],
}

DEFAULT_COLOR_WEIGHTS: dict[str, float] = {
    "black": 0.14, "white": 0.12, "grey": 0.09, "navy": 0.09, "blue": 0.08, "red": 0.07, "green": 0.05,
    "olive": 0.04, "beige": 0.07, "brown": 0.06, "pink": 0.05, "yellow": 0.03, "orange": 0.03, "purple": 0.03,
    "burgundy": 0.03, "teal": 0.02,
}

# ---------------------------------------------------------------------------------------------------------------------
PATTERNS: list[str] = ["solid", "striped", "checked", "dotted", "floral", "geometric"]
PATTERN_SYNONYMS: dict[str, list[str]] = {
    "solid": ["solid", "plain", "solid-colour"],
    "striped": ["striped", "stripe", "pinstripe"],
    "checked": ["checked", "plaid", "gingham"],
    "dotted": ["polka dot", "dotted", "spotted"],
    "floral": ["floral", "flower print", "floral print"],
    "geometric": ["geometric", "geo print", "zigzag"],
}

STYLES: list[str] = [
    "minimalist", "sporty", "classic", "vintage", "casual", "formal", "bohemian", "streetwear", "outdoor", "elegant",
]
STYLE_SYNONYMS: dict[str, list[str]] = {
    "minimalist": ["minimalist", "minimal", "clean-lined"],
    "sporty": ["sporty", "athletic", "performance"],
    "classic": ["classic", "timeless", "heritage"],
    "vintage": ["vintage", "retro", "old-school"],
    "casual": ["casual", "everyday", "relaxed"],
    "formal": ["formal", "dressy", "office"],
    "bohemian": ["bohemian", "boho", "free-spirited"],
    "streetwear": ["streetwear", "urban", "street-style"],
    "outdoor": ["outdoor", "rugged", "trail"],
    "elegant": ["elegant", "chic", "refined"],
}

MATERIAL_PRICE: dict[str, float] = {
    "leather": 1.45, "suede": 1.35, "canvas": 0.8, "mesh": 0.9, "rubber": 0.75, "cork": 0.95, "nylon": 0.9,
    "polyester": 0.75, "cotton": 0.9, "linen": 1.1, "silk": 1.7, "flannel": 1.0, "wool": 1.4, "denim": 1.0,
    "corduroy": 1.05, "straw": 0.85, "metal": 1.0, "ceramic": 1.1, "glass": 1.2, "wood": 1.15, "rattan": 0.95,
    "stainless steel": 1.0, "titanium": 1.6, "silicone": 0.6,
}

GENDERS: list[str] = ["women", "men", "unisex"]
GENDER_WORDS: dict[str, list[str]] = {
    "women": ["women's", "womens", "ladies'"],
    "men": ["men's", "mens"],
    "unisex": ["unisex"],
}
GENDER_SUFFIX: dict[str, list[str]] = {
    "women": ["for women", "for her"],
    "men": ["for men", "for him"],
    "unisex": ["for everyone"],
}

# ---------------------------------------------------------------------------------------------------------------------
BRAND_TIERS: dict[str, float] = {"budget": 0.6, "mid": 1.0, "premium": 1.8, "luxury": 3.4}
TIER_WEIGHTS: dict[str, float] = {"budget": 0.35, "mid": 0.40, "premium": 0.18, "luxury": 0.07}

BRANDS: dict[str, str] = {  # brand -> tier
    "Stridewell": "budget", "Kinetix": "mid", "Northtrail": "mid", "Alder & Finch": "premium",
    "Carryall Co": "budget", "Voyager": "mid", "Lumen & Hide": "premium",
    "Basix": "budget", "Urban Thread": "mid", "Fieldhouse": "mid", "Atelier Nord": "premium",
    "Glowhaus": "budget", "Lumina": "mid", "Studio Arc": "premium", "Lux Atelier": "luxury",
    "Tempo": "budget", "Meridian": "mid", "Horologe": "premium",
    "Maison Ferro": "luxury", "Pacer": "budget", "Everlane Works": "mid",
}

# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategorySpec:
    """How one category looks and is described, and the attribute distributions it draws from."""

    name: str
    shape: str                                  # silhouette drawn by images.py
    synonyms: list[str]                         # noun phrases; first is canonical
    gender: dict[str, float]                    # women / men / unisex probabilities
    materials: dict[str, float]
    patterns: dict[str, float]
    styles: dict[str, float]
    brands: list[str]
    base_price: float
    features: list[str]                         # description sentences (no colour words)
    colors: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COLOR_WEIGHTS))


_FOOTWEAR_BRANDS = ["Stridewell", "Pacer", "Kinetix", "Northtrail", "Alder & Finch", "Maison Ferro"]
_BAG_BRANDS = ["Carryall Co", "Voyager", "Everlane Works", "Lumen & Hide", "Maison Ferro"]
_APPAREL_BRANDS = ["Basix", "Urban Thread", "Fieldhouse", "Everlane Works", "Atelier Nord", "Maison Ferro"]
_LAMP_BRANDS = ["Glowhaus", "Lumina", "Studio Arc", "Lux Atelier"]
_WATCH_BRANDS = ["Tempo", "Pacer", "Meridian", "Horologe", "Maison Ferro"]

CATEGORIES: dict[str, CategorySpec] = {
    c.name: c
    for c in [
        CategorySpec(
            "sneakers", "shoe", ["sneakers", "trainers", "kicks", "running shoes", "athletic shoes"],
            {"women": 0.4, "men": 0.4, "unisex": 0.2},
            {"canvas": 0.3, "leather": 0.3, "mesh": 0.3, "suede": 0.1},
            {"solid": 0.7, "striped": 0.1, "checked": 0.05, "dotted": 0.05, "geometric": 0.1},
            {"sporty": 0.3, "casual": 0.25, "minimalist": 0.15, "streetwear": 0.2, "vintage": 0.1},
            _FOOTWEAR_BRANDS, 80.0,
            ["Cushioned midsole for all-day comfort.", "Lace-up closure and padded collar.",
             "Grippy rubber outsole.", "Breathable lining keeps feet cool."],
        ),
        CategorySpec(
            "boots", "boot", ["boots", "ankle boots", "lace-up boots", "booties"],
            {"women": 0.45, "men": 0.45, "unisex": 0.1},
            {"leather": 0.55, "suede": 0.3, "rubber": 0.15},
            {"solid": 0.9, "checked": 0.05, "geometric": 0.05},
            {"outdoor": 0.3, "classic": 0.25, "casual": 0.2, "vintage": 0.15, "elegant": 0.1},
            _FOOTWEAR_BRANDS, 120.0,
            ["Sturdy lug sole for traction.", "Side zip for easy on and off.", "Stacked heel with a cushioned insole.",
             "Water-resistant finish."],
            {"black": 0.3, "brown": 0.3, "beige": 0.1, "grey": 0.08, "burgundy": 0.07, "olive": 0.05, "navy": 0.05,
             "white": 0.05},
        ),
        CategorySpec(
            "sandals", "sandal", ["sandals", "slides", "strappy sandals", "flip flops"],
            {"women": 0.55, "men": 0.25, "unisex": 0.2},
            {"leather": 0.45, "rubber": 0.35, "cork": 0.2},
            {"solid": 0.75, "striped": 0.1, "floral": 0.1, "dotted": 0.05},
            {"casual": 0.35, "bohemian": 0.25, "minimalist": 0.2, "sporty": 0.1, "elegant": 0.1},
            _FOOTWEAR_BRANDS, 45.0,
            ["Contoured footbed.", "Adjustable buckle straps.", "Lightweight and quick-drying.",
             "Perfect for beach days."],
        ),
        CategorySpec(
            "backpacks", "backpack", ["backpack", "rucksack", "daypack", "school bag"],
            {"women": 0.2, "men": 0.2, "unisex": 0.6},
            {"nylon": 0.4, "canvas": 0.3, "polyester": 0.2, "leather": 0.1},
            {"solid": 0.6, "striped": 0.1, "checked": 0.1, "dotted": 0.05, "geometric": 0.1, "floral": 0.05},
            {"outdoor": 0.25, "casual": 0.3, "minimalist": 0.2, "streetwear": 0.15, "sporty": 0.1},
            _BAG_BRANDS, 60.0,
            ["Padded laptop sleeve fits 15-inch devices.", "Two side pockets for bottles.",
             "Ergonomic padded straps.", "Roomy main compartment with zip closure."],
        ),
        CategorySpec(
            "handbags", "handbag", ["handbag", "purse", "tote bag", "shoulder bag"],
            {"women": 0.92, "men": 0.0, "unisex": 0.08},
            {"leather": 0.5, "canvas": 0.2, "suede": 0.15, "straw": 0.15},
            {"solid": 0.6, "checked": 0.1, "floral": 0.1, "dotted": 0.1, "striped": 0.1},
            {"elegant": 0.3, "classic": 0.25, "minimalist": 0.2, "bohemian": 0.15, "casual": 0.1},
            _BAG_BRANDS, 90.0,
            ["Magnetic snap closure.", "Interior zip pocket for essentials.", "Detachable shoulder strap.",
             "Structured silhouette that holds its shape."],
        ),
        CategorySpec(
            "dresses", "dress", ["dress", "sundress", "midi dress", "frock"],
            {"women": 1.0, "men": 0.0, "unisex": 0.0},
            {"cotton": 0.35, "linen": 0.2, "silk": 0.15, "polyester": 0.3},
            {"solid": 0.35, "floral": 0.3, "dotted": 0.15, "striped": 0.1, "checked": 0.1},
            {"elegant": 0.25, "bohemian": 0.2, "casual": 0.25, "formal": 0.15, "vintage": 0.15},
            _APPAREL_BRANDS, 60.0,
            ["Flattering A-line cut.", "Hidden back zip.", "Flowy skirt that falls below the knee.",
             "Adjustable spaghetti straps."],
        ),
        CategorySpec(
            "shirts", "shirt", ["shirt", "button-down shirt", "button-up shirt", "oxford shirt"],
            {"women": 0.35, "men": 0.55, "unisex": 0.1},
            {"cotton": 0.55, "linen": 0.2, "flannel": 0.15, "silk": 0.1},
            {"solid": 0.45, "striped": 0.25, "checked": 0.25, "dotted": 0.05},
            {"formal": 0.3, "classic": 0.3, "casual": 0.25, "minimalist": 0.15},
            _APPAREL_BRANDS, 40.0,
            ["Button-down collar.", "Regular fit with a curved hem.", "Easy-iron finish.",
             "Chest pocket and long sleeves."],
        ),
        CategorySpec(
            "t-shirts", "tshirt", ["t-shirt", "tee", "crew neck tee", "tshirt"],
            {"women": 0.35, "men": 0.35, "unisex": 0.3},
            {"cotton": 0.7, "polyester": 0.2, "linen": 0.1},
            {"solid": 0.5, "striped": 0.25, "geometric": 0.1, "dotted": 0.05, "floral": 0.1},
            {"casual": 0.35, "streetwear": 0.25, "minimalist": 0.2, "sporty": 0.1, "vintage": 0.1},
            _APPAREL_BRANDS, 20.0,
            ["Soft jersey knit.", "Crew neckline and short sleeves.", "Pre-shrunk for a lasting fit.",
             "Relaxed everyday fit."],
        ),
        CategorySpec(
            "jackets", "jacket", ["jacket", "coat", "bomber jacket", "windbreaker"],
            {"women": 0.4, "men": 0.45, "unisex": 0.15},
            {"leather": 0.2, "denim": 0.2, "nylon": 0.25, "wool": 0.2, "polyester": 0.15},
            {"solid": 0.75, "checked": 0.15, "geometric": 0.1},
            {"outdoor": 0.25, "classic": 0.2, "streetwear": 0.2, "casual": 0.2, "vintage": 0.15},
            _APPAREL_BRANDS, 110.0,
            ["Full-length front zip.", "Two zippered hand pockets.", "Lightly insulated for cool days.",
             "Ribbed cuffs and hem."],
        ),
        CategorySpec(
            "jeans", "jeans", ["jeans", "denim pants", "five-pocket jeans", "denims"],
            {"women": 0.45, "men": 0.45, "unisex": 0.1},
            {"denim": 0.85, "corduroy": 0.15},
            {"solid": 0.95, "striped": 0.05},
            {"casual": 0.4, "classic": 0.25, "streetwear": 0.2, "vintage": 0.15},
            _APPAREL_BRANDS, 55.0,
            ["Five-pocket styling.", "Slim fit through the leg.", "Stretch for comfort.", "Button fly closure."],
            {"blue": 0.35, "navy": 0.2, "black": 0.2, "grey": 0.1, "white": 0.05, "beige": 0.05, "olive": 0.03,
             "burgundy": 0.02},
        ),
        CategorySpec(
            "lamps", "lamp", ["lamp", "table lamp", "desk lamp", "bedside lamp"],
            {"women": 0.0, "men": 0.0, "unisex": 1.0},
            {"metal": 0.35, "ceramic": 0.25, "glass": 0.15, "wood": 0.15, "rattan": 0.1},
            {"solid": 0.8, "striped": 0.1, "geometric": 0.1},
            {"minimalist": 0.35, "vintage": 0.2, "classic": 0.2, "bohemian": 0.1, "elegant": 0.15},
            _LAMP_BRANDS, 70.0,
            ["Fabric shade diffuses a warm glow.", "Inline switch on the cord.", "Takes a standard E27 bulb.",
             "Weighted base for stability."],
        ),
        CategorySpec(
            "watches", "watch", ["watch", "wristwatch", "timepiece", "analog watch"],
            {"women": 0.4, "men": 0.45, "unisex": 0.15},
            {"stainless steel": 0.4, "leather": 0.35, "silicone": 0.15, "titanium": 0.1},
            {"solid": 0.9, "striped": 0.05, "checked": 0.05},
            {"classic": 0.3, "minimalist": 0.25, "sporty": 0.2, "elegant": 0.15, "formal": 0.1},
            _WATCH_BRANDS, 150.0,
            ["Water resistant to 50 metres.", "Scratch-resistant mineral crystal.", "Quartz movement.",
             "Quick-release strap."],
            {"black": 0.3, "brown": 0.2, "grey": 0.2, "navy": 0.1, "white": 0.1, "blue": 0.05, "green": 0.05},
        ),
    ]
}
CATEGORY_NAMES: list[str] = list(CATEGORIES)

# ---------------------------------------------------------------------------------------------------------------------
# Title and description templates. Placeholders: {brand} {style} {material} {noun} {gender} {line} {color} {pattern}.
# Templates WITH {color} are used only for items whose title names the colour (params color_in_title_rate).
TITLE_TEMPLATES: list[str] = [
    "{brand} {style} {noun}",
    "{brand} {line} {material} {noun}",
    "{style} {material} {noun} by {brand}",
    "{gender} {noun} - {brand} {line}",
    "{brand} {line} {style} {noun}",
    "{material} {noun} | {brand}",
]
TITLE_TEMPLATES_COLOR: list[str] = [
    "{brand} {color} {style} {noun}",
    "{brand} {line} {noun} in {color}",
    "{color} {material} {noun} by {brand}",
    "{gender} {color} {noun} - {brand} {line}",
    "{brand} {line} {color} {noun}",
]
LINE_NAMES: list[str] = [
    "Aero", "Nova", "Atlas", "Orbit", "Drift", "Echo", "Vale", "Summit", "Harbor", "Pulse", "Metro", "Haven",
    "Vista", "Crest", "Luxe", "Terra", "Field", "Bolt", "Quill", "Arcadia",
]
DESCRIPTION_OPENERS: list[str] = [
    "{article} {style} {noun} made from {material}.",
    "{this} {style} {noun} {is_} crafted in {material}.",
    "{material_cap} {noun} with {a_style} look.",
    "Designed for {style} days: {article_lc} {material} {noun}.",
]
DESCRIPTION_PATTERN: list[str] = [
    "Features a {pattern} design.",
    "Finished with an eye-catching {pattern} motif.",
    "The {pattern} look pairs with anything.",
]
DESCRIPTION_COLOR: list[str] = ["Shown in {color}.", "This colourway: {color}."]

# Text-query templates for the judged queries. Facet slots are filled or dropped by queries.py.
PRICE_BOUNDS: list[int] = [25, 50, 75, 100, 150, 200, 300, 500, 1000, 2000]
PRICE_PHRASES: list[str] = ["under {p}", "under ${p}", "below {p} dollars", "less than ${p}"]
COLD_PREFIXES: list[str] = ["new", "new arrival", "just in", "latest"]
COMPOSED_TEMPLATES: list[str] = [
    "like this but in {color}", "same but in {color}", "this in {color}", "{color} version of this",
    "similar but {color}",
]


def all_color_terms() -> set[str]:
    """Every word/phrase that names a colour (for leakage checks)."""
    return {term for terms in COLOR_SYNONYMS.values() for term in terms}
