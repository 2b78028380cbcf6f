"""Mimi & Eunice transcripts -> pages (one strip = one page).

"Mimi and Eunice" strips by Nina Paley, with transcripts and text-erased images by the Mimi and
Eunice transcripts project (J. Dearing, github.com/dearingj/Mimi-and-Eunice-transcripts;
CC BY-SA 4.0). A dataset folder holds, per strip ``NNN``:

- ``transcripts/NNN.txt``: the strip id, then one ``SPEAKER: text`` line per dialog line in
  reading order;
- ``word-bubbles/NNN.tsv``: the strip id, the list of speakers, then one
  ``SPEAKER<TAB>x1<TAB>y1<TAB>x2<TAB>y2`` row per dialog line, in the same order (pixels);
- ``images/NNN.png``: the strip with its text erased.

In both files ``}}`` starts a comment that runs to the end of the line. Speakers are labels
(``M`` Mimi, ``E`` Eunice, ``SFX``, ``L`` labels, ``U`` unknown...; ``characters-list.txt``).
Each line becomes a :class:`~ai4va_fg_dataset.page.Balloon` with ``speaker``, ``text`` (English;
``*emphasis*`` asterisks and soft hyphens removed), ``order`` = line index and ``kind``
(``"sfx"``, ``"label"`` or ``"speech"``); lines said by a named character also get ``speaker_name``
(:data:`SPEAKER_NAMES`: ``M`` -> ``"Mimi"``, ``E`` -> ``"Eunice"``...), the key of Speaker
Attribution. A row ``-1 -1 -1 -1`` (speaker ``NOBODY``: a strip
without words) has no region: it is counted in :attr:`MimiEuniceAdapter.regionless_lines` and
logged at INFO, not an error. A strip whose transcript and word-bubbles disagree (line count or
speaker) is a bad record: the pairing of texts to regions would be a guess.

Strips have no panel (frame) boxes and no character boxes: Speaker Attribution offers the names of
the characters who speak on the strip.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import ClassVar

from ..core.geometry import as_bbox
from ..errors import AnnotationError, BadRecordLog
from ..page import Balloon, Page
from .base import Adapter, check_unique_ids, checked_box, image_size, slug

logger = logging.getLogger(__name__)

BOOK = "Mimi and Eunice"
LICENSE = "CC BY-SA 4.0"
ATTRIBUTION = (
    "Nina Paley, \"Mimi and Eunice\" (mimiandeunice.com); transcripts, word bubbles and text-erased "
    "images by the Mimi and Eunice transcripts project (J. Dearing)"
)
NO_REGION = (-1.0, -1.0, -1.0, -1.0)

_NO_PANELS = "Mimi & Eunice strips have no panel (frame) boxes"
_NO_CHARACTERS = (
    "Mimi & Eunice labels dialog lines by speaker only: no character boxes, identity, depth or pose"
)
_KINDS = {"SFX": "sfx", "L": "label"}
SPEAKER_NAMES: dict[str, str] = {
    "M": "Mimi",
    "E": "Eunice",
    "D": "Death",
    "K": "Karl Marx",
    "B": "Frédéric Bastiat",
    "G": "God",
    "F": "the foreigner",
    "C": "the online commenter",
}
"""Speaker labels of ``characters-list.txt`` that name a character -> the name used in questions.
``SFX`` (sound effects), ``L`` (labels, signs), ``U`` (unknown/unclear speaker) and ``NOBODY`` name
no speaker: their lines get no :attr:`~ai4va_fg_dataset.page.Balloon.speaker_name`."""


def is_mimi_eunice(folder: Path) -> bool:
    """Whether ``folder`` has the ``transcripts/`` and ``word-bubbles/`` sub-folders."""
    return (folder / "transcripts").is_dir() and (folder / "word-bubbles").is_dir()


def _lines(path: Path) -> list[str]:
    """Non-empty lines of ``path`` with ``}}`` comments removed (raises OSError/UnicodeDecodeError)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("}}", 1)[0].strip()
        if line:
            out.append(line)
    return out


def clean_text(text: str) -> str:
    """Dialog text without the transcripts' ``*emphasis*`` asterisks and soft hyphens."""
    return " ".join(text.replace("*", "").replace("\u00ad", "").split())


