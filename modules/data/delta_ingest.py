"""Fold the serving delta log (``SERVING_DIR/delta.jsonl``) back into DATA_DIR before a pipeline run.

The log's format, validation and net effect live in :mod:`modules.data.delta_log` (the server reads the log
through the same functions).

:func:`apply_delta` writes the net effect into DATA_DIR:

- an upsert replaces the ``items.csv`` row (or appends one) with the record's fields, the same replace
  semantics the live server shows: absent fields take the defaults (description "", category "other",
  brand "", price 0.0, gender "unisex"). ``created_at`` is the item's existing value when it is already in
  the catalogue, else the timestamp of its first add in the log. ``attributes`` fill a column only when
  ``items.csv`` already has it; any other attribute is folded into the description as ``key: value``.
  The stored image is checked (:func:`modules.data.images.load_image`) and copied to
  ``images/delta/<item_id>.<ext>``; an item whose update carries no image gets an empty ``image_path``;
- a delete removes the item row, its interactions (so the data check's unknown-item rule holds) and its
  entries in every query's ``relevance``; a query left with no relevant item is dropped;
- new items (``created_at >= cutoff_ts``) join the manifest's ``new_item_ids_file``; deleted ones leave it.

Chosen policy: the log is applied idempotently and **kept**. Applying the same log twice leaves DATA_DIR
byte-identical (unchanged files are not rewritten and unchanged images are not re-copied, so the run's
data fingerprint and the TFX cache are unaffected), and the server's replay of the log onto a bundle that
already contains those items is harmless (an add replaces the same item, a delete of a missing id is a
no-op). Nothing is renamed, so a failed or unblessed run loses nothing. Because the log is the authority for
the ids it mentions, a later hand edit of such an item in ``items.csv`` is overwritten on the next run, just
as the server would show the logged version. ``manifest.json`` records what was applied under
``delta_applied`` (log size, line count, sha256 of the consumed bytes, record counts).

Every file is written atomically (temporary file in the same folder, then ``os.replace``). A malformed line
is reported in the summary's ``problems`` and skipped; it never stops the run.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from modules.checksums import sha256_file, tree_digest
from modules.data.delta_log import (
    DELTA_FILE,
    DELTA_IMAGES_DIR,
    ITEM_ID_PATTERN,  # noqa: F401  (re-exported: serving/schemas.py, being edited elsewhere, imports it from here)
    DeltaState,
    fold_delta,
    read_delta_log,
)
from modules.data.images import ImageError, load_image

log = logging.getLogger(__name__)
DATA_DELTA_IMAGES = "images/delta"          # relative to DATA_DIR
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
GENDERS = ("women", "men", "unisex")
CORE_COLUMNS = ["item_id", "title", "description", "category", "brand", "price", "gender", "image_path",
                "created_at"]
MAX_PROBLEMS_REPORTED = 50
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")   # what spreadsheets evaluate (OWASP CSV injection)


class DeltaIngestError(ValueError):
    """DATA_DIR cannot take the delta (missing or unreadable items.csv, ...): the run must stop."""


# ------------------------------------------------------------------------------------------------ file helpers
def _write_atomic(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` via a temporary file + os.replace; False (and no write) when unchanged."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _read_csv_text(path: Path, what: str) -> pd.DataFrame:
    """Every column as text ('' for empty cells) so untouched rows round-trip unchanged."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DeltaIngestError(f"{path}: cannot read {what} ({exc})") from exc


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _format_price(value: float) -> str:
    return repr(float(value))


# ------------------------------------------------------------------------------------------------ applying
def _image_for(entry: dict[str, Any], serving_dir: Path, problems: list[str]) -> Path | None:
    """The stored delta image of an add entry, if it is inside delta_images/ and decodes; else None (reported)."""
    rel = entry.get("image_file")
    if not rel:
        return None
    iid = entry["item"]["item_id"]
    root = (serving_dir / DELTA_IMAGES_DIR).resolve()
    src = (serving_dir / rel).resolve()
    if root not in src.parents:
        problems.append(f"item {iid}: image_file {rel!r} is outside {DELTA_IMAGES_DIR}/; added without image")
        return None
    if src.suffix.lower() not in IMAGE_SUFFIXES or not src.is_file():
        problems.append(f"item {iid}: image_file {rel!r} is missing or not an image file; added without image")
        return None
    try:
        load_image(src)
    except ImageError as exc:
        problems.append(f"item {iid}: image_file {rel!r} does not decode ({exc}); added without image")
        return None
    return src


