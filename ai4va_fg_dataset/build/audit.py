"""Benchmark validity audit: blind baselines per task and split, beside chance (issue 8).

A benchmark item should not be answerable without looking at what it asks about. ``ai4va-fg audit
DIR`` (and every build, on the rows it just wrote) measures how far *blind* strategies get on a
built dataset; a strategy well above chance is a shortcut to remove. Anchors: benchmarks that
publish text-only / prior-only baselines at chance, and panel-sequence benchmarks that control
layout shortcuts.

Baselines (each predicts an option of every closed item; accuracy in %):

``letter_prior``
    the answer letter most frequent on ``train`` (learned; answer-position prior).
``answer_prior``
    the option whose text was most often correct on ``train`` (learned; for ``number`` tasks the
    most frequent answer).
``text_only``
    a naive-Bayes scorer over the option texts (whole text, words, length bucket) trained on
    ``train``: the option whose features were most often correct there (learned).
``listed_order`` / ``never_listed`` / ``reversed_order`` (dialog_reordering)
    pick the listed order ``"1, 2, .."`` when offered / avoid it / pick the reversed order.
``aspect_match`` / ``size_match`` (panel_reordering)
    fill the blanks with the candidate tiles whose aspect ratio / area matches theirs best, from
    the item geometry (``item_geometry.jsonl``).
``larger_closer`` / ``lower_closer`` (depth_comparison)
    the marked entity with the larger box / the lower box bottom is the closer one (from
    ``bboxes``: entity 1, entity 2).

When a heuristic cannot decide (option not offered, a tie) it answers ``A``; the build balances
answer letters exactly (:func:`balance_answer_letters`), so that fallback sits at chance. Learned
baselines are scored on ``validation``, ``test`` and ``held_out`` (the two together), never on the
split they learn from.

Chance is the task's declared chance (:attr:`ai4va_fg_dataset.tasks.spec.TaskSpec.chance`,
``100 / n_choices``) when its rows have that many options, else ``100 / len(choices)`` averaged over
the rows; ``None`` for number and open tasks (no flag). A row is **flagged** when it has at least :data:`MIN_ITEMS` items and a baseline
exceeds chance by more than :data:`MARGIN` points.

Files (written atomically into the audited folder, or ``--out``): :data:`AUDIT_JSON`
(``{"rows": [...], "flagged": [...], "margin", "min_items"}``) and :data:`AUDIT_MD` (the table).

Item geometry (:data:`ITEM_GEOMETRY`, one JSON object per line, written by the build): ``{"id",
"slots", "shown", "tiles"}`` for ``panel_reordering`` rows: the boxes of the two blanked panels
(``slots``, blank 1 then 2), the page regions shown in tiles A and B (``shown``) and the tile boxes
in image pixels (``tiles``); all ``[x1, y1, x2, y2]`` pixels, the page at the image origin.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.atomic_dir import replacing_file
from ..schema import CHOICE_LETTERS, SPLITS, TASKS, Sample

AUDIT_JSON = "audit.json"
AUDIT_MD = "audit.md"
ITEM_GEOMETRY = "item_geometry.jsonl"
MARGIN = 5.0
"""Points above chance a blind baseline may reach before its row is flagged."""
MIN_ITEMS = 50
"""Rows with fewer items are reported but not flagged (too noisy: +-7 points at 50 binary items)."""
HELD_OUT = "held_out"
"""The validation and test splits together."""

LETTER_BALANCED_TASKS = (
    "action_recognition", "depth_comparison", "dialog_reordering", "panel_reordering", "character_identification",
    "speaker_attribution",
)
"""Tasks whose option texts stand on their own, so the build may move the correct option to balance
answer letters (:func:`balance_answer_letters`). An item whose options name a letter drawn in the
image (Speaker Attribution's box mode: "the character in box B") is never moved
(:data:`DRAWN_LETTER_OPTION`); its name-mode items ("Mimi", "Eunice") are."""

DRAWN_LETTER_OPTION = re.compile(r"\bbox(?:es)? [A-H]\b")
"""An option that names a tag drawn on the image: moving it to another letter would break the item."""

AUDIT_COLUMNS = ("id", "task", "question", "choices", "answer", "answer_type", "bboxes", "page_id", "source")

Row = dict[str, Any]


# --- building: balanced letters, order checks, exclusions, the audit tap --------------------------------

def balance_answer_letters(samples: Iterable[Sample], splits: Mapping[str, str], seed: int = 0,
                           tasks: Sequence[str] = LETTER_BALANCED_TASKS) -> Iterator[Sample]:
    """Yield ``samples`` with the correct option moved to the least used letter of its (task, split).

    Streaming and deterministic: per ``(task, split)`` the letters used so far are counted; a
    sample's correct option goes to the least used letter (ties broken by a SHA-256 of ``seed`` and
    the sample id), swapping places with the option there. Every prefix of the stream, hence every
    split, has each letter within one item of the others (per number of options). Only ``tasks``
    (:data:`LETTER_BALANCED_TASKS`) are touched, and none of their items whose options name a drawn
    letter (:data:`DRAWN_LETTER_OPTION`); option texts are kept, only their order changes.
    """
    used: dict[tuple[str, str, int], Counter] = defaultdict(Counter)
    for s in samples:
        if (s.task in tasks and s.answer_type == "choice" and len(s.choices) >= 2
                and not any(DRAWN_LETTER_OPTION.search(c) for c in s.choices)):
            n = len(s.choices)
            counts = used[(s.task, splits.get(s.page_id, ""), n)]
            salt = hashlib.sha256(f"{seed}\x1f{s.id}".encode()).digest()
            target = min(range(n), key=lambda k: (counts[k], salt[k % len(salt)], k))
            cur = CHOICE_LETTERS.index(s.answer)
            if cur != target:
                s.choices[cur], s.choices[target] = s.choices[target], s.choices[cur]
                s.answer = CHOICE_LETTERS[target]
            counts[target] += 1
        yield s


def configure_order_checks(generators: Mapping[str, Any], *, splits: Mapping[str, str], seed: int,
                           keep_unchecked: bool = False, trusted: Iterable[str] = ()) -> None:
    """Set up the order tasks' generators (:class:`~ai4va_fg_dataset.tasks.balance.CheckedOrderGenerator`):
    balance their hidden variables within the ``splits`` for ``seed``, switch the key check off
    when ``keep_unchecked``, and trust the orders of the pages ``trusted`` (set by a person with
    ``ai4va-fg review``). Other generators are left alone. Call before they are prepared."""
    for gen in generators.values():
        if hasattr(gen, "set_balance") and hasattr(gen, "check_keys"):
            gen.set_balance(splits, seed)
            gen.check_keys = not keep_unchecked
            gen.trusted = frozenset(trusted)


def collect_exclusions(generators: Mapping[str, Any]) -> list[dict[str, str]]:
    """``[{"page_id", "task", "source", "reason"}]`` of the pages the prepared order tasks excluded
    because their annotated order disagrees with the checked order (sorted by task, page)."""
    out = []
    for gen in generators.values():
        for page_id, entry in getattr(gen, "exclusions", {}).items():
            out.append({"page_id": page_id, **entry})
    return sorted(out, key=lambda e: (e["task"], e["page_id"]))


def exclusion_counts(exclusions: Sequence[Mapping[str, str]]) -> dict[str, dict[str, int]]:
    """``{source: {task: pages excluded}}`` of :func:`collect_exclusions`'s list."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for e in exclusions:
        out[e["source"]][e["task"]] = out[e["source"]].get(e["task"], 0) + 1
    return {k: dict(v) for k, v in sorted(out.items())}


