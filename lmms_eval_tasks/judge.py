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

* settings are validated when the configuration is built (:class:`JudgeConfig`, :meth:`JudgeConfig.from_env`):
  a retry count that is not an integer in 0..100, a NaN / infinite / negative backoff, or a NaN /
  infinite / non-positive timeout is a ``ValueError`` naming the setting (or its variable);
* only a **well-formed verdict** counts (:func:`parse_verdict`): the reply, stripped of surrounding
  whitespace and of at most one enclosing Markdown code fence (```` ``` ```` or ```` ```json ````), is
  exactly one JSON object with the key ``"correct"`` set to JSON ``true`` or ``false``, optionally a
  string ``"reason"`` or ``"explanation"``, and no other or repeated key, at most
  :data:`MAX_REPLY_CHARS` characters. Prose around the object, ``{"incorrect": true}``,
  ``not correct: true``, ``{"correct": "true"}``, two objects, an unparseable or non-text body are
  judge failures, never verdicts;
* every verdict is cached on disk, one JSON file per (judge model, question, reference, answer),
  written atomically; a re-run reads the cache and makes no request. A cache entry counts only if it
  is a UTF-8 JSON object of this judge and prompt version whose stored reply is itself a well-formed
  verdict with the same value; anything else (a list, non-UTF-8 bytes, a truncated file, an entry
  written under laxer rules) is logged, deleted and judged again, and the new verdict rewrites it. A
  cache that cannot be written costs the caching, never the verdict;
