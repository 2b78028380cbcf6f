"""Depth Comparison (method.md section 2): which of two marked entities is closer? 2 options.

Two entities (characters or objects) of the same panel with different ordinal depth (AI4VA
``Intradepth``; smaller = closer) get filled orange markers labelled "1" and "2", centred on the
top edge of each entity's box. The options are "Entity 1" / "Entity 2"; which entity is "1" is
random, so the answer letter is balanced. The grounding boxes are **the two entities** (not their
panel): that is what the marks point at, and the zoom tool can reach both with one crop when
they are close. ``panel_bboxes`` is their (one) panel.
"""

from __future__ import annotations

import math
import random

from ..marks import draw_marks, marker_position, marker_radius
from ..page import Page
from ..schema import Sample
from .base import TaskGenerator, open_page, panel_boxes

QUESTION = (
    "Two entities on this page are marked with orange markers labelled 1 and 2. "
    "Which of the two marked entities is closer to the viewer?"
)
CHOICES = ["Entity 1", "Entity 2"]
MAX_PER_PAGE = 4
"""Default cap: at most one pair per panel and this many pairs per page; paper Table 3.1 has 1125 / 282 = 4.0
per page (build option ``--max-per-page depth_comparison=N``; :mod:`ai4va_fg_dataset.tasks.density`)."""


def _pairs(page: Page):
    by_panel: dict[str, list] = {}
    for e in page.entities:
        if e.depth is not None and e.panel_id is not None:
            by_panel.setdefault(e.panel_id, []).append(e)
    out = {}
    for pid, ents in by_panel.items():
        pairs = [(a, b) for i, a in enumerate(ents) for b in ents[i + 1:] if a.depth != b.depth]
        if pairs:
            out[pid] = pairs
    return out


class DepthComparisonGenerator(TaskGenerator):
    """Samples: two orange numbered markers, options "Entity 1"/"Entity 2", bboxes = both entities."""

    name = "depth_comparison"
    default_max_per_page = MAX_PER_PAGE

    def why_not(self, page: Page) -> str | None:
        if not any(e.depth is not None for e in page.entities):
            return "no entity with an ordinal depth"
        if not _pairs(page):
            return "no two entities of one panel with different ordinal depths"
        return None

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        by_panel = _pairs(page)
        panel_ids = sorted(by_panel)
        rng.shuffle(panel_ids)
        image = open_page(page)
        r = marker_radius(image.size)
        out: list[Sample] = []
        for pid in panel_ids:
            if len(out) >= self.max_per_page:
                break
            pairs = list(by_panel[pid])
            rng.shuffle(pairs)
            for a, b in pairs:
                if rng.random() < 0.5:
                    a, b = b, a
                pa, pb = (marker_position(e.bbox, image.size, "top") for e in (a, b))
                if math.dist(pa, pb) < 2 * r + 2:
                    self.skip("pair: markers would overlap")
                    continue
                marked = draw_marks(image, markers=[pa, pb], labels=["1", "2"])
                out.append(self.sample(
                    page, len(out), image=marked, question=QUESTION, choices=list(CHOICES),
                    answer="A" if a.depth < b.depth else "B", answer_type="choice",
                    width=marked.width, height=marked.height, bboxes=[list(a.bbox), list(b.bbox)], panel_bboxes=panel_boxes(page, [a, b]),
                ))
                break
        return out
