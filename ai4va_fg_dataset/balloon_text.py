"""Render transcribed dialog back into the balloons of text-erased pages (Mimi & Eunice).

The Mimi and Eunice strips ship with their lettering erased; each dialog line comes with a rectangle
(``word-bubbles/NNN.tsv``) "in which text can be put" and the strips' own hand-lettering font, Nina
Improved (``fonts/NinaImproved{Light,Medium,Bold}.ttf``, beside ``images/``). Tasks whose image must
carry the dialog (Dialog Reordering, Speaker Attribution) draw each line into its rectangle with
:func:`render_balloon_text`, so the page reads as the published strip; without that the question
is text-only.

Layout: the text is word-wrapped and set centred in its rectangle, in black, at the largest font size
(in pixels, at most :data:`MAX_FONT_FRACTION` of the page height) at which the wrapped block fits
inside the rectangle shrunk by :data:`PADDING` on each side; sound effects (``kind == "sfx"``) use the
bold face. Nothing is filled: the erased balloon (and its outline) stays as drawn.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .page import Balloon, Page

TEXT_COLOR = (0, 0, 0)
PADDING = 0.06
"""Inner margin of a rectangle, as a fraction of its shorter side, on each side."""
MIN_FONT_PX = 8
MAX_FONT_FRACTION = 0.08
"""Largest font size as a fraction of the page height (keeps one-word lines from becoming posters)."""
LINE_SPACING = 1.15
FONT_FILES = {"regular": "NinaImprovedMedium.ttf", "bold": "NinaImprovedBold.ttf"}
"""The font files of the Mimi & Eunice dataset's ``fonts/`` folder, by weight."""

TEXT_ERASED_BOOKS = frozenset({"Mimi and Eunice"})
"""``Page.book`` values whose images have their lettering erased (the text must be rendered)."""


def is_text_erased(page: Page) -> bool:
    """Whether ``page`` comes from a source whose images have the lettering erased."""
    return page.book in TEXT_ERASED_BOOKS


def font_dir_for(page: Page) -> Path | None:
    """The dataset's ``fonts/`` folder (beside the page's ``images/`` folder), or ``None``."""
    folder = Path(page.image_path).resolve().parent.parent / "fonts"
    return folder if folder.is_dir() else None


@functools.lru_cache(maxsize=64)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is not None:
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _wrap(draw: ImageDraw.ImageDraw, words: list[str], font, max_w: float) -> list[str] | None:
    """Greedy word wrap of ``words`` to ``max_w`` pixels; ``None`` when one word is wider."""
    lines: list[str] = []
    for word in words:
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(trial, font=font) <= max_w:
            lines[-1] = trial
        else:
            if draw.textlength(word, font=font) > max_w:
                return None
            lines.append(word)
    return lines


def fit_text(text: str, box: Sequence[float], font_path: str | None, max_px: int,
             draw: ImageDraw.ImageDraw) -> tuple[int, list[str]]:
    """The largest font size (pixels) and wrapped lines at which ``text`` fits in ``box``.

    Args:
        text: the line (whitespace-separated words).
        box: ``(x1, y1, x2, y2)`` pixels.
        font_path: a TrueType file, or ``None`` for PIL's default font.
        max_px: the largest size tried.
        draw: any ``ImageDraw`` (used to measure).

    Returns:
        ``(size, lines)``; when nothing fits, :data:`MIN_FONT_PX` and the text wrapped at that size
        (it may overflow the box a little rather than be left out).
    """
    pad = PADDING * min(box[2] - box[0], box[3] - box[1])
    max_w, max_h = box[2] - box[0] - 2 * pad, box[3] - box[1] - 2 * pad
    words = text.split()
    lo, hi, best = MIN_FONT_PX, max(MIN_FONT_PX, max_px), None
    while lo <= hi:
        mid = (lo + hi) // 2
        font = _font(font_path, mid)
        lines = _wrap(draw, words, font, max_w)
        if lines is not None and len(lines) * mid * LINE_SPACING <= max_h:
            best, lo = (mid, lines), mid + 1
        else:
            hi = mid - 1
    if best is None:
        font = _font(font_path, MIN_FONT_PX)
        best = (MIN_FONT_PX, _wrap(draw, words, font, max_w) or [" ".join(words)])
    return best


def render_balloon_text(image: Image.Image, balloons: Sequence[Balloon], font_dir: str | Path | None = None
                        ) -> Image.Image:
    """A copy of ``image`` (RGB) with each balloon's text drawn into its ``bbox``.

    Args:
        image: the (text-erased) page; balloon boxes are in its pixels.
        balloons: the lines to draw; ``Balloon.texts["en"]`` or ``Balloon.text`` is used, balloons
            without text are left out. ``kind == "sfx"`` is set bold.
        font_dir: folder holding :data:`FONT_FILES` (Mimi & Eunice ``fonts/``); ``None`` or missing
            files: PIL's default scalable font.

    Returns:
        A new RGB image of the same size; ``image`` is left untouched.

    Raises:
        ValueError: a balloon box with no area.
    """
    out = image.convert("RGB")
    out.info["source_format"] = image.info.get("source_format")
    draw = ImageDraw.Draw(out)
    paths = {}
    for weight, name in FONT_FILES.items():
        p = Path(font_dir) / name if font_dir is not None else None
        paths[weight] = str(p) if p is not None and p.is_file() else None
    max_px = max(MIN_FONT_PX, round(MAX_FONT_FRACTION * out.height))
    for b in balloons:
        text = b.texts.get("en") or b.text
        if not text or not text.strip():
            continue
        x1, y1, x2, y2 = b.bbox
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"balloon {b.id}: box {list(b.bbox)!r} has no area")
        path = paths["bold" if b.kind == "sfx" else "regular"]
        size, lines = fit_text(text, b.bbox, path, max_px, draw)
        font = _font(path, size)
        step = size * LINE_SPACING
        top = (y1 + y2) / 2 - step * len(lines) / 2
        for k, line in enumerate(lines):
            draw.text(((x1 + x2) / 2, top + step * (k + 0.5)), line, font=font, fill=TEXT_COLOR, anchor="mm")
    return out


def render_page_text(page: Page, image: Image.Image) -> Image.Image:
    """:func:`render_balloon_text` of all of ``page``'s balloons, with the page's dataset fonts."""
    return render_balloon_text(image, page.balloons, font_dir_for(page))
