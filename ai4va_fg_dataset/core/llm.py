"""The one LLM client layer: Panel Understanding generation, SFT-R distillation and the LLM judge.

Two APIs, each through its official client (imported lazily):

* ``openai``: the ``openai`` package, ``chat.completions`` with base64 ``image_url`` parts; works with
  OpenAI and any OpenAI-compatible server (a local ``vllm serve``, LM Studio...) through ``base_url``;
* ``gemini``: the ``google-genai`` package (the paper's Gemini-2.5-flash, method.md section 2).

Every request goes through the same machinery (:class:`LLMClient`):

* **timeouts**: seconds per request (connect, read and write);
* **retries with exponential backoff**: HTTP 408/409/429/5xx, timeouts, connection errors, unreadable
  responses (a 200 whose body is not the API's JSON) and, for callers that parse the reply (the
  judge), replies that do not parse are retried, ``backoff`` seconds first, doubled each retry up to
  ``max_backoff``; other 4xx (bad key, unknown model) are not. The SDKs' own retries are switched off
  so that this is the only retry loop. After the last attempt an :class:`LLMError` is raised;
* **a disk cache** (:class:`DiskCache`, optional for generation, on for the judge): one JSON file per
  request, keyed by provider, model, sampling settings, prompt and image pixels, written atomically;
  an entry that is not valid is logged, deleted and asked again, a cache that cannot be written
  costs the caching, never the reply;
* **key scrubbing** (:func:`scrub`): the API key, the keys in the environment and anything shaped
  like an OpenAI / Google key or a bearer token become ``[REDACTED]`` in every error, log line and
  cached reply; ``repr`` never shows a key.

The judge (method.md section 3: Panel Understanding is scored by an LLM judge) lives here too, so
that evaluation (lmms-eval ``process_results``) and training (the TRL accuracy reward) share one
prompt (:data:`JUDGE_PROMPTS`), one verdict parser (:func:`parse_verdict`) and one settings object
(:class:`JudgeSettings`, default :data:`DEFAULT_JUDGE`): :class:`Judge` is the callable
``judge(question, reference, prediction) -> bool`` both use.

This module imports only the standard library and PIL at import time (``openai``, ``google.genai``
lazily); nothing else of the project but :mod:`.atomic_dir` and :mod:`.tool_calls`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import math
import numbers
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from .atomic_dir import replacing_file
from .tool_calls import loads_bounded

logger = logging.getLogger(__name__)

PROVIDERS = ("openai", "gemini")
DEFAULT_MODELS = {"openai": "gpt-4o", "gemini": "gemini-2.5-flash"}
"""Default generation / distillation model per provider (the paper generated Panel Understanding
with Gemini-2.5-flash, method.md section 2)."""

KEY_ENV = {"openai": ("OPENAI_API_KEY",), "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
"""Environment variables holding each provider's key, in the order they are read."""

DEFAULT_TIMEOUT = 60.0
"""Seconds one request may take (CLI ``--pu-timeout``)."""

DEFAULT_RETRIES = 3
"""Retries after a failed or timed-out request (CLI ``--pu-retries``): a server that never answers
costs up to ``(DEFAULT_RETRIES + 1) * DEFAULT_TIMEOUT`` seconds plus backoff (1 + 2 + 4 s) per call
(about 247 s with the defaults); lower both for a flaky endpoint."""

DEFAULT_BACKOFF = 1.0
"""Seconds before the first retry (doubled each retry)."""
DEFAULT_MAX_BACKOFF = 30.0
"""Longest wait between two attempts, in seconds."""

MAX_RETRIES_LIMIT = 100
"""Largest accepted ``max_retries``."""

MAX_CACHE_BYTES = 1 << 20
"""Largest cache file read; a bigger one is corrupt (a generation reply is a few kB, a verdict ~100 B)."""

REDACTED = "[REDACTED]"
_SECRET_PATTERNS = re.compile(
    r"sk-[A-Za-z0-9_\-]{16,}"  # OpenAI-style keys
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"  # bearer tokens
)
_RETRYABLE_STATUS = (408, 409, 429)


# ----------------------------------------------------------------------------------------- secrets


def scrub(text: object, secrets: Sequence[str | None] = ()) -> str:
    """``text`` with each of ``secrets`` (strings of 4+ characters, ``EMPTY`` excepted), every key in
    the environment (:data:`KEY_ENV`, ``AI4VA_FG_JUDGE_API_KEY``) and anything shaped like an OpenAI
    key (``sk-...``), a Google API key (``AIza...``) or a bearer token replaced by ``[REDACTED]``.
    Non-text is converted with ``str`` first."""
    text = text if isinstance(text, str) else str(text)
    env = [os.environ.get(n) for names in KEY_ENV.values() for n in names] + [os.environ.get("AI4VA_FG_JUDGE_API_KEY")]
    for secret in [*secrets, *env]:
        if isinstance(secret, str) and len(secret) >= 4 and secret != "EMPTY":
            text = text.replace(secret, REDACTED)
    return _SECRET_PATTERNS.sub(REDACTED, text)


