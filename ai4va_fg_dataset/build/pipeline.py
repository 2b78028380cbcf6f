"""The AI4VA-FG build: annotations -> pages -> splits -> samples -> Parquet dataset.

One call of :func:`build` runs the whole pipeline of method.md section 2:

1. load every source with its adapter (:func:`ai4va_fg_dataset.adapters.load_source`) under one
   :class:`~ai4va_fg_dataset.errors.BadRecordLog` (strict unless ``skip_bad``);
2. split the pages (:func:`ai4va_fg_dataset.build.splits.assign_splits`, by page, seeded);
3. generate the samples of every requested task (:func:`ai4va_fg_dataset.tasks.generate_samples`)
   with a progress bar over pages;
4. write the Parquet configs and the dataset card (:mod:`ai4va_fg_dataset.build.export`), a
   ``contact_sheet.png`` and ``build_report.json``.

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .dataset_card import CardInfo, SourceInfo
from ..errors import AnnotationError, BadRecordLog
from .export import BUILD_MARKER, ImageEncoder, staging_dir, write_dataset
from ..page import Page
from ..schema import SPLITS, TASKS, Sample
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

BAD_IMAGE_REASON = "page image does not decode (bad record, see bad_records)"
"""The skip reason counted for every task of a page whose image does not decode."""


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
    sources only)."""
    from ..adapters import ADAPTERS, CocoAdapter

    adapter = ADAPTERS.get(name)  # an unknown name is reported by load_source
    if adapter is not None and issubclass(adapter, CocoAdapter):
        return dict(options)
    return {k: v for k, v in options.items() if k not in ("image_root", "mapping")}


def load_pages(
    specs: Sequence[SourceSpec], log: BadRecordLog, *, max_page_pixels: int | None = DEFAULT_MAX_PAGE_PIXELS
) -> tuple[list[Page], list[dict[str, Any]]]:
    """Load every source; returns the pages and one report entry per source (each with a
    ``page_ids`` set, which :func:`build` drops before writing the report).

    Pages whose id repeats one of an earlier source (the same data given twice) are bad records,
    and so are pages of more than ``max_page_pixels`` pixels (``None``: no limit).

    Raises:
        AnnotationError: the first bad record in strict mode.
    """
    from ..adapters import ADAPTERS

    pages: list[Page] = []
    entries = []
    seen: set[str] = set()
    for spec in specs:
        adapter = ADAPTERS[spec.name](**spec.options)
        fresh = []
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
            fresh.append(page)
        pages.extend(fresh)
        entries.append(
            {
                "name": spec.name,
                "path": str(spec.path),
                "options": {k: str(v) for k, v in spec.options.items()},
                "pages": len(fresh),
                "feeds": dict(type(adapter).feeds),
                "capabilities": adapter.capabilities(fresh),
                "licenses": sorted({p.license for p in fresh if p.license}),
                "attributions": sorted({p.attribution for p in fresh if p.attribution}),
                "page_ids": {p.page_id for p in fresh},  # dropped before the report is written
            }
        )
    return pages, entries


def make_generators(pu_client: Any = None, pu_questions: int | None = None) -> dict[str, Any]:
    """Fresh task generators (:func:`ai4va_fg_dataset.tasks.default_generators`), with Panel
    Understanding bound to ``pu_client`` when one is given (``pu_questions`` per panel; ``None``:
    the generator's default)."""
    from ..tasks import default_generators

    gens = default_generators()
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


class _EncodingGenerator:
    """Wraps a task generator so the images of its samples go to the PNG encoder threads as soon
    as they are made (the sample list then holds encoded bytes, not decoded pages), and so that a
    page whose image does not decode is never generated from (:class:`PageImageCheck`)."""

    def __init__(self, generator: Any, encoder: ImageEncoder, check: PageImageCheck | None = None):
        self._generator, self._encoder, self._check = generator, encoder, check

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)

    def why_not(self, page: Page) -> str | None:
        reason = self._generator.why_not(page)
        if reason is None and self._check is not None and not self._check.ok(page):
            return BAD_IMAGE_REASON
        return reason

    def generate(self, page: Page, rng: Any) -> list[Sample]:
        made = self._generator.generate(page, rng)
        for sample in made:
            sample.image = self._encoder.submit(sample.image)
        return made


