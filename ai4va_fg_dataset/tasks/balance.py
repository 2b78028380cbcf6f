"""Build-level balancing of the hidden answer variables of order tasks, and checked answer keys.

A binary-choice item has surface properties a blind model can exploit when they are not balanced:
which option text is correct (Panel Reordering: ``"1: A, 2: B"`` vs ``"1: B, 2: A"``, i.e. which
candidate crop is drawn first), whether the listed order or its reverse is offered and correct
(Dialog Reordering). Drawing each with a per-page coin leaves binomial noise: on 60 test items a
prior learned on train is off chance by 6.5 points one time in ten. So these variables are not
drawn per page but assigned over a whole build (:func:`balanced_pairs`): the items of one split
are ranked by a SHA-256 of ``(seed, item key)`` and paired; the two items of a pair get mirrored
options (what is correct in one is the distractor in the other) and each pair gets a level cycled
over the split, so any blind rule that sees only the options is right on exactly one item of each
pair. Deterministic by seed. (The answer *letter* is balanced by the build after generation, for
every task: :func:`ai4va_fg_dataset.build.audit.balance_answer_letters`.)

:class:`CheckedOrderGenerator` is the mixin of the two order tasks: it holds the balance groups
(:meth:`~CheckedOrderGenerator.set_balance`), the switch that keeps items whose annotated order the
project's own estimate contradicts (``check_keys``) and the pages excluded for that reason
(``exclusions``, written to ``build_report.json``).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..page import Page
from .base import page_rng

ItemKey = tuple[str, int]
"""``(page_id, n)``: the n-th item of a page."""


@dataclass(frozen=True)
class Slot:
    """An item's place in the build-level balance.

    Attributes:
        level: the balanced level of the item's pair, in ``range(n_levels)``.
        member: 0 or 1, the item's side of its pair (a lone item is 0).
        pair_seed: a seed shared by both items of the pair (draw the pair's common material from it).
    """

    level: int
    member: int
    pair_seed: int


def balanced_pairs(
    keys: Iterable[tuple[ItemKey, Hashable]], group_of: Callable[[str], Hashable], seed: int, n_levels: int,
) -> dict[ItemKey, Slot]:
    """Pair the items of every ``(group, class)`` and give each pair a balanced level.

    The items of one group (split) and class (e.g. the number of lines of a dialog window) are
    ranked by a SHA-256 of ``(seed, key)``; ranks ``2m`` and ``2m + 1`` form pair ``m`` (members 0
    and 1) with level ``m mod n_levels``. The two members of a pair get mirrored material (the
    correct option of one is the wrong option of the other), so any blind rule that sees only the
    option set answers exactly one of the two.

    Args:
        keys: ``((page_id, n), class)`` per item.
        group_of: the group of a page id (the split).
        seed: the build seed.
        n_levels: how many pair levels (>= 1).

    Returns:
        ``{key: Slot}``.

    Raises:
        ValueError: ``n_levels`` < 1.
    """
    if n_levels < 1:
        raise ValueError(f"n_levels must be >= 1, got {n_levels}")
    groups: dict[tuple[Hashable, Hashable], list[ItemKey]] = defaultdict(list)
    for key, cls in keys:
        groups[(group_of(key[0]), cls)].append(key)
    out: dict[ItemKey, Slot] = {}
    for (group, cls), members in groups.items():
        ranked = sorted(members, key=lambda k: hashlib.sha256(f"{seed}\x1f{k[0]}\x1f{k[1]}".encode()).digest())
        for rank, key in enumerate(ranked):
            m = rank // 2
            digest = hashlib.sha256(f"{seed}\x1f{group}\x1f{cls}\x1f{m}".encode()).digest()
            out[key] = Slot(m % n_levels, rank % 2, int.from_bytes(digest[:8], "big"))
    return out


class CheckedOrderGenerator:
    """Mixin of the order tasks: checked keys, exclusion list, build-level balance of hidden variables.

    Subclasses (also :class:`~ai4va_fg_dataset.tasks.base.TaskGenerator` s) implement
    ``_plan(page, rng) -> list`` (the page's items before the balanced variables are set; it must
    draw from ``rng`` only, so the plan made in :meth:`prepare` equals the one made in ``generate``),
    ``_order_conflict(page) -> str | None``, optionally ``_item_class(item)`` (items are paired within a
    class), and set :attr:`n_levels`.

    Attributes:
        check_keys: exclude pages whose annotated order the project's estimate contradicts
            (default ``True``; ``False`` keeps them, for users who trust their annotations).
        trusted: page ids whose order a person set (``ai4va-fg review``): never excluded.
        exclusions: ``{page_id: {"task", "source", "reason"}}`` of the pages excluded so far.
    """

    n_levels = 2
    name = ""

    def _init_checked(self, check_keys: bool) -> None:
        self.check_keys = check_keys
        self.trusted: frozenset[str] = frozenset()
        self.exclusions: dict[str, dict[str, str]] = {}
        self._groups: Mapping[str, str] | None = None
        self._seed: int | None = None
        self._slots: dict[ItemKey, Slot] = {}

    def set_balance(self, groups: Mapping[str, str] | None, seed: int) -> None:
        """Balance the hidden variables within ``groups`` (``{page_id: split}``; ``None``: one
        group) for the build ``seed``; takes effect at the next :meth:`prepare`."""
        self._groups, self._seed = groups, seed

    def prepare(self, pages: Sequence[Page]) -> None:
        """Check every page's key (filling :attr:`exclusions`), then plan every usable page with its
        own generation rng and assign balanced levels.

        Without :meth:`set_balance` nothing is planned and ``generate`` draws the levels from the
        page's rng (unbalanced, still deterministic). The build runs this once in the main process,
        before the generators are sent to the worker processes, so :attr:`exclusions` is complete
        there.
        """
        self.exclusions = {}
        self._slots = {}
        keys: list[tuple[ItemKey, Hashable]] = []
        for page in pages:
            if self.why_not(page) is None and self._seed is not None:  # type: ignore[attr-defined]
                plan = self._plan(page, page_rng(self._seed, self.name, page.page_id))
                keys.extend(((page.page_id, n), self._item_class(item)) for n, item in enumerate(plan))
        if self._seed is not None:
            groups = self._groups
            self._slots = balanced_pairs(keys, (lambda pid: groups.get(pid, "")) if groups else (lambda pid: ""),
                                         self._seed, self.n_levels)
        self.drain_skips()  # type: ignore[attr-defined]  # planning skips are counted at generation

    def slot(self, page: Page, n: int, rng: random.Random) -> Slot:
        """The balance slot of item ``n`` of ``page`` (from :meth:`prepare`), or one drawn from
        ``rng`` (a lone item) when the generator was not balanced."""
        key = (page.page_id, n)
        if key in self._slots:
            return self._slots[key]
        return Slot(rng.randrange(self.n_levels), rng.randrange(2), rng.getrandbits(64))

    def _item_class(self, item) -> Hashable:
        """Items are paired within a class (default: one class)."""
        return 0

    def _checked(self, page: Page) -> str | None:
        """The exclusion reason of ``page`` (recorded in :attr:`exclusions`) or ``None``."""
        if not self.check_keys or page.page_id in self.trusted:
            return None
        reason = self._order_conflict(page)
        if reason is not None:
            self.exclusions[page.page_id] = {"task": self.name, "source": page.source, "reason": reason}
        return reason
