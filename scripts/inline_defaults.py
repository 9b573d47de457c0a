"""List inline numeric defaults (``x.get("key", 3)``, ``*_DEFAULTS = {"key": 3}``) in production code next to the
value params.yaml gives the same key, so a default that disagrees with params.yaml can be found; and keyword-argument
defaults of function signatures (``def f(max_seq_length=256)``) whose parameter is named after a params.yaml key.

    python scripts/inline_defaults.py [--all] [--keywords] [DIR|FILE ...]
                                                    (default DIRs: modules components serving pipelines)

A key is matched by its section chain when the call chains ``.get("section", {})``; otherwise by its name alone,
against every place the name stands in params.yaml. Rows: ``file:line  key  inline  params.yaml  verdict`` where the
verdict is ``DIFFERS``, ``same``, ``absent`` (not in params.yaml) or ``ambiguous`` (several values there). Without
--all only DIFFERS and ambiguous rows are printed.

Keyword defaults (``--keywords``, :func:`keyword_rows`): a parameter whose name is a leaf key of params.yaml (``seed``,
``max_seq_length``, ``batch_size`` ...) or a name in :data:`KEY_ALIASES` (``max_pixels`` for ``max_image_pixels``),
with a literal default (a number, string, bool, or a tuple/list of them, or a module-level name bound to one, such as
``DEFAULT_SEED``). ``None`` is not a value: it means "not given, read params.yaml". A key that stands in several
sections is matched by name alone (verdict ``ambiguous`` when the sections disagree). Every such row is printed with
``--keywords``; tests/test_params_defaults.py refuses them all, except where its exemptions say why.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIRS = ("modules", "components", "serving", "pipelines")
# a parameter name that stands for a params.yaml key of another name
KEY_ALIASES = {"max_pixels": "max_image_pixels"}


def _flatten(node: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out.update(_flatten(v, (*prefix, str(k))))
    else:
        out[prefix] = node
    return out


def _number(node: ast.AST) -> float | int | bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return -inner if inner is not None else None
    return None


def _container(node: ast.AST, aliases: dict[str, list[str]]) -> list[str] | None:
    """Section chain of an expression that names a params sub-dict: ``params["a"]["b"]``, ``p.get("a", {})``,
    ``(p.get("a") or {})``, ``dict(...)`` of one, or a local alias of one; None when it is none of these."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return _container(node.values[0], aliases)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and node.args:
        return _container(node.args[0], aliases)
    if isinstance(node, ast.Name):
        return aliases.get(node.id, [])
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        base = _container(node.value, aliases)
        return None if base is None else [*base, node.slice.value]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        base = _container(node.func.value, aliases)
        return None if base is None else [*base, node.args[0].value]
    return None


