"""The per-page work unit of the build and the worker pool that runs it on every core.

One page is one unit of work (:func:`process_page`): decode the page image (checking that it
decodes, see :class:`ai4va_fg_dataset.build.pipeline.PageImageCheck`), run every requested task
generator on it, draw its marks and encode every sample image (JPEG or PNG,
:func:`ai4va_fg_dataset.core.images.encode_image`). What comes back (:class:`PageResult`) holds
only encoded bytes and counters, so the build streams pages through and memory does not grow
with the number of pages.

:func:`run_pages` runs that function over the pages in ``num_proc`` worker processes
(``concurrent.futures.ProcessPoolExecutor``, ``spawn`` start method: no fork of a process that has
threads) and yields the results **in page order**, a bounded window of pages ahead (at most
:data:`WINDOW_PER_PROC` pages per process in flight, so a slow page cannot make finished pages pile
up in memory). Every page's samples depend only on ``(seed, task, page_id)``
(:func:`ai4va_fg_dataset.tasks.base.page_rng`) and images are encoded with fixed settings, so the
output of a build is identical byte for byte whatever ``num_proc`` is (tested in
``tests/test_parallel_build.py``). ``num_proc=1`` runs the same function in this process, with
no thread or process of its own.

The same :func:`process_page` runs on Ray Data in :mod:`ai4va_fg_dataset.build.ray_engine`
(``--engine ray``).

Anchor: ``datasets.Dataset.map(num_proc=...)`` (one process per shard); here the unit is a page
because the build's output is written in page order by one writer.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.images import encode_image
from ..page import Page
from ..schema import Sample

logger = logging.getLogger(__name__)

BAD_IMAGE_REASON = "page image does not decode (bad record, see bad_records)"
"""The skip reason counted for every task of a page whose image does not decode."""

WINDOW_PER_PROC = 4
"""Pages in flight per worker process (submitted, not yet written); bounds the results held."""


def default_num_proc() -> int:
    """The cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass
class PageWork:
    """What every worker needs to process pages: the prepared generators and the settings.

    Attributes:
        generators: ``{task: TaskGenerator}`` already :meth:`~ai4va_fg_dataset.tasks.base.TaskGenerator.prepare`-d
            on all pages (e.g. the pose vocabulary); pickled once per worker.
        tasks: the task names to run, in :data:`~ai4va_fg_dataset.schema.TASKS` order.
        seed: the build seed (:func:`ai4va_fg_dataset.tasks.base.page_rng`).
        max_image_pixels: PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) the
            build set for ``--max-page-pixels``, applied in every worker (:func:`apply_pixel_limit`).
    """

    generators: dict[str, Any]
    tasks: list[str]
    seed: int
    max_image_pixels: int | None = None


@dataclass
class PageResult:
    """What one page produced.

    Attributes:
        index: position of the page in the build's page list (0-based).
        page_id: the page.
        samples: its samples (task order, then generator order), each ``image`` an encoded
            ``{"bytes": ..., "path": None}`` cell.
        skipped: ``{task: Counter(reason)}`` of this page (pages refused by ``why_not``, parts of
            pages skipped by the generator, ``"no sample generated"``).
        bad_image: ``None``, or why the page image does not decode (the page is then a bad
            record: the caller reports it to the build's :class:`~ai4va_fg_dataset.errors.BadRecordLog`).
    """

    index: int
    page_id: str
    samples: list[Sample]
    skipped: dict[str, Counter]
    bad_image: str | None = None


def _image_error(page: Page) -> str | None:
    """Decode ``page``'s image completely (``tasks.base.open_page``, which keeps it for the
    generators); ``None`` when it decodes, else the reason."""
    from ..tasks.base import open_page

    try:
        open_page(page)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, zlib/struct errors...
        return f"image does not decode: {type(exc).__name__}: {exc}"
    return None


