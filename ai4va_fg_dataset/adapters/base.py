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

from ..errors import AnnotationError, BadRecordLog
from ..core.geometry import BBox, GeometryError, Polygon, check_inside, polygon_bbox
from ..page import Page
from ..schema import TASKS

MIN_PANELS_FOR_REORDERING = 3
"""Panel Reordering removes panels and asks where one goes back (method.md section 2): a page
needs at least this many panels for the question to have two distinct options."""

EDGE_TOLERANCE = 0.01
"""How far a box may reach past the image border, as a fraction of the image's longer side
(at least 2 pixels), before it is a bad record; the overshoot is clipped. Full-bleed panels are
drawn past the page edge in real annotations (craphound ``page4.jpg``: a frame 9 px past a
994 px wide page)."""

MIN_POSE_LABELS = 4
"""Action Recognition has 4 options whose distractors are other pose/action labels (method.md
section 2): the loaded pages need at least this many distinct labels."""


class Adapter(ABC):
    """Reads one annotation format into :class:`~ai4va_fg_dataset.page.Page` objects.

    Attributes:
        name: the adapter key in :data:`ai4va_fg_dataset.adapters.ADAPTERS`, also the default
            ``Page.source``.
        feeds: for **every** task of :data:`ai4va_fg_dataset.schema.TASKS`, ``None`` if the format
            can feed it, else the reason why not. This is the format-level statement; what a given
            file actually feeds is :meth:`capabilities`.
    """

    name: str = ""
    feeds: ClassVar[dict[str, str | None]] = {}

    @abstractmethod
    def load(self, path: str | Path, *, log: BadRecordLog) -> list[Page]:
        """Read the annotations at ``path`` into pages.

        Raises:
            AnnotationError: in strict mode (``log.skip_bad`` false), at the first bad record.
        """

    def capabilities(self, pages: Sequence[Page]) -> dict[str, str | None]:
        """Which tasks the loaded ``pages`` can feed: ``{task: None | reason}`` for every task.

        A task is fed when the format can feed it (:attr:`feeds`) **and** the content has what the
        task needs (method.md section 2):

        - panel_understanding: panel boxes;
        - action_recognition: characters with pose/action labels, at least
          :data:`MIN_POSE_LABELS` distinct labels (4 options);
        - depth_comparison: two entities of one panel (or page) with different ordinal depths;
        - dialog_reordering: a page with at least two transcribed balloons in annotated order;
        - panel_reordering: a page with at least :data:`MIN_PANELS_FOR_REORDERING` panels;
        - character_identification: characters with identities in at least two different panels;
        - character_counting: characters with identities.
        """
        content = content_capabilities(pages)
        return {t: (self.feeds.get(t) or content[t]) for t in TASKS}


def content_capabilities(pages: Sequence[Page]) -> dict[str, str | None]:
    """The content half of :meth:`Adapter.capabilities`, for any pages (see there)."""
    out: dict[str, str | None] = {}
    out["panel_understanding"] = None if any(p.panels for p in pages) else "no panel boxes"
    poses = {e.pose for p in pages for e in p.characters if e.pose}
    out["action_recognition"] = (
        None
        if len(poses) >= MIN_POSE_LABELS
        else f"{len(poses)} distinct character pose/action labels, need {MIN_POSE_LABELS}"
    )

    def has_depth_pair(page: Page) -> bool:
        groups: dict[object, set[float]] = {}
        for e in page.entities:
            if e.depth is not None:
                groups.setdefault(e.panel_id, set()).add(e.depth)
        return any(len(d) >= 2 for d in groups.values())

    out["depth_comparison"] = (
        None if any(has_depth_pair(p) for p in pages) else "no two entities with different ordinal depths"
    )
    out["dialog_reordering"] = (
        None
        if any(sum(1 for b in p.balloons if b.text and b.order is not None) >= 2 for p in pages)
        else "no page with two transcribed balloons in annotated reading order"
    )
    out["panel_reordering"] = (
        None
        if any(len(p.panels) >= MIN_PANELS_FOR_REORDERING for p in pages)
        else f"no page with at least {MIN_PANELS_FOR_REORDERING} panels"
    )
    with_identity = [p for p in pages if any(e.identity for e in p.characters)]
    out["character_counting"] = None if with_identity else "no characters with identity labels"
    out["character_identification"] = (
        None
        if any(len({e.panel_id for e in p.characters if e.identity and e.panel_id}) >= 2 for p in with_identity)
        else "no page with identified characters in two different panels"
    )
    return {t: out[t] for t in TASKS}


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
