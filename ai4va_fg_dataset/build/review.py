"""The human-review file: verdicts on built items and page panel orders that survive rebuilds.

The seeds' benchmark was checked by hand (panel positions verified after a panel-ordering model,
questions "refined through a manual filtering process", method.md section 2). ``ai4va-fg review``
(:mod:`ai4va_fg_dataset.build.review_app`) writes a reviewer's decisions to a **review file**, and
``ai4va-fg build --review FILE`` applies them to the next build (:func:`apply_page_orders` before
generation, :func:`apply_item_verdicts` after it, before the splits are written).

Format: JSON Lines (UTF-8), one decision per line, appended in the order they are made; for one
``(target, id)`` the **last line wins** (a reviewer who changes their mind appends a new line).
Every line is an object with exactly these keys:

=========== ========================== =========================================================
key         type                       meaning
=========== ========================== =========================================================
schema      int                        format version, :data:`SCHEMA_VERSION` (1)
target      ``"item"`` / ``"page"``    what the decision is about
id          string                     item id ``"<task>/<page_id>/<n>"`` (``Sample.id``, stable
                                       across rebuilds with the same seed and annotations) or
                                       page id ``"<source>/<book>/<page>"``
verdict     string                     item: ``"accept"``, ``"reject"`` or ``"fix"``;
                                       page: ``"order"``
reason      string or null             why (required for ``reject``)
value       string, list or null       ``fix``: the corrected answer key: for choice items
                                       the correct option's text (robust to a rebuild that
                                       reorders options) or its letter ``"A"``..; digits for
                                       counting; text for open answers;
                                       ``order``: every panel id of the page, in reading order
reviewer    string                     who decided (free text, e.g. a login name)
time        string                     when, ISO 8601 UTC (``2026-12-02T17:00:00+00:00``)
=========== ========================== =========================================================

The file lives beside the annotations (:func:`default_review_path`), never inside a build folder
(:func:`check_review_location`): a rebuild replaces the build folder whole. It is rewritten
atomically on every decision (:func:`append_decision`, via
:func:`ai4va_fg_dataset.core.atomic_dir.replacing_file`): a reader sees the file before or after a
decision, never half a line.

A decision whose item or page is not in the build (annotations changed, page dropped as a bad
record) is **reported** in ``build_report.json`` (``review.missing``) and on the console, never
silently ignored. A decision that cannot be applied (a fixed key that is not one of the item's
choice letters, an order that does not list exactly the page's panels) stops the build with a
:class:`ReviewFileError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.atomic_dir import replacing_file
from ..page import Page
from ..schema import CHOICE_LETTERS, TASKS, Sample

SCHEMA_VERSION = 1
"""Version written in every line's ``schema`` key."""

REVIEW_FILE_NAME = "ai4va-fg-review.jsonl"
"""File name of the default review file (:func:`default_review_path`)."""

ITEM_VERDICTS: tuple[str, ...] = ("accept", "reject", "fix")
PAGE_VERDICTS: tuple[str, ...] = ("order",)
TARGETS: tuple[str, ...] = ("item", "page")
KEYS: tuple[str, ...] = ("schema", "target", "id", "verdict", "reason", "value", "reviewer", "time")


class ReviewFileError(ValueError):
    """A review file line that is not a valid decision, or one that cannot be applied; the
    message starts ``FILE:LINE:``."""


@dataclass(frozen=True)
class Decision:
    """One reviewer decision (one line of the review file; see the module docstring).

    Attributes:
        target: ``"item"`` or ``"page"``.
        id: item id or page id.
        verdict: one of :data:`ITEM_VERDICTS` (items) or :data:`PAGE_VERDICTS` (pages).
        reason: why (required for ``reject``).
        value: fixed answer key (``fix``) or the page's panel ids in reading order (``order``).
        reviewer: who decided.
        time: ISO 8601 UTC time of the decision.
        line: 1-based line of the review file it was read from (0: not read from a file).
    """

    target: str
    id: str
    verdict: str
    reason: str | None = None
    value: str | list[str] | None = None
    reviewer: str = ""
    time: str = ""
    line: int = 0

    @property
    def task(self) -> str | None:
        """The task of an item decision (the first part of the item id), ``None`` for pages."""
        return self.id.split("/", 1)[0] if self.target == "item" else None

    def to_json(self) -> dict[str, Any]:
        """The decision as the object written on its line."""
        return {"schema": SCHEMA_VERSION, "target": self.target, "id": self.id, "verdict": self.verdict,
                "reason": self.reason, "value": self.value, "reviewer": self.reviewer, "time": self.time}


