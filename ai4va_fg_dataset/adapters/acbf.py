"""ACBF (Advanced Comic Book Format) 1.0/1.1 XML -> pages.

What an ACBF file gives (``<body><page>`` elements, e.g. ``shared/data/craphound``):

- ``<image href>``: the page image, relative to the ``.acbf`` file;
- ``<frame points="x,y x,y ...">``: panels as polygons, **listed in the annotator's reading
  order** (kept as ``Panel.order`` and ``Panel.polygon``);
- ``<text-layer lang=...><text-area points=... type=...><p>...``: text areas per language, listed
  in reading order. The layer of the chosen ``language`` gives the balloons (``Balloon.text``,
  ``order`` = listing index, ``kind`` = ``type``, default ``"speech"``); the other layers are
  matched by index when they have as many text areas and go to ``Balloon.texts``.

Characters are named only at book level (``<characters><name>``): no per-character boxes,
identity, depth or pose, so ACBF cannot feed the character tasks. Inline markup inside ``<p>``
(``<emphasis>``, ``<strong>``...) is flattened to its text; ``<a>`` reference markers
(``[*]`` footnote links) are dropped. Paragraphs are joined with a space.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import ClassVar

from ..core.geometry import parse_points
from ..errors import AnnotationError, BadRecordLog
from ..page import Balloon, Page, Panel, containing_panel
from .base import Adapter, check_unique_ids, checked_polygon, image_size, slug

logger = logging.getLogger(__name__)

_NO_CHARACTER_BOXES = (
    "ACBF names characters only at book level: no per-character boxes, identity, depth or pose"
)

_CC_TERMS = {
    "attribution": "BY",
    "noncommercial": "NC",
    "non-commercial": "NC",
    "sharealike": "SA",
    "share-alike": "SA",
    "noderivatives": "ND",
    "noderivs": "ND",
}


def short_license(statement: str) -> str:
    """Abbreviate a Creative Commons licence statement, e.g.
    ``"Creative Commons Attribution-NonCommercial-ShareAlike 3.0 United States"`` ->
    ``"CC BY-NC-SA 3.0 US"``. Anything that is not a Creative Commons name is returned stripped."""
    text = " ".join(statement.split())
    m = re.match(r"(?i)creative commons\s+([A-Za-z-]+)\s*([0-9.]+)?\s*(.*)$", text)
    if not m:
        return text
    parts = [_CC_TERMS.get(t.lower()) for t in m.group(1).split("-")]
    if not parts or None in parts:
        return text
    out = "CC " + "-".join(parts)  # type: ignore[arg-type]
    if m.group(2):
        out += " " + m.group(2)
    port = m.group(3).strip()
    if port:
        out += " " + ("US" if port.lower() == "united states" else port)
    return out


class AcbfAdapter(Adapter):
    """Reads ``.acbf`` files (ACBF 1.0/1.1, any namespace) into pages.

    Args:
        language: language code of ``Balloon.text`` (the primary text layer); a page without a
            layer in that language uses its first layer and says so in ``Page.language``.
        source_name: ``Page.source`` and the first page-id component (default ``"acbf"``).

    Page ids are ``"<source>/<book title>/<image stem>"``, e.g. ``"acbf/Craphound/page11"``.
    """

    name = "acbf"
    fills: ClassVar[frozenset[str]] = frozenset(
        {"panels", "panels.order", "balloons", "balloons.text", "balloons.order"}
    )
    notes: ClassVar[dict[str, str]] = {"characters": _NO_CHARACTER_BOXES, "entities": _NO_CHARACTER_BOXES}

    def __init__(self, *, language: str = "en", source_name: str | None = None):
        self.language = language
        self.source_name = source_name or self.name

    def load(self, path: str | Path, *, log: BadRecordLog) -> list[Page]:
        """Load one ``.acbf`` file, or every ``*.acbf`` in a folder (sorted).

        Raises:
            AnnotationError: (strict mode) invalid XML or not an ACBF document (names the file),
                missing/unreadable image (names the image), degenerate or outside polygon (names
                ``"page <href> frame <k>"`` / ``"page <href> text-area <k> (<lang>)"``),
                duplicated page ids.
        """
        path = Path(path)
        files = sorted(path.glob("*.acbf")) if path.is_dir() else [path]
        pages: list[Page] = []
        for f in files:
            pages.extend(self._load_file(f, log))
        return check_unique_ids(pages, file=path, log=log)

    # -- one file ---------------------------------------------------------------------------------

    def _load_file(self, path: Path, log: BadRecordLog) -> list[Page]:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            log.report(AnnotationError(str(path), "file", f"invalid XML: {exc}"))
            return []
        except OSError as exc:
            log.report(AnnotationError(str(path), "file", f"cannot read: {exc}"))
            return []
        ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
        q = (lambda t: f"{{{ns}}}{t}") if ns else (lambda t: t)
        if _local(root.tag) != "ACBF":
            log.report(AnnotationError(str(path), "file", f"root element is <{_local(root.tag)}>, expected <ACBF>"))
            return []

        book_info = root.find(f"{q('meta-data')}/{q('book-info')}")
        book = self._book_title(book_info, q) or path.stem
        license_el = root.find(f"{q('meta-data')}/{q('publish-info')}/{q('license')}")
        license_ = short_license(license_el.text) if license_el is not None and license_el.text else ""
        attribution = self._attribution(book_info, q)

        pages = []
        for n, page_el in enumerate(root.findall(f"{q('body')}/{q('page')}"), start=1):
            page = self._page(page_el, n, path, q, log, book, license_, attribution)
            if page is not None:
                pages.append(page)
        return pages

    def _page(self, el, n, path: Path, q, log, book, license_, attribution) -> Page | None:
        image_el = el.find(q("image"))
        href = image_el.get("href") if image_el is not None else None
        if not href:
            log.report(AnnotationError(str(path), f"page {n}", "no <image href>"))
            return None
        image_path = path.parent / href
        size = image_size(image_path, log=log, record=f"page {n} ({href})")
        if size is None:
            return None
        w, h = size

        panels = []
        for k, fr in enumerate(el.findall(q("frame"))):
            got = checked_polygon(
                lambda fr=fr, k=k: parse_points(fr.get("points", ""), where="frame"),
                w, h, file=path, record=f"page {href} frame {k}", log=log,
            )
            if got is not None:
                panels.append(Panel(id=f"p{k}", bbox=got[1], polygon=got[0], order=k))

        layers: dict[str, list] = {}
        for layer in el.findall(q("text-layer")):
            layers.setdefault(layer.get("lang", ""), layer.findall(q("text-area")))
        primary = self.language if self.language in layers else next(iter(layers), None)
        balloons = []
        if primary is not None:
            areas = layers[primary]
            others = {}
            for lang, other in layers.items():
                if lang == primary:
                    continue
                if len(other) == len(areas):
                    others[lang] = other
                else:
                    logger.debug(
                        "%s page %s: %s layer has %d text areas, %s has %d: not matched",
                        path, href, lang, len(other), primary, len(areas),
                    )
            for k, ta in enumerate(areas):
                got = checked_polygon(
                    lambda ta=ta, k=k: parse_points(ta.get("points", ""), where="text-area"),
                    w, h, file=path, record=f"page {href} text-area {k} ({primary})", log=log,
                )
                if got is None:
                    continue
                poly, box = got
                texts = {primary: _text(ta, q)}
                texts.update({lang: _text(other[k], q) for lang, other in others.items()})
                texts = {lang: t for lang, t in texts.items() if t}
                balloons.append(
                    Balloon(
                        id=f"b{k}",
                        bbox=box,
                        text=texts.get(primary),
                        texts=texts,
                        order=k,
                        kind=ta.get("type", "speech"),
                        panel_id=containing_panel(box, panels),
                        polygon=poly,
                    )
                )
        return Page(
            page_id=f"{self.source_name}/{slug(book)}/{Path(href).stem}",
            source=self.source_name,
            image_path=str(image_path),
            width=w,
            height=h,
            panels=tuple(panels),
            balloons=tuple(balloons),
            reading_direction="ltr",
            book=book,
            language=primary,
            license=license_,
            attribution=attribution,
        )

    def _book_title(self, book_info, q) -> str | None:
        if book_info is None:
            return None
        titles = {t.get("lang", ""): (t.text or "").strip() for t in book_info.findall(q("book-title"))}
        for lang in (self.language, "en", ""):
            if titles.get(lang):
                return titles[lang]
        return next((t for t in titles.values() if t), None)

    @staticmethod
    def _attribution(book_info, q) -> str:
        if book_info is None:
            return ""
        people = []
        for a in book_info.findall(q("author")):
            name = " ".join(
                (a.findtext(q(t)) or "").strip() for t in ("first-name", "middle-name", "last-name")
            ).split()
            name = " ".join(name) or (a.findtext(q("nickname")) or "").strip()
            if not name:
                continue
            role = a.get("activity", "")
            if a.get("lang"):
                role = f"{role}, {a.get('lang')}" if role else a.get("lang")
            people.append(f"{name} ({role})" if role else name)
        return "; ".join(people)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _flatten(el) -> str:
    """Text of ``el`` and its children, dropping ``<a>`` (reference link) subtrees."""
    parts = [el.text or ""]
    for child in el:
        if _local(child.tag) != "a":
            parts.append(_flatten(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _text(text_area, q) -> str:
    """Plain text of a ``<text-area>``: paragraphs flattened and joined with a space."""
    paragraphs = [" ".join(_flatten(p).split()) for p in text_area.findall(q("p"))]
    return " ".join(p for p in paragraphs if p)
