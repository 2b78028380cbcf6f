"""Panel reading order and position descriptions (method.md section 2).

Panel Understanding names a panel only in words ("the second panel of the top row"), and Panel
Reordering needs the order panels are read in. Both come from this module.

The order is a recursive XY-cut on the gutters between panels:

1. split the panels into **rows** at horizontal gutters (top to bottom);
2. a group that has no horizontal gutter is split into **columns** at vertical gutters, read left
   to right (``"ltr"``, Western comics) or right to left (``"rtl"``, manga);
3. each row / column is cut again recursively, so a tall panel beside two stacked ones, or a
   left column read before the right one, comes out in the order a reader follows.

Rows are tried before columns, each first at an exact gutter, then at gutters found on boxes
shrunk by a tolerance (a fraction of each box's size, capped by a fraction of the group's
extent), so panels whose outlines overlap a little, as break-out polygons and sloppy annotations
do, still fall into the right row; a tolerant cut is refused when it would separate two boxes
that sit side by side. A box lying almost entirely inside a larger one (an inset) is read right
after it. When a group has no gutter in either direction (overlapping manga panels), a pairwise
rule orders it (:func:`_by_pairs`); there two boxes share a row only when their common height is a
large part of the smaller box *and* a fair part of the taller one (:data:`SAME_BAND_OF_LARGER`), so a
thin sliver lying across the bottom of a panel is read after that panel, not before it.

:func:`balloon_order_conflicts` checks an annotated balloon order against the balloon geometry (the
Dialog Reordering key check).

Measured agreement with annotated orders (tests/test_reading_order.py): all 24 multi-panel
pages of Craphound (ACBF, ``ltr``, including its column layouts) and 135 of the 143 multi-panel
pages of OpenMantra (``rtl``); the 8 others have heavily overlapping panels whose annotated order
reads against the manga direction or against the vertical position.

All boxes are ``(x1, y1, x2, y2)`` pixels (:mod:`ai4va_fg_dataset.core.geometry`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Literal

from .core.geometry import BBox, area, center, intersection

Direction = Literal["ltr", "rtl"]

TOLERANCES: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.02, 0.01), (0.25, 0.1))
"""Gutter tolerances, as ``(fraction of the box's own size, cap as a fraction of the group's
extent)``: how far a box may reach into the next row (column) and still count as separated by a
gutter. Level 0 is an exact gutter, level 1 forgives sloppy outlines, level 2 break-out panels."""

CUT_SEQUENCE: tuple[tuple[int, int], ...] = ((1, 0), (1, 1), (1, 2), (0, 0), (0, 1), (0, 2))
"""``(axis, tolerance level)`` cuts tried in turn (axis 1: rows, 0: columns): rows first (the
usual Z path), from an exact gutter to the loosest; then columns. A tolerant row cut must be
clean (:data:`MAX_CROSS_OVERLAP`), so two columns whose rows do not line up stay columns."""

MAX_CROSS_OVERLAP = 0.2
"""A loose cut is refused when two boxes on different sides overlap along the cut axis by more
than this fraction of the smaller one (they sit side by side: the cut would cut through a row)."""

SAME_BAND = 0.6
"""Fallback: two boxes sharing at least this fraction of the smaller one's height are in one band..."""

SAME_BAND_OF_LARGER = 0.25
"""...provided the shared height is also at least this fraction of the taller one's height. Measured
against the smaller box alone, a thin sliver overlapping the bottom edge of the panel above it
(OpenMantra boureisougi 31) counted as the same row and, being further left / right, was read
before that panel; against the taller one it is a band of its own, read after it."""

STACKED = 0.8
"""Fallback: boxes in one band sharing this fraction of the wider one's width are drawn one over
the other; the higher is read first."""

INSET_FRACTION = 0.95
"""A box with at least this fraction of its area inside a larger box is an inset of it: it is read
right after its container (manga insets, panels drawn inside panels)."""

_ORDINALS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
)


