"""Region-Aware RL (RARL) for AI4VA-FG on TRL's GRPOTrainer (method.md sections 4-5).

Modules: ``chat_template`` (Qwen2.5-VL tool-calling template), ``config`` (``RARLConfig``),
``environment`` (the zoom tool environment for ``environment_factory``), ``rewards`` (format,
accuracy, tool count, tool IoU, grounding), ``schedule`` (warm start and curriculum),
``trainer`` (``RARLTrainer``), ``data`` (dataset rows -> conversational prompts).
Heavy imports (torch, trl) happen in the submodules, not here.
"""

from .chat_template import QWEN2_5_VL_TOOL_TEMPLATE, install_tool_chat_template, tool_chat_template

__all__ = ["QWEN2_5_VL_TOOL_TEMPLATE", "install_tool_chat_template", "tool_chat_template"]
