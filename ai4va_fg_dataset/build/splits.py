"""Train / validation / test splits of AI4VA-FG, made by page.

method.md section 2: "Splits: train / validation / test (split by page so no page leaks across
splits)". Every sample of a page lands in the page's split, so no page (and no panel, character or
balloon of it) is seen in two splits.

The assignment is

* deterministic: pages are shuffled by a SHA-256 of ``(seed, page_id)`` (never Python's salted
  ``hash()``), and the result does not depend on the order of ``page_ids``;
* exact: the number of pages per split is ``ratios * n`` rounded by the largest-remainder method,
  with at least one page in validation and in test whenever there are 3 pages or more;
* stratified by source (the ``page_id`` prefix before the first ``/``, see
  :class:`ai4va_fg_dataset.page.Page`): each source's shuffled pages are spread evenly over the
  global order, so every source with enough pages appears in every split in about the global ratio
  (within one page).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

from ..schema import SPLITS

DEFAULT_RATIOS: tuple[float, float, float] = (0.8, 0.1, 0.1)
"""Fractions of pages in train, validation and test."""


def page_source(page_id: str) -> str:
    """The source of a ``"<source>/<book>/<page>"`` page id (the whole id if it has no ``/``)."""
    return page_id.split("/", 1)[0]


def _key(seed: int, page_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{page_id}".encode()).hexdigest()


def split_counts(n: int, ratios: Sequence[float] = DEFAULT_RATIOS) -> dict[str, int]:
    """Pages per split for ``n`` pages: largest-remainder rounding of ``ratios * n``.

    When ``n >= 3`` and the validation / test ratio is positive, each of them gets at least one
    page (taken from the largest split).

    Raises:
        ValueError: ``ratios`` is not three non-negative numbers summing to 1, or ``n < 0``.
    """
    if len(ratios) != len(SPLITS) or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"split ratios {tuple(ratios)!r} must be 3 non-negative numbers summing to 1")
    if n < 0:
        raise ValueError(f"number of pages {n} is negative")
    exact = [r * n for r in ratios]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(SPLITS)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    if n >= 3:
        for i in (1, 2):
            if ratios[i] > 0 and counts[i] == 0:
                donor = max(range(len(SPLITS)), key=lambda j: (counts[j], -j))
                counts[donor] -= 1
                counts[i] += 1
    return dict(zip(SPLITS, counts))


def assign_splits(
    page_ids: Iterable[str], *, seed: int, ratios: Sequence[float] = DEFAULT_RATIOS
) -> dict[str, str]:
    """Assign every page to ``"train"``, ``"validation"`` or ``"test"``.

    Args:
        page_ids: unique page ids (``Page.page_id``, ``"<source>/<book>/<page>"``).
        seed: shuffle seed; the same ids and seed always give the same assignment.
        ratios: fractions for train, validation, test (default 0.8 / 0.1 / 0.1).

    Returns:
        ``{page_id: split}`` for every page; split sizes are exactly :func:`split_counts`.

    Raises:
        ValueError: a page id occurs twice (it would end up in two splits) or bad ``ratios``.

    Method: within each source the pages are ordered by ``sha256(seed, page_id)``; page ``i`` of
    a source with ``m`` pages gets the position ``(i + 0.5) / m``; all pages are sorted by position
    (ties by hash) and cut at the split counts. So each source is spread over the splits in the
    global ratio.
    """
    ids = list(page_ids)
    seen: set[str] = set()
    for pid in ids:
        if pid in seen:
            raise ValueError(f"page id {pid!r} occurs twice; page ids must be unique to split by page")
        seen.add(pid)
    counts = split_counts(len(ids), ratios)

    by_source: dict[str, list[str]] = defaultdict(list)
    for pid in ids:
        by_source[page_source(pid)].append(pid)
    positioned: list[tuple[float, str, str]] = []
    for pids in by_source.values():
        ordered = sorted(pids, key=lambda p: (_key(seed, p), p))
        m = len(ordered)
        positioned.extend(((i + 0.5) / m, _key(seed, p), p) for i, p in enumerate(ordered))
    positioned.sort()

    result: dict[str, str] = {}
    start = 0
    for split in SPLITS:
        for _, _, pid in positioned[start : start + counts[split]]:
            result[pid] = split
        start += counts[split]
    return result
