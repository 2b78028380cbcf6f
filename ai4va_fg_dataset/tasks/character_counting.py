"""Character Counting (method.md section 2): how many times does a character appear on the page?

For each identity on the page (at most :data:`MAX_PER_PAGE`), one of its appearances is outlined
with a solid blue box and the question names the identity and points at the box; the answer is
the number of annotated appearances (digits, ``answer_type="number"``) and the grounding boxes
are **every** appearance.
"""

from __future__ import annotations

import random

from ..marks import draw_marks
from ..page import Page
from ..schema import Sample
from .base import TaskGenerator, open_page

QUESTION = (
    "How many times does {name}, the character marked with the blue box, appear on this page? "
    "Count every appearance in every panel, including the marked one. Answer with a number."
)
MAX_PER_PAGE = 3
"""At most this many identities asked about per page (paper: 444 questions / 282 pages)."""


class CharacterCountingGenerator(TaskGenerator):
    """Samples: one appearance boxed, the identity named, answer = count, bboxes = all appearances."""

    name = "character_counting"
    panel_scope = "multi"
    skill = "recognition"
    default_max_per_page = MAX_PER_PAGE

    def why_not(self, page: Page) -> str | None:
        if not any(e.identity for e in page.characters):
            return "no character with an identity label"
        return None

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        groups: dict[str, list] = {}
        for e in page.characters:
            if e.identity:
                groups.setdefault(e.identity, []).append(e)
        names = sorted(groups)
        rng.shuffle(names)
        image = open_page(page)
        out = []
        for n, name in enumerate(names[: self.max_per_page]):
            apps = groups[name]
            shown = rng.choice(apps)
            marked = draw_marks(image, boxes=[shown.bbox])
            out.append(self.sample(
                page, n, image=marked, question=QUESTION.format(name=name), answer=str(len(apps)),
                answer_type="number", width=marked.width, height=marked.height,
                bboxes=[list(e.bbox) for e in apps],
            ))
        return out
