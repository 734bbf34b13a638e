"""OpenAI text encoder through the real `openai` client against a local compatible server."""

import hashlib
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import openai
import pytest

from mediafm_core.encoders.text import OPENAI_TOKEN_LIMIT, OpenAITextEncoder, TextEncoderConfig

KEY = "sk-test-secret-key-123"


def fake_embedding(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).tolist()


class FakeOpenAI(BaseHTTPRequestHandler):
    """POST /v1/embeddings; `plan` holds status codes to answer before succeeding."""

    requests: list = []
    plan: list = []
    width_override: int | None = None

    def log_message(self, *args):  # keep test output quiet
        pass

    def _reply(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        if status >= 400:  # as OpenAI does: when to come back (the client honours it)
            self.send_header("retry-after-ms", "20")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        cls.requests.append({"path": self.path, "auth": self.headers["Authorization"], **body})
        if cls.plan:
            status = cls.plan.pop(0)
            return self._reply(status, {"error": {"message": f"fake {status}", "type": "x"}})
        dim = cls.width_override or body["dimensions"]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(t, dim)}
            for i, t in enumerate(body["input"])
        ]
        data.reverse()  # the client must restore order by index
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        self._reply(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})


@pytest.fixture
def server(monkeypatch):
    FakeOpenAI.requests, FakeOpenAI.plan, FakeOpenAI.width_override = [], [], None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def encoder(base_url, **kw):
    cfg = dict(kind="openai", base_url=base_url, batch_size=2, max_retries=3)
    return OpenAITextEncoder(TextEncoderConfig(**{**cfg, **kw}))


def test_batches_order_dimensions_and_model(server):
    texts = ["alpha", "", "beta", "gamma", "alpha", "delta", "  "]
    out = encoder(server).encode(texts)
    assert out.shape == (7, 768) and out.dtype == np.float32
    sent = [t for r in FakeOpenAI.requests for t in r["input"]]
    assert sent == ["alpha", "beta", "gamma", "delta"]  # empty and repeated strings not sent
    assert [len(r["input"]) for r in FakeOpenAI.requests] == [2, 2]
    for r in FakeOpenAI.requests:
        assert r["path"] == "/v1/embeddings"
        assert r["model"] == "text-embedding-3-large" and r["dimensions"] == 768
        assert r["auth"] == f"Bearer {KEY}"
    np.testing.assert_allclose(out[2], fake_embedding("beta", 768), atol=1e-6)
    np.testing.assert_allclose(out[5], fake_embedding("delta", 768), atol=1e-6)
    np.testing.assert_array_equal(out[4], out[0])
    assert np.all(out[[1, 6]] == 0)


def test_retries_on_429_and_500_then_succeeds(server, caplog):
    """The openai client's own retries (issue 18: no hand-written loop beside it), after the
    server's Retry-After."""
    FakeOpenAI.plan = [429, 500]
    with caplog.at_level(logging.INFO, logger="openai"):
        out = encoder(server).encode(["one"])
    assert len(FakeOpenAI.requests) == 3
    np.testing.assert_allclose(out[0], fake_embedding("one", 768), atol=1e-6)
    assert "Retrying request in 0.020000 seconds (retry 1 of 3)" in caplog.text
    assert "(retry 2 of 3)" in caplog.text and "(retry 3 of 3)" not in caplog.text
    assert KEY not in caplog.text


def test_gives_up_after_max_retries(server):
    FakeOpenAI.plan = [503] * 10
    with pytest.raises(openai.InternalServerError):
        encoder(server, max_retries=2).encode(["one"])
    assert len(FakeOpenAI.requests) == 3


def test_client_errors_are_not_retried(server):
    FakeOpenAI.plan = [400]
    with pytest.raises(openai.BadRequestError):
        encoder(server).encode(["one"])
    assert len(FakeOpenAI.requests) == 1


def test_wrong_width_from_server_is_an_error(server):
    FakeOpenAI.width_override = 512
    with pytest.raises(ValueError, match="width 512, expected 256"):
        encoder(server, dimensions=256).encode(["one"])


def test_long_input_is_embedded_in_windows_not_cut(server):
    """Issue 19, case 6: every part of a string longer than the model's window is sent, in
    windows within the limit, and the string's vector pools them."""
    long = "word " * 10_000 + "é" * 10
    out = encoder(server).encode([long, "short"])
    sent = [t for r in FakeOpenAI.requests for t in r["input"]]
    assert "".join(sent[:-1]) == long and sent[-1] == "short"
    try:
        import tiktoken

        enc = tiktoken.get_encoding("cl100k_base")
        assert all(len(enc.encode(t)) <= OPENAI_TOKEN_LIMIT for t in sent)
    except ImportError:  # without tiktoken the windows are cut by UTF-8 bytes (>= 1 byte a token)
        assert all(len(t.encode()) <= OPENAI_TOKEN_LIMIT for t in sent)
    windows = np.array([fake_embedding(t, 768) for t in sent[:-1]])
    weights = np.array([len(t.encode()) for t in sent[:-1]], np.float64)
    pooled = (windows * weights[:, None]).sum(0)
    np.testing.assert_allclose(out[0], pooled / np.linalg.norm(pooled), atol=1e-5)
    np.testing.assert_allclose(out[1], fake_embedding("short", 768), atol=1e-6)


def test_base_url_from_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server)
    enc = OpenAITextEncoder(TextEncoderConfig(kind="openai", dimensions=64))
    assert enc.encode(["x"]).shape == (1, 64)
    assert enc.info.dim == 64 and KEY not in json.dumps(enc.info.to_dict())


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAITextEncoder(TextEncoderConfig(kind="openai"))


def test_the_dagster_resource_builds_a_client_that_retries(server):
    """TextEncoderResource (the `openai` deployment) passes the config's retries to the client."""
    from mediafm_assets.resources import TextEncoderResource

    FakeOpenAI.plan = [503, 503]
    res = TextEncoderResource(
        kind="openai", model="text-embedding-3-large", dimensions=32, base_url=server, api_key=KEY
    )
    enc = res.build()
    assert enc.client.max_retries == 5
    assert enc.encode(["x"]).shape == (1, 32) and len(FakeOpenAI.requests) == 3
