"""What the bundle benchmarks share: finding the pushed bundle and the catalog's EVAL text queries.

Both print a one-line reason and exit with code 2 instead of a traceback, so a benchmark pointed at the
wrong directory says so.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def latest_bundle_or_exit(serving_dir: str | Path) -> tuple[str, Path]:
    """(version, version directory) of the bundle ``SERVING_DIR/LATEST`` names; exit 2 when there is none."""
    from modules.bundle import read_latest

    version = read_latest(serving_dir)
    if version is None:
        _fail(f"{serving_dir}: no LATEST bundle (run `pixelmatch run --serving-dir {serving_dir}` first)")
    version_dir = Path(serving_dir) / version
    if not (version_dir / "manifest.json").is_file():
        _fail(f"{version_dir}: LATEST names a bundle without a manifest.json")
    return version, version_dir


def eval_text_queries(data_dir: str | Path, limit: int | None = None) -> list[str]:
    """The non-empty EVAL text queries of ``DATA_DIR/queries.jsonl`` in file order (at most ``limit``); exit 2 if
    there are none."""
    from modules.data.data_io import load_queries

    texts = [q["text"] for q in load_queries(data_dir, split="eval") if q["kind"] == "text" and q.get("text")]
    if not texts:
        _fail(f"{data_dir}: no EVAL text queries in queries.jsonl")
    return texts[:limit] if limit is not None else texts
