"""The ``image_zoom_in_tool`` executor: crop a page at a requested ``bbox_2d`` (method.md sections 3-5).

Shared by the agentic evaluation (lmms-eval tool mode) and RARL training, so a crop in an
evaluation table is the crop the trainer rewarded. Pure PIL + :mod:`.geometry`; calls are parsed and
validated by :mod:`.tool_calls` (re-exported here for the executor's users).

:class:`ZoomTool` executes calls on one page: maps ``bbox_2d`` from the frame the model sees (e.g.
Qwen2.5-VL's resized image) to original pixels, clamps it to the image, grows it to a minimum size,
rejects malformed arguments (the validator's reason, ``record.malformed``), inverted / zero-area /
out-of-image boxes, extreme aspect ratios and calls past the limit with a structured error result
(never an exception), crops, and records every call in :attr:`ZoomTool.calls` for rewards (tool
count, IoU, coverage) and metrics.

The tool's JSON schema lives in ``tools/image_zoom_in_tool.yaml`` (:func:`.prompts.zoom_tool_schema`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from . import geometry
from .tool_calls import (  # noqa: F401  (re-exported: the executor's public vocabulary)
    ALLOWED_ARGUMENTS,
    CLOSE_TAG,
    OPEN_TAG,
    TOOL_NAME,
    ToolCall,
    ToolCallError,
    _clip,
    parse_tool_calls,
    safe_repr,
    validate_arguments,
    validate_bbox,
    validate_call,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_TURNS = 5
"""Assistant turns per tool-mode rollout, training and evaluation alike (method.md section 4: "4096 x 5 over
turns"; section 5: "max 5 turns"): ``RARLConfig.max_turns`` and the eval agent's ``max_turns``."""

DEFAULT_MAX_ZOOM_CALLS = DEFAULT_MAX_TURNS - 1
"""Zoom calls per sample, training and evaluation alike: ``RARLConfig.max_zoom_calls`` and the eval agent's
``max_calls`` (``lmms_eval_tasks.models.zoom_agent``), so a policy is evaluated under the budget it was
trained with. 4 = one crop per tool turn of a 5-turn rollout (the last turn answers): above the paper's
RARL averages (1.01 to 1.88 calls per sample, method.md section 3) and the two regions Character
Identification needs. A config that differs says so by name (``rarl_tiny_cpu.yaml``: ``max_zoom_calls: 2``
with ``max_turns: 3``; the agent's ``max_calls=N`` model arg)."""


@dataclass
class ZoomCallRecord:
    """One executed (or rejected) zoom call, as kept in :attr:`ZoomTool.calls`.

    Attributes:
        requested: the box as given, in the model's frame (``None`` when the call was malformed).
        label: the optional label.
        executed: the box actually cropped, in original image pixels (whole pixels), or ``None``
            when the call was rejected.
        ok: whether a crop was returned.
        error: the reason for rejection, ``None`` when ``ok``.
        crop_size: ``(width, height)`` of the crop in pixels, ``None`` when rejected.
        clamped: the requested box reached outside the image and was clamped.
        expanded: the box was grown to the minimum size.
        malformed: the call's arguments failed :func:`validate_arguments` (``error`` is its reason),
            as opposed to a well-formed box the executor rejected (inverted, outside the image...).
    """

    requested: tuple[float, ...] | None
    label: str | None
    executed: geometry.BBox | None = None
    ok: bool = False
    error: str | None = None
    crop_size: tuple[int, int] | None = None
    clamped: bool = False
    expanded: bool = False
    malformed: bool = False


@dataclass
class ZoomResult:
    """What a zoom call returns: the crop or an error, plus its :class:`ZoomCallRecord`."""

    ok: bool
    record: ZoomCallRecord
    image: Any = None  # PIL.Image.Image when ok

    @property
    def error(self) -> str | None:
        """The rejection reason (``None`` when ``ok``)."""
        return self.record.error

    def text(self) -> str:
        """A short text for the tool message: the crop box in original pixels, or the error."""
        if self.ok:
            x1, y1, x2, y2 = (int(v) for v in self.record.executed)  # type: ignore[union-attr]
            return f"Zoomed in on [{x1}, {y1}, {x2}, {y2}] of the original page."
        return f"Error: {self.record.error}"


@dataclass
class ZoomTool:
    """Executes ``image_zoom_in_tool`` calls on one page image and records them.

    Args:
        image: the page (``PIL.Image.Image``), original resolution.
        model_frame_size: ``(width, height)`` of the image as the model sees it (Qwen2.5-VL's
            resized input); boxes are mapped from that frame to original pixels with
            :func:`.geometry.scale_bbox`. ``None``: the model sees original pixels.
        min_size: minimum crop side in original pixels (boxes are grown around their centre).
        max_aspect_ratio: largest allowed ``long side / short side`` of the crop (Qwen2.5-VL's
            processor refuses ratios above 200); larger is rejected.
        max_calls: maximum number of calls (accepted or rejected) per page; ``None`` = no limit.

    Raises:
        ValueError: a non-positive or non-finite ``min_size``, a ``max_aspect_ratio`` below 1 or NaN, a
            negative ``max_calls`` or a non-positive frame size.
    """

    image: Any
    model_frame_size: tuple[int, int] | None = None
    min_size: float = 28.0
    max_aspect_ratio: float = 100.0
    max_calls: int | None = None
    calls: list[ZoomCallRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_size) and self.min_size > 0) or not self.max_aspect_ratio >= 1:
            raise ValueError(
                f"ZoomTool: min_size={self.min_size!r} must be > 0 and max_aspect_ratio={self.max_aspect_ratio!r} >= 1"
            )
        if self.max_calls is not None and self.max_calls < 0:
            raise ValueError(f"ZoomTool: max_calls={self.max_calls!r} must be >= 0 or None")
        if self.model_frame_size is not None and (self.model_frame_size[0] <= 0 or self.model_frame_size[1] <= 0):
            raise ValueError(f"ZoomTool: model_frame_size={self.model_frame_size!r} must be positive")

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the original image in pixels."""
        return self.image.size

    def _reject(self, record: ZoomCallRecord, reason: str) -> ZoomResult:
        record.error = reason
        self.calls.append(record)
        return ZoomResult(False, record)

    def __call__(self, bbox_2d: Any, label: str | None = None) -> ZoomResult:
        """Crop ``bbox_2d`` (model frame) from the page; see the class doc. Never raises.

        The arguments go through :func:`validate_arguments` first, the validator the parser and the
        rewards use: a string ``bbox_2d`` (``"1289"``), a non-list, a non-finite or out-of-range
        coordinate, or a non-string label is malformed (``record.malformed``), with the same reason
        :func:`parse_tool_calls` gives for the same arguments.

        Returns:
            :class:`ZoomResult`: ``ok`` with the crop ``image`` (size ``record.crop_size``), or not
            ``ok`` with ``record.error`` one of: too many calls, malformed arguments (not a list of 4
            numbers, non-finite, out of range, bad label), inverted or zero-area, outside the image,
            aspect ratio too extreme.
        """
        arguments = {"bbox_2d": bbox_2d} if label is None else {"bbox_2d": bbox_2d, "label": label}
        checked = validate_arguments(arguments)
        valid = isinstance(checked, ToolCall)
        record = ZoomCallRecord(requested=checked.bbox_2d if valid else None,
                                label=checked.label if valid else None)
        if self.max_calls is not None and len(self.calls) >= self.max_calls:
            return self._reject(record, f"too many zoom calls (limit {self.max_calls} per sample)")
        if not valid:
            record.malformed = True
            logger.debug("malformed zoom call rejected: %s", checked.reason)
            return self._reject(record, checked.reason)
        requested = checked.bbox_2d
        try:
            box = geometry.as_bbox(requested, where="bbox_2d")  # x1 < x2, y1 < y2
        except geometry.GeometryError as exc:
            return self._reject(record, str(exc))
        width, height = self.size
        if self.model_frame_size is not None:
            box = geometry.scale_bbox(box, tuple(self.model_frame_size), (width, height))
        clipped = geometry.clip_bbox(box, width, height)
        if clipped is None:
            frame = self.model_frame_size or (width, height)
            return self._reject(record, f"bbox_2d {list(requested)} lies outside the {frame[0]}x{frame[1]} image")
        record.clamped = clipped != tuple(box)
        grown = geometry.expand_to_min_size(clipped, self.min_size, width, height)
        record.expanded = grown != clipped
        # Whole pixels, rounded outward: the executed box is exactly the cropped region.
        pixel_box = (
            float(math.floor(grown[0])),
            float(math.floor(grown[1])),
            float(min(width, math.ceil(grown[2]))),
            float(min(height, math.ceil(grown[3]))),
        )
        w, h = pixel_box[2] - pixel_box[0], pixel_box[3] - pixel_box[1]
        if max(w, h) / min(w, h) > self.max_aspect_ratio:
            return self._reject(
                record, f"crop {int(w)}x{int(h)} has aspect ratio above {self.max_aspect_ratio:g}"
            )
        try:
            crop = geometry.crop_image(self.image, pixel_box)
        except (OSError, ValueError) as exc:  # a truncated / unreadable page: the call fails, the run goes on
            return self._reject(record, f"the page image cannot be cropped ({type(exc).__name__}: {_clip(str(exc), 120)})")
        record.executed = pixel_box
        record.ok = True
        record.crop_size = crop.size
        self.calls.append(record)
        return ZoomResult(True, record, crop)

    def execute(self, call: ToolCall | ToolCallError) -> ZoomResult:
        """Run a parsed call; a :class:`ToolCallError` is recorded as a rejected call (counts toward ``max_calls``)."""
        if isinstance(call, ToolCallError):
            return self._reject(ZoomCallRecord(requested=None, label=None, malformed=True), call.reason)
        return self(call.bbox_2d, call.label)

    @property
    def executed_boxes(self) -> list[geometry.BBox]:
        """Boxes of the accepted calls, in original pixels, in call order."""
        return [c.executed for c in self.calls if c.ok and c.executed is not None]

    @property
    def num_errors(self) -> int:
        """Number of rejected calls (malformed ones included)."""
        return sum(1 for c in self.calls if not c.ok)

    @property
    def num_malformed(self) -> int:
        """Number of calls rejected as malformed (see :func:`validate_arguments`)."""
        return sum(1 for c in self.calls if c.malformed)