def _check_direction(direction: str) -> None:
    if direction not in ("ltr", "rtl"):
        raise ValueError(f"reading direction {direction!r} is not 'ltr' or 'rtl'")


def _split(boxes: Sequence[BBox], idx: list[int], axis: int, tol: tuple[float, float]) -> list[list[int]]:
    """Split ``idx`` into groups separated by gutters along ``axis`` (1: rows by y, 0: columns by x).

    Each box's interval on the axis is shrunk by ``min(tol[0] * size, tol[1] * extent)`` on both
    ends; overlapping shrunk intervals are merged. Groups come back sorted by position along the
    axis (top to bottom / left to right).
    """
    lo = min(boxes[i][axis] for i in idx)
    hi = max(boxes[i][axis + 2] for i in idx)
    cap = tol[1] * (hi - lo)
    spans = []
    for i in idx:
        a, b = boxes[i][axis], boxes[i][axis + 2]
        t = min(tol[0] * (b - a), cap)
        spans.append((a + t, b - t, i))
    spans.sort()
    groups: list[list[int]] = []
    end = float("-inf")
    for a, b, i in spans:
        if groups and a < end:
            groups[-1].append(i)
            end = max(end, b)
        else:
            groups.append([i])
            end = b
    return groups


def _clean_cut(boxes: Sequence[BBox], groups: list[list[int]], axis: int) -> bool:
    """True when no two boxes of different groups overlap along ``axis`` by more than
    :data:`MAX_CROSS_OVERLAP` of the smaller box's size."""
    for g, h in itertools.pairwise(groups):
        for i in g:
            for j in h:
                a, b = boxes[i], boxes[j]
                ov = min(a[axis + 2], b[axis + 2]) - max(a[axis], b[axis])
                size = min(a[axis + 2] - a[axis], b[axis + 2] - b[axis])
                if ov > MAX_CROSS_OVERLAP * size:
                    return False
    return True


def _by_pairs(boxes: Sequence[BBox], idx: list[int], direction: Direction) -> list[int]:
    """Fallback for boxes with no clean gutter either way (overlapping manga panels).

    Pairwise rule, applied as a sort on boxes first ranked by their top edge:

    * boxes that share less than :data:`SAME_BAND` of the smaller one's height: the higher first;
    * boxes in the same band that also share at least :data:`STACKED` of the wider one's width
      (one drawn over the other): the higher top edge first;
    * otherwise (side by side): by centre, left to right (``"ltr"``) or right to left (``"rtl"``).
    """
    sign = -1.0 if direction == "rtl" else 1.0

    def cmp(i: int, j: int) -> int:
        a, b = boxes[i], boxes[j]
        ov = min(a[3], b[3]) - max(a[1], b[1])
        v = ov / min(a[3] - a[1], b[3] - b[1])
        if v >= SAME_BAND and ov < SAME_BAND_OF_LARGER * max(a[3] - a[1], b[3] - b[1]):
            v = 0.0  # a thin box lying across the bottom (top) edge of a tall one: not one band
        h = (min(a[2], b[2]) - max(a[0], b[0])) / max(a[2] - a[0], b[2] - b[0])
        if v < SAME_BAND or h >= STACKED:
            key_a, key_b = (a[1], center(a)[1]), (b[1], center(b)[1])
            if v < SAME_BAND:
                key_a, key_b = (center(a)[1],), (center(b)[1],)
        else:
            key_a, key_b = (sign * center(a)[0],), (sign * center(b)[0],)
        return -1 if key_a < key_b else (1 if key_a > key_b else 0)

    start = sorted(idx, key=lambda k: (boxes[k][1], sign * boxes[k][0], k))
    return sorted(start, key=functools.cmp_to_key(cmp))


