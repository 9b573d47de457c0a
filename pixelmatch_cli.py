"""The `pixelmatch` command line. It only dispatches: every command calls library code in
modules/, pipelines/ or serving/ (imported lazily, so `pixelmatch --help` is instant)."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import typer  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, help="PixelMatch: multimodal product search and recommendation.")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _params(params_path: str | None) -> dict:
    from modules.config import load_params

    try:
        return load_params(params_path)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
        raise  # unreachable, for type checkers


@app.command()
def generate(
    scale: str = typer.Option("small", help="tiny (~300 SKUs), small (5K / 50K interactions) or full (100K / 1M)"),
    out: Path = typer.Option(Path("data"), help="output DATA_DIR"),
    seed: int = typer.Option(42, help="random seed; the same seed gives identical files"),
    params_path: str = typer.Option(None, "--params", help="params.yaml to use"),
    looks: int = typer.Option(0, help="also write this many shop-the-look photos (looks/ + looks.jsonl)"),
) -> None:
    """Generate the synthetic catalog, images, interactions and judged queries."""
    from modules.data.catalog.generate import generate_catalog

    params = _params(params_path)
    try:
        manifest = generate_catalog(scale, out, seed=seed, params=params)
    except ValueError as exc:
        _fail(str(exc), 2)
    counts = manifest.get("counts", {})
    if looks > 0:
        from modules.data.catalog.looks import generate_looks

        counts = {**counts, "looks": len(generate_looks(out, n_looks=looks, seed=seed, params=params))}
    typer.echo(f"wrote {out}/ : " + ", ".join(f"{k}={v}" for k, v in counts.items()))


@app.command()
def ingest(
    catalog: Path = typer.Argument(..., help="catalog CSV (needs an id and a title column)"),
    images: Path = typer.Option(None, help="folder of <id>.jpg|.jpeg|.png|.webp (or use an image_path column)"),
    out: Path = typer.Option(Path("data"), help="output DATA_DIR (same format as `generate`)"),
    map_: list[str] = typer.Option([], "--map", help="rename columns: TARGET=SOURCE, e.g. item_id=id, category=articleType"),
    seed: int = typer.Option(42),
) -> None:
    """Ingest your own catalog (CSV + photos) into the DATA_DIR format the pipeline reads."""
    from modules.data.ingest import IngestError, ingest_catalog

    mapping: dict[str, str] = {}
    for entry in map_:
        target, sep, source = entry.partition("=")
        if not sep or not target.strip() or not source.strip():
            _fail(f"--map expects TARGET=SOURCE, got {entry!r}", 2)
        mapping[target.strip()] = source.strip()
    try:
        ingest_catalog(catalog, str(images) if images else None, out, mapping=mapping, seed=seed)
    except (IngestError, FileNotFoundError) as exc:
        _fail(str(exc), 2)


@app.command()
def encode(
    text: list[str] = typer.Option([], "--text", help="text to embed with SBERT (repeatable)"),
    image: list[Path] = typer.Option([], "--image", help="image to embed (repeatable)"),
    image_encoder: str = typer.Option("color", help="color (model-free), tower (needs --model-dir) or clip (needs --model-dir)"),
    model_dir: str = typer.Option(None, help="trained image tower dir (e.g. serving_dir/<v>/search/image_tower) or a local CLIP dir"),
) -> None:
    """Print embeddings as JSON lines: {"encoder", "dim", "vector"} per input."""
    if not text and not image:
        _fail("give at least one --text or --image", 2)
    from modules.data.images import ImageError
    from modules.encoders.cli_support import encode_json_lines

    try:
        for line in encode_json_lines(list(text), [str(p) for p in image], image_encoder=image_encoder, model_dir=model_dir):
            typer.echo(line)
    except (ImageError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc), 2)


@app.command()
def run(
    data: Path = typer.Option(Path("data"), help="DATA_DIR from `generate` or `ingest`"),
    serving_dir: Path = typer.Option(Path("serving_dir"), help="where blessed bundles are pushed"),
    pipeline_root: Path = typer.Option(None, help="TFX pipeline root (default: params pipeline.root)"),
    params_path: str = typer.Option(None, "--params"),
    verbose: bool = typer.Option(False, "--verbose", help="also show TF, absl and Beam output here (always in the run log)"),
) -> None:
    """Run the TFX pipeline (LocalDagRunner): validate, transform, embed, train, evaluate, bless, push.

    Prints one line per component start and end; library output goes to <pipeline root>/logs/run-<time>.log.
    Exit codes: 0 pushed (or already serving this model), 1 failed, 2 bad data or a bad params file (an unknown key or
    a wrong type, named before anything runs), 3 locked, 4 completed but nothing pushed (not blessed; the reasons are
    printed)."""
    from pipelines.local_runner import run_pipeline

    code = run_pipeline(str(data), str(serving_dir), pipeline_root=str(pipeline_root) if pipeline_root else None,
                        params_path=params_path, verbose=verbose)
    raise typer.Exit(code)


@app.command()
def serve(
    serving_dir: Path = typer.Option(Path("serving_dir"), help="SERVING_DIR with LATEST and pushed bundles"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    workers: int = typer.Option(0, help="uvicorn worker processes (0: one per CPU core). Live adds reach only "
                                "the worker that took them until the next reload; use 1 with live adds."),
) -> None:
    """Serve the search + recommendation API and the web page."""
    import os

    from serving.app import serve as serve_app

    if not (serving_dir / "LATEST").is_file():
        _fail(f"{serving_dir}/LATEST not found: run `pixelmatch run --serving-dir {serving_dir}` first", 2)
    if workers < 0:
        _fail("--workers must be >= 0", 2)
    serve_app(str(serving_dir), host=host, port=port, workers=workers or os.cpu_count() or 1)


@app.command()
def benchmark(
    scale: str = typer.Option("small", help="tiny | small | full"),
    data: Path = typer.Option(None, help="existing DATA_DIR (default: generate one for --scale)"),
    out: Path = typer.Option(Path("docs/benchmark_results.md")),
    params_path: str = typer.Option(None, "--params"),
    serving_dir: Path = typer.Option(None, "--serving-dir",
                                     help="measure the pushed bundle SERVING_DIR/LATEST names on --data's EVAL queries"),
) -> None:
    """Evaluate every retriever against the judged eval queries and write docs/benchmark_results.md."""
    if serving_dir is not None:
        from modules.bundle import BundleError
        from modules.evaluation.benchmark import NoBundleError, run_serving_benchmark

        if data is None:
            _fail("--serving-dir needs --data: the catalog whose EVAL queries to measure the bundle on", 2)
        try:
            run_serving_benchmark(str(serving_dir), str(data), out_md=str(out), params_path=params_path)
        except (NoBundleError, BundleError) as exc:   # nothing pushed, or a bundle the server would refuse
            _fail(str(exc), 2)
        return
    from modules.evaluation.benchmark import run_benchmark_cli

    run_benchmark_cli(scale, data_dir=str(data) if data else None, out_md=str(out), params_path=params_path)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
