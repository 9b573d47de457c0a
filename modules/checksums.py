"""sha256 helpers shared by the catalog writers, the bundle manifest and the encoder caches."""
from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(root: str | Path) -> str:
    """One sha256 over (relative posix path, file sha256) of every file under ``root``, in sorted order (the
    ``images`` checksum a catalog's manifest records)."""
    base = Path(root)
    h = hashlib.sha256()
    for p in sorted(base.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(base).as_posix().encode("utf-8"))
            h.update(sha256_file(p).encode("ascii"))
    return h.hexdigest()
