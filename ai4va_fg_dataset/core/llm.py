"""Pluggable VLM clients: Panel Understanding generation (method.md section 2) and LLM judging.

The paper captions panels and writes their QA pairs with Gemini-2.5-flash. Any model behind one of
two APIs can do it here:

* :class:`OpenAIClient`: the official ``openai`` package, ``chat.completions`` with base64
  ``image_url`` parts; works with OpenAI and any OpenAI-compatible server (a local vLLM
  ``vllm serve``, LM Studio, ...) through ``base_url``;
* :class:`GeminiClient`: the official ``google-genai`` package.

Both satisfy the :class:`VLMClient` protocol (``generate(prompt, images) -> str``), which is all the
generators and the lmms-eval judge use; tests plug in a local HTTP server or a fake. API keys come
from arguments or the environment and are never logged or put in error messages.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from PIL import Image

logger = logging.getLogger(__name__)

PROVIDERS = ("openai", "gemini")
DEFAULT_MODELS = {"openai": "gpt-4o", "gemini": "gemini-2.5-flash"}

DEFAULT_TIMEOUT = 60.0
"""Seconds one request may take (CLI ``--pu-timeout``)."""

DEFAULT_RETRIES = 3
"""Retries after a failed or timed-out request (CLI ``--pu-retries``): a server that never answers
costs up to ``(DEFAULT_RETRIES + 1) * DEFAULT_TIMEOUT`` seconds plus back-off per call (about 245 s
with the defaults); lower both for a flaky endpoint."""


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


class OpenAIClient:
    """A VLM behind the OpenAI chat-completions API (OpenAI or any compatible server).

    Args:
        model: model name as the server knows it (``"gpt-4o"``, ``"Qwen/Qwen2.5-VL-7B-Instruct"``).
        base_url: server URL (``"http://127.0.0.1:8000/v1"`` for a local vLLM); ``None``: OpenAI.
        api_key: the key; ``None``: env ``OPENAI_API_KEY``, or ``"EMPTY"`` when ``base_url`` is
            given (local servers usually take any key).
        timeout: seconds per request (connect, read and write; > 0).
        max_retries: retries of the ``openai`` client on connection errors, timeouts, 429 and 5xx
            (>= 0; 0: one attempt).
        temperature: sampling temperature (0: as deterministic as the server allows).
        max_tokens: cap on the reply length.

    Raises:
        ValueError: no key given or found for the OpenAI API itself (the message names the
            environment variable, never a key), or a bad ``timeout`` / ``max_retries``.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_RETRIES,
        temperature: float = 0.0,
        max_tokens: int = 2048,
    ):
        from openai import OpenAI

        _check_limits(timeout, max_retries)
        key = api_key or os.environ.get("OPENAI_API_KEY") or ("EMPTY" if base_url else None)
        if not key:
            raise ValueError("no OpenAI API key: set OPENAI_API_KEY or pass api_key (or base_url for a local server)")
        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._client = OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=max_retries)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIClient(model={self.model!r}, base_url={self.base_url!r})"

    def generate(self, prompt: str, images: Sequence[Image.Image]) -> str:
        """One chat completion: a user message with the prompt text and the images.

        Returns:
            The reply text (``""`` when the server sends no content).

        Raises:
            openai.OpenAIError: the request failed after retries (status and message from the
                server; no key in it).
        """
        content: list[dict] = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": image_to_data_url(im)}} for im in images]
        resp = self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": content}],
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        if not resp.choices:
            return ""
        return resp.choices[0].message.content or ""


class GeminiClient:
    """A VLM behind the Gemini API (``google-genai``), the paper's Gemini-2.5-flash by default.

    Args:
        model: Gemini model name.
        api_key: the key; ``None``: env ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``.
        temperature: sampling temperature.
        timeout: seconds per request (> 0; ``google-genai`` takes milliseconds, converted here).
        max_retries: retries after a failed request (>= 0; ``google-genai``'s retry ``attempts``
            is ``max_retries + 1``).

    Raises:
        ValueError: no key given or found (names the variables, never a key), or a bad
            ``timeout`` / ``max_retries``.
    """

    def __init__(self, model: str = "gemini-2.5-flash", api_key: str | None = None, temperature: float = 0.0,
                 timeout: float = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_RETRIES):
        from google import genai
        from google.genai import types

        _check_limits(timeout, max_retries)
        key = api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if not key:
            raise ValueError("no Gemini API key: set GEMINI_API_KEY or GOOGLE_API_KEY, or pass api_key")
        self.model = model
        self.temperature = temperature
        self.http_options = types.HttpOptions(
            timeout=max(1, round(timeout * 1000)),
            retry_options=types.HttpRetryOptions(attempts=max_retries + 1),
        )
        self._client = genai.Client(api_key=key, http_options=self.http_options)

    def __repr__(self) -> str:
        return f"GeminiClient(model={self.model!r})"

    def generate(self, prompt: str, images: Sequence[Image.Image]) -> str:
        """One ``generate_content`` call with the prompt and the images (PIL images are accepted
        as content parts by ``google-genai``).

        Raises:
            google.genai.errors.APIError: the request failed.
        """
        from google.genai import types

        resp = self._client.models.generate_content(
            model=self.model,
            contents=[prompt, *[im.convert("RGB") for im in images]],
            config=types.GenerateContentConfig(temperature=self.temperature),
        )
        return resp.text or ""


def _check_limits(timeout: float, max_retries: int) -> None:
    """Raise ``ValueError`` unless ``timeout`` is a positive finite number of seconds and
    ``max_retries`` a whole number >= 0."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a whole number >= 0, got {max_retries!r}")


def make_client(provider: str, model: str | None = None, base_url: str | None = None, **kwargs) -> VLMClient:
    """A client by provider name (the CLI's ``--pu-provider`` / ``--pu-model`` / ``--pu-base-url``).

    Args:
        provider: ``"openai"`` (also OpenAI-compatible servers via ``base_url``) or ``"gemini"``.
        model: model name; ``None``: :data:`DEFAULT_MODELS` of the provider.
        base_url: OpenAI-compatible server URL (``"openai"`` only).
        **kwargs: passed to the client class (``api_key``, ``timeout`` in seconds, ``max_retries``...;
            both providers take ``timeout`` and ``max_retries``).

    Raises:
        ValueError: unknown provider, ``base_url`` with ``"gemini"``, no API key, or a bad
            ``timeout`` / ``max_retries``.
    """
    if provider == "openai":
        return OpenAIClient(model or DEFAULT_MODELS["openai"], base_url=base_url, **kwargs)
    if provider == "gemini":
        if base_url:
            raise ValueError("base_url is for OpenAI-compatible servers; the gemini provider does not take one")
        return GeminiClient(model or DEFAULT_MODELS["gemini"], **kwargs)
    raise ValueError(f"unknown VLM provider {provider!r}; expected one of {PROVIDERS}")
