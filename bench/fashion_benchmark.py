"""Real-catalog benchmark (issue #7): the fashion sample through ingest -> run -> serve, as a user would.

    .venv/bin/python bench/fashion_benchmark.py                      # the whole 9,583-item sample
    .venv/bin/python bench/fashion_benchmark.py --strip-colour       # colour words removed from titles, colour column dropped
    .venv/bin/python bench/fashion_benchmark.py --rows 300           # a quick smoke run
    .venv/bin/python bench/fashion_benchmark.py --serve-only         # serve + measure an earlier run's bundle again

Each step runs the real CLI in a subprocess (`pixelmatch ingest` is called in-process; `pixelmatch run` and
`pixelmatch serve` as `python -m pixelmatch_cli ...`) and its wall time is recorded. With the server up:

- ``/search/text`` latency: every colour query and up to ``--latency-queries`` self-supervised eval text
  queries, sent one at a time (after a warm-up); p50/p95 are client-side wall times over loopback;
- colour queries ("black watches", "blue jeans", ...) for each retriever ``bm25``, ``text``, ``image``, ``hybrid``:
  precision@10 of the colour (the held-back ``baseColour`` label is the truth: the bench reads it from the
  source CSV; the search path never sees it when ``--strip-colour`` is given), of the type (``articleType``)
  and of both together.

The run's numbers are saved to ``bench/out/fashion_<variant>_<rows>.json``; the
``<!-- BEGIN fashion -->`` section of docs/benchmark_results.md is rebuilt from every such file present
(other sections of that file are left untouched).
"""
from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from modules.config import load_params, shared_dir  # noqa: E402
from modules.data.ingest import ingest_catalog  # noqa: E402

