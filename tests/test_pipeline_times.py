"""bench.pipeline_times reads per-component wall times from an ML Metadata store."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.pipeline_times import ComponentTime, budget_group, main, read_times, render, render_budget


def _store(path: Path):  # noqa: ANN202  (an ml_metadata MetadataStore)
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config), metadata_store_pb2


def test_times_per_component_and_run(tmp_path: Path) -> None:
    db = tmp_path / "metadata.sqlite"
    store, pb = _store(db)
    exec_type = store.put_execution_type(pb.ExecutionType(name="Component"))
    run_type = store.put_context_type(pb.ContextType(name="pipeline_run"))
    node_type = store.put_context_type(pb.ContextType(name="node"))
    [run] = store.put_contexts([pb.Context(type_id=run_type, name="run-1")])
    for node, state in (("EmbeddingGen", pb.Execution.COMPLETE), ("Transform", pb.Execution.CACHED)):
        [ctx] = store.put_contexts([pb.Context(type_id=node_type, name=f"pm.{node}")])
        [eid] = store.put_executions([pb.Execution(type_id=exec_type, last_known_state=state)])
        store.put_attributions_and_associations([], [pb.Association(context_id=run, execution_id=eid),
                                                     pb.Association(context_id=ctx, execution_id=eid)])
    rows = read_times(db)
    assert [(r.run_id, r.component) for r in rows] == [("run-1", "EmbeddingGen"), ("run-1", "Transform")]
    assert [r.state for r in rows] == ["COMPLETE", "CACHED"] and all(r.seconds >= 0 for r in rows)
    table = render(rows)
    assert "1 component(s) ran, 1 cached" in table and "| EmbeddingGen | COMPLETE |" in table


def test_missing_store_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--pipeline-root", str(tmp_path)]) == 2
    assert "no ML Metadata store" in capsys.readouterr().err


def test_budget_split_groups_components() -> None:
    assert budget_group("StatisticsGen.items") == budget_group("Transform") == "ingest_validate_transform"
    assert budget_group("EmbeddingGen") == "EmbeddingGen" and budget_group("FeastPublisher") == "other"
    rows = [ComponentTime("r", "Transform", "COMPLETE", 0, 60_000), ComponentTime("r", "EmbeddingGen", "COMPLETE", 60_000, 180_000),
            ComponentTime("r", "IndexBuilder", "COMPLETE", 180_000, 190_000)]
    table = render_budget(rows, {"ingest_validate_transform": 360, "EmbeddingGen": 720, "other": 360, "total": 2400})
    assert "| ingest_validate_transform | 60.0 | 360 |" in table and "| EmbeddingGen | 120.0 | 720 |" in table
    assert "| other | 10.0 | 360 |" in table and "| run wall time | 190.0 | 2,400 |" in table