class LLMError(RuntimeError):
    """A request failed (after the retries, when raised by :meth:`LLMClient.generate`).

    Attributes:
        retryable: whether trying again may help (HTTP 408/409/429/5xx, timeouts, unreadable or
            unparseable replies).
        kind: a short, secret-free name of the failure: the SDK exception class
            (``"APITimeoutError"``, ``"APIConnectionError"``), ``"HTTP 500"``, ``"unreadable response"``,
            ``"bad reply"``, ``"no API key"``.
        attempts: requests made before giving up (0 when none could be made).
    """

    def __init__(self, message: str, retryable: bool, kind: str = "error", attempts: int = 0):
        super().__init__(message)
        self.retryable = retryable
        self.kind = kind
        self.attempts = attempts


# --------------------------------------------------------------------------------------- settings


def _check_limits(timeout: object, max_retries: object) -> None:
    """Raise ``ValueError`` unless ``timeout`` is a positive finite number of seconds and
    ``max_retries`` a whole number in 0..:data:`MAX_RETRIES_LIMIT`."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if (isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
            or max_retries > MAX_RETRIES_LIMIT):
        raise ValueError(f"max_retries must be a whole number >= 0 and <= {MAX_RETRIES_LIMIT}, got {max_retries!r}")


def _check_setting(name: str, value: object, *, integer: bool = False, positive: bool = False,
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


def find_api_key(provider: str, api_key: str | None = None) -> str | None:
    """``api_key``, else the first set variable of :data:`KEY_ENV` for ``provider``, else ``None``."""
    if api_key:
        return api_key
    for name in KEY_ENV.get(provider, ()):
        if os.environ.get(name):
            return os.environ[name]
    return None


# ------------------------------------------------------------------------------------------ cache


class DiskCache:
    """One JSON object per key under ``directory/<key[:2]>/<key>.json``, written atomically.

    Args:
        directory: the cache folder (``~`` expanded; created on the first write).
        secrets: strings scrubbed (:func:`scrub`) from log lines.

    Attributes:
        corrupt: entries found invalid (logged, deleted, and then asked again) since creation.
    """

    def __init__(self, directory: str | os.PathLike, secrets: Sequence[str | None] = ()):
        self.directory = Path(os.path.expanduser(directory))
        self._secrets = list(secrets)
        self.corrupt = 0

    def path(self, key: str) -> Path:
        """The file of ``key`` (a hex digest)."""
        return self.directory / key[:2] / f"{key}.json"

    def _load(self, path: Path, check: Callable[[dict], str | None]) -> tuple[dict | None, str | None]:
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
        problem = check(obj)
        return (None, problem) if problem else (obj, None)

    def get(self, key: str, check: Callable[[dict], str | None]) -> dict | None:
        """The entry of ``key`` if present and valid, else ``None``.

        ``check(record)`` returns why a decoded JSON object is not a valid entry (or ``None``); an
        entry that is not a UTF-8 JSON object, is larger than :data:`MAX_CACHE_BYTES` or fails
        ``check`` is logged (``... is not a valid entry``), deleted and counted in :attr:`corrupt`.
        """
        path = self.path(key)
        record, problem = self._load(path, check)
        if problem is None:
            return record
        self.corrupt += 1
        logger.warning("LLM cache file %s is not a valid entry (%s); asking again", path, scrub(problem, self._secrets))
        try:
            if path.is_file() or path.is_symlink():
                path.unlink()
        except OSError:
            pass  # rewritten on the next reply (replacing_file moves a new file over it)
        return None

    def put(self, key: str, record: Mapping[str, Any]) -> bool:
        """Write ``record`` atomically; a failure is logged and returns ``False`` (never raised)."""
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing_file(path) as tmp:
                tmp.write_text(json.dumps(dict(record), ensure_ascii=False), encoding="utf-8")
        except (OSError, ValueError) as exc:
            logger.warning("LLM cache file %s could not be written (%s: %s); reply kept, not cached",
                           path, type(exc).__name__, scrub(str(exc), self._secrets))
            return False
        return True


def request_key(*parts: object) -> str:
    """SHA-256 hex digest of ``parts`` (JSON-encoded; PIL images by mode, size and pixels)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Image.Image):
            h.update(f"image:{part.mode}:{part.size}".encode())
            h.update(hashlib.sha256(part.tobytes()).digest())
        else:
            h.update(json.dumps(part, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


# ----------------------------------------------------------------------------------------- clients


@runtime_checkable
class VLMClient(Protocol):
    """Anything that answers a text prompt about zero or more images."""

    def generate(self, prompt: str, images: Sequence[Image.Image]) -> str:
        """The model's text reply to ``prompt`` with ``images`` (PIL) attached after the text."""
        ...


def image_to_data_url(image: Image.Image, fmt: str = "PNG") -> str:
    """``data:image/png;base64,...`` of a PIL image (RGB), for ``image_url`` content parts."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


@dataclass
class Reply:
    """A reply: its ``text``, the value ``parse(text)`` returned (``None`` without a parser) and
    the number of ``attempts`` it took (0 when it came from the cache)."""

    text: str
    value: Any = None
    attempts: int = 0
    cached: bool = False


class LLMClient:
    """Shared machinery of the providers: retries with backoff, optional disk cache, key scrubbing.

    Subclasses implement :meth:`_request` (one attempt). See the module docstring for what is retried.

    Args:
        model: model name as the server knows it.
        api_key: the key (resolved by the subclass from the environment when ``None``).
        timeout: seconds per request (> 0, finite).
        max_retries: retries after the first attempt (0..100).
        backoff: seconds before the first retry, doubled each retry (>= 0, finite).
        max_backoff: longest wait between attempts in seconds (>= 0, finite).
        temperature: sampling temperature (0: as deterministic as the server allows).
        max_tokens: cap on the reply length in tokens.
        cache_dir: folder of the reply cache; ``None``: no cache.
        sleep: the delay function (tests pass a fake one).

    Raises:
        ValueError: a bad ``timeout`` / ``max_retries`` / ``backoff`` / ``max_backoff`` (the message
            names it).
    """

    provider = ""

    def __init__(self, model: str, api_key: str | None, *, timeout: float = DEFAULT_TIMEOUT,
                 max_retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF,
                 max_backoff: float = DEFAULT_MAX_BACKOFF, temperature: float = 0.0, max_tokens: int = 2048,
                 cache_dir: str | os.PathLike | None = None, sleep: Callable[[float], None] = time.sleep):
        _check_limits(timeout, max_retries)
        _check_setting("backoff", backoff)
        _check_setting("max_backoff", max_backoff)
        self.model = model
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._api_key = api_key
        self._sleep = sleep
        self.cache = DiskCache(cache_dir, [api_key]) if cache_dir is not None else None
        self.requests = 0  # requests sent (for tests and logs)
        self._count_lock = threading.Lock()
        self._sdk_client: Any = None

    def __getstate__(self) -> dict:
        """Picklable (the builder sends the Panel Understanding client to worker processes): the lock
        and the SDK client are left out and made again on first use."""
        state = self.__dict__.copy()
        state["_count_lock"] = None
        state["_sdk_client"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._count_lock = threading.Lock()

    @property
    def _client(self) -> Any:
        """The provider's SDK client, made on first use (:meth:`_make_sdk_client`)."""
        if self._sdk_client is None:
            self._sdk_client = self._make_sdk_client()
        return self._sdk_client

    def _make_sdk_client(self) -> Any:
        raise NotImplementedError

    def scrub(self, text: object) -> str:
        """``text`` without this client's key or any other key-shaped string (:func:`scrub`)."""
        return scrub(text, [self._api_key])

    @property
    def identity(self) -> str:
        """``provider:model``, as stored in cache entries."""
        return f"{self.provider}:{self.model}"

    def _request(self, prompt: str, images: Sequence[Image.Image]) -> str:
        """One attempt; every failure is an :class:`LLMError` (``retryable`` as documented)."""
        raise NotImplementedError

    def call(self, prompt: str, images: Sequence[Image.Image] = (), parse: Callable[[str], Any] | None = None) -> Reply:
        """Ask until a reply comes back (and ``parse(reply)`` does not raise :class:`LLMError`).

        Args:
            prompt: the user message text.
            images: PIL images attached after the text.
            parse: optional reader of the reply; an :class:`LLMError` it raises with ``retryable``
                set counts as a failed attempt (the judge's malformed verdicts).

        Returns:
            A :class:`Reply` (not cached: the caller decides what to cache).

        Raises:
            LLMError: the last failure, scrubbed of secrets, with ``attempts``; a non-retryable one
                (bad key, unknown model) after one attempt.
        """
        delay = self.backoff
        last: LLMError | None = None
        for attempt in range(1, self.max_retries + 2):
            try:
                with self._count_lock:
                    self.requests += 1
                text = self._request(prompt, images)
                value = parse(text) if parse is not None else None
            except LLMError as exc:
                last = LLMError(self.scrub(str(exc)), exc.retryable, exc.kind, attempt)
                if not exc.retryable or attempt > self.max_retries:
                    break
                logger.info("%s attempt %d failed (%s); retrying in %.1fs", self.identity, attempt, last, delay)
                self._sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            return Reply(text, value, attempt)
        assert last is not None
        logger.warning("%s failed after %d attempt(s): %s", self.identity, last.attempts, last)
        raise last

    def generate(self, prompt: str, images: Sequence[Image.Image] = ()) -> str:
        """The model's text reply to ``prompt`` with ``images`` attached (the :class:`VLMClient` call).

        With a ``cache_dir``, a reply already cached for the same provider, model, temperature,
        max_tokens, prompt and image pixels is returned without a request; a new one is cached.

        Raises:
            LLMError: the request failed after the retries (``kind`` names the failure; no key in it).
        """
        key = None
        if self.cache is not None:
            key = request_key("generate", self.identity, self.temperature, self.max_tokens, prompt, *images)
            record = self.cache.get(key, self._check_entry)
            if record is not None:
                return record["reply"]
        reply = self.call(prompt, images)
        if key is not None:
            self.cache.put(key, {"model": self.identity, "reply": self.scrub(reply.text)})
        return reply.text

    def _check_entry(self, record: dict) -> str | None:
        if record.get("model") != self.identity:
            return "written for another model"
        if not isinstance(record.get("reply"), str):
            return "no text reply"
        return None


class OpenAIClient(LLMClient):
    """A model behind the OpenAI chat-completions API (OpenAI or any compatible server).

    Args:
        model: model name as the server knows it (``"gpt-4o"``, ``"Qwen/Qwen2.5-VL-7B-Instruct"``).
        base_url: server URL (``"http://127.0.0.1:8000/v1"`` for a local vLLM); ``None``: OpenAI.
        api_key: the key; ``None``: env ``OPENAI_API_KEY``, or ``"EMPTY"`` when ``base_url`` is
            given (local servers usually take any key).
        **kwargs: :class:`LLMClient` settings (``timeout``, ``max_retries``, ``backoff``,
            ``temperature``, ``max_tokens``, ``cache_dir``...).

    Raises:
        ValueError: no key given or found for the OpenAI API itself (the message names the
            environment variable, never a key), or a bad setting.
    """

    provider = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, **kwargs: Any):
        import openai  # noqa: F401  (a missing SDK fails here, not at the first request)

        key = find_api_key("openai", api_key) or ("EMPTY" if base_url else None)
        if not key:
            raise ValueError("no OpenAI API key: set OPENAI_API_KEY or pass api_key (or base_url for a local server)")
        super().__init__(model, key, **kwargs)
        self.base_url = base_url
        self._sdk_client = self._make_sdk_client()

    def _make_sdk_client(self) -> Any:
        from openai import OpenAI

        # max_retries=0: the retries are LLMClient.call's (backoff, unparseable replies, one loop).
        return OpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIClient(model={self.model!r}, base_url={self.base_url!r})"

    def _request(self, prompt: str, images: Sequence[Image.Image]) -> str:
        import openai

        content: list[dict] | str = prompt  # text only: a plain string, as every compatible server takes
        if images:
            content = [{"type": "text", "text": prompt}]
            content += [{"type": "image_url", "image_url": {"url": image_to_data_url(im)}} for im in images]
        try:
            resp = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": content}],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}", retryable=True, kind=type(exc).__name__) from exc
        except openai.APIStatusError as exc:
            code = exc.status_code
            raise LLMError(f"HTTP {code} from the server", retryable=code in _RETRYABLE_STATUS or code >= 500,
                           kind=f"HTTP {code}") from exc
        except Exception as exc:  # a 200 with an unparseable body, a validation error...
            raise LLMError(f"unreadable response from the server ({type(exc).__name__})", retryable=True,
                           kind="unreadable response") from exc
        try:
            text = resp.choices[0].message.content
        except Exception as exc:  # a body of the wrong shape: a list, a string, choices=5, no choices...
            raise LLMError(f"response has no message ({type(exc).__name__})", retryable=True,
                           kind="unreadable response") from exc
        if text is None:
            return ""
        if not isinstance(text, str):
            raise LLMError(f"reply is {type(text).__name__}, not text", retryable=True, kind="bad reply")
        return text


