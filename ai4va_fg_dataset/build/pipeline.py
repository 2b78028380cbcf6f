"""The AI4VA-FG build: annotations -> pages -> splits -> samples -> Parquet dataset.

One call of :func:`build` runs the whole pipeline of method.md section 2:

1. load every source with its adapter (:func:`ai4va_fg_dataset.adapters.load_source`) under one
   :class:`~ai4va_fg_dataset.errors.BadRecordLog` (strict unless ``skip_bad``) into a
   :class:`~ai4va_fg_dataset.build.page_store.PageStore`, the page list kept on disk (one
   annotation file's pages are in memory at a time);
2. split the pages (:func:`ai4va_fg_dataset.build.splits.assign_splits`, by page, seeded);
3. generate the samples of every requested task page by page in ``num_proc`` worker processes
   (:mod:`ai4va_fg_dataset.build.parallel`; or on Ray Data, :mod:`ai4va_fg_dataset.build.ray_engine`)
   with a progress bar over pages, streaming them in page order into the Parquet shards
   (:func:`ai4va_fg_dataset.build.export.write_parquet`), so memory does not grow with the pages;
4. run the blind-baseline audit over the rows spilled to disk while streaming
   (:class:`~ai4va_fg_dataset.build.audit.AuditRows`), write the dataset card
   (:mod:`ai4va_fg_dataset.build.export`), a ``contact_sheet.png`` (of the few samples it shows,
   kept while streaming) and ``build_report.json``.

What stays in memory grows with the largest page, the largest annotation file and the shard
writers' buffers, plus a few counters and ids per page (the splits, the skip counts, the balance
plans of the reordering tasks), not with the pages' annotations or samples (issue 13).

Everything is written to a temporary folder next to ``out_dir`` that replaces ``out_dir`` only
when the build is complete: a failed build leaves a previous ``out_dir`` untouched. That folder is
created first, before any input is read, so an unusable ``--out`` (not a previous build, a git work
tree, an input folder, read-only) is refused at once (:func:`ai4va_fg_dataset.build.export.staging_dir`).

Page images are bad records like any other (strict: the build stops with ``FILE: RECORD: REASON``;
``skip_bad``: the page is skipped and listed): a page larger than ``max_page_pixels`` (checked from
the image header when loaded, :data:`DEFAULT_MAX_PAGE_PIXELS`), and a page whose image does not
fully decode (truncated, corrupt), checked by decoding it completely right before its first task
uses it. That decode is the one the task generators use (``tasks.base.open_page`` keeps the last
page), so every page a task uses is decoded once, and no row is ever made from an image that does
not decode.

``build_report.json`` holds: the sources (adapter, path, pages, what each can feed and why not),
the bad records skipped, per task the skip reasons of the generators, the counts per task and
split, timings, the seed and the library versions.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import AnnotationError, BadRecordLog
from ..page import Page
from ..schema import SPLITS, TASKS
from .dataset_card import CardInfo, SourceInfo
from .export import BUILD_MARKER, staging_dir, write_dataset_card, write_parquet
from .page_store import PageStore
from .parallel import BAD_IMAGE_REASON  # noqa: F401  (the skip reason of a page that does not decode)
from .splits import DEFAULT_RATIOS, assign_splits

logger = logging.getLogger(__name__)

CONTACT_SHEET = "contact_sheet.png"

DEFAULT_MAX_PAGE_PIXELS = 50_000_000
"""Largest page accepted by default, in pixels (width x height; CLI ``--max-page-pixels``). 50 MP
admits a 600 dpi scan of an A4 page (4961 x 7016 = 35 MP), not one of an A3 page (7016 x 9921 =
70 MP); real comic scans are 2-25 MP. A decoded page costs 3 bytes per pixel and the build holds a few
copies of it (drawing, encoder queue), so the limit bounds memory: a 12000 x 12000 page (144 MP)
made a build use 3.4 GB of RSS, a 7000 x 7000 one (49 MP, just under the limit) 1.3 GB (measured,
panel_reordering). Larger pages are bad records (``--skip-bad`` skips them)."""

ENGINES = ("local", "ray")
"""Engines of the per-page work (``--engine``): a local process pool, or Ray Data."""


@dataclass
class SourceSpec:
    """One ``--source NAME --path PATH`` pair with adapter options (e.g. ``image_root``)."""

    name: str
    path: Path
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildResult:
    """What :func:`build` made.

    Attributes:
        out_dir: the dataset folder.
        counts: ``{task: {split: rows}}`` for every task with samples.
        report: the content of ``build_report.json``.
    """

    out_dir: Path
    counts: dict[str, dict[str, int]]
    report: dict[str, Any]

    @property
    def bad_records(self) -> list[dict[str, str]]:
        """The skipped bad records (``file``, ``record``, ``reason``)."""
        return self.report["bad_records"]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("ai4va-fg", "datasets", "pyarrow", "pillow", "huggingface_hub", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _as_spec(source: SourceSpec | Sequence[Any]) -> SourceSpec:
    if isinstance(source, SourceSpec):
        return source
    name, path, *rest = source
    return SourceSpec(str(name), Path(path), dict(rest[0]) if rest else {})


def expand_sources(sources: Sequence[SourceSpec | Sequence[Any]]) -> list[SourceSpec]:
    """Resolve ``auto`` entries with :func:`ai4va_fg_dataset.adapters.detect_sources`.

    Args:
        sources: ``SourceSpec`` or ``(name, path)`` / ``(name, path, options)`` tuples.

    Raises:
        ValueError: an ``auto`` folder with no recognisable dataset, or an unknown source name.
        FileNotFoundError: a path that does not exist.
    """
    from ..adapters import ADAPTERS, detect_sources

    out: list[SourceSpec] = []
    for spec in map(_as_spec, sources):
        if not spec.path.exists():
            raise FileNotFoundError(f"source {spec.name}: path {spec.path} does not exist")
        if spec.name == "auto":
            for name, path in detect_sources(spec.path):
                out.append(SourceSpec(name, Path(path), _options_for(name, spec.options)))
        elif spec.name not in ADAPTERS:
            raise ValueError(f"unknown source {spec.name!r}; known: auto, {', '.join(sorted(ADAPTERS))}")
        else:
            out.append(SourceSpec(spec.name, spec.path, _options_for(spec.name, spec.options)))
    return out


def _options_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Drop options an adapter does not take (``image_root`` and ``mapping`` are for COCO-form
    sources, ``image_root`` also for Magi, ``dialog`` for Manga109): the CLI gives every source the
    same options."""
    import inspect

    from ..adapters import ADAPTERS, CocoAdapter

    adapter = ADAPTERS.get(name)  # an unknown name is reported by load_source
    if adapter is None or issubclass(adapter, CocoAdapter):
        return dict(options)
    accepted = inspect.signature(adapter.__init__).parameters
    return {k: v for k, v in options.items() if k in accepted}


