"""Data rules for DATA_DIR, shared by the fast pre-flight check and the TFX DataCheck component.

TFDV (ExampleValidator with the curated schema) checks types, domains, ranges and presence per
column. What it cannot see across rows lives here: duplicate item ids and interactions that point
to unknown items. The same per-column rules are also checked here so that the pre-flight check
gives a clear "file / column / problem" message in seconds, before any Beam job starts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ITEM_REQUIRED = ["item_id", "title", "description", "category", "brand", "price", "gender", "image_path", "created_at"]
ITEM_NON_EMPTY = ["item_id", "title", "category"]
GENDERS = {"women", "men", "unisex"}
INTERACTION_REQUIRED = ["user_id", "item_id", "event", "ts"]
EVENTS = {"view", "click", "add_to_cart", "purchase"}
QUERY_REQUIRED = ["qid", "kind", "text", "image_path", "relevance", "split"]


@dataclass(frozen=True)
class Problem:
    """One data problem: where it is and what is wrong."""

    file: str
    column: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: column '{self.column}': {self.problem}"


class DataCheckError(ValueError):
    """Raised when DATA_DIR breaks a rule; the message lists every problem (file, column, problem)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"bad input data ({len(problems)} problem(s)):\n{lines}")


def _rows(mask: pd.Series, limit: int = 5) -> str:
    """CSV line numbers (header is line 1) of the first rows where mask is true."""
    idx = [int(i) + 2 for i in mask[mask].index[:limit]]
    more = int(mask.sum()) - len(idx)
    return f"lines {idx}" + (f" and {more} more" if more > 0 else "")


def read_csv_text(path: Path) -> pd.DataFrame:
    """Read a CSV with every column as text ('' for empty cells), so nothing is silently coerced."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def check_items(items: pd.DataFrame, name: str = "items.csv") -> list[Problem]:
    problems: list[Problem] = []
    missing = [c for c in ITEM_REQUIRED if c not in items.columns]
    for col in missing:
        problems.append(Problem(name, col, "required column is missing"))
    if len(items) == 0:
        problems.append(Problem(name, "item_id", "the catalog has no rows"))
        return problems
    for col in ITEM_NON_EMPTY:
        if col in items.columns:
            empty = items[col].astype(str).str.strip() == ""
            if empty.any():
                problems.append(Problem(name, col, f"{int(empty.sum())} empty value(s) at {_rows(empty)}"))
    if "item_id" in items.columns:
        dup = items["item_id"].duplicated(keep=False) & (items["item_id"] != "")
        if dup.any():
            ids = sorted(items.loc[dup, "item_id"].unique())[:5]
            problems.append(Problem(name, "item_id", f"duplicate item ids {ids} at {_rows(dup)}"))
    if "price" in items.columns:
        price = pd.to_numeric(items["price"], errors="coerce")
        bad = price.isna()
        if bad.any():
            problems.append(Problem(name, "price", f"non-numeric value(s) {list(items.loc[bad, 'price'][:3])} at {_rows(bad)}"))
        neg = price < 0
        if neg.any():
            problems.append(Problem(name, "price", f"negative value(s) {list(items.loc[neg, 'price'][:3])} at {_rows(neg)}"))
    if "created_at" in items.columns:
        ts = pd.to_numeric(items["created_at"], errors="coerce")
        bad = ts.isna() | (ts < 0)
        if bad.any():
            problems.append(Problem(name, "created_at", f"not a non-negative unix time at {_rows(bad)}"))
    if "gender" in items.columns:
        bad = ~items["gender"].isin(GENDERS)
        if bad.any():
            problems.append(Problem(name, "gender", f"value(s) {sorted(items.loc[bad, 'gender'].unique())[:3]} not in {sorted(GENDERS)} at {_rows(bad)}"))
    return problems


def check_interactions(inter: pd.DataFrame, item_ids: set[str], name: str = "interactions.csv") -> list[Problem]:
    problems = [Problem(name, c, "required column is missing") for c in INTERACTION_REQUIRED if c not in inter.columns]
    if problems or len(inter) == 0:
        return problems
    unknown = ~inter["item_id"].isin(item_ids)
    if unknown.any():
        ids = sorted(inter.loc[unknown, "item_id"].unique())[:5]
        problems.append(Problem(name, "item_id", f"{int(unknown.sum())} interaction(s) point to unknown items {ids} at {_rows(unknown)}"))
    bad_event = ~inter["event"].isin(EVENTS)
    if bad_event.any():
        problems.append(Problem(name, "event", f"value(s) {sorted(inter.loc[bad_event, 'event'].unique())[:3]} not in {sorted(EVENTS)}"))
    ts = pd.to_numeric(inter["ts"], errors="coerce")
    if (ts.isna() | (ts < 0)).any():
        problems.append(Problem(name, "ts", f"not a non-negative unix time at {_rows(ts.isna() | (ts < 0))}"))
    if (inter["user_id"].astype(str).str.strip() == "").any():
        problems.append(Problem(name, "user_id", "empty value(s)"))
    return problems


def check_queries(path: Path, item_ids: set[str]) -> list[Problem]:
    name = path.name
    problems: list[Problem] = []
    with path.open() as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(name, "-", f"line {lineno}: not valid JSON ({exc.msg})"))
                continue
            missing = [c for c in QUERY_REQUIRED if c not in q]
            if missing:
                problems.append(Problem(name, missing[0], f"line {lineno}: required field(s) {missing} missing"))
            elif q["split"] not in ("train", "eval"):
                problems.append(Problem(name, "split", f"line {lineno}: {q['split']!r} is not train/eval"))
            elif not isinstance(q["relevance"], dict) or any(k not in item_ids for k in q["relevance"]):
                problems.append(Problem(name, "relevance", f"line {lineno}: relevance must map known item ids to grades"))
            if len(problems) >= 10:
                break
    return problems


def check_data_dir(data_dir: str | Path) -> dict:
    """Check DATA_DIR against every rule; raise DataCheckError naming file, column and problem.

    Returns a small report (row counts) when the data is clean.
    """
    data_dir = Path(data_dir)
    items_path = data_dir / "items.csv"
    if not items_path.is_file():
        raise DataCheckError([Problem(str(items_path), "-", "file not found")])
    items = read_csv_text(items_path)
    problems = check_items(items, str(items_path))
    item_ids = set(items["item_id"]) if "item_id" in items.columns else set()
    n_inter = 0
    inter_path = data_dir / "interactions.csv"
    if inter_path.is_file() and inter_path.stat().st_size > 0:
        inter = read_csv_text(inter_path)
        n_inter = len(inter)
        problems += check_interactions(inter, item_ids, str(inter_path))
    queries_path = data_dir / "queries.jsonl"
    if queries_path.is_file():
        problems += [Problem(str(queries_path), p.column, p.problem) for p in check_queries(queries_path, item_ids)]
    if problems:
        raise DataCheckError(problems)
    return {"n_items": len(items), "n_interactions": n_inter}
