"""A general colour vocabulary: the XKCD colour-survey names, each mapped to one of 16 basic colour terms.

Source: the XKCD colour survey (Randall Munroe, 2010; ~950 names that survey respondents agreed on, with their RGB),
as shipped by matplotlib in ``matplotlib.colors.XKCD_COLORS`` (copied to ``data/xkcd_colors.json``). The engine's colour prototypes (RGB -> name) and its
colour synonyms (word -> name) are both derived from it; nothing here comes from the synthetic catalog's generator.

The 16 basic terms (:data:`BASIC_TERMS`) are ordinary English colour words that retail catalogs use as labels. A
survey name is mapped to a basic term by these rules, in order:

1. a whole-name exception in :data:`NAME_TERMS` (names whose head word misleads, e.g. "navy blue" is navy,
   "midnight blue" and "very dark blue" are navy -- navy *is* a very dark blue --, "wine red" is burgundy);
2. its head word (the last word: "denim blue", "faded blue", "dark blue" -> blue), looked up in
   :data:`HEAD_WORD_TERMS` (basic terms map to themselves; common non-basic head words such as maroon, wine,
   claret -> burgundy, khaki/sand/camel -> beige, charcoal/silver/steel -> grey, turquoise/aqua -> teal);
3. otherwise (e.g. "mud", "puke", "denim"), the basic term whose own survey colour (``xkcd:<term>``) is nearest
   in CIE Lab.

Names written with a slash ("green/blue") are ambiguous by construction and left out.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

BASIC_TERMS: tuple[str, ...] = (
    "black", "white", "grey", "navy", "blue", "red", "green", "olive", "beige", "brown", "pink", "yellow", "orange",
    "purple", "burgundy", "teal",
)

# Head words (last word of a survey name) that are not basic terms themselves, by the basic term they belong to.
# General English usage (dictionary senses of each word), listed once per basic term.
_HEAD_WORDS_BY_TERM: dict[str, tuple[str, ...]] = {
    "black": ("ebony", "jet", "onyx"),
    "white": ("ivory", "eggshell", "snow", "pearl", "offwhite"),
    "grey": ("gray", "charcoal", "silver", "steel", "slate", "gunmetal", "cement", "ash", "pewter",
             "graphite", "heather", "smoke"),
    "navy": ("midnight", "marine"),
    "blue": ("azure", "cobalt", "sapphire", "cerulean", "ultramarine", "cornflower", "periwinkle", "sky",
             "denim", "azul", "blueberry", "ice", "ocean", "bluish"),
    "red": ("crimson", "scarlet", "cherry", "tomato", "ruby", "carmine", "vermillion", "blood", "lipstick",
            "strawberry", "brick", "rouge", "reddish", "orangered"),
    "green": ("lime", "mint", "emerald", "jade", "forest", "grass", "leaf", "pine", "shamrock", "fern", "kiwi",
              "pea", "pistachio", "seafoam", "spearmint", "wintergreen", "evergreen", "celadon", "greenish"),
    "olive": ("khaki", "sage", "moss", "army", "drab", "avocado", "lichen", "swamp", "camo", "asparagus"),
    "beige": ("cream", "creme", "tan", "sand", "sandy", "camel", "taupe", "ecru", "wheat", "buff", "fawn",
              "parchment", "putty", "stone", "biscuit", "oatmeal", "nude", "toupe", "manilla"),
    "brown": ("chocolate", "coffee", "mocha", "cocoa", "sienna", "umber", "mahogany", "chestnut", "auburn",
              "russet", "hazel", "caramel", "cinnamon", "copper", "bronze", "mud", "earth", "leather", "brownish",
              "sepia", "tea", "dirt", "clay"),
    "pink": ("rose", "rosa", "magenta", "fuchsia", "salmon", "blush", "bubblegum", "carnation", "cerise",
             "raspberry", "watermelon", "pinky", "pinkish"),
    "yellow": ("gold", "golden", "mustard", "lemon", "canary", "butter", "banana", "sunflower", "dandelion",
               "maize", "custard", "straw", "yellowish"),
    "orange": ("peach", "rust", "tangerine", "apricot", "pumpkin", "mango", "amber", "ochre", "ocher", "ocre",
               "terracotta", "terracota", "squash", "saffron", "marigold", "orangish", "orangeish", "butterscotch",
               "melon", "coral"),
    "purple": ("violet", "lavender", "lilac", "plum", "indigo", "mauve", "eggplant", "aubergine", "amethyst",
               "orchid", "grape", "wisteria", "heliotrope", "iris", "purplish", "purpleish", "purply", "purpley",
               "burple", "blurple", "puce", "bruise"),
    "burgundy": ("maroon", "wine", "claret", "merlot", "bordeaux", "oxblood", "cranberry", "mulberry"),
    "teal": ("turquoise", "aqua", "aquamarine", "cyan", "petrol", "tealish", "viridian"),
}
HEAD_WORD_TERMS: dict[str, str] = {
    **{t: t for t in BASIC_TERMS},
    **{w: t for t, words in _HEAD_WORDS_BY_TERM.items() for w in words},
}

# Whole survey names whose head word points to the wrong basic term (general usage: a navy blue coat is navy).
NAME_TERMS: dict[str, str] = {
    "navy blue": "navy", "dark navy blue": "navy", "light navy blue": "navy", "midnight blue": "navy",
    "dark navy": "navy", "light navy": "navy", "dark blue": "navy", "very dark blue": "navy", "deep blue": "navy",
    "night blue": "navy", "navy green": "olive", "midnight purple": "purple",
    "wine red": "burgundy", "red wine": "burgundy", "dark red": "burgundy", "deep red": "burgundy",
    "blood red": "red", "turquoise blue": "teal", "teal blue": "teal", "teal green": "teal",
    "sea green": "teal", "dark sea green": "green", "steel blue": "blue", "slate blue": "blue",
    "slate green": "green", "rose red": "red", "khaki green": "olive", "army green": "olive",
    "olive drab": "olive", "olive green": "olive", "dark olive green": "olive", "olive brown": "brown",
    "off white": "white", "dark cream": "beige", "dark sand": "beige", "sand brown": "beige",
    "pale gold": "yellow",
}


SURVEY_FILE = Path(__file__).with_name("data") / "xkcd_colors.json"


@lru_cache(maxsize=1)
def _survey() -> dict[str, tuple[int, int, int]]:
    """XKCD survey name -> RGB (0..255). Read from :data:`SURVEY_FILE`, a copy of ``matplotlib.colors.XKCD_COLORS``
    without the ``xkcd:`` prefix (kept in the repo so serving needs no matplotlib; a test checks it still matches)."""
    table = json.loads(SURVEY_FILE.read_text(encoding="utf-8"))["colors"]
    return {name: tuple(int(hexv[i:i + 2], 16) for i in (1, 3, 5)) for name, hexv in table.items()}


def _clean(word: str) -> str:
    return " ".join(word.lower().replace("-", " ").replace("_", " ").split())


def term_by_rules(name: str) -> str | None:
    """Rules 1 and 2 of the module docstring (whole-name exception, then head word), or None."""
    name = _clean(name)
    if not name or "/" in name:
        return None
    if name in NAME_TERMS:
        return NAME_TERMS[name]
    return HEAD_WORD_TERMS.get(name.split()[-1])


@lru_cache(maxsize=1)
def survey_terms() -> dict[str, tuple[str, tuple[int, int, int]]]:
    """Every usable survey name -> (basic term, RGB). Rule 3 (nearest basic survey colour) for the rest."""
    from modules.encoders.color_space import rgb_to_lab

    survey = _survey()
    focal = rgb_to_lab(np.array([survey[t] for t in BASIC_TERMS], dtype=np.float64))
    out: dict[str, tuple[str, tuple[int, int, int]]] = {}
    for name, rgb in survey.items():
        if "/" in name:
            continue
        term = term_by_rules(name)
        if term is None:
            lab = rgb_to_lab(np.array(rgb, dtype=np.float64))
            term = BASIC_TERMS[int(np.argmin(((focal - lab) ** 2).sum(axis=1)))]
        out[name] = (term, rgb)
    return out


def basic_term_rgb() -> dict[str, tuple[int, int, int]]:
    """Each basic term's own survey colour (``xkcd:black`` ... ``xkcd:teal``): the representative RGB."""
    survey = _survey()
    return {t: survey[t] for t in BASIC_TERMS}


