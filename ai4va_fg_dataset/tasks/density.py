"""Items per page: the per-task caps of the generators and the ``--density`` presets of the build.

Each closed-ended generator asks at most ``max_per_page`` questions of one page
(:attr:`~ai4va_fg_dataset.tasks.base.TaskGenerator.max_per_page`). The **default** caps are each
generator's ``MAX_PER_PAGE`` (Action 6, Depth 4, Dialog R. 4, Panel R. 3, Char. ID 4, Counting 3): few
questions per page, because questions of one page share characters, balloons and panels (near
duplicates) and a small build would otherwise be dominated by its richest pages. They sit **below** the
paper's density for three tasks (Table 3.1 divided by its 282 pages, :data:`PAPER_ITEMS_PER_PAGE`):
Character Identification 8.4, Panel Reordering 4.9 and Dialog Reordering 4.8 items per page.

The ``paper`` preset (:data:`PRESETS`) sets every cap to the smallest whole number not below the
paper's mean (``ceil``), so that a page whose annotations allow it yields the paper's density (a page
with fewer characters, pairs or balloons yields what it can: the mean over a build can only reach the
paper's where the annotations are as rich as AI4VA's). ``--max-per-page TASK=N`` overrides one task on
top of the preset. Panel Understanding has no page cap (its count is panels x ``--pu-questions``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..schema import TASKS

PAPER_PAGES = 282
"""Pages of AI4VA (method.md section 1), the denominator of the paper's per-page density."""

PAPER_QUESTIONS: dict[str, int] = {
    "panel_understanding": 7902,
    "action_recognition": 1669,
    "depth_comparison": 1125,
    "dialog_reordering": 1364,
    "panel_reordering": 1392,
    "character_identification": 2368,
    "character_counting": 444,
}
"""Questions per task in AI4VA-FG (paper Table 3.1 / method.md section 2; 16,264 in total)."""

PAPER_ITEMS_PER_PAGE: dict[str, float] = {t: n / PAPER_PAGES for t, n in PAPER_QUESTIONS.items()}
"""Paper Table 3.1 questions per page (e.g. Character Identification 2368 / 282 = 8.40)."""

PRESETS: dict[str, dict[str, int]] = {
    "default": {},
    "paper": {t: math.ceil(v) for t, v in PAPER_ITEMS_PER_PAGE.items() if t != "panel_understanding"},
}
"""``--density`` presets: ``{name: {task: cap}}``; ``default`` keeps every generator's ``MAX_PER_PAGE``,
``paper`` is ``ceil`` of :data:`PAPER_ITEMS_PER_PAGE` for the paper's six capped tasks (Action 6, Depth 4,
Dialog R. 5, Panel R. 5, Char. ID 9, Counting 2); tasks the paper does not have keep their default."""


def capped_tasks() -> tuple[str, ...]:
    """The registered tasks whose generator has a per-page cap (``default_max_per_page`` set), in
    :data:`~ai4va_fg_dataset.schema.TASKS` order: every task but Panel Understanding in the paper's seven."""
    from .base import make_generator

    return tuple(t for t in TASKS if make_generator(t).max_per_page is not None)


def parse_max_per_page(specs: Sequence[str] | None) -> dict[str, int]:
    """``["character_identification=8", ...]`` -> ``{"character_identification": 8}`` (a later spec of the
    same task wins).

    Raises:
        ValueError: a spec that is not ``TASK=N``, a task without a cap (unknown, or Panel Understanding),
            or ``N`` not an integer >= 1; the message quotes the spec.
    """
    out: dict[str, int] = {}
    capped = capped_tasks() if specs else ()
    for spec in specs or ():
        task, sep, value = str(spec).partition("=")
        task = task.strip()
        if not sep:
            raise ValueError(f"--max-per-page {spec!r}: expected TASK=N, e.g. character_identification=8")
        if task not in capped:
            extra = " (its count is panels x --pu-questions)" if task == "panel_understanding" else ""
            raise ValueError(f"--max-per-page {spec!r}: task {task!r} has no per-page cap{extra}; "
                             f"tasks: {', '.join(capped)}")
        try:
            n = int(value)
        except ValueError as exc:
            raise ValueError(f"--max-per-page {spec!r}: {value!r} is not an integer") from exc
        if n < 1:
            raise ValueError(f"--max-per-page {spec!r}: N must be >= 1, got {n}")
        out[task] = n
    return out


def resolve_max_per_page(density: str = "default", overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """The cap of every capped task: the generator default, then the ``density`` preset, then ``overrides``.

    Returns:
        ``{task: cap}`` for every task of :func:`capped_tasks` (what ``build_report.json`` records).

    Raises:
        ValueError: an unknown preset (the message lists the presets) or an override of a task without a cap.
    """
    from .base import make_generator

    if density not in PRESETS:
        raise ValueError(f"unknown density preset {density!r}; presets: {', '.join(PRESETS)}")
    capped = capped_tasks()
    bad = [t for t in (overrides or {}) if t not in capped]
    if bad:
        raise ValueError(f"max_per_page for task(s) without a per-page cap: {bad}; tasks: {', '.join(capped)}")
    caps = {t: make_generator(t).max_per_page for t in capped}
    caps.update(PRESETS[density])
    caps.update(overrides or {})
    return caps
