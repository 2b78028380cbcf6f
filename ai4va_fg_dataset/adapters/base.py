"""The adapter interface and the checks every adapter shares.

An adapter reads one native annotation format (COCO / AI4VA, ACBF, OpenMantra, Mimi & Eunice) and
returns :class:`~ai4va_fg_dataset.page.Page` objects; nothing downstream reads a native format
(method.md section 1: "accept [annotations] from a local path ... and also any comic dataset in COCO
form", and "report clearly which tasks a given annotation file can feed").

Bad input policy (:mod:`ai4va_fg_dataset.errors`): every problem goes through
``log.report(AnnotationError(file, record, reason))``. In strict mode that raises; with
``skip_bad`` it is recorded and the adapter skips exactly that record (a page or one annotation)
and continues. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import re
import reprlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..core.geometry import BBox, GeometryError, Polygon, check_inside, polygon_bbox
from ..errors import AnnotationError, BadRecordLog
from ..page import Page
from ..tasks.base import feasibility

EDGE_TOLERANCE = 0.01
"""How far a box may reach past the image border, as a fraction of the image's longer side
(at least 2 pixels), before it is a bad record; the overshoot is clipped. Full-bleed panels are
drawn past the page edge in real annotations (craphound ``page4.jpg``: a frame 9 px past a
994 px wide page)."""

class _FormatFeeds:
    """``Adapter.feeds``: computed from the class's :attr:`Adapter.fills` and the registered task
    declarations on every access (so a newly registered task has an entry)."""

    def __get__(self, obj: object, cls: type[Adapter]) -> dict[str, str | None]:
        return cls.format_feeds()


class Adapter(ABC):
    """Reads one annotation format into :class:`~ai4va_fg_dataset.page.Page` objects.

    Attributes:
        name: the adapter key in :data:`ai4va_fg_dataset.adapters.ADAPTERS`, also the default
            ``Page.source``.
        fills: the page-model fields the format can fill (names of
            :data:`~ai4va_fg_dataset.tasks.spec.PAGE_FIELDS`, e.g. ``"balloons.text"``). What a task
            needs is its declaration's :attr:`~ai4va_fg_dataset.tasks.spec.TaskSpec.needs`.
        notes: optional explanations of why a field is not filled, by field or collection (e.g.
            ``{"characters": "ACBF names characters only at book level ..."}``); used in the reasons.
        feeds: ``{task: None | reason}`` for every registered task, from :attr:`fills` alone (the
            format-level statement, read-only, computed); what a given file actually feeds is
            :meth:`capabilities`.
    """

    name: str = ""
    fills: ClassVar[frozenset[str]] = frozenset()
    notes: ClassVar[dict[str, str]] = {}
    feeds = _FormatFeeds()

    @abstractmethod
    def load(self, path: str | Path, *, log: BadRecordLog) -> list[Page]:
        """Read the annotations at ``path`` into pages.

        Raises:
            AnnotationError: in strict mode (``log.skip_bad`` false), at the first bad record.
        """

    @classmethod
    def format_feeds(cls) -> dict[str, str | None]:
        """``{task: None | reason}`` for every registered task, from :attr:`fills` alone: a task is
        fed by the format when its spec's ``needs`` are all filled (see :attr:`feeds`).

        Raises:
            ValueError: :attr:`fills` names a field not in ``PAGE_FIELDS``.
        """
        return feasibility(None, cls.fills, source=cls.name or cls.__name__, notes=cls.notes)

    def capabilities(self, pages: Sequence[Page]) -> dict[str, str | None]:
        """Which registered tasks the loaded ``pages`` can feed: ``{task: None | reason}``.

        A task is fed when the format fills every page field its declaration needs
        (:attr:`fills`, :attr:`feeds`) **and** at least one page passes the task generator's check
        (:func:`ai4va_fg_dataset.tasks.feasibility`: the generator is the one authority on what a
        page must hold, e.g. three transcribed balloons in reading order for Dialog Reordering).
        """
        return feasibility(pages, self.fills, source=self.name or type(self).__name__, notes=self.notes)


def load_json(path: str | Path) -> Any:
    """Parse the JSON file ``path``.

    Raises:
        ValueError: with a one-line reason naming no file (the caller adds it): the file cannot be
            read (``OSError``), is not UTF-8, is not valid JSON, or nests arrays/objects deeper than
            Python's recursion limit (about 1000 levels; ``json`` would raise ``RecursionError``).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ValueError("invalid JSON: arrays/objects nested too deeply to parse (over ~1000 levels)") from None


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters and 3 levels of nesting (safe for deeply
    nested or huge JSON values in error messages)."""
    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 3, limit, limit, 6, 6
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def image_size(image_path: Path, *, log: BadRecordLog, record: str) -> tuple[int, int] | None:
    """``(width, height)`` of an image in pixels, read lazily from its header with PIL.

    Returns ``None`` after ``log.report`` when the image is missing, unreadable, or so large that
    PIL refuses it as a decompression bomb (over twice ``PIL.Image.MAX_IMAGE_PIXELS``) (the caller
    skips the page). The :class:`AnnotationError` names the image file and ``record``. The pixel
    limit of the build itself (``--max-page-pixels``) is checked by
    :func:`ai4va_fg_dataset.build.load_pages`; whether the whole image decodes is checked by the
    build before a task uses the page.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not image_path.is_file():
        log.report(AnnotationError(str(image_path), record, "image file not found"))
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the build's own limit decides
            with Image.open(image_path) as im:
                w, h = im.size
    except Image.DecompressionBombError as exc:
        log.report(AnnotationError(str(image_path), record, f"image too large: {exc} (see --max-page-pixels)"))
        return None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError) as exc:
        log.report(AnnotationError(str(image_path), record, f"unreadable image: {exc}"))
        return None
    return int(w), int(h)


