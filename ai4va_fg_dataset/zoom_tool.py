"""The ``image_zoom_in_tool``: parse tool calls and execute crops (method.md sections 3-5).

Shared by the agentic evaluation (lmms-eval tool mode) and RARL training, so a crop in an
evaluation table is the crop the trainer rewarded. Pure PIL + :mod:`.geometry`; no transformers or
TRL import.

* :func:`parse_tool_calls` reads Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  blocks from a completion and never raises: malformed JSON, a wrong tool name, wrong or missing
  argument names, a non-numeric box or an unclosed (truncated) block come back as
  :class:`ToolCallError` with a reason.
* :func:`validate_call` / :func:`validate_arguments` are the **one** validator of a call's content:
  the parser, :class:`ZoomTool` (so the RARL environment, whose tool method calls it, and the eval
  agent) and the format / tool rewards all reach the same verdict on the same arguments.
* :class:`ZoomTool` executes calls on one page: maps ``bbox_2d`` from the frame the model sees (e.g.
  Qwen2.5-VL's resized image) to original pixels, clamps it to the image, grows it to a minimum size,
  rejects malformed arguments (the validator's reason, ``record.malformed``), inverted / zero-area /
  out-of-image boxes, extreme aspect ratios and calls past the limit with a structured error result
  (never an exception), crops, and records every call in :attr:`ZoomTool.calls` for rewards (tool
  count, IoU, coverage) and metrics.

Limits (the parser cannot raise or stall; every limit below is a malformed call, not an exception):

=============================== ======================================================================
:data:`MAX_COMPLETION_CHARS`    a completion longer than this is not scanned: one error, no calls
:data:`MAX_CALLS_PER_TEXT`      blocks read per completion; one more error after that, rest ignored
:data:`MAX_CALL_CHARS`          characters inside one ``<tool_call>`` block (JSON is not decoded)
:data:`MAX_JSON_DEPTH`          nesting of ``[``/``{`` inside one block (a valid call has depth 3)
:data:`MAX_NUMBER_CHARS`        characters of one JSON number literal
:data:`MAX_COORDINATE`          ``|x|`` of each ``bbox_2d`` coordinate; NaN / infinities rejected
:data:`MAX_LABEL_CHARS`         length of the optional ``label``
=============================== ======================================================================

Parsing is linear in the completion length: each ``<tool_call>`` is matched with the first
``</tool_call>`` after it by one forward scan (an unclosed tag ends the scan), never by rescanning
from every unclosed tag.

The tool's JSON schema lives in ``tools/image_zoom_in_tool.yaml`` (:func:`.prompts.zoom_tool_schema`).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

from . import geometry

logger = logging.getLogger(__name__)

TOOL_NAME = "image_zoom_in_tool"
"""Name of the zoom tool in the schema and in ``<tool_call>`` blocks."""

ALLOWED_ARGUMENTS = frozenset({"bbox_2d", "label"})
"""Argument names the tool accepts (``bbox_2d`` required, ``label`` optional)."""

OPEN_TAG = "<tool_call>"
"""Opening tag of a tool-call block (Hermes / Qwen2.5 format)."""

CLOSE_TAG = "</tool_call>"
"""Closing tag of a tool-call block."""

MAX_COMPLETION_CHARS = 4_194_304
"""Longest completion (characters) whose tool calls are read (4 Mi; a Qwen turn is ~10^4)."""

MAX_CALLS_PER_TEXT = 64
"""Most ``<tool_call>`` blocks read from one completion; a further block adds one error and ends the scan."""

MAX_CALL_CHARS = 4096
"""Longest text inside one ``<tool_call>`` block (a valid call is ~100 characters)."""

MAX_JSON_DEPTH = 8
"""Deepest ``[``/``{`` nesting decoded inside one block (``{"arguments": {"bbox_2d": [...]}}`` is 3)."""

MAX_NUMBER_CHARS = 40
"""Longest JSON number literal decoded as a number (longer ones are out of range)."""

MAX_COORDINATE = 1_000_000.0
"""Largest ``|coordinate|`` of a ``bbox_2d`` in the model's frame (pixels, or 0..1000); beyond is absurd."""

MAX_LABEL_CHARS = 512
"""Longest ``label`` argument."""

_OUT_OF_RANGE = f"bbox_2d has a coordinate out of range (|x| <= {MAX_COORDINATE:g})"
_MAX_ERROR_RAW = 256  # characters of the offending text kept in a ToolCallError
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)  # strings (skipped) and brackets; linear


class _OutOfRange:
    """A JSON number literal too long to be a coordinate (kept as text, never converted)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"<number of {len(self.text)} characters>"


def _clip(text: str, limit: int = _MAX_ERROR_RAW) -> str:
    return text if len(text) <= limit else text[:limit] + f"...[{len(text) - limit} more characters]"


def safe_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (huge ints, deep nesting, broken ``__repr__``)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 200 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"<{type(value).__name__} of {len(value)} items>"
        inner = ", ".join(safe_repr(v, limit) for v in value)
        text = f"[{inner}]" if isinstance(value, list) else f"({inner})"
        return _clip(text, limit)
    if isinstance(value, dict):
        return f"<dict of {len(value)} keys>"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001  (a hostile __repr__ must not turn a verdict into a crash)
        return f"<{type(value).__name__}>"
    return _clip(text, limit)


def _json_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of ``text`` outside JSON strings; one linear pass."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group(0)
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _parse_int(text: str) -> int | _OutOfRange:
    return _OutOfRange(text) if len(text) > MAX_NUMBER_CHARS else int(text)


def _parse_float(text: str) -> float | _OutOfRange:
    return _OutOfRange(text) if len(text) > MAX_NUMBER_CHARS else float(text)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey("duplicate key in an object")
    return obj


def loads_bounded(
    text: str, *, max_chars: int = MAX_CALL_CHARS, max_depth: int = MAX_JSON_DEPTH, reject_duplicate_keys: bool = False
) -> tuple[bool, Any]:
    """Decode JSON text without the ways :func:`json.loads` can raise or stall on hostile input.

    Args:
        text: the JSON text.
        max_chars: longer text is refused undecoded.
        max_depth: deeper ``[``/``{`` nesting is refused undecoded (no ``RecursionError``).
        reject_duplicate_keys: an object with a repeated key is invalid (default: the last one wins,
            as in :func:`json.loads`).

    Returns:
        ``(True, value)``, or ``(False, reason)`` for anything that is not valid, bounded JSON: not a
        string, too long, too deeply nested, a syntax error. Number literals longer than
        :data:`MAX_NUMBER_CHARS` decode to an opaque out-of-range marker (never ``int()`` of
        thousands of digits, which Python refuses); ``NaN``/``Infinity`` decode to floats (rejected
        later as non-finite). Never raises.
    """
    if not isinstance(text, str):
        return False, f"JSON text is {type(text).__name__}, not a string"
    if len(text) > max_chars:
        return False, f"JSON text is {len(text)} characters (limit {max_chars})"
    depth = _json_depth(text)
    if depth > max_depth:
        return False, f"JSON nested {depth} levels deep (limit {max_depth})"
    hook = _no_duplicates if reject_duplicate_keys else None
    try:
        return True, json.loads(text, parse_int=_parse_int, parse_float=_parse_float, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        return False, f"malformed JSON: {exc.msg}"
    except _DuplicateKey as exc:
        return False, f"malformed JSON: {exc}"
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        return False, f"malformed JSON: {type(exc).__name__}"


@dataclass(frozen=True)
class ToolCall:
    """A well-formed ``image_zoom_in_tool`` call.

    Attributes:
        bbox_2d: ``(x1, y1, x2, y2)`` as the model wrote it, in the frame the model sees (pixels of
            the possibly resized image): four finite floats with ``|x| <=`` :data:`MAX_COORDINATE`.
            Not yet checked for order or placement: that is the executor's job (:class:`ZoomTool`).
        label: the optional ``label`` argument.
        raw: the text inside ``<tool_call></tool_call>``.
    """

    bbox_2d: tuple[float, float, float, float]
    label: str | None = None
    raw: str = ""
    name: str = TOOL_NAME


@dataclass(frozen=True)
class ToolCallError:
    """A ``<tool_call>`` block that is not a valid zoom call; ``reason`` says why (never raised).

    ``raw`` is the offending text, cut to a few hundred characters.
    """

    reason: str
    raw: str = ""


def validate_bbox(box: Any) -> tuple[float, float, float, float] | str:
    """Check a ``bbox_2d`` argument's type and range (not its order or placement).

    Accepted: a ``list`` or ``tuple`` of exactly 4 real numbers (``int``/``float``/numpy scalars;
    ``bool`` is not a number here), each finite and with ``|x| <=`` :data:`MAX_COORDINATE`.
    A string (even ``"[1, 2, 3, 4]"`` or ``"1289"``), a dict, ``None``, a numpy array or any other
    type is malformed.

    Returns:
        The four coordinates as floats, or a reason string (``"... is not a list of 4 numbers ..."``,
        ``"... has a non-finite value"``, ``"... out of range ..."``). Never raises.
    """
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        extra = f" (it has {len(box)} values)" if isinstance(box, (list, tuple)) else ""
        return f"bbox_2d {safe_repr(box)} is not a list of 4 numbers [x1, y1, x2, y2]{extra}"
    out: list[float] = []
    for v in box:
        if isinstance(v, _OutOfRange):
            return _OUT_OF_RANGE
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return f"bbox_2d {safe_repr(box)} is not a list of 4 numbers [x1, y1, x2, y2]"
        if isinstance(v, numbers.Integral) and abs(int(v)) > MAX_COORDINATE:
            return _OUT_OF_RANGE
        try:
            f = float(v)
        except (OverflowError, ValueError, TypeError):
            return _OUT_OF_RANGE
        if not math.isfinite(f):
            return f"bbox_2d {safe_repr(box)} has a non-finite value"
        if abs(f) > MAX_COORDINATE:
            return _OUT_OF_RANGE
        out.append(f)
    return tuple(out)  # type: ignore[return-value]


def validate_arguments(arguments: Any, raw: str = "") -> ToolCall | ToolCallError:
    """Check the ``arguments`` of a zoom call: an object (``dict``, or a JSON string of one).

    Accepted: ``bbox_2d`` (required, see :func:`validate_bbox`) and ``label`` (optional: a string of
    at most :data:`MAX_LABEL_CHARS` characters, or ``None``/``null``), and no other key.

    Returns:
        :class:`ToolCall`, or :class:`ToolCallError` naming the problem. Never raises.
    """
    if isinstance(arguments, str):
        ok, decoded = loads_bounded(arguments)
        if not ok:
            return ToolCallError(f"arguments are not valid JSON: {decoded}", _clip(raw))
        arguments = decoded
    if not isinstance(arguments, dict):
        return ToolCallError(f"arguments must be an object, got {type(arguments).__name__}", _clip(raw))
    keys = list(arguments)
    if not all(isinstance(k, str) for k in keys):
        return ToolCallError("argument names must be strings", _clip(raw))
    unknown = sorted(set(keys) - ALLOWED_ARGUMENTS)
    if unknown:
        shown = [_clip(k, 40) for k in unknown[:5]]
        return ToolCallError(f"unknown argument(s) {shown} (expected bbox_2d, label)", _clip(raw))
    if "bbox_2d" not in arguments:
        return ToolCallError("missing required argument 'bbox_2d'", _clip(raw))
    box = validate_bbox(arguments["bbox_2d"])
    if isinstance(box, str):
        return ToolCallError(box, _clip(raw))
    label = arguments.get("label")
    if label is not None and not isinstance(label, str):
        return ToolCallError(f"label {safe_repr(label)} is not a string", _clip(raw))
    if label is not None and len(label) > MAX_LABEL_CHARS:
        return ToolCallError(f"label is {len(label)} characters (limit {MAX_LABEL_CHARS})", _clip(raw))
    return ToolCall(box, label, raw)


def validate_call(name: Any, arguments: Any, raw: str = "") -> ToolCall | ToolCallError:
    """Check a decoded call: ``name`` must be ``image_zoom_in_tool``, ``arguments`` as :func:`validate_arguments`.

    Returns:
        :class:`ToolCall` or :class:`ToolCallError` naming the problem. Never raises.
    """
    if name != TOOL_NAME:
        return ToolCallError(f"unknown tool name {safe_repr(name, 60)} (expected {TOOL_NAME!r})", _clip(raw))
    return validate_arguments(arguments, raw)


def _parse_block(raw: str) -> ToolCall | ToolCallError:
    """One block's text (between the tags, stripped) -> call or error."""
    ok, obj = loads_bounded(raw)
    if not ok:
        return ToolCallError(obj if obj.startswith("malformed JSON") else f"tool call {obj}", _clip(raw))
    if not isinstance(obj, dict):
        return ToolCallError(f"tool call is {type(obj).__name__}, not an object", _clip(raw))
    extra = sorted(set(obj) - {"name", "arguments"})
    if extra:
        shown = [_clip(k, 40) for k in extra[:5]]
        return ToolCallError(f"unexpected key(s) {shown} (expected name, arguments)", _clip(raw))
    return validate_call(obj.get("name"), obj.get("arguments", {}), raw)


def parse_tool_calls(text: str) -> list[ToolCall | ToolCallError]:
    """All ``<tool_call>...</tool_call>`` blocks of ``text``, in order, parsed and validated.

    Args:
        text: completion text (one or several assistant turns).

    Returns:
        One entry per block: :class:`ToolCall` or :class:`ToolCallError` (malformed JSON, not an
        object, wrong name, wrong/missing arguments, bad ``bbox_2d``, a limit of the module
        docstring exceeded). A ``<tool_call>`` left unclosed (truncated completion) adds a final
        :class:`ToolCallError` and ends the scan; so does a block past :data:`MAX_CALLS_PER_TEXT`.
        A non-string or a text longer than :data:`MAX_COMPLETION_CHARS` gives one error. Linear in
        ``len(text)``; never raises.
    """
    if not isinstance(text, str):
        return [ToolCallError(f"completion is {type(text).__name__}, not text")]
    if len(text) > MAX_COMPLETION_CHARS:
        return [ToolCallError(f"completion is {len(text)} characters (limit {MAX_COMPLETION_CHARS}); "
                              "tool calls not read")]
    results: list[ToolCall | ToolCallError] = []
    pos = 0
    while True:
        start = text.find(OPEN_TAG, pos)
        if start < 0:
            break
        body = start + len(OPEN_TAG)
        end = text.find(CLOSE_TAG, body)
        if end < 0:  # no </tool_call> after this tag, so none after any later one: the scan ends
            results.append(ToolCallError("unclosed <tool_call> (truncated completion?)", _clip(text[start:].strip())))
            break
        if len(results) >= MAX_CALLS_PER_TEXT:
            results.append(ToolCallError(f"more than {MAX_CALLS_PER_TEXT} <tool_call> blocks; the rest are not read"))
            break
        raw = text[body:end]
        if len(raw) > MAX_CALL_CHARS:
            results.append(ToolCallError(f"tool call is {len(raw)} characters (limit {MAX_CALL_CHARS})", _clip(raw)))
        else:
            results.append(_parse_block(raw.strip()))
        pos = end + len(CLOSE_TAG)
    for call in results:
        if isinstance(call, ToolCallError):
            logger.debug("malformed tool call: %s", call.reason)
    return results


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
