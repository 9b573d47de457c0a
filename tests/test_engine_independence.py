"""The engine never knows the generator (docs: DESIGN.md "quality rules"): no engine module imports
``modules.data.catalog``, and no engine table is a copy of a generator table (colour palette, synonyms, photo recipe).

Engine = every .py file under modules/ (except modules/data/catalog/), components/, serving/, pipelines/ and
pixelmatch_cli.py. The generator is run only by ``pixelmatch generate``, the benchmark's data step and tests; the
two places that call it are listed in :data:`ALLOWED_IMPORTS` with the reason.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ENGINE_ROOTS = ("modules", "components", "serving", "pipelines")
GENERATOR = "modules.data.catalog"

# (file, enclosing function) -> why it may import the generator. Both are the benchmark's / CLI's data step.
ALLOWED_IMPORTS: dict[tuple[str, str], str] = {
    ("pixelmatch_cli.py", "generate"): "`pixelmatch generate`: the CLI command that writes the synthetic catalog",
    ("modules/evaluation/benchmark.py", "_prepare_catalog"): "`pixelmatch benchmark`: generates its catalog when the "
                                                    "benchmark's DATA_DIR holds none (the benchmark's data step)",
}
# An engine synonym map may hold at most this share of generator pairs. Why a share of the engine's map and not of
# the generator's: the generator's synonyms are themselves ordinary English ("navy blue", "plaid", "trainers"), so a
# vocabulary built from a general source (the XKCD survey, everyday retail words) necessarily contains many of them
# (30 of its 33 colour pairs are XKCD survey names). What must not happen is that the engine's table *is* the
# generator's table -- then nearly all of it would be generator pairs (the replaced colour map: 27 of 33 entries).
MAX_GENERATOR_SHARE = 0.25


def _engine_files() -> list[Path]:
    files = [REPO / "pixelmatch_cli.py"]
    for root in ENGINE_ROOTS:
        files += [p for p in sorted((REPO / root).rglob("*.py")) if p.relative_to(REPO).parts[1:3] != ("data", "catalog")]
    return files


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Absolute names imported by an Import / ImportFrom node (relative forms resolved against ``module``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")
            base = base if is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
    return []


def _generator_imports(path: Path) -> list[tuple[str, str, int]]:
    """(enclosing function or "<module>", imported name, line) for each import of modules.data.catalog in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module, is_package = _module_name(path), path.name == "__init__.py"
    hits: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            for name in _imported_modules(child, module, is_package):
                if name == GENERATOR or name.startswith(GENERATOR + "."):
                    hits.append((func, name, child.lineno))
                    break
            visit(child, inner)

    visit(tree, "<module>")
    return hits


def test_the_import_walker_sees_every_form() -> None:
    src = ("import modules.data.catalog.vocab\nfrom modules.data.catalog import vocab\nfrom modules.data import catalog\n"
           "def f():\n    from ..data.catalog.images import render_item\n")
    tree = ast.parse(src)
    names = [n for node in ast.walk(tree) for n in _imported_modules(node, "modules.search.zero_shot", False)]
    assert {"modules.data.catalog.vocab", "modules.data.catalog", "modules.data.catalog.images"} <= set(names)


def test_no_engine_module_imports_the_generator() -> None:
    files = _engine_files()
    assert len(files) > 40 and not any("modules/data/catalog/" in str(p) for p in files)
    found = {(str(p.relative_to(REPO)), func): (name, line) for p in files for func, name, line in _generator_imports(p)}
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED_IMPORTS}
    assert not unexpected, f"engine files import the generator: {unexpected}"
    assert set(found) == set(ALLOWED_IMPORTS), "an allowed exception no longer exists: drop it from the list"


def test_colour_prototypes_are_not_the_generator_palette() -> None:
    from modules.data.catalog.vocab import COLORS
    from modules.encoders import color_naming as color
    from modules.encoders.color_vocab import survey_terms

    generator_rgbs = {tuple(v) for v in COLORS.values()}
    assert not generator_rgbs & {tuple(v) for v in color.COLOR_TABLE.values()}
    assert not generator_rgbs & {rgb for _, rgb in survey_terms().values()}
    assert not hasattr(color, "_EXTRA_PROTOTYPES")
    assert len(color._PROTO_NAMES) > 900  # the survey's names, not a hand-made palette
    # the prototypes are exactly matplotlib's XKCD colours when matplotlib is there (the vendored copy is true)
    try:
        from matplotlib.colors import XKCD_COLORS, to_rgb
    except ImportError:
        return
    mpl = {k[5:]: tuple(int(round(255 * c)) for c in to_rgb(v)) for k, v in XKCD_COLORS.items() if "/" not in k}
    assert {name: rgb for name, (_, rgb) in survey_terms().items()} == mpl


