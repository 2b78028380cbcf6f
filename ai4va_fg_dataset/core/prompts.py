"""Prompt modes and the zoom tool schema shared by evaluation and training (method.md section 3).

Three prompt modes:

* ``direct``: answer only, in ``<answer></answer>`` tags;
* ``think``: reasoning in ``<think></think>``, then ``<answer></answer>``;
* ``tool``: reasoning, optional ``image_zoom_in_tool`` calls in ``<tool_call></tool_call>``, then
  the answer: ``<think>...</think><tool_call>...</tool_call><think>...</think><answer>...</answer>``.
"""

from __future__ import annotations

import functools
from importlib import resources

import yaml

CHOICE_LETTERS = "ABCDEFGH"
"""Letters of multiple-choice options, in order (a row has at most 8 choices)."""

PROMPT_MODES = ("direct", "think", "tool")

DIRECT_SUFFIX = "Output only the final answer (choice) in <answer> </answer> tags."
THINK_SUFFIX = (
    "First think about the question step by step inside <think> </think> tags, then output only the "
    "final answer (choice) in <answer> </answer> tags."
)
TOOL_SUFFIX = (
    "Think inside <think> </think> tags. If a region of the image needs a closer look, call "
    "image_zoom_in_tool with its bbox_2d [x1, y1, x2, y2] inside <tool_call> </tool_call> tags; the "
    "crop is returned as a new image. When you are sure, output only the final answer (choice) in "
    "<answer> </answer> tags. Format: <think>...</think><tool_call>...</tool_call><think>...</think>"
    "<answer>...</answer>"
)
MODE_SUFFIX = {"direct": DIRECT_SUFFIX, "think": THINK_SUFFIX, "tool": TOOL_SUFFIX}


@functools.cache
def zoom_tool_schema() -> dict:
    """The ``image_zoom_in_tool`` function schema (OpenAI/Qwen tools format), from its YAML file."""
    text = resources.files(__package__).joinpath("tools/image_zoom_in_tool.yaml").read_text()
    return yaml.safe_load(text)


def build_prompt(question: str, choices: list[str] | None, mode: str = "direct") -> str:
    """The user text for one sample: question, options (``A. ...``) and the mode's instruction.

    Raises:
        ValueError: unknown ``mode`` (not one of :data:`PROMPT_MODES`).
    """
    if mode not in MODE_SUFFIX:
        raise ValueError(f"unknown prompt mode {mode!r}; expected one of {PROMPT_MODES}")
    parts = [question.strip()]
    if choices:
        parts.append("Options:\n" + format_choices(list(choices)))
    parts.append(MODE_SUFFIX[mode])
    return "\n".join(parts)


def format_choices(choices: list[str]) -> str:
    """Render options as ``"A. ...\\nB. ..."`` (the layout the prompts and lmms-eval use)."""
    return "\n".join(f"{CHOICE_LETTERS[i]}. {c}" for i, c in enumerate(choices))
