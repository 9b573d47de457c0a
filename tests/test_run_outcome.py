"""`pixelmatch run` says what it delivered: exit 4 when the run completes but nothing is pushed (issue 20)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.run_outcome import EXIT_NOT_PUSHED, read_outcome


def _store(path: Path):
    from ml_metadata import metadata_store
    from tfx.orchestration import metadata

    return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(str(path)))


def _record(store, node: str, artifact_type: str, props: dict) -> None:
    """One execution of pipeline node ``node`` with an output artifact carrying ``props`` (and a second output of
    another type created after it, as the evaluator's metrics artifact), as TFX records it."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    ctx_type = store.put_context_type(pb.ContextType(name="node"))
    ctx = store.get_context_by_type_and_name("node", f"pixelmatch.{node}") or pb.Context(
        type_id=ctx_type, name=f"pixelmatch.{node}")
    art = pb.Artifact(type_id=store.put_artifact_type(pb.ArtifactType(name=artifact_type)), uri="/x")
    for key, value in props.items():
        field = "int_value" if isinstance(value, int) else "string_value"
        setattr(art.custom_properties[key], field, value)
    ex = pb.Execution(type_id=store.put_execution_type(pb.ExecutionType(name=node)),
                      last_known_state=pb.Execution.COMPLETE)
    other = pb.Artifact(type_id=store.put_artifact_type(pb.ArtifactType(name="RetrievalMetrics")), uri="/y")
    other.custom_properties["blessed"].int_value = 1
    events = [(art, pb.Event(type=pb.Event.OUTPUT)), (other, pb.Event(type=pb.Event.OUTPUT))]
    store.put_execution(ex, events, [ctx])


def _run(store, blessed: int, pushed: int, version: str = "", reasons: str = "why") -> None:
    _record(store, "RetrievalEvaluator", "ModelBlessing", {"blessed": blessed, "reasons": reasons})
    _record(store, "BundlePusher", "PushedModel", {"pushed": pushed, "pushed_version": version})


def test_not_blessed_exits_4_and_says_why(tmp_path: Path) -> None:
    db = tmp_path / "metadata.sqlite"
    store = _store(db)
    _run(store, 1, 1, "v1")
    first = read_outcome(db)
    assert first.exit_code == 0 and "pushed version v1" in first.message()
    _run(store, 0, 0, reasons="text: encoder-only MRR 0.0200 < 0.4000")  # the newest execution decides
    out = read_outcome(db)
    assert (out.blessed, out.pushed, out.exit_code) == (False, False, EXIT_NOT_PUSHED) == (False, False, 4)
    assert "NOTHING PUSHED" in out.message() and "encoder-only MRR 0.0200" in out.message()


def test_blessed_but_already_served_is_success(tmp_path: Path) -> None:
    db = tmp_path / "metadata.sqlite"
    _run(_store(db), 1, 0, "v1")
    out = read_outcome(db)
    assert out.exit_code == 0 and "already serves" in out.message()


def test_runner_returns_the_outcome_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from pipelines.local_runner import EXIT_OK, _outcome_code

    db = tmp_path / "metadata.sqlite"
    _run(_store(db), 0, 0, reasons="regression")
    assert _outcome_code(db) == EXIT_NOT_PUSHED
    assert "NOTHING PUSHED" in capsys.readouterr().err
    assert _outcome_code(tmp_path / "missing" / "metadata.sqlite") == EXIT_OK  # unreadable: the run still succeeded
