"""Errors and the bad-record report shared by all adapters and the build.

Policy (documented in the README, "Bad input"): by default the first bad record stops the build
with an :class:`AnnotationError` naming the file and the record. With ``skip_bad=True`` (CLI
``--skip-bad``) the record is skipped and appended to a :class:`BadRecordLog`, which the build
writes to ``build_report.json`` and prints at the end: nothing is dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

logger = logging.getLogger(__name__)


class AnnotationError(ValueError):
    """A bad annotation record: invalid JSON/XML, missing image, bad box, unknown category...

    Attributes:
        file: the annotation (or image) file.
        record: which record, e.g. ``"annotation id=17"`` or ``"page 3 frame 2"``.
        reason: what is wrong, quoting the bad value.
    """

    def __init__(self, file: str, record: str, reason: str):
        self.file, self.record, self.reason = str(file), record, reason
        super().__init__(f"{file}: {record}: {reason}")


@dataclass
class BadRecord:
    """One skipped record, as written to ``build_report.json``."""

    file: str
    record: str
    reason: str


@dataclass
class BadRecordLog:
    """Collects bad records; raises on the first one unless ``skip_bad``.

    Adapters call :meth:`report` for every problem; it either raises the :class:`AnnotationError`
    or records it and returns, so the adapter skips that record and continues.
    """

    skip_bad: bool = False
    records: list[BadRecord] = field(default_factory=list)

    def report(self, error: AnnotationError) -> None:
        """Raise ``error`` (strict mode) or record it and log a warning (``skip_bad``)."""
        if not self.skip_bad:
            raise error
        logger.warning("skipping bad record: %s", error)
        self.records.append(BadRecord(error.file, error.record, error.reason))

    def to_json(self) -> list[dict]:
        """The skipped records as JSON-ready dicts."""
        return [asdict(r) for r in self.records]