# Common English colour words that are not survey names (or are spelt differently there).
EXTRA_WORDS: dict[str, str] = {
    "gray": "grey", "off white": "white", "offwhite": "white", "jet black": "black", "charcoal gray": "grey",
    "light gray": "grey", "dark gray": "grey", "grey melange": "grey", "nude": "beige", "skin": "beige",
    "oxblood": "burgundy", "bordeaux": "burgundy", "fluorescent green": "green", "neon green": "green",
    "neon pink": "pink", "neon yellow": "yellow", "camel brown": "brown", "tan brown": "brown",
}


# Head words that name a colour inside a phrase ("sky blue", "leather brown") but, alone in a shopper's query, are
# more often a material or a thing ("leather boots", "denim jacket", "straw hat"). Query understanding leaves them
# out of its single-word colour phrases (see :func:`query_colour_synonyms`).
NOT_A_COLOUR_ALONE: frozenset[str] = frozenset({
    # materials and finishes
    "leather", "denim", "straw", "heather", "stone", "cement", "clay", "copper", "bronze", "gold", "silver", "steel",
    "gunmetal", "slate", "pewter", "graphite", "pearl", "parchment", "putty", "jade", "amber", "brick", "camo",
    # things, plants and food that a query names for themselves
    "ice", "tea", "earth", "dirt", "mud", "leaf", "grass", "forest", "pine", "ocean", "sky", "blood", "pea",
    "marine", "midnight", "ash", "smoke", "snow", "army", "drab", "swamp", "iris", "orchid", "grape", "melon",
    "mango", "butter", "banana", "cherry", "tomato", "strawberry", "watermelon", "kiwi", "pumpkin", "squash",
    "avocado", "rose", "carnation", "sunflower", "dandelion", "blueberry", "raspberry", "mulberry", "chestnut",
    "hazel", "coffee", "cinnamon", "cocoa", "sand", "wheat", "buff", "fawn", "biscuit", "oatmeal", "custard", "fern",
    "moss", "heliotrope", "wisteria", "canary", "spearmint", "wintergreen", "evergreen", "shamrock", "lichen",
    "asparagus", "saffron", "marigold",
})


