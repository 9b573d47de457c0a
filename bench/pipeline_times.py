"""Per-component wall time of TFX runs, read from the pipeline's ML Metadata store.

    python -m bench.pipeline_times --pipeline-root pipeline_root            # every run in the store
    python -m bench.pipeline_times --pipeline-root /tmp/pipeline_full --last  # only the newest run
    python -m bench.pipeline_times --pipeline-root pipeline_root --last --budget  # + split against issue 18's budgets

Each execution's wall time is MLMD's ``last_update_time - create_time`` (the launcher creates the execution
when the component starts and updates it when it finishes). A component whose outputs came from the cache
shows state ``CACHED``. The run's wall time is the first start to the last update, which includes the
launcher's own work between components.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

STATES = {0: "UNKNOWN", 1: "NEW", 2: "RUNNING", 3: "COMPLETE", 4: "FAILED", 5: "CACHED", 6: "CANCELED"}


@dataclass(frozen=True)
class ComponentTime:
    run_id: str
    component: str
    state: str
    start_ms: int
    end_ms: int

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000.0


def read_times(metadata_path: str | Path) -> list[ComponentTime]:
    """One row per execution in the store, ordered by start time."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    path = Path(metadata_path)
    if not path.is_file():
        raise FileNotFoundError(f"no ML Metadata store at {path} (was the pipeline run with this --pipeline-root?)")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    context_types = {t.id: t.name for t in store.get_context_types()}
    rows = []
    for execution in store.get_executions():
        run_id, node = "", ""
        for ctx in store.get_contexts_by_execution(execution.id):
            kind = context_types.get(ctx.type_id, "")
            if kind == "pipeline_run":
                run_id = ctx.name
            elif kind == "node":
                node = ctx.name.split(".", 1)[-1]
        rows.append(ComponentTime(run_id, node or str(execution.type), STATES.get(execution.last_known_state, "?"),
                                  execution.create_time_since_epoch, execution.last_update_time_since_epoch))
    return sorted(rows, key=lambda r: r.start_ms)


def render(rows: list[ComponentTime]) -> str:
    """A markdown table per run: component, state, seconds, share of the run."""
    out = []
    for run_id in dict.fromkeys(r.run_id for r in rows):
        run = [r for r in rows if r.run_id == run_id]
        wall = (max(r.end_ms for r in run) - min(r.start_ms for r in run)) / 1000.0
        ran = sum(r.state == "COMPLETE" for r in run)
        out.append(f"run {run_id or '?'}: {wall:,.0f} s wall, {ran} component(s) ran, "
                   f"{sum(r.state == 'CACHED' for r in run)} cached")
        out.append("| component | state | seconds | share |")
        out.append("|---|---|---|---|")
        for r in sorted(run, key=lambda r: -r.seconds):
            out.append(f"| {r.component} | {r.state} | {r.seconds:,.1f} | {r.seconds / wall:.1%} |")
        out.append("")
    return "\n".join(out)


GROUP_PREFIXES = {"ingest_validate_transform": ("DataExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                                                 "DataCheck", "Transform")}


def budget_group(component: str) -> str:
    """The budget line a component counts against: its own name, the ingestion group, or ``other``."""
    for group, prefixes in GROUP_PREFIXES.items():
        if component.split(".")[0] in prefixes:
            return group
    return component if component in ("EmbeddingGen", "TwoTowerTrainer", "RetrievalEvaluator") else "other"


def render_budget(rows: list[ComponentTime], budgets: dict[str, float]) -> str:
    """Seconds per budget group of one run against the full-scale budgets (params ``pipeline.time_budget_s``)."""
    spent: dict[str, float] = {g: 0.0 for g in budgets if g != "total"}
    for r in rows:
        spent[budget_group(r.component)] = spent.get(budget_group(r.component), 0.0) + r.seconds
    wall = (max(r.end_ms for r in rows) - min(r.start_ms for r in rows)) / 1000.0 if rows else 0.0
    out = ["| budget group | seconds | full-scale budget (s) |", "|---|---|---|"]
    out += [f"| {g} | {v:,.1f} | {budgets.get(g, float('nan')):,.0f} |" for g, v in spent.items()]
    out.append(f"| run wall time | {wall:,.1f} | {budgets.get('total', float('nan')):,.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline-root", required=True, help="the directory holding metadata.sqlite")
    ap.add_argument("--last", action="store_true", help="only the newest run")
    ap.add_argument("--budget", action="store_true", help="also the split by budget group (params pipeline.time_budget_s)")
    ap.add_argument("--params", default=None, help="params.yaml (for --budget)")
    args = ap.parse_args(argv)
    try:
        rows = read_times(Path(args.pipeline_root) / "metadata.sqlite")
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.last and rows:
        newest = max(rows, key=lambda r: r.start_ms).run_id
        rows = [r for r in rows if r.run_id == newest]
    print(render(rows))
    if args.budget:
        from modules.config import load_params

        print(render_budget(rows, load_params(args.params)["pipeline"]["time_budget_s"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