class GeminiClient(LLMClient):
    """A model behind the Gemini API (``google-genai``), the paper's Gemini-2.5-flash by default.

    Args:
        model: Gemini model name.
        api_key: the key; ``None``: env ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``.
        base_url: optional API endpoint (a proxy or a test server).
        **kwargs: :class:`LLMClient` settings (``timeout`` in seconds, converted to the milliseconds
            ``google-genai`` takes; ``max_retries``...; the SDK's own retry is one attempt).

    Raises:
        ValueError: no key given or found (names the variables, never a key), or a bad setting.
    """

    provider = "gemini"

    def __init__(self, model: str = DEFAULT_MODELS["gemini"], api_key: str | None = None,
                 base_url: str | None = None, **kwargs: Any):
        from google.genai import types

        key = find_api_key("gemini", api_key)
        if not key:
            raise ValueError("no Gemini API key: set GEMINI_API_KEY or GOOGLE_API_KEY, or pass api_key")
        super().__init__(model, key, **kwargs)
        self.base_url = base_url
        self.http_options = types.HttpOptions(
            timeout=max(1, round(self.timeout * 1000)), base_url=base_url,
            retry_options=types.HttpRetryOptions(attempts=1),  # the retries are LLMClient.call's
        )
        self._sdk_client = self._make_sdk_client()

    def _make_sdk_client(self) -> Any:
        from google import genai

        return genai.Client(api_key=self._api_key, http_options=self.http_options)

    def __repr__(self) -> str:
        return f"GeminiClient(model={self.model!r})"

    def _request(self, prompt: str, images: Sequence[Image.Image]) -> str:
        from google.genai import errors as genai_errors
        from google.genai import types

        try:
            resp = self._client.models.generate_content(
                model=self.model,
                contents=[prompt, *[im.convert("RGB") for im in images]],
                config=types.GenerateContentConfig(temperature=self.temperature, max_output_tokens=self.max_tokens),
            )
        except genai_errors.APIError as exc:
            code = getattr(exc, "code", 0)
            code = code if isinstance(code, int) else 0
            raise LLMError(f"HTTP {code} from the Gemini server", retryable=code in _RETRYABLE_STATUS or code >= 500,
                           kind=f"HTTP {code}") from exc
        except Exception as exc:  # httpx timeouts / connection errors / unreadable bodies
            raise LLMError(f"{type(exc).__name__}: {exc}", retryable=True, kind=type(exc).__name__) from exc
        try:
            text = resp.text
        except Exception as exc:
            raise LLMError(f"response has no text ({type(exc).__name__})", retryable=True,
                           kind="unreadable response") from exc
        return text if isinstance(text, str) else ""


