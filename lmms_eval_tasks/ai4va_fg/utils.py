"""lmms-eval hooks of the AI4VA-FG tasks (method.md section 3).

lmms-eval loads this file by path for every ``!function utils.<name>`` in the task YAMLs, so it
stays thin: prompts come from :mod:`ai4va_fg_dataset.core.prompts` (the wording training uses),
scoring from :mod:`lmms_eval_tasks.scoring`, crops from :mod:`ai4va_fg_dataset.core.geometry`.

Hooks (lmms-eval conventions, one set for the whole benchmark since all tasks share the schema):

* ``ai4va_fg_doc_to_visual``: the page image (marks drawn by the builder);
* ``ai4va_fg_panel_zoom_doc_to_visual``: manual zoom as paper Table 3.3 runs it (group
  ``ai4va_fg_zoom``): one crop per panel that holds a grounding entity (``panel_bboxes``), in
  reading order;
* ``ai4va_fg_zoom_doc_to_visual`` / ``ai4va_fg_zoom_per_box_doc_to_visual``: the entity-crop variant
  (group ``ai4va_fg_zoom_entity``, not the paper's control), the crop of the union of the GT regions
  / one crop per GT region;
* ``ai4va_fg_doc_to_text`` / ``ai4va_fg_think_doc_to_text`` / ``ai4va_fg_tool_doc_to_text``:
  the prompt in direct / think / tool mode, wrapped in the per-model ``pre_prompt`` /
  ``post_prompt`` of ``lmms_eval_specific_kwargs``;
* ``ai4va_fg_process_results``: ``{metric: value}`` for one sample, and the row ``id`` for the sample log;
* ``ai4va_fg_mean_skip_none`` / ``ai4va_fg_pooled_crop_iou``: aggregations of metrics that do not
  apply to every sample (counting MAE, crop IoUs).
"""

from __future__ import annotations

import logging

from ai4va_fg_dataset.core.geometry import crop_image, expand_to_min_size, union_bbox
from ai4va_fg_dataset.core.images import decode_image
from ai4va_fg_dataset.core.prompts import build_prompt
from lmms_eval_tasks import scoring, zoom_stats

MIN_CROP = 28.0
"""Smallest manual-zoom crop side in pixels (one Qwen2.5-VL 2x2 patch-merge unit)."""

logger = logging.getLogger(__name__)


def _page(doc):
    image = doc["image"]
    if image is None:
        raise ValueError(f"sample {doc.get('id', '?')}: no image")
    return decode_image(image)


def _gt_boxes(doc) -> list[list[float]]:
    boxes = [list(map(float, b)) for b in (doc.get("bboxes") or [])]
    if not boxes:
        raise ValueError(
            f"sample {doc.get('id', '?')} ({doc.get('task', '?')}): no GT region (bboxes) to zoom on; "
            "manual zoom applies to tasks with grounding boxes only"
        )
    return boxes


def _crop(page, box):
    grown = expand_to_min_size(box, MIN_CROP, page.width, page.height)
    return crop_image(page, grown)


def ai4va_fg_doc_to_visual(doc):
    """``[page]``: the page image, RGB."""
    return [_page(doc)]


def ai4va_fg_panel_zoom_doc_to_visual(doc):
    """``[panel_1, panel_2, ...]``: the manual zoom of paper Table 3.3, "individual-panel inputs" zooming
    "solely into the relevant panels": one crop per panel that holds a grounding entity (the row's
    ``panel_bboxes``, page pixels, already in reading order), e.g. the panel of the marked character for
    Action Recognition, the two panels of the two characters for Character Identification.

    A row without panel boxes (a source without panel annotations, an entity outside every panel, or a
    dataset built before the column existed) falls back to the entity crops of
    :func:`ai4va_fg_zoom_per_box_doc_to_visual` (union for one-panel tasks), with a warning naming the
    sample: that row is then not the paper's control.

    Raises:
        ValueError: the sample has neither panel boxes nor GT boxes (the message names it).
    """
    page = _page(doc)
    panels = [list(map(float, b)) for b in (doc.get("panel_bboxes") or [])]
    if panels:
        return [_crop(page, box) for box in panels]
    logger.warning("sample %s (%s): no panel_bboxes; manual zoom falls back to the entity crop",
                   doc.get("id", "?"), doc.get("task", "?"))
    if doc.get("panel_scope") == "multi":
        return [_crop(page, box) for box in _gt_boxes(doc)]
    return [_crop(page, union_bbox(_gt_boxes(doc)))]


def ai4va_fg_zoom_doc_to_visual(doc):
    """``[crop]``: the page cropped to the union of the sample's GT boxes (entity-crop manual zoom, group
    ``ai4va_fg_zoom_entity``; the paper's panel zoom is :func:`ai4va_fg_panel_zoom_doc_to_visual`).

    Raises:
        ValueError: the sample has no GT boxes (the message names it).
    """
    page = _page(doc)
    return [_crop(page, union_bbox(_gt_boxes(doc)))]


def ai4va_fg_zoom_per_box_doc_to_visual(doc):
    """``[crop_1, crop_2, ...]``: one crop per GT box, in the sample's box order (manual zoom for
    Character Identification, whose two characters sit in different panels).

    Raises:
        ValueError: the sample has no GT boxes.
    """
    page = _page(doc)
    return [_crop(page, box) for box in _gt_boxes(doc)]


def _text(doc, mode: str, lmms_eval_specific_kwargs=None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    prompt = build_prompt(doc["question"], list(doc.get("choices") or []), mode)
    return f"{kwargs.get('pre_prompt', '')}{prompt}{kwargs.get('post_prompt', '')}"


def ai4va_fg_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """Direct-mode prompt: question, options, "answer in <answer></answer> tags"."""
    return _text(doc, "direct", lmms_eval_specific_kwargs)


def ai4va_fg_think_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """Think-mode prompt: reasoning in <think></think>, then the answer."""
    return _text(doc, "think", lmms_eval_specific_kwargs)


def ai4va_fg_tool_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """Tool-mode prompt: think, call image_zoom_in_tool if needed, then answer."""
    return _text(doc, "tool", lmms_eval_specific_kwargs)


def ai4va_fg_process_results(doc, results):
    """Score one sample: see :func:`lmms_eval_tasks.scoring.score_sample` for the metrics, plus ``id``:
    the dataset row's ``id`` (e.g. ``"depth_comparison/page_0007/0"``).

    lmms-eval writes the returned dict into each line of ``*_samples_<task>.jsonl`` (``--log_samples``)
    but drops the row (``doc``) itself, keeping only its position ``doc_id``: ``id`` traces a wrong or
    unparsed answer back to the item. It is not a metric (no YAML aggregates it); lmms-eval lists it
    as ``"id,none": []`` in the results file, which the report ignores.
    """
    return {**scoring.score_sample(doc, results[0] if results else ""), "id": str(doc.get("id", ""))}


def ai4va_fg_mean_skip_none(items):
    """Mean over the samples where the metric applies (``None`` elsewhere)."""
    return zoom_stats.mean_skip_none(items)


def ai4va_fg_pooled_crop_iou(items):
    """Mean IoU over all crops of all samples (``zoom_iou``)."""
    return zoom_stats.pooled_crop_iou(items)