def load_pages(
    specs: Sequence[SourceSpec], log: BadRecordLog, *, max_page_pixels: int | None = DEFAULT_MAX_PAGE_PIXELS
) -> tuple[PageStore, list[dict[str, Any]]]:
    """Load every source; returns the pages and one report entry per source (each with a
    ``page_ids`` set, which :func:`build` drops before writing the report).

    The pages go to a :class:`~ai4va_fg_dataset.build.page_store.PageStore` (on disk) source by
    source, so memory holds at most one source's pages at a time (an adapter parses its annotation
    file whole: a COCO JSON is read at once, Manga109 one book per file). Pages whose id repeats one
    of an earlier source (the same data given twice) are bad records, and so are pages of more than
    ``max_page_pixels`` pixels (``None``: no limit).

    Raises:
        AnnotationError: the first bad record in strict mode.
    """
    from ..adapters import ADAPTERS

    pages = PageStore()
    entries = []
    seen: set[str] = set()
    for spec in specs:
        adapter = ADAPTERS[spec.name](**spec.options)
        first = len(pages)
        ids: set[str] = set()
        licenses: set[str] = set()
        attributions: set[str] = set()
        # an adapter returns a list or (a folder of COCO files) a generator: pages go to the store
        # as they come, so only one annotation file's pages are ever in memory
        for page in adapter.load(spec.path, log=log):
            if page.page_id in seen:
                log.report(AnnotationError(str(spec.path), f"page {page.page_id}",
                                           "page id already loaded from another source (the same data given twice?)"))
                continue
            if max_page_pixels is not None and page.width * page.height > max_page_pixels:
                log.report(AnnotationError(
                    page.image_path, f"page {page.page_id}",
                    f"image of {page.width}x{page.height} = {page.width * page.height / 1e6:.1f} MP is over the "
                    f"page limit of {max_page_pixels / 1e6:g} MP (--max-page-pixels)"))
                continue
            seen.add(page.page_id)
            ids.add(page.page_id)
            licenses.add(page.license)
            attributions.add(page.attribution)
            pages.append(page)
        entries.append(
            {
                "name": spec.name,
                "path": str(spec.path),
                "options": {k: str(v) for k, v in spec.options.items()},
                "pages": len(ids),
                "feeds": dict(type(adapter).feeds),
                "capabilities": adapter.capabilities(pages.view(first)),
                "licenses": sorted(x for x in licenses if x),
                "attributions": sorted(x for x in attributions if x),
                "page_ids": ids,  # dropped before the report is written
            }
        )
    return pages, entries


