"""Runs the PixelMatch pipeline locally with LocalDagRunner (SQLite MLMD under the pipeline root).

    python -m pipelines.local_runner --data data --serving-dir serving_dir      # or: pixelmatch run

Steps: fold the serving delta log (items added/deleted live, modules/data/delta_ingest.py) into DATA_DIR, a fast
pre-flight data check (same rules as the in-pipeline gate), a lock on the pipeline root so two overlapping runs
cannot happen, an MLflow parent run, then the TFX run (cached steps are reused).
Exit codes: 0 ok (a bundle was pushed, or the one served is this model), 1 pipeline failure, 2 bad input data
or a bad params file (an unknown key or a wrong type, checked by modules/settings.py before anything runs),
3 another run holds the lock, 4 the run completed but pushed nothing (not blessed; pipelines/run_outcome.py).
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.progress import OutputRouter, format_duration, say, track_components

log = logging.getLogger("pixelmatch.pipeline")
LOCK_NAME = ".pixelmatch-run.lock"
EXIT_OK, EXIT_FAILED, EXIT_BAD_DATA, EXIT_LOCKED = 0, 1, 2, 3


class RunLockedError(RuntimeError):
    """Another pipeline run holds the lock on this pipeline root."""


@contextlib.contextmanager
def run_lock(pipeline_root: str | Path) -> Iterator[Path]:
    """An exclusive, non-blocking flock on ``<root>/.pixelmatch-run.lock`` (released by the OS if we die)."""
    root = Path(pipeline_root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = path.read_text().strip() or "unknown"
            raise RunLockedError(
                f"another PixelMatch run is already using pipeline root {root} ({holder}); "
                f"wait for it to finish (lock file {path})"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        yield path
    finally:
        os.close(fd)


def _has_rows(path: Path) -> bool:
    """True when a CSV has at least one data row after its header."""
    if not path.is_file():
        return False
    with path.open() as f:
        f.readline()
        return bool(f.readline().strip())


def execution_summary(metadata_path: str | Path) -> dict[str, int]:
    """Counts of MLMD executions by state (COMPLETE = ran, CACHED = reused) for the whole pipeline root."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx.orchestration import metadata

    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(str(metadata_path)))
    names = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
    counts: dict[str, int] = {}
    for ex in store.get_executions():
        key = names.get(ex.last_known_state, str(ex.last_known_state))
        counts[key] = counts.get(key, 0) + 1
    return counts


def build(
    data_dir: str, serving_dir: str, pipeline_root: str, params_path: str | None, feature_repo: str | None = None
) -> Any:
    """The TFX pipeline object for these paths (used by the runner and by tests)."""
    from components.example_gen.executor import data_fingerprint
    from components.tfx_types import sqlite_metadata_connection_config
    from pipelines.configs import pipeline_settings
    from pipelines.pipeline import create_pipeline

    settings = pipeline_settings(params_path)
    has_interactions = _has_rows(Path(data_dir) / "interactions.csv")
    if not has_interactions:
        log.warning("interactions.csv has no rows: recommendation steps (two-tower, user features) are skipped")
        say("[pixelmatch] interactions.csv is empty: skipping the two-tower trainer and user features")
    return create_pipeline(
        pipeline_name=settings["name"],
        pipeline_root=pipeline_root,
        data_dir=str(Path(data_dir).resolve()),
        serving_dir=str(Path(serving_dir).resolve()),
        data_hash=data_fingerprint(data_dir),
        params_path=str(Path(params_path).resolve()) if params_path else "",
        metadata_connection_config=sqlite_metadata_connection_config(
            os.path.join(pipeline_root, "metadata.sqlite")
        ),
        beam_pipeline_args=settings["beam_args"],
        enable_cache=True,
        has_interactions=has_interactions,
        enable_two_tower=settings["two_tower"] and has_interactions,
        feature_repo_dir=feature_repo or settings["feature_repo"],
    )


def params_problem(params_path: str | None) -> str | None:
    """Why the params file cannot drive a run (missing, not YAML, an unknown key, a wrong type), or None.

    Checked up front so a typo fails in a second, naming the dotted key, not inside a component minutes later."""
    import yaml

    from modules.config import load_params
    from modules.config import params_path as resolve_params_path
    from modules.settings import load_settings

    try:
        load_settings(load_params(params_path))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return f"bad params file {resolve_params_path(params_path)}: {exc}"
    return None


