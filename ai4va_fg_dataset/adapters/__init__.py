"""Adapters: native comic annotation formats -> :class:`~ai4va_fg_dataset.page.Page` objects.

=============== ================================ ==============================================
name            format                           module
=============== ================================ ==============================================
``ai4va``       AI4VA COCO JSON                  :mod:`.coco` (:class:`~.coco.AI4VAAdapter`)
``coco``        any comic dataset in COCO form   :mod:`.coco` (:class:`~.coco.CocoAdapter`)
``acbf``        ACBF 1.0/1.1 XML                 :mod:`.acbf`
``openmantra``  OpenMantra ``annotation.json``   :mod:`.openmantra`
``mimi-eunice`` Mimi & Eunice transcripts        :mod:`.mimi_eunice`
``manga109``    Manga109 XML (+ Manga109Dialog)  :mod:`.manga109`
``magi``        Magi outputs / PopManga JSON     :mod:`.magi`
=============== ================================ ==============================================

:func:`load_source` loads one dataset by adapter name; :func:`detect_sources` finds every dataset
under a folder (``--source auto``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import BadRecordLog
from ..page import Page
from .acbf import AcbfAdapter
from .base import Adapter, load_json
from .coco import (
    AI4VA_MAPPING,
    AI4VAAdapter,
    CocoAdapter,
    CocoMapping,
    SyntheticAdapter,
    is_coco,
    looks_like_ai4va,
    looks_synthetic,
)
from .magi import MagiAdapter, is_magi
from .manga109 import Manga109Adapter, is_manga109
from .mimi_eunice import MimiEuniceAdapter, is_mimi_eunice
from .openmantra import OpenMantraAdapter, is_openmantra

logger = logging.getLogger(__name__)

ADAPTERS: dict[str, type[Adapter]] = {
    "ai4va": AI4VAAdapter,
    "coco": CocoAdapter,
    "acbf": AcbfAdapter,
    "openmantra": OpenMantraAdapter,
    "mimi-eunice": MimiEuniceAdapter,
    "manga109": Manga109Adapter,
    "magi": MagiAdapter,
    "synthetic": SyntheticAdapter,
}
"""Adapter classes by name (the ``--source`` values of the CLI)."""

__all__ = [
    "ADAPTERS",
    "AI4VA_MAPPING",
    "AI4VAAdapter",
    "AcbfAdapter",
    "Adapter",
    "CocoAdapter",
    "CocoMapping",
    "MagiAdapter",
    "Manga109Adapter",
    "MimiEuniceAdapter",
    "OpenMantraAdapter",
    "SyntheticAdapter",
    "detect_sources",
    "load_source",
]


def load_source(name: str, path: str | Path, *, log: BadRecordLog, **options) -> list[Page]:
    """Load the dataset at ``path`` with adapter ``name``.

    Args:
        name: a key of :data:`ADAPTERS`.
        path: the annotation file or dataset folder the adapter reads.
        log: bad-record log (strict unless ``log.skip_bad``).
        **options: keyword arguments of the adapter class (e.g. ``language="sk"`` for ACBF,
            ``mapping=...``, ``image_root=...`` or ``source_name="synthetic"`` for COCO).

    Raises:
        ValueError: unknown adapter name (the message lists the known ones).
        TypeError: an option the adapter does not take.
        AnnotationError: a bad record, in strict mode.
    """
    if name not in ADAPTERS:
        raise ValueError(f"unknown source {name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name](**options).load(path, log=log)


def _json_kind(path: Path) -> str | None:
    """``"openmantra"``, ``"magi"``, ``"synthetic"``, ``"ai4va"``, ``"coco"`` or ``None`` for a JSON file
    (unreadable, invalid, too deeply nested or of another shape -> ``None``, logged at INFO: an
    unrelated JSON file in a data folder is ignored, never a crash)."""
    try:
        data = load_json(path)
    except ValueError as exc:
        logger.info("detect_sources: ignoring %s: %s", path, exc)
        return None
    try:
        if is_openmantra(data):
            return "openmantra"
        if is_magi(data):
            return "magi"
        if is_coco(data):
            if looks_synthetic(data):
                return "synthetic"
            return "ai4va" if looks_like_ai4va(data) else "coco"
    except RecursionError:  # str() of a value nested almost to the parser's limit
        logger.info("detect_sources: ignoring %s: values nested too deeply", path)
    return None


def detect_sources(root: str | Path) -> list[tuple[str, Path]]:
    """Every recognised dataset in ``root`` and its immediate sub-folders (for ``--source auto``).

    Recognised: a ``*.acbf`` file -> ``"acbf"``; a JSON list of ``{book_title, pages}`` ->
    ``"openmantra"``; a folder with ``transcripts/`` and ``word-bubbles/`` -> ``"mimi-eunice"``
    (the folder); a folder with ``annotations/*.xml`` and ``images/`` -> ``"manga109"`` (the
    folder); a Magi / PopManga page JSON -> ``"magi"`` (that file); a COCO JSON dict -> ``"synthetic"`` when its ``info.description`` starts with
    SYNTHETIC, ``"ai4va"`` when it has AI4VA's ``Intradepth`` / ``Interdepth`` attributes, else
    ``"coco"``.

    Returns:
        ``[(adapter name, path), ...]`` sorted by path (deterministic).

    Raises:
        ValueError: nothing recognised under ``root`` (the message names ``root``).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    found: list[tuple[str, Path]] = []
    for folder in folders:
        if is_mimi_eunice(folder):
            found.append(("mimi-eunice", folder))
            continue
        if is_manga109(folder):
            found.append(("manga109", folder))
            continue
        for f in sorted(folder.glob("*.acbf")):
            found.append(("acbf", f))
        for f in sorted(folder.glob("*.json")):
            kind = _json_kind(f)
            if kind:
                found.append((kind, f))
    if not found:
        raise ValueError(
            f"{root}: no comic dataset found (looked for *.acbf, OpenMantra/COCO *.json and Mimi & Eunice "
            "folders in it and its immediate sub-folders)"
        )
    return sorted(found, key=lambda item: (str(item[1]), item[0]))