def _copy_image(src: Path, data_dir: Path, item_id: str) -> tuple[str, bool]:
    """Copy to images/delta/<item_id><ext> unless identical bytes are already there; (relative path, copied)."""
    rel = f"{DATA_DELTA_IMAGES}/{item_id}{src.suffix.lower()}"
    return rel, _write_atomic(data_dir / rel, src.read_bytes())


def csv_safe(text: str) -> str:
    """Neutralise a spreadsheet formula: a cell starting with = + - @ TAB or CR gets a leading apostrophe."""
    return "'" + text if text[:1] in FORMULA_PREFIXES else text


def _item_row(entry: dict[str, Any], columns: list[str], existing: dict[str, str] | None,
              image_path: str, default_category: str) -> dict[str, str]:
    """One items.csv row (all text) for an upserted item."""
    item = entry["item"]
    row = {c: "" for c in columns}
    description = " ".join((item.get("description") or "").split())
    folded = []
    for key, value in (item.get("attributes") or {}).items():
        if key in columns and key not in CORE_COLUMNS:
            row[key] = value
        else:
            folded.append(f"{key}: {value}")
    if folded:
        description = " ".join([description, "; ".join(folded)]).strip()
    gender = (item.get("gender") or "").strip().lower()
    row = {k: csv_safe(v) for k, v in row.items()}    # attribute columns
    row.update({
        "item_id": item["item_id"],       # the id rule admits no formula (no spaces, quotes, parentheses, = or +)
        "title": csv_safe(" ".join(item["title"].split())),
        "description": csv_safe(description),
        "category": csv_safe((item.get("category") or "").strip()) or default_category,
        "brand": csv_safe((item.get("brand") or "").strip()),
        "price": _format_price(item["price"]) if item.get("price") is not None else _format_price(0.0),
        "gender": gender if gender in GENDERS else "unisex",
        "image_path": image_path,
        "created_at": existing["created_at"] if existing else str(int(entry["first_ts"])),
    })
    return row


def _update_queries(path: Path, deleted: set[str]) -> tuple[bytes | None, int, int, list[dict[str, Any]]]:
    """queries.jsonl without the deleted ids in relevance; untouched lines are kept byte for byte.

    Returns (new bytes or None when the file is absent, queries changed, queries dropped, parsed queries kept).
    """
    if not path.is_file():
        return None, 0, 0, []
    out: list[str] = []
    kept: list[dict[str, Any]] = []
    changed = dropped = 0
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            q = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            q = None      # not ours to judge: the data check reports it
        rel = q.get("relevance") if isinstance(q, dict) else None
        if isinstance(rel, dict) and deleted & rel.keys():
            q["relevance"] = {k: v for k, v in rel.items() if k not in deleted}
            if not q["relevance"]:
                dropped += 1
                continue
            changed += 1
            line = json.dumps(q, ensure_ascii=False) + "\n"
        if isinstance(q, dict):
            kept.append(q)
        out.append(line)
    return "".join(out).encode("utf-8"), changed, dropped, kept


def _update_counts(counts: dict[str, Any], items: pd.DataFrame, inter: pd.DataFrame | None,
                   queries: list[dict[str, Any]] | None, n_new: int, cutoff: int | None) -> None:
    """Refresh the manifest counts that follow from the tables (only keys the manifest already has)."""
    n_img = int((items["image_path"].astype(str) != "").sum())
    values: dict[str, Any] = {"items": len(items), "new_items": n_new, "with_image": n_img,
                              "text_only": len(items) - n_img, "images": n_img}
    if inter is not None:
        values["interactions"] = len(inter)
        if cutoff is not None and len(inter):
            values["interactions_train"] = int((pd.to_numeric(inter["ts"], errors="coerce") < cutoff).sum())
    if queries is not None:
        values.update({
            "queries": len(queries),
            "queries_eval": sum(q.get("split", "eval") == "eval" for q in queries),
            "queries_cold": sum(bool(q.get("cold")) for q in queries),
            "queries_by_kind": {k: sum(q.get("kind") == k for q in queries) for k in ("text", "image", "composed")},
        })
    for key, value in values.items():
        if key in counts:
            counts[key] = value


