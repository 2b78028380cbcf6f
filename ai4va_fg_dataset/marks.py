"""Visual marks drawn on page images (method.md section 2).

AI4VA-FG points at characters and panels with marks drawn on the page: **solid blue boxes**
(:data:`~ai4va_fg_dataset.schema.BOX_COLOR`) around marked characters and **filled orange markers**
(:data:`~ai4va_fg_dataset.schema.MARKER_COLOR`), discs carrying a number label ("1", "2"), for
marked entities and blanked panels. Line width, marker radius and font size scale with the image
so the marks read the same on a 800 px strip and a 3000 px scan.

All coordinates are pixels of the image being drawn on.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from .core.geometry import BBox
from .schema import BOX_COLOR, MARKER_COLOR

LABEL_TEXT_COLOR = (255, 255, 255)
"""Colour of the label digits (white on the blue tag and on the orange disc)."""

LABEL_OUTLINE_COLOR = (0, 0, 0)
"""Thin outline of the label digits, so they stay legible on both colours."""


def line_width(size: tuple[int, int]) -> int:
    """Box outline width in pixels for an image of ``size`` ``(width, height)``: 1/200 of the
    shorter side, at least 2."""
    return max(2, round(min(size) / 200))


def marker_radius(size: tuple[int, int]) -> int:
    """Radius in pixels of a filled marker: 1/40 of the shorter side, at least 8."""
    return max(8, round(min(size) / 40))


def marker_position(box: Sequence[float], size: tuple[int, int], where: str = "corner") -> tuple[float, float]:
    """Where to put the marker of an entity or panel box.

    ``where="corner"``: just inside the top-left corner (covers the box's corner, not the figure
    in its middle); ``"top"``: centred horizontally just inside the top edge (keeps the markers of
    two overlapping entities apart); ``"center"``: the box centre (blanked panels). The disc is
    kept inside the image.

    Args:
        box: ``(x1, y1, x2, y2)`` pixels.
        size: ``(width, height)`` of the image.
        where: ``"corner"``, ``"top"`` or ``"center"``.

    Returns:
        The marker centre ``(x, y)`` in pixels.

    Raises:
        ValueError: unknown ``where``.
    """
    r = marker_radius(size)
    if where == "corner":
        x, y = box[0] + r, box[1] + r
    elif where == "top":
        x, y = (box[0] + box[2]) / 2, box[1] + r
    elif where == "center":
        x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    else:
        raise ValueError(f"marker position {where!r} is not 'corner', 'top' or 'center'")
    x = min(max(x, r), size[0] - r)
    y = min(max(y, r), size[1] - r)
    return (float(x), float(y))


def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, px))


def draw_marks(
    image: Image.Image,
    boxes: Sequence[BBox] = (),
    markers: Sequence[tuple[float, float]] = (),
    labels: Sequence[str] = (),
    box_labels: Sequence[str] = (),
) -> Image.Image:
    """Draw blue boxes and labelled orange markers on a copy of ``image``.

    Args:
        image: the page (any mode; the result is RGB).
        boxes: ``(x1, y1, x2, y2)`` pixel boxes outlined in solid blue
            (:data:`~ai4va_fg_dataset.schema.BOX_COLOR`), line width :func:`line_width`, drawn
            inside the box so the outline never leaves it.
        markers: marker centres ``(x, y)`` in pixels; each is a filled orange disc
            (:data:`~ai4va_fg_dataset.schema.MARKER_COLOR`) of radius :func:`marker_radius`.
        labels: text written on each marker (``"1"``, ``"2"``); empty, or one per marker.
        box_labels: text of a blue tag at the top-left corner of each box; empty, or one per box.

    Returns:
        A new RGB image; ``image`` is left untouched.

    Raises:
        ValueError: ``labels`` / ``box_labels`` given with a length that does not match
            ``markers`` / ``boxes``.
    """
    if labels and len(labels) != len(markers):
        raise ValueError(f"{len(labels)} labels for {len(markers)} markers")
    if box_labels and len(box_labels) != len(boxes):
        raise ValueError(f"{len(box_labels)} box labels for {len(boxes)} boxes")
    out = image.convert("RGB")  # always a copy
    draw = ImageDraw.Draw(out)
    lw = line_width(out.size)
    r = marker_radius(out.size)
    font = _font(round(1.5 * r))
    stroke = max(1, r // 8)
    for k, box in enumerate(boxes):
        x1, y1, x2, y2 = (round(v) for v in box)
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=BOX_COLOR, width=lw)
        if box_labels:
            text = str(box_labels[k])
            tb = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
            tw, th = tb[2] - tb[0], tb[3] - tb[1]
            pad = max(2, lw)
            tx = min(max(x1, 0), out.width - tw - 2 * pad)
            ty = min(max(y1, 0), out.height - th - 2 * pad)
            draw.rectangle((tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad), fill=BOX_COLOR)
            draw.text(
                (tx + pad - tb[0], ty + pad - tb[1]), text, font=font, fill=LABEL_TEXT_COLOR,
                stroke_width=stroke, stroke_fill=LABEL_OUTLINE_COLOR,
            )
    for k, (cx, cy) in enumerate(markers):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=MARKER_COLOR)
        if labels:
            draw.text(
                (cx, cy), str(labels[k]), font=font, fill=LABEL_TEXT_COLOR, anchor="mm",
                stroke_width=stroke, stroke_fill=LABEL_OUTLINE_COLOR,
            )
    return out


def blank_region(
    image: Image.Image,
    box: Sequence[float],
    color: tuple[int, int, int] = (255, 255, 255),
    polygon: Sequence[tuple[float, float]] | None = None,
) -> Image.Image:
    """A copy of ``image`` (RGB) with a region filled with ``color`` (white by default).

    Panel Reordering blanks the panels it asks about this way. The region is ``polygon`` (pixel
    points) when given, so a panel's neighbours survive when boxes overlap, else ``box``.
    """
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    if polygon:
        draw.polygon([(float(x), float(y)) for x, y in polygon], fill=color, outline=color)
    else:
        x1, y1, x2, y2 = (round(v) for v in box)
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=color)
    return out
