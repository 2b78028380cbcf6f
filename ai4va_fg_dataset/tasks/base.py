"""The task-generator interface and the generation loop (method.md section 2).

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
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from ..page import Page
from ..schema import CHOICE_LETTERS, TASKS, Sample

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
    """The untouched bytes of the page image file (for tasks that draw nothing).

    Raises:
        FileNotFoundError: the image is gone since the adapter checked it.
    """
    return Path(page.image_path).read_bytes()


@functools.lru_cache(maxsize=1)
def _decoded_page(path: str, mtime_ns: int, size: int) -> Image.Image:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        rgb.info["source_format"] = im.format
        return rgb


def open_page(page: Page) -> Image.Image:
    """The page image as RGB, fully loaded (the file is closed); a copy the caller may draw on.

    ``info["source_format"]`` keeps the file's format (``"JPEG"``, ``"PNG"``...), so the export
    encodes a drawn JPEG scan as JPEG again instead of a PNG five times its size. The last decoded
    page is kept (keyed on path, mtime and size): :func:`generate_samples` runs every task on a page
    before the next, so a page is decoded once, not once per task.
    """
    st = os.stat(page.image_path)
    return _decoded_page(str(page.image_path), st.st_mtime_ns, st.st_size).copy()


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
        name: the task, one of :data:`~ai4va_fg_dataset.schema.TASKS`.
        panel_scope: ``"single"`` or ``"multi"`` (default of the task's samples).
        skill: ``"recognition"`` or ``"understanding"``.
        max_per_page: at most this many samples per page (``None``: no cap); the class default
            ``default_max_per_page`` follows the paper's per-task question counts.

    Raises:
        ValueError: ``max_per_page`` < 1.
    """

    name: str = ""
    panel_scope: str = "single"
    skill: str = "recognition"
    default_max_per_page: int | None = None

    def __init__(self, max_per_page: int | None = None) -> None:
        self._skips: Counter[str] = Counter()
        self.max_per_page = max_per_page if max_per_page is not None else self.default_max_per_page
        if self.max_per_page is not None and self.max_per_page < 1:
            raise ValueError(f"{self.name}: max_per_page must be >= 1, got {self.max_per_page}")

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


def default_generators() -> dict[str, TaskGenerator]:
    """A fresh generator per task (Panel Understanding without a VLM client)."""
    from .action_recognition import ActionRecognitionGenerator
    from .character_counting import CharacterCountingGenerator
    from .character_identification import CharacterIdentificationGenerator
    from .depth_comparison import DepthComparisonGenerator
    from .dialog_reordering import DialogReorderingGenerator
    from .panel_reordering import PanelReorderingGenerator
    from .panel_understanding import PanelUnderstandingGenerator

    gens: list[TaskGenerator] = [
        PanelUnderstandingGenerator(client=None),
        ActionRecognitionGenerator(),
        DepthComparisonGenerator(),
        DialogReorderingGenerator(),
        PanelReorderingGenerator(),
        CharacterIdentificationGenerator(),
        CharacterCountingGenerator(),
    ]
    return {g.name: g for g in gens}


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
        generators: ``{task: generator}`` (default: :data:`GENERATORS`, where Panel Understanding
            has no VLM client and skips every page with that reason).
        progress: called once per page after all its tasks, with the number of pages done so far.

    Returns:
        ``(samples, skipped)``: the samples (page order, then task order) and, for every requested
        task, a ``Counter`` of skip reasons: pages that :meth:`TaskGenerator.why_not` refused, by
        reason, plus parts of pages skipped during generation (e.g. ``"panel: malformed VLM
        output"`` counts panels).

    Raises:
        ValueError: an unknown task name, or a task without a generator.
    """
    from . import GENERATORS

    gens = generators if generators is not None else GENERATORS
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