class MimiEuniceAdapter(Adapter):
    """Reads a Mimi & Eunice transcripts folder into pages.

    Args:
        source_name: ``Page.source`` and first page-id component (default ``"mimi-eunice"``).

    Page ids are ``"<source>/Mimi_and_Eunice/<NNN>"``. After :meth:`load`,
    :attr:`regionless_lines` is the number of dialog lines without a region (``-1 -1 -1 -1``).
    """

    name = "mimi-eunice"
    fills: ClassVar[frozenset[str]] = frozenset({"balloons", "balloons.text", "balloons.order", "balloons.speaker"})
    notes: ClassVar[dict[str, str]] = {
        "panels": _NO_PANELS, "characters": _NO_CHARACTERS, "entities": _NO_CHARACTERS,
    }

    def __init__(self, *, source_name: str | None = None):
        self.source_name = source_name or self.name
        self.regionless_lines = 0

    def load(self, path: str | Path, *, log: BadRecordLog) -> list[Page]:
        """Load every strip of the folder ``path`` (sorted by strip number).

        Raises:
            AnnotationError: (strict mode) a missing/unreadable transcript, word-bubbles file or
                image; a malformed line or row; transcript and word-bubbles disagreeing in line
                count or speaker; a box outside the image / inverted / zero-area (record
                ``"strip NNN line K"``); duplicated page ids.
            ValueError: ``path`` is not a folder with ``transcripts/`` and ``word-bubbles/``.
        """
        folder = Path(path)
        if not is_mimi_eunice(folder):
            raise ValueError(f"{folder}: not a Mimi & Eunice folder (needs transcripts/ and word-bubbles/)")
        self.regionless_lines = 0
        pages = []
        for transcript in sorted((folder / "transcripts").glob("*.txt")):
            page = self._strip(folder, transcript.stem, log)
            if page is not None:
                pages.append(page)
        # A word-bubbles file without a transcript is a strip we would otherwise drop silently.
        for tsv in sorted((folder / "word-bubbles").glob("*.tsv")):
            if not (folder / "transcripts" / f"{tsv.stem}.txt").is_file():
                log.report(AnnotationError(str(tsv), f"strip {tsv.stem}", f"no transcripts/{tsv.stem}.txt"))
        return check_unique_ids(pages, file=folder, log=log)

    def _strip(self, folder: Path, sid: str, log: BadRecordLog) -> Page | None:
        record = f"strip {sid}"
        txt = folder / "transcripts" / f"{sid}.txt"
        tsv = folder / "word-bubbles" / f"{sid}.tsv"
        try:
            t_lines = _lines(txt)
        except (OSError, UnicodeDecodeError) as exc:
            log.report(AnnotationError(str(txt), record, f"cannot read transcript: {exc}"))
            return None
        try:
            w_lines = _lines(tsv)
        except (OSError, UnicodeDecodeError) as exc:
            log.report(AnnotationError(str(tsv), record, f"cannot read word bubbles: {exc}"))
            return None

        dialog = self._dialog(t_lines, txt, sid, log)
        rows = self._rows(w_lines, tsv, sid, log)
        if dialog is None or rows is None:
            return None
        if len(dialog) != len(rows):
            log.report(
                AnnotationError(
                    str(tsv), record,
                    f"transcript has {len(dialog)} dialog lines but word-bubbles has {len(rows)} rows",
                )
            )
            return None
        for k, ((ts, _), (ws, _)) in enumerate(zip(dialog, rows)):
            if ts != ws:
                log.report(
                    AnnotationError(
                        str(tsv), f"{record} line {k}",
                        f"speaker {ws!r} in word-bubbles but {ts!r} in the transcript",
                    )
                )
                return None

        image_path = folder / "images" / f"{sid}.png"
        size = image_size(image_path, log=log, record=record)
        if size is None:
            return None
        w, h = size
        balloons = []
        for k, ((speaker, text), (_, raw)) in enumerate(zip(dialog, rows)):
            if raw == NO_REGION:
                self.regionless_lines += 1
                logger.info("%s line %d (%s): no region (-1 -1 -1 -1), not a balloon", tsv, k, speaker)
                continue
            box = checked_box(
                lambda raw=raw: as_bbox(raw, where="bbox"), w, h, file=tsv, record=f"{record} line {k}", log=log
            )
            if box is None:
                continue
            balloons.append(
                Balloon(
                    id=f"b{k}",
                    bbox=box,
                    text=text,
                    texts={"en": text},
                    order=k,
                    speaker=speaker,
                    kind=_KINDS.get(speaker, "speech"),
                    speaker_name=SPEAKER_NAMES.get(speaker),
                )
            )
        return Page(
            page_id=f"{self.source_name}/{slug(BOOK)}/{sid}",
            source=self.source_name,
            image_path=str(image_path),
            width=w,
            height=h,
            balloons=tuple(balloons),
            reading_direction="ltr",
            book=BOOK,
            language="en",
            license=LICENSE,
            attribution=ATTRIBUTION,
        )

    @staticmethod
    def _dialog(lines: list[str], file: Path, sid: str, log: BadRecordLog) -> list[tuple[str, str]] | None:
        """``[(speaker, text), ...]`` of a transcript (its first line is the strip id)."""
        if not lines or lines[0] != sid:
            log.report(AnnotationError(str(file), f"strip {sid}", f"first line {lines[:1]!r} is not the strip id"))
            return None
        out = []
        for k, line in enumerate(lines[1:]):
            m = re.match(r"([^:\s]+)\s*:\s*(.*)$", line)
            if not m or not clean_text(m.group(2)):
                log.report(AnnotationError(str(file), f"strip {sid} line {k}", f"not 'SPEAKER: text': {line!r}"))
                return None
            out.append((m.group(1), clean_text(m.group(2))))
        return out

    @staticmethod
    def _rows(
        lines: list[str], file: Path, sid: str, log: BadRecordLog
    ) -> list[tuple[str, tuple[float, ...]]] | None:
        """``[(speaker, (x1, y1, x2, y2)), ...]`` of a word-bubbles file (id line, speakers line, rows)."""
        if not lines or lines[0] != sid:
            log.report(AnnotationError(str(file), f"strip {sid}", f"first line {lines[:1]!r} is not the strip id"))
            return None
        body = lines[1:]
        out = []
        for k, line in enumerate(body):
            fields = [f for f in re.split(r"\s+", line) if f]
            try:
                if len(fields) != 5:
                    raise ValueError
                coords = tuple(float(v) for v in fields[1:])
            except ValueError:
                if k == 0:  # the list of speakers
                    continue
                log.report(
                    AnnotationError(str(file), f"strip {sid} row {len(out)}", f"not 'SPEAKER x1 y1 x2 y2': {line!r}")
                )
                return None
            out.append((fields[0], coords))
        return out
