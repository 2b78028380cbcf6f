"""The ``image_zoom_in_tool``: parse tool calls and execute crops (method.md sections 3-5).

Shared by the agentic evaluation (lmms-eval tool mode) and RARL training, so a crop in an
evaluation table is the crop the trainer rewarded. Pure PIL + :mod:`.geometry`; no transformers or
TRL import.

* :func:`parse_tool_calls` reads Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  blocks from a completion and never raises: malformed JSON, a wrong tool name, wrong or missing
  argument names, a non-numeric box or an unclosed (truncated) block come back as
  :class:`ToolCallError` with a reason.
* :class:`ZoomTool` executes calls on one page: maps ``bbox_2d`` from the frame the model sees (e.g.
  Qwen2.5-VL's resized image) to original pixels, clamps it to the image, grows it to a minimum size,
  rejects NaN / inverted / zero-area / out-of-image boxes, extreme aspect ratios and calls past the
  limit with a structured error result (never an exception), crops, and records every call in
  :attr:`ZoomTool.calls` for rewards (tool count, IoU, coverage) and metrics.

The tool's JSON schema lives in ``tools/image_zoom_in_tool.yaml`` (:func:`.prompts.zoom_tool_schema`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from . import geometry

TOOL_NAME = "image_zoom_in_tool"
"""Name of the zoom tool in the schema and in ``<tool_call>`` blocks."""

ALLOWED_ARGUMENTS = frozenset({"bbox_2d", "label"})
"""Argument names the tool accepts (``bbox_2d`` required, ``label`` optional)."""

_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    """A well-formed ``image_zoom_in_tool`` call.

    Attributes:
        bbox_2d: ``(x1, y1, x2, y2)`` as the model wrote it, in the frame the model sees (pixels of
            the possibly resized image). Not yet checked for order or finiteness: that is the
            executor's job (:class:`ZoomTool`).
        label: the optional ``label`` argument.
        raw: the text inside ``<tool_call></tool_call>``.
    """

    bbox_2d: tuple[float, float, float, float]
    label: str | None = None
    raw: str = ""
    name: str = TOOL_NAME


@dataclass(frozen=True)
class ToolCallError:
    """A ``<tool_call>`` block that is not a valid zoom call; ``reason`` says why (never raised)."""

    reason: str
    raw: str = ""


def validate_call(name: Any, arguments: Any, raw: str = "") -> ToolCall | ToolCallError:
    """Check a decoded call (``name`` and ``arguments`` dict, or a JSON string of it).

    Returns:
        :class:`ToolCall` when ``name`` is ``image_zoom_in_tool``, ``arguments`` has ``bbox_2d``
        (4 numbers, booleans rejected) and optionally a string ``label`` and nothing else;
        otherwise :class:`ToolCallError` naming the problem.
    """
    if name != TOOL_NAME:
        return ToolCallError(f"unknown tool name {name!r} (expected {TOOL_NAME!r})", raw)
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            return ToolCallError(f"arguments are not valid JSON: {exc.msg}", raw)
    if not isinstance(arguments, dict):
        return ToolCallError(f"arguments must be an object, got {type(arguments).__name__}", raw)
    unknown = sorted(set(arguments) - ALLOWED_ARGUMENTS)
    if unknown:
        return ToolCallError(f"unknown argument(s) {unknown} (expected bbox_2d, label)", raw)
    if "bbox_2d" not in arguments:
        return ToolCallError("missing required argument 'bbox_2d'", raw)
    box = arguments["bbox_2d"]
    if (
        not isinstance(box, (list, tuple))
        or len(box) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
    ):
        return ToolCallError(f"bbox_2d {box!r} is not a list of 4 numbers", raw)
    label = arguments.get("label")
    if label is not None and not isinstance(label, str):
        return ToolCallError(f"label {label!r} is not a string", raw)
    return ToolCall(tuple(float(v) for v in box), label, raw)  # type: ignore[arg-type]


def parse_tool_calls(text: str) -> list[ToolCall | ToolCallError]:
    """All ``<tool_call>...</tool_call>`` blocks of ``text``, in order, parsed and validated.

    Args:
        text: completion text (one or several assistant turns).

    Returns:
        One entry per block: :class:`ToolCall` or :class:`ToolCallError` (malformed JSON, not an
        object, wrong name, wrong/missing arguments, bad ``bbox_2d`` type). A ``<tool_call>`` left
        unclosed at the end (truncated completion) adds a final :class:`ToolCallError`. Never raises.
    """
    if not isinstance(text, str):
        return [ToolCallError(f"completion is {type(text).__name__}, not text")]
    results: list[ToolCall | ToolCallError] = []
    end = 0
    for match in _BLOCK.finditer(text):
        end = match.end()
        raw = match.group(1).strip()
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            results.append(ToolCallError(f"malformed JSON: {exc.msg}", raw))
            continue
        if not isinstance(obj, dict):
            results.append(ToolCallError(f"tool call is {type(obj).__name__}, not an object", raw))
            continue
        extra = sorted(set(obj) - {"name", "arguments"})
        if extra:
            results.append(ToolCallError(f"unexpected key(s) {extra} (expected name, arguments)", raw))
            continue
        results.append(validate_call(obj.get("name"), obj.get("arguments", {}), raw))
    tail = text[end:]
    if "<tool_call>" in tail:
        results.append(ToolCallError("unclosed <tool_call> (truncated completion?)", tail.strip()))
    return results


@dataclass
class ZoomCallRecord:
    """One executed (or rejected) zoom call, as kept in :attr:`ZoomTool.calls`.

    Attributes:
        requested: the box as given, in the model's frame (``None`` if it was not 4 numbers).
        label: the optional label.
        executed: the box actually cropped, in original image pixels (whole pixels), or ``None``
            when the call was rejected.
        ok: whether a crop was returned.
        error: the reason for rejection, ``None`` when ``ok``.
        crop_size: ``(width, height)`` of the crop in pixels, ``None`` when rejected.
        clamped: the requested box reached outside the image and was clamped.
        expanded: the box was grown to the minimum size.
    """

    requested: tuple[float, ...] | None
    label: str | None
    executed: geometry.BBox | None = None
    ok: bool = False
    error: str | None = None
    crop_size: tuple[int, int] | None = None
    clamped: bool = False
    expanded: bool = False


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
        ValueError: a non-positive ``min_size``/``max_aspect_ratio``/``max_calls`` or frame size.
    """

    image: Any
    model_frame_size: tuple[int, int] | None = None
    min_size: float = 28.0
    max_aspect_ratio: float = 100.0
    max_calls: int | None = None
    calls: list[ZoomCallRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.min_size <= 0 or self.max_aspect_ratio < 1:
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

        Returns:
            :class:`ZoomResult`: ``ok`` with the crop ``image`` (size ``record.crop_size``), or not
            ``ok`` with ``record.error`` one of: too many calls, not 4 finite numbers, inverted or
            zero-area, outside the image, aspect ratio too extreme.
        """
        try:
            requested = tuple(float(v) for v in bbox_2d)
        except (TypeError, ValueError):
            requested = None
        record = ZoomCallRecord(requested=requested, label=label if isinstance(label, str) else None)
        if self.max_calls is not None and len(self.calls) >= self.max_calls:
            return self._reject(record, f"too many zoom calls (limit {self.max_calls} per sample)")
        try:
            box = geometry.as_bbox(bbox_2d, where="bbox_2d")  # 4 finite numbers, x1 < x2, y1 < y2
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
        crop = geometry.crop_image(self.image, pixel_box)
        record.executed = pixel_box
        record.ok = True
        record.crop_size = crop.size
        self.calls.append(record)
        return ZoomResult(True, record, crop)

    def execute(self, call: ToolCall | ToolCallError) -> ZoomResult:
        """Run a parsed call; a :class:`ToolCallError` is recorded as a rejected call (counts toward ``max_calls``)."""
        if isinstance(call, ToolCallError):
            return self._reject(ZoomCallRecord(requested=None, label=None), call.reason)
        return self(call.bbox_2d, call.label)

    @property
    def executed_boxes(self) -> list[geometry.BBox]:
        """Boxes of the accepted calls, in original pixels, in call order."""
        return [c.executed for c in self.calls if c.ok and c.executed is not None]

    @property
    def num_errors(self) -> int:
        """Number of rejected calls."""
        return sum(1 for c in self.calls if not c.ok)
