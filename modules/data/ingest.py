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
from pathlib import Path
from typing import Any

from tqdm import tqdm

from modules.config import DEFAULT_SEED, defaults, load_params
from modules.data.delta_ingest import ITEM_ID_PATTERN, csv_safe
from modules.data.images import ImageError, load_image
from modules.data.selfsup import make_selfsupervised_queries
from modules.checksums import sha256_file, tree_digest

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
    base = {k: v for k, v in defaults("ingest").items() if k != "selfsup"}
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

    images_index: dict[str, Path] = {}
    image_mode = "none"
    if images_dir is not None:
        images_index = _index_images_dir(Path(images_dir))
        image_mode = "images_dir"
    elif "image_path" in cols:
        image_mode = "image_path_column"

    report = _Report(int(cfg["max_report_rows"]))
    if replaced:
        report.add(0, "", "encoding", "flagged", "file is not valid UTF-8: undecodable bytes were replaced with U+FFFD")

    # ---- pass 1: parse and validate rows (text only, cheap) ----
    rows: list[dict[str, str]] = []
    seen_ids: set[str] = set()
    line_no = 1
    n_read = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            line_no = reader.line_num
            n_read += 1
            report.add(line_no, "", "malformed_row", "rejected", f"CSV row cannot be parsed: {e}")
            continue
        line_no = reader.line_num
        if not fields or not any(f.strip() for f in fields):
            continue  # blank line
        n_read += 1
        if len(fields) != len(header):
            report.add(line_no, fields[cols["item_id"]].strip() if len(fields) > cols["item_id"] else "",
                       "malformed_row", "rejected", f"expected {len(header)} fields, found {len(fields)}")
            continue
        rec = {name: fields[i].strip() for name, i in cols.items()}
        item_id = rec["item_id"]
        if not item_id:
            report.add(line_no, "", "empty_id", "rejected", "empty item id")
            continue
        if not ITEM_ID_PATTERN.match(item_id):  # the one id rule of the API, the delta log and replay
            report.add(line_no, item_id, "bad_id", "rejected",
                       f"item id {item_id!r} breaks the id rule (1-128 of A-Z a-z 0-9 . _ : -)")
            continue
        if item_id in seen_ids:
            report.add(line_no, item_id, "duplicate_id", "rejected", f"duplicate item id {item_id!r} (first row kept)")
            continue
        if not rec["title"]:
            report.add(line_no, item_id, "empty_title", "rejected", "empty title")
            continue
        raw_price = rec.get("price", "")
        if raw_price:
            price = parse_price(raw_price)
            if price is None or price < 0:
                report.add(line_no, item_id, "bad_price", "rejected", f"unparseable or negative price {raw_price!r}")
                continue
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
        if replaced and any("\ufffd" in v for v in rec.values()):
            report.add(line_no, item_id, "encoding", "flagged", "row had bytes that are not UTF-8 (replaced with U+FFFD)")
        rec["_line"] = str(line_no)
        seen_ids.add(item_id)
        rows.append(rec)

    if not rows:
        first = "; ".join(f"line {r['line']}: {r['reason']}" for r in report.rows[:3])
        raise IngestError(f"no usable rows in {csv_path} ({n_read} read). First problems: {first or 'file has no data rows'}")

    # ---- gender and created_at normalisation ----
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
    cutoff_ts = max(int(r["created_at"]) for r in rows) + 1  # every ingested item counts as "old"

    # ---- pass 2: images, streamed one at a time ----
    if out.exists() and not out.is_dir():
        raise IngestError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    images_out = out / "images"
    if images_out.exists():
        shutil.rmtree(images_out)  # a re-ingest must not leave stale photos from a previous catalog
    images_out.mkdir()
    csv_dir = csv_path.resolve().parent
    used_stems: set[str] = set()
    n_images = 0
    for r in tqdm(rows, desc="ingest: checking + copying images", unit="img", disable=not progress):
        src: Path | None = None
        if image_mode == "images_dir":
            src = _find_image(r["item_id"], images_index)
            missing_msg = f"no <id>.jpg|.jpeg|.png|.webp for {r['item_id']!r} in {images_dir}"
        elif image_mode == "image_path_column" and r.get("image_path"):
            src, unsafe = _image_path_source(csv_dir, r["image_path"])
            if unsafe:
                report.add(int(r["_line"]), r["item_id"], "unsafe_image_path", "text_only", unsafe)
                r["image_path"] = ""
                continue
            missing_msg = f"image_path {r['image_path']!r} not found (relative to {csv_dir})"
        else:
            missing_msg = "empty image_path cell"
        r["image_path"] = ""
        if src is None or not src.is_file():
            if image_mode != "none":
                report.add(int(r["_line"]), r["item_id"], "missing_image", "text_only", missing_msg)
            continue
        rel = f"images/{_safe_stem(r['item_id'], used_stems)}.jpg"
        try:
            _write_normalised_image(src, out / rel, cfg)
        except ImageError as e:
            report.add(int(r["_line"]), r["item_id"], "bad_image", "text_only", f"{src.name}: {e}")
            continue
        except OSError as e:
            report.add(int(r["_line"]), r["item_id"], "bad_image", "text_only", f"{src.name}: cannot be written: {e}")
            continue
        r["image_path"] = rel
        n_images += 1

    # ---- write items.csv and interactions.csv ----
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

    # ---- self-supervised queries ----
    items_for_queries = [{"item_id": r["item_id"], "title": r["title"], "image_path": r["image_path"]} for r in rows]
    queries = make_selfsupervised_queries(items_for_queries, out, seed=seed, params=params, progress=progress)
    with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False, sort_keys=True) + "\n")

    # ---- manifest and report ----
    rejected_total = sum(n for k, n in report.reasons.items() if k in _REJECT_KINDS)
    counts = {
        "rows_read": n_read,
        "items": len(rows),
        "rejected": rejected_total,
        "with_image": n_images,
        "text_only": len(rows) - n_images,
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
    result = {
        "catalog": str(csv_path),
        "out_dir": str(out),
        "image_mode": image_mode,
        "columns": columns,
        "mapping": mapping,
        "counts": counts,
        "problems": dict(sorted(report.reasons.items())),
        "rows": report.rows,
        "rows_truncated": report.truncated,
        "encoding_replaced": replaced,
    }
    (out / "ingest_report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if progress:
        print(format_summary(result, int(cfg["summary_reasons"])))
    return result


_REJECT_KINDS = frozenset({"malformed_row", "empty_id", "bad_id", "duplicate_id", "empty_title", "bad_price"})


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
