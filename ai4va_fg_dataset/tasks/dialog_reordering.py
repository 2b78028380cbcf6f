"""Dialog Reordering (method.md section 2): the balloon texts are given shuffled; pick the order.

From a page's transcribed balloons in annotated reading order (ACBF text areas, OpenMantra text
boxes, Mimi & Eunice lines, AI4VA ``Order``), windows of 3 or 4 consecutive content lines are
taken; their texts are listed in the question in a numbered order and the two options are the
correct reading order of the listed numbers and one wrong permutation, e.g. ``"2, 3, 1"`` vs
``"3, 1, 2"``. There is no grounding box. English text is used where the source has it
(``Balloon.texts["en"]``), else ``Balloon.text``.

Validity rules (issue 8; measured by ``ai4va-fg audit``):

* **Content lines only.** A line with fewer than :data:`MIN_CONTENT_CHARS` letters or digits
  (``"!"``, ``"...."``, ``"you"``) is dropped before windows are cut; a window with a repeated
  text is skipped.
* **Checked key.** Where balloons have boxes, the annotated order of the page's content lines is
  checked against the geometry in reading order
  (:func:`~ai4va_fg_dataset.reading_order.balloon_order_conflicts`: a line whose successor sits in
  an earlier panel, wholly above it in the same column, or beside it on the side read first);
  pages with a contradiction are excluded (``build_report.json`` ``excluded``) unless
  ``check_keys=False``.
* **No surface shortcut.** Items of a split are paired (windows of as many lines,
  :func:`~ai4va_fg_dataset.tasks.balance.balanced_pairs`); both items of a pair offer the same two
  permutations, correct in one and the distractor in the other, so any rule that sees only the
  options is right on exactly one of the two. Pairs cycle through :data:`ROLES`: the listed order
  itself (``"1, 2, 3"``) is offered in a third of the items and is then correct half of the time,
  and so is the reversed order. Never (or always) picking the listed or the reversed order is
  therefore at chance; the answer letter is balanced by the build.
* **Text on text-erased pages.** Mimi & Eunice strips have their lettering erased; their image is
  the strip with every line rendered into its rectangle in the strip's own font
  (:func:`~ai4va_fg_dataset.balloon_text.render_page_text`), so the image carries the text as
  published. Other sources: the untouched page file.
"""

from __future__ import annotations

import itertools
import random

from ..balloon_text import is_text_erased, render_page_text
from ..page import Balloon, Page
from ..reading_order import balloon_order_conflicts, reading_order
from ..schema import Sample
from .balance import CheckedOrderGenerator
from .base import TaskGenerator, open_page, page_bytes

MIN_BALLOONS = 3
MAX_PER_PAGE = 4
"""At most this many windows per page (paper: 1364 questions / 282 pages)."""

MIN_CONTENT_CHARS = 4
"""Least number of letters / digits a line needs to be used (``"you"``, ``"!!"``, ``"...."`` are not)."""

ROLES = ("listed", "reversed", "free")
"""Balanced pair roles (cycled over the pairs of each split): one option of the pair is the listed
order ``"1, 2, .."`` (``listed``), the reversed order (``reversed``), or neither is (``free``); the
other option is a permutation that is neither. In one item of the pair the first option is
correct, in the other the second (:func:`options_for`)."""

QUESTION = (
    "The following lines of dialog come from speech balloons on this page, listed in a random "
    "order:\n{lines}\nIn which order are these lines read on the page?{direction}"
)
RTL_NOTE = " (This page is read from right to left.)"


def _text(b: Balloon) -> str | None:
    t = b.texts.get("en") or b.text
    t = " ".join(t.split()) if t else None
    return t or None


def has_content(text: str) -> bool:
    """Whether ``text`` has at least :data:`MIN_CONTENT_CHARS` letters or digits."""
    return sum(c.isalnum() for c in text) >= MIN_CONTENT_CHARS


def content_lines(page: Page) -> list[tuple[Balloon, str]]:
    """``(balloon, text)`` of the page's transcribed content lines, in annotated reading order."""
    items = [(b, _text(b)) for b in page.balloons if b.order is not None]
    return [(b, t) for b, t in sorted(items, key=lambda bt: bt[0].order) if t and has_content(t)]


def _fmt(perm) -> str:
    return ", ".join(map(str, perm))


