"""LLM-as-judge for the open-ended Panel Understanding task (method.md sections 2-3).

The judge sees the question, the reference answer and the model's answer, and returns
``{"correct": true|false}``. It talks to any OpenAI-compatible server through the official
``openai`` client (OpenAI, Azure-compatible gateways, a local ``vllm serve``) or to Gemini through
the official ``google-genai`` client.

Configuration comes from environment variables (they also work from an lmms-eval ``--config``
file's ``env:`` block, which masks values whose name contains KEY):

================================ ================================================================
``AI4VA_FG_JUDGE_PROVIDER``      ``openai`` (default) or ``gemini``
``AI4VA_FG_JUDGE_MODEL``         judge model (default ``gpt-4o-mini`` / ``gemini-2.5-flash``)
``AI4VA_FG_JUDGE_BASE_URL``      server URL, e.g. ``http://localhost:8000/v1`` for a local vLLM
``AI4VA_FG_JUDGE_API_KEY``       the key; default ``OPENAI_API_KEY`` / ``GEMINI_API_KEY`` or
                                 ``GOOGLE_API_KEY``; ``EMPTY`` for servers without auth
``AI4VA_FG_JUDGE_CACHE``         cache folder (default ``~/.cache/ai4va_fg/judge``)
``AI4VA_FG_JUDGE_MAX_RETRIES``   retries after the first attempt (default 4)
``AI4VA_FG_JUDGE_BACKOFF``       first retry delay in seconds, doubled each retry (default 1, max 30)
``AI4VA_FG_JUDGE_TIMEOUT``       seconds per request (default 60)
================================ ================================================================

Behaviour:

* every verdict is cached on disk, one JSON file per (judge model, question, reference, answer),
  written atomically; a re-run reads the cache and makes no request;
* HTTP 408/409/429/5xx, timeouts, connection errors and unreadable verdicts (not the requested
  JSON) are retried with exponential backoff; other 4xx errors (bad key, unknown model) are not;
* a failed judgement is **never cached**: it comes back as ``correct=None`` with the error, the
  sample is counted in ``judge_failure``, and the next run asks again;
* the API key is never logged or written to the cache; :class:`JudgeConfig`'s ``repr`` masks it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ai4va_fg_dataset.atomic_dir import replacing_file

logger = logging.getLogger(__name__)

PROMPT_VERSION = 1
JUDGE_PROMPT = """You are grading an answer to a question about one panel of a comic page.
Question: {question}
Reference answer: {reference}
Model answer: {prediction}

The model answer is correct if it states the same facts as the reference answer (wording may
differ; extra correct detail is fine; a contradiction or a missing key fact is incorrect).
Reply with only a JSON object: {{"correct": true}} or {{"correct": false}}"""
"""The judge prompt (method.md section 3: Panel Understanding is scored by an LLM judge)."""

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}
KEY_ENV = {"openai": ("OPENAI_API_KEY",), "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
PROVIDERS = ("openai", "gemini")


class JudgeError(RuntimeError):
    """A judge request failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class JudgeConfig:
    """Where and how to judge (see the module docstring for the matching environment variables).

    Raises:
        ValueError: unknown ``provider`` or a negative retry / timeout setting.
    """

    provider: str = "openai"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    cache_dir: str = "~/.cache/ai4va_fg/judge"
    max_retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"judge provider {self.provider!r} is not one of {PROVIDERS}")
        if self.max_retries < 0 or self.backoff < 0 or self.timeout <= 0:
            raise ValueError(
                f"judge settings max_retries={self.max_retries!r}, backoff={self.backoff!r}, "
                f"timeout={self.timeout!r} must be >= 0 (timeout > 0)"
            )
        self.model = self.model or DEFAULT_MODELS[self.provider]
        if self.api_key is None:
            for name in KEY_ENV[self.provider]:
                if os.environ.get(name):
                    self.api_key = os.environ[name]
                    break

    def __repr__(self) -> str:  # never show the key
        key = "set" if self.api_key else "missing"
        return (f"JudgeConfig(provider={self.provider!r}, model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key=<{key}>, cache_dir={self.cache_dir!r}, max_retries={self.max_retries}, "
                f"backoff={self.backoff}, timeout={self.timeout})")

    @classmethod
    def from_env(cls, environ: dict | None = None) -> JudgeConfig:
        """Read the ``AI4VA_FG_JUDGE_*`` variables (see the module docstring).

        Raises:
            ValueError: a numeric variable that is not a number (the message names it).
        """
        env = os.environ if environ is None else environ

        def num(name: str, default: float, kind=float):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                return kind(raw)
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a number") from exc

        return cls(
            provider=env.get("AI4VA_FG_JUDGE_PROVIDER", "openai") or "openai",
            model=env.get("AI4VA_FG_JUDGE_MODEL") or None,
            base_url=env.get("AI4VA_FG_JUDGE_BASE_URL") or None,
            api_key=env.get("AI4VA_FG_JUDGE_API_KEY") or None,
            cache_dir=env.get("AI4VA_FG_JUDGE_CACHE") or "~/.cache/ai4va_fg/judge",
            max_retries=num("AI4VA_FG_JUDGE_MAX_RETRIES", 4, int),
            backoff=num("AI4VA_FG_JUDGE_BACKOFF", 1.0),
            timeout=num("AI4VA_FG_JUDGE_TIMEOUT", 60.0),
        )


