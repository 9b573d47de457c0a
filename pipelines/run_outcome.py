"""What a finished ``pixelmatch run`` delivered: a pushed bundle, the bundle already served, or nothing (and why).

Read from MLMD after the run: the latest RetrievalEvaluator execution's ModelBlessing (``blessed``,
``reasons``) and the latest BundlePusher execution's PushedModel (``pushed``, ``pushed_version``). A run that
completes without a blessing exits with ``EXIT_NOT_PUSHED`` so cron and CI notice (README, "Exit codes").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_NOT_PUSHED = 4
EVALUATOR, PUSHER = "RetrievalEvaluator", "BundlePusher"


@dataclass(frozen=True)
class RunOutcome:
    blessed: bool | None  # None: no evaluator execution recorded
    pushed: bool | None
    version: str
    reasons: str

    @property
    def exit_code(self) -> int:
        return EXIT_NOT_PUSHED if self.blessed is False or (self.blessed and self.pushed is None) else 0

    def message(self) -> str:
        if self.blessed is False:
            return f"[pixelmatch] run complete, NOTHING PUSHED (exit {EXIT_NOT_PUSHED}): not blessed: {self.reasons}"
        if self.blessed is None:
            return "[pixelmatch] run complete; no blessing recorded"
        if self.pushed:
            return f"[pixelmatch] run complete: blessed and pushed version {self.version}"
        if self.version:
            return f"[pixelmatch] run complete: blessed; {self.version} already serves this model, nothing new pushed"
        return f"[pixelmatch] run complete, NOTHING PUSHED (exit {EXIT_NOT_PUSHED}): blessed but the pusher recorded no push"


def _latest_output(store: Any, node: str, artifact_type: str) -> Any | None:
    """The ``artifact_type`` output of the newest execution (ran or cached) of pipeline node ``node``, or None."""
    from ml_metadata.proto import metadata_store_pb2

    contexts = [c for c in store.get_contexts_by_type("node") if c.name.endswith("." + node)]
    executions = [e for c in contexts for e in store.get_executions_by_context(c.id)]
    if not executions:
        return None
    latest = max(executions, key=lambda e: e.id)
    out_ids = [ev.artifact_id for ev in store.get_events_by_execution_ids([latest.id])
               if ev.type == metadata_store_pb2.Event.OUTPUT]
    type_id = store.get_artifact_type(artifact_type).id
    arts = [a for a in (store.get_artifacts_by_id(out_ids) if out_ids else []) if a.type_id == type_id]
    return max(arts, key=lambda a: a.id) if arts else None


def _prop(art: Any, name: str) -> Any:
    if art is None or name not in art.custom_properties:
        return None
    value = art.custom_properties[name]
    return value.string_value if value.WhichOneof("value") == "string_value" else value.int_value


def read_outcome(metadata_path: str | Path) -> RunOutcome:
    """The outcome of the latest run recorded in the SQLite MLMD store at ``metadata_path``."""
    from ml_metadata import metadata_store
    from tfx.orchestration import metadata

    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(str(metadata_path)))
    blessing = _latest_output(store, EVALUATOR, "ModelBlessing")
    pushed = _latest_output(store, PUSHER, "PushedModel")
    blessed = _prop(blessing, "blessed")
    push = _prop(pushed, "pushed")
    return RunOutcome(None if blessed is None else bool(blessed), None if push is None else bool(push),
                      str(_prop(pushed, "pushed_version") or ""), str(_prop(blessing, "reasons") or ""))