def _check(obj: Any, where: str) -> Decision:
    """Validate one decoded line; raises :class:`ReviewFileError` prefixed with ``where``."""
    def bad(msg: str) -> ReviewFileError:
        return ReviewFileError(f"{where}: {msg}")

    if not isinstance(obj, dict):
        raise bad(f"a decision is a JSON object, got {type(obj).__name__}")
    missing = [k for k in KEYS if k not in obj]
    extra = sorted(set(obj) - set(KEYS))
    if missing or extra:
        raise bad(f"keys must be exactly {list(KEYS)}; missing {missing}, unexpected {extra}")
    if obj["schema"] != SCHEMA_VERSION:
        raise bad(f"schema {obj['schema']!r} is not {SCHEMA_VERSION} (written by another version?)")
    target, ident, verdict = obj["target"], obj["id"], obj["verdict"]
    if target not in TARGETS:
        raise bad(f"target {target!r} is not one of {list(TARGETS)}")
    if not isinstance(ident, str) or not ident.strip():
        raise bad(f"id {ident!r} is not a non-empty string")
    verdicts = ITEM_VERDICTS if target == "item" else PAGE_VERDICTS
    if verdict not in verdicts:
        raise bad(f"verdict {verdict!r} of a {target} is not one of {list(verdicts)}")
    if target == "item":
        task = ident.split("/", 1)[0]
        if task not in TASKS or ident.count("/") < 2:
            raise bad(f"item id {ident!r} is not '<task>/<page_id>/<n>' with a task of {list(TASKS)}")
    reason, value = obj["reason"], obj["value"]
    if reason is not None and not isinstance(reason, str):
        raise bad(f"reason {reason!r} is not a string or null")
    if verdict == "reject" and not (reason or "").strip():
        raise bad(f"reject of {ident!r} needs a reason")
    if verdict == "fix" and not (isinstance(value, str) and value.strip()):
        raise bad(f"fix of {ident!r}: value {value!r} is not the corrected answer key (a non-empty string)")
    if verdict == "order":
        if not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
            raise bad(f"order of page {ident!r}: value {value!r} is not a list of panel ids")
        if len(set(value)) != len(value):
            raise bad(f"order of page {ident!r}: panel ids repeat in {value!r}")
    if verdict in ("accept", "reject") and value is not None:
        raise bad(f"{verdict} of {ident!r} takes no value, got {value!r}")
    if not isinstance(obj["reviewer"], str):
        raise bad(f"reviewer {obj['reviewer']!r} is not a string")
    try:
        datetime.fromisoformat(obj["time"])
    except (TypeError, ValueError):
        raise bad(f"time {obj['time']!r} is not an ISO 8601 date-time") from None
    return Decision(target, ident, verdict, reason, list(value) if isinstance(value, list) else value,
                    obj["reviewer"], obj["time"])


def make_decision(target: str, id: str, verdict: str, *, reason: str | None = None,
                  value: str | Sequence[str] | None = None, reviewer: str = "") -> Decision:
    """A new, validated decision stamped with the current UTC time.

    Raises:
        ReviewFileError: an invalid decision (see the module docstring), e.g. a reject without a
            reason or an order with a repeated panel id.
    """
    obj = {"schema": SCHEMA_VERSION, "target": target, "id": id, "verdict": verdict,
           "reason": reason.strip() if isinstance(reason, str) and reason.strip() else None,
           "value": list(value) if isinstance(value, (list, tuple)) else value, "reviewer": reviewer,
           "time": datetime.now(UTC).isoformat(timespec="seconds")}
    return _check(obj, "new decision")


def read_review(path: str | os.PathLike) -> list[Decision]:
    """Every decision of the review file at ``path``, in file order (blank lines skipped).

    Raises:
        FileNotFoundError: no such file.
        ReviewFileError: a line that is not JSON or not a valid decision; the message names
            ``FILE:LINE`` and what is wrong.
    """
    path = Path(path)
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ReviewFileError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
            out.append(dataclasses.replace(_check(obj, where), line=n))
    return out


