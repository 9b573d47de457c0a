"""What a person sees while `pixelmatch run` works: one line per component start and end, the rest in a log file.

``OutputRouter`` sends everything the libraries print (TF and XLA C++ notices, absl, Beam, Python logging,
warnings, stray prints) to ``<pipeline root>/logs/run-<time>.log`` by redirecting file descriptors 1 and 2,
so nothing is dropped; ``say`` writes a line to the terminal and to the log. With ``verbose`` the log is
echoed to the terminal too. tqdm bars (carriage-return updates) stay on the terminal when it is a TTY.

``track_components`` wraps the TFX launcher that LocalDagRunner calls once per node, and prints
``[pixelmatch]  7/20 EmbeddingGen started`` then ``... EmbeddingGen done in 2m13s: 5,000 items, text 384-d``.
"""
from __future__ import annotations

import codecs
import contextlib
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

PREFIX = "[pixelmatch]"
_CLEAR_LINE = "\r\033[K"
_ACTIVE: list[OutputRouter] = []


def format_duration(seconds: float) -> str:
    """133 -> '2m13s', 4.2 -> '4.2s', 3725 -> '1h02m05s'."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def say(line: str, err: bool = False) -> None:
    """A line for the person at the terminal (and the run log when a router is active)."""
    if _ACTIVE:
        _ACTIVE[-1].say(line, err=err)
    else:
        print(line, file=sys.stderr if err else sys.stdout, flush=True)


class _Terminal:
    """The terminal as it was before the redirect (a duplicated descriptor, or the object pytest's capsys put there)."""

    def __init__(self, stream: TextIO) -> None:
        try:
            self.stream: TextIO = open(os.dup(stream.fileno()), "w", buffering=1, closefd=True)  # noqa: SIM115
            self.owned = True
        except (AttributeError, OSError, io.UnsupportedOperation):
            self.stream, self.owned = stream, False
        self.isatty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mid_line = False  # a tqdm bar is drawn on the current line

    def write(self, text: str) -> None:
        if self.mid_line and not text.startswith("\r"):
            self.stream.write(_CLEAR_LINE)
        self.stream.write(text)
        self.stream.flush()
        self.mid_line = not text.endswith("\n")

    def close(self) -> None:
        if self.mid_line:
            self.stream.write("\n")
        self.stream.flush()
        if self.owned:
            self.stream.close()


class _Stream(io.TextIOBase):
    """sys.stdout / sys.stderr during a routed run: tqdm redraws go to a TTY terminal, everything else to the log.

    A library that kept a reference (a logging handler created during the run) writes, after the run, to the
    router active then, or else to the process's original stderr."""

    def __init__(self, router: OutputRouter) -> None:
        self._router = router

    @property
    def router(self) -> OutputRouter | None:
        return self._router if self._router in _ACTIVE else (_ACTIVE[-1] if _ACTIVE else None)

    def write(self, text: str) -> int:
        router = self.router
        if router is None:
            with contextlib.suppress(ValueError, OSError):
                sys.__stderr__.write(text)
        elif "\r" in text and router.term_err.isatty and not router.verbose:
            router.term_err.write(text)
        else:
            router.to_log(text)
        return len(text)

    def flush(self) -> None:
        if self.router is not None:
            self.router.flush_log()

    def fileno(self) -> int:  # a library writing to the descriptor still lands in the log
        return self.router._writer.fileno() if self.router is not None else 2

    def isatty(self) -> bool:
        return self.router is not None and self.router.term_err.isatty

    @property
    def encoding(self) -> str:
        return "utf-8"


class OutputRouter(contextlib.AbstractContextManager):
    """Route fds 1/2, sys.stdout/err and the logging handlers to ``log_path`` for the ``with`` block."""

    def __init__(self, log_path: str | Path, verbose: bool = False) -> None:
        self.log_path = Path(log_path)
        self.verbose = verbose

    def __enter__(self) -> OutputRouter:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for s in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s.flush()
        self.term_out, self.term_err = _Terminal(sys.stdout), _Terminal(sys.stderr)
        self.log_file = open(self.log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
        self._write_lock = threading.Lock()
        read_fd, write_fd = os.pipe()
        self._saved_fds = (os.dup(1), os.dup(2))
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        self._writer = open(write_fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=True)  # noqa: SIM115
        self._reader = threading.Thread(target=self._pump, args=(read_fd,), name="pixelmatch-log", daemon=True)
        self._reader.start()
        self._saved_sys = (sys.stdout, sys.stderr)
        sys.stdout = sys.stderr = _Stream(self)
        self._saved_logging = _route_logging(_Stream(self), (*self._saved_sys, sys.__stdout__, sys.__stderr__))
        _ACTIVE.append(self)
        return self

    def _pump(self, read_fd: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may straddle two reads
        with open(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                text = decoder.decode(chunk)
                self.log_file.write(text)
                self.log_file.flush()
                if self.verbose:
                    self.term_err.write(text)

    def to_log(self, text: str) -> None:
        with self._write_lock:
            self._writer.write(text)

    def flush_log(self) -> None:
        with contextlib.suppress(ValueError):
            self._writer.flush()

    def say(self, line: str, err: bool = False) -> None:
        self.to_log(line + "\n")
        self.flush_log()
        if not self.verbose:  # verbose: the log echo already shows it
            (self.term_err if err else self.term_out).write(line + "\n")

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.remove(self)
        _restore_logging(self._saved_logging)
        sys.stdout, sys.stderr = self._saved_sys
        self.flush_log()
        os.dup2(self._saved_fds[0], 1)
        os.dup2(self._saved_fds[1], 2)
        for fd in self._saved_fds:
            os.close(fd)
        self._writer.close()  # the last write end: the reader sees EOF (unless a child process still holds one)
        self._reader.join(timeout=5)
        self.log_file.close()
        self.term_out.close()
        self.term_err.close()


def _is_console(handler: logging.Handler, consoles: tuple[Any, ...]) -> bool:
    inner = getattr(handler, "python_handler", handler)  # absl's handler wraps a StreamHandler
    return isinstance(inner, logging.StreamHandler) and any(inner.stream is c for c in consoles)


def _route_logging(stream: TextIO, consoles: tuple[Any, ...]) -> dict[str, Any]:
    """One INFO handler on the root logger writes to ``stream`` (the log); root's console handlers step aside and
    other loggers' console handlers (e.g. a library's own, with propagation off) are pointed at ``stream``."""
    root = logging.getLogger()
    saved: dict[str, Any] = {"level": root.level, "removed": [], "streams": []}
    for h in list(root.handlers):
        if _is_console(h, consoles):
            root.removeHandler(h)
            saved["removed"].append(h)
    handlers = [h for lg in list(logging.Logger.manager.loggerDict.values()) for h in getattr(lg, "handlers", [])]
    absl = [h.python_handler for h in _absl_handler() if not _absl_writes_its_own_file(h.python_handler)]
    for h in [*saved["removed"], *handlers, *absl]:  # other threads may add loggers
        inner = getattr(h, "python_handler", h)
        if (_is_console(inner, consoles) or inner in absl) and all(inner is not seen for seen, _ in saved["streams"]):
            # Point it at the log, not just aside. absl's handler holds the stderr of the moment absl was imported
            # (under pytest: its capture file) and, when closed, closes any stream that is not the *current*
            # sys.stderr. `import mlflow` calls logging.config.dictConfig, which closes every handler ever made:
            # without this, the first run in a process closed pytest's capture file for every later test.
            saved["streams"].append((inner, inner.stream))
            inner.stream = stream
    absl_logger = logging.getLogger("absl")  # an earlier run or library may have left absl at WARNING
    saved["absl_level"] = absl_logger.level
    if absl_logger.level > logging.INFO:
        absl_logger.setLevel(logging.INFO)  # the log keeps TFX's INFO lines ("Component X is finished")
    saved["ours"] = logging.StreamHandler(stream)
    saved["ours"].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(saved["ours"])
    root.setLevel(logging.INFO)
    return saved


def _absl_handler() -> list[logging.Handler]:
    """absl's handler when absl is loaded (it may sit on no logger while it waits to be re-installed)."""
    absl_logging = sys.modules.get("absl.logging")
    handler = getattr(absl_logging, "get_absl_handler", lambda: None)()
    return [handler] if handler is not None else []


def _absl_writes_its_own_file(handler: logging.Handler) -> bool:
    """True when absl logs to its ``<program>.INFO.<time>.<pid>`` file (``use_absl_log_file``), not a console."""
    return ".INFO." in str(getattr(getattr(handler, "stream", None), "name", ""))


def _restore_logging(saved: dict[str, Any]) -> None:
    root = logging.getLogger()
    root.removeHandler(saved["ours"])
    for h in saved["removed"]:
        root.addHandler(h)
    for handler, stream in saved["streams"]:
        handler.stream = stream
    root.setLevel(saved["level"])
    logging.getLogger("absl").setLevel(saved["absl_level"])


# ------------------------------------------------------------------------------------------------
# One line per component
# ------------------------------------------------------------------------------------------------
_LABELS = {"num_train": "train", "num_eval": "eval", "n_items": "items", "n_users": "users", "n_interactions": "interactions",
           "n_queries": "queries",
           "n_with_image": "with photo", "n_train_queries": "train queries", "n_train_examples": "train examples",
           "batch_size": "batch", "epochs_run": "epochs", "best_epoch": "best epoch"}
_SKIP = {"current_model_id", "baseline_blessing_id", "published"}
_ORDER = ["num_train", "num_eval", "n_items", "n_users", "n_with_image", "text_dim", "image_dim", "n_train_examples",
          "batch_size", "epochs_run", "best_epoch"]


def _fmt_value(key: str, value: Any) -> str:
    if key.endswith("_dim"):
        return f"{key[:-4]} {value}-d"
    label = _LABELS.get(key, key)
    if key in ("batch_size", "best_epoch"):
        return f"{label} {value:,}"
    return f"{value:,} {label}" if isinstance(value, int) else f"{label} {value}"


def key_output(node_id: str, outputs: Mapping[str, list[Any]]) -> str:
    """A short account of a node's outputs from its artifacts' custom properties (counts, dims, blessing, version)."""
    parts: list[str] = []
    for name, artifacts in sorted(outputs.items()):
        for art in artifacts[:1]:
            keys = getattr(art, "mlmd_artifact", art).custom_properties
            props = {k: _prop(art, k) for k in sorted(keys, key=lambda k: (_ORDER.index(k) if k in _ORDER else 99, k))}
            if name == "blessing" and "blessed" in props:
                parts.append("BLESSED" if props["blessed"] else "NOT blessed")
                continue
            if "pushed" in props:
                parts.append(f"pushed {props.get('pushed_version', '')}".strip() if props["pushed"] else "not pushed")
                continue
            if isinstance(props.get("headline"), str):
                parts.append(props["headline"])
            counts = [_fmt_value(k, v) for k, v in props.items()
                      if k not in _SKIP and not k.startswith("is_") and isinstance(v, int) and k != "blessed"]
            if node_id == "DataExampleGen" and counts:
                parts.append(f"{name} " + "/".join(counts))
            else:
                parts += counts
    return ", ".join(parts[:6])


def _prop(artifact: Any, key: str) -> Any:
    value = getattr(artifact, "mlmd_artifact", artifact).custom_properties[key]
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("int_value", "string_value", "double_value") else None


def _published_outputs(launcher: Any, info: Any) -> dict[str, list[Any]]:
    """``{output key: [MLMD artifact]}`` as published for this execution (the executor's custom properties
    included; the launcher's in-memory ``output_dict`` lacks them), or that ``output_dict`` when MLMD is out of reach."""
    fallback = getattr(info, "output_dict", None) or {}
    execution_id = getattr(info, "execution_id", None)
    if execution_id is None or not hasattr(launcher, "_mlmd_connection"):
        return fallback
    try:
        from ml_metadata.proto import metadata_store_pb2

        with launcher._mlmd_connection as m:
            events = [e for e in m.store.get_events_by_execution_ids([execution_id])
                      if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
            artifacts = {a.id: a for a in m.store.get_artifacts_by_id([e.artifact_id for e in events])}
    except Exception:  # the progress line must never break a run
        return fallback
    out: dict[str, list[Any]] = {}
    for e in events:
        key = e.path.steps[0].key if e.path.steps else "output"
        if e.artifact_id in artifacts:
            out.setdefault(key, []).append(artifacts[e.artifact_id])
    return out or fallback


@contextlib.contextmanager
def track_components(total: int, launcher_cls: Any = None, clock: Callable[[], float] = time.monotonic) -> Iterator[dict]:
    """Print a start line and a done/cached/failed line around each ``Launcher.launch`` call; yields per-node seconds."""
    if launcher_cls is None:
        from tfx.orchestration.portable import launcher

        launcher_cls = launcher.Launcher
    original_launch, original_run = launcher_cls.launch, getattr(launcher_cls, "_run_executor", None)
    seconds: dict[str, float] = {}
    width = len(str(total))

    def run_executor(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._pixelmatch_ran = True
        return original_run(self, *args, **kwargs)

    def launch(self: Any) -> Any:
        node_id = self._pipeline_node.node_info.id
        step = f"{len(seconds) + 1:>{width}}/{total}"
        say(f"{PREFIX} {step} {node_id} started")
        t0 = clock()
        try:
            info = original_launch(self)
        except BaseException as exc:
            seconds[node_id] = clock() - t0
            say(f"{PREFIX} {step} {node_id} FAILED after {format_duration(seconds[node_id])}: {type(exc).__name__}", err=True)
            raise
        seconds[node_id] = clock() - t0
        outputs = _published_outputs(self, info)
        system = getattr(self, "_system_node_handler", None) is not None
        detail = ("baseline " + ("found" if any(outputs.values()) else "none")) if system else key_output(node_id, outputs)
        state = "done" if system or getattr(self, "_pixelmatch_ran", False) else "cached"
        say(f"{PREFIX} {step} {node_id} {state} in {format_duration(seconds[node_id])}" + (f": {detail}" if detail else ""))
        return info

    launcher_cls.launch = launch
    if original_run is not None:
        launcher_cls._run_executor = run_executor
    try:
        yield seconds
    finally:
        launcher_cls.launch = original_launch
        if original_run is not None:
            launcher_cls._run_executor = original_run
