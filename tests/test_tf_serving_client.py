"""TF Serving REST client against the documented predict contract.

1. httpx.MockTransport checks the exact request (URL, signature_name, columnar inputs) and error handling.
2. A fake TF Serving on a loopback port runs the REAL text-embedding graph (`TextEncoder._module.text_embedding`,
   the function exported as signature `text_embedding`), so the remote path is compared with the in-process path.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from serving.tf_serving_client import TFServingClient, TFServingError, TFServingTextEncoder


class _FakeTokenizer:
    """HF-tokenizer-shaped: one id per whitespace token, padded to the longest text."""

    def __call__(self, texts, padding=True, truncation=True, max_length=256, return_tensors="np"):
        ids = [[101] + [1000 + len(w) for w in t.split()][: max_length - 2] + [102] for t in texts]
        width = max(map(len, ids))
        return {"input_ids": np.array([r + [0] * (width - len(r)) for r in ids]),
                "attention_mask": np.array([[1] * len(r) + [0] * (width - len(r)) for r in ids])}


def test_request_matches_documented_contract():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["body"] = json.loads(request.content)
        n = len(seen["body"]["inputs"]["input_ids"])
        return httpx.Response(200, json={"outputs": [[3.0, 4.0, 0.0]] * n})

    client = TFServingClient("http://tfs:8501/", transport=httpx.MockTransport(handler))
    enc = TFServingTextEncoder(client, _FakeTokenizer(), dim=3)
    vec = enc.encode_query("red summer dress")
    assert seen["url"] == "http://tfs:8501/v1/models/text_encoder:predict"
    assert seen["body"]["signature_name"] == "text_embedding"
    assert seen["body"]["inputs"]["input_ids"] == [[101, 1003, 1006, 1005, 102]]
    assert seen["body"]["inputs"]["attention_mask"] == [[1, 1, 1, 1, 1]]
    np.testing.assert_allclose(vec, [0.6, 0.8, 0.0], rtol=1e-6)        # L2-normalised
    assert enc.encode(["a", "b c", "d"], batch_size=2).shape == (3, 3)


@pytest.mark.parametrize("response, message", [
    (httpx.Response(400, json={"error": "Missing input attention_mask"}), "400: Missing input"),
    (httpx.Response(500, text="boom"), "500"),
    (httpx.Response(200, json={"predictions": [[1.0]]}), "no 'outputs'"),
    (httpx.Response(200, json={"outputs": [1.0, 2.0]}), "2-D"),
])
def test_errors_are_reported(response, message):
    client = TFServingClient("http://tfs:8501", transport=httpx.MockTransport(lambda r: response))
    with pytest.raises(TFServingError, match=message):
        client.predict({"input_ids": [[1]], "attention_mask": [[1]]})


def test_dimension_mismatch_and_unreachable():
    client = TFServingClient("http://tfs:8501",
                             transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"outputs": [[1.0, 0.0]]})))
    with pytest.raises(TFServingError, match="2-d embeddings, expected 384"):
        TFServingTextEncoder(client, _FakeTokenizer(), dim=384).encode_query("x")
    dead = TFServingClient("http://127.0.0.1:9", timeout_s=0.5)          # discard port: connection refused
    with pytest.raises(TFServingError, match="unreachable"):
        dead.predict({"input_ids": [[1]], "attention_mask": [[1]]})
    with pytest.raises(ValueError):
        TFServingClient("tfs:8501")


@pytest.fixture(scope="module")
def text_encoder():
    from modules.encoders.text import TextEncoder

    return TextEncoder(max_seq_length=64)


@pytest.fixture(scope="module")
def fake_tf_serving(text_encoder):
    """A loopback server speaking TF Serving's REST predict API, running the real text_embedding graph."""
    import tensorflow as tf

    fn = text_encoder._module.text_embedding

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_POST(self):
            if self.path != "/v1/models/text_encoder:predict":
                self._reply(404, {"error": f"Servable not found for request: {self.path}"})
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("signature_name") != "text_embedding":
                self._reply(400, {"error": "Serving signature name not found"})
                return
            inputs = body["inputs"]
            out = fn(tf.constant(inputs["input_ids"], tf.int32), tf.constant(inputs["attention_mask"], tf.int32))
            self._reply(200, {"outputs": out["embedding"].numpy().tolist()})

        def _reply(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_remote_embeddings_match_in_process(text_encoder, fake_tf_serving):
    remote = TFServingTextEncoder(TFServingClient(fake_tf_serving, timeout_s=30), text_encoder.tokenizer,
                                  dim=text_encoder.dim, max_seq_length=text_encoder.max_seq_length)
    for query in ["red floral summer dress", "leather backpack 👜 für Männer"]:
        local = text_encoder.encode_query(query)
        got = remote.encode_query(query)
        assert got.shape == (text_encoder.dim,)
        assert float(local @ got) > 0.999
    batch = remote.encode(["blue jeans", "black boots"])
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_wrong_model_name_is_an_error(text_encoder, fake_tf_serving):
    client = TFServingClient(fake_tf_serving, model="nope", timeout_s=30)
    with pytest.raises(TFServingError, match="404"):
        TFServingTextEncoder(client, text_encoder.tokenizer, dim=text_encoder.dim).encode_query("x")
