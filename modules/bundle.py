"""The serving bundle: checksummed manifest, verification and the atomic push.

A version directory under SERVING_DIR appears complete or not at all:
  1. the staged bundle is copied to ``SERVING_DIR/.tmp-<version>``,
  2. that directory is renamed to ``SERVING_DIR/<version>`` (atomic on one filesystem),
  3. ``LATEST`` is rewritten through a temp file and ``os.replace``.
A reader that follows ``LATEST`` therefore never sees a half-written version.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from modules.checksums import sha256_file

MANIFEST_NAME = "manifest.json"
LATEST_NAME = "LATEST"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BundleError(RuntimeError):
    """A bundle is incomplete, corrupted or cannot be pushed; the message says which file and why."""


def _bundle_files(version_dir: Path) -> dict[str, str]:
    """{relative posix path: sha256} of every regular file except the manifest itself."""
    files: dict[str, str] = {}
    for path in sorted(version_dir.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(version_dir).as_posix()
        if rel in (MANIFEST_NAME, f".{MANIFEST_NAME}.tmp"):
            continue
        files[rel] = sha256_file(path)
    return files


def write_manifest(version_dir: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``manifest.json`` with a sha256 of every file in ``version_dir``, plus ``extra`` keys.

    ``extra`` carries the version, metrics, data hash, MLMD ids, ...; it may not override ``files``.
    Returns the manifest dict.
    """
    version_dir = Path(version_dir)
    if not version_dir.is_dir():
        raise BundleError(f"bundle directory does not exist: {version_dir}")
    manifest: dict[str, Any] = {"created_at": int(time.time())}
    manifest.update(extra or {})
    manifest["files"] = _bundle_files(version_dir)
    tmp = version_dir / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    os.replace(tmp, version_dir / MANIFEST_NAME)
    return manifest


def verify_bundle(version_dir: str | Path) -> dict[str, Any]:
    """Check every checksum in ``manifest.json``; return the manifest or raise ``BundleError``.

    Fails on a missing manifest, a missing or altered file, or a file not listed in the manifest.
    """
    version_dir = Path(version_dir)
    manifest_path = version_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: manifest missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from exc
    expected = manifest.get("files")
    if not isinstance(expected, dict) or not expected:
        raise BundleError(f"{manifest_path}: no 'files' checksums")
    actual = _bundle_files(version_dir)
    missing = sorted(set(expected) - set(actual))
    if missing:
        raise BundleError(f"{version_dir}: files listed in the manifest are missing: {missing[:5]}")
    unlisted = sorted(set(actual) - set(expected))
    if unlisted:
        raise BundleError(f"{version_dir}: files not listed in the manifest: {unlisted[:5]}")
    changed = sorted(rel for rel, digest in expected.items() if actual[rel] != digest)
    if changed:
        raise BundleError(f"{version_dir}: checksum mismatch for {changed[:5]}")
    return manifest


def read_latest(serving_dir: str | Path) -> str | None:
    """The version named by ``SERVING_DIR/LATEST``, or None when nothing was pushed yet."""
    latest = Path(serving_dir) / LATEST_NAME
    if not latest.is_file():
        return None
    name = latest.read_text().strip()
    return name or None


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link a staged file into the serving dir when on the same filesystem (staging is private and
    deleted after the push, so nothing else can write through the link); otherwise copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def push_atomic(staging_dir: str | Path, serving_dir: str | Path, version: str) -> Path:
    """Copy a staged bundle to ``serving_dir/<version>`` atomically and point ``LATEST`` at it.

    The staged bundle must already hold a valid manifest (``verify_bundle`` is run first), so a
    corrupted bundle is never published. Returns the final version directory.
    """
    if not _VERSION_RE.match(version):
        raise BundleError(f"invalid version name {version!r}: use letters, digits, '.', '_' or '-'")
    staging_dir = Path(staging_dir)
    serving_dir = Path(serving_dir)
    verify_bundle(staging_dir)
    serving_dir.mkdir(parents=True, exist_ok=True)
    final = serving_dir / version
    if final.exists():
        raise BundleError(f"{final} already exists: versions are immutable, pick a new version name")
    tmp = serving_dir / f".tmp-{version}"
    if tmp.exists():  # left over from a crashed push of this very version
        shutil.rmtree(tmp)
    try:
        shutil.copytree(staging_dir, tmp, copy_function=_link_or_copy)
        verify_bundle(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    latest_tmp = serving_dir / f".{LATEST_NAME}.tmp-{version}"
    latest_tmp.write_text(version + "\n")
    os.replace(latest_tmp, serving_dir / LATEST_NAME)
    return final
