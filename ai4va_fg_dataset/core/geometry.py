"""Box geometry shared by the builder, the evaluation and the trainer.

Every box in AI4VA-FG is a ``bbox_2d``: ``[x1, y1, x2, y2]`` in **pixels of the original page
image**, top-left inclusive, bottom-right exclusive, ``x1 < x2`` and ``y1 < y2``. Polygons are lists
of ``(x, y)`` pixel points. This module is the only place that converts, validates, compares
(IoU, coverage), matches and crops boxes; the dataset builder, the lmms-eval tasks and the RARL
trainer all import it, so the IoU in a reward is the IoU in an evaluation table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BBox = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in pixels."""

Polygon = tuple[tuple[float, float], ...]
"""Closed polygon as ``((x, y), ...)`` pixel points (the closing point is implicit)."""


class GeometryError(ValueError):
    """A box or polygon that cannot be used (NaN, inverted, zero-area, outside the image...)."""


def as_bbox(values: Sequence[float], *, where: str = "bbox") -> BBox:
    """Return ``values`` as a float ``(x1, y1, x2, y2)`` tuple.

    Args:
        values: four numbers ``[x1, y1, x2, y2]`` in pixels.
        where: description of the record, quoted in the error message.

    Raises:
        GeometryError: not four finite numbers, or ``x2 <= x1`` / ``y2 <= y1`` (inverted or
            zero-area box). The message quotes the bad value and ``where``.
    """
    try:
        box = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{where}: bbox {values!r} is not 4 numbers") from exc
    if len(box) != 4:
        raise GeometryError(f"{where}: bbox {list(values)!r} is not 4 numbers: it has {len(box)} values")
    if not all(math.isfinite(v) for v in box):
        raise GeometryError(f"{where}: bbox {list(values)!r} has a non-finite value")
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise GeometryError(f"{where}: bbox {list(values)!r} is inverted or has zero area (need x1<x2, y1<y2)")
    return box  # type: ignore[return-value]


def xywh_to_xyxy(xywh: Sequence[float], *, where: str = "bbox") -> BBox:
    """Convert a COCO ``[x, y, w, h]`` box (pixels) to ``(x1, y1, x2, y2)``.

    Raises:
        GeometryError: see :func:`as_bbox` (``w <= 0`` or ``h <= 0`` is a zero-area box).
    """
    if len(xywh) != 4:
        raise GeometryError(f"{where}: COCO bbox {list(xywh)!r} has {len(xywh)} values, expected 4")
    x, y, w, h = (float(v) for v in xywh)
    return as_bbox((x, y, x + w, y + h), where=where)


def polygon_from_flat(flat: Sequence[float], *, where: str = "polygon") -> Polygon:
    """Turn a flat ``[x0, y0, x1, y1, ...]`` list (COCO segmentation) into a polygon.

    Raises:
        GeometryError: odd number of coordinates, fewer than 3 points, non-finite values, or zero
            area (all points collinear): a degenerate polygon.
    """
    if len(flat) % 2:
        raise GeometryError(f"{where}: polygon has an odd number of coordinates ({len(flat)})")
    points = tuple((float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2))
    return validate_polygon(points, where=where)


def parse_points(text: str, *, where: str = "points") -> Polygon:
    """Parse an ACBF/SVG points string ``"x,y x,y ..."`` into a polygon.

    Raises:
        GeometryError: unparseable text or a degenerate polygon (see :func:`validate_polygon`).
    """
    try:
        points = tuple(tuple(float(c) for c in pair.split(",")) for pair in text.split())
    except ValueError as exc:
        raise GeometryError(f"{where}: cannot parse points {text!r}") from exc
    if any(len(p) != 2 for p in points):
        raise GeometryError(f"{where}: points {text!r} are not x,y pairs")
    return validate_polygon(points, where=where)  # type: ignore[arg-type]


def polygon_area(points: Sequence[tuple[float, float]]) -> float:
    """Area of a simple polygon in square pixels (shoelace formula)."""
    s = 0.0
    n = len(points)
    for i in range(n):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % n]
        s += x1 * y2 - x2 * y1
    return abs(s) / 2.0


def validate_polygon(points: Sequence[tuple[float, float]], *, where: str = "polygon") -> Polygon:
    """Check a polygon: at least 3 finite points and non-zero area.

    Raises:
        GeometryError: the polygon is degenerate; the message quotes ``where``.
    """
    if len(points) < 3:
        raise GeometryError(f"{where}: polygon has {len(points)} points, need at least 3")
    if not all(math.isfinite(c) for p in points for c in p):
        raise GeometryError(f"{where}: polygon has a non-finite coordinate")
    if polygon_area(points) <= 0.0:
        raise GeometryError(f"{where}: polygon has zero area (degenerate)")
    return tuple((float(x), float(y)) for x, y in points)