def edge_tolerance(width: int, height: int) -> float:
    """Pixels a box may overshoot a ``width`` x ``height`` image (see :data:`EDGE_TOLERANCE`)."""
    return max(2.0, EDGE_TOLERANCE * max(width, height))


def checked_box(
    box_fn, width: int, height: int, *, file: str | Path, record: str, log: BadRecordLog
) -> BBox | None:
    """Run ``box_fn()`` (a geometry conversion) and check the box lies inside the image.

    Returns the box clipped to the image, or ``None`` after ``log.report`` for a NaN, inverted,
    zero-area, malformed or outside box (beyond :func:`edge_tolerance`;
    :class:`~ai4va_fg_dataset.core.geometry.GeometryError`).
    """
    try:
        return check_inside(box_fn(), width, height, where="bbox", tolerance=edge_tolerance(width, height))
    except (GeometryError, TypeError, ValueError, KeyError) as exc:
        log.report(AnnotationError(str(file), record, str(exc)))
        return None


def checked_polygon(
    poly_fn, width: int, height: int, *, file: str | Path, record: str, log: BadRecordLog
) -> tuple[Polygon, BBox] | None:
    """Run ``poly_fn()`` (parse a polygon) and return ``(polygon, bbox)`` with the bbox inside the image.

    Returns ``None`` after ``log.report`` for a degenerate polygon or one outside the image
    (beyond :func:`edge_tolerance`).
    """
    try:
        poly = poly_fn()
        box = check_inside(
            polygon_bbox(poly), width, height, where="polygon", tolerance=edge_tolerance(width, height)
        )
    except (GeometryError, TypeError, ValueError) as exc:
        log.report(AnnotationError(str(file), record, str(exc)))
        return None
    return poly, box


def slug(text: str) -> str:
    """``text`` made safe for a page id component: runs of characters other than letters, digits,
    ``.``, ``_`` and ``-`` become ``_`` (``"Mimi and Eunice"`` -> ``"Mimi_and_Eunice"``)."""
    s = re.sub(r"[^0-9A-Za-z._-]+", "_", text.strip()).strip("_")
    return s or "book"


def check_unique_ids(pages: Iterable[Page], *, file: str | Path, log: BadRecordLog) -> list[Page]:
    """Drop pages whose ``page_id`` repeats an earlier one, reporting each as a bad record."""
    seen: set[str] = set()
    out = []
    for p in pages:
        if p.page_id in seen:
            log.report(AnnotationError(str(file), f"page {p.page_id}", f"duplicated page id {p.page_id!r}"))
            continue
        seen.add(p.page_id)
        out.append(p)
    return out
