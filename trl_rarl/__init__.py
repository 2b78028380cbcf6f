"""Region-Aware RL (RARL) for AI4VA-FG on TRL's GRPOTrainer (method.md sections 4-5).

Modules: ``config`` (``RARLConfig``), ``environment`` (the zoom tool environment for
``environment_factory``), ``rewards`` (format, accuracy, tool count, tool IoU, grounding),
``metrics`` (zoom metrics), ``schedule`` (warm start and curriculum), ``trainer`` (``RARLTrainer``),
``data`` (dataset rows -> conversational prompts), ``recipe_setup`` (shared recipe arguments).
The Qwen2.5-VL tool-calling chat template and the model's vision frame, which evaluation uses too,
live in ``ai4va_fg_dataset.core.chat_template`` and ``ai4va_fg_dataset.core.vision_frame``.
Heavy imports (torch, trl) happen in the submodules, not here.
"""
