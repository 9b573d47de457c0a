"""The serving delta log (``SERVING_DIR/delta.jsonl``): its format, validation and net effect.

The log (written by ``serving/delta.py``, one JSON object per line, newest last)::

    {"op": "add", "ts": 1700000000.0, "item": {"item_id", "title", ...AddItem fields}, "image_file": "delta_images/<sha>.png" | null}
    {"op": "delete", "ts": 1700000000.0, "item_id": "..."}

:func:`parse_delta_lines` / :func:`read_delta_log` validate records and :func:`fold_delta` reduces them to their
net effect. The server (replaying the log onto every freshly loaded bundle) and ``modules.data.delta_ingest``
(folding it into DATA_DIR before a run) read it through these same functions, so both sides skip exactly the
same malformed lines.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DELTA_FILE = "delta.jsonl"
DELTA_IMAGES_DIR = "delta_images"
# THE item id rule: the API (serving/schemas.py), the delta log, its replay and its ingestion all use it.
ITEM_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


@dataclass(frozen=True)
class DeltaState:
    """The net effect of a log: live items (in insertion order) and deleted ids."""

    added: dict[str, dict[str, Any]]      # item_id -> {"item": {...}, "image_file": str | None, "ts", "first_ts"}
    deleted: set[str]                     # ids deleted (bundle items or earlier live items)


@dataclass
class ParsedLog:
    """Valid records in log order, one message per skipped line, and what exactly was consumed."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lines: int = 0                        # complete lines consumed (blank ones included)
    bytes: int = 0                        # bytes consumed (up to the last newline)
    sha256: str = ""                      # of the consumed bytes
    torn: bool = False                    # an unterminated last line (a write in progress) was left unread


def _check_record(rec: Any) -> str | None:
    """None when ``rec`` is a valid log record, else what is wrong with it."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    op = rec.get("op")
    if op not in ("add", "delete"):
        return f"op must be 'add' or 'delete', got {op!r}"
    ts = rec.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts) or ts < 0:
        return f"ts must be a non-negative unix time, got {ts!r}"
    if op == "delete":
        iid = rec.get("item_id")
        if not isinstance(iid, str) or not ITEM_ID_PATTERN.match(iid):
            return f"delete needs a valid item_id, got {iid!r}"
        return None
    item = rec.get("item")
    if not isinstance(item, dict):
        return "add needs an 'item' object"
    iid = item.get("item_id")
    if not isinstance(iid, str) or not ITEM_ID_PATTERN.match(iid):
        return f"add needs a valid item.item_id, got {iid!r}"
    title = item.get("title")
    if not isinstance(title, str) or not title.strip():
        return f"item {iid}: title must be a non-empty string"
    for key in ("description", "category", "brand", "gender"):
        if item.get(key) is not None and not isinstance(item[key], str):
            return f"item {iid}: {key} must be a string"
    price = item.get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))
                              or not math.isfinite(price) or price < 0):
        return f"item {iid}: price must be a number >= 0, got {price!r}"
    attrs = item.get("attributes")
    if attrs is not None and (not isinstance(attrs, dict)
                              or not all(isinstance(k, str) and isinstance(v, str) for k, v in attrs.items())):
        return f"item {iid}: attributes must map strings to strings"
    image_file = rec.get("image_file")
    if image_file is not None and not isinstance(image_file, str):
        return f"item {iid}: image_file must be a string or null"
    return None


def parse_delta_lines(lines: Iterable[str], source: str = DELTA_FILE) -> ParsedLog:
    """Validate log lines (without their newline); malformed ones are reported and skipped, never raised."""
    parsed = ParsedLog()
    for n, line in enumerate(lines, start=1):
        parsed.lines = n
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            parsed.problems.append(f"{source} line {n}: not JSON ({exc.msg})")
            continue
        problem = _check_record(rec)
        if problem:
            parsed.problems.append(f"{source} line {n}: {problem}")
            continue
        parsed.records.append(rec)
    return parsed


def parse_delta_bytes(data: bytes, source: str = DELTA_FILE) -> ParsedLog:
    """Parse a log's bytes up to the last newline; an unterminated tail (a write in progress) is left for later.

    Bytes that are not UTF-8 become U+FFFD (and the line then usually fails validation).
    """
    end = data.rfind(b"\n") + 1
    consumed = data[:end]
    parsed = parse_delta_lines(consumed.decode("utf-8", errors="replace").splitlines(), source=source)
    parsed.bytes, parsed.sha256, parsed.torn = end, sha256_bytes(consumed), end < len(data)
    return parsed


def read_delta_log(path: str | Path) -> ParsedLog:
    """Parse a delta log file (an empty result when it is absent)."""
    path = Path(path)
    if not path.is_file():
        return ParsedLog(sha256=sha256_bytes(b""))
    return parse_delta_bytes(path.read_bytes(), source=path.name)


def fold_delta(records: Iterable[dict[str, Any]]) -> DeltaState:
    """Reduce valid records to their net effect: a later add of an id replaces an earlier one, a delete removes it."""
    added: dict[str, dict[str, Any]] = {}
    deleted: set[str] = set()
    for rec in records:
        if rec["op"] == "add":
            item = rec["item"]
            iid = item["item_id"]
            previous = added.pop(iid, None)
            first_ts = previous["first_ts"] if previous else rec["ts"]
            added[iid] = {"item": item, "image_file": rec.get("image_file"), "ts": rec["ts"], "first_ts": first_ts}
            deleted.discard(iid)
        else:
            added.pop(rec["item_id"], None)
            deleted.add(rec["item_id"])
    return DeltaState(added=added, deleted=deleted)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
