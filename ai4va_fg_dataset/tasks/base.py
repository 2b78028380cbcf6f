"""The task-generator interface, the generator registry and the generation loop (method.md section 2).

Generators are found through the task declarations (:mod:`ai4va_fg_dataset.tasks.spec`): this module
imports no generator; :func:`make_generator` resolves a spec's lazy ``"module:Class"`` reference.

A :class:`TaskGenerator` turns one annotated :class:`~ai4va_fg_dataset.page.Page` into
:class:`~ai4va_fg_dataset.schema.Sample` objects of one task. Before generating it says, per page,
why it cannot (:meth:`TaskGenerator.why_not`): real data feeds only some tasks and annotations are
never invented, so every page a task skips is counted under a reason.

:func:`generate_samples` runs the generators over pages, deterministically: each ``(seed, task,
page_id)`` gets its own ``random.Random`` seeded from a SHA-256 digest (never Python's salted
``hash()``), so a page's samples do not depend on which other pages or tasks are built.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..page import Page
from ..schema import CHOICE_LETTERS, TASKS, Sample
from .spec import TASK_SPECS, TaskSpec, get_task, register_task

logger = logging.getLogger(__name__)


def page_rng(seed: int, task: str, page_id: str) -> random.Random:
    """The random generator of one ``(seed, task, page)``, seeded from SHA-256 (stable across runs
    and Python processes)."""
    digest = hashlib.sha256(f"{seed}\x1f{task}\x1f{page_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sample_id(task: str, page_id: str, n: int) -> str:
    """``"<task>/<page_id>/<n>"``, the sample id of the dataset."""
    return f"{task}/{page_id}/{n}"


def page_bytes(page: Page) -> bytes:
    """The untouched bytes of the page image file (for tasks that draw nothing); for a page that
    is part of a file (``page.crop``, a Manga109 spread half) the cropped page encoded in the
    file's format (JPEG quality 95, else PNG).

    Raises:
        FileNotFoundError: the image is gone since the adapter checked it.
    """
    if page.crop is None:
        return Path(page.image_path).read_bytes()
    import io

    image = open_page(page)
    fmt = "JPEG" if image.info.get("source_format") == "JPEG" else "PNG"
    buf = io.BytesIO()
    image.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def _decoded_page(path: str, mtime_ns: int, size: int) -> Image.Image:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        rgb.info["source_format"] = im.format
        return rgb


def open_page(page: Page) -> Image.Image:
    """The page image as RGB, fully loaded (the file is closed); a copy the caller may draw on.

    ``info["source_format"]`` keeps the file's format (``"JPEG"``, ``"PNG"``...), so the export
    encodes a drawn JPEG scan as JPEG again instead of a PNG five times its size. A page that is part
    of a file (``page.crop``: one half of a Manga109 spread) is cropped out. The last decoded
    page is kept (keyed on path, mtime and size): :func:`generate_samples` runs every task on a page
    before the next, so a page is decoded once, not once per task.
    """
    st = os.stat(page.image_path)
    decoded = _decoded_page(str(page.image_path), st.st_mtime_ns, st.st_size)
    if page.crop is None:
        return decoded.copy()
    cropped = decoded.crop(tuple(round(v) for v in page.crop))  # a page of a multi-page file (Page.crop)
    cropped.info["source_format"] = decoded.info.get("source_format")
    return cropped


def panel_boxes(page: Page, entities: Sequence) -> list[list[float]]:
    """The boxes of the panels that contain ``entities``, each panel once, in reading order.

    This is the ``panel_bboxes`` column: what the manual panel zoom of paper Table 3.3 ("individual-panel
    inputs", zooming "solely into the relevant panels") crops. The reading order is the annotated one
    (``Panel.order``) when every panel of the page has it, else :func:`~ai4va_fg_dataset.reading_order.
    reading_order` (XY-cut) in ``page.reading_direction``.

    Args:
        page: the page.
        entities: objects with a ``panel_id`` (:class:`~ai4va_fg_dataset.page.Entity`); ``None`` ids (outside
            every panel) are left out.

    Returns:
        ``[[x1, y1, x2, y2], ...]`` page pixels; empty when the page has no panels or no entity is in one.
    """
    from ..reading_order import reading_order

    wanted = {e.panel_id for e in entities if e.panel_id is not None}
    if not page.panels or not wanted:
        return []
    if all(p.order is not None for p in page.panels):
        ordered = sorted(page.panels, key=lambda p: p.order)
    else:
        ordered = [page.panels[i] for i in reading_order([p.bbox for p in page.panels], page.reading_direction)]
    return [[float(v) for v in p.bbox] for p in ordered if p.id in wanted]


def shuffled_choices(correct: str, distractors: Sequence[str], rng: random.Random) -> tuple[list[str], str]:
    """Options = ``correct`` + ``distractors`` in random order, and the letter of ``correct``.

    Raises:
        ValueError: ``correct`` is among ``distractors`` or an option repeats (two identical
            options would make the question unanswerable).
    """
    options = [correct, *distractors]
    if len(set(options)) != len(options):
        raise ValueError(f"repeated option in {options!r}")
    rng.shuffle(options)
    return options, CHOICE_LETTERS[options.index(correct)]


class TaskGenerator(ABC):
    """Makes the samples of one AI4VA-FG task from annotated pages.

    Attributes:
        name: the task, a registered :class:`~ai4va_fg_dataset.tasks.spec.TaskSpec` name (one of
            :data:`~ai4va_fg_dataset.schema.TASKS`); everything else about the task (panel scope,
            skill, answer type...) is read from that declaration (:attr:`spec`).
        max_per_page: at most this many samples per page (``None``: no cap); the class default
            ``default_max_per_page`` (the task's ``MAX_PER_PAGE``) keeps few near-duplicate questions per
            page and is below the paper's density for some tasks; the build sets it per task
            (``--max-per-page``, ``--density paper``): see :mod:`ai4va_fg_dataset.tasks.density`.

    Raises:
        ValueError: ``max_per_page`` < 1.
    """

    name: str = ""
    default_max_per_page: int | None = None

    def __init__(self, max_per_page: int | None = None) -> None:
        self._skips: Counter[str] = Counter()
        self.max_per_page = max_per_page if max_per_page is not None else self.default_max_per_page
        if self.max_per_page is not None and self.max_per_page < 1:
            raise ValueError(f"{self.name}: max_per_page must be >= 1, got {self.max_per_page}")

    def __getstate__(self) -> dict:
        """Pickle with the task's declaration, so a task registered at run time (not at the import of
        :mod:`~ai4va_fg_dataset.tasks.spec`) exists in ``spawn`` build workers too (:meth:`__setstate__`)."""
        return {**self.__dict__, "_task_spec": TASK_SPECS.get(self.name)}

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        spec = state.pop("_task_spec", None)
        if spec is not None and spec.name not in TASK_SPECS:
            register_task(spec)
        self.__dict__.update(state)

    @property
    def spec(self) -> TaskSpec:
        """The declaration of this generator's task.

        Raises:
            KeyError: :attr:`name` is not a registered task.
        """
        return get_task(self.name)

    @property
    def panel_scope(self) -> str:
        """Default ``panel_scope`` of the task's samples: the spec's (thesis Table 3.1)."""
        return self.spec.panel_scope

    @property
    def skill(self) -> str:
        """Default ``skill`` of the task's samples: the spec's (thesis Table 3.1)."""
        return self.spec.skill

    def annotation_why_not(self, page: Page) -> str | None:
        """Why the *annotations* of ``page`` cannot feed this task, whatever the run's configuration
        (e.g. a missing VLM client does not count); ``None`` when they can. Used by
        :func:`feasibility` (what a source can feed). Default: :meth:`why_not`."""
        return self.why_not(page)

    def prepare(self, pages: Sequence[Page]) -> None:
        """Look at all pages before generating (e.g. collect the pose vocabulary). Default: nothing."""

    @abstractmethod
    def why_not(self, page: Page) -> str | None:
        """Why ``page`` cannot feed this task (a short reason, counted in the build report), or
        ``None`` when it can."""

    @abstractmethod
    def generate(self, page: Page, rng: random.Random) -> list[Sample]:
        """The samples of ``page`` (call only when :meth:`why_not` is ``None``)."""

    def skip(self, reason: str, n: int = 1) -> None:
        """Record that part of a page (e.g. one panel) was skipped for ``reason``."""
        self._skips[reason] += n

    def drain_skips(self) -> Counter[str]:
        """The reasons recorded by :meth:`skip` since the last call, then forget them."""
        out, self._skips = self._skips, Counter()
        return out

    def sample(self, page: Page, n: int, **fields) -> Sample:
        """A :class:`Sample` of this task for ``page`` with id ``"<task>/<page_id>/<n>"``."""
        fields.setdefault("panel_scope", self.panel_scope)
        fields.setdefault("skill", self.skill)
        return Sample(id=sample_id(self.name, page.page_id, n), task=self.name, page_id=page.page_id,
                      source=page.source, **fields)


def make_generator(task: str, **kwargs: Any) -> TaskGenerator:
    """A fresh generator of ``task``: the class its spec names (:attr:`TaskSpec.generator`), built
    with ``kwargs`` (e.g. ``client=`` for Panel Understanding).

    Raises:
        KeyError: ``task`` is not registered.
        ImportError / AttributeError: the spec's generator reference does not resolve.
        TypeError: the class is not a :class:`TaskGenerator` whose ``name`` is ``task``.
    """
    spec = get_task(task)
    cls = spec.generator_class()
    if not (isinstance(cls, type) and issubclass(cls, TaskGenerator)):
        raise TypeError(f"task {task!r}: generator {spec.generator!r} is not a TaskGenerator subclass")
    if cls.name != task:
        raise TypeError(f"task {task!r}: generator {spec.generator!r} has name {cls.name!r}")
    return cls(**kwargs)


def default_generators(tasks: Iterable[str] | None = None) -> dict[str, TaskGenerator]:
    """A fresh generator per registered task (default: every task of
    :data:`~ai4va_fg_dataset.schema.TASKS`), built from the specs; Panel Understanding without a VLM
    client.

    Raises:
        KeyError: an unknown task name.
    """
    return {t: make_generator(t) for t in (TASKS if tasks is None else tasks)}


def feasibility(
    pages: Sequence[Page] | None,
    fills: Iterable[str] | None = None,
    *,
    source: str = "the source",
    notes: dict[str, str] | None = None,
) -> dict[str, str | None]:
    """Which registered tasks a source can feed: ``{task: None | reason}`` for every task.

    A task is fed when ``fills`` (the page-model fields the source's format fills; ``None``: not
    checked) includes every field of its :attr:`TaskSpec.needs`, **and** at least one of ``pages``
    passes its generator's :meth:`TaskGenerator.annotation_why_not` (after
    :meth:`TaskGenerator.prepare` over all ``pages``; ``pages=None``: not checked, the format-level
    statement). The generator is the one authority on what a page needs (e.g. three ordered balloons
    for Dialog Reordering), so this cannot drift from what the build generates.

    Args:
        pages: the loaded pages, or ``None``.
        fills: names of :data:`~ai4va_fg_dataset.tasks.spec.PAGE_FIELDS`, or ``None``.
        source: the source's name, used in reasons.
        notes: ``{field or collection: why the source lacks it}``; the reason of a missing field
            is its note (field first, then its collection, e.g. ``"characters"``) when there is one.

    Returns:
        The reason of a task that is not fed: the note or ``"<source> does not annotate
        <fields>"``; ``"no page: <the commonest page reason>"``; ``"no pages"`` for an empty list.

    Raises:
        ValueError: ``fills`` names a field not in :data:`~ai4va_fg_dataset.tasks.spec.PAGE_FIELDS`.
    """
    from .spec import PAGE_FIELDS, iter_tasks

    have = None if fills is None else frozenset(fills)
    if have is not None and not have <= PAGE_FIELDS:
        raise ValueError(f"{source}: unknown page field(s) {sorted(have - PAGE_FIELDS)}; known: {sorted(PAGE_FIELDS)}")
    notes = notes or {}
    out: dict[str, str | None] = {}
    for spec in iter_tasks():
        missing = [f for f in spec.needs if have is not None and f not in have]
        if missing:
            said = [notes.get(f) or notes.get(f.split(".")[0]) for f in missing]
            note = next((n for n in said if n), None)
            out[spec.name] = note or f"{source} does not annotate {', '.join(missing)}"
            continue
        if pages is None:
            out[spec.name] = None
            continue
        if not pages:
            out[spec.name] = "no pages"
            continue
        gen = make_generator(spec.name)
        gen.prepare(pages)
        reasons: Counter[str] = Counter()
        for page in pages:
            reason = gen.annotation_why_not(page)
            if reason is None:
                break
            reasons[reason] += 1
        else:
            out[spec.name] = f"no page: {reasons.most_common(1)[0][0]}"
            continue
        out[spec.name] = None
    return out


def generate_samples(
    pages: Sequence[Page],
    *,
    seed: int,
    tasks: Sequence[str] | None = None,
    generators: dict[str, TaskGenerator] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Sample], dict[str, Counter[str]]]:
    """Generate the samples of ``tasks`` from ``pages``.

    Args:
        pages: annotated pages (any sources).
        seed: the seed; page ``p`` of task ``t`` uses :func:`page_rng` ``(seed, t, p.page_id)``.
        tasks: task names (default: every task in ``generators``, in :data:`TASKS` order).
        generators: ``{task: generator}`` (default: :data:`~ai4va_fg_dataset.tasks.GENERATORS`, plus
            a fresh generator for any task registered since; Panel Understanding has no VLM client
            there and skips every page with that reason).
        progress: called once per page after all its tasks, with the number of pages done so far.

    Returns:
        ``(samples, skipped)``: the samples (page order, then task order) and, for every requested
        task, a ``Counter`` of skip reasons: pages that :meth:`TaskGenerator.why_not` refused, by
        reason, plus parts of pages skipped during generation (e.g. ``"panel: malformed VLM
        output"`` counts panels).

    Raises:
        ValueError: an unknown task name, or a task without a generator.
    """
    if generators is None:
        from . import GENERATORS as gens  # the package's registry, built on first use
        for t in TASKS:
            if t not in gens:
                gens[t] = make_generator(t)
    else:
        gens = generators
    names = list(tasks) if tasks else [t for t in TASKS if t in gens]
    bad = [t for t in names if t not in TASKS or t not in gens]
    if bad:
        raise ValueError(f"unknown task(s) or no generator for {bad}; known: {list(TASKS)}")
    skipped: dict[str, Counter[str]] = {t: Counter() for t in names}
    for t in names:
        gens[t].prepare(pages)
        gens[t].drain_skips()
    samples: list[Sample] = []
    for done, page in enumerate(pages, start=1):
        for t in names:
            gen = gens[t]
            reason = gen.why_not(page)
            if reason is not None:
                skipped[t][reason] += 1
                continue
            made = gen.generate(page, page_rng(seed, t, page.page_id))
            skipped[t].update(gen.drain_skips())
            if not made:
                skipped[t]["no sample generated"] += 1
            samples.extend(made)
        if progress is not None:
            progress(done)
    for t in names:
        logger.info("%s: %d samples; skipped %s", t, sum(s.task == t for s in samples), dict(skipped[t]))
    return samples, skipped