def make_generators(pu_client: Any = None, pu_questions: int | None = None,
                    max_per_page: dict[str, int] | None = None) -> dict[str, Any]:
    """Fresh task generators (:func:`ai4va_fg_dataset.tasks.default_generators`), with Panel
    Understanding bound to ``pu_client`` when one is given (``pu_questions`` per panel; ``None``:
    the generator's default) and the per-page caps ``max_per_page`` (``{task: N}``; others keep the
    generator's default, see :mod:`ai4va_fg_dataset.tasks.density`)."""
    from ..tasks import default_generators
    from ..tasks.base import make_generator

    gens = default_generators()
    for task, cap in (max_per_page or {}).items():
        gens[task] = make_generator(task, max_per_page=cap)
    if pu_client is not None:
        from ..tasks.panel_understanding import PanelUnderstandingGenerator

        kwargs = {"questions": pu_questions} if pu_questions else {}
        gens["panel_understanding"] = PanelUnderstandingGenerator(client=pu_client, **kwargs)
    return gens


class PageImageCheck:
    """Decodes each page image completely, once, before the first task uses it.

    A page that does not decode (truncated file, corrupt data, PIL's decompression-bomb limit) is
    reported to ``log`` as a bad record naming the image file (strict mode: the
    :class:`AnnotationError` propagates) and remembered, so no task makes a row from it. The
    decode is ``tasks.base.open_page``'s own (it keeps the last decoded page), so the generators
    that draw on the page reuse it instead of decoding it again.

    Attributes:
        bad: ``{page_id: reason}`` of the pages that did not decode.
    """

    def __init__(self, log: BadRecordLog):
        self.log = log
        self.bad: dict[str, str] = {}
        self._good: set[str] = set()

    def ok(self, page: Page) -> bool:
        """True if ``page``'s image decodes (decoding it on the first call for that page).

        Raises:
            AnnotationError: it does not, in strict mode.
        """
        if page.page_id in self._good:
            return True
        if page.page_id in self.bad:
            return False
        from ..tasks.base import open_page

        try:
            open_page(page)
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, zlib/struct errors...
            reason = f"image does not decode: {type(exc).__name__}: {exc}"
            self.bad[page.page_id] = reason
            self.log.report(AnnotationError(page.image_path, f"page {page.page_id}", reason))
            return False
        self._good.add(page.page_id)
        return True


