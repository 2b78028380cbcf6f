"""The Panel Understanding judge against a hostile transport, cache and configuration.

Issue "Nothing lost, nothing stale, nothing raised", part 5: only a well-formed verdict counts; a
200 reply whose body is not the API's JSON is a retried failure, not an exception; ``{"incorrect":
true}`` is not "correct"; corrupt cache files are ignored and rewritten; NaN / infinite settings are
refused up front; an API key echoed by the server is never written. A scripted local
OpenAI-compatible server serves raw bodies.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
from local_http import LocalServer, read_body, send_bytes

from ai4va_fg_dataset.core import llm as J
from ai4va_fg_dataset.core.llm import Judge, JudgeError, JudgeSettings, parse_verdict

SECRET = "sk-hostile-secret-0123456789abcdef"


def _completion(content) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]}).encode()


class RawServer(LocalServer):
    """``/v1/chat/completions`` answering each request with the next ``(content_type, body bytes)``
    of ``script`` (HTTP 200), then ``default``."""

    def __init__(self):
        self.script: list[tuple[str, bytes]] = []
        self.default = ("application/json", _completion('{"correct": true}'))
        self.count = 0
        super().__init__(poll_interval=0.02)

    def handle(self, req):
        read_body(req)
        self.count += 1
        ctype, body = self.script.pop(0) if self.script else self.default
        send_bytes(req, 200, body, ctype)


@pytest.fixture
def server():
    with RawServer() as s:
        yield s


def _judge(server, tmp_path, max_retries=2):
    cfg = JudgeSettings(provider="openai", model="judge-model", base_url=server.base_url, api_key=SECRET,
                      cache_dir=str(tmp_path / "cache"), max_retries=max_retries, backoff=0.0, timeout=5.0)
    return Judge(cfg, sleep=lambda s: None)


def _cache_files(tmp_path):
    return sorted((tmp_path / "cache").rglob("*.json")) if (tmp_path / "cache").exists() else []


# ------------------------------------------------------------------------------ transport


def test_unparseable_200_json_body_is_a_retried_failure_not_an_exception(server, tmp_path):
    judge = _judge(server, tmp_path)
    bad = [("application/json", b"{not json"), ("application/json", b"[]"), ("application/json", b'"text"'),
           ("application/json", b'{"choices": 5}'), ("application/json", _completion(["not", "text"]))]
    server.script = bad[:2] + [("application/json", _completion('{"correct": false}'))]
    v = judge.judge("q", "ref", "pred")
    assert v.correct is False and v.attempts == 3 and server.count == 3
    server.default = bad[0]
    v = judge.judge("q2", "ref", "pred")
    assert v.correct is None and "unreadable response" in v.error and v.attempts == 3
    for body in bad[1:]:
        server.default = body
        v = judge.judge("q3", "ref", "pred")
        assert v.correct is None and v.error
    assert len(_cache_files(tmp_path)) == 1  # only the one real verdict


@pytest.mark.parametrize("reply", [
    '{"incorrect": true}', "not correct: true", '"correct": true', 'Sure! {"correct": true}',
    '{"correct": true} {"correct": false}', '{"correct": "true"}', '{"correct": 1}', '{"Correct": true}',
    '{"correct": true, "correct": false}', '{"correct": true, "confidence": 0.2}', '{"correct": true, "reason": 5}',
    '```json\n{"correct": true}\n``` but actually no', "[true]", "", "yes", '{"correct": null}',
    '{"correct": ' + "[" * 5000 + "]" * 5000 + "}", '{"correct": true, "reason": "' + "x" * 5000 + '"}',
])
def test_only_well_formed_verdicts_count(server, tmp_path, reply):
    with pytest.raises(JudgeError) as info:
        parse_verdict(reply)
    assert info.value.retryable
    judge = _judge(server, tmp_path, max_retries=1)
    server.default = ("application/json", _completion(reply))
    v = judge.judge("q", "ref", "pred")
    assert v.correct is None and "not a well-formed verdict" in v.error and server.count == 2
    assert _cache_files(tmp_path) == []  # never cached as a verdict


@pytest.mark.parametrize("reply, expected", [
    ('{"correct": true}', True), ('  {"correct":false}\n', False), ('```json\n{"correct": true}\n```', True),
    ('```\n{"correct": false}\n```', False), ('```{"correct": true}```', True),
    ('{"correct": false, "reason": "the colour differs"}', False), ('{"explanation": "same", "correct": true}', True),
])
def test_accepted_verdict_formats(reply, expected):
    assert parse_verdict(reply) is expected


# ---------------------------------------------------------------------------------- cache


@pytest.mark.parametrize("content", [
    b"[1, 2]", b"\xff\xfe\x00garbage", b"", b"{", b'{"correct": "yes"}', b"[" * 100_000,
    json.dumps({"correct": True, "judge": "openai:judge-model", "prompt_version": 1,
                "reply": '{"incorrect": true}'}).encode(),  # written under the old, lax parser: stale
    json.dumps({"correct": False, "judge": "openai:judge-model", "prompt_version": 1,
                "reply": '{"correct": true}'}).encode(),  # verdict and stored reply disagree
    json.dumps({"correct": True, "judge": "openai:other", "prompt_version": 1,
                "reply": '{"correct": true}'}).encode(),  # another judge's entry
])
def test_corrupt_cache_entries_are_ignored_and_rewritten(server, tmp_path, content, caplog):
    judge = _judge(server, tmp_path)
    path = judge._cache_path(judge.cache_key("q", "ref", "pred"))
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    server.default = ("application/json", _completion('{"correct": false}'))
    with caplog.at_level(logging.WARNING, logger="ai4va_fg_dataset.core.llm"):
        v = judge.judge("q", "ref", "pred")
    assert v.correct is False and not v.cached and server.count == 1
    assert "not a valid entry" in caplog.text and judge.corrupt_cache_entries == 1
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["correct"] is False and record["reply"] == '{"correct": false}'
    again = _judge(server, tmp_path)
    assert again.judge("q", "ref", "pred").cached and server.count == 1


def test_unwritable_cache_keeps_the_verdict(server, tmp_path):
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    judge = _judge(server, tmp_path)
    v = judge.judge("q", "ref", "pred")
    assert v.correct is True and v.error is None


def test_non_text_inputs_do_not_raise(server, tmp_path):
    judge = _judge(server, tmp_path)
    assert judge.judge(None, 3, 5).correct is True
    assert judge.judge("q", "ref", None).correct is False


# ------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("field, value", [
    ("backoff", math.nan), ("backoff", math.inf), ("backoff", -1.0), ("timeout", math.nan), ("timeout", math.inf),
    ("timeout", -5.0), ("timeout", 0.0), ("max_backoff", math.nan), ("max_retries", 1.5), ("max_retries", -1),
    ("max_retries", 10**6), ("max_retries", True), ("backoff", "1"),
])
def test_settings_are_validated_up_front(field, value):
    with pytest.raises(ValueError, match=rf"\b{field}=") as info:
        JudgeSettings(**{field: value})
    others = {"backoff", "timeout", "max_retries", "max_backoff"} - {field}
    assert f"judge setting {field}=" in str(info.value)
    assert not any(f"setting {o}=" in str(info.value) for o in others)  # names the bad setting only


@pytest.mark.parametrize("var, raw", [
    ("AI4VA_FG_JUDGE_BACKOFF", "nan"), ("AI4VA_FG_JUDGE_BACKOFF", "inf"), ("AI4VA_FG_JUDGE_TIMEOUT", "NaN"),
    ("AI4VA_FG_JUDGE_TIMEOUT", "-inf"), ("AI4VA_FG_JUDGE_TIMEOUT", "0"), ("AI4VA_FG_JUDGE_MAX_RETRIES", "-2"),
    ("AI4VA_FG_JUDGE_MAX_RETRIES", "99999"),
])
def test_env_settings_are_validated_naming_the_variable(var, raw):
    with pytest.raises(ValueError, match=var):
        JudgeSettings.from_env({var: raw})


# -------------------------------------------------------------------------------- secrets


def test_echoed_api_key_is_never_written(server, tmp_path, caplog):
    judge = _judge(server, tmp_path, max_retries=1)
    server.script = [("application/json", _completion(f'{{"correct": true, "reason": "key {SECRET}"}}'))]
    with caplog.at_level(logging.DEBUG, logger="ai4va_fg_dataset.core.llm"):
        assert judge.judge("q", "ref", "pred").correct is True
        server.default = ("application/json", _completion(f"Authorization: Bearer {SECRET} -- no verdict"))
        v = judge.judge("q2", "ref", "pred")
    assert v.correct is None and SECRET not in v.error and J.REDACTED in v.error
    files = _cache_files(tmp_path)
    assert len(files) == 1 and SECRET not in files[0].read_text() and J.REDACTED in files[0].read_text()
    assert SECRET not in caplog.text
    # the scrubbed entry is still a valid one: the next run reads it without a request
    count = server.count
    assert _judge(server, tmp_path).judge("q", "ref", "pred").cached and server.count == count