def latest(decisions: Iterable[Decision]) -> dict[tuple[str, str], Decision]:
    """``{(target, id): decision}``: the last decision of each item / page (later lines win)."""
    return {(d.target, d.id): d for d in decisions}


def append_decision(path: str | os.PathLike, decision: Decision) -> None:
    """Append ``decision`` as one line to the review file at ``path`` (created if missing),
    atomically: the whole file is rewritten to a temporary sibling and moved over ``path``.

    Raises:
        OSError: ``path`` cannot be written.
    """
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    line = json.dumps(decision.to_json(), ensure_ascii=False) + "\n"
    with replacing_file(path) as tmp:
        tmp.write_bytes(old + line.encode("utf-8"))


def default_review_path(source_paths: Sequence[str | os.PathLike]) -> Path:
    """The review file beside the annotations: ``<first source folder>/`` :data:`REVIEW_FILE_NAME`
    (the folder of the first source, or the folder holding it when the source is a file).

    Raises:
        ValueError: no source path.
    """
    if not source_paths:
        raise ValueError("no source path to put the review file beside; give --review-file")
    first = Path(source_paths[0])
    return (first if first.is_dir() else first.parent) / REVIEW_FILE_NAME


def check_review_location(review_file: str | os.PathLike, build_dir: str | os.PathLike) -> Path:
    """``review_file`` resolved; refused inside ``build_dir`` (a rebuild replaces that folder whole).

    Raises:
        ValueError: ``review_file`` is inside ``build_dir`` or is a folder.
    """
    review, build = Path(review_file).resolve(), Path(build_dir).resolve()
    if review == build or build in review.parents:
        raise ValueError(f"review file {review_file} is inside the build folder {build_dir}; a rebuild "
                         "replaces that folder: keep the review file beside the annotations")
    if review.is_dir():
        raise ValueError(f"review file {review_file} is a folder")
    return review


def check_fix(decision: Decision, sample: Sample) -> str:
    """The answer key ``decision`` fixes ``sample`` to: a choice letter, digits, or open text.

    For choice items the value may be the correct option's **text** (what ``ai4va-fg review``
    writes: it survives a rebuild that puts the options in another order, e.g. the answer-letter
    balancing) or its letter (case-insensitive).

    Raises:
        ReviewFileError: the key does not fit the item: neither one of its option texts nor one of
            its choice letters, not a whole number for a counting item, or empty.
    """
    value = str(decision.value).strip()
    where = f"line {decision.line}" if decision.line else "decision"
    if sample.answer_type == "choice":
        letters = CHOICE_LETTERS[: len(sample.choices)]
        if str(decision.value) in sample.choices:
            return letters[sample.choices.index(str(decision.value))]
        if value.upper() not in letters:
            raise ReviewFileError(f"{where}: fix of {sample.id}: key {value!r} is neither one of its options "
                                  f"{sample.choices} nor one of its choice letters {list(letters)}")
        return value.upper()
    if sample.answer_type == "number" and not re.fullmatch(r"\d+", value):
        raise ReviewFileError(f"{where}: fix of {sample.id}: key {value!r} is not a whole number")
    return value


def apply_page_orders(pages: Iterable[Page], decisions: Iterable[Decision], *, into: Any = None
                      ) -> tuple[Any, list[str], list[Decision]]:
    """Replace the annotated panel order (``Panel.order``) of pages that have an ``order`` decision.

    Runs on the page model before generation, so the Panel Reordering generator (and anything else
    reading ``Panel.order``) uses the reviewed order.

    Args:
        pages: the pages, in build order.
        decisions: the review file's decisions (:func:`load_for_build`).
        into: where the pages go (anything with ``append``, e.g. the build's
            :class:`~ai4va_fg_dataset.build.page_store.PageStore`); default a new list.

    Returns:
        ``(pages, reordered, missing)``: ``into`` holding the pages (overridden ones replaced), the
        ids of the pages reordered, and the page decisions whose page is not among ``pages``.

    Raises:
        ReviewFileError: an order that does not list exactly the page's panel ids (names the line,
            the page, and the ids expected).
    """
    orders = {d.id: d for d in latest(decisions).values() if d.target == "page" and d.verdict == "order"}
    out: Any = [] if into is None else into
    done: list[str] = []
    for page in pages:
        d = orders.pop(page.page_id, None)
        if d is None:
            out.append(page)
            continue
        ids = [p.id for p in page.panels]
        if sorted(d.value) != sorted(ids):
            raise ReviewFileError(f"line {d.line}: order of page {page.page_id} lists panels {d.value}, but the "
                                  f"page has panels {ids} (the annotations changed? review the page again)")
        rank = {pid: i for i, pid in enumerate(d.value)}
        panels = tuple(dataclasses.replace(p, order=rank[p.id]) for p in page.panels)
        out.append(dataclasses.replace(page, panels=panels))
        done.append(page.page_id)
    return out, done, list(orders.values())