* HTTP 408/409/429/5xx, timeouts, connection errors, unreadable responses (a 200 whose body is not
  the API's JSON) and replies that are not a well-formed verdict are retried with exponential
  backoff; other 4xx errors (bad key, unknown model) are not;
* a failed judgement is **never cached**: it comes back as ``correct=None`` with the error, the
  sample is counted in ``judge_failure``, and the next run asks again. :meth:`Judge.judge` never
  raises;
* secrets never leave the process: the API key (and anything shaped like an OpenAI / Google key or
  a bearer token) is replaced by ``[REDACTED]`` in everything the judge writes: the cached reply,
  log lines and the ``error`` of a :class:`Verdict` (which can reach samples); :class:`JudgeConfig`'s
  ``repr`` masks it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ai4va_fg_dataset.core.atomic_dir import replacing_file
from ai4va_fg_dataset.core.tool_calls import loads_bounded

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

MAX_RETRIES_LIMIT = 100
"""Largest accepted ``max_retries``."""

MAX_REPLY_CHARS = 4096
"""Longest judge reply read as a verdict (the requested one is ~20 characters)."""

MAX_CACHE_BYTES = 65536
"""Largest cache file read; a bigger one is corrupt."""

VERDICT_EXTRA_KEYS = frozenset({"reason", "explanation"})
"""Keys a verdict object may carry besides ``"correct"`` (string values only)."""

REDACTED = "[REDACTED]"
_SECRET_PATTERNS = re.compile(
    r"sk-[A-Za-z0-9_\-]{16,}"  # OpenAI-style keys
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"  # bearer tokens
)
_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*)\n[ \t]*```|```(?:json|JSON)?[ \t]*(\{.*\})[ \t]*```", re.DOTALL)


def _check_setting(name: str, value, *, integer: bool = False, positive: bool = False,
                   upper: float | None = None) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite number in range."""
    kind = "an integer" if integer else "a finite number"
    bound = "> 0" if positive else ">= 0"
    if upper is not None:
        bound += f" and <= {upper:g}"
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and (not integer or isinstance(value, numbers.Integral))
        and math.isfinite(float(value))
        and (value > 0 if positive else value >= 0)
        and (upper is None or value <= upper)
    )
    if not ok:
        raise ValueError(f"{name}={value!r} must be {kind} {bound}")


def scrub(text: str, secrets=()) -> str:
    """``text`` with each of ``secrets`` (strings of 4+ characters, ``EMPTY`` excepted) and anything
    shaped like an OpenAI key (``sk-...``), a Google API key (``AIza...``) or a bearer token replaced
    by ``[REDACTED]``. Non-text is converted with ``str`` first."""
    text = text if isinstance(text, str) else str(text)
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= 4 and secret != "EMPTY":
            text = text.replace(secret, REDACTED)
    return _SECRET_PATTERNS.sub(REDACTED, text)


class JudgeError(RuntimeError):
    """A judge request failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class JudgeConfig:
    """Where and how to judge (see the module docstring for the matching environment variables).

    Raises:
        ValueError: unknown ``provider``; ``max_retries`` not an integer in 0..100; ``backoff`` or
            ``max_backoff`` NaN, infinite or negative; ``timeout`` NaN, infinite or not positive; a
            non-string ``model`` / ``base_url`` / ``api_key`` / ``cache_dir``. The message names the setting.
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
        _check_setting("judge setting max_retries", self.max_retries, integer=True, upper=MAX_RETRIES_LIMIT)
        _check_setting("judge setting backoff", self.backoff)
        _check_setting("judge setting max_backoff", self.max_backoff)
        _check_setting("judge setting timeout", self.timeout, positive=True)
        for name in ("model", "base_url", "api_key"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"judge setting {name} must be a string, got {type(value).__name__}")
        if not isinstance(self.cache_dir, (str, os.PathLike)):
            raise ValueError(f"judge setting cache_dir must be a path, got {type(self.cache_dir).__name__}")  # noqa: TRY004
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
            ValueError: an unknown provider, a numeric variable that is not a number, or out of range
                (NaN, ``inf``, negative; a non-positive timeout; retries not an integer in 0..100): the
                message names the variable.
        """
        env = os.environ if environ is None else environ

        def num(name: str, default: float, kind=float, positive: bool = False, upper: float | None = None):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a number") from exc
            _check_setting(name, value, integer=kind is int, positive=positive, upper=upper)
            return value

        provider = env.get("AI4VA_FG_JUDGE_PROVIDER", "openai") or "openai"
        if provider not in PROVIDERS:
            raise ValueError(f"AI4VA_FG_JUDGE_PROVIDER={provider!r} is not one of {', '.join(PROVIDERS)}")
        return cls(
            provider=provider,
            model=env.get("AI4VA_FG_JUDGE_MODEL") or None,
            base_url=env.get("AI4VA_FG_JUDGE_BASE_URL") or None,
            api_key=env.get("AI4VA_FG_JUDGE_API_KEY") or None,
            cache_dir=env.get("AI4VA_FG_JUDGE_CACHE") or "~/.cache/ai4va_fg/judge",
            max_retries=num("AI4VA_FG_JUDGE_MAX_RETRIES", 4, int, upper=MAX_RETRIES_LIMIT),
            backoff=num("AI4VA_FG_JUDGE_BACKOFF", 1.0),
            timeout=num("AI4VA_FG_JUDGE_TIMEOUT", 60.0, positive=True),
        )


@dataclass
class Verdict:
    """A judgement: ``correct`` is ``None`` when the judge failed (``error`` says why)."""

    correct: bool | None
    error: str | None = None
    cached: bool = False
    attempts: int = 0


def parse_verdict(text: str) -> bool:
    """Read the verdict from the judge's reply; only a well-formed one counts.

    Accepted (nothing else): after stripping surrounding whitespace and at most one Markdown code
    fence enclosing the whole reply (```` ```json\n...\n``` ````, ```` ```\n...\n``` ```` or on one
    line), the reply is exactly one JSON object that

    * has the key ``"correct"`` (exact spelling and case) with the JSON boolean ``true`` or ``false``;
    * may have ``"reason"`` and/or ``"explanation"`` with string values;
    * has no other key and no repeated key;

    and is at most :data:`MAX_REPLY_CHARS` characters long.

    Returns:
        The value of ``"correct"``.

    Raises:
        JudgeError: (retryable) anything else: prose around the object, ``{"incorrect": true}``,
            ``not correct: true``, ``{"correct": "true"}``, ``{"correct": 1}``, several objects, a
            non-text reply.
    """
    if not isinstance(text, str):
        raise JudgeError(f"judge reply is {type(text).__name__}, not text", retryable=True)
    body = text.strip()
    if len(body) > MAX_REPLY_CHARS:
        raise JudgeError(f"judge reply is not a well-formed verdict ({len(body)} characters, limit {MAX_REPLY_CHARS})",
                         retryable=True)
    fence = _FENCE.fullmatch(body)
    if fence:
        body = (fence.group(1) if fence.group(1) is not None else fence.group(2)).strip()
    ok, obj = loads_bounded(body, max_chars=MAX_REPLY_CHARS, max_depth=1, reject_duplicate_keys=True)
    problem = None
    if not ok:
        problem = obj
    elif not isinstance(obj, dict):
        problem = f"a JSON {type(obj).__name__}, not an object"
    elif not isinstance(obj.get("correct"), bool):
        problem = 'no boolean "correct"'
    elif set(obj) - {"correct"} - VERDICT_EXTRA_KEYS:
        problem = f"unexpected key(s) {sorted(set(obj) - {'correct'} - VERDICT_EXTRA_KEYS)[:5]}"
    elif not all(isinstance(obj[k], str) for k in set(obj) & VERDICT_EXTRA_KEYS):
        problem = "a non-string reason"
    if problem is not None:
        raise JudgeError(f"judge reply is not a well-formed verdict ({problem}): {text[:200]!r}", retryable=True)
    return obj["correct"]


class Judge:
    """Judges Panel Understanding answers with caching and retries (see the module docstring).

    Args:
        config: where and how to judge.
        sleep: the delay function (tests pass a fake one).

    Thread-safe: lmms-eval scores samples in several threads.

    Raises:
        TypeError: ``config`` is not a :class:`JudgeConfig`.
    """

    def __init__(self, config: JudgeConfig, sleep=time.sleep):
        if not isinstance(config, JudgeConfig):
            raise TypeError(f"Judge needs a JudgeConfig, got {type(config).__name__}")
        self.config = config
        self.cache_dir = Path(os.path.expanduser(config.cache_dir))
        self._sleep = sleep
        self._client = None
        self._lock = threading.Lock()
        self.requests = 0  # requests sent (for tests and logs)
        self.corrupt_cache_entries = 0  # cache files ignored (and deleted) as not a valid entry

    def scrub(self, text: str) -> str:
        """``text`` with the API key and key-shaped strings redacted (see :func:`scrub`)."""
        keys = [self.config.api_key] + [os.environ.get(n) for names in KEY_ENV.values() for n in names]
        return scrub(text, [k for k in keys if k] + [os.environ.get("AI4VA_FG_JUDGE_API_KEY") or ""])

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

    def _cache_problem(self, path: Path) -> tuple[bool | None, str | None]:
        """``(verdict, None)`` for a valid entry, ``(None, None)`` when absent, ``(None, why)`` when corrupt."""
        try:
            if path.stat().st_size > MAX_CACHE_BYTES:
                return None, f"larger than {MAX_CACHE_BYTES} bytes"
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return None, None
        except (OSError, UnicodeDecodeError) as exc:
            return None, f"unreadable ({type(exc).__name__})"
        ok, obj = loads_bounded(text, max_chars=MAX_CACHE_BYTES, max_depth=2)
        if not ok:
            return None, obj
        if not isinstance(obj, dict):
            return None, f"a JSON {type(obj).__name__}, not an object"
        correct, reply = obj.get("correct"), obj.get("reply")
        if not isinstance(correct, bool):
            return None, 'no boolean "correct"'
        if obj.get("judge") != f"{self.config.provider}:{self.config.model}" or obj.get("prompt_version") != PROMPT_VERSION:
            return None, "written for another judge or prompt version"
        try:
            stored = parse_verdict(reply)
        except JudgeError:
            return None, "its stored reply is not a well-formed verdict"
        if stored is not correct:
            return None, "its stored reply disagrees with its verdict"
        return correct, None

    def _read_cache(self, key: str) -> bool | None:
        """The cached verdict, or ``None``; a corrupt entry is logged, deleted and counted, never trusted."""
        path = self._cache_path(key)
        value, problem = self._cache_problem(path)
        if problem is None:
            return value
        self.corrupt_cache_entries += 1
        logger.warning("judge cache file %s is not a valid entry (%s); judging again", path, self.scrub(problem))
        try:
            if path.is_file() or path.is_symlink():
                path.unlink()
        except OSError:
            pass  # rewritten on the next verdict (replacing_file moves a new file over it)
        return None

    def _write_cache(self, key: str, correct: bool, raw: str) -> None:
        """Cache a verdict atomically (the reply scrubbed of secrets); a failure is logged, not raised."""
        path = self._cache_path(key)
        record = {"correct": correct, "judge": f"{self.config.provider}:{self.config.model}",
                  "prompt_version": PROMPT_VERSION, "reply": self.scrub(raw)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing_file(path) as tmp:
                tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        except (OSError, ValueError) as exc:
            logger.warning("judge cache file %s could not be written (%s: %s); verdict kept, not cached",
                           path, type(exc).__name__, self.scrub(str(exc)))

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
                try:
                    self._client = self._make_client()
                except ImportError as exc:
                    raise JudgeError(f"the {self.config.provider} judge client is not installed ({exc})",
                                     retryable=False) from exc
            return self._client

    def _make_client(self):
        if self.config.provider == "openai":
            import openai

            return openai.OpenAI(
                api_key=self.config.api_key or "EMPTY",
                base_url=self.config.base_url,
                timeout=self.config.timeout,
                max_retries=0,  # retries are ours (backoff + unreadable replies)
            )
        from google import genai
        from google.genai import types

        http = types.HttpOptions(timeout=int(self.config.timeout * 1000), base_url=self.config.base_url)
        return genai.Client(api_key=self.config.api_key or "EMPTY", http_options=http)

    def _ask_once(self, prompt: str) -> str:
        """One request; every failure is a :class:`JudgeError` (``retryable`` as the module docstring says)."""
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
            except Exception as exc:  # a 200 with an unparseable body, a validation error...
                raise JudgeError(f"unreadable response from the judge server ({type(exc).__name__})",
                                 retryable=True) from exc
            try:
                return resp.choices[0].message.content or ""
            except Exception as exc:  # a body of the wrong shape: a list, a string, choices=5...
                raise JudgeError(f"judge response has no message ({type(exc).__name__})", retryable=True) from exc
        from google.genai import errors as genai_errors

        try:
            resp = client.models.generate_content(model=self.config.model, contents=prompt)
        except genai_errors.APIError as exc:
            code = getattr(exc, "code", 0) or 0
            code = code if isinstance(code, int) else 0
            raise JudgeError(f"HTTP {code} from the Gemini judge",
                             retryable=code in (408, 409, 429) or code >= 500) from exc
        except Exception as exc:  # httpx timeouts / connection errors / unreadable bodies
            raise JudgeError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        try:
            return resp.text or ""
        except Exception as exc:
            raise JudgeError(f"judge response has no text ({type(exc).__name__})", retryable=True) from exc

    def judge(self, question: str, reference: str, prediction: str | None) -> Verdict:
        """Judge one answer; never raises (see :class:`Verdict` and the module docstring).

        Args:
            question, reference: the sample's texts (non-strings are converted with ``str``).
            prediction: the model's answer; empty or missing is incorrect without asking the judge
                (and not cached).

        Returns:
            A :class:`Verdict`: ``correct`` from the cache or from a well-formed reply (then cached),
            or ``correct=None`` with a secret-free ``error`` after the retries (not cached).
        """
        try:
            return self._judge(question, reference, prediction)
        except Exception as exc:  # noqa: BLE001  (last resort: a judge problem must not kill the evaluation)
            error = self.scrub(f"{type(exc).__name__}: {exc}")
            logger.warning("judge failed unexpectedly: %s (sample left unjudged, not cached)", error)
            return Verdict(correct=None, error=error)

    def _judge(self, question, reference, prediction) -> Verdict:
        if prediction is None or not str(prediction).strip():
            return Verdict(correct=False)
        question, reference, prediction = (v if isinstance(v, str) else str(v) for v in (question, reference, prediction))
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
                last_error = self.scrub(str(exc))
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