class AuditRows:
    """The audit's light rows (no image), spilled to disk as JSON records
    (:class:`~ai4va_fg_dataset.build.page_store.SpillFile`).

    Re-iterable (each iteration reads the file from the start, with its own position), so
    :func:`run_audit` can make its two passes; memory holds none of the rows, so it does not grow
    with the size of the build (issue 13). The file has no name and is removed when closed or
    garbage-collected.
    """

    def __init__(self) -> None:
        from .page_store import SpillFile

        self._records = SpillFile("ai4va-fg-audit-")

    def append(self, row: Row) -> None:
        """Add one row (a JSON-serialisable dict)."""
        self._records.append(json.dumps(row, ensure_ascii=False).encode("utf-8"))

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Row]:
        for i in range(len(self._records)):
            yield json.loads(self._records.get(i))

    def close(self) -> None:
        """Remove the file."""
        self._records.close()


class AuditTap:
    """Collects, from the build's sample stream, the light rows (no image) and item geometry the
    audit needs; :meth:`tap` yields the samples unchanged.

    Attributes:
        rows: the rows so far (:class:`AuditRows`, on disk; each row carries its item geometry
            under ``"geometry"`` when it has one).
    """

    def __init__(self, splits: Mapping[str, str]):
        self.splits = splits
        self.rows = AuditRows()
        self._with_geometry = 0

    def tap(self, samples: Iterable[Sample]) -> Iterator[Sample]:
        for s in samples:
            row = {"id": s.id, "task": s.task, "split": self.splits.get(s.page_id, ""),
                   "question": s.question, "choices": list(s.choices), "answer": s.answer,
                   "answer_type": s.answer_type, "bboxes": [list(b) for b in s.bboxes],
                   "page_id": s.page_id, "source": s.source}
            meta = getattr(s, "audit_meta", None)
            if meta:
                row["geometry"] = meta
                self._with_geometry += 1
            self.rows.append(row)
            yield s

    @property
    def geometry(self) -> dict[str, dict]:
        """``{id: item geometry}`` of the rows that have one (read back from :attr:`rows`)."""
        return {r["id"]: r["geometry"] for r in self.rows if "geometry" in r}

    def write_geometry(self, folder: str | Path) -> Path | None:
        """Write :data:`ITEM_GEOMETRY` into ``folder`` (atomically; one line per item, in build
        order); ``None`` when no item has any."""
        if not self._with_geometry:
            return None
        path = Path(folder) / ITEM_GEOMETRY
        with replacing_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for r in self.rows:
                if "geometry" in r:
                    f.write(json.dumps({"id": r["id"], **r["geometry"]}) + "\n")
        return path

    def close(self) -> None:
        """Remove the spilled rows."""
        self.rows.close()


