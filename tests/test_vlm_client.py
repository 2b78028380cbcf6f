"""The one LLM client layer (ai4va_fg_dataset.core.llm) against a local HTTP server started by the test
(offline): requests, retries with backoff, timeouts, the disk cache and key scrubbing."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading

import pytest
from local_http import LocalServer, read_body, send_bytes, send_json
from PIL import Image
from shared_data import tiny_panel_coco

from ai4va_fg_dataset.core.llm import (
    GeminiClient,
    LLMError,
    OpenAIClient,
    VLMClient,
    image_to_data_url,
    make_client,
)


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

    sleeps: list[float] = []
    with FakeChatServer(reply) as srv:
        client = OpenAIClient("m", base_url=srv.base_url, api_key="k", max_retries=2, timeout=5, backoff=0.25,
                              sleep=sleeps.append)
        with pytest.raises(LLMError) as info:
            client.generate("x", [])
    assert len(calls) == 3 and sleeps == [0.25, 0.5]  # first try + 2 retries, exponential backoff
    assert info.value.kind == "HTTP 500" and info.value.retryable and info.value.attempts == 3


def test_429_is_retried_and_401_is_not():
    script = [(429, {"error": {"message": "slow down"}}), (200, completion("fine"))]
    with FakeChatServer(lambda body: script.pop(0) if script else (401, {"error": {"message": "bad key"}})) as srv:
        client = OpenAIClient("m", base_url=srv.base_url, api_key="k", max_retries=3, sleep=lambda s: None)
        assert client.generate("x") == "fine" and client.requests == 2
        with pytest.raises(LLMError) as info:
            client.generate("y")
    assert info.value.kind == "HTTP 401" and not info.value.retryable and client.requests == 3


def test_disk_cache_keyed_by_model_prompt_and_settings(tmp_path, caplog):
    """A re-run reads the cache (no request); another prompt, image, temperature or model asks again; a
    corrupt entry is logged, asked again and rewritten; an echoed key is never written."""
    secret = "sk-cache-secret-0123456789abcdef"
    with FakeChatServer(lambda body: (200, completion(f"reply {len(body['messages'][0]['content'])} {secret}"))) as srv:
        def client(**kw):
            return OpenAIClient(kw.pop("model", "m"), base_url=srv.base_url, api_key=secret, cache_dir=tmp_path, **kw)

        img = Image.new("RGB", (4, 4), (1, 2, 3))
        first = client().generate("describe", [img])
        assert "[REDACTED]" not in first and len(srv.requests) == 1  # the caller gets the reply as sent
        assert client().generate("describe", [img]) == first.replace(secret, "[REDACTED]") and len(srv.requests) == 1
        client().generate("describe", [Image.new("RGB", (4, 4), (9, 9, 9))])
        client().generate("other prompt", [img])
        client(temperature=0.7).generate("describe", [img])
        client(model="m2").generate("describe", [img])
        assert len(srv.requests) == 5
        files = sorted(tmp_path.rglob("*.json"))
        assert len(files) == 5 and all(secret not in f.read_text() for f in files)
        for f in files:
            f.write_bytes(b"\xff not json")
        with caplog.at_level(logging.WARNING, logger="ai4va_fg_dataset.core.llm"):
            c = client()
            c.generate("describe", [img])
        assert len(srv.requests) == 6 and c.cache.corrupt == 1 and "not a valid entry" in caplog.text
        rewritten = [f for f in files if f.read_bytes().startswith(b"{")]
        assert len(rewritten) == 1 and json.loads(rewritten[0].read_text())["reply"].startswith("reply ")


def test_errors_and_logs_never_carry_the_key(tmp_path, caplog, monkeypatch):
    secret = "sk-log-secret-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with caplog.at_level(logging.DEBUG), SilentServer() as srv:
        client = OpenAIClient("m", base_url=srv.base_url, timeout=0.3, max_retries=1, sleep=lambda s: None)
        assert secret not in repr(client)
        with pytest.raises(LLMError) as info:
            client.generate(f"prompt with {secret}")
    assert secret not in str(info.value) and secret not in caplog.text


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

    with SilentServer() as srv:
        client = OpenAIClient("m", base_url=srv.base_url, timeout=0.5, max_retries=1)
        t = time.perf_counter()
        with pytest.raises(LLMError) as info:
            client.generate("x", [])
        took = time.perf_counter() - t
    assert info.value.kind == "APITimeoutError" and info.value.attempts == 2
    assert srv.requests == 2 and took < 10  # two attempts of 0.5 s (+ 1 s back-off), not 4 x 60 s
    for bad in ({"timeout": 0}, {"timeout": float("inf")}, {"max_retries": -1}, {"max_retries": 1.5},
                {"backoff": float("nan")}):
        with pytest.raises(ValueError, match="timeout must be|max_retries must be|backoff="):
            OpenAIClient("m", base_url="http://127.0.0.1:9/v1", **bad)


def test_gemini_client_takes_timeout_and_retries(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    client = make_client("gemini", timeout=2.5, max_retries=2)
    assert client.http_options.timeout == 2500  # google-genai counts milliseconds
    assert client.max_retries == 2  # retried by core.llm's loop (backoff, one policy for both providers) ...
    assert client.http_options.retry_options.attempts == 1  # ... so the SDK's own retry is off
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


def test_clients_and_judge_pickle_for_worker_processes(monkeypatch, tmp_path):
    """The builder sends the Panel Understanding client to worker processes: clients and the judge
    pickle (lock and SDK client made again on the other side) and still work."""
    import pickle

    from ai4va_fg_dataset.core.llm import Judge, JudgeSettings

    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    assert pickle.loads(pickle.dumps(make_client("gemini"))).http_options.timeout == 60_000
    with FakeChatServer(lambda body: (200, completion('{"correct": true}'))) as srv:
        client = pickle.loads(pickle.dumps(OpenAIClient("m", base_url=srv.base_url, max_retries=0)))
        assert client.generate("x") == '{"correct": true}'
        judge = Judge(JudgeSettings(base_url=srv.base_url, cache_dir=str(tmp_path)))
        assert pickle.loads(pickle.dumps(judge))("q", "r", "p") is True
