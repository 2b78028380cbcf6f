"""The Panel Understanding LLM judge against a local OpenAI-compatible HTTP server started here:
good verdicts, malformed replies, HTTP 500 then success, timeouts, permanent errors, the on-disk
cache, nothing cached or lost on a failed call, and the API key never logged."""

from __future__ import annotations

import json
import logging
import time

import pytest
from local_http import LocalServer, read_body, send_json

from ai4va_fg_dataset.core.llm import Judge, JudgeError, JudgeSettings, parse_verdict

SECRET = "sk-test-secret-123"


class JudgeServer(LocalServer):
    """A scripted OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``script`` is a list of actions consumed one per request: ``("ok", text)`` (HTTP 200 with that
    message content), ``("status", code)`` or ``("sleep", seconds, text)``; when empty, every request
    gets ``default``.
    """

    def __init__(self, default=("ok", '{"correct": true}')):
        self.script: list[tuple] = []
        self.default = default
        self.requests: list[dict] = []
        super().__init__()

    def handle(self, req):
        body = json.loads(read_body(req))
        self.requests.append({"path": req.path, "body": body, "auth": req.headers.get("Authorization")})
        action = self.script.pop(0) if self.script else self.default
        if action[0] == "status":
            return send_json(req, action[1], {"error": {"message": "scripted failure"}})
        if action[0] == "sleep":
            time.sleep(action[1])
            action = ("ok", action[2])
        send_json(req, 200, {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": action[1]}}],
        })


@pytest.fixture
def server():
    with JudgeServer() as s:
        yield s


def _judge(server, tmp_path, **kw):
    sleeps: list[float] = []
    cfg = JudgeSettings(provider="openai", model="judge-model", base_url=server.base_url, api_key=SECRET,
                      cache_dir=str(tmp_path / "cache"), max_retries=kw.pop("max_retries", 3),
                      backoff=kw.pop("backoff", 0.5), timeout=kw.pop("timeout", 5.0))
    return Judge(cfg, sleep=sleeps.append), sleeps


def _cache_files(tmp_path):
    return sorted((tmp_path / "cache").rglob("*.json")) if (tmp_path / "cache").exists() else []


def test_good_verdicts_are_cached(server, tmp_path):
    judge, sleeps = _judge(server, tmp_path)
    server.script = [("ok", '{"correct": true}'), ("ok", '```json\n{"correct": false}\n```')]
    assert judge.judge("What colour?", "red", "It is red").correct is True
    assert judge.judge("What colour?", "red", "blue").correct is False
    assert len(server.requests) == 2 and sleeps == []
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["body"]["model"] == "judge-model"
    assert "It is red" in req["body"]["messages"][0]["content"] and req["auth"] == f"Bearer {SECRET}"
    files = _cache_files(tmp_path)
    assert len(files) == 2
    assert {json.loads(f.read_text())["correct"] for f in files} == {True, False}
    assert all(SECRET not in f.read_text() for f in files)
    # A fresh judge on the same cache answers without any request.
    again, _ = _judge(server, tmp_path)
    v = again.judge("What colour?", "red", "It is red")
    assert v.correct is True and v.cached and len(server.requests) == 2
    # An empty prediction is wrong without asking.
    assert again.judge("What colour?", "red", "  ").correct is False and len(server.requests) == 2


def test_malformed_then_success(server, tmp_path):
    judge, sleeps = _judge(server, tmp_path)
    server.script = [("ok", "I think it is right"), ("ok", '{"correct": "maybe"}'), ("ok", '{"correct": true}')]
    v = judge.judge("q", "ref", "pred")
    assert v.correct is True and v.attempts == 3 and len(server.requests) == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert len(_cache_files(tmp_path)) == 1


def test_http_500_then_success(server, tmp_path):
    judge, sleeps = _judge(server, tmp_path)
    server.script = [("status", 500), ("status", 503), ("ok", '{"correct": false}')]
    v = judge.judge("q", "ref", "pred")
    assert v.correct is False and v.attempts == 3 and sleeps == [0.5, 1.0]