def _pairs(table: dict[str, list[str]]) -> set[tuple[str, str]]:
    """(phrase, canonical) pairs of a generator synonym table {canonical: [canonical, synonym, ...]}."""
    return {(" ".join(w.lower().replace("-", " ").split()), canon) for canon, words in table.items() for w in words[1:]}


def _engine_pairs(table: dict[str, str]) -> set[tuple[str, str]]:
    return {(" ".join(k.lower().replace("-", " ").split()), v) for k, v in table.items()}


def test_query_synonyms_are_not_the_generator_tables() -> None:
    from modules.data.catalog import vocab
    from modules.search.query import DEFAULT_SYNONYMS

    generator = {
        "color": _pairs(vocab.COLOR_SYNONYMS),
        "pattern": _pairs(vocab.PATTERN_SYNONYMS) | _pairs(vocab.STYLE_SYNONYMS),
        "category": _pairs({name: spec.synonyms for name, spec in vocab.CATEGORIES.items()}),
    }
    for field, gen in generator.items():
        engine = _engine_pairs(DEFAULT_SYNONYMS[field])
        share = len(engine & gen) / len(engine)
        assert share <= MAX_GENERATOR_SHARE, (field, round(share, 3), sorted(engine & gen))
    colour = _engine_pairs(DEFAULT_SYNONYMS["color"])
    assert len(colour) > 500 and ("denim blue", "blue") in colour and ("navy blue", "navy") in colour


def test_zero_shot_labels_are_not_the_generator_lists() -> None:
    from modules.data.catalog import vocab
    from modules.search import zero_shot

    assert list(zero_shot.DEFAULT_PATTERNS) != list(vocab.PATTERNS)
    assert list(zero_shot.DEFAULT_STYLES) != list(vocab.STYLES)
    styles = set(zero_shot.DEFAULT_STYLES)
    assert len(styles & set(vocab.STYLES)) / len(styles) <= MAX_GENERATOR_SHARE


def _uniform_ranges(path: Path) -> set[tuple[float, float]]:
    """(low, high) of every ``*.uniform(low, high, ...)`` call with literal numeric bounds in ``path``."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "uniform" and len(node.args) >= 2:
            try:
                out.add((float(ast.literal_eval(node.args[0])), float(ast.literal_eval(node.args[1]))))
            except ValueError:
                continue
    return out


def test_photo_augmentation_has_none_of_the_generators_street_photo_constants() -> None:
    from modules.encoders import tower, tower_augment

    assert not any(hasattr(m, "street_augment") or hasattr(m, "_clutter_background") for m in (tower, tower_augment))
    recipe = {r for r in _uniform_ranges(REPO / "modules" / "data" / "catalog" / "images.py") if r != (0.0, 0.0)}
    assert len(recipe) > 15
    engine = set(_uniform_ranges(REPO / "modules" / "encoders" / "tower.py"))
    engine |= set(_uniform_ranges(REPO / "modules" / "encoders" / "tower_augment.py"))
    engine |= {tuple(float(x) for x in v) for k, v in vars(tower_augment).items()
               if k.startswith("_") and isinstance(v, tuple) and len(v) == 2
               and all(isinstance(x, (int, float)) for x in v)}
    engine |= {(-float(tower_augment._MAX_ROTATION), float(tower_augment._MAX_ROTATION)), (-float(tower_augment._HUE), float(tower_augment._HUE))}
    engine |= {(1 - float(x), 1 + float(x)) for x in (tower_augment._BRIGHTNESS, tower_augment._CONTRAST, tower_augment._SATURATION)}
    close = {(e, r) for e in engine for r in recipe if np.allclose(e, r)}
    assert not close, close


def test_freshness_phrases_are_not_the_generator_list() -> None:
    from modules.data.catalog import vocab
    from modules.search.query import FRESH_PHRASES

    engine = set(FRESH_PHRASES)
    assert engine != set(vocab.COLD_PREFIXES)
    assert len(engine & set(vocab.COLD_PREFIXES)) / len(engine) <= MAX_GENERATOR_SHARE
