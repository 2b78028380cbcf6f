"""AI4VA-FG evaluation with lmms-eval (method.md section 3).

* ``ai4va_fg/``: the lmms-eval task folder (groups ``ai4va_fg``, ``ai4va_fg_think``,
  ``ai4va_fg_tool``, ``ai4va_fg_zoom``); pass it with ``--include_path "$(python -m lmms_eval_tasks.path)"``;
* :mod:`.path`: the include path, and task overlays for another ``dataset_path``;
* :mod:`.run_eval`: ``ai4va-fg eval``, lmms-eval with the overlay on the include path and a non-zero
  exit code when a task is missing or an evaluation fails;
* :mod:`.answers`, :mod:`.scoring`, :mod:`.zoom_stats`, :mod:`.judge`, :mod:`.trajectory`: answer
  extraction, per-sample metrics, crop IoU statistics, the Panel Understanding LLM judge, the agent's
  output record;
* :mod:`.models`: the ``ai4va_zoom`` multi-turn zoom agent (``lmms_eval.models`` entry point);
* :mod:`.report`: ``ai4va-fg report`` tables and chart.
"""