@lru_cache(maxsize=1)
def query_colour_synonyms() -> dict[str, str]:
    """Colour phrases a query parser can trust: the basic terms, every survey name that the rules map (rule 1 or 2,
    so not the nearest-colour guesses such as "mud" or "puke"), the head words except
    :data:`NOT_A_COLOUR_ALONE`, and :data:`EXTRA_WORDS`."""
    syn = {name: term for name, (term, _) in survey_terms().items() if term_by_rules(name) is not None
           and not (" " not in name and name in NOT_A_COLOUR_ALONE)}
    syn.update({w: t for w, t in HEAD_WORD_TERMS.items() if w not in NOT_A_COLOUR_ALONE})
    syn.update(NAME_TERMS)
    syn.update(EXTRA_WORDS)
    return syn


@lru_cache(maxsize=1)
def colour_synonyms() -> dict[str, str]:
    """Colour word or phrase -> basic term: every survey name (rules above), the head words, and :data:`EXTRA_WORDS`.
    Basic terms map to themselves."""
    syn = {name: term for name, (term, _) in survey_terms().items()}
    syn.update(HEAD_WORD_TERMS)
    syn.update(NAME_TERMS)
    syn.update(EXTRA_WORDS)
    return syn


def normalize_colour_word(word: str) -> str | None:
    """A colour word or label ("Navy Blue", "Coffee Brown", "gray") -> basic term, or None when it is not a colour
    (e.g. "Multi"). Unknown multi-word labels fall back to the rules (head word), then to their first word."""
    w = _clean(word)
    if not w:
        return None
    syn = colour_synonyms()
    if w in syn:
        return syn[w]
    return term_by_rules(w) or syn.get(w.split()[0])