@dataclass
class ReviewSummary:
    """What a review file did to a build (``build_report.json`` ``review``, the card's review table).

    Attributes:
        file: the review file.
        per_task: ``{task: {"reviewed", "accepted", "rejected", "fixed"}}`` item counts (items of
            the build only; ``reviewed`` = accepted + rejected + fixed).
        pages_reordered: page ids whose panel order was overridden.
        missing: decisions whose item or page is not in this build (file line, target, id,
            verdict).
        not_built: decisions on items of tasks not requested in this build (not applied, not missing).
    """

    file: str
    per_task: dict[str, dict[str, int]] = field(default_factory=dict)
    pages_reordered: list[str] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    not_built: int = 0

    def to_json(self) -> dict[str, Any]:
        """The summary as stored in ``build_report.json``."""
        return {"file": self.file, "per_task": self.per_task, "pages_reordered": self.pages_reordered,
                "missing": self.missing, "not_built": self.not_built}


def _missing(d: Decision) -> dict[str, Any]:
    return {"line": d.line, "target": d.target, "id": d.id, "verdict": d.verdict}


def apply_item_verdicts(samples: Iterable[Sample], decisions: Iterable[Decision], *, tasks: Sequence[str] = TASKS,
                        summary: ReviewSummary | None = None) -> tuple[Iterator[Sample], ReviewSummary]:
    """Drop rejected items and put fixed keys into the generated ``samples``, streaming.

    Args:
        samples: the generated samples (any iterable; consumed lazily, one at a time, so the
            build's streaming export keeps its memory bound).
        decisions: the review file's decisions (all of them; the last per item counts).
        tasks: the tasks of this build; item decisions of other tasks are counted as ``not_built``.
        summary: a summary to fill (e.g. already holding the pages reordered); default a new one.

    Returns:
        ``(kept, summary)``: an iterator over the samples minus rejected ones, fixed ones replaced
        (same order), and the summary it fills: ``per_task`` counts and the item decisions with no
        sample (``summary.missing``) are complete once ``kept`` is exhausted.

    Raises:
        ReviewFileError: (while iterating) a fixed key that does not fit its item (:func:`check_fix`).
    """
    summary = summary or ReviewSummary(file="")
    items = {d.id: d for d in latest(decisions).values() if d.target == "item"}

    def kept() -> Iterator[Sample]:
        counts: dict[str, Counter[str]] = {}
        for s in samples:
            d = items.pop(s.id, None)
            if d is None:
                yield s
                continue
            c = counts.setdefault(s.task, Counter())
            c["reviewed"] += 1
            if d.verdict == "reject":
                c["rejected"] += 1
                continue
            if d.verdict == "fix":
                key = check_fix(d, s)
                c["fixed"] += 1
                if key != s.answer:
                    s = dataclasses.replace(s, answer=key)
            else:
                c["accepted"] += 1
            yield s
        summary.per_task = {t: {k: counts[t][k] for k in ("reviewed", "accepted", "rejected", "fixed")}
                            for t in TASKS if t in counts}
        for d in items.values():
            if d.task in tasks:
                summary.missing.append(_missing(d))
            else:
                summary.not_built += 1

    return kept(), summary


def load_for_build(path: str | os.PathLike) -> list[Decision]:
    """The decisions of the review file given to ``build --review`` (:func:`read_review`).

    Raises:
        FileNotFoundError: the file does not exist (message names the option).
        ReviewFileError: a bad line.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"--review {path}: no such review file")
    return read_review(path)


def page_missing(decisions: Iterable[Decision]) -> list[dict[str, Any]]:
    """The report entries (line, target, id, verdict) of ``decisions``."""
    return [_missing(d) for d in decisions]

