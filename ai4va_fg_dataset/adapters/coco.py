"""AI4VA and generic COCO JSON -> pages (method.md section 1).

AI4VA distributes COCO-style JSON: ``images``, ``categories`` and ``annotations`` with
``segmentation`` (polygons or RLE), ``bbox`` ``[x, y, w, h]``, ``category_id`` and
``attributes`` (``Intradepth``, ``Interdepth`` ordinal depth; identity, pose/action, balloon text
and order are the attributes the benchmark needs). The JSON is indexed with ``pycocotools``; a
:class:`CocoMapping` says which categories are panels, characters, objects and balloons and which
attribute keys carry identity, depth, pose, text and order, so any comic dataset in COCO form can
be read (method.md section 1: "and also any comic dataset in COCO form").

Per annotation: the COCO ``bbox`` becomes ``(x1, y1, x2, y2)`` (or, without ``bbox``, the box of
the polygon / RLE mask); of several segmentation polygons the largest is kept as the outline; RLE
masks are accepted (no outline kept). Attributes are looked up in ``annotation["attributes"]``
first, then in the annotation itself; every raw attribute is kept in ``Entity.attributes``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from ..core.geometry import (
    GeometryError,
    Polygon,
    polygon_area,
    polygon_bbox,
    polygon_from_flat,
    xywh_to_xyxy,
)
from ..errors import AnnotationError, BadRecordLog
from ..page import Balloon, Entity, Page, Panel, containing_panel
from ..tasks.spec import PAGE_FIELDS
from .base import Adapter, check_unique_ids, checked_box, image_size, load_json, short_repr, slug

logger = logging.getLogger(__name__)


def _norm(name: str) -> str:
    """Category name for comparison: lower case, single spaces."""
    return " ".join(str(name).lower().split())


@dataclass
class CocoMapping:
    """How COCO categories and attributes map onto the page model.

    Category names are compared case-insensitively after stripping spaces. An annotation whose
    category is in none of the sets (and not in ``ignore_categories``) is a bad record.

    Parameters that select categories:
        panel: category names of panels (frames).
        character: category names of characters (``Entity.kind == "character"``).
        object: category names of other segmented entities (``Entity.kind == "object"``).
        balloon: category names of speech balloons / text areas.
        ignore_categories: category names skipped on purpose (logged at DEBUG, not bad records).

    Parameters that select attribute keys (the first key present wins):
        identity: who a character is (same value = same character).
        depth: ordinal depth, **smaller = closer** (AI4VA ``Intradepth``); must be numeric.
        pose: pose / action label.
        text: balloon transcription.
        order: reading-order index of a balloon or panel; must be an integer.
        speaker: a balloon's annotated speaker: the COCO annotation ``id`` of the character who
            says it (Speaker Attribution's key); a link to no character of the same image is a bad
            record.

    Other parameters:
        reading_direction: ``"ltr"`` or ``"rtl"`` for every page.
        language: language code of balloon texts (``Page.language`` and the key of
            ``Balloon.texts``; ``"und"``, undetermined, when ``None``).
    """

    panel: set[str] = field(default_factory=lambda: {"panel", "panels", "frame"}, metadata={"help": "panel categories"})
    character: set[str] = field(
        default_factory=lambda: {"character", "characters", "person"}, metadata={"help": "character categories"}
    )
    object: set[str] = field(default_factory=lambda: {"object", "objects"}, metadata={"help": "object categories"})
    balloon: set[str] = field(
        default_factory=lambda: {"speech balloon", "speech_balloon", "balloon", "speech balloons", "text"},
        metadata={"help": "speech balloon / text area categories"},
    )
    ignore_categories: set[str] = field(default_factory=set, metadata={"help": "categories skipped on purpose"})
    identity: list[str] = field(
        default_factory=lambda: ["Identity", "identity", "character_id", "name"],
        metadata={"help": "attribute keys of character identity"},
    )
    depth: list[str] = field(
        default_factory=lambda: ["Intradepth"], metadata={"help": "attribute keys of ordinal depth (smaller = closer)"}
    )
    pose: list[str] = field(
        default_factory=lambda: ["Pose", "pose", "Action", "action"], metadata={"help": "attribute keys of pose/action"}
    )
    text: list[str] = field(
        default_factory=lambda: ["Text", "text", "transcription"], metadata={"help": "attribute keys of balloon text"}
    )
    order: list[str] = field(
        default_factory=lambda: ["Order", "order", "reading_order"], metadata={"help": "attribute keys of reading order"}
    )
    speaker: list[str] = field(
        default_factory=lambda: ["Speaker", "speaker", "speaker_id"],
        metadata={"help": "attribute keys of a balloon's speaker (the speaking character's annotation id)"},
    )
    reading_direction: str = field(default="ltr", metadata={"help": "'ltr' or 'rtl'"})
    language: str | None = field(default=None, metadata={"help": "language code of balloon texts"})

    def __post_init__(self):
        for name in ("panel", "character", "object", "balloon", "ignore_categories", "identity", "depth", "pose",
                     "text", "order", "speaker"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)) \
                    or not all(isinstance(v, str) for v in value):
                raise ValueError(f"CocoMapping field {name!r} must be a list of strings "
                                 f"(e.g. [\"{name}\"]), got {short_repr(value)}")
        for name in ("panel", "character", "object", "balloon", "ignore_categories"):
            setattr(self, name, {_norm(c) for c in getattr(self, name)})
        for name in ("identity", "depth", "pose", "text", "order"):
            setattr(self, name, list(getattr(self, name)))
        if self.reading_direction not in ("ltr", "rtl"):
            raise ValueError(f"reading_direction must be 'ltr' or 'rtl', got {short_repr(self.reading_direction)}")
        if self.language is not None and not isinstance(self.language, str):
            raise ValueError(f"language must be a language code string or null, got {short_repr(self.language)}")

    def kind(self, category_name: str) -> str | None:
        """``"panel"``, ``"character"``, ``"object"``, ``"balloon"``, ``"ignore"`` or ``None`` (unknown)."""
        n = _norm(category_name)
        for kind in ("panel", "character", "object", "balloon"):
            if n in getattr(self, kind):
                return kind
        return "ignore" if n in self.ignore_categories else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CocoMapping:
        """Build a mapping from a dict of field values (e.g. a JSON file given on the command line).

        Raises:
            ValueError: ``data`` is not a dict, an unknown field name, or a value of the wrong type
                (category and attribute-key fields take lists of strings).
        """
        if not isinstance(data, dict):
            # ValueError like every other bad --coco-mapping content (CLI exit 2)
            raise ValueError(f"a CocoMapping must be a JSON object of fields, got {short_repr(data)}")  # noqa: TRY004
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown CocoMapping fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> CocoMapping:
        """:meth:`from_dict` of a JSON file.

        Raises:
            ValueError: the file is unreadable or not JSON (:func:`~.base.load_json`), or see
                :meth:`from_dict`.
        """
        return cls.from_dict(load_json(path))


AI4VA_MAPPING = CocoMapping()
"""The AI4VA schema (method.md section 1): panels, characters, objects and speech balloons;
``Intradepth`` as depth (``Interdepth`` and every other attribute kept in ``Entity.attributes``)."""

AI4VA_DEPTH_ATTRIBUTES = ("intradepth", "interdepth")
"""Attribute keys (lower-cased) that mark a COCO file as AI4VA for ``--source auto``."""


def is_coco(data: object) -> bool:
    """Whether parsed JSON is a COCO annotation dict (``images``, ``annotations``, ``categories``)."""
    return isinstance(data, dict) and all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories"))


def looks_like_ai4va(data: dict) -> bool:
    """Whether a COCO dict uses the AI4VA schema: an ``Intradepth``/``Interdepth`` attribute on some
    annotation, or "AI4VA" in its ``info``."""
    try:
        if "ai4va" in json.dumps(data.get("info", {})).lower():
            return True
    except (TypeError, ValueError, RecursionError):  # an odd info block: not a reason to crash detection
        pass
    for ann in data.get("annotations", []):
        attrs = ann.get("attributes") if isinstance(ann, dict) else None
        if isinstance(attrs, dict) and any(str(k).lower() in AI4VA_DEPTH_ATTRIBUTES for k in attrs):
            return True
    return False


class CocoAdapter(Adapter):
    """Reads a COCO JSON (AI4VA or any comic dataset in COCO form) into pages.

    Args:
        mapping: a :class:`CocoMapping` (or a dict of its fields); default :data:`AI4VA_MAPPING`.
        image_root: folder the images' ``file_name`` are relative to; default: the JSON's folder,
            or its ``images/`` sub-folder when the file is there.
        source_name: ``Page.source`` and first page-id component (default: the adapter name;
            ``"synthetic"`` for the synthetic AI4VA-schema set).
        book: book name for every page; default: the folder part of ``file_name``, else the JSON
            file's stem.
        license, attribution: override what the JSON's ``licenses`` / ``info`` say.

    Page ids are ``"<source>/<book>/<image stem>"``. The format can fill every page-model field
    (:attr:`fills` is all of ``PAGE_FIELDS``, so :attr:`feeds` is all ``None``); what a given file
    feeds is :meth:`capabilities`.

    ``path`` may also be a folder of COCO JSON files (e.g. one per book, as Manga109 ships one XML
    per book): every ``*.json`` in it, in name order, is one file of the same source, and the pages
    come file by file (:meth:`load` then returns a generator), so a build holds one file's
    annotations at a time, not the whole set's (issue 13).
    """

    name = "coco"
    fills: ClassVar[frozenset[str]] = PAGE_FIELDS
    default_mapping = AI4VA_MAPPING

    def __init__(
        self,
        mapping: CocoMapping | dict | None = None,
        image_root: str | Path | None = None,
        *,
        source_name: str | None = None,
        book: str | None = None,
        license: str | None = None,
        attribution: str | None = None,
    ):
        if isinstance(mapping, dict):
            mapping = CocoMapping.from_dict(mapping)
        self.mapping = mapping or self.default_mapping
        self.image_root = Path(image_root) if image_root is not None else None
        self.source_name = source_name or self.name
        self.book = book
        self.license = license
        self.attribution = attribution

    # -- loading ----------------------------------------------------------------------------------

    def load(self, path: str | Path, *, log: BadRecordLog) -> list[Page] | Iterator[Page]:
        """Load one COCO JSON file (a list of pages), or every ``*.json`` of a folder, in name order
        (a generator yielding the pages file by file; a folder without one is a bad record).

        Raises:
            AnnotationError: (strict mode) invalid JSON / not a COCO dict (names the file); an image
                record without id/file_name, a duplicated image or annotation id, a missing or
                unreadable image, an image whose header size differs from its COCO width/height
                (``"image id=N (file)"``); an annotation with an unknown category or image, a
                bad box (outside the image / inverted / zero-area / NaN), a degenerate polygon or a
                non-numeric depth / non-integer order (``"annotation id=N"``); duplicated page ids.
        """
        file = Path(path)
        if file.is_dir():
            return self._load_folder(file, log)
        try:
            data = load_json(file)
        except ValueError as exc:
            log.report(AnnotationError(str(file), "file", str(exc)))
            return []
        if not is_coco(data):
            log.report(AnnotationError(str(file), "file", "not a COCO dict with images/annotations/categories lists"))
            return []

        cats = _records_by_id(data["categories"], "category", "name", file, log)
        images = _records_by_id(data["images"], "image", "file_name", file, log)
        anns = self._annotations(data["annotations"], images, cats, file, log)
        coco = _index({"images": list(images.values()), "annotations": anns, "categories": list(cats.values())})

        licenses = self._licenses(data.get("licenses"), file, log)
        info = data.get("info") if isinstance(data.get("info"), dict) else {}
        attribution = self.attribution or str(info.get("contributor") or info.get("description") or "")

        pages = []
        for img in images.values():
            page = self._page(coco, img, file, log, licenses, attribution)
            if page is not None:
                pages.append(page)
        return check_unique_ids(pages, file=file, log=log)

    def _load_folder(self, folder: Path, log: BadRecordLog) -> Iterator[Page]:
        files = sorted(folder.glob("*.json"))
        if not files:
            log.report(AnnotationError(str(folder), "folder", "no *.json COCO file in this folder"))
        for file in files:
            yield from self.load(file, log=log)

    @staticmethod
    def _licenses(raw: Any, file: Path, log: BadRecordLog) -> dict[Any, str]:
        """``{licence id: name}`` of the optional ``licenses`` list; a malformed entry (not a dict,
        an id that is not an integer or string, a name that is not a string) is a bad record."""
        if raw is None:
            return {}
        if not isinstance(raw, list):
            log.report(AnnotationError(str(file), "licenses", f"must be a list, got {short_repr(raw)}"))
            return {}
        out = {}
        for k, lic in enumerate(raw):
            if not isinstance(lic, dict) or not _is_id(lic.get("id")) or not isinstance(lic.get("name", ""), str):
                log.report(AnnotationError(str(file), f"license #{k}",
                                           f"needs an integer or string 'id' and a string 'name', got {short_repr(lic)}"))
                continue
            out[lic["id"]] = lic.get("name", "")
        return out

    def _annotations(self, raw: list, images: dict, cats: dict, file: Path, log: BadRecordLog) -> list[dict]:
        """Annotations that pycocotools can index and that have a known category and image."""
        out, seen = [], set()
        for k, ann in enumerate(raw):
            if not isinstance(ann, dict) or not {"id", "image_id", "category_id"} <= set(ann):
                log.report(
                    AnnotationError(str(file), f"annotation #{k}", "needs 'id', 'image_id' and 'category_id'")
                )
                continue
            wrong = [key for key in ("id", "image_id", "category_id") if not _is_id(ann[key])]
            if wrong:
                log.report(AnnotationError(
                    str(file), f"annotation #{k}",
                    "; ".join(f"'{key}' must be an integer or a string, got {short_repr(ann[key])}" for key in wrong)))
                continue
            record = f"annotation id={ann['id']}"
            if ann["id"] in seen:
                log.report(AnnotationError(str(file), record, "duplicated annotation id"))
                continue
            seen.add(ann["id"])
            if ann["image_id"] not in images:
                log.report(AnnotationError(str(file), record, f"image_id {ann['image_id']!r} is not in 'images'"))
                continue
            cat = cats.get(ann["category_id"])
            if cat is None:
                log.report(AnnotationError(str(file), record, f"category_id {ann['category_id']!r} is not in 'categories'"))
                continue
            kind = self.mapping.kind(cat["name"])
            if kind is None:
                log.report(
                    AnnotationError(
                        str(file), record,
                        f"unknown category {cat['name']!r} (id {cat['id']}); map it in CocoMapping or list it in "
                        "ignore_categories",
                    )
                )
                continue
            if kind == "ignore":
                logger.debug("%s: %s: category %r ignored", file, record, cat["name"])
                continue
            out.append(ann)
        return out

    def _image_path(self, file: Path, file_name: str) -> Path:
        if self.image_root is not None:
            return self.image_root / file_name
        direct = file.parent / file_name
        nested = file.parent / "images" / file_name
        return nested if not direct.is_file() and nested.is_file() else direct

    def _page(self, coco, img: dict, file: Path, log, licenses: dict, attribution: str) -> Page | None:
        record = f"image id={img['id']} ({img['file_name']})"
        image_path = self._image_path(file, img["file_name"])
        size = image_size(image_path, log=log, record=record)
        if size is None:
            return None
        w, h = size
        if (img.get("width"), img.get("height")) not in ((None, None), (w, h)):
            log.report(
                AnnotationError(
                    str(file), record,
                    f"COCO size {img.get('width')}x{img.get('height')} differs from the image header {w}x{h}",
                )
            )
            return None

        panels, entities, balloons = [], [], []
        anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])), key=lambda a: _sort_key(a["id"]))
        for ann in anns:
            kind = self.mapping.kind(coco.cats[ann["category_id"]]["name"])
            parsed = self._region(coco, ann, w, h, file, log)
            if parsed is None:
                continue
            box, poly = parsed
            attrs = ann.get("attributes") if isinstance(ann.get("attributes"), dict) else {}
            rec = f"annotation id={ann['id']}"
            try:
                order = _int_or_none(_lookup(ann, attrs, self.mapping.order), "order")
                if kind == "panel":
                    panels.append(Panel(id=f"p{ann['id']}", bbox=box, polygon=poly, order=order))
                elif kind == "balloon":
                    text = _str_or_none(_lookup(ann, attrs, self.mapping.text))
                    lang = self.mapping.language or "und"
                    speaker = _lookup(ann, attrs, self.mapping.speaker)
                    if speaker is not None and not _is_id(speaker):
                        raise ValueError(f"speaker {short_repr(speaker)} is not an annotation id")
                    balloons.append(
                        Balloon(
                            id=f"b{ann['id']}", bbox=box, text=text, texts={lang: text} if text else {},
                            order=order, polygon=poly, speaker_id=None if speaker is None else f"e{speaker}",
                        )
                    )
                else:
                    entities.append(
                        Entity(
                            id=f"e{ann['id']}",
                            bbox=box,
                            kind=kind,
                            identity=_str_or_none(_lookup(ann, attrs, self.mapping.identity)),
                            depth=_float_or_none(_lookup(ann, attrs, self.mapping.depth), "depth"),
                            pose=_str_or_none(_lookup(ann, attrs, self.mapping.pose)),
                            polygon=poly,
                            attributes=dict(attrs),
                        )
                    )
            except ValueError as exc:
                log.report(AnnotationError(str(file), rec, str(exc)))
                continue

        characters = {e.id for e in entities if e.kind == "character"}
        for k, b in enumerate(balloons):
            if b.speaker_id is not None and b.speaker_id not in characters:
                log.report(AnnotationError(str(file), f"annotation id={b.id[1:]}",
                                           f"speaker {b.speaker_id[1:]!r} is no character annotation of this image"))
                balloons[k] = replace(b, speaker_id=None)
        if panels and all(p.order is not None for p in panels):
            panels.sort(key=lambda p: p.order)
        panels_t = tuple(panels)
        entities = [_with_panel(e, panels_t) for e in entities]
        balloons = [_with_panel(b, panels_t) for b in balloons]
        fname = Path(img["file_name"])
        book = self.book or (str(fname.parent) if str(fname.parent) not in ("", ".") else file.stem)
        return Page(
            page_id=f"{self.source_name}/{slug(book)}/{fname.stem}",
            source=self.source_name,
            image_path=str(image_path),
            width=w,
            height=h,
            panels=panels_t,
            entities=tuple(entities),
            balloons=tuple(balloons),
            reading_direction=self.mapping.reading_direction,  # type: ignore[arg-type]
            book=book,
            language=self.mapping.language,
            license=self.license or str(licenses.get(img.get("license"), "") if _is_id(img.get("license")) else ""),
            attribution=attribution,
        )

    def _region(self, coco, ann: dict, w: int, h: int, file: Path, log) -> tuple | None:
        """``(bbox, polygon | None)`` of an annotation, or ``None`` after reporting a bad record."""
        record = f"annotation id={ann['id']}"
        seg = ann.get("segmentation")
        poly: Polygon | None = None
        try:
            if isinstance(seg, list) and seg:
                flats = seg if isinstance(seg[0], (list, tuple)) else [seg]
                if not all(_numbers(f) for f in flats):
                    raise GeometryError(f"segmentation must be lists of numbers [x0, y0, x1, y1, ...], "
                                        f"got {short_repr(seg)}")
                polys = [polygon_from_flat(f, where="segmentation") for f in flats]
                poly = max(polys, key=polygon_area)
            elif seg not in (None, [], {}) and not isinstance(seg, dict):
                raise GeometryError(f"segmentation is neither polygons nor RLE: {str(seg)[:80]}")
        except (GeometryError, TypeError, ValueError) as exc:
            log.report(AnnotationError(str(file), record, str(exc)))
            return None

        if ann.get("bbox") is not None:
            if not _numbers(ann["bbox"]):
                log.report(AnnotationError(str(file), record,
                                           f"bbox must be a list of 4 numbers [x, y, w, h], got {short_repr(ann['bbox'])}"))
                return None
            box_fn = lambda: xywh_to_xyxy(ann["bbox"], where="bbox")
        elif poly is not None:
            box_fn = lambda: polygon_bbox(poly, where="segmentation")
        elif isinstance(seg, dict):
            box_fn = lambda: xywh_to_xyxy(_rle_bbox(coco, ann), where="RLE mask")
        else:
            log.report(AnnotationError(str(file), record, "no bbox and no segmentation"))
            return None
        box = checked_box(box_fn, w, h, file=file, record=record, log=log)
        return None if box is None else (box, poly)


class AI4VAAdapter(CocoAdapter):
    """:class:`CocoAdapter` with the AI4VA schema (:data:`AI4VA_MAPPING`); ``Page.source`` ``"ai4va"``."""

    name = "ai4va"
    default_mapping = AI4VA_MAPPING


class SyntheticAdapter(AI4VAAdapter):
    """:class:`AI4VAAdapter` for the SYNTHETIC page set of :mod:`ai4va_fg_dataset.synthetic`.

    Same schema; ``Page.source`` and the page ids say ``"synthetic"``, so synthetic samples are never
    mistaken for AI4VA ones in a built dataset or a results table.
    """

    name = "synthetic"


def looks_synthetic(data: dict) -> bool:
    """Whether a COCO dict is labelled SYNTHETIC in its ``info.description`` (see ``synthetic.py``)."""
    info = data.get("info")
    return isinstance(info, dict) and str(info.get("description", "")).startswith("SYNTHETIC")


def _is_id(value: Any) -> bool:
    """Whether ``value`` can be a COCO id: an integer or a string (not a bool, float, list...)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _numbers(values: Any) -> bool:
    """Whether ``values`` is a list/tuple of real numbers (int or float, not bool or str): a string
    such as ``"1234"`` must never be read as the box ``(1, 2, 3, 4)``."""
    return isinstance(values, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _records_by_id(raw: list, what: str, key: str, file: Path, log: BadRecordLog) -> dict[Any, dict]:
    """The records of a COCO list (``categories``, ``images``) by ``id``.

    Every record needs an ``id`` (integer or string) and a non-empty string ``key`` (``name``,
    ``file_name``). A non-dict record, a missing or mistyped ``id`` or ``key`` (``"<what> #k"``)
    and a repeated id (``"<what> id=N"``) are reported through ``log`` and skipped.
    """
    out: dict[Any, dict] = {}
    for k, rec in enumerate(raw):
        if not isinstance(rec, dict) or "id" not in rec or not rec.get(key):
            log.report(AnnotationError(str(file), f"{what} #{k}", f"needs 'id' and '{key}': {short_repr(rec)}"))
            continue
        if not _is_id(rec["id"]) or not isinstance(rec[key], str):
            log.report(AnnotationError(
                str(file), f"{what} #{k}",
                f"'id' must be an integer or a string and '{key}' a string, got id {short_repr(rec['id'])} "
                f"and {key} {short_repr(rec[key])}"))
            continue
        if rec["id"] in out:
            log.report(AnnotationError(str(file), f"{what} id={rec['id']}", f"duplicated {what} id"))
            continue
        out[rec["id"]] = rec
    return out


def _index(dataset: dict):
    """A ``pycocotools.coco.COCO`` index of an already-validated dataset dict (no file I/O, quiet)."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _rle_bbox(coco, ann: dict) -> list[float]:
    """COCO ``[x, y, w, h]`` of an RLE segmentation (compressed or not), via pycocotools."""
    from pycocotools import mask as mask_utils

    try:
        return [float(v) for v in mask_utils.toBbox(coco.annToRLE(ann))]
    except Exception as exc:  # pycocotools raises assorted errors on malformed RLE
        raise GeometryError(f"unreadable RLE segmentation: {exc}") from exc


def _sort_key(value) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _lookup(ann: dict, attrs: dict, keys: list[str]):
    for k in keys:
        if k in attrs and attrs[k] not in (None, ""):
            return attrs[k]
    for k in keys:
        if k in ann and ann[k] not in (None, ""):
            return ann[k]
    return None


def _str_or_none(v) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def _float_or_none(v, what: str) -> float | None:
    if v is None:
        return None
    try:
        f = math.nan if isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        f = math.nan
    if not math.isfinite(f):
        raise ValueError(f"{what} {v!r} is not a finite number")
    return f


def _int_or_none(v, what: str) -> int | None:
    f = _float_or_none(v, what)
    if f is None:
        return None
    if f != int(f):
        raise ValueError(f"{what} {v!r} is not an integer")
    return int(f)


def _with_panel(item, panels):
    return replace(item, panel_id=containing_panel(item.bbox, panels))