def _scopes(tree: ast.AST) -> list[ast.AST]:
    return [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _found(path: Path) -> list[tuple[int, list[str], str, Any]]:
    """(line, section chain, key, inline default) of every numeric default in one file."""
    rows: dict[int, tuple[int, list[str], str, Any]] = {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for scope in _scopes(tree):
        aliases: dict[str, list[str]] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                chain = _container(node.value, aliases)
                if chain:
                    aliases[node.targets[0].id] = chain
        for node in ast.walk(scope):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                value = _number(node.args[1])
                if value is not None:
                    chain = _container(node.func.value, aliases) or []
                    best = rows.get(id(node))
                    if best is None or len(chain) > len(best[1]):
                        rows[id(node)] = (node.lineno, chain, node.args[0].value, value)
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and scope is tree:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if any(n.endswith("DEFAULTS") for n in names) and isinstance(node.value, ast.Dict):
                    for k, v in zip(node.value.keys, node.value.values, strict=True):
                        value = _number(v)
                        if isinstance(k, ast.Constant) and isinstance(k.value, str) and value is not None:
                            rows[id(k)] = (k.lineno, [], k.value, value)
    return sorted(rows.values(), key=lambda r: r[0])


def _lookup(flat: dict[tuple[str, ...], Any], chain: list[str], key: str) -> list[tuple[str, Any]]:
    """params.yaml places matching ``chain + [key]`` (a suffix match of the path), with their values."""
    want = (*chain, key)
    hits = [(".".join(p), v) for p, v in flat.items() if p[-len(want):] == want]
    if not hits and chain:   # the chain may name a local alias rather than a section: fall back to the key alone
        hits = [(".".join(p), v) for p, v in flat.items() if p[-1] == key]
    return hits


def _python_files(dirs: tuple[str, ...]) -> list[Path]:
    """The .py files under each of ``dirs`` (a file named directly is taken as is), caches left out."""
    out: list[Path] = []
    for d in dirs:
        base = REPO / d
        out += [p for p in ([base] if base.is_file() else sorted(base.rglob("*.py"))) if "__pycache__" not in p.parts]
    return out


def rows(dirs: tuple[str, ...] = DEFAULT_DIRS) -> list[dict[str, Any]]:
    flat = _flatten(yaml.safe_load((REPO / "params.yaml").read_text()))
    out = []
    for path in _python_files(dirs):
        for line, chain, key, value in _found(path):
            hits = _lookup(flat, chain, key)
            values = {repr(v) for _, v in hits}
            if not hits:
                verdict = "absent"
            elif len(values) > 1:
                verdict = "ambiguous"
            else:
                verdict = "same" if float(hits[0][1]) == float(value) else "DIFFERS" if isinstance(
                    hits[0][1], (int, float)) else "ambiguous"
            out.append({"where": f"{path.relative_to(REPO)}:{line}", "key": ".".join((*chain, key)),
                        "inline": value, "params": ", ".join(f"{p}={v}" for p, v in hits), "verdict": verdict})
    return out


_NO_LITERAL = object()


def _literal(node: ast.AST | None, constants: dict[str, Any]) -> Any:
    """The value of a literal default (number, string, bool, a tuple/list of them, or a module-level name bound to
    one), else ``_NO_LITERAL`` (``None``, a call such as FastAPI's ``Form(...)``, an expression)."""
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return _NO_LITERAL
    if isinstance(node, ast.Name):
        return constants.get(node.id, _NO_LITERAL)
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [_literal(e, constants) for e in node.elts]
        return _NO_LITERAL if any(v is _NO_LITERAL for v in values) else tuple(values)
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return _NO_LITERAL
    return value if isinstance(value, (int, float, str, bool, bytes)) else _NO_LITERAL


def keyword_defaults_in_source(source: str) -> list[tuple[int, str, str, Any]]:
    """(line, function, parameter, literal default) of every parameter with a literal default in ``source``."""
    tree = ast.parse(source)
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = _literal(node.value, constants)
            for t in targets:
                if isinstance(t, ast.Name) and value is not _NO_LITERAL:
                    constants[t.id] = value
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            positional = a.posonlyargs + a.args
            pairs = [*zip(positional[len(positional) - len(a.defaults):], a.defaults, strict=True),
                     *zip(a.kwonlyargs, a.kw_defaults, strict=True)]
            for arg, default in pairs:
                value = _literal(default, constants)
                if value is not _NO_LITERAL:
                    out.append((node.lineno, getattr(node, "name", "<lambda>"), arg.arg, value))
    return sorted(out, key=lambda row: row[0])   # source order within a line


def keyword_rows(dirs: tuple[str, ...] = DEFAULT_DIRS) -> list[dict[str, Any]]:
    """Keyword-argument defaults named after a params.yaml key (see the module docstring), one row each."""
    flat = _flatten(yaml.safe_load((REPO / "params.yaml").read_text()))
    out = []
    for path in _python_files(dirs):
        for line, function, name, value in keyword_defaults_in_source(path.read_text(encoding="utf-8")):
            key = KEY_ALIASES.get(name, name)
            hits = [(".".join(p), v) for p, v in flat.items() if p[-1] == key]
            if not hits:
                continue
            same = [v for _, v in hits if v == value or (isinstance(v, list) and tuple(v) == value)]
            verdict = "same" if len(same) == len(hits) else "DIFFERS" if not same else "ambiguous"
            out.append({"where": f"{path.relative_to(REPO)}:{line}", "function": function, "key": name,
                        "inline": value, "params": ", ".join(f"{p}={v}" for p, v in hits), "verdict": verdict})
    return out


def main(argv: list[str]) -> int:
    show_all = "--all" in argv
    dirs = tuple(a for a in argv if not a.startswith("--")) or DEFAULT_DIRS
    if "--keywords" in argv:
        for r in keyword_rows(dirs):
            print(f"{r['where']:55s} {r['function']}({r['key']}={r['inline']!r}) | {r['params']} | {r['verdict']}")
        return 0
    for r in rows(dirs):
        if show_all or r["verdict"] in ("DIFFERS", "ambiguous"):
            print(f"{r['where']:55s} {r['key']:40s} {r['inline']!s:>10} | {r['params'] or '-'} | {r['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
