"""Benchmark report writing: the markdown section, its JSON entry and the bar plot.

* ``write_benchmark`` rewrites one marked section of ``docs/benchmark_results.md`` (other code owns
  the other sections), the matching entry of ``docs/benchmark_results.json`` and a bar plot.
* ``render_section`` / ``plot_results`` are the two halves it is made of (the pipeline's evaluator writes them
  into its own artifact); ``replace_section`` swaps one ``<!-- BEGIN x --> ... <!-- END x -->`` block.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def machine_info() -> str:
    """One line naming the CPU model, core count and RAM of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except (OSError, ValueError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores{ram}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{float(v):.{digits}f}"


def _method_rows(results: Mapping[str, Any], k: int) -> list[tuple[str, Mapping[str, Any]]]:
    return [(key, r) for key, r in results.items() if isinstance(r, Mapping) and f"ndcg@{k}" in r]


def _cold_warm(r: dict[str, Any], k: int) -> str:
    """Cold-query and warm-query NDCG@k and their ratio (the search cold-start goal is a ratio >= 0.95)."""
    cold, warm = r.get(f"cold_ndcg@{k}"), r.get(f"warm_ndcg@{k}")
    if cold is None or not warm:
        return "n/a"
    return f"{_fmt(cold)} / {_fmt(warm)} ({cold / warm:.2f})"


def render_section(
    results: Mapping[str, Any],
    section: str,
    command: str,
    machine: str,
    k: int = 10,
    extra_lines: Sequence[str] = (),
    plot_name: str | None = None,
) -> str:
    """The markdown of one benchmark section (without its marker comments)."""
    date = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"## Search benchmark ({section})" if section.startswith("search") else f"## {section}",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        f"- Date: {date}",
        *[f"- {line}" for line in extra_lines],
        "",
        f"| Method | NDCG@{k} | MRR | Recall@{k} | Cold-Start Recall@{k} | cold / warm NDCG@{k} | p95 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = _method_rows(results, k)
    for key, r in rows:
        lines.append(
            f"| {r.get('label', key)} | {_fmt(r[f'ndcg@{k}'])} | {_fmt(r['mrr'])} | {_fmt(r[f'recall@{k}'])} | "
            f"{_fmt(r.get(f'cold_recall@{k}'))} | {_cold_warm(r, k)} | {_fmt(r['latency_ms']['p95'], 1)} |"
        )
    lines += [
        "",
        "All figures, with the query set each method was measured on:",
        "",
        f"| Method | Query kind | Queries (cold) | Precision@{k} | MAP@{k} | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, r in rows:
        lat = r["latency_ms"]
        lines.append(
            f"| {r.get('label', key)} | {r.get('query_kind', '')} | {r['n_queries']} ({r.get('n_cold', 0)}) | "
            f"{_fmt(r[f'precision@{k}'])} | {_fmt(r[f'map@{k}'])} | {_fmt(lat['p50'], 1)} | {_fmt(lat['p99'], 1)} | "
            f"{_fmt(lat['mean'], 1)} |"
        )
    if plot_name:
        lines += ["", f"![{section} NDCG@{k} and Recall@{k}]({plot_name})"]
    return "\n".join(lines) + "\n"


def _check_section(section: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", section):
        raise ValueError(f"section name must be alphanumeric (plus _ . -), got {section!r}")


def replace_section(document: str, section: str, body: str) -> str:
    """Replace the text between ``<!-- BEGIN section -->`` and ``<!-- END section -->`` (append if absent)."""
    _check_section(section)
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: block, document, count=1)
    if not document.strip():
        document = "# PixelMatch benchmark results\n\nEvery figure below was measured by the command written next to it.\n"
    return document.rstrip("\n") + "\n\n" + block + "\n"


def plot_results(results: Mapping[str, Any], out_png: str | Path, k: int = 10, title: str = "") -> Path:
    """Grouped bar plot of NDCG@k and Recall@k per method (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _method_rows(results, k)
    labels = [r.get("label", key) for key, r in rows]
    ndcg = [float(r[f"ndcg@{k}"]) for _, r in rows]
    recall = [float(r[f"recall@{k}"]) for _, r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    ax.barh(y - 0.2, ndcg, height=0.4, label=f"NDCG@{k}")
    ax.barh(y + 0.2, recall, height=0.4, label=f"Recall@{k}")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (eval queries)")
    ax.set_title(title or f"Search quality @{k}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_benchmark(
    results: Mapping[str, Any],
    out_md: str | Path = "docs/benchmark_results.md",
    section: str = "search",
    command: str = "",
    machine: str | None = None,
    k: int = 10,
    extra: Mapping[str, Any] | None = None,
    extra_lines: Sequence[str] = (),
) -> dict[str, Path]:
    """Write this section of the benchmark markdown, its JSON entry and its bar plot.

    Only the text between ``<!-- BEGIN section -->`` and ``<!-- END section -->`` of ``out_md`` is
    replaced; the JSON (``<out_md stem>.json`` next to it) keeps the other sections' entries. The
    plot is ``benchmark_<section>.png`` in the same folder.
    """
    if not command:
        raise ValueError("write_benchmark needs the command that produced the figures")
    _check_section(section)
    machine = machine or machine_info()
    md_path = Path(out_md)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    png_path = md_path.parent / f"benchmark_{section}.png"
    json_path = md_path.with_suffix(".json")

    plot_results(results, png_path, k=k, title=f"PixelMatch {section}: eval queries")
    body = render_section(results, section, command, machine, k, extra_lines, plot_name=png_path.name)
    document = md_path.read_text() if md_path.is_file() else ""
    md_path.write_text(replace_section(document, section, body))

    data: dict[str, Any] = {}
    if json_path.is_file():
        try:
            data = json.loads(json_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{json_path} is not valid JSON; fix or delete it") from exc
    data[section] = {
        "command": command,
        "machine": machine,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "k": k,
        "results": _jsonable(results),
        **({"extra": _jsonable(extra)} if extra else {}),
    }
    json_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return {"md": md_path, "json": json_path, "png": png_path}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
