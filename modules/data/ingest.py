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

Images are streamed: each one is decoded, normalised, written and released before the next is opened.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from modules.config import DEFAULT_SEED, load_params
from modules.data.delta_ingest import ITEM_ID_PATTERN, csv_safe
from modules.data.images import ImageError, load_image
from modules.data.selfsup import make_selfsupervised_queries
from modules.checksums import sha256_file, tree_digest
from modules.settings import section_dict

CORE_COLUMNS: list[str] = [
    "item_id", "title", "description", "category", "brand", "price", "gender", "image_path", "created_at",
]
INTERACTION_COLUMNS: list[str] = ["user_id", "item_id", "event", "ts"]
STALE_FILES: tuple[str, ...] = ("truth_items.csv", "truth_users.csv")  # generator-only files, removed on ingest
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")
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
class IngestError(RuntimeError):
    """The catalog cannot be ingested at all (unreadable CSV, missing required columns, zero usable rows)."""


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


def _safe_stem(item_id: str, used: set[str]) -> str:
    """A file name stem for an item id that cannot escape images/ and never collides."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)[:80].lstrip(".") or "item"
    if stem != item_id or stem.lower() in used:
        stem = f"{stem}-{hashlib.sha1(item_id.encode('utf-8')).hexdigest()[:10]}"
    used.add(stem.lower())
    return stem


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

class _Report:
    """Collects per-row problems; counts are always complete, the detail list is capped."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.rows: list[dict[str, Any]] = []
        self.reasons: Counter[str] = Counter()
        self.truncated = False

    def add(self, line: int, item_id: str, kind: str, action: str, message: str) -> None:
        self.reasons[kind] += 1
        if len(self.rows) < self.max_rows:
            self.rows.append({"line": line, "item_id": item_id, "problem": kind, "action": action, "reason": message})
        else:
            self.truncated = True


def _find_image(item_id: str, images_index: dict[str, Path]) -> Path | None:
    return images_index.get(item_id) or images_index.get(item_id.lower())


def _image_path_source(csv_dir: Path, rel: str) -> tuple[Path | None, str | None]:
    """``rel`` (an image_path cell) -> a file under ``csv_dir``, or a reason it is refused.

    Refused: absolute paths, drive letters, ``..`` components, and any symlink on the way (a symlinked folder
    or file could point anywhere the ingesting user can read)."""
    parts = Path(rel.replace("\\", "/")).parts
    if not parts or Path(rel).is_absolute() or rel.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
        return None, f"image_path {rel!r} must be a relative path inside the CSV's folder (no '..', not absolute)"
    p = csv_dir
    for part in parts:
        p = p / part
        if p.is_symlink():
            return None, f"image_path {rel!r} goes through a symlink ({part!r}); symlinks are not followed"
    if csv_dir.resolve() not in p.resolve().parents:
        return None, f"image_path {rel!r} resolves outside the CSV's folder"
    return p, None


def _index_images_dir(images_dir: Path) -> dict[str, Path]:
    """`<id>.<ext>` files in images_dir keyed by id (one directory listing, preferring .jpg > .jpeg > .png > .webp)."""
    if not images_dir.is_dir():
        raise IngestError(f"--images {images_dir}: not a directory")
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    best: dict[str, tuple[int, Path]] = {}
    with os.scandir(images_dir) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            ext = ext.lower()
            if ext not in rank or not entry.is_file(follow_symlinks=False):   # symlinks are not followed
                continue
            for key in {stem, stem.lower()}:
                if key not in best or rank[ext] < best[key][0]:
                    best[key] = (rank[ext], Path(entry.path))
    return {k: v[1] for k, v in best.items()}


def _write_normalised_image(src: Path, dst: Path, cfg: dict[str, Any]) -> None:
    """Decode src safely, convert to RGB, downscale to the max side, write a JPEG (raises ImageError)."""
    img = load_image(src, max_pixels=int(cfg["max_image_pixels"]))
    try:
        side = int(cfg["max_image_side"])
        if max(img.size) > side:
            img.thumbnail((side, side))
        tmp = dst.with_suffix(".tmp")
        img.save(tmp, format="JPEG", quality=int(cfg["jpeg_quality"]))
        os.replace(tmp, dst)
    finally:
        img.close()


_REJECT_KINDS = frozenset({"malformed_row", "empty_id", "bad_id", "duplicate_id", "empty_title", "bad_price"})


