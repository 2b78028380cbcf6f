"""The OpenAI-compatible VLM client against a local HTTP server started by the test (offline)."""

from __future__ import annotations

import base64
import io
import json
import threading

import pytest
from local_http import LocalServer, read_body, send_bytes, send_json
from PIL import Image
from shared_data import tiny_panel_coco

from ai4va_fg_dataset.core.llm import GeminiClient, OpenAIClient, VLMClient, image_to_data_url, make_client


class FakeChatServer(LocalServer):
    """A minimal OpenAI chat-completions endpoint on 127.0.0.1; replies come from ``reply(body)``
    (``(status, JSON payload or raw bytes)``) and every request body and its headers are recorded.
    It serves inside ``with``."""

    def __init__(self, reply):
        self.reply = reply
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        super().__init__(start=False)

    def handle(self, req):
        body = json.loads(read_body(req))
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in req.headers.items()})
        status, content = self.reply(body)
        if isinstance(content, bytes):
            send_bytes(req, status, content)
        else:
            send_json(req, status, content)


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


class SilentServer(LocalServer):
    """An endpoint on 127.0.0.1 that reads each request and never answers (a hung VLM server) until it
    is closed (or 60 s pass). It serves inside ``with``."""

    def __init__(self):
        self.requests = 0
        self.release = threading.Event()
        super().__init__(start=False)

    def handle(self, req):
        read_body(req)
        self.requests += 1
        self.release.wait(60)

    def close(self):
        self.release.set()
        super().close()


def test_timeout_and_retries_bound_a_server_that_never_answers():
    import time

    import openai

    with SilentServer() as srv:
        client = OpenAIClient("m", base_url=srv.base_url, timeout=0.5, max_retries=1)
        t = time.perf_counter()
        with pytest.raises(openai.APITimeoutError):
            client.generate("x", [])
        took = time.perf_counter() - t
    assert srv.requests == 2 and took < 10  # two attempts of 0.5 s (+ back-off), not 4 x 60 s
    for bad in ({"timeout": 0}, {"timeout": float("inf")}, {"max_retries": -1}, {"max_retries": 1.5}):
        with pytest.raises(ValueError, match="timeout must be|max_retries must be"):
            OpenAIClient("m", base_url="http://127.0.0.1:9/v1", **bad)


def test_gemini_client_takes_timeout_and_retries(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    client = make_client("gemini", timeout=2.5, max_retries=2)
    assert client.http_options.timeout == 2500  # google-genai counts milliseconds
    assert client.http_options.retry_options.attempts == 3  # the first try + 2 retries
    assert make_client("gemini").http_options.timeout == 60_000


def test_cli_pu_timeout_and_retries_bound_the_build(tmp_path, monkeypatch, capsys):
    """`--pu-timeout 0.5 --pu-retries 0` against a VLM that never answers: the build ends in seconds
    (it cost about 245 s per panel with no option to shorten it), each panel skipped and counted."""
    import time

    from ai4va_fg_dataset.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    ann = tiny_panel_coco(tmp_path, pages=2)
    out = tmp_path / "out"
    with SilentServer() as srv:
        t = time.perf_counter()
        code = main(["build", "--source", "coco", "--path", str(ann), "--out", str(out), "--no-contact-sheet",
                     "--tasks", "panel_understanding,panel_reordering", "--pu-provider", "openai", "--pu-model", "m",
                     "--pu-base-url", srv.base_url, "--pu-timeout", "0.5", "--pu-retries", "0"])
        took = time.perf_counter() - t
    assert code == 0 and took < 60 and srv.requests == 6  # 6 panels, one attempt each
    report = json.loads((out / "build_report.json").read_text())
    assert report["skipped"]["panel_understanding"]["panel: VLM call failed (APITimeoutError)"] == 6
    for argv, message in [(["--pu-provider", "openai", "--pu-timeout", "0"], "must be a positive number of seconds"),
                          (["--pu-provider", "openai", "--pu-retries", "-1"], "must be >= 0"),
                          (["--pu-timeout", "5"], None)]:
        full = ["build", "--source", "coco", "--path", str(ann), "--out", str(tmp_path / "o2"), *argv]
        if message:
            with pytest.raises(SystemExit):
                main(full)
            assert message in capsys.readouterr().err
        else:
            assert main(full) == 2
            assert "need --pu-provider" in capsys.readouterr().err
