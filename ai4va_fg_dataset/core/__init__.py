"""The shared runtime of AI4VA-FG: what the builder, the evaluation and the training all use.

Nothing in here knows about annotations, pages, tasks or builds, and nothing in here imports the
rest of :mod:`ai4va_fg_dataset`, :mod:`lmms_eval_tasks` or :mod:`trl_rarl` (a test walks the imports:
``tests/test_import_layers.py``). Modules:

=================== ==============================================================================
``geometry``        boxes (``bbox_2d`` = ``[x1, y1, x2, y2]`` in pixels), IoU, matching, crops
``tool_calls``      the one bounded parser of ``<tool_call>`` blocks and validator of zoom arguments
``zoom_tool``       the ``image_zoom_in_tool`` executor (crop, clamp, minimum size, call records)
``prompts``         prompt modes, choice letters, the zoom tool's JSON schema
``chat_template``   the Qwen2.5-VL tool chat template; ``vision_frame``: the frame the model sees
``images``          the one image codec (encode rows' images, decode them back)
``scoring``         answer extraction and scoring per answer type: the metric *and* the reward
``llm``             the one LLM client layer (OpenAI-compatible, Gemini): retries, timeouts, cache
``tags``            the linear scanner of ``<answer>``/``<think>`` tags
``atomic_dir``      atomic file and folder writes
=================== ==============================================================================
"""
