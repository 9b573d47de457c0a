"""Progress a person can follow: library chatter goes to the run log (kept), component lines to the terminal."""
from __future__ import annotations

import logging
import logging.config
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from ml_metadata.proto import metadata_store_pb2

from pipelines.progress import OutputRouter, format_duration, key_output, say, track_components


def _chatter() -> None:
    os.write(2, b"E0000 cuda_dnn.cc: Unable to register cuDNN factory\n")  # C++ level, as TF writes it
    os.write(1, b"fd1 notice\n")
    print("a stray print")
    logging.getLogger("absl").warning("absl says hello")
    logging.getLogger("apache_beam").info("beam info line")


def test_chatter_goes_to_the_log_and_progress_to_the_terminal(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    log = tmp_path / "logs" / "run.log"
    with OutputRouter(log):
        _chatter()
        say("[pixelmatch] 1/1 Thing done in 1.0s")
    out, err = capfd.readouterr()
    assert out == "[pixelmatch] 1/1 Thing done in 1.0s\n" and err == ""
    text = log.read_text()
    for line in ("cuDNN factory", "fd1 notice", "a stray print", "absl says hello", "beam info line", "Thing done"):
        assert line in text, line
    print("after")  # everything is restored
    assert capfd.readouterr().out == "after\n" and sys.stdout is not None


def test_verbose_also_shows_the_chatter(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    log = tmp_path / "run.log"
    with OutputRouter(log, verbose=True):
        _chatter()
        say("[pixelmatch] progress line")
    out, err = capfd.readouterr()
    assert "cuDNN factory" in out + err and "a stray print" in out + err
    assert (out + err).count("progress line") == 1
    assert "cuDNN factory" in log.read_text()


def test_format_duration() -> None:
    assert format_duration(4.24) == "4.2s"
    assert format_duration(133) == "2m13s"
    assert format_duration(3725) == "1h02m05s"


def _artifact(**props: int | str) -> SimpleNamespace:
    a = metadata_store_pb2.Artifact()
    for k, v in props.items():
        if isinstance(v, int):
            a.custom_properties[k].int_value = v
        else:
            a.custom_properties[k].string_value = v
    return SimpleNamespace(mlmd_artifact=a)


def test_key_output_reads_counts_dims_blessing_and_version() -> None:
    emb = {"embeddings": [_artifact(n_items=5000, n_with_image=4990, text_dim=384, image_dim=256, data_hash="x")]}
    assert key_output("EmbeddingGen", emb) == "5,000 items, 4,990 with photo, text 384-d, image 256-d"
    evaluator = {"blessing": [_artifact(blessed=1, current_model_id=7)], "metrics": [_artifact(blessed=1, headline="h")]}
    assert key_output("RetrievalEvaluator", evaluator) == "BLESSED, h"
    assert key_output("BundlePusher", {"pushed_model": [_artifact(pushed=1, pushed_version="v1")]}) == "pushed v1"
    assert key_output("DataExampleGen", {"items": [_artifact(num_train=270, num_eval=30)]}) == "items 270 train/30 eval"


class _FakeLauncher:
    def __init__(self, node_id: str, outputs: dict, run: bool = True, fail: bool = False) -> None:
        self._pipeline_node = SimpleNamespace(node_info=SimpleNamespace(id=node_id))
        self._system_node_handler = None
        self.outputs, self.run, self.fail = outputs, run, fail

    def _run_executor(self, info: object) -> None:
        return None

    def launch(self) -> SimpleNamespace:
        if self.fail:
            raise RuntimeError("boom")
        if self.run:
            self._run_executor(None)
        return SimpleNamespace(output_dict=self.outputs)


def test_one_start_and_one_end_line_per_component(capsys: pytest.CaptureFixture) -> None:
    ticks = iter([0.0, 133.0, 200.0, 200.5, 300.0, 301.0])
    emb = {"embeddings": [_artifact(n_items=5000, text_dim=384, image_dim=256)]}
    with track_components(3, launcher_cls=_FakeLauncher, clock=lambda: next(ticks)) as seconds:
        _FakeLauncher("EmbeddingGen", emb).launch()
        _FakeLauncher("Transform", {"transform_graph": [_artifact()]}, run=False).launch()
        with pytest.raises(RuntimeError):
            _FakeLauncher("RankerTrainer", {}, fail=True).launch()
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "[pixelmatch] 1/3 EmbeddingGen started",
        "[pixelmatch] 1/3 EmbeddingGen done in 2m13s: 5,000 items, text 384-d, image 256-d",
        "[pixelmatch] 2/3 Transform started",
        "[pixelmatch] 2/3 Transform cached in 0.5s",
        "[pixelmatch] 3/3 RankerTrainer started",
    ]
    assert err == "[pixelmatch] 3/3 RankerTrainer FAILED after 1.0s: RuntimeError\n"
    assert seconds == {"EmbeddingGen": 133.0, "Transform": 0.5, "RankerTrainer": 1.0}
    assert _FakeLauncher.launch.__name__ == "launch" and "track" not in _FakeLauncher.launch.__qualname__


def test_real_local_dag_runner_two_nodes_then_cached(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """The hook on TFX's own launcher: a two-node LocalDagRunner pipeline, then the same run served from cache."""
    from progress_components import Count, Shout

    from components.tfx_types import LocalDagRunner, Pipeline, sqlite_metadata_connection_config

    def pipeline() -> object:
        count = Count()
        shout = Shout(numbers=count.outputs["numbers"])
        return Pipeline(
            pipeline_name="progress_test", pipeline_root=str(tmp_path / "root"), components=[count, shout],
            enable_cache=True, metadata_connection_config=sqlite_metadata_connection_config(
                str(tmp_path / "root" / "metadata.sqlite")))

    capfd.readouterr()
    absl_logger, level = logging.getLogger("absl"), logging.getLogger("absl").level
    absl_logger.setLevel(logging.WARNING)  # as an earlier full pipeline run in the process leaves it
    try:
        for _ in range(2):
            with OutputRouter(tmp_path / "run.log"), track_components(2) as seconds:
                LocalDagRunner().run(pipeline())
        assert absl_logger.level == logging.WARNING  # restored after each run
    finally:
        absl_logger.setLevel(level)
    lines = capfd.readouterr().out.splitlines()
    assert [ln.split(" in ")[0] for ln in lines] == [
        "[pixelmatch] 1/2 Count started", "[pixelmatch] 1/2 Count done", "[pixelmatch] 2/2 Shout started",
        "[pixelmatch] 2/2 Shout done", "[pixelmatch] 1/2 Count started", "[pixelmatch] 1/2 Count cached",
        "[pixelmatch] 2/2 Shout started", "[pixelmatch] 2/2 Shout cached"], lines
    assert lines[1].endswith(": 1,234 items") and set(seconds) == {"Count", "Shout"}
    log = (tmp_path / "run.log").read_text()
    assert "shouting from inside a component" in log and "Component Shout is finished" in log


def test_a_handler_created_during_a_run_does_not_break_after_it(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    with OutputRouter(tmp_path / "a.log"):
        late = logging.StreamHandler(sys.stderr)  # as a library configures itself on first use
    logger = logging.getLogger("pixelmatch.test.late")
    logger.addHandler(late)
    logger.propagate = False
    try:
        with OutputRouter(tmp_path / "b.log"):
            logger.warning("second run")
        logger.warning("after the runs")
    finally:
        logger.removeHandler(late)
    assert "second run" in (tmp_path / "b.log").read_text()
    assert "after the runs" in capfd.readouterr().err


def test_absl_closing_root_handlers_mid_run_leaves_the_terminal_stream_open(tmp_path: Path) -> None:
    """absl's handler holds the stderr of the moment absl was imported (under pytest: its capture file) and closes
    any stream that is not the *current* sys.stderr. A library that re-installs absl's handler and then closes the
    root handlers inside a routed run must not close that terminal stream (it did, and every later test errored)."""
    from absl import logging as absl_logging

    inner = absl_logging.get_absl_handler().python_handler
    terminal = open(tmp_path / "terminal.txt", "w", encoding="utf-8")  # noqa: SIM115 - stands in for pytest's file
    saved_stream, saved_stderr, saved_root = inner.stream, sys.stderr, list(logging.root.handlers)
    inner.stream = terminal  # not the current sys.stderr (capsys), as under pytest once absl was imported earlier
    try:
        with OutputRouter(tmp_path / "run.log"):
            absl_logging.use_absl_handler()
            logging.getLogger("pixelmatch.test.absl").warning("inside the run")
            logging.basicConfig(force=True)  # removes and closes every root handler, absl's included
            logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})  # what `import mlflow` does: closes every handler ever made
        assert not terminal.closed
        terminal.write("still writable\n")
    finally:
        inner.stream, sys.stderr = saved_stream, saved_stderr
        for h in list(logging.root.handlers):
            logging.root.removeHandler(h)
        for h in saved_root:
            logging.root.addHandler(h)
        terminal.close()
    assert "inside the run" in (tmp_path / "run.log").read_text()
