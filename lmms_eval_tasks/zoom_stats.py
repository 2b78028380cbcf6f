"""Zoom statistics of the agentic evaluation (method.md section 3; paper Table 5.2).

For each sample: the number of ``image_zoom_in_tool`` calls, and the IoU of each executed crop
against the ground-truth regions (the sample's ``bboxes``, page pixels). Crops are matched to GT
boxes one-to-one by the Hungarian algorithm (:func:`ai4va_fg_dataset.core.geometry.match_boxes`, the
same matching as the RARL reward ``R_tool_acc``), so two crops of the same character earn one good
IoU, not two; a crop left unmatched (more crops than GT regions) has IoU 0. The table reports,
over the samples of a task:

* ``tool_calls``: average number of calls per sample (accepted and rejected calls, over all samples);
* ``zoom_iou``: average IoU over every crop of every sample that has GT boxes;
* ``zoom_iou_first`` / ``zoom_iou_second``: average IoU of the first / second crop, over the
  samples that made at least one / two crops (the paper's "first crop 0.842, second 0.829").

Samples without GT boxes (Dialog / Panel Reordering) or without crops contribute ``None`` to the
IoU statistics, and :func:`mean_skip_none` leaves them out of the average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ai4va_fg_dataset.core.geometry import match_boxes


def crop_ious(crops: Sequence[Sequence[float]], gt: Sequence[Sequence[float]]) -> list[float]:
    """IoU of each crop (in call order) with its Hungarian-matched GT box; 0.0 when unmatched.

    Args:
        crops: executed crop boxes ``[x1, y1, x2, y2]`` in page pixels, in call order.
        gt: ground-truth boxes in the same frame.

    Returns:
        ``len(crops)`` IoUs in ``[0, 1]`` (empty when there are no crops). With no GT boxes every
        crop scores 0.0; callers that want "not applicable" check ``gt`` first.
    """
    ious = [0.0] * len(crops)
    for pred_idx, _gt_idx, value in match_boxes(list(crops), list(gt)):
        ious[pred_idx] = float(value)
    return ious


def sample_zoom_stats(num_calls: int, crops: Sequence[Sequence[float]] | None,
                      gt: Sequence[Sequence[float]]) -> dict[str, float | None]:
    """The per-sample zoom metrics (see the module docstring).

    Args:
        num_calls: tool calls the model made (accepted and rejected).
        crops: executed crops in page pixels, or ``None`` when the crops are unknown (a model that
            was not run through the zoom agent: its calls were never executed).
        gt: the sample's GT boxes (page pixels).

    Returns:
        ``{"tool_calls": float, "zoom_iou": {"iou_sum": float, "crops": int} | None,
        "zoom_iou_first": float | None, "zoom_iou_second": float | None}``; ``zoom_iou`` carries the
        sum and count so that :func:`pooled_crop_iou` averages over crops, not over samples.
    """
    stats: dict[str, float | None] = {
        "tool_calls": float(num_calls),
        "zoom_iou": None,
        "zoom_iou_first": None,
        "zoom_iou_second": None,
    }
    if not crops or not gt:
        return stats
    ious = crop_ious(crops, gt)
    stats["zoom_iou"] = {"iou_sum": float(sum(ious)), "crops": len(ious)}
    stats["zoom_iou_first"] = ious[0]
    stats["zoom_iou_second"] = ious[1] if len(ious) > 1 else None
    return stats


def mean_skip_none(items: Iterable[float | None]) -> float | None:
    """Average of the non-``None``, finite values; ``None`` when there are none.

    The lmms-eval aggregation for metrics that do not apply to every sample (crop IoUs, counting
    MAE over parsed answers).
    """
    values = [float(v) for v in items if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else None


def pooled_crop_iou(per_sample: Iterable[dict | None]) -> float | None:
    """Average IoU over all crops of all samples (the ``zoom_iou`` aggregation).

    Args:
        per_sample: the ``zoom_iou`` items of :func:`sample_zoom_stats`:
            ``{"iou_sum": float, "crops": int}`` or ``None`` (no crops or no GT boxes).

    Returns:
        ``sum(iou_sum) / sum(crops)``, or ``None`` when no sample made a crop.
    """
    total = 0.0
    count = 0
    for item in per_sample:
        if not item or item.get("crops", 0) <= 0:
            continue
        total += float(item["iou_sum"])
        count += int(item["crops"])
    return total / count if count else None
