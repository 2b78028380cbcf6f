"""Per-sample scores of AI4VA-FG (method.md section 3), returned by the lmms-eval ``process_results``.

The answer is scored by :func:`ai4va_fg_dataset.core.scoring.score_answer`, the scorer the RARL/GRPO
accuracy reward and SFT-R filtering call too (one rule set; ``tests/test_scoring_table.py``). Every
sample gets:

* ``accuracy``: 1.0 when the answer read from the output is the GT (choice letter; number for
  Character Counting; the judge's verdict for Panel Understanding), else 0.0; an unparseable answer
  scores 0;
* ``parse_failure``: 1.0 when no answer could be read, else 0.0;
* ``mae`` (Character Counting): the absolute error ``|predicted - GT|`` of this sample (the task
  averages it into the mean absolute error with :func:`.zoom_stats.mean_skip_none`); ``None`` when
  unparseable, so left out of the MAE (those samples show in ``parse_failure``);
* ``judge_failure`` (Panel Understanding): 1.0 when the judge could not give a verdict after its
  retries (the sample then scores 0 and is not cached, so a re-run judges it again);
* the zoom statistics of :mod:`.zoom_stats` (``tool_calls``, ``zoom_iou``, ``zoom_iou_first``,
  ``zoom_iou_second``), computed from the agent's trajectory (:mod:`.trajectory`).

Each task's YAML lists the metrics it reports; lmms-eval ignores the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ai4va_fg_dataset.core.scoring import extract_open, score_answer

from . import zoom_stats
from .trajectory import loads


def _gt_boxes(doc: Mapping[str, Any]) -> list[list[float]]:
    return [list(map(float, b)) for b in (doc.get("bboxes") or [])]


def default_judge():
    """The judge of open answers when ``score_sample`` gets none: the environment-configured one
    (:func:`lmms_eval_tasks.judge.get_judge`), built on first use."""
    from .judge import get_judge

    return get_judge()


def score_sample(doc: Mapping[str, Any], output: object, judge=None) -> dict[str, Any]:
    """Score one model output against one AI4VA-FG row (see the module docstring).

    Args:
        doc: a dataset row (columns of ``ai4va_fg_dataset.schema``; the image is not needed).
        output: the model output as lmms-eval passes it (text or a zoom-agent JSON record).
        judge: for open answers, ``judge(question, reference, prediction) -> bool`` or an object with
            such a ``judge`` method (:func:`ai4va_fg_dataset.core.scoring.score_answer`); default:
            :func:`default_judge`, asked only when there is an answer to judge.

    Returns:
        ``{metric: value}`` with every metric above (``None`` where it does not apply).

    Raises:
        ValueError: the row has an unknown ``answer_type``, a choice answer that is not an option
            letter or a non-integer counting answer (the message names the sample id).
    """
    traj = loads(output)
    text = traj.text
    answer_type = doc.get("answer_type")
    if answer_type == "open" and judge is None and extract_open(text) is not None:
        judge = default_judge()
    try:
        res = score_answer(text, answer_type=answer_type, key=doc.get("answer", ""),
                           choices=list(doc.get("choices") or []), question=str(doc.get("question", "")),
                           judge=judge)
    except ValueError as exc:
        raise ValueError(f"sample {doc.get('id', '?')}: {exc}") from exc
    result: dict[str, Any] = {
        "accuracy": res.score,
        "parse_failure": float(res.parse_failure),
        "judge_failure": float(res.judge_failure),
        "mae": None,
    }
    if answer_type == "number" and res.extracted is not None:
        result["mae"] = float(abs(res.extracted - int(float(str(doc.get("answer")).strip()))))
    result.update(zoom_stats.sample_zoom_stats(traj.tool_calls, traj.crops, _gt_boxes(doc)))
    return result
