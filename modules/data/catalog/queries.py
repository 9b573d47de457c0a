"""Judged queries with graded relevance computed from the hidden truth.

Kinds:
- text: facets (category, colour, pattern, style, material, gender, price bound) sampled from an anchor item
  and worded with synonyms. Grades: 3 = category + colour + every other facet; 2 = category + colour;
  1 = category + a neighbouring colour + every other facet. Without a colour facet: 3 = all facets,
  2 = all but one (when there are >= 2). Gender and price bound are hard filters. Facets are added until at
  most ``max_grade3`` items have grade 3, and lists are capped at ``max_relevant`` (lowest grades dropped first).
- cold text queries ("new ..."): relevance restricted to new SKUs; ``cold=True``.
- image: a street photo of a source item. 3 = the source item; 2 = same category+colour+pattern; 1 = same
  category+colour.
- composed: a product image + "like this but in <colour>". 3 = same category+pattern+style in the new colour;
  2 = same category+pattern in the new colour; 1 = same category+material in the new colour.

Queries are split into train/eval by a hash of their *intent* (the facet spec, or the source item), so two
wordings of one intent never straddle the split.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modules.data.catalog import vocab

_FACET_ORDER = ("color", "pattern", "style", "material", "gender", "price")


@dataclass
class StreetPhotoJob:
    qid: str
    item_index: int
    image_path: str


class _Catalog:
    """Column arrays of the truth table, indexed per category for fast judging."""

    def __init__(self, truth: pd.DataFrame) -> None:
        self.df = truth
        self.ids = truth["item_id"].to_numpy()
        self.cols = {c: truth[c].to_numpy() for c in ("category", "color", "pattern", "style", "material",
                                                          "gender")}
        self.price = truth["price"].to_numpy(dtype=np.float64)
        self.is_new = truth["is_new"].to_numpy(dtype=bool)
        self.by_cat = {c: np.flatnonzero(self.cols["category"] == c) for c in np.unique(self.cols["category"])}
        self.pos = {item: i for i, item in enumerate(self.ids)}

    def all_new(self, relevance: dict[str, int]) -> bool:
        """True when every judged item is a new SKU (a cold-start query)."""
        return bool(relevance) and all(self.is_new[self.pos[i]] for i in relevance)

    def judge_text(self, spec: dict, cold: bool) -> np.ndarray:
        """Grades (0..3) for the items of spec['category'] (aligned with self.by_cat[category])."""
        idx = self.by_cat[spec["category"]]
        ok = np.ones(idx.size, dtype=bool)
        if "gender" in spec:
            g = self.cols["gender"][idx]
            ok &= (g == spec["gender"]) | (g == "unisex")
        if "price" in spec:
            ok &= self.price[idx] <= spec["price"]
        if cold:
            ok &= self.is_new[idx]
        extras = [f for f in ("pattern", "style", "material") if f in spec]
        n_match = np.zeros(idx.size, dtype=np.int64)
        for f in extras:
            n_match += self.cols[f][idx] == spec[f]
        all_extras = n_match == len(extras)
        if "color" in spec:
            col = self.cols["color"][idx]
            col_ok = col == spec["color"]
            near = np.isin(col, vocab.COLOR_NEIGHBOURS[spec["color"]])
            grade = np.where(col_ok & all_extras, 3, np.where(col_ok, 2, np.where(near & all_extras, 1, 0)))
        else:
            near_all = (n_match >= len(extras) - 1) & (len(extras) >= 2)
            grade = np.where(all_extras, 3, np.where(near_all, 2, 0))
        return np.where(ok, grade, 0)


def _bounded(ids: np.ndarray, grades: np.ndarray, max_relevant: int) -> dict[str, int]:
    keep = np.flatnonzero(grades > 0)
    keep = keep[np.argsort(-grades[keep], kind="stable")][:max_relevant]
    return {str(ids[i]): int(grades[i]) for i in keep}


def _split(key: str, seed: int, eval_fraction: float) -> str:
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16) / float(16**12)
    return "eval" if h < eval_fraction else "train"


def _word(rng: np.random.Generator, options: list[str], canonical: float = 0.6) -> str:
    return options[0] if rng.random() < canonical else options[int(rng.integers(0, len(options)))]


def _price_bound(price: float) -> int:
    return next((b for b in vocab.PRICE_BOUNDS if b >= price), int(np.ceil(price / 1000.0) * 1000))


def _anchor_value(row: pd.Series, facet: str) -> object:
    return _price_bound(float(row["price"])) if facet == "price" else row[facet]


def _text_spec(row: pd.Series, rng: np.random.Generator) -> dict:
    spec: dict = {"category": row["category"]}
    probs = {"color": 0.8, "pattern": 0.35 if row["pattern"] != "solid" else 0.08, "style": 0.35,
             "material": 0.25, "gender": 0.25 if row["gender"] != "unisex" else 0.0, "price": 0.25}
    for f in _FACET_ORDER:
        if rng.random() < probs[f]:
            spec[f] = _anchor_value(row, f)
    if not any(f in spec for f in ("color", "pattern", "style", "material")):
        spec["style"] = row["style"]
    return spec


def _text_of(spec: dict, rng: np.random.Generator, cold: bool) -> str:
    """Word a facet spec: '[new] [women's] [minimalist] [white] [striped] [leather] sneakers [for men] [under 50]'."""
    noun = _word(rng, vocab.CATEGORIES[spec["category"]].synonyms, 0.4)
    words: list[str] = [str(rng.choice(vocab.COLD_PREFIXES))] if cold else []
    gender_suffix = "gender" in spec and rng.random() < 0.4
    if "gender" in spec and not gender_suffix:
        words.append(_word(rng, vocab.GENDER_WORDS[spec["gender"]]))
    if "style" in spec:
        words.append(_word(rng, vocab.STYLE_SYNONYMS[spec["style"]]))
    color_after = "color" in spec and rng.random() < 0.2
    if "color" in spec and not color_after:
        words.append(_word(rng, vocab.COLOR_SYNONYMS[spec["color"]], 0.7))
    if "pattern" in spec:
        words.append(_word(rng, vocab.PATTERN_SYNONYMS[spec["pattern"]]))
    if "material" in spec:
        words.append(spec["material"])
    words.append(noun)
    if color_after:
        words.append("in " + _word(rng, vocab.COLOR_SYNONYMS[spec["color"]], 0.7))
    if gender_suffix:
        words.append(_word(rng, vocab.GENDER_SUFFIX[spec["gender"]]))
    if "price" in spec:
        words.append(str(rng.choice(vocab.PRICE_PHRASES)).format(p=spec["price"]))
    return " ".join(words).lower()


