"""Per-step zoom metrics of RARL rollouts (method.md sections 3 and 5: "track during training").

:func:`zoom_metrics` turns a batch of rollouts (their environments and completions) into sums and counts
so they can be summed across processes before averaging: tool calls per sample, accepted / rejected
calls, tool-call parse failures, IoU of each executed crop with its matched GT box (all, first, second
crop), overlap (fraction of the GT box covered), crop area ratio (crop area / page area) and visual
tokens of the crop, and calls whose results TRL rolled back (never seen by the model, not rewarded).
"""

from __future__ import annotations

from collections.abc import Sequence

from ai4va_fg_dataset.core import geometry

from .rewards import count_parse_failures

METRIC_NAMES = (
    "zoom/calls_per_sample",
    "zoom/ok_calls_per_sample",
    "zoom/rejected_calls_per_sample",
    "zoom/parse_failures_per_sample",
    "zoom/samples_with_parse_failure",
    "zoom/iou",
    "zoom/iou_first",
    "zoom/iou_second",
    "zoom/overlap",
    "zoom/crop_area_ratio",
    "zoom/crop_visual_tokens",
    "zoom/undelivered_calls_per_sample",
)


def zoom_metrics(environments: Sequence, completions: Sequence) -> dict[str, tuple[float, float]]:
    """Sums and counts of the zoom metrics over a batch of rollouts.

    Args:
        environments: one :class:`~trl_rarl.environment.ZoomEnvironment` per rollout (``None`` allowed).
        completions: TRL completions of the same rollouts (for parse failures).

    Returns:
        ``{name: (sum, count)}`` for every name of :data:`METRIC_NAMES`; the metric is ``sum / count``
        (per-sample metrics count samples, per-crop metrics count executed crops; IoU and overlap use the
        Hungarian matching of crops to GT boxes, unmatched crops count as 0).
    """
    acc = {name: [0.0, 0.0] for name in METRIC_NAMES}

    def add(name, value, count=1.0):
        acc[name][0] += float(value)
        acc[name][1] += count

    for env, completion in zip(environments, completions):
        calls = list(env.calls) if env is not None else []
        ok = [c for c in calls if c.ok and c.executed is not None]
        failures = count_parse_failures(completion)
        add("zoom/calls_per_sample", len(calls))
        add("zoom/ok_calls_per_sample", len(ok))
        add("zoom/rejected_calls_per_sample", len(calls) - len(ok))
        add("zoom/parse_failures_per_sample", failures)
        add("zoom/samples_with_parse_failure", float(failures > 0))
        add("zoom/undelivered_calls_per_sample", getattr(env, "undelivered", 0))
        if not ok:
            continue
        boxes = [c.executed for c in ok]
        gt = list(env.gt_boxes)
        matched = {p: (g, i) for p, g, i in geometry.match_boxes(boxes, gt)} if gt else {}
        page_area = env.page_size[0] * env.page_size[1]
        for k, box in enumerate(boxes):
            g, i = matched.get(k, (None, 0.0))
            if gt:
                add("zoom/iou", i)
                add("zoom/overlap", geometry.coverage(box, gt[g]) if g is not None else 0.0)
                if k == 0:
                    add("zoom/iou_first", i)
                elif k == 1:
                    add("zoom/iou_second", i)
            if page_area > 0:
                add("zoom/crop_area_ratio", geometry.area(box) / page_area)
        for tokens in env.crop_tokens:
            add("zoom/crop_visual_tokens", tokens)
    return {name: (s, c) for name, (s, c) in acc.items()}
