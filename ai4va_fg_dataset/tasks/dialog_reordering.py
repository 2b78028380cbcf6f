"""Dialog Reordering (method.md section 2): the balloon texts are given shuffled; pick the order.

From a page's transcribed balloons in annotated reading order (ACBF text areas, OpenMantra text
boxes, Mimi & Eunice lines, AI4VA ``Order``), windows of 3 or 4 consecutive balloons are taken;
their texts are listed in the question in a shuffled, numbered order (never the reading order
itself) and the two options are the correct order and one wrong permutation, e.g. ``"2, 3, 1"``
vs ``"3, 1, 2"``. Nothing is drawn (the image is the page file) and there is no grounding box.
English text is used where the source has it (``Balloon.texts["en"]``), else ``Balloon.text``.
"""

from __future__ import annotations

import itertools
import random

from ..page import Balloon, Page
from ..schema import Sample
from .base import TaskGenerator, page_bytes, shuffled_choices

MIN_BALLOONS = 3
MAX_PER_PAGE = 4
"""At most this many windows per page (paper: 1364 questions / 282 pages)."""

QUESTION = (
    "The following lines of dialog come from speech balloons on this page, listed in a shuffled "
    "order:\n{lines}\nIn which order are these lines read on the page?{direction}"
)
RTL_NOTE = " (This page is read from right to left.)"


def _text(b: Balloon) -> str | None:
    t = b.texts.get("en") or b.text
    t = " ".join(t.split()) if t else None
    return t or None


def _ordered(page: Page) -> list[tuple[Balloon, str]]:
    items = [(b, _text(b)) for b in page.balloons if b.order is not None]
    return [(b, t) for b, t in sorted(items, key=lambda bt: bt[0].order) if t]


class DialogReorderingGenerator(TaskGenerator):
    """Samples: shuffled numbered texts in the question, 2 order options, no marks, no bboxes."""

    name = "dialog_reordering"
    panel_scope = "multi"
    skill = "understanding"
    default_max_per_page = MAX_PER_PAGE

    def why_not(self, page: Page) -> str | None:
        if len(_ordered(page)) < MIN_BALLOONS:
            return f"fewer than {MIN_BALLOONS} transcribed balloons in annotated reading order"
        return None

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        ordered = _ordered(page)
        windows = []
        start = 0
        while start + MIN_BALLOONS <= len(ordered):
            k = min(rng.choice((3, 4)), len(ordered) - start)
            windows.append(ordered[start:start + k])
            start += k
        rng.shuffle(windows)
        data = None
        out: list[Sample] = []
        for window in windows:
            if len(out) >= self.max_per_page:
                break
            texts = [t for _, t in window]
            if len(set(texts)) != len(texts):
                self.skip("window: repeated balloon text")
                continue
            k = len(texts)
            perms = [p for p in itertools.permutations(range(k)) if list(p) != list(range(k))]
            shown = list(rng.choice(perms))  # shown[j] = reading index of the j-th listed line
            # correct answer: listed numbers in reading order
            correct = [shown.index(r) + 1 for r in range(k)]
            wrong_perms = [list(p) for p in itertools.permutations(range(1, k + 1)) if list(p) != correct]
            wrong = rng.choice(wrong_perms)
            choices, answer = shuffled_choices(", ".join(map(str, correct)), [", ".join(map(str, wrong))], rng)
            lines = "\n".join(f'{j + 1}. "{texts[shown[j]]}"' for j in range(k))
            panels = {b.panel_id for b, _ in window}
            data = data if data is not None else page_bytes(page)
            out.append(self.sample(
                page, len(out), image=data,
                question=QUESTION.format(lines=lines, direction=RTL_NOTE if page.reading_direction == "rtl" else ""),
                choices=choices, answer=answer, answer_type="choice", width=page.width, height=page.height,
                panel_scope="single" if len(panels) == 1 and None not in panels else "multi",
            ))
        return out
