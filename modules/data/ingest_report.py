"""What ``pixelmatch ingest`` reports: the error that stops it, the per-row problem log, the counts it records
in manifest.json and ingest_report.json, and the summary it prints (modules/data/ingest.py runs the ingest)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from modules.checksums import sha256_file, tree_digest


class IngestError(RuntimeError):
    """The catalog cannot be ingested at all (unreadable CSV, missing required columns, zero usable rows)."""


class IngestReport:
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


REJECT_KINDS = frozenset({"malformed_row", "empty_id", "bad_id", "duplicate_id", "empty_title", "bad_price"})


def ingest_counts(n_read: int, n_items: int, n_images: int, report: IngestReport,
            queries: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's (and report's) ``counts``."""
    return {
        "rows_read": n_read,
        "items": n_items,
        "rejected": sum(n for k, n in report.reasons.items() if k in REJECT_KINDS),
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


def write_manifest(out: Path, csv_path: Path, seed: int, counts: dict[str, Any], cutoff_ts: int,
                   new_ids: Path, images_out: Path) -> None:
    """manifest.json of an ingested DATA_DIR: source, seed, counts, cutoff_ts and the checksums of every output."""
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


def format_summary(report: dict[str, Any], n_reasons: int) -> str:
    """The stdout summary: counts, problems by kind, and the first ``n_reasons`` (``ingest.summary_reasons``)."""
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