FASHION = shared_dir() / "datasets" / "fashion-sample"
OUT_ROOT = REPO / "bench" / "out"
RESULTS_MD = REPO / "docs" / "benchmark_results.md"
BEGIN, END = "<!-- BEGIN fashion -->", "<!-- END fashion -->"
RETRIEVERS = ("bm25", "text", "image", "hybrid")
# (query, baseColour truth, articleType truth): common colour x type pairs of the sample.
COLOUR_QUERIES: list[tuple[str, str, str]] = [
    ("black watches", "Black", "Watches"),
    ("blue jeans", "Blue", "Jeans"),
    ("white shirts", "White", "Shirts"),
    ("blue shirts", "Blue", "Shirts"),
    ("red tshirts", "Red", "Tshirts"),
    ("green tshirts", "Green", "Tshirts"),
    ("grey tshirts", "Grey", "Tshirts"),
    ("yellow tshirts", "Yellow", "Tshirts"),
    ("pink tshirts", "Pink", "Tshirts"),
    ("navy blue tshirts", "Navy Blue", "Tshirts"),
    ("purple shirts", "Purple", "Shirts"),
    ("black casual shoes", "Black", "Casual Shoes"),
    ("brown casual shoes", "Brown", "Casual Shoes"),
    ("white sports shoes", "White", "Sports Shoes"),
    ("black sunglasses", "Black", "Sunglasses"),
    ("black handbags", "Black", "Handbags"),
    ("brown belts", "Brown", "Belts"),
    ("black heels", "Black", "Heels"),
]
MIN_RELEVANT = 10          # a colour query is used only when the catalog holds at least this many matches
EXTRA_COLOUR_WORDS = ("gray", "navy", "multicolour", "multicolor", "multi-colour", "multi-color")
ENV = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def colour_pattern(colours: set[str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of any colour name (longest phrases first: "navy blue" before "blue")."""
    names = sorted({c.lower() for c in colours if c.strip()} | set(EXTRA_COLOUR_WORDS), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)


def read_sample(rows: int | None) -> tuple[list[str], list[dict[str, str]], dict[str, dict[str, str]]]:
    """The sample's header, its first ``rows`` rows (all if None) and the held-back truth (colour, type) by id."""
    with (FASHION / "catalog.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        data = [r for i, r in enumerate(reader) if rows is None or i < rows]
    return header, data, {r["id"]: {"colour": r["baseColour"], "type": r["articleType"]} for r in data}


def prepare_catalog(work: Path, rows: int | None, strip_colour: bool) -> tuple[Path, dict[str, dict[str, str]], dict]:
    """Write the catalog CSV the ingest will read; return it, the held-back truth by id, and strip stats."""
    header, data, truth = read_sample(rows)
    stats = {"titles_changed": 0, "colour_words_removed": 0}
    if strip_colour:
        pattern = colour_pattern({r["baseColour"] for r in data})
        for r in data:
            new, n = pattern.subn("", r["title"])
            new = re.sub(r"\s{2,}", " ", new).strip()
            if n:
                stats["titles_changed"] += 1
                stats["colour_words_removed"] += n
            r["title"] = new or r["title"]  # a title that was only colour words keeps them (never emptied)
            del r["baseColour"]
        header = [h for h in header if h != "baseColour"]
    work.mkdir(parents=True, exist_ok=True)
    path = work / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(data)
    return path, truth, stats


def _env() -> dict[str, str]:
    return {**os.environ, **ENV, "PYTHONPATH": str(REPO)}


def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {timeout_s:.0f} s")


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def search(client: httpx.Client, base: str, query: str, retriever: str, top_k: int = 10) -> tuple[list[str], float]:
    t0 = time.perf_counter()
    r = client.post(f"{base}/search/text", json={"query": query, "top_k": top_k, "retriever": retriever})
    ms = (time.perf_counter() - t0) * 1000.0
    r.raise_for_status()
    return [x["item_id"] for x in r.json()["results"]], ms


def measure(base: str, data_dir: Path, truth: dict[str, dict[str, str]], n_latency: int) -> dict[str, Any]:
    """Latency of /search/text (hybrid) and colour/type precision@10 per retriever."""
    ids = set(truth)
    usable = [(q, c, t) for q, c, t in COLOUR_QUERIES
              if sum(1 for i in ids if truth[i]["colour"] == c and truth[i]["type"] == t) >= MIN_RELEVANT]
    queries = [json.loads(line) for line in (data_dir / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    latency_texts = [q for q, _, _ in usable] + [q["text"] for q in queries
                                                  if q["kind"] == "text" and q["split"] == "eval"][:n_latency]
    with httpx.Client(timeout=60) as client:
        for text in latency_texts[:5]:  # warm-up (first-call graph tracing, caches)
            search(client, base, text, "hybrid")
        lat = np.array([search(client, base, text, "hybrid")[1] for text in latency_texts])
        per_retriever: dict[str, dict[str, float]] = {}
        per_query: dict[str, dict[str, float]] = {}
        for retriever in RETRIEVERS:
            colour_p, type_p, both_p = [], [], []
            for q, colour, kind in usable:
                got, _ = search(client, base, q, retriever)
                top = [truth[i] for i in got[:10] if i in truth]
                colour_p.append(sum(t["colour"] == colour for t in top) / 10.0)
                type_p.append(sum(t["type"] == kind for t in top) / 10.0)
                both_p.append(sum(t["colour"] == colour and t["type"] == kind for t in top) / 10.0)
                per_query.setdefault(q, {})[retriever] = colour_p[-1]
            per_retriever[retriever] = {"colour_p10": float(np.mean(colour_p)), "type_p10": float(np.mean(type_p)),
                                        "both_p10": float(np.mean(both_p))}
    return {
        "latency": {"n": int(lat.size), "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
                    "mean_ms": float(lat.mean())},
        "colour_queries": [q for q, _, _ in usable],
        "retrievers": per_retriever,
        "per_query_colour_p10": per_query,
    }


def _photo_bytes(path: Path, scale: float = 1.0, quality: int = 95) -> bytes:
    """A catalog photo re-encoded as JPEG at ``quality``, resized by ``scale`` (a shopper's copy of it)."""
    import io

    from PIL import Image

    img = Image.open(path).convert("RGB")
    if scale != 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@functools.cache
def photo_md5(item_id: str) -> str | None:
    """md5 of a product's photo file in the sample (None without one): 121 groups of products share byte-identical
    photos, which no engine can tell apart."""
    path = FASHION / "images" / f"{item_id}.jpg"
    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else None


def same_photo_first(item_id: str, got: list[str]) -> bool:
    """The first result is the product itself or a product whose photo file is byte-identical to its own."""
    if not got:
        return False
    own = photo_md5(item_id)
    return got[0] == item_id or (own is not None and photo_md5(got[0]) == own)


def search_photo(client: httpx.Client, base: str, photo: bytes, top_k: int) -> tuple[list[str], float]:
    t0 = time.perf_counter()
    r = client.post(f"{base}/search/image", files={"image": ("q.jpg", photo, "image/jpeg")}, data={"top_k": top_k})
    ms = (time.perf_counter() - t0) * 1000.0
    r.raise_for_status()
    return [x["item_id"] for x in r.json()["results"]], ms


def measure_photos(base: str, truth: dict[str, dict[str, str]], n_own: int, n_type: int, seed: int
                   ) -> dict[str, Any]:
    """Photo queries over HTTP: (1) a product's own photo, JPEG quality 85 at 80% size, should come back first
    (strictly, and "or a product whose photo file is byte-identical", :func:`same_photo_first`); (2) image -> image
    precision@10 of the same articleType, the query item excluded."""
    rng = np.random.default_rng(seed)
    ids = sorted(i for i in truth if (FASHION / "images" / f"{i}.jpg").is_file())
    own_ids = [ids[j] for j in rng.choice(len(ids), size=min(n_own, len(ids)), replace=False)]
    type_ids = [ids[j] for j in rng.choice(len(ids), size=min(n_type, len(ids)), replace=False)]
    first, identical, lat, misses = 0, 0, [], []
    with httpx.Client(timeout=60) as client:
        for iid in own_ids:
            got, ms = search_photo(client, base, _photo_bytes(FASHION / "images" / f"{iid}.jpg", 0.8, 85), 10)
            lat.append(ms)
            first += bool(got) and got[0] == iid
            identical += same_photo_first(iid, got)
            if not got or got[0] != iid:
                misses.append(iid)
        precisions = []
        for iid in type_ids:
            got, _ = search_photo(client, base, _photo_bytes(FASHION / "images" / f"{iid}.jpg"), 11)
            top = [g for g in got if g != iid][:10]
            precisions.append(sum(truth.get(g, {}).get("type") == truth[iid]["type"] for g in top) / 10.0)
    lat_a = np.array(lat)
    return {"own_photo": {"n": len(own_ids), "first": int(first), "rate": first / max(1, len(own_ids)),
                          "first_or_identical": int(identical),
                          "rate_or_identical": identical / max(1, len(own_ids)),
                          "misses": misses[:20], "p50_ms": float(np.percentile(lat_a, 50)),
                          "p95_ms": float(np.percentile(lat_a, 95))},
            "image_to_image_type_p10": {"n": len(type_ids), "p10": float(np.mean(precisions))}}


def serve_and_measure(args: argparse.Namespace, work: Path, truth: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Start `pixelmatch serve` on ``work/serving``, wait for /ready, run :func:`measure`, stop the server."""
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "pixelmatch_cli", "serve", "--serving-dir", str(work / "serving"), "--port", str(port)]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with (work / "serve.log").open("w") as log:
        server = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(base, server, args.ready_timeout)
            ready_s = time.perf_counter() - t0
            return {"serve_ready_s": ready_s, **measure(base, work / "data", truth, args.latency_queries),
                    "photos": measure_photos(base, truth, args.own_photos, args.type_photos, args.seed)}
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def serve_only(args: argparse.Namespace) -> dict[str, Any]:
    """Measure an earlier run's bundle again (server start, latency, colour precision); nothing is rebuilt."""
    work = _work_dir(args)
    if not (work / "serving" / "LATEST").is_file() or not (work / "data" / "queries.jsonl").is_file():
        raise SystemExit(f"{work}: no finished run to serve (run without --serve-only first)")
    _, _, truth = read_sample(args.rows)   # the truth never depends on --strip-colour
    result = serve_and_measure(args, work, truth)
    result["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return result


def _labels(args: argparse.Namespace) -> tuple[str, str]:
    """(variant, rows label) naming a run's work dir and results file."""
    return ("stripped" if args.strip_colour else "full"), (str(args.rows) if args.rows else "all")


def _work_dir(args: argparse.Namespace) -> Path:
    variant, rows_label = _labels(args)
    return Path(args.work_dir) if args.work_dir else OUT_ROOT / f"fashion_{variant}_{rows_label}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    variant, rows_label = _labels(args)
    work = _work_dir(args)
    data, serving, root = work / "data", work / "serving", work / "pipeline_root"
    params = load_params()
    result: dict[str, Any] = {"variant": variant, "rows_arg": rows_label, "seed": args.seed}

    catalog, truth, strip_stats = prepare_catalog(work, args.rows, args.strip_colour)
    result["strip"] = strip_stats if args.strip_colour else None
    mapping = {"item_id": "id", "category": "articleType"}
    if not args.strip_colour:
        mapping["color"] = "baseColour"

    t0 = time.perf_counter()
    report = ingest_catalog(catalog, str(FASHION / "images"), data, mapping=mapping, seed=args.seed, params=params)
    result["ingest_s"] = time.perf_counter() - t0
    result["counts"] = report["counts"]

    cmd = [sys.executable, "-m", "pixelmatch_cli", "run", "--data", str(data), "--serving-dir", str(serving),
           "--pipeline-root", str(root)]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with (work / "run.log").open("w") as log:
        code = subprocess.call(cmd, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT)
    result["run_s"] = time.perf_counter() - t0
    result["run_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    result["run_exit_code"] = code
    if code != 0 or not (serving / "LATEST").is_file():
        raise SystemExit(f"`pixelmatch run` exited {code} (LATEST present: {(serving / 'LATEST').is_file()}); "
                         f"see {work / 'run.log'}")
    result["bundle_version"] = (serving / "LATEST").read_text().strip()
    bundle_manifest = serving / result["bundle_version"] / "manifest.json"
    if bundle_manifest.is_file():
        manifest = json.loads(bundle_manifest.read_text())
        result["bundle_metrics"] = manifest.get("metrics")
        result["bundle_blessing"] = manifest.get("blessing")

    stats = sorted(root.glob("**/EmbeddingGen/embeddings/*/stats.json"), key=lambda f: f.stat().st_mtime)
    if stats:
        result["embedding_gen"] = json.loads(stats[-1].read_text())
    result.update(serve_and_measure(args, work, truth))
    result["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    result["machine"] = f"{os.cpu_count()} CPU cores, no GPU in use"
    return result


def _command(r: dict[str, Any]) -> str:
    parts = [".venv/bin/python bench/fashion_benchmark.py"]
    if r["rows_arg"] != "all":
        parts.append(f"--rows {r['rows_arg']}")
    if r["variant"] == "stripped":
        parts.append("--strip-colour")
    return " ".join(parts)


def render_section(results: list[dict[str, Any]]) -> str:
    lines = [BEGIN, "## Real catalog: fashion sample (issue #7)", "",
             "Ingest -> `pixelmatch run` -> `pixelmatch serve` on `../shared/datasets/fashion-sample/` "
             "(real titles, labels and 224x224 photos; no interactions, self-supervised known-item queries). "
             "`full` keeps titles and the colour column; `stripped` removes every colour word from the titles and "
             "drops the colour column, so colour can only come from the photos. Colour precision@10 uses the "
             "held-back `baseColour` label as truth; type precision@10 the `articleType` label.", ""]
    for r in sorted(results, key=lambda x: (x["rows_arg"] != "all", x["rows_arg"], x["variant"])):
        c = r["counts"]
        lines += [
            f"### {r['variant']}, {c['items']} items ({r['measured_at']}, {r['machine']})", "",
            f"Command: `{_command(r)}`", "",
            "| step | wall time |", "|---|---|",
            f"| ingest ({c['with_image']} photos, {c['queries']} self-supervised queries) | {r['ingest_s']:.1f} s |",
            f"| `pixelmatch run` (peak RSS {r['run_peak_rss_mb']:.0f} MB) | {r['run_s']:.1f} s |",
            f"| `pixelmatch serve` until /ready | {r['serve_ready_s']:.1f} s |",
            "",
            f"`/search/text` (hybrid, loopback, sequential, n={r['latency']['n']}): "
            f"p50 {r['latency']['p50_ms']:.1f} ms, **p95 {r['latency']['p95_ms']:.1f} ms**", "",
        ]
        blessing = r.get("bundle_blessing")
        if isinstance(blessing, dict) and blessing.get("reasons"):
            lines += [f"Blessing of the pushed bundle (eval queries): {blessing['reasons']}", ""]
        if r.get("strip"):
            lines += [f"Stripping changed {r['strip']['titles_changed']} titles "
                      f"({r['strip']['colour_words_removed']} colour words removed).", ""]
        lines += [f"Colour queries ({len(r['colour_queries'])}): " + ", ".join(f'"{q}"' for q in r["colour_queries"]),
                  "", "| retriever | colour P@10 | type P@10 | colour+type P@10 |", "|---|---|---|---|"]
        for name in RETRIEVERS:
            m = r["retrievers"][name]
            lines.append(f"| {name} | {m['colour_p10']:.3f} | {m['type_p10']:.3f} | {m['both_p10']:.3f} |")
        lines.append("")
        if r.get("photos"):
            own, i2i = r["photos"]["own_photo"], r["photos"]["image_to_image_type_p10"]
            identical = (f", it or a product with a byte-identical photo file for **{own['first_or_identical']} "
                         f"({own['rate_or_identical']:.1%})**" if "first_or_identical" in own else "")
            lines += [f"`/search/image`: a product's own photo (JPEG quality 85, 80% size) comes back first for "
                      f"**{own['first']} of {own['n']} ({own['rate']:.1%})** random products{identical} "
                      f"(p50 {own['p50_ms']:.0f} ms, p95 {own['p95_ms']:.0f} ms); image -> image articleType "
                      f"precision@10 over {i2i['n']} random photos, the query item excluded: **{i2i['p10']:.3f}**.",
                      ""]
        if r.get("embedding_gen"):
            e = r["embedding_gen"]
            lines += ["EmbeddingGen (from its `stats.json`): " + ", ".join(f"{k} {v:.0f} s" for k, v in
                                                                           e["seconds"].items()), ""]
            if e.get("attributes"):
                lines += ["| attribute learned from photos | held-out accuracy | majority baseline | classes | "
                          "filled |", "|---|---|---|---|---|"]
                lines += [f"| {c} | {m['held_out_accuracy']:.3f} | {m['majority_baseline']:.3f} | {m['classes']} | "
                          f"{m['n_filled']} of {m['n_missing']} |" for c, m in e["attributes"].items()]
                lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write_section(md_path: Path, section: str) -> None:
    """Replace only the fashion section of the results file (create the file or append the section if absent)."""
    text = md_path.read_text(encoding="utf-8") if md_path.is_file() else "# PixelMatch benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=None, help="first N rows of the sample (default: all 9,583)")
    p.add_argument("--strip-colour", action="store_true", help="remove colour words from titles, drop the colour column")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work-dir", default=None, help="default: bench/out/fashion_<variant>_<rows>")
    p.add_argument("--port", type=int, default=0, help="0: a free loopback port")
    p.add_argument("--latency-queries", type=int, default=200, help="self-supervised eval text queries timed")
    p.add_argument("--ready-timeout", type=float, default=600.0)
    p.add_argument("--own-photos", type=int, default=500, help="products whose own photo (JPEG q85, 80%% size) is sent")
    p.add_argument("--type-photos", type=int, default=200, help="photos for image->image articleType precision@10")
    p.add_argument("--md", default=str(RESULTS_MD), help="results markdown (only the fashion section is replaced)")
    p.add_argument("--serve-only", action="store_true",
                   help="serve and measure the bundle an earlier run of the same variant left (no ingest, no run); "
                        "prints the figures and leaves the saved results and the docs untouched")
    args = p.parse_args(argv)
    if args.rows is not None and args.rows <= 0:
        p.error("--rows must be positive")
    if args.serve_only:
        again = serve_only(args)
        print(json.dumps({k: again[k] for k in ("measured_at", "serve_ready_s", "latency", "retrievers", "photos")},
                         indent=2))
        return 0

    result = run(args)
    OUT_ROOT.mkdir(parents=True, exist_ok=True)
    out_json = OUT_ROOT / f"fashion_{result['variant']}_{result['rows_arg']}.json"
    out_json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    results = [json.loads(f.read_text()) for f in sorted(OUT_ROOT.glob("fashion_*.json"))]
    write_section(Path(args.md), render_section(results))
    print(json.dumps({k: result[k] for k in ("ingest_s", "run_s", "serve_ready_s", "latency", "retrievers", "photos")},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