def process_page(work: PageWork, index: int, page: Page) -> PageResult:
    """Run every task of ``work`` on one page and encode the sample images.

    The page image is decoded (once, completely) right before the first task that can use the
    page; if it does not decode, no task makes a row from it and every such task counts
    :data:`BAD_IMAGE_REASON`. The loop is that of :func:`ai4va_fg_dataset.tasks.base.generate_samples`
    for one page (same rng per ``(seed, task, page_id)``, same skip counts).

    Returns:
        the page's :class:`PageResult`.
    """
    from ..tasks.base import page_rng

    skipped: dict[str, Counter] = {t: Counter() for t in work.tasks}
    samples: list[Sample] = []
    bad: str | None = None
    checked = False
    for t in work.tasks:
        gen = work.generators[t]
        reason = gen.why_not(page)
        if reason is None:
            if not checked:
                bad, checked = _image_error(page), True
            if bad is not None:
                reason = BAD_IMAGE_REASON
        if reason is not None:
            skipped[t][reason] += 1
            continue
        made = gen.generate(page, page_rng(work.seed, t, page.page_id))
        skipped[t].update(gen.drain_skips())
        if not made:
            skipped[t]["no sample generated"] += 1
        for sample in made:
            sample.image = encode_image(sample.image)
        samples.extend(made)
    return PageResult(index, page.page_id, samples, skipped, bad)


def prepare_work(generators: dict[str, Any], tasks: Sequence[str], seed: int, pages: Sequence[Page]) -> PageWork:
    """The :class:`PageWork` of a build: every generator of ``tasks`` prepared on all ``pages``
    (:meth:`~ai4va_fg_dataset.tasks.base.TaskGenerator.prepare`, e.g. the pose vocabulary), as
    :func:`ai4va_fg_dataset.tasks.base.generate_samples` does before its loop.

    Raises:
        ValueError: a task that is unknown or has no generator.
    """
    from ..schema import TASKS

    names = list(tasks) if tasks else [t for t in TASKS if t in generators]
    bad = [t for t in names if t not in TASKS or t not in generators]
    if bad:
        raise ValueError(f"unknown task(s) or no generator for {bad}; known: {list(TASKS)}")
    for t in names:
        generators[t].prepare(pages)
        generators[t].drain_skips()
    from PIL import Image

    return PageWork({t: generators[t] for t in names}, names, seed, Image.MAX_IMAGE_PIXELS)