def test_persistent_failure_is_not_cached_and_retried_next_run(server, tmp_path, caplog):
    judge, _sleeps = _judge(server, tmp_path, max_retries=2)
    server.default = ("status", 500)
    with caplog.at_level(logging.DEBUG, logger="ai4va_fg_dataset.core.llm"):
        v = judge.judge("q", "ref", "pred")
    assert v.correct is None and "HTTP 500" in v.error and v.attempts == 3 and len(server.requests) == 3
    assert _cache_files(tmp_path) == []  # nothing cached for a failed call
    assert SECRET not in caplog.text and SECRET not in repr(judge.config) and SECRET not in v.error
    # The server recovers: the next run judges the same sample (nothing was lost).
    server.default = ("ok", '{"correct": true}')
    assert judge.judge("q", "ref", "pred").correct is True
    assert len(_cache_files(tmp_path)) == 1


def test_permanent_error_is_not_retried(server, tmp_path):
    judge, sleeps = _judge(server, tmp_path)
    server.script = [("status", 401)]
    v = judge.judge("q", "ref", "pred")
    assert v.correct is None and "401" in v.error and len(server.requests) == 1 and sleeps == []


def test_timeout_then_success(server, tmp_path):
    judge, sleeps = _judge(server, tmp_path, timeout=0.3)
    server.script = [("sleep", 1.0, '{"correct": true}'), ("ok", '{"correct": true}')]
    v = judge.judge("q", "ref", "pred")
    assert v.correct is True and v.attempts == 2 and sleeps == [0.5]


