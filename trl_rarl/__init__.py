"""Region-Aware RL (RARL) for AI4VA-FG on TRL's GRPOTrainer (method.md sections 4-5).

Modules: ``config`` (``RARLConfig``), ``environment`` (the zoom tool environment for
``environment_factory``), ``rewards`` (format, accuracy, tool count, tool IoU, grounding),
``metrics`` (zoom metrics), ``schedule`` (warm start and curriculum), ``trainer`` (``RARLTrainer``),
``data`` (dataset rows -> conversational prompts), ``recipe_setup`` (shared recipe arguments).
The Qwen2.5-VL tool-calling chat template and the model's vision frame, which evaluation uses too,
live in ``ai4va_fg_dataset.core.chat_template`` and ``ai4va_fg_dataset.core.vision_frame``.
Heavy imports (torch, trl) happen in the submodules, not here.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"RARLConfig": "config", "RARLTrainer": "trainer", "rarl_reward_funcs": "rewards",
         "RARLSchedule": "schedule", "zoom_environment_factory": "environment"}
"""``from trl_rarl import RARLTrainer, RARLConfig`` works like ``from trl import GRPOTrainer``: the
submodule (and torch / trl) is imported on first access only."""

__all__ = ["RARLConfig", "RARLSchedule", "RARLTrainer", "rarl_reward_funcs", "zoom_environment_factory"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