def make_client(provider: str, model: str | None = None, base_url: str | None = None, **kwargs: Any) -> LLMClient:
    """A client by provider name (the CLI's ``--pu-provider`` / ``--pu-model`` / ``--pu-base-url``).

    Args:
        provider: ``"openai"`` (also OpenAI-compatible servers via ``base_url``) or ``"gemini"``.
        model: model name; ``None``: :data:`DEFAULT_MODELS` of the provider.
        base_url: OpenAI-compatible server URL (``"openai"`` only).
        **kwargs: passed to the client class (``api_key``, ``timeout`` in seconds, ``max_retries``,
            ``backoff``, ``temperature``, ``max_tokens``, ``cache_dir``).

    Raises:
        ValueError: unknown provider, ``base_url`` with ``"gemini"``, no API key, or a bad setting.
    """
    if provider == "openai":
        return OpenAIClient(model or DEFAULT_MODELS["openai"], base_url=base_url, **kwargs)
    if provider == "gemini":
        if base_url:
            raise ValueError("base_url is for OpenAI-compatible servers; the gemini provider does not take one")
        return GeminiClient(model or DEFAULT_MODELS["gemini"], **kwargs)
    raise ValueError(f"unknown VLM provider {provider!r}; expected one of {PROVIDERS}")


# ------------------------------------------------------------------------------------------ judge