@dataclass
class _Catalog:
    """The opened CSV: its row reader (positioned after the header), header, resolved columns, encoding flag."""

    reader: Any                 # csv.reader over the decoded text
    header: list[str]
    cols: dict[str, int]        # output column -> index in the input row
    extra_cols: list[str]       # output columns that are attributes (not CORE_COLUMNS)
    replaced: bool              # invalid UTF-8 was replaced with U+FFFD


@dataclass
class _ImageSource:
    """Where the photos come from: ``mode`` is images_dir | image_path_column | none."""

    mode: str
    index: dict[str, Path]              # <id> -> file (mode images_dir)
    images_dir: str | Path | None       # as the caller gave it (used in messages)
    csv_dir: Path                       # image_path cells are relative to it


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


def _image_source(images_dir: str | Path | None, cols: dict[str, int], csv_path: Path) -> _ImageSource:
    """Index ``images_dir`` (raises IngestError when it is not a directory), else use an image_path column."""
    images_index: dict[str, Path] = {}
    image_mode = "none"
    if images_dir is not None:
        images_index = _index_images_dir(Path(images_dir))
        image_mode = "images_dir"
    elif "image_path" in cols:
        image_mode = "image_path_column"
    return _ImageSource(mode=image_mode, index=images_index, images_dir=images_dir,
                        csv_dir=csv_path.resolve().parent)


# ---- pass 1: parse and validate rows (text only, cheap) ----

def _parse_rows(cat: _Catalog, cfg: dict[str, Any], report: _Report) -> tuple[list[dict[str, str]], int]:
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
               report: _Report) -> dict[str, str] | None:
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


def _valid_id_and_title(rec: dict[str, str], line_no: int, seen_ids: set[str], report: _Report) -> bool:
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
                             report: _Report) -> bool:
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
                                report: _Report) -> int:
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


# ---- pass 2: images, streamed one at a time ----

def _fresh_images_dir(out: Path) -> Path:
    """Create ``out`` and an empty ``out/images`` (raises IngestError when ``out`` is a file)."""
    if out.exists() and not out.is_dir():
        raise IngestError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    images_out = out / "images"
    if images_out.exists():
        shutil.rmtree(images_out)  # a re-ingest must not leave stale photos from a previous catalog
    images_out.mkdir()
    return images_out


def _copy_images(rows: list[dict[str, str]], out: Path, images: _ImageSource, cfg: dict[str, Any],
                 report: _Report, progress: bool) -> int:
    """Give every row a normalised photo under ``out/images`` or an empty image_path; return how many got one."""
    used_stems: set[str] = set()
    n_images = 0
    for r in tqdm(rows, desc="ingest: checking + copying images", unit="img", disable=not progress):
        n_images += _copy_row_image(r, out, images, used_stems, cfg, report)
    return n_images


def _locate_image(r: dict[str, str], images: _ImageSource, report: _Report) -> tuple[Path | None, str | None]:
    """(source file or None, the message if it turns out missing); (None, None) when an unsafe image_path
    was refused (already reported)."""
    if images.mode == "images_dir":
        return (_find_image(r["item_id"], images.index),
                f"no <id>.jpg|.jpeg|.png|.webp for {r['item_id']!r} in {images.images_dir}")
    if images.mode == "image_path_column" and r.get("image_path"):
        src, unsafe = _image_path_source(images.csv_dir, r["image_path"])
        if unsafe:
            report.add(int(r["_line"]), r["item_id"], "unsafe_image_path", "text_only", unsafe)
            return None, None
        return src, f"image_path {r['image_path']!r} not found (relative to {images.csv_dir})"
    return None, "empty image_path cell"


def _copy_row_image(r: dict[str, str], out: Path, images: _ImageSource, used_stems: set[str],
                    cfg: dict[str, Any], report: _Report) -> bool:
    """Normalise one row's photo into ``out/images``; False (reported unless text-only) when it has none."""
    src, missing_msg = _locate_image(r, images, report)
    r["image_path"] = ""
    if missing_msg is None:
        return False
    if src is None or not src.is_file():
        if images.mode != "none":
            report.add(int(r["_line"]), r["item_id"], "missing_image", "text_only", missing_msg)
        return False
    rel = f"images/{_safe_stem(r['item_id'], used_stems)}.jpg"
    try:
        _write_normalised_image(src, out / rel, cfg)
    except ImageError as e:
        report.add(int(r["_line"]), r["item_id"], "bad_image", "text_only", f"{src.name}: {e}")
        return False
    except OSError as e:
        report.add(int(r["_line"]), r["item_id"], "bad_image", "text_only", f"{src.name}: cannot be written: {e}")
        return False
    r["image_path"] = rel
    return True


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