def _drain(samples: list[Sample]) -> Iterator[Sample]:
    """Yield and forget the samples one by one (each image is freed once it is encoded)."""
    samples.reverse()
    while samples:
        yield samples.pop()


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
    given = [_as_spec(src) for src in sources]
    inputs = [*protect, *(spec.path for spec in given),
              *(spec.options["image_root"] for spec in given if spec.options.get("image_root"))]

    # the staging folder first: an unusable --out fails before any input is read
    with staging_dir(out_dir, inputs=inputs) as tmp, _pil_pixel_limit(max_page_pixels):
        log = BadRecordLog(skip_bad=skip_bad)
        specs = expand_sources(given)
        pages, source_entries = load_pages(specs, log, max_page_pixels=max_page_pixels)
        timings["load_s"] = time.perf_counter() - t0
        if not pages:
            raise ValueError("no pages were loaded from the given sources"
                             + (f" ({len(log.records)} bad records skipped)" if log.records else ""))

        t = time.perf_counter()
        splits = assign_splits([p.page_id for p in pages], seed=seed, ratios=ratios)
        timings["split_s"] = time.perf_counter() - t

        from ..tasks import generate_samples

        t = time.perf_counter()
        bar, advance = _progress_bar(len(pages), console)
        check = PageImageCheck(log)
        with bar, ImageEncoder() as encoder:
            gens = {name: _EncodingGenerator(g, encoder, check)
                    for name, g in make_generators(pu_client, pu_questions).items()}
            samples, skipped = generate_samples(pages, seed=seed, tasks=tasks, generators=gens, progress=advance)
        timings["generate_s"] = time.perf_counter() - t  # includes encoding the drawn images (threads)
        if check.bad:  # skipped pages that did not decode: out of the page counts like other bad records
            pages = [p for p in pages if p.page_id not in check.bad]
            splits = {pid: split for pid, split in splits.items() if pid not in check.bad}
            for entry in source_entries:
                entry["pages"] -= sum(1 for pid in check.bad if pid in entry["page_ids"])
        for entry in source_entries:
            entry.pop("page_ids")
        skipped_json = {task: dict(Counter(reasons).most_common()) for task, reasons in skipped.items() if reasons}

        produced = Counter(s.task for s in samples)
        no_samples = _no_sample_reasons(tasks, produced, skipped_json, source_entries)
        if not samples:
            raise ValueError("no samples were generated for tasks " + ", ".join(tasks) + "; reasons: "
                             + json.dumps(no_samples)
                             + (f" ({len(log.records)} bad records skipped)" if log.records else ""))
        sheet_samples = _pick_for_sheet(samples, seed) if contact_sheet else []

        card = CardInfo(
            sources=[
                SourceInfo(e["name"], e["pages"], "; ".join(e["licenses"]), "; ".join(e["attributions"]))
                for e in source_entries
            ],
            skipped_tasks=no_samples,
            seed=seed,
            languages=sorted({"en"} | {p.language for p in pages if p.language}),  # questions are English
            notes=[f"{len(log.records)} bad annotation records were skipped (listed in build_report.json)"]
            if log.records else [],
        )
        t = time.perf_counter()
        counts = write_dataset(_drain(samples), tmp, splits=splits, card=card, atomic=False)
        timings["export_s"] = time.perf_counter() - t
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
            "sources": source_entries,
            "pages": len(pages),
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
        }
        (tmp / BUILD_MARKER).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    result = BuildResult(Path(out_dir), counts, report)
    print_summary(result, console)
    return result


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


def _pick_for_sheet(samples: list[Sample], seed: int, n: int = 8) -> list[Sample]:
    from .contact_sheet import select_samples

    return select_samples(samples, n, seed)


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
    if report["bad_records"]:
        console.print(f"[red]{len(report['bad_records'])} bad records skipped[/]:")
        for r in report["bad_records"]:
            console.print(f"  {r['file']}: {r['record']}: {r['reason']}", highlight=False, markup=False)
    console.print(f"build report: {result.out_dir / BUILD_MARKER}  ({report['timings']['total_s']:.1f} s)")
