"""Bring your own catalog: turn a user's CSV (+ product photos) into a PixelMatch DATA_DIR.

The output is exactly the format `pixelmatch generate` writes (docs/architecture.md, "DATA_DIR"), so
`pixelmatch run` and `pixelmatch serve` work on it unchanged:

- ``items.csv``        the core columns, then every other input column kept as an attribute (used as text);
- ``interactions.csv`` header only (a catalog brings no history: the pipeline skips the recommenders);
- ``queries.jsonl``    self-supervised known-item queries (modules/data/selfsup.py) for evaluation, blessing, ranking;
- ``images/``          normalised copies (RGB JPEG, longest side <= ``ingest.max_image_side``), one per item;
- ``manifest.json``    ``source="ingested"``, seed, counts, ``cutoff_ts`` (every item counts as old), checksums;
- ``ingest_report.json`` every rejected or flagged row with its reason.

Input rules (issue #7):
- required columns: an id (``item_id`` or ``id``) and ``title``; ``--map TARGET=SOURCE`` renames columns;
- an id outside the item-id rule, a duplicate id, an empty title or an unparseable / negative price rejects the row;
- text cells that a spreadsheet would run as a formula (starting with = + - @ TAB CR) are written with a leading ';
- a missing or corrupt image keeps the row as text-only and flags it;
- bytes that are not UTF-8 are decoded with replacement characters and the row is flagged;
- zero usable rows raise :class:`IngestError` (the CLI exits non-zero);
- an empty or absent price is stored as 0.0 and an empty or absent category as ``ingest.default_category``
  ("other"), because the pipeline's data contract requires both on every item (flagged when the column exists).

Gender is normalised to the contract's ``women`` / ``men`` / ``unisex`` (boys -> men, girls -> women,
anything unknown or empty -> unisex). When the source used any other spelling, its original value is kept
in a ``gender_label`` attribute column so that nothing the shop wrote (e.g. "Boys") is lost.

Images are streamed (modules/data/ingest_images.py); the report, counts and manifest are written by
modules/data/ingest_report.py.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.config import load_params, param_seed
from modules.data.delta_ingest import csv_safe
from modules.data.delta_log import ITEM_ID_PATTERN
from modules.data.ingest_images import copy_images, fresh_images_dir, image_source
from modules.data.ingest_report import IngestError, IngestReport, format_summary, ingest_counts, write_manifest
from modules.data.selfsup import make_selfsupervised_queries
from modules.settings import section_dict

CORE_COLUMNS: list[str] = [
    "item_id", "title", "description", "category", "brand", "price", "gender", "image_path", "created_at",
]
INTERACTION_COLUMNS: list[str] = ["user_id", "item_id", "event", "ts"]
STALE_FILES: tuple[str, ...] = ("truth_items.csv", "truth_users.csv")  # generator-only files, removed on ingest
# Source spellings understood without a --map (the first one present wins).
AUTO_ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": ("id", "sku", "product_id"),
    "color": ("colour", "baseColour", "base_colour", "baseColor", "base_color"),
}
GENDER_SYNONYMS: dict[str, str] = {
    "men": "men", "man": "men", "male": "men", "mens": "men", "men's": "men", "boys": "men", "boy": "men", "m": "men",
    "women": "women", "woman": "women", "female": "women", "womens": "women", "women's": "women", "girls": "women",
    "girl": "women", "ladies": "women", "f": "women", "w": "women",
    "unisex": "unisex", "all": "unisex", "": "unisex",
}
CURRENCY_CHARS = "$€£¥₹"
_PRICE_RE = re.compile(r"^[+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")


# ---------------------------------------------------------------------------------------------------------------------
# Small pure helpers (unit-tested through ingest_catalog).

def snake_case(name: str) -> str:
    """`masterCategory` -> `master_category`, `Base Colour` -> `base_colour` (attribute column names)."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()
    return s or "column"


def parse_price(raw: str) -> float | None:
    """Parse "12.5", "$1,299.00", "€ 30" -> float; "" -> 0.0 is decided by the caller. None when unparseable."""
    s = raw.strip()
    for ch in CURRENCY_CHARS:
        s = s.replace(ch, "")
    s = s.strip()
    if not s or not _PRICE_RE.match(s) or s in (".", "+"):
        return None
    value = float(s.replace(",", ""))
    return value if math.isfinite(value) else None