def _counts(n_read: int, n_items: int, n_images: int, report: _Report,
            queries: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's (and report's) ``counts``."""
    return {
        "rows_read": n_read,
        "items": n_items,
        "rejected": sum(n for k, n in report.reasons.items() if k in _REJECT_KINDS),
        "with_image": n_images,
        "text_only": n_items - n_images,
        "users": 0,
        "interactions": 0,
        "interactions_train": 0,
        "new_items": 0,
        "queries": len(queries),
        "queries_by_kind": {k: sum(q["kind"] == k for q in queries) for k in ("text", "image", "composed")},
        "queries_cold": 0,
        "queries_eval": sum(q["split"] == "eval" for q in queries),
        "images": n_images,
    }


def _write_manifest(out: Path, csv_path: Path, seed: int, counts: dict[str, Any], cutoff_ts: int,
                    new_ids: Path, images_out: Path) -> None:
    checksums = {name: sha256_file(out / name)
                 for name in ("items.csv", "interactions.csv", "queries.jsonl", "new_items.txt")}
    checksums["images"] = tree_digest(images_out)
    manifest = {
        "source": "ingested",
        "seed": seed,
        "scale": "ingested",
        "catalog": str(csv_path),
        "counts": counts,
        "cutoff_ts": cutoff_ts,
        "new_item_ids_file": new_ids.name,
        "checksums": checksums,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def ingest_catalog(
    csv_path: str | Path,
    images_dir: str | Path | None,
    out_dir: str | Path,
    mapping: dict[str, str] | None = None,
    seed: int = DEFAULT_SEED,
    params: dict | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Ingest ``csv_path`` (+ photos) into ``out_dir`` and return the ingest report (also written as JSON).

    ``images_dir``: folder of ``<id>.jpg|.jpeg|.png|.webp``; when None, an ``image_path`` column (relative to
    the CSV) is used if present, otherwise the catalog is text-only. ``mapping``: {target: source} renames.
    Raises :class:`IngestError` when the CSV cannot be read, lacks an id or title column, or has no usable row.
    """
    params = params if params is not None else load_params()
    cfg = _ingest_params(params)
    csv_path = Path(csv_path)
    out = Path(out_dir)
    mapping = dict(mapping or {})

    cat = _open_catalog(csv_path, mapping)
    images = _image_source(images_dir, cat.cols, csv_path)
    report = _Report(int(cfg["max_report_rows"]))
    if cat.replaced:
        report.add(0, "", "encoding", "flagged", "file is not valid UTF-8: undecodable bytes were replaced with U+FFFD")
    rows, n_read = _parse_rows(cat, cfg, report)
    if not rows:
        first = "; ".join(f"line {r['line']}: {r['reason']}" for r in report.rows[:3])
        raise IngestError(f"no usable rows in {csv_path} ({n_read} read). First problems: {first or 'file has no data rows'}")
    cutoff_ts = _normalise_gender_and_dates(rows, cat.extra_cols, cfg, report)

    images_out = _fresh_images_dir(out)
    n_images = _copy_images(rows, out, images, cfg, report, progress)
    columns, new_ids = _write_tables(out, rows, cat.extra_cols)
    queries = _write_queries(out, rows, seed, params, progress)

    counts = _counts(n_read, len(rows), n_images, report, queries)
    _write_manifest(out, csv_path, seed, counts, cutoff_ts, new_ids, images_out)
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


def format_summary(report: dict[str, Any], n_reasons: int = 5) -> str:
    """The stdout summary: counts, problems by kind, and the first few reasons."""
    c = report["counts"]
    lines = [
        f"ingested {c['items']} of {c['rows_read']} rows into {report['out_dir']} "
        f"({c['with_image']} with a photo, {c['text_only']} text-only, {c['rejected']} rejected; "
        f"{c['queries']} self-supervised queries)",
    ]
    if report["problems"]:
        lines.append("problems: " + ", ".join(f"{k}={v}" for k, v in report["problems"].items()))
        for r in report["rows"][:n_reasons]:
            where = f"line {r['line']} id={r['item_id']!r}" if r["line"] else "whole file"
            lines.append(f"  {where}: {r['action']}: {r['reason']}")
        lines.append(f"details: {Path(report['out_dir']) / 'ingest_report.json'}")
    return "\n".join(lines)