def _read_items(items_path: Path) -> pd.DataFrame:
    """DATA_DIR's items.csv as text; raises DeltaIngestError when it is absent or lacks a core column."""
    if not items_path.is_file():
        raise DeltaIngestError(f"{items_path}: not found; the delta log can only be applied to an existing catalog")
    items = _read_csv_text(items_path, "the catalog")
    missing = [c for c in CORE_COLUMNS if c not in items.columns]
    if missing:
        raise DeltaIngestError(f"{items_path}: missing required columns {missing}")
    return items


def _read_manifest(manifest_path: Path) -> dict[str, Any]:
    """DATA_DIR's manifest.json ({} when absent); raises DeltaIngestError when it is not a JSON object."""
    manifest: dict[str, Any] = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DeltaIngestError(f"{manifest_path}: invalid JSON ({exc.msg})") from exc
        if not isinstance(manifest, dict):
            raise DeltaIngestError(f"{manifest_path}: expected a JSON object")
    return manifest


def _apply_items(items: pd.DataFrame, state: DeltaState, data_dir: Path, serving_dir: Path, default_category: str,
                 summary: dict[str, Any], problems: list[str]) -> tuple[pd.DataFrame, bool]:
    """Deletes, then upserts (fold_delta already removed deleted ids that were re-added), copying their images.

    Returns the new items table and whether any image under images/ changed."""
    columns = list(items.columns)
    present = set(items["item_id"])
    to_delete = state.deleted & present
    items = items[~items["item_id"].isin(to_delete)]
    by_id = {r["item_id"]: r for r in items.to_dict("records")}
    images_changed = False
    for iid, entry in state.added.items():
        src = _image_for(entry, serving_dir, problems)
        image_path = ""
        if src is not None:
            image_path, copied = _copy_image(src, data_dir, iid)
            summary["images_copied"] += int(copied)
            images_changed |= copied
        existing = by_id.get(iid)
        by_id[iid] = _item_row(entry, columns, existing, image_path, default_category)
        summary["updated" if existing else "inserted"] += 1
    new_items = pd.DataFrame(list(by_id.values()), columns=columns)
    summary.update(upserted=len(state.added), deleted=len(to_delete))
    return new_items, images_changed


def _apply_interactions(data_dir: Path, deleted: set[str], summary: dict[str, Any],
                        written: list[str]) -> pd.DataFrame | None:
    """Drop the interactions of deleted items; return the (new) table, None when there is none."""
    inter_path = data_dir / "interactions.csv"
    inter: pd.DataFrame | None = None
    if inter_path.is_file() and inter_path.stat().st_size > 0:
        inter = _read_csv_text(inter_path, "the interactions")
        if "item_id" in inter.columns and deleted:
            gone = inter["item_id"].isin(deleted)
            if gone.any():
                summary["interactions_removed"] = int(gone.sum())
                inter = inter[~gone]
                if _write_atomic(inter_path, _csv_bytes(inter)):
                    written.append("interactions.csv")
    return inter


def _apply_queries(data_dir: Path, deleted: set[str], summary: dict[str, Any],
                   written: list[str]) -> list[dict[str, Any]] | None:
    """Remove deleted ids from every query's relevance; return the queries kept (None without queries.jsonl)."""
    queries_path = data_dir / "queries.jsonl"
    q_bytes, summary["queries_changed"], summary["queries_dropped"], kept = _update_queries(queries_path, deleted)
    if q_bytes is not None and _write_atomic(queries_path, q_bytes):
        written.append("queries.jsonl")
    return kept if q_bytes is not None else None


def _apply_new_item_list(data_dir: Path, manifest: dict[str, Any], state: DeltaState, new_items: pd.DataFrame,
                         cutoff: int | None, written: list[str]) -> int:
    """Deleted ids leave the manifest's new-item list, added items newer than cutoff join it; return its size."""
    n_new = 0
    new_file = manifest.get("new_item_ids_file")
    if isinstance(new_file, str) and new_file and "/" not in new_file and (data_dir / new_file).is_file():
        new_path = data_dir / new_file
        ids = [s.strip() for s in new_path.read_text(encoding="utf-8").splitlines() if s.strip()]
        ids = [i for i in ids if i not in state.deleted]
        if cutoff is not None:
            created = dict(zip(new_items["item_id"], pd.to_numeric(new_items["created_at"], errors="coerce"),
                               strict=True))
            listed = set(ids)
            ids += [i for i in state.added if i not in listed and created.get(i, -1) >= cutoff]
        n_new = len(ids)
        if _write_atomic(new_path, "".join(f"{i}\n" for i in ids).encode("utf-8")):
            written.append(new_file)
    return n_new