def _spec_key(spec: dict, cold: bool) -> str:
    return "text|" + "|".join(f"{k}={spec[k]}" for k in sorted(spec)) + f"|cold={cold}"


def build_text_queries(cat: _Catalog, n: int, n_cold: int, gen: dict, rng: np.random.Generator,
                       seed: int, progress: bool = False) -> list[dict]:
    """``n`` text queries of which ``n_cold`` are cold-start ("new ...") queries. Unique texts."""
    max_g3 = int(gen["max_grade3"])
    max_rel = int(gen["max_relevant"])
    frac = float(gen["query_eval_fraction"])
    new_idx = np.flatnonzero(cat.is_new)
    n_cold = n_cold if new_idx.size else 0
    out: list[dict] = []
    seen: set[str] = set()
    attempts = 0
    from tqdm import tqdm  # local: keeps module import light

    bar = tqdm(total=n, desc="text queries", disable=not progress, leave=False)
    while len(out) < n and attempts < 30 * n + 100:
        attempts += 1
        cold = len(out) < n_cold
        anchor = int(rng.choice(new_idx)) if cold else int(rng.integers(0, len(cat.ids)))
        row = cat.df.iloc[anchor]
        spec = _text_spec(row, rng)
        grades = cat.judge_text(spec, cold)
        for f in rng.permutation(list(_FACET_ORDER)):  # narrow over-broad intents with more anchor facets
            if (grades == 3).sum() <= max_g3:
                break
            if f not in spec and not (f == "gender" and row["gender"] == "unisex"):
                spec[str(f)] = _anchor_value(row, str(f))
                grades = cat.judge_text(spec, cold)
        text = _text_of(spec, rng, cold)
        if text in seen or not (grades == 3).any():
            continue
        seen.add(text)
        relevance = _bounded(cat.ids[cat.by_cat[spec["category"]]], grades, max_rel)
        out.append({"kind": "text", "text": text, "image_path": "", "relevance": relevance,
                    "split": _split(_spec_key(spec, cold), seed, frac), "cold": cold, "source": "judged",
                    "facets": {k: (int(v) if k == "price" else str(v)) for k, v in spec.items()}})
        bar.update(1)
    bar.close()
    return out


