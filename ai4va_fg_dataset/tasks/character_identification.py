"""Character Identification (method.md section 2): are two marked characters the same one?

Two characters with identity labels, in **different panels**, are outlined with solid blue boxes
tagged "1" and "2". The paper uses 4 options but reports a 50% random baseline: two options
answer the question and two are distractors that the marks rule out by construction (the boxes
are in different panels and both hold a character), so a model that reads the marks is choosing
between two. We use:

* "Yes, they are the same character"
* "No, they are different characters"
* "The two boxes mark the same panel" (never true: the panels differ)
* "Only one of the boxes contains a character" (never true: both are annotated characters)

Same / different pairs are balanced per page where the page has both. The grounding boxes are
the two characters; ``panel_bboxes`` their two panels, in reading order.
"""

from __future__ import annotations

import random

from ..core.geometry import intersection
from ..marks import draw_marks
from ..page import Page
from ..schema import Sample
from .base import TaskGenerator, open_page, panel_boxes, shuffled_choices

SAME = "Yes, they are the same character"
DIFFERENT = "No, they are different characters"
DISTRACTORS = ("The two boxes mark the same panel", "Only one of the boxes contains a character")
PANELLESS_DISTRACTORS = ("The two boxes overlap", "Only one of the boxes contains a character")
"""Distractors on a page without panel boxes (PopManga annotations): the pair is then any two
identified characters whose boxes do not overlap, so "the two boxes overlap" is never true."""
QUESTION = "Two characters on this page are marked with blue boxes labelled 1 and 2. Are the two marked characters the same character?"
MAX_PER_PAGE = 4
"""Default cap: at most this many pairs per page, half same and half different where possible. Below paper
Table 3.1's 2368 / 282 = 8.4 per page on purpose: pairs of one page share characters (near duplicates), so a
small build is not dominated by its richest pages; ``--density paper`` (9) or ``--max-per-page
character_identification=N`` reach the paper's density (:mod:`ai4va_fg_dataset.tasks.density`)."""


def _chars(page: Page):
    """Identified characters; on a page with panels only those inside a panel (panel membership is
    used only where panels exist: a PopManga page has none)."""
    return [e for e in page.characters if e.identity and (e.panel_id is not None or not page.panels)]


def _pairs(page: Page):
    """``(same, different)`` pairs: each unordered pair once, in different panels where the page has
    panels, and never two boxes that overlap (the marks would merge)."""
    chars = _chars(page)
    same, diff = [], []
    for i, a in enumerate(chars):
        for b in chars[i + 1:]:
            if (a.panel_id != b.panel_id or not page.panels) and intersection(a.bbox, b.bbox) == 0:
                (same if a.identity == b.identity else diff).append((a, b))
    return same, diff


class CharacterIdentificationGenerator(TaskGenerator):
    """Samples: two blue boxes tagged 1/2 in different panels, 4 options, bboxes = both characters."""

    name = "character_identification"
    default_max_per_page = MAX_PER_PAGE

    def why_not(self, page: Page) -> str | None:
        if not _chars(page):
            return "no character with an identity label"
        same, diff = _pairs(page)
        if not same and not diff:
            return "no two non-overlapping identified characters (in different panels where the page has panels)"
        return None

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        same, diff = _pairs(page)
        rng.shuffle(same)
        rng.shuffle(diff)
        picked = []
        want_same = rng.random() < 0.5  # alternate same / different, so the answers stay balanced
        while len(picked) < self.max_per_page and (same or diff):
            pool = same if (want_same and same) or not diff else diff
            a, b = pool.pop()
            picked.append((a, b, pool is same))
            want_same = not want_same
        image = open_page(page)
        out = []
        for n, (a, b, is_same) in enumerate(picked):
            if rng.random() < 0.5:
                a, b = b, a
            marked = draw_marks(image, boxes=[a.bbox, b.bbox], box_labels=["1", "2"])
            choices, answer = shuffled_choices(SAME if is_same else DIFFERENT,
                                               [DIFFERENT if is_same else SAME,
                                                *(DISTRACTORS if page.panels else PANELLESS_DISTRACTORS)], rng)
            out.append(self.sample(
                page, n, image=marked, question=QUESTION, choices=choices, answer=answer,
                answer_type="choice", width=marked.width, height=marked.height,
                bboxes=[list(a.bbox), list(b.bbox)], panel_bboxes=panel_boxes(page, [a, b]),
            ))
        return out
