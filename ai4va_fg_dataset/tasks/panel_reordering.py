"""Panel Reordering (method.md section 2): put two removed panels back in reading order.

On a page with at least three panels in annotated reading order (``Panel.order``: ACBF, OpenMantra,
AI4VA ``Order``), two panels **consecutive** in that order are blanked white (their outline
polygon where the source has one) and marked with filled orange markers "1" (the earlier
position) and "2" (the later). Their original crops are appended to the right of the page,
labelled "A" and "B" in random order. The options are ``"1: A, 2: B"`` and ``"1: B, 2: A"``; the
answer key is the annotated order. There is no grounding box (method.md: none).
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from ..core.geometry import crop_image
from ..marks import blank_region, draw_marks, marker_position
from ..page import Page
from ..schema import Sample
from .base import TaskGenerator, open_page

MIN_PANELS = 3
MAX_PER_PAGE = 3
"""At most this many (non-overlapping) consecutive pairs per page (paper: 1392 / 282 pages)."""

CHOICES = ["1: A, 2: B", "1: B, 2: A"]
QUESTION = (
    "Two panels of this page have been removed: their places are blank and marked 1 and 2 (orange "
    "markers), with 1 read before 2. The removed panels are shown on the right, labelled A and B. "
    "Which panels fill blank positions 1 and 2 in reading order?{direction}"
)
RTL_NOTE = " (This page is read from right to left.)"
STRIP_FRACTION = 0.4
"""Width of the strip of removed panels, as a fraction of the page width."""


def _composite(page_img: Image.Image, crops: list[Image.Image], labels: list[str]) -> Image.Image:
    """The page with a white strip on its right holding ``crops`` stacked, each labelled."""
    w, h = page_img.size
    strip = max(1, round(STRIP_FRACTION * w))
    pad = max(4, w // 100)
    canvas = Image.new("RGB", (w + strip, h), (255, 255, 255))
    canvas.info["source_format"] = page_img.info.get("source_format")  # export keeps JPEG scans JPEG
    canvas.paste(page_img, (0, 0))
    ImageDraw.Draw(canvas).line((w, 0, w, h), fill=(0, 0, 0), width=max(2, w // 300))
    slot_h = (h - pad * (len(crops) + 1)) / len(crops)
    markers, y = [], pad
    for crop in crops:
        scale = min((strip - 2 * pad) / crop.width, slot_h / crop.height)
        im = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
        x = w + (strip - im.width) // 2
        canvas.paste(im, (x, round(y)))
        markers.append(marker_position((x, y, x + im.width, y + im.height), canvas.size, "corner"))
        y += slot_h + pad
    return draw_marks(canvas, markers=markers, labels=labels)


class PanelReorderingGenerator(TaskGenerator):
    """Samples: two blanked consecutive panels marked 1/2, crops A/B beside the page, 2 options."""

    name = "panel_reordering"
    panel_scope = "multi"
    skill = "understanding"
    default_max_per_page = MAX_PER_PAGE

    def why_not(self, page: Page) -> str | None:
        if len(page.panels) < MIN_PANELS:
            return f"fewer than {MIN_PANELS} panels"
        if any(p.order is None for p in page.panels):
            return "panels without annotated reading order"
        return None

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        panels = sorted(page.panels, key=lambda p: p.order)
        starts = list(range(0, len(panels) - 1, 2))
        offset = rng.randrange(2) if len(panels) % 2 == 1 else 0
        starts = [s + offset for s in starts if s + offset + 1 < len(panels)]
        rng.shuffle(starts)
        image = open_page(page)
        out: list[Sample] = []
        for s in starts[: self.max_per_page]:
            first, second = panels[s], panels[s + 1]
            crops = [crop_image(image, first.bbox), crop_image(image, second.bbox)]
            blanked = image
            for p in (first, second):
                blanked = blank_region(blanked, p.bbox, polygon=p.polygon)
            centres = [marker_position(p.bbox, image.size, "center") for p in (first, second)]
            blanked = draw_marks(blanked, markers=centres, labels=["1", "2"])
            a_is_first = rng.random() < 0.5
            strip = crops if a_is_first else crops[::-1]
            composite = _composite(blanked, strip, ["A", "B"])
            out.append(self.sample(
                page, len(out), image=composite,
                question=QUESTION.format(direction=RTL_NOTE if page.reading_direction == "rtl" else ""),
                choices=list(CHOICES), answer="A" if a_is_first else "B", answer_type="choice",
                width=composite.width, height=composite.height,
            ))
        return out
