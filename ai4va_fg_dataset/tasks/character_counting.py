"""Character Counting (method.md section 2): how many times does a character appear on the page?

For each identity on the page (at most :data:`MAX_PER_PAGE`), one of its appearances is outlined
with a solid blue box and the question names the identity and points at the box; the answer is
the number of annotated appearances (digits, ``answer_type="number"``) and the grounding boxes
are **every** appearance; ``panel_bboxes`` every panel it appears in, in reading order.
"""

from __future__ import annotations

import random

from ..marks import draw_marks
from ..page import Page
from ..schema import Sample
from .base import TaskGenerator, open_page, panel_boxes

QUESTION = (
    "How many times does {name}, the character marked with the blue box, appear on this page? "
    "Count every appearance in every panel, including the marked one. Answer with a number."
)
UNNAMED_QUESTION = (
    "How many times does the character marked with the blue box appear on this page? "
    "Count every appearance in every panel, including the marked one. Answer with a number."
)
"""For identities that have no name to show (Magi / PopManga page-level clusters)."""


def display_name(page: Page, identity: str, apps) -> str | None:
    """The name a question shows for ``identity``: the source's character name
    (:attr:`~ai4va_fg_dataset.page.Entity.name`, e.g. Manga109 ``"女1"``), else the identity label
    itself when it is book-level (AI4VA), else ``None`` (page-level clusters have no name)."""
    named = next((e.name for e in apps if e.name), None)
    if named:
        return named
    return identity if page.identity_scope == "book" else None
MAX_PER_PAGE = 3
"""Default cap: at most this many identities asked about per page; paper Table 3.1 has 444 / 282 = 1.6 per
page (``--density paper`` caps it at 2; ``--max-per-page character_counting=N``;
:mod:`ai4va_fg_dataset.tasks.density`)."""


class CharacterCountingGenerator(TaskGenerator):
    """Samples: one appearance boxed, the identity named, answer = count, bboxes = all appearances."""

    name = "character_counting"
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
        shown_names = {k: display_name(page, k, groups[k]) for k in names}
        clash = {v for v in shown_names.values() if v is not None and list(shown_names.values()).count(v) > 1}
        if clash:  # two identities shown under one name: the question would not say which
            self.skip("identity: name shared with another identity", sum(shown_names[k] in clash for k in names))
            names = [k for k in names if shown_names[k] not in clash]
        image = open_page(page)
        out = []
        for n, name in enumerate(names[: self.max_per_page]):
            apps = groups[name]
            shown = rng.choice(apps)
            marked = draw_marks(image, boxes=[shown.bbox])
            label = shown_names[name]
            question = QUESTION.format(name=label) if label else UNNAMED_QUESTION
            out.append(self.sample(
                page, n, image=marked, question=question, answer=str(len(apps)),
                answer_type="number", width=marked.width, height=marked.height,
                bboxes=[list(e.bbox) for e in apps], panel_bboxes=panel_boxes(page, apps),
            ))
        return out
