"""Issue 17 API fuzzing: hypothesis generates requests from the app's own OpenAPI schema (typed values,
wrong types, Infinity/NaN, lone surrogates, unknown keys, odd paths) and sends them in-process.
No endpoint may answer 5xx. Bounded: a fixed number of examples per operation, no shrinking database."""
from __future__ import annotations

import io
import json
import urllib.parse

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from serving_fixtures import build_serving_dir, png_bytes, tiny_loader

from serving.app import create_app

TOKEN = "fuzz-token"
EXAMPLES = 50
TEXT = st.text(st.characters(exclude_categories=()), max_size=40)      # surrogates included
JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)


def mostly(typed: st.SearchStrategy, odd: st.SearchStrategy = JUNK) -> st.SearchStrategy:
    """`typed` 19 times in 20, else `odd`: deep bodies are then often valid enough to reach the engine."""
    return st.integers(0, 19).flatmap(lambda i: typed if i < 19 else odd)


STRING = mostly(st.text(max_size=40) | st.text("abcdefghij ", min_size=1, max_size=30), TEXT)


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="PNG")
    return buf.getvalue()


IMAGES = st.sampled_from([png_bytes(), _tiny_png(), b"", b"GIF89a"]) | st.binary(max_size=300)


def from_schema(schema: dict, components: dict, depth: int = 0) -> st.SearchStrategy:
    """A strategy for values of a JSON schema, mixed with values of the wrong type."""
    if "$ref" in schema:
        return from_schema(components[schema["$ref"].rsplit("/", 1)[-1]], components, depth)
    alts = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if alts:
        return st.one_of([from_schema(a, components, depth) for a in alts])
    kind = schema.get("type")
    if "enum" in schema:
        typed = st.sampled_from(schema["enum"])
    elif kind == "object" and depth < 3:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        typed = st.fixed_dictionaries(
            {k: from_schema(v, components, depth + 1) for k, v in props.items() if k in required},
            optional={k: from_schema(v, components, depth + 1) for k, v in props.items() if k not in required})
        if isinstance(schema.get("additionalProperties"), dict):
            typed = typed | st.dictionaries(STRING, from_schema(schema["additionalProperties"], components, depth + 1),
                                            max_size=60)
    elif kind == "array" and depth < 3:
        typed = st.lists(from_schema(schema.get("items", {}), components, depth + 1),
                         min_size=min(2, schema.get("minItems", 0)), max_size=2)
    elif kind == "string":
        typed = IMAGES if schema.get("format") == "binary" else STRING | st.text("0123456789. ", max_size=400)
        if "pattern" in schema:
            typed = mostly(st.from_regex(schema["pattern"], fullmatch=True), typed)
    elif kind == "integer":
        typed = st.integers(-(2**70), 2**70) | st.integers(0, 120)
    elif kind == "number":
        typed = st.floats() | st.integers()
    elif kind == "boolean":
        typed = st.booleans()
    else:
        typed = JUNK
    return mostly(typed) if schema.get("format") != "binary" else typed


def _operations(app) -> list[tuple[str, str, dict]]:
    spec = app.openapi()
    return [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    sd = build_serving_dir(tmp_path_factory.mktemp("fuzz"))
    mp = pytest.MonkeyPatch()
    mp.setenv("PIXELMATCH_ADMIN_TOKEN", TOKEN)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0), raise_server_exceptions=False) as c:
        yield c
    mp.undo()


def _request_strategy(path: str, op: dict, components: dict) -> st.SearchStrategy:
    params = op.get("parameters", [])
    path_vals = {p["name"]: st.sampled_from(["i0001", "..", "%2e%2e", "a" * 200]) | TEXT.filter(bool)
                 for p in params if p["in"] == "path"}
    query_vals = {p["name"]: from_schema(p.get("schema", {}), components) for p in params if p["in"] == "query"}
    content = op.get("requestBody", {}).get("content", {})
    body: st.SearchStrategy = st.none()
    if "application/json" in content:
        body = st.tuples(st.just("json"), from_schema(content["application/json"]["schema"], components))
    elif "multipart/form-data" in content:
        body = st.tuples(st.just("form"), from_schema(content["multipart/form-data"]["schema"], components))
    return st.fixed_dictionaries({"path": st.fixed_dictionaries(path_vals), "query": st.fixed_dictionaries(
        {}, optional=query_vals), "body": body, "auth": mostly(st.just(True), st.just(False))})


def _send(client: TestClient, method: str, path: str, req: dict):
    url = path
    for name, value in req["path"].items():
        url = url.replace("{" + name + "}", urllib.parse.quote(value, safe="", errors="surrogatepass"))
    query = urllib.parse.urlencode({k: json.dumps(v) if not isinstance(v, str) else v
                                    for k, v in req["query"].items()}, errors="surrogatepass")
    headers = {"Authorization": f"Bearer {TOKEN}"} if req["auth"] else {}
    kwargs: dict = {}
    if req["body"] is not None:
        kind, value = req["body"]
        if kind == "json":
            kwargs["content"] = json.dumps(value).encode()           # Infinity/NaN/\ud800 escapes as Python writes them
            headers["content-type"] = "application/json"
        elif isinstance(value, dict):
            files = {k: ("x.png", v, "image/png") for k, v in value.items() if isinstance(v, bytes)}
            data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in value.items() if not isinstance(v, bytes)}
            data = {k: v.encode("utf-8", "surrogatepass") for k, v in data.items()}
            kwargs.update(files=files or None, data=data)
        else:
            kwargs["content"] = json.dumps(value).encode()
    return client.request(method.upper(), f"{url}?{query}" if query else url, headers=headers, **kwargs)


def _fuzz(client: TestClient, path: str, method: str, op: dict, components: dict, failures: list[str]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(req=_request_strategy(path, op, components))
    def run(req):
        r = _send(client, method, path, req)
        if r.status_code >= 500:
            failures.append(f"{method.upper()} {path} -> {r.status_code} {r.text[:200]} for {req!r:.300}")
            raise AssertionError(failures[-1])
    try:
        run()
    except AssertionError:
        pass                                   # recorded (hypothesis re-raises the shrunk failure)


def test_no_operation_answers_5xx(client):
    components = client.app.openapi().get("components", {}).get("schemas", {})
    operations = _operations(client.app)
    assert len(operations) >= 12
    failures: list[str] = []
    for path, method, op in operations:
        _fuzz(client, path, method, op, components, failures)
    assert not failures, "\n".join(failures[:10])