# --- reading a built folder ----------------------------------------------------------------------------

_SHARD = re.compile(r"^(?P<split>[a-z_]+)-\d{5}-of-\d{5}\.parquet$")


def read_rows(folder: str | Path) -> tuple[list[Row], dict[str, dict]]:
    """The rows (without images) and item geometry of a built dataset folder.

    Returns:
        ``(rows, geometry)``: each row has :data:`AUDIT_COLUMNS` plus ``split`` (from the shard
        name ``<task>/<split>-NNNNN-of-NNNNN.parquet``); ``geometry`` is ``{id: {...}}`` from
        :data:`ITEM_GEOMETRY` (empty when the file is missing).

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        ValueError: no task shard in it, a shard that cannot be read or lacks a column, or a bad
            geometry line (each names the file).
    """
    import pyarrow.parquet as pq

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder (expected a dataset built by `ai4va-fg build`)")
    rows: list[Row] = []
    shards = sorted(p for t in TASKS for p in (root / t).glob("*.parquet"))
    if not shards:
        raise ValueError(f"{root}: no <task>/<split>-*.parquet shard of a built AI4VA-FG dataset")
    for path in shards:
        m = _SHARD.match(path.name)
        if not m or m["split"] not in SPLITS:
            raise ValueError(f"{path}: not a shard name <split>-NNNNN-of-NNNNN.parquet with a split of {SPLITS}")
        try:
            table = pq.read_table(path, columns=list(AUDIT_COLUMNS))
        except Exception as exc:
            raise ValueError(f"{path}: cannot read the audit columns {AUDIT_COLUMNS}: {exc}") from exc
        for row in table.to_pylist():
            row["split"] = m["split"]
            rows.append(row)
    geometry: dict[str, dict] = {}
    gpath = root / ITEM_GEOMETRY
    if gpath.is_file():
        for k, line in enumerate(gpath.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                geometry[str(obj.pop("id"))] = obj
            except (ValueError, KeyError, AttributeError) as exc:
                raise ValueError(f"{gpath} line {k}: not a JSON object with an id: {exc}") from exc
    return rows, geometry


# --- baselines -----------------------------------------------------------------------------------------

Predictor = Callable[[Row], int | None]
"""Predicted option index of a row (``None``: no prediction, scored as ``A``)."""


def _perm(choice: str) -> list[int] | None:
    try:
        return [int(v) for v in choice.split(",")]
    except ValueError:
        return None


def _pick(row: Row, test: Callable[[list[int]], bool]) -> int | None:
    for k, c in enumerate(row["choices"]):
        p = _perm(c)
        if p is not None and test(p):
            return k
    return None


def _listed(row: Row) -> int | None:
    return _pick(row, lambda p: p == list(range(1, len(p) + 1)))


def _never_listed(row: Row) -> int | None:
    k = _listed(row)
    return None if k is None else next(j for j in range(len(row["choices"])) if j != k)


def _reversed(row: Row) -> int | None:
    return _pick(row, lambda p: p == list(range(len(p), 0, -1)))


def _aspect(b: Sequence[float]) -> float:
    return max(1e-9, b[2] - b[0]) / max(1e-9, b[3] - b[1])


def _area(b: Sequence[float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _assignment(row: Row, geo: Mapping[str, dict], feature: Callable[[Sequence[float]], float]) -> int | None:
    """Panel reordering: the option that fills blanks 1, 2 with the tiles whose ``feature`` (log
    scale) is closest; ``None`` on a tie or without geometry (the row's own ``"geometry"``, else
    ``geo[row id]``)."""
    g = row.get("geometry") or geo.get(row["id"])
    if not g or len(g.get("slots", ())) != 2 or len(g.get("tiles", ())) != 2:
        return None
    s = [math.log(feature(b)) for b in g["slots"]]
    t = [math.log(feature(b)) for b in g["tiles"]]
    straight = abs(s[0] - t[0]) + abs(s[1] - t[1])  # 1: A, 2: B
    crossed = abs(s[0] - t[1]) + abs(s[1] - t[0])  # 1: B, 2: A
    if math.isclose(straight, crossed, rel_tol=1e-9, abs_tol=1e-9):
        return None
    want = "1: A, 2: B" if straight < crossed else "1: B, 2: A"
    return row["choices"].index(want) if want in row["choices"] else None


def _depth(row: Row, key: Callable[[Sequence[float]], float]) -> int | None:
    boxes = row.get("bboxes") or []
    if len(boxes) != 2 or row["choices"] not in (["Entity 1", "Entity 2"], ["Entity 2", "Entity 1"]):
        return None
    a, b = key(boxes[0]), key(boxes[1])
    if math.isclose(a, b):
        return None
    return row["choices"].index("Entity 1" if a > b else "Entity 2")


def heuristics(task: str, geometry: Mapping[str, dict]) -> dict[str, Predictor]:
    """The task's fixed (not learned) blind heuristics, by name."""
    if task == "dialog_reordering":
        return {"listed_order": _listed, "never_listed": _never_listed, "reversed_order": _reversed}
    if task == "panel_reordering":
        return {"aspect_match": lambda r: _assignment(r, geometry, _aspect),
                "size_match": lambda r: _assignment(r, geometry, _area)}
    if task == "depth_comparison":
        return {"larger_closer": lambda r: _depth(r, _area), "lower_closer": lambda r: _depth(r, lambda b: b[3])}
    return {}


def _features(option: str) -> list[str]:
    words = re.findall(r"\w+", option.lower())
    return [f"opt={option.strip().lower()}", f"len={len(option) // 5}", *{f"w={w}" for w in words}]


class _Learner:
    """The learned baselines of one task, fitted on its ``train`` rows one at a time (:meth:`add`),
    so the audit streams: memory grows with the option vocabulary, not with the rows."""

    def __init__(self) -> None:
        self.letters: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self.right: Counter[str] = Counter()
        self.fr: Counter[str] = Counter()
        self.fw: Counter[str] = Counter()
        self.n_r = self.n_w = 0

    def add(self, r: Row) -> None:
        """Learn from one closed ``train`` row."""
        self.letters[r["answer"]] += 1
        correct = CHOICE_LETTERS.index(r["answer"])
        for k, c in enumerate(r["choices"]):
            key = c.strip().lower()
            self.seen[key] += 1
            self.right[key] += k == correct
            for f in _features(c):
                (self.fr if k == correct else self.fw)[f] += 1
        self.n_r += 1
        self.n_w += len(r["choices"]) - 1

    def predictors(self) -> dict[str, Predictor]:
        """``letter_prior``, ``answer_prior`` and ``text_only`` of the rows added so far."""
        letters, seen, right, fr, fw, n_r, n_w = self.letters, self.seen, self.right, self.fr, self.fw, self.n_r, self.n_w
        top_letter = CHOICE_LETTERS.index(max(sorted(letters), key=letters.__getitem__)) if letters else None

        def argmax(scores: list[float]) -> int | None:
            best = max(scores)
            top = [k for k, s in enumerate(scores) if math.isclose(s, best, abs_tol=1e-12)]
            return top[0] if len(top) == 1 else None

        def letter_prior(row: Row) -> int | None:
            return top_letter if top_letter is not None and top_letter < len(row["choices"]) else None

        def answer_prior(row: Row) -> int | None:
            rates = [(right[c.strip().lower()] + 0.5) / (seen[c.strip().lower()] + 1.0) for c in row["choices"]]
            return argmax(rates)

        def text_only(row: Row) -> int | None:
            scores = []
            for c in row["choices"]:
                s = 0.0
                for f in _features(c):
                    s += math.log((fr[f] + 1.0) / (n_r + 2.0)) - math.log((fw[f] + 1.0) / (n_w + 2.0))
                scores.append(s)
            return argmax(scores)

        return {"letter_prior": letter_prior, "answer_prior": answer_prior, "text_only": text_only}


def learned(train: Iterable[Row]) -> dict[str, Predictor]:
    """The baselines learned on ``train`` rows of one task (closed rows)."""
    learner = _Learner()
    for r in train:
        learner.add(r)
    return learner.predictors()


class _Group:
    """Accumulators of one (task, split) row of the audit: size, chance, hits per baseline."""

    def __init__(self, n_choices: int | None) -> None:
        self.n = self.closed = 0
        self.inv_choices = 0.0
        self.declared = True  # every closed row has the declared number of options
        self.n_choices = n_choices
        self.hits: dict[str, int] = {}

    def add(self, r: Row) -> None:
        self.n += 1
        if r["answer_type"] == "choice" and r["choices"]:
            self.closed += 1
            self.inv_choices += 1 / len(r["choices"])
            self.declared &= len(r["choices"]) == self.n_choices

    def chance(self, declared_chance: float | None) -> float | None:
        if not self.closed:
            return None
        if declared_chance is not None and self.declared:
            return float(declared_chance)
        return 100.0 * self.inv_choices / self.closed


def _declared(task: str) -> tuple[float | None, int | None]:
    """The task's declared ``(chance, n_choices)`` (:class:`~ai4va_fg_dataset.tasks.spec.TaskSpec`),
    ``(None, None)`` for a task without a declaration."""
    try:
        from ..tasks.spec import get_task

        spec = get_task(task)
    except (ImportError, KeyError):
        return None, None
    return spec.chance, spec.n_choices


def _hit(r: Row, k: int | None) -> bool:
    k = 0 if k is None else k
    return k < len(r["choices"]) and CHOICE_LETTERS[k] == r["answer"]


def run_audit(rows: Iterable[Row], geometry: Mapping[str, dict] | None = None,
              margin: float = MARGIN, min_items: int = MIN_ITEMS) -> dict[str, Any]:
    """Blind baselines per task and split (see the module docstring).

    Streams: two passes over ``rows`` (fit the learned baselines on ``train`` and size every
    group, then score), holding counters, not rows; ``rows`` must therefore be re-iterable (a list,
    or the build's spilled :class:`AuditRows`; a one-shot iterator is read into a list first).

    Args:
        rows: dataset rows with :data:`AUDIT_COLUMNS` and ``split`` (a row may carry its item
            geometry under ``"geometry"``).
        geometry: ``{id: {...}}`` item geometry (:data:`ITEM_GEOMETRY`) for rows without their own.
        margin, min_items: the flag rule.

    Returns:
        ``{"margin", "min_items", "baselines": [names], "rows": [{"task", "split", "n", "chance",
        "baselines": {name: accuracy or None}, "max_excess", "flagged"}], "flagged": [row, ...]}``.

    Raises:
        ValueError: a closed row whose answer is not one of its option letters.
    """
    if iter(rows) is rows:  # a one-shot iterator: two passes need the rows twice
        rows = list(rows)
    geometry = geometry or {}
    kinds: dict[str, str] = {}
    learners: dict[str, _Learner] = {}
    train_answers: dict[str, Counter] = {}
    groups: dict[str, dict[str, _Group]] = {}
    for r in rows:  # pass 1: check, fit, size
        if r["answer_type"] == "choice" and r["answer"] not in CHOICE_LETTERS[: len(r["choices"])]:
            raise ValueError(f"row {r['id']}: answer {r['answer']!r} is not a letter of its {len(r['choices'])} options")
        task = r["task"]
        kind = kinds.setdefault(task, r["answer_type"])
        if kind == "open":
            continue
        if task not in groups:
            n_choices = _declared(task)[1]
            groups[task] = {s: _Group(n_choices) for s in (*SPLITS, HELD_OUT)}
        if r["split"] == "train":
            if kind == "choice":
                learners.setdefault(task, _Learner()).add(r)
            else:
                train_answers.setdefault(task, Counter())[r["answer"]] += 1
        for split in _groups_of(r["split"]):
            groups[task][split].add(r)
    predictors = {task: learner.predictors() for task, learner in learners.items()}
    top_answer = {task: c.most_common(1)[0][0] for task, c in train_answers.items() if c}
    fixed = {task: heuristics(task, geometry) for task, kind in kinds.items() if kind == "choice"}
    for r in rows:  # pass 2: score
        task = r["task"]
        if kinds[task] == "open":
            continue
        names: dict[str, int | None] = {}
        if kinds[task] == "choice":
            fit = predictors.get(task, {})
            if r["split"] != "train":
                names.update({name: fn(r) for name, fn in fit.items()})
            names.update({name: fn(r) for name, fn in fixed[task].items()})
            hits = {name: _hit(r, k) for name, k in names.items()}
        elif task in top_answer and r["split"] != "train":
            hits = {"answer_prior": r["answer"] == top_answer[task]}
        else:
            hits = {}
        for split in _groups_of(r["split"]):
            acc = groups[task][split].hits
            for name, hit in hits.items():
                if not (split == "train" and name in ("letter_prior", "answer_prior", "text_only")):
                    acc[name] = acc.get(name, 0) + hit
    out_rows = []
    names_seen: list[str] = []
    for task in [t for t in TASKS if t in groups] + sorted(set(groups) - set(TASKS)):
        kind = kinds[task]
        declared_chance = _declared(task)[0]
        for split in (*SPLITS, HELD_OUT):
            g = groups[task][split]
            if not g.n:
                continue
            accs: dict[str, float | None] = {}
            if kind == "choice":
                fitted = task in predictors
                for name in ("letter_prior", "answer_prior", "text_only"):
                    accs[name] = 100.0 * g.hits.get(name, 0) / g.n if fitted and split != "train" else None
                for name in fixed[task]:
                    accs[name] = 100.0 * g.hits.get(name, 0) / g.n
            else:
                accs["answer_prior"] = (100.0 * g.hits.get("answer_prior", 0) / g.n
                                        if task in top_answer and split != "train" else None)
            chance = g.chance(declared_chance) if kind == "choice" else None
            vals = [v for v in accs.values() if v is not None]
            excess = max(vals) - chance if vals and chance is not None else None
            flagged = bool(excess is not None and g.n >= min_items and excess > margin)
            out_rows.append({"task": task, "split": split, "n": g.n, "chance": chance,
                             "baselines": accs, "max_excess": excess, "flagged": flagged})
            names_seen += [n for n in accs if n not in names_seen]
    return {"margin": margin, "min_items": min_items, "baselines": names_seen, "rows": out_rows,
            "flagged": [r for r in out_rows if r["flagged"]]}


def _groups_of(split: str) -> tuple[str, ...]:
    """The audit rows a row of ``split`` counts in (validation and test also count in held_out)."""
    if split in ("validation", "test"):
        return split, HELD_OUT
    return (split,) if split in SPLITS else ()


def audit_markdown(audit: Mapping[str, Any]) -> str:
    """The audit as a Markdown table (accuracy %, ``-`` where a baseline does not apply)."""
    names = list(audit["baselines"])
    head = "| task | split | n | chance | " + " | ".join(f"`{n}`" for n in names) + " | max - chance | flag |"
    lines = [head, "|---|---|---:|---:|" + "---:|" * len(names) + "---:|---|"]

    def fmt(v):
        return "-" if v is None else f"{v:.1f}"

    for r in audit["rows"]:
        cells = [fmt(r["baselines"].get(n)) for n in names]
        lines.append(f"| `{r['task']}` | {r['split']} | {r['n']} | {fmt(r['chance'])} | " + " | ".join(cells)
                     + f" | {fmt(r['max_excess'])} | {'**FLAG**' if r['flagged'] else ''} |")
    if "excluded_per_source" in audit:
        lines += ["", ("Pages excluded because their annotated order disagrees with the checked order "
                       "(`build_report.json` `excluded`):"), "", "| source | task | pages |", "|---|---|---:|"]
        lines += [f"| {src} | `{task}` | {n} |" for src, per in audit["excluded_per_source"].items()
                  for task, n in sorted(per.items())] or ["| - | - | 0 |"]
    lines += ["", (f"Blind baselines (accuracy %, `ai4va-fg audit`); a row is flagged when it has at least "
                   f"{audit['min_items']} items and a baseline exceeds chance by more than {audit['margin']:g} points. "
                   "Learned baselines (`letter_prior`, `answer_prior`, `text_only`) are fit on train and scored on "
                   f"the other splits (`{HELD_OUT}` = validation + test).")]
    return "\n".join(lines) + "\n"


def write_audit(folder: str | Path, audit: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write :data:`AUDIT_JSON` and :data:`AUDIT_MD` into ``folder`` (each atomically)."""
    folder = Path(folder)
    paths = folder / AUDIT_JSON, folder / AUDIT_MD
    with replacing_file(paths[0]) as tmp:
        tmp.write_text(json.dumps(audit, indent=1) + "\n", encoding="utf-8")
    with replacing_file(paths[1]) as tmp:
        tmp.write_text(audit_markdown(audit), encoding="utf-8")
    return paths


def audit_folder(folder: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Audit a built dataset ``folder`` and write the files into ``out`` (default: ``folder``; the CLI then
    rewrites the build's manifest so it lists them, see :func:`ai4va_fg_dataset.cli`).

    The folder's ``build_report.json``, when there, adds its per-source exclusion counts
    (``excluded_per_source``) to the audit and its table.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_rows` and :func:`run_audit`; a
            ``build_report.json`` that is not JSON.
    """
    rows, geometry = read_rows(folder)
    audit = run_audit(rows, geometry)
    report = Path(folder) / "build_report.json"
    if report.is_file():
        try:
            excluded = json.loads(report.read_text(encoding="utf-8")).get("excluded_per_source")
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{report}: not the JSON object `ai4va-fg build` writes: {exc}") from exc
        if excluded is not None:
            audit["excluded_per_source"] = excluded
    write_audit(Path(out) if out is not None else Path(folder), audit)
    return audit