def _order(boxes: Sequence[BBox], idx: list[int], direction: Direction) -> list[int]:
    if len(idx) <= 1:
        return list(idx)
    # Insets: read right after the (smallest) box that contains them.
    insets: dict[int, list[int]] = {}
    for i in idx:
        a = area(boxes[i])
        hosts = [j for j in idx if j != i and area(boxes[j]) > a and intersection(boxes[i], boxes[j]) >= INSET_FRACTION * a]
        if hosts:
            insets.setdefault(min(hosts, key=lambda j: area(boxes[j])), []).append(i)
    if insets:
        inset_ids = {i for v in insets.values() for i in v}
        top = [i for i in idx if i not in inset_ids]
        out: list[int] = []
        for i in _order(boxes, top, direction):
            out.append(i)
            out.extend(_expand(boxes, i, insets, direction))
        return out
    for axis, level in CUT_SEQUENCE:
        groups = _split(boxes, idx, axis, TOLERANCES[level])
        if len(groups) < 2 or (level > 0 and not _clean_cut(boxes, groups, axis)):
            continue
        if axis == 0 and direction == "rtl":
            groups.reverse()
        return [i for g in groups for i in _order(boxes, g, direction)]
    return _by_pairs(boxes, idx, direction)


def _expand(boxes: Sequence[BBox], host: int, insets: dict[int, list[int]], direction: Direction) -> list[int]:
    """The insets of ``host`` in reading order, each followed by its own insets."""
    out: list[int] = []
    for i in _order(boxes, insets.get(host, []), direction):
        out.append(i)
        out.extend(_expand(boxes, i, insets, direction))
    return out


def reading_order(boxes: Sequence[BBox], direction: Direction = "ltr") -> list[int]:
    """Indices of ``boxes`` in reading order (recursive XY-cut, see the module docstring).

    Args:
        boxes: panel boxes ``(x1, y1, x2, y2)`` in pixels, any order.
        direction: ``"ltr"`` (rows left to right) or ``"rtl"`` (manga: right to left).

    Returns:
        A permutation of ``range(len(boxes))``: ``result[k]`` is the index of the k-th panel read.

    Raises:
        ValueError: unknown ``direction``.
    """
    _check_direction(direction)
    return _order([tuple(float(v) for v in b) for b in boxes], list(range(len(boxes))), direction)


def reading_rows(boxes: Sequence[BBox], direction: Direction = "ltr") -> list[list[int]]:
    """Top-level rows of the page, each a list of box indices in reading order.

    The rows are the horizontal bands of the first row cut that :func:`reading_order` would accept
    (exact gutter, then the tolerant levels); when the page has no horizontal gutter at all (e.g.
    two columns side by side) the whole page is one row. Inside a row the boxes keep their
    :func:`reading_order` rank.

    Raises:
        ValueError: unknown ``direction``.
    """
    _check_direction(direction)
    bxs = [tuple(float(v) for v in b) for b in boxes]
    if not bxs:
        return []
    idx = list(range(len(bxs)))
    rank = {i: k for k, i in enumerate(_order(bxs, idx, direction))}
    rows = [idx]
    for level in range(len(TOLERANCES)):
        groups = _split(bxs, idx, 1, TOLERANCES[level])
        if len(groups) > 1 and (level == 0 or _clean_cut(bxs, groups, 1)):
            rows = groups
            break
    return [sorted(row, key=rank.__getitem__) for row in rows]


def _row_name(r: int, n_rows: int) -> str:
    if n_rows == 1:
        return "the page"
    if r == 0:
        return "the top row"
    if r == n_rows - 1:
        return "the bottom row"
    if n_rows == 3:
        return "the middle row"
    return f"the {_ORDINALS[r] if r < len(_ORDINALS) else f'{r + 1}th'} row"