def build_image_queries(cat: _Catalog, n: int, gen: dict, rng: np.random.Generator,
                        seed: int) -> tuple[list[dict], list[StreetPhotoJob]]:
    """Street-photo queries: the source item is grade 3; same category+colour(+pattern) grade 1-2."""
    max_rel = int(gen["max_relevant"])
    frac = float(gen["query_eval_fraction"])
    sources = rng.choice(len(cat.ids), size=n, replace=n > len(cat.ids))
    queries: list[dict] = []
    jobs: list[StreetPhotoJob] = []
    for q, src in enumerate(sources):
        c = cat.cols["category"][src]
        idx = cat.by_cat[c]
        same_col = cat.cols["color"][idx] == cat.cols["color"][src]
        same_pat = cat.cols["pattern"][idx] == cat.cols["pattern"][src]
        grades = np.where(same_col & same_pat, 2, np.where(same_col, 1, 0))
        grades[idx == src] = 3
        relevance = _bounded(cat.ids[idx], grades, max_rel)
        qid = f"q_img_{q + 1:05d}"
        path = f"images/queries/{qid}.png"
        jobs.append(StreetPhotoJob(qid, int(src), path))
        queries.append({"qid": qid, "kind": "image", "text": "", "image_path": path, "relevance": relevance,
                        "split": _split(f"item|{cat.ids[src]}", seed, frac),
                        "cold": cat.all_new(relevance),
                        "source": "judged", "source_item": str(cat.ids[src])})
    return queries, jobs


def build_composed_queries(cat: _Catalog, n: int, gen: dict, rng: np.random.Generator, seed: int) -> list[dict]:
    """'Like this but in <colour>': product image of a source item + a colour modifier."""
    max_rel = int(gen["max_relevant"])
    frac = float(gen["query_eval_fraction"])
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    attempts = 0
    while len(out) < n and attempts < 20 * n + 100:
        attempts += 1
        src = int(rng.integers(0, len(cat.ids)))
        c = cat.cols["category"][src]
        idx = cat.by_cat[c]
        col = cat.cols["color"][idx]
        same_pat = cat.cols["pattern"][idx] == cat.cols["pattern"][src]
        options = sorted(set(col[same_pat]) - {cat.cols["color"][src]})
        if not options:
            continue
        new_color = str(options[int(rng.integers(0, len(options)))])
        if (str(cat.ids[src]), new_color) in seen:
            continue
        seen.add((str(cat.ids[src]), new_color))
        in_new = col == new_color
        same_sty = cat.cols["style"][idx] == cat.cols["style"][src]
        same_mat = cat.cols["material"][idx] == cat.cols["material"][src]
        grades = np.where(in_new & same_pat & same_sty, 3, np.where(in_new & same_pat, 2,
                                                                    np.where(in_new & same_mat, 1, 0)))
        template = str(rng.choice(vocab.COMPOSED_TEMPLATES))
        text = template.format(color=_word(rng, vocab.COLOR_SYNONYMS[new_color], 0.7))
        relevance = _bounded(cat.ids[idx], grades, max_rel)
        out.append({"kind": "composed", "text": text, "image_path": f"images/{cat.ids[src]}.png",
                    "relevance": relevance, "split": _split(f"item|{cat.ids[src]}", seed, frac),
                    "cold": cat.all_new(relevance),
                    "source": "judged", "source_item": str(cat.ids[src]), "target_color": new_color})
    return out


def build_queries(truth: pd.DataFrame, counts: dict, gen: dict, seed: int,
                  progress: bool = False) -> tuple[list[dict], list[StreetPhotoJob]]:
    """All judged queries (qids assigned, stable order) plus the street photos to render."""
    cat = _Catalog(truth)
    n_text = int(counts["n_text_queries"])
    n_cold = int(round(n_text * float(gen["cold_query_fraction"])))
    text = build_text_queries(cat, n_text, n_cold, gen, np.random.default_rng([seed, 301]), seed, progress)
    for i, q in enumerate(text):
        q["qid"] = f"q_{'cold' if q['cold'] else 'text'}_{i + 1:05d}"
    image, jobs = build_image_queries(cat, int(counts["n_image_queries"]), gen, np.random.default_rng([seed, 302]),
                                      seed)
    composed = build_composed_queries(cat, int(counts["n_composed_queries"]), gen,
                                      np.random.default_rng([seed, 303]), seed)
    for i, q in enumerate(composed):
        q["qid"] = f"q_comp_{i + 1:05d}"
    keys = ["qid", "kind", "text", "image_path", "relevance", "split", "cold", "source"]
    ordered = [{**{k: q[k] for k in keys}, **{k: v for k, v in q.items() if k not in keys}}
               for q in text + image + composed]
    return ordered, jobs
