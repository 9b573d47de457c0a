"""What the benchmarks share: finding the pushed bundle, the catalog's EVAL text queries, and the catalog to read
or generate.

Both print a one-line reason and exit with code 2 instead of a traceback, so a benchmark pointed at the
wrong directory says so.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


def add_data_source(ap: Any) -> None:
    """``--data DATA_DIR`` or ``--scale SCALE`` (one required): the catalog a benchmark reads or generates."""
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="a DATA_DIR")
    src.add_argument("--scale", help="generate this scale (params.yaml generate.scales) into a temporary dir")


def data_dir_from(args: Any, tmp: str | Path, params: dict, seed: int) -> str:
    """``args.data``, or a catalog of ``args.scale`` generated (``seed``) under ``tmp``."""
    if args.data is not None:
        return str(args.data)
    from modules.data.catalog.generate import generate_catalog

    data_dir = str(Path(tmp) / "data")
    generate_catalog(args.scale, data_dir, seed=seed, params=params, progress=False)
    return data_dir