def test_config_from_env_and_errors(tmp_path, monkeypatch):
    env = {"AI4VA_FG_JUDGE_PROVIDER": "gemini", "AI4VA_FG_JUDGE_API_KEY": SECRET,
           "AI4VA_FG_JUDGE_MAX_RETRIES": "2", "AI4VA_FG_JUDGE_CACHE": str(tmp_path)}
    cfg = JudgeSettings.from_env(env)
    assert cfg.provider == "gemini" and cfg.model == "gemini-2.5-flash" and cfg.max_retries == 2
    assert SECRET not in repr(cfg) and "api_key=<set>" in repr(cfg)
    with pytest.raises(ValueError, match="AI4VA_FG_JUDGE_TIMEOUT"):
        JudgeSettings.from_env({"AI4VA_FG_JUDGE_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="claude"):
        JudgeSettings(provider="claude")
    # No key and no server: a clear, non-retried failure.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    judge = Judge(JudgeSettings(cache_dir=str(tmp_path)), sleep=lambda s: None)
    v = judge.judge("q", "ref", "pred")
    assert v.correct is None and "AI4VA_FG_JUDGE_API_KEY" in v.error and v.attempts == 1


def test_parse_verdict():
    assert parse_verdict('{"correct": true}') is True
    assert parse_verdict('{"reason": "x", "correct": false}') is False
    # Only the whole reply counts: prose around the object or a bare key is not a verdict.
    for reply in ('Sure! {"reason": "x", "correct": false}', '"correct": TRUE', "yes"):
        with pytest.raises(JudgeError):
            parse_verdict(reply)


def test_training_and_evaluation_share_one_judge(server, tmp_path, monkeypatch):
    """The lmms-eval judge and the TRL reward judge are one Judge built from the same settings: same
    prompt, same cache (a verdict paid for in evaluation is free in training and vice versa); a
    training config that names another model gets its own verdicts, visibly."""
    from ai4va_fg_dataset.core.llm import DEFAULT_JUDGE, JUDGE_PROMPT
    from lmms_eval_tasks import judge as eval_judge
    from trl_rarl.rewards import accuracy_score, make_llm_judge

    for name, value in {"AI4VA_FG_JUDGE_BASE_URL": server.base_url, "AI4VA_FG_JUDGE_API_KEY": SECRET,
                        "AI4VA_FG_JUDGE_MODEL": "judge-model", "AI4VA_FG_JUDGE_CACHE": str(tmp_path / "cache"),
                        "AI4VA_FG_JUDGE_BACKOFF": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(eval_judge, "_JUDGE", None)
    evaluation, training = eval_judge.get_judge(), make_llm_judge()
    assert evaluation.settings == training.settings and DEFAULT_JUDGE.model == "gpt-4o-mini"
    assert evaluation("What colour?", "red", "It is red") is True and len(server.requests) == 1
    assert server.requests[0]["body"]["messages"][0]["content"] == JUDGE_PROMPT.format(
        question="What colour?", reference="red", prediction="It is red")
    # training: the same verdict from the shared cache, no request; accuracy and both tool rewards
    # ask about the same completion: still no request
    for _ in range(3):
        assert accuracy_score("It is red", "red", "open", [], "What colour?", training) == 1.0
    assert len(server.requests) == 1 and training.requests == 0
    other = make_llm_judge(settings=JudgeSettings.from_env(model="judge-model-2"))
    assert other.settings.model == "judge-model-2" and other.settings.base_url == server.base_url
    assert other("What colour?", "red", "It is red") is True and len(server.requests) == 2


def test_judge_call_raises_and_reward_scores_zero(server, tmp_path):
    from trl_rarl.rewards import accuracy_score

    judge, sleeps = _judge(server, tmp_path, max_retries=2)
    server.default = ("status", 429)
    with pytest.raises(JudgeError, match="HTTP 429"):
        judge("q", "ref", "pred")
    assert len(server.requests) == 3 and sleeps == [0.5, 1.0]  # a 429 is retried with backoff, not scored 0 at once
    assert accuracy_score("pred", "ref", "open", [], "q", judge) == 0.0  # after the retries: 0, logged, not raised
    server.default = ("ok", '{"correct": true}')
    assert judge("q", "ref", "pred") is True  # nothing was cached for the failures


def test_judge_with_a_plain_generate_client(tmp_path):
    """Any ``generate(prompt, images)`` client can judge (one attempt each); only a well-formed
    verdict counts and nothing of it reaches the disk cache."""

    class Fake:
        def __init__(self, reply):
            self.reply, self.prompts = reply, []

        def generate(self, prompt, images):
            self.prompts.append(prompt)
            return self.reply

    settings = JudgeSettings(cache_dir=str(tmp_path / "cache"))
    good = Fake('{"correct": false}')
    judge = Judge(settings, client=good)
    assert judge("q", "ref", "pred") is False and judge("q", "ref", "pred") is False and len(good.prompts) == 1
    with pytest.raises(JudgeError, match="well-formed"):
        Judge(settings, client=Fake("yes"))("q", "ref", "pred")
    assert not (tmp_path / "cache").exists()
    with pytest.raises(TypeError, match="generate"):
        Judge(settings, client=object())


def test_settings_overrides_and_prompt_version(tmp_path):
    env = {"AI4VA_FG_JUDGE_PROVIDER": "openai", "AI4VA_FG_JUDGE_MODEL": "m-env", "AI4VA_FG_JUDGE_TIMEOUT": "7"}
    s = JudgeSettings.from_env(env, base_url="http://127.0.0.1:9/v1", model=None)
    assert (s.model, s.timeout, s.base_url) == ("m-env", 7.0, "http://127.0.0.1:9/v1")
    assert JudgeSettings.from_env(env, provider="gemini").model == "gemini-2.5-flash"  # not the env's openai model
    with pytest.raises(ValueError, match="unknown judge setting"):
        JudgeSettings.from_env(env, modle="x")
    with pytest.raises(ValueError, match="prompt_version=99"):
        JudgeSettings(prompt_version=99)
    with pytest.raises(ValueError, match="temperature="):
        JudgeSettings(temperature=float("nan"))
    a, b = Judge(JudgeSettings(cache_dir=str(tmp_path))), Judge(JudgeSettings(cache_dir=str(tmp_path), temperature=0.5))
    assert a.cache_key("q", "r", "p") != b.cache_key("q", "r", "p")  # keyed by the settings too