def apply_pixel_limit(work: PageWork) -> None:
    """Set ``PIL.Image.MAX_IMAGE_PIXELS`` of this (worker) process to the build's."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = work.max_image_pixels


class PageStream:
    """Turns the ordered :class:`PageResult` stream into the build's sample stream.

    For each page, in page order: a page whose image does not decode is reported to ``log`` as a
    bad record naming the image file (strict mode: the :class:`~ai4va_fg_dataset.errors.AnnotationError`
    propagates and the build stops, as before), its skip counts are added to :attr:`skipped`, its
    samples are yielded, and ``progress`` is called once (the progress bar counts pages).

    Attributes:
        skipped: ``{task: Counter(reason)}`` over the pages seen so far.
        bad: ``{page_id: reason}`` of the pages whose image did not decode.
        pages_done: pages consumed.
    """

    def __init__(self, log: Any, tasks: Sequence[str], progress: Any = None):
        self.log, self.progress = log, progress
        self.skipped: dict[str, Counter] = {t: Counter() for t in tasks}
        self.bad: dict[str, str] = {}
        self.pages_done = 0

    def samples(self, results: Iterator[PageResult], pages: Sequence[Page]) -> Iterator[Sample]:
        """Yield the samples of ``results`` (``pages``: the build's page list, indexed by
        :attr:`PageResult.index`, for the bad-record's file name)."""
        from ..errors import AnnotationError

        for result in results:
            if result.bad_image is not None:
                page = pages[result.index]
                self.bad[result.page_id] = result.bad_image
                self.log.report(AnnotationError(page.image_path, f"page {page.page_id}", result.bad_image))
            for t, counter in result.skipped.items():
                self.skipped.setdefault(t, Counter()).update(counter)
            samples, result.samples = result.samples, []
            samples.reverse()
            while samples:  # hand each sample on and forget it
                yield samples.pop()
            self.pages_done += 1
            if self.progress is not None:
                self.progress(self.pages_done)


_WORK: PageWork | None = None


def _init_worker(work: PageWork) -> None:
    global _WORK
    apply_pixel_limit(work)
    _WORK = work


def _run_one(index: int, page: Page | bytes) -> PageResult:
    """Worker side: ``page`` comes as its pickle when the build's pages are a
    :class:`~ai4va_fg_dataset.build.page_store.PageStore` (sent as stored, not pickled again)."""
    assert _WORK is not None, "worker not initialised"
    if isinstance(page, bytes):
        import pickle

        page = pickle.loads(page)
    return process_page(_WORK, index, page)


def run_pages(work: PageWork, pages: Sequence[Page], *, num_proc: int | None = None) -> Iterator[PageResult]:
    """Yield :func:`process_page` of every page, in page order, using ``num_proc`` processes.

    Args:
        work: the prepared generators and settings (pickled once into each worker when
            ``num_proc > 1``; when they do not pickle, e.g. a Panel Understanding VLM client holding
            a connection, every page runs in this process, with a warning).
        pages: the pages (each pickled to its worker).
        num_proc: worker processes (default: :func:`default_num_proc`); 1 runs in this process.

    Raises:
        ValueError: ``num_proc`` < 1.
        Whatever :func:`process_page` raises (re-raised here, in page order).
    """
    num_proc = default_num_proc() if num_proc is None else num_proc
    if num_proc < 1:
        raise ValueError(f"num_proc must be >= 1, got {num_proc}")
    num_proc = min(num_proc, max(1, len(pages)))
    if num_proc == 1:
        for i, page in enumerate(pages):
            yield process_page(work, i, page)
        return
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    try:
        pickle.dumps(work)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        # e.g. a Panel Understanding VLM client holding a connection: its pages wait on the
        # network, not on this machine's cores
        logger.warning("running every page in this process (--num-proc %d ignored): a task generator cannot be "
                       "sent to a worker process (%s)", num_proc, exc)
        yield from run_pages(work, pages, num_proc=1)
        return
    ctx = multiprocessing.get_context("spawn")
    window = num_proc * WINDOW_PER_PROC
    pool = ProcessPoolExecutor(num_proc, mp_context=ctx, initializer=_init_worker, initargs=(work,))
    try:
        pending: deque = deque()
        from .page_store import PageStore

        items = (iter((i, pages.pickled(i)) for i in range(len(pages))) if isinstance(pages, PageStore)
                 else iter(enumerate(pages)))
        for i, page in items:
            pending.append(pool.submit(_run_one, i, page))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(items, None)
            if nxt is not None:
                pending.append(pool.submit(_run_one, *nxt))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class SheetPicker:
    """Keeps, while samples stream past, only the samples the contact sheet can show.

    :func:`ai4va_fg_dataset.build.contact_sheet.select_samples` takes per task the samples with the
    smallest ``sha256(seed, id)`` round-robin, so at most ``n`` per task can be chosen: this keeps
    those (a heap per task), and :meth:`chosen` returns exactly what ``select_samples`` would
    return on the whole stream. Memory: ``n`` samples per task.
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self._heaps: dict[str, list[tuple[str, int, Sample]]] = {}
        self._count = 0

    def offer(self, sample: Sample) -> None:
        """Consider one sample."""
        key = hashlib.sha256(f"{self.seed}\x00{sample.id}".encode()).hexdigest()
        heap = self._heaps.setdefault(sample.task, [])
        self._count += 1
        item = (_Reverse(key), self._count, sample)
        if len(heap) < self.n:
            heapq.heappush(heap, item)
        elif key < heap[0][0].key:
            heapq.heapreplace(heap, item)

    def tap(self, samples: Iterable[Sample]) -> Iterator[Sample]:
        """Yield ``samples`` unchanged, offering each one to the picker."""
        for sample in samples:
            self.offer(sample)
            yield sample

    def chosen(self) -> list[Sample]:
        """The samples ``select_samples(all samples, n, seed)`` picks."""
        from .contact_sheet import select_samples

        kept = [s for heap in self._heaps.values() for _, _, s in heap]
        return select_samples(kept, self.n, self.seed)


@dataclass(order=False)
class _Reverse:
    """Orders sha256 hex keys in reverse, so ``heap[0]`` is the largest kept key (a max-heap)."""

    key: str = field()

    def __lt__(self, other: _Reverse) -> bool:
        return self.key > other.key


__all__ = ["BAD_IMAGE_REASON", "PageResult", "PageWork", "SheetPicker", "default_num_proc", "process_page",
           "run_pages"]