def describe_positions(boxes: Sequence[BBox], direction: Direction = "ltr") -> list[str]:
    """A position description per box, in input order, for Panel Understanding questions.

    Examples: ``"the second panel of the top row"``, ``"the only panel of the bottom row"``,
    ``"the left panel of the middle row"``, ``"the only panel of the page"``. Rows come from
    :func:`reading_rows`; within a row of two, panels are ``left`` / ``right`` (``upper`` /
    ``lower`` when one sits above the other); otherwise they
    are counted in reading order (``first``, ``second``...; for ``"rtl"`` the first is the
    rightmost). Rows are ``top`` / ``middle`` (3 rows) / ``bottom`` or counted (``"the third
    row"``).

    Returns:
        ``len(boxes)`` strings (lower case, no final period).

    Raises:
        ValueError: unknown ``direction``.
    """
    rows = reading_rows(boxes, direction)
    out = [""] * len(boxes)
    for r, row in enumerate(rows):
        where = _row_name(r, len(rows))
        for k, i in enumerate(row):
            if len(row) == 1:
                which = "only"
            elif len(row) == 2:
                # by position, whatever the reading direction
                (xi, yi), (xo, yo) = center(boxes[i]), center(boxes[row[1 - k]])
                if abs(xi - xo) >= abs(yi - yo):
                    which = "left" if xi < xo else "right"
                else:
                    which = "upper" if yi < yo else "lower"
            else:
                which = _ORDINALS[k] if k < len(_ORDINALS) else f"{k + 1}th"
            out[i] = f"the {which} panel of {where}"
    return out


BALLOON_BAND = 0.5
"""Balloon check: two balloons sharing at least this fraction of the smaller one's height are side by
side; sharing this fraction of the narrower one's width with no vertical overlap, one is above."""


def balloon_read_before(a: BBox, b: BBox, direction: Direction = "ltr") -> bool:
    """Whether the geometry clearly says balloon ``b`` is read before balloon ``a`` (same panel, or
    no panels known): ``b`` lies wholly above ``a`` in the same column (they share
    :data:`BALLOON_BAND` of the narrower width), or ``b`` sits beside ``a`` in the same band (they
    share :data:`BALLOON_BAND` of the smaller height) wholly on the side read first (left for
    ``"ltr"``, right for ``"rtl"``). Anything less clear-cut (diagonal neighbours) is not a
    contradiction.

    Raises:
        ValueError: unknown ``direction``.
    """
    _check_direction(direction)
    v = min(a[3], b[3]) - max(a[1], b[1])
    h = min(a[2], b[2]) - max(a[0], b[0])
    if b[3] <= a[1] and h >= BALLOON_BAND * min(a[2] - a[0], b[2] - b[0]):
        return True
    if v >= BALLOON_BAND * min(a[3] - a[1], b[3] - b[1]):
        return b[2] <= a[0] if direction == "ltr" else b[0] >= a[2]
    return False


def balloon_order_conflicts(
    boxes: Sequence[BBox], direction: Direction = "ltr", panel_ranks: Sequence[int | None] | None = None,
) -> list[int]:
    """Positions where an annotated balloon order contradicts the balloon geometry.

    Args:
        boxes: balloon boxes ``(x1, y1, x2, y2)`` pixels, in annotated reading order.
        direction: ``"ltr"`` or ``"rtl"``.
        panel_ranks: per balloon, the reading rank of its panel (:func:`reading_order` of the
            page's panels), ``None`` for a balloon outside every panel; ``None``: no panels known.

    Returns:
        Every ``k`` such that balloon ``k + 1`` is clearly read before balloon ``k``: its panel
        comes earlier, or (same panel / panels unknown) :func:`balloon_read_before`.

    Raises:
        ValueError: unknown ``direction`` or ``panel_ranks`` of another length.
    """
    _check_direction(direction)
    if panel_ranks is not None and len(panel_ranks) != len(boxes):
        raise ValueError(f"{len(panel_ranks)} panel ranks for {len(boxes)} balloons")
    out = []
    for k in range(len(boxes) - 1):
        ra = panel_ranks[k] if panel_ranks is not None else None
        rb = panel_ranks[k + 1] if panel_ranks is not None else None
        if ra is not None and rb is not None and ra != rb:
            if rb < ra:
                out.append(k)
            continue
        if balloon_read_before(boxes[k], boxes[k + 1], direction):
            out.append(k)
    return out
