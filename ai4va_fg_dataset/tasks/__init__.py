"""The AI4VA-FG task generators (method.md section 2) and the generation loop.

What each task is lives in its declaration, :mod:`ai4va_fg_dataset.tasks.spec` (one
:class:`~ai4va_fg_dataset.tasks.spec.TaskSpec` per task, with its generator as a lazy
``"module:Class"`` reference); the generators are in ``tasks/<task>.py``. This package imports
nothing at import time: ``from ai4va_fg_dataset.tasks.spec import get_task`` (training, evaluation)
costs no generator import. The names below are loaded on first use (PEP 562).

:data:`GENERATORS` is one generator per registered task, built from the specs on first access; Panel
Understanding has no VLM client there (it skips every page with the reason "no VLM client configured
(--pu-provider)"); bind one with ``PanelUnderstandingGenerator(client=make_client(...))``.
"""

from __future__ import annotations

import importlib
from typing import Any

_FROM_BASE = (
    "TaskGenerator",
    "default_generators",
    "feasibility",
    "generate_samples",
    "make_generator",
    "page_rng",
    "sample_id",
)

__all__ = ["GENERATORS", *_FROM_BASE]  # noqa: PLE0604 - resolved lazily by __getattr__


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    if name == "GENERATORS":
        gens = importlib.import_module(f"{__name__}.base").default_generators()
        globals()["GENERATORS"] = gens
        return gens
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
