"""Speaker Attribution (issue 11, the eighth task): who says the marked balloon?

One balloon with an **annotated** speaker link is outlined with a blue box tagged ``?``. The key
comes only from the annotation, never from proximity:

- **box mode** (``Balloon.speaker_id`` names a character entity of the page: Manga109 +
  Manga109Dialog ``speaker_to_text``, PopManga ``text_to_character_matches``, Magi
  ``text_character_associations``): the speaker and up to three other characters of the page are
  outlined with blue boxes tagged ``A``-``D`` in random order; the options are
  ``"the character in box A"``...; the answer is the speaker's letter. A distractor is never the
  same character as the speaker (its identity differs; a character without identity, e.g.
  Manga109 "Others", is never a distractor of a speaker without identity), and never a box that
  overlaps an already marked candidate by more than :data:`MAX_CANDIDATE_IOU` (the tags would
  merge). Characters in the speaker's panel are taken first, so the answer is not the only
  character near the balloon.
- **name mode** (``Balloon.speaker_name``: Mimi & Eunice ``M`` -> Mimi, ``E`` -> Eunice...; the
  source names characters but has no character boxes): the options are the names of the characters
  who speak on the page, at most four, shuffled; a page where only one character speaks feeds
  nothing (never a choice that is not on the page). The question quotes the line, and since
  Mimi & Eunice images are text-erased every line of the strip is drawn back into its rectangle
  in the strip's font (:func:`~ai4va_fg_dataset.balloon_text.render_page_text`), as published.

Per page at most :data:`MAX_PER_PAGE` balloons, taken round-robin over speakers so no speaker
dominates a page's keys. Grounding boxes (``bboxes``): the marked balloon, then the speaker's box
(box mode only). Chance is 1 / number of options (2 to 4).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..balloon_text import is_text_erased, render_page_text
from ..core.geometry import iou
from ..core.prompts import CHOICE_LETTERS
from ..marks import draw_marks
from ..page import Balloon, Entity, Page
from ..schema import Sample
from .base import TaskGenerator, open_page, panel_boxes, shuffled_choices

MAX_PER_PAGE = 4
"""At most this many marked balloons per page."""
MAX_CHOICES = 4
"""Options per question where the page has enough characters (issue 11: 4 where possible)."""
MAX_CANDIDATE_IOU = 0.3
"""Two candidate boxes overlapping more than this (IoU) are never both marked."""

BOX_QUESTION = (
    "The speech balloon outlined with the blue box tagged \"?\" is said by one of the characters "
    "outlined with the blue boxes tagged {letters}. Which character says it?"
)
NAME_QUESTION = (
    "The text area outlined with the blue box tagged \"?\" holds the line \"{text}\". "
    "Which character says it?"
)
BOX_CHOICE = "the character in box {letter}"


def _speaker(page: Page, b: Balloon) -> Entity | None:
    """The annotated speaker entity of ``b`` (a character of ``page``) or ``None``."""
    if b.speaker_id is None:
        return None
    for e in page.characters:
        if e.id == b.speaker_id:
            return e
    return None


def _distractors(page: Page, speaker: Entity) -> list[Entity]:
    """Characters of ``page`` that are certainly not ``speaker`` (see the module docstring)."""
    out = []
    for e in page.characters:
        if e.id == speaker.id:
            continue
        if speaker.identity is None:
            if e.identity is None:
                continue
        elif e.identity == speaker.identity:
            continue
        out.append(e)
    return out


def _names(page: Page) -> list[str]:
    """Names of the characters who speak on ``page`` (name mode), in first-line order."""
    seen: list[str] = []
    for b in page.balloons:
        if b.speaker_name and b.speaker_name not in seen:
            seen.append(b.speaker_name)
    return seen


def _line(b: Balloon) -> str | None:
    t = b.texts.get("en") or b.text
    return " ".join(t.split()) if t else None


def _pick_candidates(speaker: Entity, pool: Sequence[Entity], rng: random.Random) -> list[Entity]:
    """The speaker and up to ``MAX_CHOICES - 1`` distractors, same-panel ones first, none
    overlapping another candidate by more than :data:`MAX_CANDIDATE_IOU`."""
    pool = list(pool)
    rng.shuffle(pool)
    pool.sort(key=lambda e: not (speaker.panel_id is not None and e.panel_id == speaker.panel_id))
    chosen = [speaker]
    for e in pool:
        if len(chosen) >= MAX_CHOICES:
            break
        if all(iou(e.bbox, c.bbox) <= MAX_CANDIDATE_IOU for c in chosen):
            chosen.append(e)
    return chosen


class SpeakerAttributionGenerator(TaskGenerator):
    """Samples: one balloon tagged ``?``; options = boxed candidate characters or speaker names;
    bboxes = the balloon (+ the speaker's box)."""

    name = "speaker_attribution"
    default_max_per_page = MAX_PER_PAGE

    def _box_items(self, page: Page) -> list[tuple[Balloon, Entity]]:
        out = []
        for b in page.balloons:
            s = _speaker(page, b)
            if s is not None and any(iou(e.bbox, s.bbox) <= MAX_CANDIDATE_IOU for e in _distractors(page, s)):
                out.append((b, s))
        return out

    def _name_items(self, page: Page) -> list[Balloon]:
        if len(_names(page)) < 2:
            return []
        return [b for b in page.balloons if b.speaker_name and _speaker(page, b) is None and _line(b)]

    def why_not(self, page: Page) -> str | None:
        if not any(b.speaker_id or b.speaker_name for b in page.balloons):
            return "no balloon with an annotated speaker"
        if not self._box_items(page) and not self._name_items(page):
            return "no linked speaker with another character on the page to choose from"
        return None

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        items: list[tuple[Balloon, Entity | None]] = list(self._box_items(page))
        items += [(b, None) for b in self._name_items(page)]
        # round-robin over speakers, so no speaker dominates the page's keys
        by_speaker: dict[str, list[tuple[Balloon, Entity | None]]] = {}
        for b, s in items:
            key = s.identity or s.id if s is not None else b.speaker_name or ""
            by_speaker.setdefault(key, []).append((b, s))
        queues = list(by_speaker.values())
        for q in queues:
            rng.shuffle(q)
        rng.shuffle(queues)
        picked: list[tuple[Balloon, Entity | None]] = []
        while len(picked) < (self.max_per_page or len(items)) and any(queues):
            for q in queues:
                if q and len(picked) < (self.max_per_page or len(items)):
                    picked.append(q.pop())
        image = open_page(page)
        image = self._with_text(page, image)
        out = []
        for n, (b, s) in enumerate(picked):
            out.append(self._box_sample(page, image, b, s, n, rng) if s is not None
                       else self._name_sample(page, image, b, n, rng))
        return out

    @staticmethod
    def _with_text(page: Page, image):
        """``image`` with the page's transcribed lines drawn back into their rectangles when the
        source's images are text-erased (Mimi & Eunice), as Dialog Reordering shows them
        (:func:`~ai4va_fg_dataset.balloon_text.render_page_text`); otherwise ``image`` unchanged."""
        return render_page_text(page, image) if is_text_erased(page) else image

    def _box_sample(self, page: Page, image, b: Balloon, s: Entity, n: int, rng: random.Random) -> Sample:
        cands = _pick_candidates(s, _distractors(page, s), rng)
        rng.shuffle(cands)
        letters = list(CHOICE_LETTERS[: len(cands)])
        marked = draw_marks(image, boxes=[b.bbox, *(c.bbox for c in cands)], box_labels=["?", *letters])
        choices = [BOX_CHOICE.format(letter=L) for L in letters]
        answer = letters[cands.index(s)]
        panels = {b.panel_id, *(c.panel_id for c in cands)}
        return self.sample(
            page, n, image=marked,
            question=BOX_QUESTION.format(letters=", ".join(letters[:-1]) + " and " + letters[-1]),
            choices=choices, answer=answer, answer_type="choice", width=marked.width, height=marked.height,
            bboxes=[list(b.bbox), list(s.bbox)], panel_bboxes=panel_boxes(page, [b, s]),
            panel_scope="single" if len(panels) == 1 and None not in panels else "multi",
        )

    def _name_sample(self, page: Page, image, b: Balloon, n: int, rng: random.Random) -> Sample:
        others = [x for x in _names(page) if x != b.speaker_name]
        rng.shuffle(others)
        choices, answer = shuffled_choices(b.speaker_name, others[: MAX_CHOICES - 1], rng)
        marked = draw_marks(image, boxes=[b.bbox], box_labels=["?"])
        return self.sample(
            page, n, image=marked, question=NAME_QUESTION.format(text=_line(b)),
            choices=choices, answer=answer, answer_type="choice", width=marked.width, height=marked.height,
            bboxes=[list(b.bbox)], panel_bboxes=panel_boxes(page, [b]),
            panel_scope="single" if page.panels and b.panel_id is not None else "multi",
        )