def polygon_bbox(points: Sequence[tuple[float, float]], *, where: str = "polygon") -> BBox:
    """Tight ``(x1, y1, x2, y2)`` box around a polygon, in pixels."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return as_bbox((min(xs), min(ys), max(xs), max(ys)), where=where)


def check_inside(box: BBox, width: int, height: int, *, where: str = "bbox", tolerance: float = 2.0) -> BBox:
    """Check that ``box`` lies inside a ``width`` x ``height`` image, clipping sub-pixel overshoot.

    Annotation tools often put a vertex a pixel or two past the border; up to ``tolerance``
    pixels outside is clipped silently, anything further is an error.

    Raises:
        GeometryError: the box extends more than ``tolerance`` pixels outside the image, or
            nothing of it is left after clipping.
    """
    x1, y1, x2, y2 = box
    if x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance or y2 > height + tolerance:
        raise GeometryError(f"{where}: bbox {list(box)!r} lies outside the {width}x{height} image")
    return as_bbox((max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)), where=where)


def clip_bbox(box: Sequence[float], width: float, height: float) -> BBox | None:
    """Clamp ``box`` to ``[0, width] x [0, height]``; ``None`` when nothing is left."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
    y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2, y2)


def area(box: Sequence[float]) -> float:
    """Area of an ``(x1, y1, x2, y2)`` box in square pixels (0 for an empty box)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Sequence[float], b: Sequence[float]) -> float:
    """Area of the intersection of two boxes, in square pixels."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes, in ``[0, 1]``."""
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def coverage(crop: Sequence[float], target: Sequence[float]) -> float:
    """Fraction of ``target`` covered by ``crop``: ``|crop ∩ target| / |target|``, in ``[0, 1]``.

    This is the "overlap" of "Learning to Focus and Precise Cropping" (method.md section 5), used by
    the thresholded grounding reward (``overlap >= tau``) and logged during training.
    """
    a = area(target)
    return intersection(crop, target) / a if a > 0 else 0.0


def match_boxes(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]]) -> list[tuple[int, int, float]]:
    """One-to-one matching of predicted boxes to ground-truth boxes maximising total IoU.

    Uses the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``). A predicted box can
    match at most one GT box and vice versa, so two crops of the same region earn one IoU, not two.

    Args:
        pred: ``m`` boxes ``(x1, y1, x2, y2)`` in pixels.
        gt: ``n`` boxes in the same frame.

    Returns:
        ``[(pred_index, gt_index, iou), ...]`` for the ``min(m, n)`` matched pairs (pairs with
        IoU 0 included); unmatched predictions do not appear (they score 0).
    """
    if not pred or not gt:
        return []
    from scipy.optimize import linear_sum_assignment

    scores = [[iou(p, g) for g in gt] for p in pred]
    rows, cols = linear_sum_assignment(scores, maximize=True)
    return [(int(r), int(c), scores[r][c]) for r, c in zip(rows, cols)]


def scale_bbox(box: Sequence[float], src_size: tuple[int, int], dst_size: tuple[int, int]) -> BBox:
    """Map a box from an image of ``src_size`` ``(width, height)`` to one of ``dst_size``.

    Used to map a box the model gives in the frame it sees (e.g. Qwen2.5-VL's resized image) back
    to original page pixels, and GT boxes the other way. No clamping; see :func:`clip_bbox`.
    """
    sx = dst_size[0] / src_size[0]
    sy = dst_size[1] / src_size[1]
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def union_bbox(boxes: Sequence[Sequence[float]]) -> BBox:
    """Smallest box containing all ``boxes`` (at least one)."""
    if not boxes:
        raise GeometryError("union_bbox: no boxes")
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def center(box: Sequence[float]) -> tuple[float, float]:
    """Centre ``(x, y)`` of a box, in pixels."""
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def crop_image(image, box: Sequence[float]):
    """Crop a PIL image to ``box`` (pixels, rounded outward to whole pixels, clamped to the image).

    Returns:
        A new ``PIL.Image.Image`` of size ``(ceil(x2) - floor(x1), ceil(y2) - floor(y1))`` after
        clamping.

    Raises:
        GeometryError: the box does not overlap the image.
    """
    clipped = clip_bbox(box, image.width, image.height)
    if clipped is None:
        raise GeometryError(f"crop box {list(box)!r} does not overlap the {image.width}x{image.height} image")
    x1, y1, x2, y2 = clipped
    return image.crop((math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)))


def expand_to_min_size(box: Sequence[float], min_size: float, width: float, height: float) -> BBox:
    """Grow ``box`` around its centre so each side is at least ``min_size`` pixels, staying inside the image.

    A side shorter than ``min_size`` is widened symmetrically; if that crosses the border the box is
    shifted back inside. Where the image itself is smaller than ``min_size`` on an axis the box spans
    the whole axis. Used by the zoom tool (method.md section 4: crops have a minimum size, e.g. 28 px,
    one Qwen2.5-VL patch-merge unit).

    Args:
        box: ``(x1, y1, x2, y2)`` in pixels, already inside ``[0, width] x [0, height]``.
        min_size: minimum side length in pixels.
        width, height: image size in pixels.

    Returns:
        The grown box, inside the image.
    """

    def grow(lo: float, hi: float, limit: float) -> tuple[float, float]:
        if hi - lo >= min_size:
            return lo, hi
        if limit <= min_size:
            return 0.0, float(limit)
        mid = (lo + hi) / 2.0
        lo, hi = mid - min_size / 2.0, mid + min_size / 2.0
        if lo < 0.0:
            lo, hi = 0.0, float(min_size)
        elif hi > limit:
            lo, hi = float(limit) - min_size, float(limit)
        return lo, hi

    x1, x2 = grow(float(box[0]), float(box[2]), width)
    y1, y2 = grow(float(box[1]), float(box[3]), height)
    return (x1, y1, x2, y2)
