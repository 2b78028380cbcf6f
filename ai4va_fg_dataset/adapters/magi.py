"""Magi / PopManga per-page JSON -> pages (manga, right-to-left by default).

Two per-page JSON shapes of Sachdeva & Zisserman, "The Manga Whisperer: Automatically Generating
Transcriptions for Comics" (CVPR 2024), both read here (``spec/formats.md``):

1. **PopManga annotations** (academic research only, images copyrighted: never shipped), one
   ``<image file name>.json`` per page image::

       {"bbox_annotations": {"bboxes_as_x1y1x2y2": [[x1, y1, x2, y2], ...],   # pixels
                             "labels": [0, 0, ..., 1, 1, ...]},               # 0 character, 1 text
        "character_clusters": [c0, c1, ...],          # one int per character box
        "text_to_character_matches": [[text_index, character_index], ...]}

   Character boxes come first, then text boxes; ``text_index`` counts text boxes only. No panels,
   no transcriptions, no reading order.
2. **Magi model outputs** (``predict_detections_and_associations``), one JSON per page::

       {"panels": [[x1, y1, x2, y2], ...], "texts": [...], "characters": [...],
        "character_cluster_labels": [...], "text_character_associations": [[t, c], ...],
        "is_essential_text": [true, ...], "ocr": ["...", ...]}     # "ocr" optional, one per text

   Magi sorts panels and texts in reading order before returning them, so list order is kept as
   ``order``; texts get ``kind="speech"`` when essential, else ``"other"`` (sound effects,
   background text). This is how any unannotated comic is fed: run Magi, point this adapter at
   the outputs.

Mapping: characters -> :class:`~ai4va_fg_dataset.page.Entity` (``id="c<k>"``), ``identity`` =
``"cluster<n>"`` with :attr:`~ai4va_fg_dataset.page.Page.identity_scope` ``"page"`` (clusters are
page-local: the same number on two pages says nothing); texts -> balloons (``id="t<k>"``) whose
``speaker_id`` is the matched character. A text matched to two different characters keeps no
speaker (the link is ambiguous; logged at INFO). Panel membership is set only where panels exist.

The image of ``dir/x.jpg.json`` (or ``dir/x.json``) is ``x.jpg`` (or ``x`` + one of
:data:`IMAGE_EXTENSIONS`) in the JSON's folder, else at the same relative path under
``image_root`` (the PopManga layout keeps annotations and images in parallel trees).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

from ..core.geometry import as_bbox
from ..errors import AnnotationError, BadRecordLog
from ..page import Balloon, Entity, Page, Panel, containing_panel
from .base import Adapter, check_unique_ids, checked_box, image_size, load_json, short_repr, slug

logger = logging.getLogger(__name__)

LICENSE = "PopManga / Magi (academic research use only; images copyrighted; not redistributable)"
ATTRIBUTION = "PopManga and Magi (Sachdeva & Zisserman, CVPR 2024); page images (c) their publishers"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

_NO_POSE_DEPTH = "Magi / PopManga have no ordinal depth or pose/action labels"


def is_popmanga(data: object) -> bool:
    """Whether parsed JSON is a PopManga page annotation (has ``bbox_annotations``)."""
    return isinstance(data, dict) and isinstance(data.get("bbox_annotations"), dict)


def is_magi_output(data: object) -> bool:
    """Whether parsed JSON is a Magi prediction (``characters`` and ``texts`` lists)."""
    return isinstance(data, dict) and isinstance(data.get("characters"), list) and isinstance(data.get("texts"), list)


def is_magi(data: object) -> bool:
    """Either Magi / PopManga shape (:func:`is_popmanga` or :func:`is_magi_output`)."""
    return is_popmanga(data) or is_magi_output(data)


class MagiAdapter(Adapter):
    """Reads Magi / PopManga per-page JSON files (a file, or a folder searched recursively).

    Args:
        image_root: folder holding the images in the same relative layout as the JSON files
            (default: next to each JSON).
        reading_direction: ``"rtl"`` (manga, default) or ``"ltr"``.
        source_name: ``Page.source`` and first page-id component (default ``"magi"``).

    Page ids are ``"<source>/<relative folder>/<image stem>"`` with ``/`` kept between folders
    (``"magi/series/chapter_1/012"``).
    """

    name = "magi"
    fills: ClassVar[frozenset[str]] = frozenset({
        "panels", "panels.order", "entities", "characters", "characters.identity",
        "balloons", "balloons.text", "balloons.order", "balloons.speaker",
    })
    notes: ClassVar[dict[str, str]] = {"entities.depth": _NO_POSE_DEPTH, "characters.pose": _NO_POSE_DEPTH}

    def __init__(self, *, image_root: str | Path | None = None, reading_direction: str = "rtl",
                 source_name: str | None = None):
        if reading_direction not in ("ltr", "rtl"):
            raise ValueError(f"reading_direction must be 'ltr' or 'rtl', got {reading_direction!r}")
        self.image_root = Path(image_root) if image_root else None
        self.reading_direction = reading_direction
        self.source_name = source_name or self.name

    def load(self, path: str | Path, *, log: BadRecordLog) -> list[Page]:
        """Load one JSON file or every ``*.json`` under the folder ``path`` (sorted).

        JSON files of neither shape are skipped (logged at INFO), so a Magi folder may hold other
        files.

        Raises:
            ValueError: ``path`` does not exist.
            AnnotationError: (strict mode) invalid JSON, a missing image, labels out of order
                (a character box after a text box), lists of mismatched lengths, an index out of
                range in a match, a box outside the image (record ``"<json> character 3"``...),
                duplicated page ids.
        """
        root = Path(path)
        if not root.exists():
            raise ValueError(f"{root}: no such file or folder")
        files = [root] if root.is_file() else sorted(root.rglob("*.json"))
        base = root.parent if root.is_file() else root
        pages = []
        for f in files:
            try:
                data = load_json(f)
            except ValueError as exc:
                log.report(AnnotationError(str(f), "file", str(exc)))
                continue
            if not is_magi(data):
                logger.info("magi: ignoring %s: neither PopManga nor Magi output JSON", f)
                continue
            page = self._page(f, base, data, log)
            if page is not None:
                pages.append(page)
        return check_unique_ids(pages, file=root, log=log)

    def _image(self, json_path: Path, base: Path) -> Path:
        stem = json_path.name[: -len(".json")]
        names = [stem] if Path(stem).suffix.lower() in IMAGE_EXTENSIONS else [stem + e for e in IMAGE_EXTENSIONS]
        folders = [json_path.parent]
        if self.image_root is not None:
            folders.append(self.image_root / json_path.parent.relative_to(base))
        for folder in folders:
            for n in names:
                if (folder / n).is_file():
                    return folder / n
        return folders[-1] / names[0]  # missing: image_size reports it, naming this path

    def _page(self, f: Path, base: Path, data: dict, log: BadRecordLog) -> Page | None:
        record = f"page {f.name}"
        image_path = self._image(f, base)
        size = image_size(image_path, log=log, record=record)
        if size is None:
            return None
        w, h = size
        try:
            if is_popmanga(data):
                raw_chars, raw_texts, clusters, matches, raw_panels, essential, ocr = self._popmanga(data)
            else:
                raw_chars, raw_texts, clusters, matches, raw_panels, essential, ocr = self._magi(data)
        except (KeyError, TypeError, ValueError) as exc:
            log.report(AnnotationError(str(f), record, f"malformed record: {exc}"))
            return None

        panels = []
        for k, raw in enumerate(raw_panels):
            box = checked_box(lambda raw=raw: as_bbox(raw, where="panel"), w, h, file=f, record=f"{record} panel {k}", log=log)
            if box is not None:
                panels.append(Panel(id=f"p{k}", bbox=box, order=k))
        panels_t = tuple(panels)

        entities = []
        for k, raw in enumerate(raw_chars):
            box = checked_box(lambda raw=raw: as_bbox(raw, where="character"), w, h, file=f,
                              record=f"{record} character {k}", log=log)
            if box is not None:
                entities.append(Entity(
                    id=f"c{k}", bbox=box, kind="character", identity=f"cluster{clusters[k]}",
                    panel_id=containing_panel(box, panels_t) if panels_t else None,
                    attributes={"cluster": clusters[k]},
                ))
        kept = {e.id for e in entities}

        speakers: dict[int, set[int]] = {}
        for t, c in matches:
            speakers.setdefault(t, set()).add(c)
        balloons = []
        for k, raw in enumerate(raw_texts):
            box = checked_box(lambda raw=raw: as_bbox(raw, where="text"), w, h, file=f, record=f"{record} text {k}", log=log)
            if box is None:
                continue
            who = speakers.get(k, set())
            speaker = None
            if len(who) > 1:
                logger.info("magi: %s text %d matched to %d characters: no speaker kept", f, k, len(who))
            elif who and f"c{next(iter(who))}" in kept:
                speaker = f"c{next(iter(who))}"
            text = ocr[k] if ocr is not None else None
            balloons.append(Balloon(
                id=f"t{k}", bbox=box, text=text or None, texts={"ocr": text} if text else {},
                order=None if is_popmanga(data) else k,  # Magi returns texts in reading order
                kind=None if essential is None else ("speech" if essential[k] else "other"),
                panel_id=containing_panel(box, panels_t) if panels_t else None, speaker_id=speaker,
            ))
        rel = image_path.relative_to(self.image_root) if self.image_root and image_path.is_relative_to(self.image_root) \
            else image_path.relative_to(base) if image_path.is_relative_to(base) else Path(image_path.name)
        parts = [slug(p) for p in rel.with_suffix("").parts]
        return Page(
            page_id="/".join([self.source_name, *parts]),
            source=self.source_name,
            image_path=str(image_path),
            width=w,
            height=h,
            panels=panels_t,
            entities=tuple(entities),
            balloons=tuple(balloons),
            reading_direction=self.reading_direction,  # type: ignore[arg-type]
            book=parts[0] if len(parts) > 1 else "",
            language=None,
            license=LICENSE,
            attribution=ATTRIBUTION,
            identity_scope="page",
        )

    @staticmethod
    def _popmanga(data: dict):
        ann = data["bbox_annotations"]
        boxes, labels = ann["bboxes_as_x1y1x2y2"], ann["labels"]
        if not isinstance(boxes, list) or not isinstance(labels, list) or len(boxes) != len(labels):
            raise ValueError(f"bboxes_as_x1y1x2y2 and labels must be lists of equal length, got "
                             f"{short_repr(boxes)} / {short_repr(labels)}")
        if any(lab not in (0, 1) for lab in labels):
            raise ValueError(f"labels must be 0 (character) or 1 (text), got {short_repr(labels)}")
        n_chars = labels.count(0)
        if labels != [0] * n_chars + [1] * (len(labels) - n_chars):
            raise ValueError("a character box (label 0) follows a text box (label 1): text indices would be wrong")
        clusters = data.get("character_clusters", [])
        if not isinstance(clusters, list) or len(clusters) != n_chars or not all(isinstance(c, int) for c in clusters):
            raise ValueError(f"character_clusters must be {n_chars} ints, got {short_repr(clusters)}")
        n_texts = len(labels) - n_chars
        matches = MagiAdapter._matches(data.get("text_to_character_matches", []), n_texts, n_chars,
                                       "text_to_character_matches")
        return boxes[:n_chars], boxes[n_chars:], clusters, matches, [], None, None

    @staticmethod
    def _magi(data: dict):
        chars, texts, panels = data["characters"], data["texts"], data.get("panels", [])
        if not isinstance(panels, list):
            raise TypeError(f"panels must be a list, got {short_repr(panels)}")
        clusters = data.get("character_cluster_labels", [])
        if not isinstance(clusters, list) or len(clusters) != len(chars) or not all(isinstance(c, int) for c in clusters):
            raise ValueError(f"character_cluster_labels must be {len(chars)} ints, got {short_repr(clusters)}")
        matches = MagiAdapter._matches(data.get("text_character_associations", []), len(texts), len(chars),
                                       "text_character_associations")
        essential = data.get("is_essential_text")
        if essential is not None and (not isinstance(essential, list) or len(essential) != len(texts)):
            raise ValueError(f"is_essential_text must be {len(texts)} booleans, got {short_repr(essential)}")
        ocr = data.get("ocr")
        if ocr is not None and (not isinstance(ocr, list) or len(ocr) != len(texts)
                                or not all(isinstance(s, str) for s in ocr)):
            raise ValueError(f"ocr must be {len(texts)} strings, got {short_repr(ocr)}")
        return chars, texts, clusters, matches, panels, essential, ocr

    @staticmethod
    def _matches(raw, n_texts: int, n_chars: int, key: str) -> list[tuple[int, int]]:
        if not isinstance(raw, list):
            raise TypeError(f"{key} must be a list of [text_index, character_index], got {short_repr(raw)}")
        out = []
        for pair in raw:
            if (not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(v, int) for v in pair)
                    or not 0 <= pair[0] < n_texts or not 0 <= pair[1] < n_chars):
                raise ValueError(f"{key}: {short_repr(pair)} is not [text_index < {n_texts}, character_index < {n_chars}]")
            out.append((pair[0], pair[1]))
        return out
