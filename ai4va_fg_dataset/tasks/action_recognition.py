"""Action Recognition (method.md section 2): what is the marked character doing? 4 options.

One character with a pose/action label is outlined with a solid blue box; the distractors are
other pose labels seen in the loaded pages (collected by :meth:`prepare`), topped up from
:data:`DEFAULT_ACTIONS` when the pages carry fewer than four distinct labels. The grounding box is
the character; ``panel_bboxes`` its panel.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..marks import draw_marks
from ..page import Page
from ..schema import Sample
from .base import TaskGenerator, open_page, panel_boxes, shuffled_choices

DEFAULT_ACTIONS: tuple[str, ...] = (
    "standing", "walking", "running", "sitting", "jumping", "talking", "pointing", "waving",
    "fighting", "falling", "eating", "reading", "sleeping", "climbing", "carrying something",
)
"""Common comic actions, used as distractors only when the data has fewer than 4 pose labels."""

QUESTION = "What is the character marked with the blue box doing?"
N_OPTIONS = 4
MAX_PER_PAGE = 6
"""Default cap: at most this many characters of a page are asked about; paper Table 3.1 has 1669 / 282 = 5.9
per page, so this default already reaches it where a page has 6 labelled characters (build option
``--max-per-page action_recognition=N``; :mod:`ai4va_fg_dataset.tasks.density`)."""


def _norm(label: str) -> str:
    return " ".join(label.lower().split())


class ActionRecognitionGenerator(TaskGenerator):
    """Samples: blue-boxed character, 4 pose options, answer letter, bbox = the character."""

    name = "action_recognition"
    default_max_per_page = MAX_PER_PAGE

    def __init__(self, vocabulary: Sequence[str] | None = None, max_per_page: int | None = None):
        super().__init__(max_per_page)
        self.fixed_vocabulary = list(vocabulary) if vocabulary else None
        self.vocabulary: list[str] = list(self.fixed_vocabulary or [])

    def prepare(self, pages: Sequence[Page]) -> None:
        """Collect the distinct pose labels of ``pages`` (sorted, case-insensitive), plus defaults
        when fewer than :data:`N_OPTIONS`."""
        if self.fixed_vocabulary:
            labels = self.fixed_vocabulary
        else:
            labels = sorted({e.pose.strip() for p in pages for e in p.characters if e.pose and e.pose.strip()})
        seen, vocab = set(), []
        for label in labels:
            if _norm(label) not in seen:
                seen.add(_norm(label))
                vocab.append(label)
        for label in DEFAULT_ACTIONS:
            if len(vocab) >= N_OPTIONS:
                break
            if _norm(label) not in seen:
                seen.add(_norm(label))
                vocab.append(label)
        self.vocabulary = vocab

    def why_not(self, page: Page) -> str | None:
        if not any(e.pose and e.pose.strip() for e in page.characters):
            return "no character with a pose/action label"
        return None

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        if len(self.vocabulary) < N_OPTIONS:
            self.prepare([page])
        chars = [e for e in page.characters if e.pose and e.pose.strip()]
        if len(chars) > self.max_per_page:
            chars = rng.sample(chars, self.max_per_page)
        image = open_page(page)
        out = []
        for n, char in enumerate(chars):
            correct = char.pose.strip()
            pool = [v for v in self.vocabulary if _norm(v) != _norm(correct)]
            distractors = rng.sample(pool, N_OPTIONS - 1)
            choices, answer = shuffled_choices(correct, distractors, rng)
            marked = draw_marks(image, boxes=[char.bbox])
            out.append(self.sample(
                page, n, image=marked, question=QUESTION, choices=choices, answer=answer,
                answer_type="choice", width=marked.width, height=marked.height, bboxes=[list(char.bbox)],
                panel_bboxes=panel_boxes(page, [char]),
            ))
        return out