def run_pipeline(
    data_dir: str,
    serving_dir: str,
    pipeline_root: str | None = None,
    params_path: str | None = None,
    feature_repo: str | None = None,
    preflight: bool = True,
    verbose: bool = False,
) -> int:
    """Run the pipeline once; return a process exit code (see the module docstring).

    The terminal gets one line per component start and end; library output goes to
    ``<pipeline root>/logs/run-<time>.log`` (``verbose`` echoes it to the terminal too).
    """
    from components.data_check.rules import DataCheckError, check_data_dir
    from modules.data.delta_ingest import DeltaIngestError, apply_delta
    from modules.data.delta_ingest import format_summary as format_delta_summary
    from modules.data.delta_log import DELTA_FILE
    from pipelines.configs import pipeline_settings

    problem = params_problem(params_path)
    if problem:
        print(f"[pixelmatch] {problem}; nothing was run or pushed", file=sys.stderr)
        return EXIT_BAD_DATA
    settings = pipeline_settings(params_path)
    pipeline_root = str(Path(pipeline_root or settings["root"]).resolve())
    if (Path(serving_dir) / DELTA_FILE).is_file():
        # Items added/deleted live on the server join the catalogue (idempotent; the log is kept).
        try:
            summary = apply_delta(data_dir, serving_dir)
        except DeltaIngestError as exc:
            print(f"[pixelmatch] cannot apply the serving delta log, nothing was run or pushed:\n{exc}", file=sys.stderr)
            return EXIT_BAD_DATA
        print(f"[pixelmatch] {format_delta_summary(summary)}")
    if preflight:
        try:
            check_data_dir(data_dir)
        except DataCheckError as exc:
            print(f"[pixelmatch] pre-flight data check failed, nothing was run or pushed:\n{exc}", file=sys.stderr)
            return EXIT_BAD_DATA
    try:
        with run_lock(pipeline_root):
            log_path = Path(pipeline_root) / "logs" / time.strftime("run-%Y%m%d-%H%M%S.log")
            with OutputRouter(log_path, verbose=verbose):
                say(f"[pixelmatch] library output goes to {log_path}" + ("" if verbose else " (--verbose shows it here)"))
                return _run_locked(data_dir, serving_dir, pipeline_root, params_path, feature_repo, log_path)
    except RunLockedError as exc:
        print(f"[pixelmatch] {exc}", file=sys.stderr)
        return EXIT_LOCKED


def _run_locked(data_dir: str, serving_dir: str, pipeline_root: str, params_path: str | None, feature_repo: str | None,
                log_path: Path) -> int:
    from components.data_check.rules import DataCheckError
    from components.tfx_types import LocalDagRunner
    from modules import tracking

    pipeline = build(data_dir, serving_dir, pipeline_root, params_path, feature_repo)
    metadata_path = Path(pipeline_root) / "metadata.sqlite"
    before = execution_summary(metadata_path) if metadata_path.is_file() else {}
    tracking.start_parent_run(
        "pipeline", params={"data_dir": os.path.abspath(data_dir), "serving_dir": os.path.abspath(serving_dir),
                            "pipeline_root": pipeline_root},
    )
    start = time.time()
    status, code = "FAILED", EXIT_FAILED
    try:
        with track_components(len(pipeline.components)):
            LocalDagRunner().run(pipeline)
        status, code = "FINISHED", _outcome_code(metadata_path)
    except DataCheckError as exc:
        say(f"[pixelmatch] DataCheck stopped the run, nothing was trained or pushed:\n{exc}", err=True)
        code = EXIT_BAD_DATA
    except Exception as exc:  # report and exit non-zero; the traceback is in the run log
        log.exception("pipeline failed")
        say(f"[pixelmatch] pipeline failed: {type(exc).__name__}: {exc} (traceback in {log_path})", err=True)
    finally:
        elapsed = time.time() - start
        after = execution_summary(metadata_path) if metadata_path.is_file() else {}
        ran = after.get("COMPLETE", 0) - before.get("COMPLETE", 0)
        cached = after.get("CACHED", 0) - before.get("CACHED", 0)
        tracking.end_parent_run(status, {"pipeline_seconds": elapsed, "executions_run": ran, "executions_cached": cached})
        say(f"[pixelmatch] pipeline {status.lower()} in {format_duration(elapsed)}: {ran} component(s) ran, "
            f"{cached} cached (root {pipeline_root})")
    return code


def _outcome_code(metadata_path: Path) -> int:
    """EXIT_OK, or EXIT_NOT_PUSHED when the completed run pushed nothing; prints what was delivered and why."""
    from pipelines.run_outcome import read_outcome

    try:
        outcome = read_outcome(metadata_path)
    except Exception as exc:  # the run itself succeeded; say so rather than fail on the summary
        log.warning("could not read the run outcome from %s: %s", metadata_path, exc)
        return EXIT_OK
    say(outcome.message(), err=outcome.exit_code != EXIT_OK)
    return outcome.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="DATA_DIR (items.csv, interactions.csv, queries.jsonl, images/)")
    parser.add_argument("--serving-dir", required=True)
    parser.add_argument("--pipeline-root", default=None)
    parser.add_argument("--params", default=None)
    parser.add_argument("--feature-repo", default=None)
    parser.add_argument("--no-preflight", action="store_true", help="skip the fast pre-flight data check (the TFX gate still runs)")
    parser.add_argument("--verbose", action="store_true", help="also show TF, absl and Beam output on the terminal")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_pipeline(args.data, args.serving_dir, args.pipeline_root, args.params, args.feature_repo,
                        preflight=not args.no_preflight, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
