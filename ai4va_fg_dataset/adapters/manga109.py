"""Manga109 XML (+ optional Manga109Dialog speaker links) -> pages (manga, right-to-left).

Manga109 (Matsui et al., "Sketch-based manga retrieval using Manga109 dataset", MTAP 2017; Aizawa
et al., "Building a manga dataset Manga109 with annotations for multimedia applications", IEEE
MultiMedia 2020) is distributed by application for academic use only: it is **never shipped** with
this project; users point ``--path`` at their own copy. Layout of a release (``spec/formats.md``)::

    books.txt                        one title per line (optional: else every annotations/*.xml)
    annotations/<title>.xml          <book title=...><characters>...</characters><pages>...</pages>
    images/<title>/<index:03d>.jpg   one two-page spread per <page index=N width=W height=H>

Inside a ``<page>``, in no reading order and in any tag order: ``<frame>`` (panel), ``<text>``
(element text = the transcribed Japanese line), ``<body>`` and ``<face>`` (``character="hex8"``
refers to ``<characters>``), each with ``id`` and ``xmin ymin xmax ymax`` in pixels of the spread.
Unknown (custom) tags are ignored and counted in :attr:`Manga109Adapter.ignored_tags`.

What this adapter makes of it:

- **Spreads are split** (``split_spreads=True``, the default, for images wider than tall): the right
  half is the first page read (manga), then the left half; every box goes to the half holding most
  of its area, is clipped to that half and re-based to its pixels; the two pages share the image
  file and carry their region in :attr:`~ai4va_fg_dataset.page.Page.crop`. Page ids are
  ``"<source>/<title>/<index:03d>-right"`` and ``"...-left"``.
- ``<body>`` -> :class:`~ai4va_fg_dataset.page.Entity` ``kind="character"``, ``identity`` = the
  book-level character id, ``name`` = its name (``"女1"``...). Characters named
  :data:`UNNAMED_CHARACTERS` (``"Others"``: any number of different background people) get no
  identity: two of them are not the same character.
- ``<face>`` -> an extra region (``kind="face"``, ``attributes["body_id"]`` = the body of the same
  character that covers at least half of it); a face with no such body is an appearance on its
  own and becomes a ``kind="character"`` entity, so counts include every appearance.
- ``<frame>`` -> panels; ``order`` = :func:`~ai4va_fg_dataset.reading_order.reading_order`
  right-to-left (Manga109 lists frames in no reading order).
- ``<text>`` -> balloons (``texts={"ja": ...}``); ``order``: panels in reading order, and inside a
  panel the text boxes in reading order (right-to-left XY-cut); a text outside every panel of a
  page that has panels gets no order. On a page without panels every text is ordered by the
  XY-cut alone.
- With ``dialog=DIR`` (the CC BY 4.0 Manga109Dialog annotations, Li et al., ICME 2024: one XML per
  book, ``<page index><speaker_to_text text_id=... speaker_id=<body id>/>``) each linked text gets
  ``speaker_id`` = the body's entity id. A link to a body on the other half of the spread is
  dropped (logged at INFO, counted in :attr:`Manga109Adapter.cross_page_links`); a link naming an
  id that is no text or body of that page is a bad record.

Every XML file is parsed with ``defusedxml`` (no entity expansion, no external references).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..core.geometry import BBox, as_bbox, clip_bbox, intersection
from ..errors import AnnotationError, BadRecordLog
from ..page import Balloon, Entity, Page, Panel, containing_panel
from ..reading_order import reading_order
from .base import Adapter, check_unique_ids, checked_box, image_size, slug

logger = logging.getLogger(__name__)

LICENSE = "Manga109 (academic research use only; not redistributable)"
ATTRIBUTION = (
    "Manga109 (Matsui et al. 2017; Aizawa et al. 2020), page images (c) their authors; speaker links: "
    "Manga109Dialog (Li et al., ICME 2024, CC BY 4.0)"
)
UNNAMED_CHARACTERS = frozenset({"Others", "others", "その他"})
"""Manga109 character names that pool many different people: no identity is given to them."""
BOX_TAGS = ("frame", "text", "body", "face")
FACE_IN_BODY = 0.5
"""A face belongs to a body of the same character when the body covers at least this fraction of it."""

_NO_POSE_DEPTH = "Manga109 has no ordinal depth or pose/action labels"


def is_manga109(folder: Path) -> bool:
    """Whether ``folder`` looks like a Manga109 release: ``annotations/*.xml`` and ``images/``."""
    ann = folder / "annotations"
    return ann.is_dir() and (folder / "images").is_dir() and any(ann.glob("*.xml"))


def _parse_xml(path: Path, log: BadRecordLog, record: str):
    """The root element of ``path`` parsed with defusedxml, or ``None`` after ``log.report``."""
    try:
        return SafeET.parse(path).getroot()
    except (OSError, SafeET.ParseError, DefusedXmlException, UnicodeDecodeError, ValueError) as exc:
        log.report(AnnotationError(str(path), record, f"unreadable or unsafe XML: {type(exc).__name__}: {exc}"))
        return None


def _coords(el) -> tuple[float, float, float, float]:
    """``(xmin, ymin, xmax, ymax)`` of a Manga109 box element (raises KeyError / ValueError)."""
    return tuple(float(el.attrib[k]) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[return-value]


def _halves(width: int, height: int, split: bool) -> list[tuple[str, BBox]]:
    """``[(suffix, region), ...]`` of a spread in reading order (right half first)."""
    if not split or width <= height:
        return [("", (0.0, 0.0, float(width), float(height)))]
    mid = float(width // 2)  # whole pixels: the crop and the page size agree exactly
    return [("-right", (mid, 0.0, float(width), float(height))), ("-left", (0.0, 0.0, mid, float(height)))]


def _rebase(box: BBox, region: BBox) -> BBox | None:
    """``box`` clipped to ``region`` and expressed in the region's pixels."""
    x0, y0 = region[0], region[1]
    return clip_bbox((box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0), region[2] - x0, region[3] - y0)


class Manga109Adapter(Adapter):
    """Reads a Manga109 release folder into pages (two per spread).

    Args:
        dialog: folder of Manga109Dialog XML files (``<title>.xml``, directly or under
            ``annotations/``); ``None``: no speaker links.
        split_spreads: split landscape spreads into right and left pages (default ``True``).
        source_name: ``Page.source`` and first page-id component (default ``"manga109"``).

    After :meth:`load`: :attr:`ignored_tags` counts unknown tags by name and
    :attr:`cross_page_links` the speaker links dropped because text and speaker lie on different
    halves of a spread.
    """

    name = "manga109"
    fills: ClassVar[frozenset[str]] = frozenset({
        "panels", "panels.order", "entities", "characters", "characters.identity",
        "balloons", "balloons.text", "balloons.order", "balloons.speaker",
    })
    notes: ClassVar[dict[str, str]] = {"entities.depth": _NO_POSE_DEPTH, "characters.pose": _NO_POSE_DEPTH}

    def __init__(self, *, dialog: str | Path | None = None, split_spreads: bool = True,
                 source_name: str | None = None):
        self.dialog = Path(dialog) if dialog else None
        if self.dialog is not None and not self.dialog.is_dir():
            raise ValueError(f"Manga109Dialog folder {self.dialog} does not exist")
        self.split_spreads = split_spreads
        self.source_name = source_name or self.name
        self.ignored_tags: dict[str, int] = {}
        self.cross_page_links = 0

    def load(self, path: str | Path, *, log: BadRecordLog) -> list[Page]:
        """Load every book of the release folder ``path`` (``books.txt`` order, else file names).

        Raises:
            ValueError: ``path`` has no ``annotations/`` folder.
            AnnotationError: (strict mode) a title of ``books.txt`` without XML, invalid or unsafe
                XML, a malformed page or box (record ``"<title> page <index> <tag> <id>"``), a
                character id not declared in ``<characters>``, a missing image or one whose size
                differs from the XML, a bad speaker link, duplicated page ids.
        """
        root = Path(path)
        ann = root / "annotations"
        if not ann.is_dir():
            raise ValueError(f"{root}: not a Manga109 folder (needs annotations/<title>.xml and images/)")
        self.ignored_tags, self.cross_page_links = {}, 0
        books = root / "books.txt"
        if books.is_file():
            titles = [t.strip() for t in books.read_text(encoding="utf-8").splitlines() if t.strip()]
        else:
            titles = sorted(p.stem for p in ann.glob("*.xml"))
        pages: list[Page] = []
        for title in titles:
            xml = ann / f"{title}.xml"
            if not xml.is_file():
                log.report(AnnotationError(str(books), f"book {title}", f"no annotations/{title}.xml"))
                continue
            pages.extend(self._book(root, title, xml, log))
        if self.ignored_tags:
            logger.info("manga109: ignored unknown tags %s", self.ignored_tags)
        return check_unique_ids(pages, file=ann, log=log)

    def _links(self, title: str, log: BadRecordLog) -> dict[str, dict[str, str]]:
        """``{page index: {text id: body id}}`` from the book's Manga109Dialog file (empty if none)."""
        if self.dialog is None:
            return {}
        for cand in (self.dialog / f"{title}.xml", self.dialog / "annotations" / f"{title}.xml"):
            if cand.is_file():
                break
        else:
            logger.info("manga109: no Manga109Dialog file for %s in %s", title, self.dialog)
            return {}
        root = _parse_xml(cand, log, f"book {title}")
        if root is None:
            return {}
        out: dict[str, dict[str, str]] = {}
        for page in root.iter("page"):
            idx = page.attrib.get("index", "")
            for link in page.iter("speaker_to_text"):
                text_id, speaker_id = link.attrib.get("text_id"), link.attrib.get("speaker_id")
                if not text_id or not speaker_id:
                    log.report(AnnotationError(str(cand), f"{title} page {idx} speaker_to_text {link.attrib.get('id')}",
                                               f"needs text_id and speaker_id, got {dict(link.attrib)!r}"))
                    continue
                out.setdefault(idx, {})[text_id] = speaker_id
        return out

    def _book(self, root: Path, title: str, xml: Path, log: BadRecordLog) -> list[Page]:
        book = _parse_xml(xml, log, f"book {title}")
        if book is None:
            return []
        if book.tag != "book":
            log.report(AnnotationError(str(xml), f"book {title}", f"root element is <{book.tag}>, not <book>"))
            return []
        names = {c.attrib.get("id"): c.attrib.get("name", "") for c in book.iter("character")}
        links = self._links(title, log)
        out: list[Page] = []
        for page in book.iter("page"):
            out.extend(self._spread(root, title, xml, page, names, links, log))
        return out

    def _spread(self, root, title, xml, page_el, names, links, log) -> list[Page]:
        idx_raw = page_el.attrib.get("index", "")
        record = f"{title} page {idx_raw}"
        try:
            index = int(idx_raw)
            declared = (int(page_el.attrib["width"]), int(page_el.attrib["height"]))
        except (KeyError, ValueError) as exc:
            log.report(AnnotationError(str(xml), record, f"<page> needs integer index/width/height: {exc!r}"))
            return []
        image_path = root / "images" / title / f"{index:03d}.jpg"
        size = image_size(image_path, log=log, record=record)
        if size is None:
            return []
        if size != declared:
            log.report(AnnotationError(str(image_path), record,
                                       f"image is {size[0]}x{size[1]} but the XML says {declared[0]}x{declared[1]}"))
            return []
        w, h = size
        # Every box of the spread, checked against the whole image.
        boxes: dict[str, list[tuple[object, BBox]]] = {t: [] for t in BOX_TAGS}
        for el in page_el:
            tag = el.tag if isinstance(el.tag, str) else ""
            if tag not in BOX_TAGS:
                if tag:
                    self.ignored_tags[tag] = self.ignored_tags.get(tag, 0) + 1
                continue
            rec = f"{record} {tag} {el.attrib.get('id', '?')}"
            if "id" not in el.attrib:
                log.report(AnnotationError(str(xml), rec, "no id attribute"))
                continue
            if tag in ("body", "face") and el.attrib.get("character") not in names:
                log.report(AnnotationError(str(xml), rec,
                                           f"character {el.attrib.get('character')!r} is not declared in <characters>"))
                continue
            box = checked_box(lambda el=el, rec=rec: as_bbox(_coords(el), where=rec), w, h, file=xml, record=rec, log=log)
            if box is not None:
                boxes[tag].append((el, box))
        page_links = links.get(str(index), {})
        known = {el.attrib["id"] for tag in ("text", "body") for el, _ in boxes[tag]}
        for text_id, body_id in list(page_links.items()):
            if text_id not in known or body_id not in known:
                log.report(AnnotationError(str(self.dialog), f"{record} speaker_to_text {text_id}->{body_id}",
                                           "names no text or body of this page"))
                del page_links[text_id]
        out = []
        for suffix, region in _halves(w, h, self.split_spreads):
            out.append(self._half(title, index, suffix, region, (w, h), boxes, names, page_links, image_path))
        return out

    def _half(self, title, index, suffix, region, size, boxes, names, page_links, image_path) -> Page:
        whole = (0.0, 0.0, float(size[0]), float(size[1]))
        halves = [r for _, r in _halves(size[0], size[1], self.split_spreads)]

        def mine(box: BBox) -> BBox | None:
            if region == whole:
                return box
            best = max(halves, key=lambda r: intersection(box, r))
            return _rebase(box, region) if best == region else None

        frames = [(el, b) for el, b in ((el, mine(b)) for el, b in boxes["frame"]) if b is not None]
        order = reading_order([b for _, b in frames], "rtl")
        panels = tuple(Panel(id=frames[i][0].attrib["id"], bbox=frames[i][1], order=k) for k, i in enumerate(order))

        bodies = []
        for el, b in boxes["body"]:
            b = mine(b)
            if b is None:
                continue
            cid = el.attrib["character"]
            name = names.get(cid) or None
            bodies.append(Entity(
                id=el.attrib["id"], bbox=b, kind="character",
                identity=None if name in UNNAMED_CHARACTERS else cid, name=name,
                panel_id=containing_panel(b, panels), attributes={"tag": "body", "character": cid},
            ))
        faces = []
        for el, b in boxes["face"]:
            b = mine(b)
            if b is None:
                continue
            cid = el.attrib["character"]
            name = names.get(cid) or None
            host = [e for e in bodies if e.attributes["character"] == cid
                    and intersection(b, e.bbox) >= FACE_IN_BODY * (b[2] - b[0]) * (b[3] - b[1])]
            faces.append(Entity(
                id=el.attrib["id"], bbox=b, kind="face" if host else "character",
                identity=None if name in UNNAMED_CHARACTERS else cid, name=name,
                panel_id=containing_panel(b, panels),
                attributes={"tag": "face", "character": cid, "body_id": host[0].id if host else None},
            ))
        entities = tuple(bodies + faces)
        body_ids = {e.id for e in bodies}

        texts = [(el, b) for el, b in ((el, mine(b)) for el, b in boxes["text"]) if b is not None]
        text_panel = [containing_panel(b, panels) for _, b in texts]
        orders: dict[int, int] = {}
        if panels:
            groups = [[k for k, pid in enumerate(text_panel) if pid == p.id] for p in panels]
        else:
            groups = [list(range(len(texts)))]
        for group in groups:
            for i in reading_order([texts[k][1] for k in group], "rtl"):
                orders[group[i]] = len(orders)
        balloons = []
        for k, (el, b) in enumerate(texts):
            tid = el.attrib["id"]
            content = "".join(el.itertext()).strip() or None
            speaker = page_links.get(tid)
            if speaker is not None and speaker not in body_ids:
                self.cross_page_links += 1
                logger.info("manga109: %s page %d text %s: speaker %s is on the other half", title, index, tid, speaker)
                speaker = None
            balloons.append(Balloon(
                id=tid, bbox=b, text=content, texts={"ja": content} if content else {},
                order=orders.get(k), panel_id=text_panel[k], speaker_id=speaker,
            ))
        x1, y1, x2, y2 = region
        return Page(
            page_id=f"{self.source_name}/{slug(title)}/{index:03d}{suffix}",
            source=self.source_name,
            image_path=str(image_path),
            width=round(x2 - x1),
            height=round(y2 - y1),
            panels=panels,
            entities=entities,
            balloons=tuple(balloons),
            reading_direction="rtl",
            book=title,
            language="ja",
            license=LICENSE,
            attribution=ATTRIBUTION,
            crop=None if region == whole else region,
            identity_scope="book",
        )
