"""The lmms-eval side of the Panel Understanding LLM judge (method.md sections 2-3): a thin adapter.

The judge itself (prompt, verdict parser, settings, retries, cache, key scrubbing) is
:mod:`ai4va_fg_dataset.core.llm`, shared with the TRL training reward: :class:`JudgeSettings`,
:class:`Judge`, :func:`parse_verdict`. This module only builds the process-wide judge of an
evaluation from the environment (:func:`get_judge`).

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

Training reads the same variables (``recipes/rarl.py``), with ``RARLConfig.judge_provider`` /
``judge_model`` / ``judge_base_url`` overriding them by name, so both score with the same judge
unless the training config says otherwise.
"""

from __future__ import annotations

import logging
import threading

from ai4va_fg_dataset.core.llm import (
    JUDGE_PROMPT,
    PROMPT_VERSION,
    REDACTED,
    Judge,
    JudgeError,
    JudgeSettings,
    Verdict,
    parse_verdict,
    scrub,
)

__all__ = ["JUDGE_PROMPT", "PROMPT_VERSION", "REDACTED", "Judge", "JudgeConfig", "JudgeError", "JudgeSettings",
           "Verdict", "get_judge", "parse_verdict", "scrub"]

logger = logging.getLogger(__name__)

JudgeConfig = JudgeSettings
"""The former name of :class:`~ai4va_fg_dataset.core.llm.JudgeSettings` (kept for old imports)."""

_JUDGE: Judge | None = None
_JUDGE_LOCK = threading.Lock()


def get_judge() -> Judge:
    """The process-wide judge built from the ``AI4VA_FG_JUDGE_*`` variables (created on first use).

    Raises:
        ValueError: a bad setting (:meth:`JudgeSettings.from_env`; the message names the variable).
    """
    global _JUDGE
    with _JUDGE_LOCK:
        if _JUDGE is None:
            settings = JudgeSettings.from_env()
            logger.info("Panel Understanding judge: %r", settings)
            _JUDGE = Judge(settings)
        return _JUDGE