def _refresh_checksums(checksums: dict[str, Any], data_dir: Path, images_changed: bool, written: list[str]) -> None:
    """Recompute the checksums the manifest already lists (the images digest only when images changed)."""
    for name in list(checksums):
        if name == "images":
            if images_changed or "images" in written:
                checksums["images"] = tree_digest(data_dir / "images")
        elif (data_dir / name).is_file() and "/" not in name:
            checksums[name] = sha256_file(data_dir / name)


def apply_delta(data_dir: str | Path, serving_dir: str | Path, default_category: str | None = None) -> dict[str, Any]:
    """Apply ``serving_dir/delta.jsonl`` to DATA_DIR idempotently; return a summary (see the module docstring).
    A record without a category gets ``default_category`` (not given: ``ingest.default_category``).

    Raises :class:`DeltaIngestError` only when DATA_DIR itself is unusable (no readable items.csv or a
    corrupt manifest.json); problems in the log are reported in ``summary["problems"]`` and skipped.
    """
    data_dir, serving_dir = Path(data_dir), Path(serving_dir)
    if default_category is None:
        from modules.settings import load_section

        default_category = str(load_section("ingest").default_category)
    log_path = serving_dir / DELTA_FILE
    summary: dict[str, Any] = {"log": str(log_path), "records": 0, "skipped": 0, "upserted": 0, "inserted": 0,
                               "updated": 0, "deleted": 0, "interactions_removed": 0, "queries_changed": 0,
                               "queries_dropped": 0, "images_copied": 0, "files_written": [], "problems": []}
    if not log_path.is_file():
        return summary
    parsed = read_delta_log(log_path)
    problems = list(parsed.problems)
    if parsed.torn:
        problems.append(f"{log_path.name}: an unterminated last line (a write in progress?) was left for the next run")
    state = fold_delta(parsed.records)
    summary.update(records=len(parsed.records), skipped=len(parsed.problems))

    items_path = data_dir / "items.csv"
    items = _read_items(items_path)
    manifest_path = data_dir / "manifest.json"
    manifest = _read_manifest(manifest_path)
    cutoff = int(manifest["cutoff_ts"]) if isinstance(manifest.get("cutoff_ts"), (int, float)) else None

    new_items, images_changed = _apply_items(items, state, data_dir, serving_dir, default_category, summary, problems)
    written: list[str] = []
    if _write_atomic(items_path, _csv_bytes(new_items)):
        written.append("items.csv")
    inter = _apply_interactions(data_dir, state.deleted, summary, written)
    kept = _apply_queries(data_dir, state.deleted, summary, written)
    n_new = _apply_new_item_list(data_dir, manifest, state, new_items, cutoff, written)

    # ---- manifest: what was applied, refreshed counts and checksums (only values the inputs determine) ----
    if manifest:
        manifest["delta_applied"] = {
            "log": DELTA_FILE, "bytes": parsed.bytes, "lines": parsed.lines, "sha256": parsed.sha256,
            "records": len(parsed.records), "skipped": summary["skipped"],
            "upserted": len(state.added), "deleted": len(state.deleted),
        }
        if isinstance(manifest.get("counts"), dict):
            _update_counts(manifest["counts"], new_items, inter, kept, n_new, cutoff)
        if isinstance(manifest.get("checksums"), dict):
            _refresh_checksums(manifest["checksums"], data_dir, images_changed, written)
        text = json.dumps(manifest, indent=2) + "\n"    # keeps the writer's key order
        if _write_atomic(manifest_path, text.encode("utf-8")):
            written.append("manifest.json")

    summary["files_written"] = written
    summary["problems"] = problems[:MAX_PROBLEMS_REPORTED]
    summary["problems_total"] = len(problems)
    for p in problems[:MAX_PROBLEMS_REPORTED]:
        log.warning("delta ingest: %s", p)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """One line for the pipeline log."""
    return (f"applied {summary['records']} delta record(s) from {summary['log']}: {summary['inserted']} new, "
            f"{summary['updated']} updated, {summary['deleted']} deleted ({summary['interactions_removed']} "
            f"interactions, {summary['queries_dropped']} queries dropped), {summary['images_copied']} image(s) copied, "
            f"{summary['skipped']} malformed line(s) skipped; wrote {summary['files_written'] or 'nothing'}")
