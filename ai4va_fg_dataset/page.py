"""The page model: one small typed representation of an annotated comic page.

Every adapter (AI4VA/COCO, ACBF, OpenMantra, Mimi & Eunice, Manga109, Magi) produces :class:`Page` objects and every
task generator consumes them; nothing downstream reads a native annotation format.

All boxes are ``bbox_2d`` ``(x1, y1, x2, y2)`` in pixels of the page image (see
:mod:`ai4va_fg_dataset.core.geometry`); polygons are kept where the source has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .core.geometry import BBox, Polygon, area, center, intersection

ReadingDirection = Literal["ltr", "rtl"]


@dataclass(frozen=True)
class Panel:
    """A panel (frame) of a page.

    Attributes:
        id: unique within the page.
        bbox: ``(x1, y1, x2, y2)`` pixels.
        polygon: the panel outline where the source has one (ACBF frames, COCO segmentation).
        order: the annotated reading-order index (0-based) when the source lists panels in reading
            order (ACBF, OpenMantra); ``None`` when unknown.
    """

    id: str
    bbox: BBox
    polygon: Polygon | None = None
    order: int | None = None


@dataclass(frozen=True)
class Entity:
    """A character (or other depicted entity) on a page.

    Attributes:
        id: unique within the page.
        bbox: ``(x1, y1, x2, y2)`` pixels.
        kind: ``"character"`` or ``"object"`` (AI4VA segments both).
        identity: who the character is (the same identity across panels = the same character);
            ``None`` when not annotated. Its scope is :attr:`Page.identity_scope` (book-level for
            Manga109, page-level clusters for Magi / PopManga).
        name: the character's human-readable name where the source names it (Manga109
            ``<character name=...>``), ``None`` otherwise.
        depth: ordinal depth, **smaller is closer to the viewer** (AI4VA ``Intradepth``); ``None``
            when not annotated.
        pose: pose / action label (e.g. ``"running"``); ``None`` when not annotated.
        panel_id: id of the panel that contains it (largest overlap), ``None`` if outside all.
        polygon: outline where the source has one.
        attributes: every raw attribute of the source record, untouched.
    """

    id: str
    bbox: BBox
    kind: str = "character"
    identity: str | None = None
    depth: float | None = None
    pose: str | None = None
    panel_id: str | None = None
    polygon: Polygon | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class Balloon:
    """A speech balloon / text area.

    Attributes:
        id: unique within the page.
        bbox: ``(x1, y1, x2, y2)`` pixels.
        text: the text in the page's primary language, ``None`` if not transcribed.
        texts: all transcriptions by language code (``{"en": ..., "ja": ...}``).
        order: annotated reading-order index (0-based) within the page, ``None`` if unknown.
        speaker: speaker label where annotated (Mimi & Eunice: ``"M"``, ``"E"``...).
        speaker_id: id of the :class:`Entity` of this page who says it, from an **annotated**
            speaker link (Manga109Dialog ``speaker_to_text``, PopManga
            ``text_to_character_matches``, Magi ``text_character_associations``), never inferred
            from proximity; ``None`` when not linked.
        speaker_name: the speaker's name where the source names its characters (Mimi & Eunice:
            ``"Mimi"``, ``"Eunice"``), ``None`` for non-character labels (sound effects, captions,
            unknown) and unnamed sources.
        kind: text type where annotated (ACBF: ``speech``, ``commentary``, ``code``...).
        panel_id: id of the containing panel (largest overlap), ``None`` if outside all.
        polygon: outline where the source has one.
    """

    id: str
    bbox: BBox
    text: str | None = None
    texts: dict[str, str] = field(default_factory=dict)
    order: int | None = None
    speaker: str | None = None
    kind: str | None = None
    panel_id: str | None = None
    polygon: Polygon | None = None
    speaker_id: str | None = None
    speaker_name: str | None = None


@dataclass(frozen=True)
class Page:
    """An annotated comic page.

    Attributes:
        page_id: globally unique id, ``"<source>/<book>/<page>"``; splits are made on it.
        source: adapter name (``"ai4va"``, ``"coco"``, ``"acbf"``, ``"openmantra"``,
            ``"mimi-eunice"``) or ``"synthetic"``.
        image_path: path of the page image on disk.
        width, height: image size in pixels (read from the image header by the adapter).
        panels, entities, balloons: the annotations (possibly empty).
        reading_direction: ``"ltr"`` (Western comics) or ``"rtl"`` (manga).
        book: the book / series / strip collection the page belongs to.
        language: language code of ``Balloon.text``.
        license: short licence name of the source (e.g. ``"CC BY-NC 4.0"``).
        attribution: who made it, as the licence asks.
        crop: the region ``(x1, y1, x2, y2)`` (pixels of the image *file*) that is this page, for
            files holding several pages (a Manga109 two-page spread is two pages); ``None``: the
            whole file. ``width``/``height`` and every box are in pixels of the cropped page.
        identity_scope: ``"book"`` when equal :attr:`Entity.identity` values mean the same
            character across pages (Manga109, AI4VA), ``"page"`` when identities are clusters valid
            only within this page (Magi / PopManga ``character_clusters``).
    """

    page_id: str
    source: str
    image_path: str
    width: int
    height: int
    panels: tuple[Panel, ...] = ()
    entities: tuple[Entity, ...] = ()
    balloons: tuple[Balloon, ...] = ()
    reading_direction: ReadingDirection = "ltr"
    book: str = ""
    language: str | None = None
    license: str = ""
    attribution: str = ""
    crop: BBox | None = None
    identity_scope: Literal["book", "page"] = "book"

    @property
    def characters(self) -> tuple[Entity, ...]:
        """Entities of kind ``"character"``."""
        return tuple(e for e in self.entities if e.kind == "character")

    def entity(self, entity_id: str) -> Entity:
        """The entity with ``entity_id``.

        Raises:
            KeyError: no such entity on this page.
        """
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise KeyError(f"page {self.page_id}: no entity {entity_id!r}")

    def panel(self, panel_id: str) -> Panel:
        """The panel with ``panel_id``.

        Raises:
            KeyError: no such panel on this page.
        """
        for p in self.panels:
            if p.id == panel_id:
                return p
        raise KeyError(f"page {self.page_id}: no panel {panel_id!r}")


def containing_panel(box: BBox, panels: tuple[Panel, ...] | list[Panel], min_fraction: float = 0.5) -> str | None:
    """Id of the panel that covers the largest part of ``box``.

    Returns ``None`` when no panel covers at least ``min_fraction`` of the box area, which happens
    for balloons that straddle the gutter; ties go to the panel whose centre is nearest.
    """
    a = area(box)
    best: tuple[float, float, str] | None = None
    cx, cy = center(box)
    for p in panels:
        frac = intersection(box, p.bbox) / a if a > 0 else 0.0
        if frac < min_fraction:
            continue
        px, py = center(p.bbox)
        key = (frac, -((px - cx) ** 2 + (py - cy) ** 2), p.id)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None