def _progress_bar(total: int, console) -> tuple[Any, Callable[..., None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("pages"),
                   TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task("pages", total=total)

    def advance(*_args: Any, **_kwargs: Any) -> None:
        bar.advance(task, 1)

    return bar, advance


def build(
    sources: Sequence[SourceSpec | Sequence[Any]],
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    skip_bad: bool = False,
    pu_client: Any = None,
    pu_questions: int | None = None,
    contact_sheet: bool = True,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    console: Any = None,
    max_page_pixels: int | None = DEFAULT_MAX_PAGE_PIXELS,
    protect: Sequence[str | os.PathLike] = (),
    review: str | os.PathLike | None = None,
    density: str = "default",
    max_per_page: dict[str, int] | None = None,
    num_proc: int | None = None,
    engine: str = "local",
    keep_unchecked: bool = False,
) -> BuildResult:
    """Build the AI4VA-FG dataset from ``sources`` into ``out_dir``.

    Args:
        sources: ``(name, path)`` pairs (``name`` an adapter of
            :data:`ai4va_fg_dataset.adapters.ADAPTERS` or ``"auto"``), optionally with a third
            item of adapter options (``{"image_root": ...}``), or :class:`SourceSpec` objects.
        out_dir: the dataset folder (replaced atomically when the build completes); it must be
            missing, empty or a previous build (:func:`ai4va_fg_dataset.build.export.check_output_dir`).
        seed: seed of the splits, the sampling of questions and the contact sheet.
        tasks: task names to build (default: all of :data:`~ai4va_fg_dataset.schema.TASKS`).
        skip_bad: skip and report bad annotation records instead of stopping at the first.
        pu_client: a VLM client for Panel Understanding
            (:func:`ai4va_fg_dataset.core.llm.make_client`); without one that task is skipped.
        pu_questions: questions per panel asked of the VLM (default: the generator's).
        contact_sheet: also write ``contact_sheet.png``.
        ratios: train / validation / test page fractions.
        console: a ``rich.console.Console`` for the table and progress (default: stdout).
        max_page_pixels: largest page image in pixels (width x height); larger pages are bad
            records. ``None``: no limit of the build's own (PIL's decompression-bomb check stays).
        protect: more input paths ``out_dir`` must not be or contain (the source paths and
            ``image_root`` options are always protected).
        review: a review file (:mod:`ai4va_fg_dataset.build.review`, written by ``ai4va-fg review``):
            its page panel orders replace the annotated ones before generation, its rejected items
            are dropped and its fixed keys used; the counts go to ``build_report.json`` ``review``
            and the card. Decisions whose item or page is not built are listed there.
        density: per-page cap preset, ``"default"`` (each generator's ``MAX_PER_PAGE``) or ``"paper"``
            (paper Table 3.1 density where the annotations allow); :mod:`ai4va_fg_dataset.tasks.density`.
        max_per_page: ``{task: N}`` caps on top of the preset. The caps used go to ``build_report.json``
            ``max_per_page`` and the card.
        num_proc: worker processes that decode, generate, draw and encode pages (default: every
            core, :func:`ai4va_fg_dataset.build.parallel.default_num_proc`); the output is the same
            byte for byte whatever the number (:mod:`ai4va_fg_dataset.build.parallel`).
        engine: ``"local"`` (a process pool of ``num_proc``) or ``"ray"`` (the same per-page work
            on Ray Data, :mod:`ai4va_fg_dataset.build.ray_engine`; ``num_proc`` caps its concurrency).
        keep_unchecked: keep the panel / dialog items of pages whose annotated order disagrees with
            the checked order (default: excluded and listed in ``build_report.json`` ``excluded``;
            :mod:`ai4va_fg_dataset.build.audit`).

    Returns:
        a :class:`BuildResult`.

    Raises:
        AnnotationError: a bad record in strict mode (names the file and the record), including a
            page image that is too large or does not decode.
        ValueError: unknown task or source name, no pages loaded, nothing to build, or an
            ``out_dir`` that is/contains an input, the working directory or a git work tree.
        FileNotFoundError: a source path that does not exist.
        FileExistsError: ``out_dir`` is a folder that is not a previous AI4VA-FG build (no manifest,
            or files the manifest does not list).
        OSError: ``out_dir``'s location cannot be written (raised before any input is read).
    """
    from rich.console import Console

    console = console or Console()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    tasks = list(tasks) if tasks else list(TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    if max_page_pixels is not None and max_page_pixels < 1:
        raise ValueError(f"max_page_pixels must be a positive number of pixels, got {max_page_pixels}")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if num_proc is not None and num_proc < 1:
        raise ValueError(f"num_proc must be at least 1 worker process, got {num_proc}")
    from ..tasks.density import resolve_max_per_page

    caps = resolve_max_per_page(density, max_per_page)
    given = [_as_spec(src) for src in sources]
    inputs = [*protect, *([review] if review else []), *(spec.path for spec in given),
              *(spec.options["image_root"] for spec in given if spec.options.get("image_root"))]

    # the staging folder first: an unusable --out fails before any input is read
    with staging_dir(out_dir, inputs=inputs) as tmp, _pil_pixel_limit(max_page_pixels), ExitStack() as scratch:
        log = BadRecordLog(skip_bad=skip_bad)
        specs = expand_sources(given)
        pages, source_entries = load_pages(specs, log, max_page_pixels=max_page_pixels)
        scratch.callback(pages.close)
        decisions, review_summary = None, None
        if review:  # page panel orders: on the page model, before any generator reads Panel.order
            from . import review as review_file

            decisions = review_file.load_for_build(review)
            pages, reordered, pages_missing = review_file.apply_page_orders(pages, decisions, into=PageStore())
            scratch.callback(pages.close)
            review_summary = review_file.ReviewSummary(file=str(review), pages_reordered=reordered,
                                                       missing=review_file.page_missing(pages_missing))
        timings["load_s"] = time.perf_counter() - t0
        if not pages:
            raise ValueError("no pages were loaded from the given sources"
                             + (f" ({len(log.records)} bad records skipped)" if log.records else ""))

        t = time.perf_counter()
        splits = assign_splits([p.page_id for p in pages], seed=seed, ratios=ratios)
        timings["split_s"] = time.perf_counter() - t

        from .parallel import PageStream, SheetPicker, prepare_work

        # pages are decoded, generated from, drawn on and encoded by --num-proc workers (or Ray
        # Data), and streamed in page order into the Parquet shards: memory does not grow with pages
        t = time.perf_counter()
        bar, advance = _progress_bar(len(pages), console)
        from .audit import AuditTap, balance_answer_letters, collect_exclusions, configure_order_checks

        gens = make_generators(pu_client, pu_questions, caps)
        configure_order_checks(gens, splits=splits, seed=seed, keep_unchecked=keep_unchecked,
                               trusted=review_summary.pages_reordered if review_summary is not None else ())
        work = prepare_work(gens, tasks, seed, pages)
        exclusions = collect_exclusions(work.generators)  # checked answer keys (issue 8)
        audit_tap = AuditTap(splits)
        scratch.callback(audit_tap.close)
        stream = PageStream(log, tasks, progress=advance)
        sheet = SheetPicker(8, seed) if contact_sheet else None
        # closing(): a strict-mode bad record raised while streaming shuts the worker pool down here,
        # not when the generator is garbage-collected after the pool's pipes are gone
        with bar, closing(_run_pages(engine, work, pages, num_proc)) as results:
            samples = balance_answer_letters(stream.samples(results, pages), splits, seed)
            if decisions is not None:  # items: drop rejected, use fixed keys (before splits are written)
                samples, review_summary = review_file.apply_item_verdicts(samples, decisions, tasks=tasks,
                                                                          summary=review_summary)
            counts, shard_files = write_parquet(audit_tap.tap(sheet.tap(samples) if sheet else samples), tmp,
                                                splits=splits)
        timings["generate_s"] = time.perf_counter() - t  # decode, generate, draw, encode and write Parquet
        skipped = stream.skipped
        n_pages = len(pages) - len(stream.bad)
        languages = {p.language for p in pages if p.language and p.page_id not in stream.bad}
        if stream.bad:  # skipped pages that did not decode: out of the page counts like other bad records
            splits = {pid: split for pid, split in splits.items() if pid not in stream.bad}
            for entry in source_entries:
                entry["pages"] -= sum(1 for pid in stream.bad if pid in entry["page_ids"])
        for entry in source_entries:
            entry.pop("page_ids")
        skipped_json = {task: dict(Counter(reasons).most_common()) for task, reasons in skipped.items() if reasons}

        produced = Counter({task: sum(c.values()) for task, c in counts.items()})
        no_samples = _no_sample_reasons(tasks, produced, skipped_json, source_entries)
        if not counts:
            raise ValueError("no samples were generated for tasks " + ", ".join(tasks) + "; reasons: "
                             + json.dumps(no_samples)
                             + (f" ({len(log.records)} bad records skipped)" if log.records else ""))
        sheet_samples = sheet.chosen() if sheet else []
        from .audit import exclusion_counts, run_audit, write_audit

        t = time.perf_counter()
        audit_tap.write_geometry(tmp)
        audit = run_audit(audit_tap.rows)  # two passes over the spilled rows (they carry their geometry)
        write_audit(tmp, audit)
        timings["audit_s"] = time.perf_counter() - t

        card = CardInfo(
            sources=[
                SourceInfo(e["name"], e["pages"], "; ".join(e["licenses"]), "; ".join(e["attributions"]))
                for e in source_entries
            ],
            skipped_tasks=no_samples,
            seed=seed,
            languages=sorted({"en"} | languages),  # questions are English
            notes=([f"{len(log.records)} bad annotation records were skipped (listed in build_report.json)"]
                   if log.records else [])
            + [f"Items per page at most ({density} density preset"
               + (", overridden by --max-per-page" if max_per_page else "") + "): "
               + ", ".join(f"{t} {caps[t]}" for t in tasks if t in caps) + "."],
            review=review_summary.to_json() if review_summary is not None else None,
            audit=audit,
            exclusions=exclusion_counts(exclusions),
            keep_unchecked=keep_unchecked,
        )
        t = time.perf_counter()
        write_dataset_card(tmp, counts, shard_files, card)
        timings["export_s"] = time.perf_counter() - t  # the card and shard hashes (shards are streamed)
        if sheet_samples:
            from .contact_sheet import make_contact_sheet

            t = time.perf_counter()
            make_contact_sheet(sheet_samples, tmp / CONTACT_SHEET, n=len(sheet_samples), seed=seed)
            timings["contact_sheet_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        report = {
            "seed": seed,
            "tasks_requested": tasks,
            "skip_bad": skip_bad,
            "max_page_pixels": max_page_pixels,
            "density": density,
            "max_per_page": {t: caps[t] for t in tasks if t in caps},
            "sources": source_entries,
            "pages": n_pages,
            "pages_per_split": dict(Counter(splits.values())),
            "bad_records": log.to_json(),
            "skipped": skipped_json,
            "tasks_without_samples": no_samples,
            "counts": counts,
            "total_samples": sum(sum(c.values()) for c in counts.values()),
            "panel_understanding_client": type(pu_client).__name__ if pu_client is not None else None,
            "contact_sheet": CONTACT_SHEET if sheet_samples else None,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "versions": _versions(),
            "review": review_summary.to_json() if review_summary is not None else None,
            "keep_unchecked": keep_unchecked,
            "excluded": exclusions,
            "excluded_per_source": exclusion_counts(exclusions),
            "audit": {"file": "audit.json", "flagged": audit["flagged"]},
        }
        (tmp / BUILD_MARKER).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    result = BuildResult(Path(out_dir), counts, report)
    print_summary(result, console)
    return result


def _run_pages(engine: str, work: Any, pages: Sequence[Page], num_proc: int | None) -> Iterator[Any]:
    """The ordered :class:`~ai4va_fg_dataset.build.parallel.PageResult` stream of ``engine``."""
    if engine == "ray":
        from .ray_engine import run_pages as ray_pages

        return ray_pages(work, pages, num_proc=num_proc)
    from .parallel import run_pages

    return run_pages(work, pages, num_proc=num_proc)


@contextmanager
def _pil_pixel_limit(max_page_pixels: int | None) -> Iterator[None]:
    """Raise PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, warning above it, error
    above twice it) to ``max_page_pixels`` while the build runs, so that a page the user allowed
    is not refused by PIL; the build's own limit is checked from the header at load time."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    if max_page_pixels is not None and before is not None and max_page_pixels > before:
        Image.MAX_IMAGE_PIXELS = max_page_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def _no_sample_reasons(tasks, produced, skipped_json, source_entries) -> dict[str, str]:
    """Why each requested task has no sample: the sources that cannot feed it (their capability
    reason) and, for the sources that could, the generator's most frequent skip reasons."""
    out = {}
    for task in tasks:
        if produced.get(task):
            continue
        reasons = [f"{e['name']}: {e['capabilities'][task]}" for e in source_entries if e["capabilities"].get(task)]
        if len(reasons) < len(source_entries):
            gen = [f"{reason} (x{n})" for reason, n in list(skipped_json.get(task, {}).items())[:3]]
            reasons.append("generator: " + ("; ".join(gen) if gen else "produced no sample"))
        out[task] = "; ".join(reasons)
    return out


def print_summary(result: BuildResult, console) -> None:
    """Print the per-task / per-split count table, the tasks without samples and bad records."""
    from rich.table import Table

    report = result.report
    table = Table(title=f"AI4VA-FG: {report['pages']} pages -> {result.out_dir}")
    table.add_column("task")
    for split in SPLITS:
        table.add_column(split, justify="right")
    table.add_column("total", justify="right")
    for task in TASKS:
        if task in result.counts:
            c = result.counts[task]
            table.add_row(task, *(str(c[s]) for s in SPLITS), str(sum(c.values())))
    totals = [sum(c[s] for c in result.counts.values()) for s in SPLITS]
    table.add_row("all", *map(str, totals), str(sum(totals)), style="bold")
    console.print(table)
    pages = ", ".join(f"{e['name']} {e['pages']}" for e in report["sources"])
    console.print(f"pages per source: {pages}; per split: {report['pages_per_split']}")
    for task, reason in report["tasks_without_samples"].items():
        console.print(f"[yellow]no {task} samples[/]: {reason}", highlight=False)
    review = report.get("review")
    if review:
        done = {k: sum(c[k] for c in review["per_task"].values()) for k in ("reviewed", "rejected", "fixed")}
        console.print(f"review {review['file']}: {done['reviewed']} items reviewed, {done['rejected']} rejected, "
                      f"{done['fixed']} fixed; {len(review['pages_reordered'])} page panel orders overridden",
                      highlight=False, markup=False)
        if review["missing"]:
            console.print(f"[yellow]{len(review['missing'])} review decisions point at items or pages not in "
                          "this build[/] (build_report.json review.missing):", highlight=False)
            for m in review["missing"][:20]:
                console.print(f"  line {m['line']}: {m['target']} {m['id']} ({m['verdict']})",
                              highlight=False, markup=False)
    if report["bad_records"]:
        console.print(f"[red]{len(report['bad_records'])} bad records skipped[/]:")
        for r in report["bad_records"]:
            console.print(f"  {r['file']}: {r['record']}: {r['reason']}", highlight=False, markup=False)
    if report.get("excluded"):
        per = "; ".join(f"{src}: " + ", ".join(f"{t} {n}" for t, n in by_task.items())
                        for src, by_task in report["excluded_per_source"].items())
        console.print(f"pages excluded (annotated order disagrees with the checked order): {per}", highlight=False)
    if report.get("audit") is not None:
        flagged = report["audit"]["flagged"]
        console.print(f"blind-baseline audit: {result.out_dir / report['audit']['file']} ({len(flagged)} flagged row(s))"
                      + "".join(f"\n  [red]FLAG[/] {r['task']} {r['split']}: n={r['n']}, max baseline exceeds chance "
                                f"by {r['max_excess']:.1f} points" for r in flagged), highlight=False)
    console.print(f"build report: {result.out_dir / BUILD_MARKER}  ({report['timings']['total_s']:.1f} s)")
