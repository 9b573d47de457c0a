"""Sampling of SKUs: correlated attributes, prices, creation times, titles and descriptions.

The returned frame holds the public columns (written to items.csv) and the hidden truth (written to
truth_items.csv). Colour is hidden unless the title names it; the description never names a colour the title
does not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from modules.data.catalog import vocab

DAY = 86_400
PUBLIC_COLUMNS = ["item_id", "title", "description", "category", "brand", "price", "gender", "image_path",
                  "created_at", "material", "style"]
TRUTH_COLUMNS = ["item_id", "category", "color", "pattern", "material", "style", "brand", "brand_tier", "gender",
                 "price", "price_pct", "created_at", "is_new", "color_in_title", "pattern_in_text", "pop_rank"]


def item_id(index: int) -> str:
    return f"sku_{index + 1:06d}"


def _pick(rng: np.random.Generator, table: dict[str, float], n: int) -> np.ndarray:
    keys = list(table)
    p = np.asarray([table[k] for k in keys], dtype=np.float64)
    return np.asarray(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def _cap_words(text: str) -> str:
    small = {"by", "in", "of", "for", "with", "and", "a", "the", "|", "-"}
    words = text.split()
    return " ".join(w if (i > 0 and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def sample_items(n_items: int, categories: list[str], gen: dict, rng: np.random.Generator,
                 start_ts: int, cutoff_ts: int, end_ts: int) -> pd.DataFrame:
    """Sample ``n_items`` SKUs over ``categories``; returns public + truth columns (not yet pop_rank)."""
    n = n_items
    cat = np.asarray(categories, dtype=object)[rng.integers(0, len(categories), size=n)]
    cols = {k: np.empty(n, dtype=object) for k in ("color", "pattern", "material", "style", "gender", "brand")}
    base_price = np.empty(n, dtype=np.float64)
    for c in categories:
        spec = vocab.CATEGORIES[c]
        idx = np.flatnonzero(cat == c)
        if idx.size == 0:
            continue
        cols["color"][idx] = _pick(rng, spec.colors, idx.size)
        cols["pattern"][idx] = _pick(rng, spec.patterns, idx.size)
        cols["material"][idx] = _pick(rng, spec.materials, idx.size)
        cols["style"][idx] = _pick(rng, spec.styles, idx.size)
        cols["gender"][idx] = _pick(rng, {g: w for g, w in spec.gender.items() if w > 0}, idx.size)
        brand_w = {b: vocab.TIER_WEIGHTS[vocab.BRANDS[b]] for b in spec.brands}
        cols["brand"][idx] = _pick(rng, brand_w, idx.size)
        base_price[idx] = spec.base_price
    tier = np.asarray([vocab.BRANDS[b] for b in cols["brand"]], dtype=object)
    tier_mult = np.asarray([vocab.BRAND_TIERS[t] for t in tier])
    mat_mult = np.asarray([vocab.MATERIAL_PRICE[m] for m in cols["material"]])
    price = base_price * tier_mult * mat_mult * rng.lognormal(0.0, float(gen["price_noise"]), size=n)
    price = np.round(np.maximum(np.floor(price), 4.0) + 0.99, 2)

    df = pd.DataFrame({"item_id": [item_id(i) for i in range(n)], "category": cat, **cols, "brand_tier": tier,
                       "price": price})
    df["price_pct"] = df.groupby("category")["price"].rank(pct=True).astype(float).round(4)

    # creation times: the newest `new_sku_fraction` of SKUs appear after the cutoff
    n_new = int(round(n * float(gen["new_sku_fraction"])))
    is_new = np.zeros(n, dtype=bool)
    is_new[rng.choice(n, size=n_new, replace=False)] = True
    created = rng.integers(start_ts - 365 * DAY, cutoff_ts - DAY, size=n)
    created_new = rng.integers(cutoff_ts, max(cutoff_ts + 1, end_ts - 2 * DAY), size=n)
    df["created_at"] = np.where(is_new, created_new, created).astype(np.int64)
    df["is_new"] = is_new

    df["color_in_title"] = rng.random(n) < float(gen["color_in_title_rate"])
    df["pattern_in_text"] = (df["pattern"] != "solid").to_numpy() & (
        rng.random(n) < float(gen["pattern_in_text_rate"]))
    titles, descs = _write_texts(df, rng)
    df["title"] = titles
    df["description"] = descs
    df["image_path"] = [f"images/{i}.png" for i in df["item_id"]]
    return df


def _write_texts(df: pd.DataFrame, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Titles and descriptions from templates and synonyms, driven by one pre-drawn random matrix."""
    n = len(df)
    r = rng.random((n, 12))
    titles: list[str] = []
    descs: list[str] = []
    for i, row in enumerate(df[["category", "color", "pattern", "material", "style", "gender", "brand",
                                "color_in_title", "pattern_in_text"]].itertuples(index=False)):
        spec = vocab.CATEGORIES[row.category]
        u = r[i]

        def choose(options: list[str], k: int, canonical_bias: float = 0.0, _u: np.ndarray = u) -> str:
            if _u[k] < canonical_bias:
                return options[0]
            return options[int(_u[(k + 6) % 12] * len(options)) % len(options)]

        noun = choose(spec.synonyms, 0, 0.45)
        style = choose(vocab.STYLE_SYNONYMS[row.style], 1, 0.5)
        line = vocab.LINE_NAMES[int(u[2] * len(vocab.LINE_NAMES))]
        gender = vocab.GENDER_WORDS[row.gender][0]
        pattern_word = choose(vocab.PATTERN_SYNONYMS[row.pattern], 3, 0.5)
        # Put the pattern in the title for a third of the items whose text mentions it.
        title_noun = f"{pattern_word} {noun}" if row.pattern_in_text and u[4] < 0.35 else noun
        fields = {"brand": row.brand, "style": style, "material": row.material, "noun": title_noun,
                  "gender": gender, "line": line}
        if row.color_in_title:
            fields["color"] = choose(vocab.COLOR_SYNONYMS[row.color], 5, 0.7)
            template = vocab.TITLE_TEMPLATES_COLOR[int(u[7] * len(vocab.TITLE_TEMPLATES_COLOR))]
        else:
            template = vocab.TITLE_TEMPLATES[int(u[7] * len(vocab.TITLE_TEMPLATES))]
        titles.append(_cap_words(template.format(**fields)))

        opener = vocab.DESCRIPTION_OPENERS[int(u[8] * len(vocab.DESCRIPTION_OPENERS))]
        plural = noun.endswith("s") and not noun.endswith("ss")
        article = "" if plural else ("An" if style[:1] in "aeiou" else "A")
        sentences = [opener.format(article=article, article_lc="" if plural else "a", this="These" if plural
                                   else "This", is_="are" if plural else "is", style=style,
                                   a_style=("an " if style[:1] in "aeiou" else "a ") + style, noun=noun,
                                   material=row.material,
                                   material_cap=row.material[:1].upper() + row.material[1:])]
        f1 = int(u[9] * len(spec.features))
        sentences.append(spec.features[f1])
        if u[10] < 0.5:
            sentences.append(spec.features[(f1 + 1) % len(spec.features)])
        if row.pattern_in_text:
            sentences.append(vocab.DESCRIPTION_PATTERN[int(u[11] * len(vocab.DESCRIPTION_PATTERN))]
                             .format(pattern=pattern_word))
        if row.color_in_title and u[10] > 0.5:
            sentences.append(vocab.DESCRIPTION_COLOR[int(u[6] * len(vocab.DESCRIPTION_COLOR))]
                             .format(color=fields["color"]))
        tidy = (" ".join(s.split()) for s in sentences)  # drop the gap an empty article leaves
        descs.append(" ".join(s[:1].upper() + s[1:] for s in tidy))
    return titles, descs