def options_for(role: str, k: int, member: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """``(correct, wrong)`` permutations of ``1..k`` (listed numbers in reading order) for ``role``.

    ``correct`` is the reading order of the listed lines; the identity ``[1..k]`` means the lines
    are listed in reading order and ``[k..1]`` that they are listed reversed. ``rng`` draws the
    pair's two permutations ``(P, Q)`` (the same for both members when seeded alike); member 0
    gets ``(P, Q)``, member 1 ``(Q, P)``.

    Raises:
        ValueError: unknown ``role``, ``k`` < 3 or ``member`` not 0 / 1.
    """
    if k < 3:
        raise ValueError(f"a dialog window needs at least 3 lines, got {k}")
    if member not in (0, 1):
        raise ValueError(f"pair member must be 0 or 1, got {member!r}")
    ident, rev = list(range(1, k + 1)), list(range(k, 0, -1))
    free = [list(p) for p in itertools.permutations(ident) if list(p) not in (ident, rev)]
    if role == "listed":
        pair = [ident, rng.choice(free)]
    elif role == "reversed":
        pair = [rev, rng.choice(free)]
    elif role == "free":
        first = rng.choice(free)
        pair = [first, rng.choice([p for p in free if p != first])]
    else:
        raise ValueError(f"unknown dialog role {role!r}; expected one of {list(ROLES)}")
    rng.shuffle(pair)
    return (pair[0], pair[1]) if member == 0 else (pair[1], pair[0])


class DialogReorderingGenerator(CheckedOrderGenerator, TaskGenerator):
    """Samples: numbered texts in the question, 2 order options, no marks, no bboxes.

    Args:
        max_per_page: at most this many windows per page (default :data:`MAX_PER_PAGE`).
        check_keys: exclude pages whose annotated balloon order contradicts the balloon geometry
            (default ``True``).
    """

    name = "dialog_reordering"
    default_max_per_page = MAX_PER_PAGE
    n_levels = len(ROLES)

    def __init__(self, max_per_page: int | None = None, *, check_keys: bool = True) -> None:
        super().__init__(max_per_page)
        self._init_checked(check_keys)

    def why_not(self, page: Page) -> str | None:
        if len(content_lines(page)) < MIN_BALLOONS:
            return (f"fewer than {MIN_BALLOONS} transcribed content lines (>= {MIN_CONTENT_CHARS} letters) "
                    "in annotated reading order")
        return self._checked(page)

    def _order_conflict(self, page: Page) -> str | None:
        lines = [b for b, _ in content_lines(page)]
        ranks = None
        if page.panels:
            rank = {page.panels[i].id: r for r, i in enumerate(reading_order([p.bbox for p in page.panels],
                                                                             page.reading_direction))}
            ranks = [rank.get(b.panel_id) if b.panel_id is not None else None for b in lines]
        bad = balloon_order_conflicts([b.bbox for b in lines], page.reading_direction, ranks)
        if bad:
            return "annotated balloon order contradicts the balloon geometry"
        return None

    def _plan(self, page: Page, rng: random.Random) -> list[list[tuple[Balloon, str]]]:
        ordered = content_lines(page)
        windows = []
        start = 0
        while start + MIN_BALLOONS <= len(ordered):
            k = min(rng.choice((3, 4)), len(ordered) - start)
            windows.append(ordered[start:start + k])
            start += k
        rng.shuffle(windows)
        out = []
        for window in windows:
            texts = [t for _, t in window]
            if len(set(texts)) != len(texts):
                self.skip("window: repeated balloon text")
                continue
            out.append(window)
        return out[: self.max_per_page]

    def _item_class(self, item) -> int:
        return len(item)  # windows are paired with windows of as many lines

    def _image(self, page: Page):
        if is_text_erased(page):
            return render_page_text(page, open_page(page))
        return page_bytes(page)

    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        windows = self._plan(page, rng)
        data = None
        out: list[Sample] = []
        for n, window in enumerate(windows):
            texts = [t for _, t in window]
            k = len(texts)
            slot = self.slot(page, n, rng)
            correct, wrong = options_for(ROLES[slot.level], k, slot.member, random.Random(slot.pair_seed))
            # correct[r] = listed number of the r-th line read, so listed[j] = reading index of number j+1
            listed = [correct.index(j + 1) for j in range(k)]
            choices = [_fmt(correct), _fmt(wrong)]
            lines = "\n".join(f'{j + 1}. "{texts[listed[j]]}"' for j in range(k))
            panels = {b.panel_id for b, _ in window}
            data = data if data is not None else self._image(page)
            out.append(self.sample(
                page, n, image=data,
                question=QUESTION.format(lines=lines, direction=RTL_NOTE if page.reading_direction == "rtl" else ""),
                choices=choices, answer="A", answer_type="choice", width=page.width, height=page.height,
                panel_scope="single" if len(panels) == 1 and None not in panels else "multi",
            ))
            if rng.random() < 0.5:  # the build balances letters exactly; direct callers get a coin
                out[-1].choices.reverse()
                out[-1].answer = "B"
        return out
