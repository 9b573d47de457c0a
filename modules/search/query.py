"""Query understanding: colour, pattern, category, brand, gender, price and freshness intents from free text.

The vocabularies come from the catalog itself (its categories, brands, genders, the pattern words that occur in its
text, and the colour names of ``COLOR_TABLE``) plus general English synonyms: colour phrases from the XKCD
colour survey, each mapped to a basic colour term by its head word (``modules.encoders.color_vocab``: "navy blue" ->
navy, "dusty rose" -> pink, "gray" -> grey), and small hand-written tables of everyday retail words for categories,
genders and patterns ("trainers" -> sneakers, "men's" -> men, "tartan" -> checked). None of them is the synthetic
generator's table (``tests/test_engine_independence.py``). A synonym is kept only when its target exists in the
catalog, so the parser never invents a category the catalog does not have. Parsed intents are soft boosts and ranker features in
``SearchEngine``, and optional hard filters (``search_text(..., hard_intents=True)``). A freshness phrase ("latest",
"new arrivals", "just in", ...: ``FRESH_PHRASES``, everyday retail English) asks for recently added products, and the
engine then searches those first (``retrieval.fresh_days``, ``filters.allowed_rows``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import pandas as pd

from modules.encoders.color_vocab import query_colour_synonyms
from modules.search.lexical import _fold_plural

# Generic English synonyms (surface phrase -> canonical value). Targets missing from the catalog are dropped.
DEFAULT_SYNONYMS: dict[str, dict[str, str]] = {
    "category": {  # everyday retail English (plural/singular folded by the lexicon)
        "trainers": "sneakers", "trainer": "sneakers", "sneaker": "sneakers", "running shoes": "sneakers",
        "tennis shoes": "sneakers", "sports shoes": "sneakers", "casual shoes": "sneakers", "gym shoes": "sneakers", "plimsolls": "sneakers",
        "chelsea boots": "boots", "ankle boots": "boots", "wellies": "boots", "wellingtons": "boots",
        "slides": "sandals", "flip flops": "sandals", "flip-flops": "sandals", "sliders": "sandals",
        "rucksack": "backpacks", "backpack": "backpacks", "knapsack": "backpacks",
        "purse": "handbags", "handbag": "handbags", "tote": "handbags", "clutch": "handbags", "satchel": "handbags",
        "crossbody bag": "handbags",
        "tee": "t-shirts", "tees": "t-shirts", "t shirt": "t-shirts", "tshirt": "t-shirts",
        "jumper": "sweaters", "pullover": "sweaters", "hoodie": "hoodies", "sweatshirt": "hoodies",
        "jeans": "jeans", "gown": "dresses", "wristwatch": "watches", "lamp": "lamps",
        "floor lamp": "lamps", "reading lamp": "lamps", "sunnies": "sunglasses", "shades": "sunglasses",
    },
    "gender": {
        "men": "men", "men's": "men", "mens": "men", "man": "men", "man's": "men", "male": "men", "for him": "men",
        "gents": "men", "women": "women", "women's": "women", "womens": "women", "woman": "women",
        "woman's": "women", "ladies": "women", "ladies'": "women", "lady": "women", "female": "women",
        "for her": "women", "unisex": "unisex",
    },
    "color": dict(query_colour_synonyms()),  # the XKCD colour-survey names by basic term (color_vocab)
    "pattern": {  # everyday textile-pattern English
        "solid": "solid", "plain": "solid", "block colour": "solid", "block color": "solid",
        "striped": "striped", "stripe": "striped", "stripes": "striped", "stripy": "striped", "pinstripe": "striped",
        "pinstriped": "striped", "breton": "striped", "checked": "checked", "check": "checked",
        "checkered": "checked", "chequered": "checked", "plaid": "checked", "tartan": "checked",
        "gingham": "checked", "buffalo check": "checked", "windowpane": "checked", "dotted": "dotted",
        "polka dot": "dotted", "polka dots": "dotted", "dots": "dotted", "spotty": "dotted", "pin dot": "dotted",
        "floral": "floral", "flowery": "floral", "flowers": "floral", "botanical": "floral", "ditsy": "floral",
        "geometric": "geometric", "chevron": "geometric", "abstract": "geometric", "paisley": "paisley",
        "camo": "camouflage", "camouflage": "camouflage", "leopard": "animal print", "animal print": "animal print",
        "zebra": "animal print", "snakeskin": "animal print", "houndstooth": "houndstooth",
        "herringbone": "herringbone", "argyle": "argyle", "tie dye": "tie-dye", "tie-dye": "tie-dye",
    },
}

# Everyday retail English for "recently added" (a query with one of them asks for new products).
FRESH_PHRASES: tuple[str, ...] = (
    "new", "newest", "latest", "new arrival", "new arrivals", "new in", "just in", "just arrived", "just landed",
    "just dropped", "recently added", "brand new", "new season", "new collection", "this season", "fresh arrivals",
)
_FRESH_RE = re.compile(r"\b(?:" + "|".join(sorted((re.escape(p).replace(r"\ ", r"\s+") for p in FRESH_PHRASES),
                                                  key=len, reverse=True)) + r")\b", re.I)

_NUM = r"(\d+(?:[.,]\d+)?)"
_CUR = r"(?:[$€£]\s*)?"
_UNIT = r"(?:\s*(?:dollars|usd|eur|euros|bucks|gbp|pounds|€|£))?"
_PRICE_BETWEEN = re.compile(
    rf"\b(?:between|from)\s+{_CUR}{_NUM}{_UNIT}\s*(?:and|to|-|–)\s*{_CUR}{_NUM}{_UNIT}", re.I)
_PRICE_RANGE = re.compile(rf"[$€£]\s*{_NUM}\s*(?:-|–|to)\s*{_CUR}{_NUM}{_UNIT}", re.I)
_PRICE_MAX = re.compile(
    rf"(?:\b(?:under|below|less\s+than|cheaper\s+than|up\s+to|at\s+most|max(?:imum)?|no\s+more\s+than|within)"
    rf"|<=?)\s*{_CUR}{_NUM}{_UNIT}", re.I)
_PRICE_MIN = re.compile(
    rf"(?:\b(?:over|above|more\s+than|at\s+least|min(?:imum)?|from|starting\s+at)|>=?)\s*{_CUR}{_NUM}{_UNIT}",
    re.I)
_WORD_RE = re.compile(r"[\w][\w'\-]*", re.UNICODE)


def _num(s: str) -> float:
    return float(s.replace(",", "."))


def _key(phrase: str) -> tuple[str, ...]:
    """Normalised token tuple of a phrase: lower-case, plurals folded, trailing apostrophes kept as written."""
    return tuple(_fold_plural(w) for w in _WORD_RE.findall(phrase.lower()))


@dataclass
class Intents:
    """What a query asks for beyond its words. ``residual_text`` is the query with price phrases removed."""

    color: str | None = None
    pattern: str | None = None
    category: str | None = None
    gender: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    brand: str | None = None
    fresh: bool | None = None        # True: the query asks for recently added products
    residual_text: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def any(self) -> bool:
        return any(v is not None for k, v in asdict(self).items() if k != "residual_text")


class QueryParser:
    """Phrase-lexicon intent parser. Build it with ``QueryParser.from_catalog``."""

    MAX_PHRASE = 4

    def __init__(self, lexicon: Mapping[str, Mapping[tuple[str, ...], str]]) -> None:
        self.lexicon = {field: dict(entries) for field, entries in lexicon.items()}

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_catalog(cls, items: pd.DataFrame, color_names: Iterable[str],
                     synonyms: Mapping[str, Mapping[str, str]] | None = None) -> QueryParser:
        """Vocabularies from the catalog's own values; ``synonyms`` ({field: {phrase: canonical}}) extend the defaults."""
        syn: dict[str, dict[str, str]] = {f: dict(v) for f, v in DEFAULT_SYNONYMS.items()}
        for field, table in (synonyms or {}).items():
            syn.setdefault(field, {}).update({k.lower(): v.lower() for k, v in table.items()})

        def col_values(col: str) -> list[str]:
            if col not in items.columns:
                return []
            return sorted({str(v).strip().lower() for v in items[col].dropna() if str(v).strip()})

        lex: dict[str, dict[tuple[str, ...], str]] = {"category": {}, "brand": {}, "gender": {}, "color": {},
                                                     "pattern": {}}
        cats = col_values("category")
        by_key = {_key(c): c for c in cats}
        for c in cats:
            lex["category"][_key(c)] = c
        for phrase, target in syn.get("category", {}).items():
            canonical = by_key.get(_key(target))
            if canonical is not None:
                lex["category"].setdefault(_key(phrase), canonical)

        for b in col_values("brand"):
            lex["brand"][_key(b)] = b

        genders = set(col_values("gender")) | {"women", "men", "unisex"}
        for phrase, target in syn.get("gender", {}).items():
            if target in genders:
                lex["gender"][tuple(w for w in _WORD_RE.findall(phrase.lower()))] = target

        colors = [c.lower() for c in color_names]
        for c in colors:
            lex["color"][_key(c)] = c
        for phrase, target in syn.get("color", {}).items():
            if target in colors and _key(phrase) not in lex["color"]:
                lex["color"][_key(phrase)] = target

        # Patterns: canonical values whose surface forms occur in the catalog's text (or its pattern column).
        text_cols = [c for c in ("title", "description", "pattern") if c in items.columns]
        corpus = " ".join(" ".join(items[c].fillna("").astype(str).str.lower()) for c in text_cols)
        corpus_keys = " " + " ".join(_key(corpus)) + " "
        present = set(col_values("pattern"))
        for phrase, target in syn.get("pattern", {}).items():
            if f" {' '.join(_key(phrase))} " in corpus_keys:
                present.add(target)
        for phrase, target in syn.get("pattern", {}).items():
            if target in present:
                lex["pattern"][_key(phrase)] = target
        for p in present:
            lex["pattern"].setdefault(_key(p), p)
        return cls(lex)

    # -- parsing --------------------------------------------------------------------------------------------------
    def _match(self, text: str) -> dict[str, list[str]]:
        """All lexicon hits per field, longest phrase first, non-overlapping, in query order."""
        words = _WORD_RE.findall(text.lower())
        folded = [_fold_plural(w) for w in words]
        hits: dict[str, list[str]] = {f: [] for f in self.lexicon}
        i = 0
        while i < len(words):
            matched = False
            for n in range(min(self.MAX_PHRASE, len(words) - i), 0, -1):
                fkey, rkey = tuple(folded[i:i + n]), tuple(words[i:i + n])
                for field in ("gender", "category", "color", "pattern", "brand"):
                    entries = self.lexicon.get(field, {})
                    val = entries.get(rkey) if field == "gender" else entries.get(fkey)
                    if val is not None:
                        hits[field].append(val)
                        matched = True
                        break
                if matched:
                    i += n
                    break
            if not matched:
                i += 1
        return hits

    def parse(self, text: str) -> Intents:
        """Parse ``text`` into ``Intents`` (first hit per field wins)."""
        if not isinstance(text, str):
            raise ValueError(f"query must be a string, got {type(text).__name__}")
        intents = Intents()
        rest = text
        m = _PRICE_BETWEEN.search(rest) or _PRICE_RANGE.search(rest)
        if m:
            lo, hi = sorted((_num(m.group(1)), _num(m.group(2))))
            intents.price_min, intents.price_max = lo, hi
            rest = rest[: m.start()] + " " + rest[m.end():]
        else:
            m = _PRICE_MAX.search(rest)
            if m:
                intents.price_max = _num(m.group(1))
                rest = rest[: m.start()] + " " + rest[m.end():]
            m = _PRICE_MIN.search(rest)
            if m:
                intents.price_min = _num(m.group(1))
                rest = rest[: m.start()] + " " + rest[m.end():]
            if (intents.price_min is not None and intents.price_max is not None
                    and intents.price_min > intents.price_max):
                intents.price_min, intents.price_max = intents.price_max, intents.price_min
        hits = self._match(rest)
        for field in ("color", "pattern", "category", "gender", "brand"):
            if hits.get(field):
                setattr(intents, field, hits[field][0])
        fresh = {m.group(0).lower() for m in _FRESH_RE.finditer(rest)}
        if fresh and not (fresh == {"new"} and intents.brand and "new" in _key(intents.brand)):  # "New Balance"
            intents.fresh = True
        intents.residual_text = " ".join(rest.split())
        return intents

    def colors_in(self, text: str) -> set[str]:
        """Canonical colour names mentioned in ``text`` (e.g. an item title)."""
        return set(self._match(text).get("color", []))

    def patterns_in(self, text: str) -> set[str]:
        """Canonical pattern names mentioned in ``text``."""
        return set(self._match(text).get("pattern", []))

    # -- persistence ----------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {f: [[list(k), v] for k, v in entries.items()] for f, entries in self.lexicon.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, list]) -> QueryParser:
        return cls({f: {tuple(k): v for k, v in entries} for f, entries in data.items()})
