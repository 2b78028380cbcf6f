"""OpenMantra ``annotation.json`` -> pages (manga, right-to-left).

OpenMantra (Hinami et al., "Towards Fully Automated Manga Translation", AAAI 2021; CC BY-NC 4.0):
a JSON list of books ``{"book_title", "pages": [{"page_index", "image_paths": {"ja": path},
"frame": [{x, y, w, h}], "text": [{x, y, w, h, text_ja, text_en, text_zh}]}]}``, boxes in pixels,
image paths relative to the JSON file.

- ``frame`` -> panels, ``order`` = list order (the right-to-left manga reading order);
- ``text`` -> balloons, ``texts`` = ``{"ja", "en", "zh"}``, ``text`` = the chosen ``language``,
  ``order`` = list order;
- ``reading_direction`` = ``"rtl"``.

No character annotations, so the character tasks cannot be fed.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..core.geometry import xywh_to_xyxy
from ..errors import AnnotationError, BadRecordLog
from ..page import Balloon, Page, Panel, containing_panel
from .base import Adapter, check_unique_ids, checked_box, image_size, load_json, short_repr, slug

LICENSE = "CC BY-NC 4.0"
ATTRIBUTION = "OpenMantra (Hinami et al., AAAI 2021)"
LANGUAGES = ("ja", "en", "zh")

_NO_CHARACTERS = "OpenMantra annotates frames and text boxes only: no character boxes, identity, depth or pose"


def is_openmantra(data: object) -> bool:
    """Whether parsed JSON looks like an OpenMantra annotation: a list of ``{book_title, pages}``."""
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(b, dict) and "book_title" in b and "pages" in b for b in data)
    )


class OpenMantraAdapter(Adapter):
    """Reads an OpenMantra ``annotation.json`` (or the folder holding it) into pages.

    Args:
        language: ``"ja"``, ``"en"`` (default) or ``"zh"``: the language of ``Balloon.text``.
        source_name: ``Page.source`` and first page-id component (default ``"openmantra"``).

    Page ids are ``"<source>/<book_title>/<image stem>"``, e.g. ``"openmantra/balloon_dream/003"``.
    """

    name = "openmantra"
    fills: ClassVar[frozenset[str]] = frozenset(
        {"panels", "panels.order", "balloons", "balloons.text", "balloons.order"}
    )
    notes: ClassVar[dict[str, str]] = {"characters": _NO_CHARACTERS, "entities": _NO_CHARACTERS}

    def __init__(self, *, language: str = "en", source_name: str | None = None):
        if language not in LANGUAGES:
            raise ValueError(f"OpenMantra language must be one of {LANGUAGES}, got {language!r}")
        self.language = language
        self.source_name = source_name or self.name

    def load(self, path: str | Path, *, log: BadRecordLog) -> list[Page]:
        """Load ``path`` (``annotation.json`` or its folder).

        Raises:
            AnnotationError: (strict mode) invalid JSON or not an OpenMantra list (names the file),
                a malformed book/page, missing/unreadable image (names the image), a box outside
                the image / inverted / zero-area (names ``"<book> page <index> frame <k>"`` or
                ``"... text <k>"``), duplicated page ids.
        """
        path = Path(path)
        file = path / "annotation.json" if path.is_dir() else path
        try:
            data = load_json(file)
        except ValueError as exc:
            log.report(AnnotationError(str(file), "file", str(exc)))
            return []
        if not is_openmantra(data):
            log.report(AnnotationError(str(file), "file", "not an OpenMantra list of {book_title, pages}"))
            return []
        pages: list[Page] = []
        for book in data:
            title = book["book_title"] if isinstance(book["book_title"], str) else short_repr(book["book_title"])
            if not isinstance(book["pages"], list):
                log.report(AnnotationError(str(file), f"book {title}", "'pages' is not a list"))
                continue
            for n, raw in enumerate(book["pages"]):
                page = self._page(raw, n, title, file, log)
                if page is not None:
                    pages.append(page)
        return check_unique_ids(pages, file=file, log=log)

    def _page(self, raw: dict, n: int, title: str, file: Path, log: BadRecordLog) -> Page | None:
        index = raw.get("page_index", n) if isinstance(raw, dict) else n
        record = f"{title} page {index if isinstance(index, (int, str)) else short_repr(index)}"
        try:
            rel = raw["image_paths"]["ja"]
            frames, texts = raw.get("frame", []), raw.get("text", [])
            if not isinstance(frames, list) or not isinstance(texts, list):
                raise TypeError("'frame' and 'text' must be lists")
            if not isinstance(rel, str) or not rel:
                raise TypeError(f"image_paths.ja must be a file name, got {short_repr(rel)}")
        except (KeyError, TypeError, AttributeError) as exc:
            log.report(AnnotationError(str(file), record, f"malformed page record: {exc!r}"))
            return None
        image_path = file.parent / rel
        size = image_size(image_path, log=log, record=record)
        if size is None:
            return None
        w, h = size

        panels = []
        for k, fr in enumerate(frames):
            box = checked_box(
                lambda fr=fr: xywh_to_xyxy([fr["x"], fr["y"], fr["w"], fr["h"]], where="frame"),
                w, h, file=file, record=f"{record} frame {k}", log=log,
            )
            if box is not None:
                panels.append(Panel(id=f"p{k}", bbox=box, order=k))

        balloons = []
        for k, t in enumerate(texts):
            box = checked_box(
                lambda t=t: xywh_to_xyxy([t["x"], t["y"], t["w"], t["h"]], where="text"),
                w, h, file=file, record=f"{record} text {k}", log=log,
            )
            if box is None:
                continue
            by_lang = {lang: str(t[f"text_{lang}"]) for lang in LANGUAGES if t.get(f"text_{lang}")}
            balloons.append(
                Balloon(
                    id=f"b{k}",
                    bbox=box,
                    text=by_lang.get(self.language),
                    texts=by_lang,
                    order=k,
                    panel_id=containing_panel(box, panels),
                )
            )
        return Page(
            page_id=f"{self.source_name}/{slug(title)}/{Path(rel).stem}",
            source=self.source_name,
            image_path=str(image_path),
            width=w,
            height=h,
            panels=tuple(panels),
            balloons=tuple(balloons),
            reading_direction="rtl",
            book=title,
            language=self.language,
            license=LICENSE,
            attribution=ATTRIBUTION,
        )
