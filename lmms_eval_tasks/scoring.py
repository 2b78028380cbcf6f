"""Per-sample scores of AI4VA-FG (method.md section 3), returned by the lmms-eval ``process_results``.

Every sample gets:

* ``accuracy``: 1.0 when the extracted answer equals the GT (choice letter; integer for Character
  Counting; the judge's verdict for Panel Understanding), else 0.0; an unparseable answer scores 0;
* ``parse_failure``: 1.0 when no answer could be read (:mod:`.answers`), else 0.0;
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

from ai4va_fg_dataset.core import scoring as answers

from . import zoom_stats
from .trajectory import loads


def _gt_boxes(doc: Mapping[str, Any]) -> list[list[float]]:
    return [list(map(float, b)) for b in (doc.get("bboxes") or [])]


def score_sample(doc: Mapping[str, Any], output: object, judge=None) -> dict[str, Any]:
    """Score one model output against one AI4VA-FG row (see the module docstring).

    Args:
        doc: a dataset row (columns of ``ai4va_fg_dataset.schema``; the image is not needed).
        output: the model output as lmms-eval passes it (text or a zoom-agent JSON record).
        judge: a :class:`lmms_eval_tasks.judge.Judge` for open answers; default: the
            environment-configured one (:func:`lmms_eval_tasks.judge.get_judge`).

    Returns:
        ``{metric: value}`` with every metric above (``None`` where it does not apply).

    Raises:
        ValueError: the row has an unknown ``answer_type`` or a non-integer counting answer
            (the message names the sample id).
    """
    traj = loads(output)
    text = traj.text
    answer_type = doc.get("answer_type")
    gt = str(doc.get("answer", "")).strip()
    sample_id = doc.get("id", "?")
    result: dict[str, Any] = {"mae": None, "judge_failure": 0.0}
    if answer_type == "choice":
        pred = answers.extract_choice(text, list(doc.get("choices") or []))
        result["accuracy"] = float(pred is not None and pred == gt.upper())
        result["parse_failure"] = float(pred is None)
    elif answer_type == "number":
        try:
            gt_value = int(gt)
        except ValueError as exc:
            raise ValueError(f"sample {sample_id}: counting answer {gt!r} is not an integer") from exc
        pred_n = answers.extract_number(text)
        result["accuracy"] = float(pred_n is not None and pred_n == gt_value)
        result["parse_failure"] = float(pred_n is None)
        result["mae"] = None if pred_n is None else float(abs(pred_n - gt_value))
    elif answer_type == "open":
        pred_text = answers.extract_open(text)
        result["parse_failure"] = float(pred_text is None)
        if pred_text is None:
            result["accuracy"] = 0.0
        else:
            if judge is None:
                from .judge import get_judge

                judge = get_judge()
            verdict = judge.judge(str(doc.get("question", "")), gt, pred_text)
            result["accuracy"] = float(bool(verdict.correct))
            result["judge_failure"] = float(verdict.correct is None)
    else:
        raise ValueError(f"sample {sample_id}: unknown answer_type {answer_type!r}")
    result.update(zoom_stats.sample_zoom_stats(traj.tool_calls, traj.crops, _gt_boxes(doc)))
    return result
