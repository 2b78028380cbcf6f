"""The Qwen2.5-VL chat template with tool calling used by AI4VA-FG tool mode and RARL.

TRL's stock Qwen2.5-VL template has no tools, and the Qwen2/2.5-VL templates drop images inside
``tool``-role messages (trl #5663), so a crop returned by ``image_zoom_in_tool`` would never reach
the model. ``templates/qwen2_5_vl_tool.jinja`` fixes both (method.md section 3: Qwen/Hermes tool
calling; section 4: multi-turn crop rollouts):

* tools in the system prompt inside ``<tools></tools>``;
* assistant tool calls as ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``;
* tool results inside ``<tool_response></tool_response>`` in a user turn, image blocks rendered as
  ``<|vision_start|><|image_pad|><|vision_end|>`` in every role (so the number of image pads equals
  the number of images the processor receives);
* ``{% generation %}`` markers for assistant-only loss, and prefix preservation for multi-turn GRPO.

Install it with :func:`install_tool_chat_template` (``recipes/make_tiny_model.py`` and the training
recipes do); :data:`RESPONSE_TEMPLATE` tells ``tokenizer.parse_response`` how to split a completion
into content and tool calls (TRL's ``add_response_schema`` only knows its own templates).
"""

from __future__ import annotations

import copy
from importlib import resources

QWEN2_5_VL_TOOL_TEMPLATE: str = (
    resources.files(__package__).joinpath("templates/qwen2_5_vl_tool.jinja").read_text(encoding="utf-8")
)
"""The Jinja source of the Qwen2.5-VL tool-calling chat template."""

RESPONSE_TEMPLATE: dict = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {
            "open": "<tool_call>",
            "close_pattern": r"</tool_call>\s*",
            "repeats": True,
            "content": "json",
            "transform": {"type": "function", "function": "{content}"},
        },
        "content": {
            "close_pattern": r"<\|im_end\|>\s*",
            "content": "text",
        },
    },
}
"""transformers (>= 5.13) ``response_template`` for this chat template.

Unlike TRL's Qwen3 template it has no ``reasoning_content`` field: ``<think>``/``<answer>`` stay in
``content`` verbatim, so the format reward (method.md section 4) sees the text the model wrote.
"""


def tool_chat_template() -> str:
    """Return the Jinja source of the Qwen2.5-VL tool-calling chat template (see the module doc)."""
    return QWEN2_5_VL_TOOL_TEMPLATE


def install_tool_chat_template(processing_class):
    """Set the tool chat template and its response template on a processor or tokenizer, in place.

    Args:
        processing_class: a ``Qwen2_5_VLProcessor`` (or any ``ProcessorMixin``) or a tokenizer.

    Returns:
        The same object, with ``chat_template`` set on it (and on its tokenizer) and
        ``response_template`` set on the tokenizer, so TRL's ``parse_response`` extracts
        ``<tool_call>`` blocks.
    """
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    processing_class.chat_template = QWEN2_5_VL_TOOL_TEMPLATE
    tokenizer.chat_template = QWEN2_5_VL_TOOL_TEMPLATE
    tokenizer.response_template = copy.deepcopy(RESPONSE_TEMPLATE)
    return processing_class