@dataclass
class Verdict:
    """A judgement: ``correct`` is ``None`` when the judge failed (``error`` says why)."""

    correct: bool | None
    error: str | None = None
    cached: bool = False
    attempts: int = 0


_JSON_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)
_CORRECT = re.compile(r'"?correct"?\s*:\s*(true|false)', re.IGNORECASE)


def parse_verdict(text: str) -> bool:
    """Read ``{"correct": true|false}`` from the judge's reply (code fences and prose around it allowed).

    Raises:
        JudgeError: (retryable) no such object in ``text``.
    """
    if not isinstance(text, str):
        raise JudgeError(f"judge reply is {type(text).__name__}, not text", retryable=True)
    for match in _JSON_OBJECT.finditer(text):
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("correct"), bool):
            return obj["correct"]
    m = _CORRECT.search(text)
    if m:
        return m.group(1).lower() == "true"
    raise JudgeError(f"judge reply is not the requested JSON verdict: {text[:200]!r}", retryable=True)


class Judge:
    """Judges Panel Understanding answers with caching and retries (see the module docstring).

    Args:
        config: where and how to judge.
        sleep: the delay function (tests pass a fake one).

    Thread-safe: lmms-eval scores samples in several threads.
    """

    def __init__(self, config: JudgeConfig, sleep=time.sleep):
        self.config = config
        self.cache_dir = Path(os.path.expanduser(config.cache_dir))
        self._sleep = sleep
        self._client = None
        self._lock = threading.Lock()
        self.requests = 0  # requests sent (for tests and logs)

    # -- cache -------------------------------------------------------------------------------------------
    def cache_key(self, question: str, reference: str, prediction: str) -> str:
        """SHA-256 of the judge identity and the three texts (the cache file name)."""
        payload = json.dumps(
            [PROMPT_VERSION, self.config.provider, self.config.model, question, reference, prediction],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _read_cache(self, key: str) -> bool | None:
        path = self._cache_path(key)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("judge cache file %s is unreadable (%s); judging again", path, exc)
            return None
        value = obj.get("correct")
        return value if isinstance(value, bool) else None

    def _write_cache(self, key: str, correct: bool, raw: str) -> None:
        path = self._cache_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"correct": correct, "judge": f"{self.config.provider}:{self.config.model}",
                  "prompt_version": PROMPT_VERSION, "reply": raw}
        with replacing_file(path) as tmp:
            tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")

    # -- requests ----------------------------------------------------------------------------------------
    def _get_client(self):
        with self._lock:
            if self._client is None:
                if not self.config.api_key and not self.config.base_url:
                    raise JudgeError(
                        f"no API key for the {self.config.provider} judge: set AI4VA_FG_JUDGE_API_KEY "
                        f"(or {' / '.join(KEY_ENV[self.config.provider])}), or AI4VA_FG_JUDGE_BASE_URL "
                        "for a local OpenAI-compatible server",
                        retryable=False,
                    )
                if self.config.provider == "openai":
                    import openai

                    self._client = openai.OpenAI(
                        api_key=self.config.api_key or "EMPTY",
                        base_url=self.config.base_url,
                        timeout=self.config.timeout,
                        max_retries=0,  # retries are ours (backoff + unreadable replies)
                    )
                else:
                    from google import genai
                    from google.genai import types

                    http = types.HttpOptions(timeout=int(self.config.timeout * 1000),
                                             base_url=self.config.base_url)
                    self._client = genai.Client(api_key=self.config.api_key or "EMPTY", http_options=http)
            return self._client

    def _ask_once(self, prompt: str) -> str:
        client = self._get_client()
        self.requests += 1
        if self.config.provider == "openai":
            import openai

            try:
                resp = client.chat.completions.create(
                    model=self.config.model,
                    messages=[{"role": "user", "content": prompt}],
                    temperature=0,
                    max_tokens=64,
                )
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                raise JudgeError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
            except openai.APIStatusError as exc:
                code = exc.status_code
                raise JudgeError(f"HTTP {code} from the judge server",
                                 retryable=code in (408, 409, 429) or code >= 500) from exc
            try:
                return resp.choices[0].message.content or ""
            except (AttributeError, IndexError, TypeError) as exc:
                raise JudgeError(f"judge response has no message: {exc}", retryable=True) from exc
        from google.genai import errors as genai_errors

        try:
            resp = client.models.generate_content(model=self.config.model, contents=prompt)
        except genai_errors.APIError as exc:
            code = getattr(exc, "code", 0) or 0
            raise JudgeError(f"HTTP {code} from the Gemini judge",
                             retryable=code in (408, 409, 429) or code >= 500) from exc
        except Exception as exc:  # httpx timeouts / connection errors
            raise JudgeError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        return resp.text or ""

    def judge(self, question: str, reference: str, prediction: str | None) -> Verdict:
        """Judge one answer; never raises for judge-side problems (see :class:`Verdict`).

        An empty or missing ``prediction`` is incorrect without asking the judge (and not cached).
        """
        if not prediction or not prediction.strip():
            return Verdict(correct=False)
        key = self.cache_key(question, reference, prediction)
        cached = self._read_cache(key)
        if cached is not None:
            return Verdict(correct=cached, cached=True)
        prompt = JUDGE_PROMPT.format(question=question, reference=reference, prediction=prediction)
        delay = self.config.backoff
        last_error = "not attempted"
        attempts = 0
        for attempt in range(self.config.max_retries + 1):
            attempts = attempt + 1
            try:
                raw = self._ask_once(prompt)
                correct = parse_verdict(raw)
            except JudgeError as exc:
                last_error = str(exc)
                if not exc.retryable or attempt == self.config.max_retries:
                    break
                logger.info("judge attempt %d failed (%s); retrying in %.1fs", attempts, last_error, delay)
                self._sleep(delay)
                delay = min(delay * 2 if delay > 0 else 0, self.config.max_backoff)
                continue
            self._write_cache(key, correct, raw)
            return Verdict(correct=correct, attempts=attempts)
        logger.warning("judge failed after %d attempt(s): %s (sample left unjudged, not cached)", attempts, last_error)
        return Verdict(correct=None, error=last_error, attempts=attempts)


_JUDGE: Judge | None = None
_JUDGE_LOCK = threading.Lock()


def get_judge() -> Judge:
    """The process-wide judge built from the environment (created on first use)."""
    global _JUDGE
    with _JUDGE_LOCK:
        if _JUDGE is None:
            config = JudgeConfig.from_env()
            logger.info("Panel Understanding judge: %r", config)
            _JUDGE = Judge(config)
        return _JUDGE
