"""The OpenAI-compatible VLM client against a local HTTP server started by the test (offline)."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from ai4va_fg_dataset.vlm_client import GeminiClient, OpenAIClient, VLMClient, image_to_data_url, make_client


class FakeChatServer:
    """A minimal OpenAI chat-completions endpoint on 127.0.0.1; replies come from ``reply(body)``
    and every request body is recorded."""

    def __init__(self, reply):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, content = reply(body)
                payload = json.dumps(content).encode() if not isinstance(content, bytes) else content
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def completion(text: str) -> dict:
    return {
        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def test_openai_client_sends_prompt_and_base64_images():
    with FakeChatServer(lambda body: (200, completion("Caption: a cat"))) as srv:
        client = OpenAIClient("fake-vlm", base_url=srv.base_url, api_key="sk-test-secret", max_retries=0)
        img = Image.new("RGB", (8, 6), (10, 200, 30))
        assert client.generate("describe", [img]) == "Caption: a cat"
    body = srv.requests[0]
    assert body["model"] == "fake-vlm" and body["temperature"] == 0.0
    (msg,) = body["messages"]
    assert msg["role"] == "user"
    text, image = msg["content"]
    assert text == {"type": "text", "text": "describe"}
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (8, 6) and decoded.convert("RGB").getpixel((0, 0)) == (10, 200, 30)
    assert srv.headers[0]["authorization"] == "Bearer sk-test-secret"
    assert "sk-test-secret" not in repr(client)


def test_openai_client_retries_then_raises_on_server_error():
    calls = []

    def reply(body):
        calls.append(1)
        return 500, {"error": {"message": "boom"}}

    import openai

    with FakeChatServer(reply) as srv:
        client = OpenAIClient("m", base_url=srv.base_url, api_key="k", max_retries=1, timeout=5)
        with pytest.raises(openai.InternalServerError):
            client.generate("x", [])
    assert len(calls) == 2  # first try + 1 retry


def test_missing_keys_are_clear_errors_without_secrets(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIClient("gpt-4o")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="GEMINI_API_KEY"):
        GeminiClient()
    # a local server needs no key
    assert isinstance(OpenAIClient("m", base_url="http://127.0.0.1:9/v1"), VLMClient)


def test_make_client(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    gem = make_client("gemini")
    assert isinstance(gem, GeminiClient) and gem.model == "gemini-2.5-flash" and "g-secret" not in repr(gem)
    oa = make_client("openai", "qwen", base_url="http://127.0.0.1:9/v1")
    assert isinstance(oa, OpenAIClient) and oa.model == "qwen"
    with pytest.raises(ValueError, match="'claude'"):
        make_client("claude", "x")
    with pytest.raises(ValueError, match="base_url"):
        make_client("gemini", base_url="http://x")


def test_image_to_data_url_roundtrip():
    img = Image.new("L", (3, 2), 77)
    url = image_to_data_url(img)
    back = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert back.mode == "RGB" and back.getpixel((2, 1)) == (77, 77, 77)