def normalise_gender(raw: str) -> str:
    """Map a shop's gender label to women / men / unisex (unknown -> unisex)."""
    return GENDER_SYNONYMS.get(raw.strip().lower(), "unisex")


def _ingest_params(params: dict | None) -> dict[str, Any]:
    """The ``ingest`` settings of ``params`` over params.yaml's (the only source of defaults)."""
    base = {k: v for k, v in section_dict("ingest").items() if k != "selfsup"}
    section = (params or {}).get("ingest") or {}
    return {**base, **{k: v for k, v in section.items() if k in base}}


# ---------------------------------------------------------------------------------------------------------------------
# Reading the CSV.

def _read_csv_text(csv_path: Path) -> tuple[str, bool]:
    """Return the decoded text and whether invalid UTF-8 had to be replaced."""
    if not csv_path.exists():
        raise IngestError(f"catalog CSV not found: {csv_path}")
    if not csv_path.is_file():
        raise IngestError(f"catalog CSV is not a regular file: {csv_path}")
    try:
        raw = csv_path.read_bytes()
    except OSError as e:
        raise IngestError(f"cannot read catalog CSV {csv_path}: {e.strerror or e}") from e
    try:
        return raw.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8-sig", errors="replace"), True


def _resolve_columns(header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Map each output column name -> index in the input row, applying --map, auto-aliases and snake_case."""
    positions = {name: i for i, name in reversed(list(enumerate(header)))}  # first occurrence wins
    out: dict[str, int] = {}
    for target, source in mapping.items():
        target = target.strip()
        if source not in positions:
            raise IngestError(
                f"--map {target}={source}: column {source!r} is not in the CSV header ({', '.join(header)})"
            )
        out[target] = positions[source]
    claimed = set(out.values())
    for target, aliases in AUTO_ALIASES.items():
        if target in out or target in positions:
            continue
        for alias in aliases:
            if alias in positions and positions[alias] not in claimed:
                out[target] = positions[alias]
                claimed.add(positions[alias])
                break
    for i, name in enumerate(header):
        if i in claimed:
            continue
        col = name.strip() if name.strip() in CORE_COLUMNS else snake_case(name)
        if col in out:  # e.g. the CSV has both `category` and `--map category=articleType`: the mapped one wins
            continue
        out[col] = i
        claimed.add(i)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# The ingest itself.

@dataclass
class _Catalog:
    """The opened CSV: its row reader (positioned after the header), header, resolved columns, encoding flag."""

    reader: Any                 # csv.reader over the decoded text
    header: list[str]
    cols: dict[str, int]        # output column -> index in the input row
    extra_cols: list[str]       # output columns that are attributes (not CORE_COLUMNS)
    replaced: bool              # invalid UTF-8 was replaced with U+FFFD


def _open_catalog(csv_path: Path, mapping: dict[str, str]) -> _Catalog:
    """Read and decode the CSV, parse its header and resolve the columns (raises IngestError)."""
    text, replaced = _read_csv_text(csv_path)
    if "\x00" in text:
        text = text.replace("\x00", "")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration as e:
        raise IngestError(f"catalog CSV is empty: {csv_path}") from e
    except csv.Error as e:
        raise IngestError(f"catalog CSV header cannot be parsed: {e}") from e
    if not any(h.strip() for h in header):
        raise IngestError(f"catalog CSV has an empty header line: {csv_path}")
    cols = _resolve_columns(header, mapping)
    missing = [c for c in ("item_id", "title") if c not in cols]
    if missing:
        raise IngestError(
            f"catalog CSV lacks required column(s) {missing}; found {header}. "
            "Rename with --map, e.g. --map item_id=id --map title=name"
        )
    extra_cols = [c for c in cols if c not in CORE_COLUMNS]
    return _Catalog(reader=reader, header=header, cols=cols, extra_cols=extra_cols, replaced=replaced)


# ---- pass 1: parse and validate rows (text only, cheap) ----

def _parse_rows(cat: _Catalog, cfg: dict[str, Any], report: IngestReport) -> tuple[list[dict[str, str]], int]:
    """Every usable row as a record (with its line number under ``_line``) and the number of rows read."""
    reader = cat.reader
    rows: list[dict[str, str]] = []
    seen_ids: set[str] = set()
    n_read = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            n_read += 1
            report.add(reader.line_num, "", "malformed_row", "rejected", f"CSV row cannot be parsed: {e}")
            continue
        if not fields or not any(f.strip() for f in fields):
            continue  # blank line
        n_read += 1
        rec = _parse_row(fields, reader.line_num, cat, seen_ids, cfg, report)
        if rec is not None:
            seen_ids.add(rec["item_id"])
            rows.append(rec)
    return rows, n_read


def _parse_row(fields: list[str], line_no: int, cat: _Catalog, seen_ids: set[str], cfg: dict[str, Any],
               report: IngestReport) -> dict[str, str] | None:
    """One CSV row -> a validated record, or None when it is rejected (the reason goes to the report)."""
    cols = cat.cols
    if len(fields) != len(cat.header):
        report.add(line_no, fields[cols["item_id"]].strip() if len(fields) > cols["item_id"] else "",
                   "malformed_row", "rejected", f"expected {len(cat.header)} fields, found {len(fields)}")
        return None
    rec = {name: fields[i].strip() for name, i in cols.items()}
    if not _valid_id_and_title(rec, line_no, seen_ids, report):
        return None
    if not _fill_price_and_category(rec, line_no, cols, cfg, report):
        return None
    if cat.replaced and any("\ufffd" in v for v in rec.values()):
        report.add(line_no, rec["item_id"], "encoding", "flagged",
                   "row had bytes that are not UTF-8 (replaced with U+FFFD)")
    rec["_line"] = str(line_no)
    return rec


def _valid_id_and_title(rec: dict[str, str], line_no: int, seen_ids: set[str], report: IngestReport) -> bool:
    """False (reported) for an empty, rule-breaking or duplicate id, or an empty title."""
    item_id = rec["item_id"]
    if not item_id:
        report.add(line_no, "", "empty_id", "rejected", "empty item id")
        return False
    if not ITEM_ID_PATTERN.match(item_id):  # the one id rule of the API, the delta log and replay
        report.add(line_no, item_id, "bad_id", "rejected",
                   f"item id {item_id!r} breaks the id rule (1-128 of A-Z a-z 0-9 . _ : -)")
        return False
    if item_id in seen_ids:
        report.add(line_no, item_id, "duplicate_id", "rejected", f"duplicate item id {item_id!r} (first row kept)")
        return False
    if not rec["title"]:
        report.add(line_no, item_id, "empty_title", "rejected", "empty title")
        return False
    return True


def _fill_price_and_category(rec: dict[str, str], line_no: int, cols: dict[str, int], cfg: dict[str, Any],
                             report: IngestReport) -> bool:
    """Normalise the price (False, reported, when unparseable or negative) and default an empty category."""
    item_id = rec["item_id"]
    raw_price = rec.get("price", "")
    if raw_price:
        price = parse_price(raw_price)
        if price is None or price < 0:
            report.add(line_no, item_id, "bad_price", "rejected", f"unparseable or negative price {raw_price!r}")
            return False
        rec["price"] = repr(float(price))
    else:
        rec["price"] = "0.0"
        if "price" in cols:
            report.add(line_no, item_id, "missing_price", "flagged", "empty price: stored as 0.0")
    if not rec.get("category"):  # the pipeline's data check requires a category on every item
        rec["category"] = str(cfg["default_category"])
        if "category" in cols:
            report.add(line_no, item_id, "missing_category", "flagged",
                       f"empty category: stored as {cfg['default_category']!r}")
    return True


# ---- gender and created_at normalisation ----

def _normalise_gender_and_dates(rows: list[dict[str, str]], extra_cols: list[str], cfg: dict[str, Any],
                                report: IngestReport) -> int:
    """Map genders to the contract (keeping a ``gender_label`` column when needed), default created_at;
    return the manifest's ``cutoff_ts`` (every ingested item counts as "old")."""
    gender_label_needed = any(r.get("gender", "").strip().lower() not in ("men", "women", "unisex") and r.get("gender")
                              for r in rows)
    base_ts = int(cfg["created_at"])
    for r in rows:
        raw_gender = r.get("gender", "")
        r["gender"] = normalise_gender(raw_gender)
        if gender_label_needed:
            r["gender_label"] = raw_gender
        ts = r.get("created_at", "")
        try:
            r["created_at"] = str(int(float(ts))) if ts else str(base_ts)
        except ValueError:
            r["created_at"] = str(base_ts)
            report.add(int(r["_line"]), r["item_id"], "bad_created_at", "flagged",
                       f"created_at {ts!r} is not unix seconds: set to {base_ts}")
    if gender_label_needed and "gender_label" not in extra_cols:
        extra_cols.append("gender_label")
    return max(int(r["created_at"]) for r in rows) + 1


# ---- outputs ----

def _write_tables(out: Path, rows: list[dict[str, str]], extra_cols: list[str]) -> tuple[list[str], Path]:
    """items.csv, a header-only interactions.csv and an empty new-item list; return the columns and that list."""
    columns = CORE_COLUMNS + [c for c in extra_cols if c not in CORE_COLUMNS]
    with (out / "items.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([csv_safe(r[c]) if isinstance(r.get(c), str) else r.get(c, "") for c in columns])
    with (out / "interactions.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(INTERACTION_COLUMNS)
    new_ids = out / "new_items.txt"
    new_ids.write_text("", encoding="utf-8")  # nothing is newer than cutoff_ts
    for stale in STALE_FILES:  # a previous `generate` into the same DATA_DIR must not leave its hidden truth behind
        (out / stale).unlink(missing_ok=True)
    return columns, new_ids


def _write_queries(out: Path, rows: list[dict[str, str]], seed: int, params: dict,
                   progress: bool) -> list[dict[str, Any]]:
    """Self-supervised known-item queries for the ingested items, written to queries.jsonl."""
    items_for_queries = [{"item_id": r["item_id"], "title": r["title"], "image_path": r["image_path"]} for r in rows]
    queries = make_selfsupervised_queries(items_for_queries, out, seed=seed, params=params, progress=progress)
    with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False, sort_keys=True) + "\n")
    return queries


def ingest_catalog(
    csv_path: str | Path,
    images_dir: str | Path | None,
    out_dir: str | Path,
    mapping: dict[str, str] | None = None,
    seed: int | None = None,
    params: dict | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Ingest ``csv_path`` (+ photos) into ``out_dir`` and return the ingest report (also written as JSON).

    ``images_dir``: folder of ``<id>.jpg|.jpeg|.png|.webp``; when None, an ``image_path`` column (relative to
    the CSV) is used if present, otherwise the catalog is text-only. ``mapping``: {target: source} renames.
    Raises :class:`IngestError` when the CSV cannot be read, lacks an id or title column, or has no usable row.
    """
    params = params if params is not None else load_params()
    seed = param_seed(params) if seed is None else seed
    cfg = _ingest_params(params)
    csv_path = Path(csv_path)
    out = Path(out_dir)
    mapping = dict(mapping or {})

    cat = _open_catalog(csv_path, mapping)
    images = image_source(images_dir, cat.cols, csv_path)
    report = IngestReport(int(cfg["max_report_rows"]))
    if cat.replaced:
        report.add(0, "", "encoding", "flagged", "file is not valid UTF-8: undecodable bytes were replaced with U+FFFD")
    rows, n_read = _parse_rows(cat, cfg, report)
    if not rows:
        first = "; ".join(f"line {r['line']}: {r['reason']}" for r in report.rows[:3])
        raise IngestError(f"no usable rows in {csv_path} ({n_read} read). First problems: {first or 'file has no data rows'}")
    cutoff_ts = _normalise_gender_and_dates(rows, cat.extra_cols, cfg, report)

    images_out = fresh_images_dir(out)
    n_images = copy_images(rows, out, images, cfg, report, progress)
    columns, new_ids = _write_tables(out, rows, cat.extra_cols)
    queries = _write_queries(out, rows, seed, params, progress)

    counts = ingest_counts(n_read, len(rows), n_images, report, queries)
    write_manifest(out, csv_path, seed, counts, cutoff_ts, new_ids, images_out)
    result = {
        "catalog": str(csv_path),
        "out_dir": str(out),
        "image_mode": images.mode,
        "columns": columns,
        "mapping": mapping,
        "counts": counts,
        "problems": dict(sorted(report.reasons.items())),
        "rows": report.rows,
        "rows_truncated": report.truncated,
        "encoding_replaced": cat.replaced,
    }
    (out / "ingest_report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if progress:
        print(format_summary(result, int(cfg["summary_reasons"])))
    return result
