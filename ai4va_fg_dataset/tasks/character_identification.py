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
the two characters.
"""

from __future__ import annotations

import random

from ..marks import draw_marks
from ..page import Page
from ..schema import Sample
from .base import TaskGenerator, open_page, shuffled_choices

SAME = "Yes, they are the same character"
DIFFERENT = "No, they are different characters"
DISTRACTORS = ("The two boxes mark the same panel", "Only one of the boxes contains a character")
QUESTION = "Two characters on this page are marked with blue boxes labelled 1 and 2. Are the two marked characters the same character?"
MAX_PER_PAGE = 4
"""At most this many pairs per page, half same and half different where possible (paper: 2368 / 282)."""


def _chars(page: Page):
    return [e for e in page.characters if e.identity and e.panel_id is not None]


def _pairs(page: Page):
    chars = _chars(page)
    same, diff = [], []
    for i, a in enumerate(chars):
        for b in chars[i + 1:]:
            if a.panel_id != b.panel_id:
                (same if a.identity == b.identity else diff).append((a, b))
    return same, diff


class CharacterIdentificationGenerator(TaskGenerator):
    """Samples: two blue boxes tagged 1/2 in different panels, 4 options, bboxes = both characters."""

    name = "character_identification"
    panel_scope = "multi"
    skill = "recognition"
    default_max_per_page = MAX_PER_PAGE

    def why_not(self, page: Page) -> str | None:
        if not _chars(page):
            return "no character with an identity label"
        same, diff = _pairs(page)
        if not same and not diff:
            return "no identified characters in two different panels"
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
                                               [DIFFERENT if is_same else SAME, *DISTRACTORS], rng)
            out.append(self.sample(
                page, n, image=marked, question=QUESTION, choices=choices, answer=answer,
                answer_type="choice", width=marked.width, height=marked.height,
                bboxes=[list(a.bbox), list(b.bbox)],
            ))
        return out