JUDGE_PROMPTS = {
    1: """You are grading an answer to a question about one panel of a comic page.
Question: {question}
Reference answer: {reference}
Model answer: {prediction}

The model answer is correct if it states the same facts as the reference answer (wording may
differ; extra correct detail is fine; a contradiction or a missing key fact is incorrect).
Reply with only a JSON object: {{"correct": true}} or {{"correct": false}}""",
}
"""The judge prompts by version (method.md section 3: Panel Understanding is scored by an LLM judge;
the paper does not publish its judge prompt). A new wording gets a new version, so that cached
verdicts of the old one are not reused."""

PROMPT_VERSION = max(JUDGE_PROMPTS)
JUDGE_PROMPT = JUDGE_PROMPTS[PROMPT_VERSION]

DEFAULT_JUDGE_MODELS = {"openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}
"""Default judge model per provider. method.md does not name the paper's judge model; ``gpt-4o-mini``
(a cheap, deterministic-at-temperature-0 grader) is used for evaluation and training alike."""

MAX_REPLY_CHARS = 4096
"""Longest judge reply read as a verdict (the requested one is ~20 characters)."""

VERDICT_EXTRA_KEYS = frozenset({"reason", "explanation"})
"""Keys a verdict object may carry besides ``"correct"`` (string values only)."""

_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*)\n[ \t]*```|```(?:json|JSON)?[ \t]*(\{.*\})[ \t]*```", re.DOTALL)


class JudgeError(LLMError):
    """A judge request or reply failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool, kind: str = "bad reply", attempts: int = 0):
        super().__init__(message, retryable, kind, attempts)


JUDGE_ENV = {
    "provider": "AI4VA_FG_JUDGE_PROVIDER", "model": "AI4VA_FG_JUDGE_MODEL", "base_url": "AI4VA_FG_JUDGE_BASE_URL",
    "api_key": "AI4VA_FG_JUDGE_API_KEY", "cache_dir": "AI4VA_FG_JUDGE_CACHE", "max_retries": "AI4VA_FG_JUDGE_MAX_RETRIES",
    "backoff": "AI4VA_FG_JUDGE_BACKOFF", "timeout": "AI4VA_FG_JUDGE_TIMEOUT",
}
"""The environment variable of each :class:`JudgeSettings` field that has one (they also work from an
lmms-eval ``--config`` file's ``env:`` block, which masks values whose name contains KEY)."""


@dataclass(frozen=True)
class JudgeSettings:
    """Where and how to judge open answers: the one settings object of evaluation and training.

    Attributes:
        provider: ``"openai"`` (also OpenAI-compatible servers via ``base_url``) or ``"gemini"``.
        model: judge model; ``None``: :data:`DEFAULT_JUDGE_MODELS` of the provider.
        base_url: server URL, e.g. ``http://localhost:8000/v1`` for a local vLLM.
        api_key: the key; ``None``: ``OPENAI_API_KEY`` / ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``
            when the client is built; ``EMPTY`` for servers without auth. Never in ``repr``.
        temperature: sampling temperature of the judge (0: deterministic verdicts).
        max_tokens: cap on the verdict length in tokens.
        prompt_version: key of :data:`JUDGE_PROMPTS`.
        cache_dir: verdict cache folder.
        max_retries, backoff, max_backoff, timeout: see :class:`LLMClient` (seconds).

    Raises:
        ValueError: unknown ``provider`` or ``prompt_version``; ``max_retries`` not an integer in
            0..100; ``backoff`` / ``max_backoff`` / ``temperature`` NaN, infinite or negative;
            ``timeout`` NaN, infinite or not positive; ``max_tokens`` not a positive integer; a
            non-string ``model`` / ``base_url`` / ``api_key`` or a non-path ``cache_dir``. The message
            names the setting (``judge setting timeout=...``).
    """

    provider: str = "openai"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.0
    max_tokens: int = 64
    prompt_version: int = PROMPT_VERSION
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
        _check_setting("judge setting temperature", self.temperature)
        _check_setting("judge setting max_tokens", self.max_tokens, integer=True, positive=True)
        if self.prompt_version not in JUDGE_PROMPTS:
            raise ValueError(f"judge setting prompt_version={self.prompt_version!r} is not one of {sorted(JUDGE_PROMPTS)}")
        for name in ("model", "base_url", "api_key"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"judge setting {name} must be a string, got {type(value).__name__}")
        if not isinstance(self.cache_dir, (str, os.PathLike)):
            raise ValueError(f"judge setting cache_dir must be a path, got {type(self.cache_dir).__name__}")  # noqa: TRY004
        object.__setattr__(self, "model", self.model or DEFAULT_JUDGE_MODELS[self.provider])

    def __repr__(self) -> str:  # never show the key
        key = "set" if find_api_key(self.provider, self.api_key) else "missing"
        return (f"JudgeSettings(provider={self.provider!r}, model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key=<{key}>, temperature={self.temperature}, prompt_version={self.prompt_version}, "
                f"cache_dir={self.cache_dir!r}, max_retries={self.max_retries}, backoff={self.backoff}, "
                f"timeout={self.timeout})")

    @property
    def identity(self) -> str:
        """``provider:model``, as stored in the verdict cache."""
        return f"{self.provider}:{self.model}"

    @property
    def prompt(self) -> str:
        """The judge prompt template of :attr:`prompt_version`."""
        return JUDGE_PROMPTS[self.prompt_version]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> JudgeSettings:
        """Settings from the ``AI4VA_FG_JUDGE_*`` variables (:data:`JUDGE_ENV`), then ``overrides``.

        Args:
            environ: the variables (default ``os.environ``); empty values count as unset.
            **overrides: field values that win over the environment (``None`` values are ignored):
                how a training config (``RARLConfig.judge_*``) names its judge.

        Raises:
            ValueError: an unknown provider, a numeric variable that is not a number or out of range
                (the message names the variable), an unknown override or a bad override value.
        """
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown judge setting(s) {unknown}; expected some of {sorted(known)}")

        def num(name: str, default: float, kind: type = float, positive: bool = False, upper: float | None = None):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a number") from exc
            _check_setting(name, value, integer=kind is int, positive=positive, upper=upper)
            return value

        provider = env.get(JUDGE_ENV["provider"]) or "openai"
        if provider not in PROVIDERS:
            raise ValueError(f"{JUDGE_ENV['provider']}={provider!r} is not one of {', '.join(PROVIDERS)}")
        values: dict[str, Any] = {
            "provider": provider,
            "model": env.get(JUDGE_ENV["model"]) or None,
            "base_url": env.get(JUDGE_ENV["base_url"]) or None,
            "api_key": env.get(JUDGE_ENV["api_key"]) or None,
            "cache_dir": env.get(JUDGE_ENV["cache_dir"]) or cls.cache_dir,
            "max_retries": num(JUDGE_ENV["max_retries"], cls.max_retries, int, upper=MAX_RETRIES_LIMIT),
            "backoff": num(JUDGE_ENV["backoff"], cls.backoff),
            "timeout": num(JUDGE_ENV["timeout"], cls.timeout, positive=True),
        }
        if overrides.get("provider") and overrides["provider"] != provider and not overrides.get("model"):
            values["model"] = None  # another provider: its default model, not the env's
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> JudgeSettings:
        """A copy with the non-``None`` ``overrides`` applied (validated again)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


DEFAULT_JUDGE = JudgeSettings()
"""The judge of evaluation and training unless configured otherwise (``openai`` / ``gpt-4o-mini``,
temperature 0, prompt version :data:`PROMPT_VERSION`)."""


def parse_verdict(text: object) -> bool:
    """Read the verdict from the judge's reply; only a well-formed one counts.

    Accepted (nothing else): after stripping surrounding whitespace and at most one Markdown code
    fence enclosing the whole reply (```` ```json\\n...\\n``` ````, ```` ```\\n...\\n``` ```` or on one
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


@dataclass
class Verdict:
    """A judgement: ``correct`` is ``None`` when the judge failed (``error`` says why, secret-free)."""

    correct: bool | None
    error: str | None = None
    cached: bool = False
    attempts: int = 0


class Judge:
    """The LLM judge of open answers (Panel Understanding), shared by lmms-eval and TRL training.

    ``judge(question, reference, prediction) -> bool`` (:meth:`__call__`) raises :class:`JudgeError`
    when no verdict could be had; :meth:`judge` returns a :class:`Verdict` and never raises (the
    evaluation counts failures in ``judge_failure``).

    Every well-formed verdict is cached on disk, one JSON file per (judge model, temperature,
    max_tokens, prompt version, question, reference, answer), written atomically, and kept in memory
    (the accuracy reward and both correctness-conditioned tool rewards judge the same completion: one
    request serves all). A cache entry counts only if it is a UTF-8 JSON object of this judge and
    prompt version whose stored reply is itself a well-formed verdict with the same value; anything
    else is logged, deleted and judged again. A failed judgement is never cached. Thread-safe.

    Args:
        settings: :class:`JudgeSettings` (default :data:`DEFAULT_JUDGE`).
        sleep: the delay function between retries (tests pass a fake one).
        client: optional model to ask instead of the one ``settings`` names: an :class:`LLMClient`, or
            any :class:`VLMClient` (``generate(prompt, images) -> str``; one attempt per judgement, a
            failure raised by it is a failed judgement). Verdicts of such a client are kept in memory
            only, never in the disk cache (whose entries name the settings' model).

    Raises:
        TypeError: ``settings`` is not a :class:`JudgeSettings`, or ``client`` has no ``generate``.
    """

    MEMO_SIZE = 65536

    def __init__(self, settings: JudgeSettings | None = None, sleep: Callable[[float], None] = time.sleep,
                 client: Any = None):
        settings = DEFAULT_JUDGE if settings is None else settings
        if not isinstance(settings, JudgeSettings):
            raise TypeError(f"Judge needs JudgeSettings, got {type(settings).__name__}")
        if client is not None and not callable(getattr(client, "generate", None)):
            raise TypeError(f"Judge client must have generate(prompt, images), got {type(client).__name__}")
        self.settings = settings
        self.cache: DiskCache | None = DiskCache(settings.cache_dir, [settings.api_key]) if client is None else None
        self._sleep = sleep
        self._client: Any = client if client is None or isinstance(client, LLMClient) else _GenerateOnly(client)
        self._lock = threading.Lock()
        self._memo: dict[str, bool] = {}

    @property
    def config(self) -> JudgeSettings:
        """Alias of :attr:`settings`."""
        return self.settings

    @property
    def requests(self) -> int:
        """Requests sent so far."""
        return getattr(self._client, "requests", 0)

    @property
    def corrupt_cache_entries(self) -> int:
        """Cache files found invalid (logged, deleted, judged again)."""
        return self.cache.corrupt if self.cache is not None else 0

    def __repr__(self) -> str:
        return f"Judge({self.settings!r})"

    def __getstate__(self) -> dict:
        """Picklable (data-loader / build workers): the lock is made again on unpickling."""
        state = self.__dict__.copy()
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def scrub(self, text: object) -> str:
        """``text`` with the API key and key-shaped strings redacted (:func:`scrub`)."""
        return scrub(text, [self.settings.api_key])

    def cache_key(self, question: str, reference: str, prediction: str) -> str:
        """SHA-256 of the judge identity, its sampling settings, the prompt version and the three texts."""
        s = self.settings
        return request_key("judge", s.prompt_version, s.provider, s.model, s.temperature, s.max_tokens,
                           question, reference, prediction)

    def _cache_path(self, key: str) -> Path:
        if self.cache is None:
            raise ValueError("this judge has no disk cache (it was given a client)")
        return self.cache.path(key)

    def _check_entry(self, record: dict) -> str | None:
        correct, reply = record.get("correct"), record.get("reply")
        if not isinstance(correct, bool):
            return 'no boolean "correct"'
        if record.get("judge") != self.settings.identity or record.get("prompt_version") != self.settings.prompt_version:
            return "written for another judge or prompt version"
        try:
            stored = parse_verdict(reply)
        except JudgeError:
            return "its stored reply is not a well-formed verdict"
        if stored is not correct:
            return "its stored reply disagrees with its verdict"
        return None

    def _get_client(self) -> LLMClient | _GenerateOnly:
        with self._lock:
            if self._client is None:
                s = self.settings
                key = find_api_key(s.provider, s.api_key)
                if not key and not s.base_url:
                    raise JudgeError(
                        f"no API key for the {s.provider} judge: set {JUDGE_ENV['api_key']} "
                        f"(or {' / '.join(KEY_ENV[s.provider])}), or {JUDGE_ENV['base_url']} "
                        "for a local OpenAI-compatible server", retryable=False, kind="no API key", attempts=1)
                common = {"api_key": key or "EMPTY", "timeout": s.timeout, "max_retries": s.max_retries,
                          "backoff": s.backoff, "max_backoff": s.max_backoff, "temperature": s.temperature,
                          "max_tokens": s.max_tokens, "sleep": self._sleep}
                try:
                    if s.provider == "openai":
                        self._client = OpenAIClient(s.model, base_url=s.base_url, **common)
                    else:
                        self._client = GeminiClient(s.model, base_url=s.base_url, **common)
                except ImportError as exc:
                    raise JudgeError(f"the {s.provider} judge client is not installed ({exc})", retryable=False,
                                     kind="not installed", attempts=1) from exc
            return self._client

    def judge(self, question: object, reference: object, prediction: object) -> Verdict:
        """Judge one answer; never raises.

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
        except LLMError as exc:
            error = self.scrub(str(exc))
            logger.warning("judge failed after %d attempt(s): %s (sample left unjudged, not cached)",
                           exc.attempts, error)
            return Verdict(correct=None, error=error, attempts=exc.attempts)
        except Exception as exc:  # noqa: BLE001  (last resort: a judge problem must not kill a run)
            error = self.scrub(f"{type(exc).__name__}: {exc}")
            logger.warning("judge failed unexpectedly: %s (sample left unjudged, not cached)", error)
            return Verdict(correct=None, error=error)

    def __call__(self, question: object, reference: object, prediction: object) -> bool:
        """``True`` when the judge says ``prediction`` answers ``question`` like ``reference``.

        Raises:
            JudgeError: no verdict after the retries (or no key / client); the message is secret-free.
        """
        verdict = self.judge(question, reference, prediction)
        if verdict.correct is None:
            raise JudgeError(verdict.error or "no verdict", retryable=False, kind="no verdict", attempts=verdict.attempts)
        return verdict.correct

    def _judge(self, question: object, reference: object, prediction: object) -> Verdict:
        if prediction is None or not str(prediction).strip():
            return Verdict(correct=False)
        question, reference, prediction = (v if isinstance(v, str) else str(v) for v in (question, reference, prediction))
        key = self.cache_key(question, reference, prediction)
        if key in self._memo:
            return Verdict(correct=self._memo[key], cached=True)
        record = self.cache.get(key, self._check_entry) if self.cache is not None else None
        if record is not None:
            self._remember(key, record["correct"])
            return Verdict(correct=record["correct"], cached=True)
        prompt = self.settings.prompt.format(question=question, reference=reference, prediction=prediction)
        reply = self._get_client().call(prompt, (), parse=parse_verdict)
        if self.cache is not None:
            self.cache.put(key, {"correct": reply.value, "judge": self.settings.identity,
                                 "prompt_version": self.settings.prompt_version, "reply": self.scrub(reply.text)})
        self._remember(key, reply.value)
        return Verdict(correct=reply.value, attempts=reply.attempts)

    def _remember(self, key: str, correct: bool) -> None:
        with self._lock:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = correct


class _GenerateOnly:
    """A :class:`VLMClient` seen through :meth:`LLMClient.call`: one attempt, any exception of
    ``generate`` (or of ``parse``) is a non-retried :class:`LLMError` naming its type."""

    def __init__(self, client: Any):
        self.client = client
        self.requests = 0

    def call(self, prompt: str, images: Sequence[Image.Image] = (), parse: Callable[[str], Any] | None = None) -> Reply:
        self.requests += 1
        try:
            text = self.client.generate(prompt, list(images))
            value = parse(text) if parse is not None else None
        except LLMError as exc:
            raise LLMError(str(exc), retryable=False, kind=exc.kind, attempts=1) from exc
        except Exception as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}", retryable=False, kind=type(exc).__name__, attempts=1) from exc
        return Reply(text, value, 1)
